import Foundation
import MPCCrypto
import MPCWire

/// Aligns the rows of a vertical job's parties on their identifier columns (Protocols/federated-lr-
/// vertical.md), over a session port: the guest runs a PSI with each host ("align") in which only the
/// guest learns the intersection, with the host's positions of the matches; it keeps the identifiers
/// every host holds and tells each host which of its rows those are ("aligned"). A host learns only the
/// rows all parties hold; the guest learns each pairwise intersection. Transport-free: the same code
/// runs between daemons and with N parties in one test process.
public struct VerticalRowAlignment: Sendable {
    public struct Outcome: Sendable {
        /// Ascending positions, in this party's own identifier order, of the rows every party holds.
        public var positions: [Int]
        public var ownSetSize: Int
        public var bytesSent: UInt64
        public var bytesReceived: UInt64
    }

    public static let alignStream = "align"
    public static let alignedStream = "aligned"

    public let jobID: String
    public let guest: NodeID
    public let hosts: [NodeID]
    public let me: NodeID
    public let waits: SetOperationParty.Waits
    /// The peer set sizes this party accepts in each PSI (its own policy's, checked on the peer's
    /// header before anything is compared): a peer offering a whole number range is refused.
    public var peerSetSizes: ClosedRange<Int> = 0...WireNumber.maximumSetSize

    public init(jobID: String, guest: NodeID, hosts: [NodeID], me: NodeID, waits: SetOperationParty.Waits) {
        self.jobID = jobID
        self.guest = guest
        self.hosts = hosts
        self.me = me
        self.waits = waits
    }

    public func run(source: any IdentifierSource, port: any SessionPort) async throws -> Outcome {
        var outcome = Outcome(positions: [], ownSetSize: source.count, bytesSent: 0, bytesReceived: 0)
        let jobID = jobID
        if me == guest {
            var psi = PSIParty.Configuration(jobID: jobID, group: .x25519, selfReceivesOutput: true, peerReceivesOutput: false, cardinalityOnly: false)
            psi.reportsPeerPositions = true
            psi.minimumPeerSetSize = peerSetSizes.lowerBound
            psi.maximumPeerSetSize = peerSetSizes.upperBound
            let withPeerPositions = psi
            let hosts = hosts
            let reports = try await withThrowingTaskGroup(of: (Int, PSIParty.Report).self) { group in
                for (i, host) in hosts.enumerated() {
                    group.addTask {
                        let report = try await port.withSession(stream: Self.alignStream, to: host) { channel in
                            try await PSIParty(configuration: withPeerPositions, source: source, channel: channel).run()
                        }
                        return (i, report)
                    }
                }
                var out = [PSIParty.Report?](repeating: nil, count: hosts.count)
                for try await (i, r) in group { out[i] = r }
                return out.map { $0! }
            }
            // Own position → the host's position, per host; the joint intersection is what every host matched.
            var matches: [[Int: Int]] = []
            for (i, r) in reports.enumerated() {
                guard case .matches(let own, let theirs) = r.output else {
                    throw ProtocolError.protocolViolation(peer: hosts[i], detail: "the alignment delivered no intersection")
                }
                matches.append(Dictionary(zip(own, theirs), uniquingKeysWith: { first, _ in first }))
                outcome.bytesSent += r.bytesSent
                outcome.bytesReceived += r.bytesReceived
            }
            outcome.positions = (matches.first?.keys.filter { p in matches.allSatisfy { $0[p] != nil } } ?? []).sorted()
            for (i, host) in hosts.enumerated() {
                let theirs = outcome.positions.map { matches[i][$0]! }
                outcome.bytesSent += try await port.withSession(stream: Self.alignedStream, to: host) { channel in
                    try await VerticalAlignment.sendAlignedRows(theirs, over: channel)
                }
            }
        } else {
            guard hosts.contains(me) else {
                throw ProtocolError.parameterMismatch(peer: me, detail: "\(me) is neither the guest nor a host of the alignment")
            }
            var psi = PSIParty.Configuration(jobID: jobID, group: .x25519, selfReceivesOutput: false, peerReceivesOutput: true, cardinalityOnly: false)
            psi.minimumPeerSetSize = peerSetSizes.lowerBound
            psi.maximumPeerSetSize = peerSetSizes.upperBound
            let report = try await port.withAccepted(stream: Self.alignStream, from: guest, timeout: waits.session) { channel in
                try await PSIParty(configuration: psi, source: source, channel: channel).run()
            }
            outcome.bytesSent += report.bytesSent
            outcome.bytesReceived += report.bytesReceived
            // The guest runs a PSI with every host before it answers: wait as long as a phase may take.
            let (received, bytes) = try await port.withAccepted(stream: Self.alignedStream, from: guest, timeout: waits.phase) { rows in
                try await VerticalAlignment.receiveAlignedRows(setSize: source.count, over: rows)
            }
            outcome.positions = received
            outcome.bytesReceived += bytes
        }
        return outcome
    }

    /// The order every party puts the aligned identifiers in: by HMAC-SHA-256 keyed with the job id, so all
    /// end with the same list without telling each other anything more.
    public static func agreedOrder(_ identifiers: [String], jobID: String) -> [String] {
        let key = Array(jobID.utf8)
        return identifiers.map { (HMACSHA256.authenticate($0.utf8, key: key), $0) }
            .sorted { $0.0.lexicographicallyPrecedes($1.0) }.map(\.1)
    }
}

/// The end of a vertical alignment: after a PSI with each host in which only the guest learns the
/// intersection (with the host's positions of the matches), the guest tells each host which of its rows
/// every party holds, as ascending positions in the host's PSI stream.
public enum VerticalAlignment {
    public static func sendAlignedRows(_ positions: [Int], over channel: any MessageChannel) async throws -> UInt64 {
        let session = ProtocolSession(channel: channel)
        let sorted = positions.sorted().map { UInt64($0) }
        try await session.sendVLR { $0.alignedRows = .with { $0.positions = sorted } }
        await channel.close()
        return session.bytesSent
    }

    /// The host's aligned rows, checked to be ascending positions of its own stream (`setSize` elements).
    public static func receiveAlignedRows(setSize: Int, over channel: any MessageChannel) async throws -> ([Int], UInt64) {
        let session = ProtocolSession(channel: channel)
        guard case .alignedRows(let a) = try await session.receiveVLR("the aligned rows") else {
            throw ProtocolError.protocolViolation(peer: channel.peer, detail: "expected the aligned rows")
        }
        let positions = a.positions.map { Int(clamping: $0) }
        guard zip(positions, positions.dropFirst()).allSatisfy({ $0 < $1 }), positions.allSatisfy({ (0..<setSize).contains($0) }) else {
            throw ProtocolError.protocolViolation(peer: channel.peer, detail: "aligned rows that are not ascending positions below \(setSize)")
        }
        await channel.close()
        return (positions, session.bytesReceived)
    }
}
