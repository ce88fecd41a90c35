import Foundation

/// What every role of one secure aggregation agrees on (it comes from the job spec).
public struct SecureAggregationParameters: Sendable {
    public var jobID: String
    /// The hash of the job's spec, bound into every signature: keys and survivor lists signed for one
    /// job cannot be replayed into another with the same id but other parameters.
    public var specHash: [UInt8]
    /// The clients, sorted; client i's Shamir x-coordinate is i + 1.
    public var clients: [NodeID]
    public var server: NodeID
    /// Values per input vector.
    public var length: Int
    /// Survivors needed in every round; also the Shamir threshold.
    public var threshold: Int
    /// How long the server waits for the clients' messages of one round before counting the silent ones as dropped.
    public var roundTimeout: Duration
    /// A client's own floor of clients in the sum: it releases no unmasking share for fewer survivors
    /// (a sum of one or two inputs tells too much about each), whatever the threshold.
    public var minimumSurvivors: Int = 2

    public init(jobID: String, specHash: [UInt8] = [], clients: [NodeID], server: NodeID, length: Int, threshold: Int? = nil,
                roundTimeout: Duration = .seconds(60)) {
        self.jobID = jobID
        self.specHash = specHash
        self.clients = clients.sorted()
        self.server = server
        self.length = length
        self.threshold = threshold ?? Self.defaultThreshold(clients: clients.count)
        self.roundTimeout = roundTimeout
    }

    /// ⌊2n/3⌋ + 1, at least 2: a majority large enough that a minority coalition learns nothing.
    public static func defaultThreshold(clients n: Int) -> Int { max(2, (2 * n) / 3 + 1) }

    public func index(of node: NodeID) -> Int? { clients.firstIndex(of: node) }
    public func x(of node: NodeID) -> UInt32? { index(of: node).map { UInt32($0 + 1) } }

    public func validate() throws {
        guard Set(clients).count == clients.count, clients.count >= 2 else {
            throw SecureAggregationError.invalidParameters("at least two distinct clients are needed")
        }
        guard !clients.contains(server) else { throw SecureAggregationError.invalidParameters("the server cannot also be a client") }
        guard threshold >= 2, threshold <= clients.count else {
            throw SecureAggregationError.invalidParameters("threshold \(threshold) must lie in 2…\(clients.count)")
        }
        guard length >= 1 else { throw SecureAggregationError.invalidParameters("vectors need at least one value") }
        guard minimumSurvivors <= clients.count else {
            throw SecureAggregationError.invalidParameters("\(clients.count) clients are fewer than the \(minimumSurvivors) this client requires in a sum")
        }
    }

    /// What a client signs in round 0: job id, spec hash, its id, both public keys and its audit hash.
    func signedKeyMessage(node: NodeID, cipherPublicKey: [UInt8], maskPublicKey: [UInt8], auditRecordHash: [UInt8]) -> [UInt8] {
        Self.lengthPrefixed("MPCNode/secagg/keys/v2", [Array(jobID.utf8), specHash, Array(node.utf8), cipherPublicKey, maskPublicKey, auditRecordHash])
    }

    /// What a client signs in the consistency round: job id, spec hash, and U3 (sorted) as it received it.
    func signedSurvivorsMessage(_ survivors: [NodeID]) -> [UInt8] {
        Self.lengthPrefixed("MPCNode/secagg/survivors/v1", [Array(jobID.utf8), specHash] + survivors.sorted().map { Array($0.utf8) })
    }

    private static func lengthPrefixed(_ label: String, _ parts: [[UInt8]]) -> [UInt8] {
        var m: [UInt8] = Array(label.utf8)
        withUnsafeBytes(of: UInt32(parts.count).littleEndian) { m.append(contentsOf: $0) }
        for part in parts {
            withUnsafeBytes(of: UInt32(part.count).littleEndian) { m.append(contentsOf: $0) }
            m.append(contentsOf: part)
        }
        return m
    }

    func associatedData(from: NodeID, to: NodeID) -> [UInt8] { Array("\(jobID)|\(from)|\(to)".utf8) }
}

/// How clients authenticate their keys to each other through the relaying server: a signature by the
/// key of their consortium certificate, checked against the certificate (and the CA) by every peer.
public struct KeyAuthentication: Sendable {
    /// The signer's certificate (DER), relayed with its keys.
    public var certificateDER: [UInt8]
    public var sign: @Sendable ([UInt8]) throws -> [UInt8]
    /// Throws unless the certificate chains to the consortium CA, names `nodeID`, and the signature verifies.
    public var verify: @Sendable (_ signature: [UInt8], _ message: [UInt8], _ nodeID: NodeID, _ certificateDER: [UInt8]) throws -> Void

    public init(certificateDER: [UInt8], sign: @escaping @Sendable ([UInt8]) throws -> [UInt8],
                verify: @escaping @Sendable ([UInt8], [UInt8], NodeID, [UInt8]) throws -> Void) {
        self.certificateDER = certificateDER
        self.sign = sign
        self.verify = verify
    }
}

public enum SecureAggregationError: Error, Equatable, CustomStringConvertible {
    case invalidParameters(String)
    case tooFewSurvivors(round: String, survivors: Int, threshold: Int)
    case badSignature(peer: NodeID, detail: String)
    case wrongVectorLength(peer: NodeID, expected: Int, got: Int)
    case inconsistentRound(peer: NodeID, detail: String)
    case inconsistentSurvivors(peer: NodeID, detail: String)
    /// Two-phase cell sums: a client of the counts' sum is missing from the measures'.
    case lostBetweenPhases(client: NodeID, detail: String)

    public var description: String {
        switch self {
        case .invalidParameters(let d): return "invalid secure aggregation parameters: \(d)"
        case .tooFewSurvivors(let r, let s, let t): return "only \(s) clients remained in round \(r), fewer than the threshold \(t): no sum can be revealed"
        case .badSignature(let p, let d): return "the keys of \(p) do not verify: \(d)"
        case .wrongVectorLength(let p, let e, let g): return "\(p) sent a vector of \(g) values, expected \(e)"
        case .inconsistentRound(let p, let d): return "inconsistent message from \(p): \(d)"
        case .inconsistentSurvivors(let p, let d):
            return "the survivor lists disagree (\(p)): \(d); no unmasking share was released (a lying server, or clients told different lists)"
        case .lostBetweenPhases(let c, let d):
            return "\(c) was lost after its counts were summed (\(d)), so it did not come back for the measures: no measure was summed (the counts of one set of clients and the measures of another would single it out)"
        }
    }
}
