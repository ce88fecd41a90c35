import Foundation
import MPCCrypto
import MPCIdentity
import MPCTestSupport
import MPCWire
import XCTest
@testable import MPCProtocols

/// Secure aggregation in memory, with real signatures (P-256 certificate keys) and real crypto.
final class SecureAggregationTests: XCTestCase {
    var pki: TestPKI!
    override func setUpWithError() throws { pki = try TestPKI() }
    override func tearDownWithError() throws { pki.remove() }

    func authentication(_ node: String, signAs: String? = nil) throws -> KeyAuthentication {
        try pki.keyAuthentication(node, signAs: signAs)
    }

    struct Run {
        var server: Result<SecureAggregationServer.Outcome, Error>
        var clients: [String: Result<SecureAggregationClient.Outcome, Error>]
        var inputs: [String: [UInt64]]
        var wire: [UInt8]
    }

    func run(clients n: Int, length: Int, threshold: Int? = nil, stops: [Int: SecureAggregationClient.Round] = [:],
             lengthOverride: [Int: Int] = [:], signAs: [Int: Int] = [:], replay: Set<Int> = [], seed: UInt64 = 1, serverVerifies: Bool = false,
             serverSide: (String, any MessageChannel) -> any MessageChannel = { $1 }) async throws -> Run {
        let names = (0..<n).map { String(format: "branch-%02d", $0) }
        let parameters = SecureAggregationParameters(jobID: "job-sa", clients: names, server: "regulator", length: length,
                                                     threshold: threshold, roundTimeout: .seconds(20))
        var rng = SplitMix(state: seed)
        let wire = WireLog()
        var serverChannels: [String: any MessageChannel] = [:]
        var clientChannels: [String: any MessageChannel] = [:]
        var inputs: [String: [UInt64]] = [:]
        for (i, name) in names.enumerated() {
            let (c, s) = InMemoryChannel.pair(name, "regulator", tap: { wire.append($0, $1) })
            clientChannels[name] = replay.contains(i) ? ReplayingChannel(inner: c) : c
            serverChannels[name] = serverSide(name, s)
            // Distinctive values (to be searched for on the wire), some of them negative (two's complement).
            inputs[name] = (0..<(lengthOverride[i] ?? length)).map { _ in
                let v = Int64.random(in: -1_000_000_000...1_000_000_000, using: &rng)
                return UInt64(bitPattern: v) ^ 0x5A00_0000_0000_0000
            }
        }
        let server = SecureAggregationServer(parameters: parameters, channels: serverChannels,
                                             verify: serverVerifies ? try authentication("regulator").verify : nil)
        async let serverResult = { () async -> Result<SecureAggregationServer.Outcome, Error> in
            do { return .success(try await server.run()) } catch { return .failure(error) }
        }()
        var clientResults: [String: Result<SecureAggregationClient.Outcome, Error>] = [:]
        try await withThrowingTaskGroup(of: (String, Result<SecureAggregationClient.Outcome, Error>).self) { group in
            for (i, name) in names.enumerated() {
                var p = parameters
                if let l = lengthOverride[i] { p.length = l }
                let auth = try authentication(name, signAs: signAs[i].map { names[$0] })
                let client = SecureAggregationClient(parameters: p, me: name, input: inputs[name]!, channel: clientChannels[name]!,
                                                     authentication: auth, stopAfter: stops[i])
                group.addTask {
                    do { return (name, .success(try await client.run())) } catch { return (name, .failure(error)) }
                }
            }
            for try await (name, r) in group { clientResults[name] = r }
        }
        return Run(server: await serverResult, clients: clientResults, inputs: inputs, wire: wire.entries.flatMap(\.bytes))
    }

    func plainSum(_ inputs: [String: [UInt64]], _ included: [String]) -> [UInt64] {
        var sum = [UInt64](repeating: 0, count: inputs[included[0]]!.count)
        for name in included { for (i, v) in inputs[name]!.enumerated() { sum[i] &+= v } }
        return sum
    }

    func testSumWithoutDropoutsEqualsThePlainSumAndNoInputCrossesTheWire() async throws {
        let r = try await run(clients: 5, length: 1000)
        let outcome = try r.server.get()
        XCTAssertEqual(outcome.included, r.inputs.keys.sorted())
        XCTAssertEqual(outcome.sum, plainSum(r.inputs, outcome.included))
        XCTAssertTrue(outcome.dropped.isEmpty)
        for (name, result) in r.clients { XCTAssertEqual(try result.get().included, outcome.included, name) }
        // No client's raw value appears on the wire (each is a distinctive 8-byte pattern).
        let wire = WireIndex(r.wire)
        for (name, values) in r.inputs {
            for v in values.prefix(200) {
                var le = v.littleEndian
                let bytes = withUnsafeBytes(of: &le) { Array($0) }
                XCTAssertFalse(wire.contains(bytes), "\(name)'s raw value \(v) is on the wire")
            }
        }
        var planted = r.inputs["branch-00"]![3].littleEndian
        XCTAssertTrue(WireIndex(r.wire + withUnsafeBytes(of: &planted) { Array($0) }).contains(withUnsafeBytes(of: &planted) { Array($0) }))
    }

    func testDropoutsAtEveryRoundLeaveTheSumOfTheSurvivors() async throws {
        // 7 clients, threshold 5. (who stops, after which round) → who must be in the sum.
        let cases: [([Int: SecureAggregationClient.Round], Set<Int>)] = [
            ([2: .advertise], [0, 1, 3, 4, 5, 6]),          // gone before sharing keys: not in the sum
            ([3: .shareKeys], [0, 1, 2, 4, 5, 6]),          // gone after sharing: its pairwise masks are removed
            ([4: .maskedInput], [0, 1, 2, 3, 4, 5, 6]),     // gone after its masked input: still summed
            ([5: .unmask], [0, 1, 2, 3, 4, 5, 6]),
            ([1: .shareKeys, 6: .maskedInput], [0, 2, 3, 4, 5, 6]),
        ]
        for (stops, survivors) in cases {
            let r = try await run(clients: 7, length: 300, threshold: 5, stops: stops, seed: UInt64(stops.keys.first! + 10))
            let outcome = try r.server.get()
            let expected = r.inputs.keys.sorted().enumerated().filter { survivors.contains($0.offset) }.map(\.element)
            XCTAssertEqual(outcome.included, expected, "\(stops)")
            XCTAssertEqual(outcome.sum, plainSum(r.inputs, expected), "\(stops)")
            // A client that stops after sending its unmasking shares has finished every round: not a dropout.
            let droppedEarly = stops.filter { $0.value < .unmask }.keys.map { String(format: "branch-%02d", $0) }
            XCTAssertEqual(Set(outcome.dropped.map(\.client)), Set(droppedEarly), "\(stops)")
        }
    }

    func testFewerSurvivorsThanTheThresholdAbortsEverywhere() async throws {
        let r = try await run(clients: 5, length: 50, threshold: 4, stops: [0: .shareKeys, 1: .shareKeys])
        XCTAssertThrowsError(try r.server.get()) { error in
            XCTAssertEqual(error as? SecureAggregationError, .tooFewSurvivors(round: "masked input", survivors: 3, threshold: 4))
        }
        for name in ["branch-02", "branch-03", "branch-04"] {
            XCTAssertThrowsError(try r.clients[name]!.get(), name) { XCTAssertTrue("\($0)".contains("fewer than the threshold"), "\($0)") }
        }
    }

    func testWrongVectorLengthEndsTheRunNamingTheClient() async throws {
        let r = try await run(clients: 4, length: 20, threshold: 3, lengthOverride: [2: 21])
        XCTAssertThrowsError(try r.server.get()) {
            XCTAssertEqual($0 as? SecureAggregationError, .wrongVectorLength(peer: "branch-02", expected: 20, got: 21))
        }
        XCTAssertThrowsError(try r.clients["branch-00"]!.get()) { XCTAssertTrue("\($0)".contains("branch-02"), "\($0)") }
    }

    func testKeysSignedWithAnotherNodesCertificateAreRejected() async throws {
        // branch-01 signs its keys with branch-03's certificate: every other client refuses.
        let r = try await run(clients: 4, length: 10, threshold: 3, signAs: [1: 3])
        XCTAssertThrowsError(try r.server.get())
        XCTAssertThrowsError(try r.clients["branch-00"]!.get()) { error in
            XCTAssertTrue("\(error)".contains("the keys of branch-01 do not verify"), "\(error)")
        }
    }

    func testAReplayedMessageEndsTheRun() async throws {
        let r = try await run(clients: 4, length: 10, threshold: 3, replay: [2])
        XCTAssertThrowsError(try r.server.get()) { error in
            XCTAssertTrue("\(error)".contains("branch-02") && "\(error)".contains("out of sequence"), "\(error)")
        }
    }
}

extension SecureAggregationTests {
    /// Finding 5: a server tells some clients that branch-00 survived and the others that it dropped,
    /// hoping to get branch-00's self-mask seed from the first and its mask key from the second. The
    /// consistency round makes every honest client abort before it releases a single unmasking share,
    /// whether the server relays every signature (they are on two different lists) or only those that
    /// match each client's list (then fewer than t confirm).
    /// One dishonest client signs garbage in the consistency round. Relayed as it is, its signature makes
    /// every honest client abort; a server that checks the signatures first leaves it out of the proofs,
    /// and the others finish with the exact sum (the client's masked input is in: its self-mask is rebuilt).
    func testAServerThatChecksSignaturesKeepsOneBadSignatureFromAbortingTheSum() async throws {
        for verifies in [false, true] {
            let r = try await run(clients: 5, length: 20, serverVerifies: verifies, serverSide: { name, channel in
                name == "branch-02" ? BadSurvivorSignatureChannel(inner: channel) : channel
            })
            let honest = r.clients.filter { $0.key != "branch-02" }
            if verifies {
                let outcome = try r.server.get()
                XCTAssertEqual(outcome.sum, plainSum(r.inputs, outcome.included))
                XCTAssertTrue(outcome.included.contains("branch-02"))
                XCTAssertTrue(outcome.dropped.contains { $0.client == "branch-02" && $0.round == "consistency" })
                for (name, result) in honest { XCTAssertNoThrow(try result.get(), name) }
            } else {
                XCTAssertThrowsError(try r.server.get())
                for (name, result) in honest {
                    XCTAssertThrowsError(try result.get(), name) { XCTAssertTrue("\($0)".contains("survivor"), "\(name): \($0)") }
                }
            }
        }
    }

    func testTwoSurvivorListsMakeEveryClientAbortBeforeReleasingAShare() async throws {
        for filtered in [false, true] {
            let log = LyingServerLog()
            let r = try await run(clients: 5, length: 40, threshold: 4, serverSide: { name, channel in
                LyingServerChannel(inner: channel, client: name, toldDropped: ["branch-03", "branch-04"].contains(name),
                                   victim: "branch-00", filterProofs: filtered, log: log)
            })
            XCTAssertThrowsError(try r.server.get(), "filtered \(filtered)")
            for (name, result) in r.clients {
                XCTAssertThrowsError(try result.get(), name) { error in
                    XCTAssertTrue("\(error)".contains("survivor"), "filtered \(filtered), \(name): \(error)")
                }
            }
            XCTAssertEqual(log.unmaskingMessages, 0, "filtered \(filtered): no client released an unmasking share")
            XCTAssertEqual(log.survivorListsSent, 5, "the attack was played")
        }
    }
}

final class LyingServerLog: @unchecked Sendable {
    private let lock = NSLock()
    private var _unmasking = 0, _lists = 0
    var unmaskingMessages: Int { lock.withLock { _unmasking } }
    var survivorListsSent: Int { lock.withLock { _lists } }
    func sawUnmasking() { lock.withLock { _unmasking += 1 } }
    func sentList() { lock.withLock { _lists += 1 } }
}

/// The server's side of one client's channel, rewritten by a dishonest server: the survivor list it
/// sends to some clients leaves out the victim, and (optionally) the signatures it relays are only
/// those of clients that were told the same list. Counts the unmasking messages clients send.
final class LyingServerChannel: MessageChannel, @unchecked Sendable {
    let inner: any MessageChannel
    let client: String, toldDropped: Bool, victim: String, filterProofs: Bool
    let log: LyingServerLog
    static let toldDroppedGroup: Set<String> = ["branch-03", "branch-04"]

    init(inner: any MessageChannel, client: String, toldDropped: Bool, victim: String, filterProofs: Bool, log: LyingServerLog) {
        self.inner = inner; self.client = client; self.toldDropped = toldDropped; self.victim = victim
        self.filterProofs = filterProofs; self.log = log
    }
    var peer: NodeID { inner.peer }

    func send(_ message: [UInt8]) async throws {
        guard var frame = try? Mpcnode_V1_SessionFrame(serializedBytes: message), case .secagg(var m)? = frame.body else {
            return try await inner.send(message)
        }
        switch m.body {
        case .survivors(var list)?:
            if toldDropped { list.included.removeAll { $0 == victim } }
            m.survivors = list
            log.sentList()
        case .consistencyProofs(var proofs)? where filterProofs:
            proofs.signatures.removeAll { Self.toldDroppedGroup.contains($0.nodeID) != toldDropped }
            m.consistencyProofs = proofs
        default:
            return try await inner.send(message)
        }
        frame.secagg = m
        try await inner.send(try frame.serializedBytes())
    }

    func receive() async throws -> [UInt8] {
        let bytes = try await inner.receive()
        if let frame = try? Mpcnode_V1_SessionFrame(serializedBytes: bytes), case .secagg(let m)? = frame.body,
           case .unmasking? = m.body { log.sawUnmasking() }
        return bytes
    }

    func close() async { await inner.close() }
}

/// Sends its first message twice (a replay), then behaves.
final class ReplayingChannel: MessageChannel, @unchecked Sendable {
    let inner: any MessageChannel
    private var sent = 0
    init(inner: any MessageChannel) { self.inner = inner }
    var peer: NodeID { inner.peer }
    func send(_ message: [UInt8]) async throws {
        try await inner.send(message)
        sent += 1
        if sent == 1 { try await inner.send(message) }
    }
    func receive() async throws -> [UInt8] { try await inner.receive() }
    func close() async { await inner.close() }
}

/// The server's side of a client's channel where the client's survivor signature arrives corrupted (a
/// dishonest client signing garbage).
final class BadSurvivorSignatureChannel: MessageChannel, @unchecked Sendable {
    let inner: any MessageChannel
    init(inner: any MessageChannel) { self.inner = inner }
    var peer: NodeID { inner.peer }
    func send(_ message: [UInt8]) async throws { try await inner.send(message) }
    func receive() async throws -> [UInt8] {
        let bytes = try await inner.receive()
        guard var frame = try? Mpcnode_V1_SessionFrame(serializedBytes: bytes), case .secagg(var m)? = frame.body,
              case .consistency(var c)? = m.body else { return bytes }
        var signature = [UInt8](c.signature)
        signature[signature.count / 2] ^= 0x40
        c.signature = Data(signature)
        m.consistency = c
        frame.secagg = m
        return try frame.serializedBytes()
    }
    func close() async { await inner.close() }
}
