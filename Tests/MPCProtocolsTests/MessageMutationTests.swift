import Foundation
import MPCCrypto
import MPCIdentity
import MPCLearning
import MPCTestSupport
import MPCWire
import XCTest
@testable import MPCProtocols

/// Seeded mutation tests (finding 7): every protocol is run between honest roles in memory, except that
/// one message on one link is replaced by a crafted one (a flipped bit, a truncation, a number set to
/// 2⁶⁴−1 or NaN, a list doubled, a message dropped or repeated, …; `MessageMutator`). Whatever the
/// mutation, every role must end — with its result or with an error — within the time limit, and the
/// process must not trap: a crash here stops the whole test run. The seeds are fixed, so a failure is
/// reproduced by its seed; the budget is bounded (`MPCNODE_MUTATION_RUNS` raises it for a longer search).
final class MessageMutationTests: XCTestCase {
    var pki: TestPKI!
    override func setUpWithError() throws { pki = try TestPKI() }
    override func tearDownWithError() throws { pki.remove() }

    static func runs(_ standard: Int) -> Int {
        ProcessInfo.processInfo.environment["MPCNODE_MUTATION_RUNS"].flatMap(Int.init) ?? standard
    }

    func authentication(_ node: String) throws -> KeyAuthentication { try pki.keyAuthentication(node) }

    /// Tallies how the mutated runs ended; at least one must have failed (the mutations do something).
    final class Tally: @unchecked Sendable {
        private let lock = NSLock()
        private(set) var failed = 0, succeeded = 0, untouched = 0
        /// Runs still waiting at the time limit, with the mutation that stalled them.
        private(set) var stalls: [String] = []
        var errors: [String] = []
        func record(_ end: RunEnd, applied: String?) {
            lock.withLock {
                switch end {
                case .stalled: stalls.append(applied ?? "no mutation")
                case .finished(let error):
                    if applied == nil { untouched += 1 } else if let error { failed += 1; if errors.count < 5 { errors.append(PeerText.cut("\(applied!): \(error)", limit: 300)) } } else { succeeded += 1 }
                }
            }
        }
        var summary: String {
            "\(failed) failed cleanly, \(succeeded) unaffected, \(untouched) without the targeted message, \(stalls.count) stalled; e.g. \(errors.prefix(3))"
        }
        /// A withheld message can leave honest roles waiting (in memory nothing closes; between daemons the
        /// job's deadline, max_job_seconds, ends it); any other mutation must never stall a run.
        func checkStalls(file: StaticString = #filePath, line: UInt = #line) {
            for s in stalls where !s.hasSuffix(": dropped") { XCTFail("a run stalled after \(s)", file: file, line: line) }
        }
    }

    enum RunEnd { case finished(Error?), stalled }

    /// Runs `body`; a run still going after `seconds` is cancelled and reported as stalled.
    func bounded(_ label: String, seconds: Double = 20, _ body: @escaping @Sendable () async throws -> Void) async -> RunEnd {
        let fired = Locked(false)
        let work = Task { try await body() }
        let watchdog = Task {
            try await Task.sleep(for: .seconds(seconds))
            fired.withValue { $0 = true }
            work.cancel()
        }
        let result = await work.result
        watchdog.cancel()
        if fired.value { return .stalled }
        if case .failure(let e) = result { return .finished(e) }
        return .finished(nil)
    }

    /// Seeded runs of one protocol: each run's mutator comes from its seed, `body` runs the honest roles
    /// with it within the time limit, and the run's end is tallied. At least one run must fail cleanly
    /// (the mutations do something), and none may stall unless its targeted message was withheld.
    func campaign(_ name: String, runs: Int, seconds: Double = 20, mutator: (UInt64) -> MessageMutator,
                  _ body: @escaping @Sendable (UInt64, MessageMutator) async throws -> Void,
                  file: StaticString = #filePath, line: UInt = #line) async {
        let tally = Tally()
        for seed in 0..<UInt64(Self.runs(runs)) {
            let m = mutator(seed)
            let end = await bounded("\(name) seed \(seed)", seconds: seconds) { try await body(seed, m) }
            tally.record(end, applied: m.applied)
        }
        XCTAssertGreaterThan(tally.failed, 0, tally.summary, file: file, line: line)
        tally.checkStalls(file: file, line: line)
        print("\(name) mutations: \(tally.summary)")
    }

    /// A mutator on one of `links`, cycling through them, at one of the first `messages` messages.
    static func onLinks(_ links: [(String, String)], messages: Int) -> (UInt64) -> MessageMutator {
        { seed in
            let (from, to) = links[Int(seed % UInt64(links.count))]
            return MessageMutator(sender: from, receiver: to, index: Int(seed / UInt64(links.count) % UInt64(messages)), seed: seed)
        }
    }

    func testPSIRolesSurviveOneCraftedMessage() async throws {
        let a = (0..<150).map { "+4477\($0 * 3)" }, b = (0..<120).map { "+4477\($0 * 2)" }
        await campaign("psi", runs: 160, mutator: Self.onLinks([("bank-a", "bank-b"), ("bank-b", "bank-a")], messages: 9)) { seed, mutator in
            let (ca, cb) = InMemoryChannel.pair("bank-a", "bank-b", intercept: mutator.intercept)
            let config = PSIParty.Configuration(jobID: "job-fuzz", group: seed % 4 < 2 ? .x25519 : .ristretto255, selfReceivesOutput: true,
                                                peerReceivesOutput: true, cardinalityOnly: seed % 3 == 0, batchSize: 40)
            let partyA = PSIParty(configuration: config, source: ArrayIdentifierSource(a), channel: ca)
            let partyB = PSIParty(configuration: config, source: ArrayIdentifierSource(b), channel: cb)
            if let e = await Self.firstError([{ _ = try await partyA.run() }, { _ = try await partyB.run() }]) { throw e }
        }
    }

    func testSecureAggregationRolesSurviveOneCraftedMessage() async throws {
        let clients = (0..<4).map { "branch-\($0)" }
        let auths = try Dictionary(uniqueKeysWithValues: clients.map { ($0, try authentication($0)) })
        // Each client's link, both ways, in the order the seeds visit them.
        let links = (0..<8).map { k in k < 4 ? (clients[k], "regulator") : ("regulator", clients[k - 4]) }
        await campaign("secure aggregation", runs: 120, mutator: Self.onLinks(links, messages: 6)) { _, mutator in
            let parameters = SecureAggregationParameters(jobID: "job-fuzz", specHash: [1, 2, 3], clients: clients, server: "regulator",
                                                         length: 16, threshold: 3, roundTimeout: .milliseconds(500))
            var serverChannels: [String: any MessageChannel] = [:]
            var roles: [@Sendable () async throws -> Void] = []
            for c in clients {
                let (cc, sc) = InMemoryChannel.pair(c, "regulator", intercept: mutator.intercept)
                serverChannels[c] = sc
                let client = SecureAggregationClient(parameters: parameters, me: c, input: (0..<16).map { UInt64($0) }, channel: cc,
                                                     authentication: auths[c]!)
                roles.append { _ = try await client.run() }
            }
            let server = SecureAggregationServer(parameters: parameters, channels: serverChannels)
            roles.append { _ = try await server.run() }
            if let e = await Self.firstError(roles) { throw e }
        }
    }

    func testTwoPhaseCellSumRolesSurviveOneCraftedMessage() async throws {
        let clients = (0..<4).map { "branch-\($0)" }
        let auths = try Dictionary(uniqueKeysWithValues: clients.map { ($0, try authentication($0)) })
        let links = (0..<8).map { k in k < 4 ? (clients[k], "regulator") : ("regulator", clients[k - 4]) }
        let layout = TwoPhaseCellSum.Layout(cells: 3, measures: 2, minRecords: 2, minParties: 2)
        // Both phases and the release between them: up to 13 messages each way on a link.
        await campaign("two-phase cell sum", runs: 104, mutator: Self.onLinks(links, messages: 13)) { _, mutator in
            let hub = InMemorySessionHub(intercept: mutator.intercept)
            let parameters = SecureAggregationParameters(jobID: "job-fuzz", specHash: [1, 2, 3], clients: clients, server: "regulator",
                                                         length: 1, threshold: 3, roundTimeout: .milliseconds(500))
            // Cells 0 and 1 pass (4 records, 4 clients), cell 2 does not (no records).
            let vector: [UInt64] = [1, 1, 10, 1, 1, 1, 20, 1, 0, 0, 0, 0]
            var roles: [@Sendable () async throws -> Void] = [{
                _ = try await TwoPhaseCellSum.Server(parameters: parameters, layout: layout).run(port: hub.port(for: "regulator"), acceptTimeout: .milliseconds(700))
            }]
            for c in clients {
                let client = TwoPhaseCellSum.Client(parameters: parameters, layout: layout, me: c, vector: vector, authentication: auths[c]!)
                roles.append { _ = try await client.run(port: hub.port(for: c)) }
            }
            if let e = await Self.firstError(roles) { throw e }
        }
    }

    func testSetOperationRolesSurviveOneCraftedMessage() async throws {
        let banks = ["bank-0", "bank-1", "bank-2"]
        let auths = try banks.map { try authentication($0) }
        // The links of a union-sum: the ring, to the mixer, mixer to aggregator, each bank with the aggregator.
        let links: [(String, String)] = [("bank-0", "bank-1"), ("bank-1", "bank-2"), ("bank-2", "bank-0"), ("bank-0", "bank-1"),
                                          ("bank-2", "bank-1"), ("bank-1", "regulator"), ("bank-0", "regulator"), ("regulator", "bank-0"),
                                          ("regulator", "bank-2"), ("bank-2", "regulator")]
        let waits = SetOperationParty.Waits(session: .milliseconds(700), phase: .milliseconds(1500))
        await campaign("set operation", runs: 60, mutator: Self.onLinks(links, messages: 6)) { _, mutator in
            let hub = InMemorySessionHub(intercept: mutator.intercept)
            let config = SetOperationConfiguration(jobID: "job-fuzz", group: .ristretto255, owners: banks, mixer: "bank-1", aggregator: "regulator",
                                                   deliveries: Dictionary(uniqueKeysWithValues: banks.map { ($0, SetDeliveryKind.union) }), batchSize: 8)
            var roles: [@Sendable () async throws -> Void] = [{
                _ = try await SetOperationAggregatorRole(configuration: config, waits: waits).run(port: hub.port(for: "regulator"), sumRoundTimeout: .milliseconds(500))
            }]
            for (i, bank) in banks.enumerated() {
                let source = ArrayIdentifierSource((0..<(12 + i * 3)).map { "acct-\(($0 * (i + 2)) % 40)" })
                let sum = SetOperationSum(authentication: auths[i], auditRecordHash: [], roundTimeout: .milliseconds(500),
                                          totals: { source.values.map { _ in 100 } })
                roles.append { _ = try await SetOperationParty(configuration: config, me: bank, waits: waits).run(source: source, port: hub.port(for: bank), sum: sum) }
            }
            if let e = await Self.firstError(roles) { throw e }
        }
    }

    func testVerticalTrainingRolesSurviveOneCraftedMessage() async throws {
        var rng = SplitMix(state: 3)
        let rows = 48
        let guestRows = LabeledRows(features: (0..<(rows * 2)).map { _ in Double.random(in: -1...1, using: &rng) },
                                    labels: (0..<rows).map { _ in Double(rng.next() % 2) }, width: 2)
        let hostRows = LabeledRows(features: (0..<(rows * 3)).map { _ in Double.random(in: -1...1, using: &rng) },
                                   labels: [Double](repeating: 0, count: rows), width: 3)
        let training = TrainingParameters(rounds: 1, localEpochs: 1, learningRate: 0.1, l2: 0, batchSize: 48, tolerance: 0)
        let parameters = VerticalLRParameters(jobID: "job-fuzz", guest: "guest", hosts: ["host"], arbiter: "arbiter", rows: rows,
                                              training: training, keyBits: 1024, minimumKeyBits: 1024)
        let links: [(String, String)] = [("arbiter", "guest"), ("arbiter", "host"), ("guest", "arbiter"), ("host", "arbiter"),
                                          ("host", "guest"), ("guest", "host")]
        await campaign("vertical training", runs: 12, seconds: 15, mutator: Self.onLinks(links, messages: 3)) { _, mutator in
            _ = try await VerticalLRInMemory.run(parameters, guest: guestRows, hosts: [hostRows], intercept: mutator.intercept)
        }
    }

    /// Runs every role concurrently to its end; the first error, if any.
    static func firstError(_ roles: [@Sendable () async throws -> Void]) async -> Error? {
        await withTaskGroup(of: Error?.self) { group in
            for role in roles { group.addTask { await result(role) } }
            var first: Error?
            for await e in group where first == nil { first = e }
            return first
        }
    }

    static func result(_ body: () async throws -> Void) async -> Error? {
        do { try await body(); return nil } catch { return error }
    }
}
