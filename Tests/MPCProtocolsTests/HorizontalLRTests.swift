import Foundation
import MPCCrypto
import MPCIdentity
import MPCLearning
import MPCTestSupport
import XCTest
@testable import MPCProtocols

/// Opens the in-memory sessions of the secure sums: each party opens its end, the aggregator takes
/// those of every expected party.
actor SumSwitchboard {
    private var waiting: [String: [String: any MessageChannel]] = [:]
    private var takers: [String: CheckedContinuation<[String: any MessageChannel], Never>] = [:]
    private var expected: Set<String>
    private let server: String
    private let tap: @Sendable (String, [UInt8]) -> Void
    init(expected: Set<String>, server: String, tap: @escaping @Sendable (String, [UInt8]) -> Void) {
        self.expected = expected
        self.server = server
        self.tap = tap
    }

    func open(_ stream: String, from client: String) -> any MessageChannel {
        let (c, s) = InMemoryChannel.pair(client, server, tap: tap)
        waiting[stream, default: [:]][client] = s
        if Set(waiting[stream]!.keys).isSuperset(of: expected), let taker = takers.removeValue(forKey: stream) {
            taker.resume(returning: waiting.removeValue(forKey: stream)!)
        }
        return c
    }

    /// A party is gone: sums no longer wait for it.
    func drop(_ client: String) {
        expected.remove(client)
        for (stream, taker) in takers where Set(waiting[stream]?.keys.map { $0 } ?? []).isSuperset(of: expected) {
            takers.removeValue(forKey: stream)
            taker.resume(returning: waiting.removeValue(forKey: stream) ?? [:])
        }
    }

    func take(_ stream: String) async -> [String: any MessageChannel] {
        if let w = waiting[stream], Set(w.keys).isSuperset(of: expected) { return waiting.removeValue(forKey: stream)! }
        return await withCheckedContinuation { takers[stream] = $0 }
    }
}

/// Horizontal federated LR in memory (real secure aggregation, real signatures) on FATE's breast_homo
/// split, against a centralised baseline trained on the pooled rows with the same hyper-parameters.
final class HorizontalLRTests: XCTestCase {
    var pki: TestPKI!
    override func setUpWithError() throws { pki = try TestPKI() }
    override func tearDownWithError() throws { pki.remove() }

    /// FATE's example data: `MPCNODE_FATE_DATA`, or ../shared/data/fate beside the project (where CI has it).
    static var dataDirectory: URL {
        if let path = ProcessInfo.processInfo.environment["MPCNODE_FATE_DATA"] { return URL(fileURLWithPath: path) }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("shared/data/fate")
    }

    /// A FATE homo file: id, y, x0…x29.
    static func load(_ name: String, labelled: Bool = true) throws -> LabeledRows {
        try LabeledRows(csv: String(contentsOf: dataDirectory.appendingPathComponent(name), encoding: .utf8), labelled: labelled)
    }

    func authentication(_ node: String) throws -> KeyAuthentication { try pki.keyAuthentication(node) }

    func testBreastHomoMatchesTheCentralisedBaseline() async throws {
        let guest = try Self.load("breast_homo_guest.csv"), host = try Self.load("breast_homo_host.csv")
        let test = try Self.load("breast_homo_test.csv")
        XCTAssertEqual([guest.count, host.count, test.count], [227, 228, 114])
        let training = TrainingParameters(rounds: 30, localEpochs: 1, learningRate: 0.1, l2: 0.001, batchSize: 32, tolerance: 0)

        // Centralised baseline: the pooled rows, the same optimiser, as many epochs as rounds × local epochs.
        let (baseline, _) = LocalTrainer.train(.zero(features: 30), on: guest + host, epochs: training.rounds * training.localEpochs, parameters: training)
        let baselineAUC = Metrics.auc(scores: (0..<test.count).map { baseline.probability(test.row($0)) }, labels: test.labels)

        // Federated: two banks, each evaluating half of the test rows.
        let parties = ["guest", "host"]
        let parameters = HorizontalLRParameters(jobID: "job-hlr", clients: parties, server: "aggregator", features: 30, training: training,
                                                roundTimeout: .seconds(30))
        let wire = WireLog()
        let tap: @Sendable (String, [UInt8]) -> Void = { wire.append($0, $1) }
        let board = SumSwitchboard(expected: Set(parties), server: "aggregator", tap: tap)
        var modelChannels: [String: any MessageChannel] = [:], clientEnds: [String: any MessageChannel] = [:]
        for p in parties {
            let (c, s) = InMemoryChannel.pair(p, "aggregator", tap: tap)
            clientEnds[p] = c
            modelChannels[p] = s
        }
        let data = ["guest": guest, "host": host]
        let evaluation = ["guest": test.subset(Array(0..<57)), "host": test.subset(Array(57..<114))]
        let auth = ["guest": try authentication("guest"), "host": try authentication("host")]
        async let server = HorizontalLRServer(parameters: parameters, modelChannels: modelChannels, sumChannels: { await board.take($0) }).run()
        let clients = try await withThrowingTaskGroup(of: (String, HorizontalLRClient.Outcome).self) { group in
            for p in parties {
                let client = HorizontalLRClient(parameters: parameters, me: p, training: data[p]!, evaluation: evaluation[p]!,
                                                modelChannel: clientEnds[p]!, withSum: { stream, body in try await body(await board.open(stream, from: p)) },
                                                authentication: auth[p]!)
                group.addTask { (p, try await client.run()) }
            }
            var out: [String: HorizontalLRClient.Outcome] = [:]
            for try await (p, o) in group { out[p] = o }
            return out
        }
        let outcome = try await server

        XCTAssertEqual(outcome.rounds.count, 30)
        XCTAssertTrue(outcome.rounds.allSatisfy { $0.contributors == parties && $0.samples == 455 })
        XCTAssertLessThan(outcome.rounds.last!.loss, outcome.rounds.first!.loss)
        XCTAssertEqual(outcome.evaluation.count, 114)
        XCTAssertEqual(clients["guest"]!.model, outcome.model, "every party ends with the global model")
        XCTAssertEqual(clients["host"]!.roundsContributed, Array(1...30))
        // The consortium's AUC (from securely summed histograms) is the model's AUC on the pooled test rows…
        let federatedAUC = Metrics.auc(scores: (0..<test.count).map { outcome.model.probability(test.row($0)) }, labels: test.labels)
        XCTAssertEqual(outcome.evaluation.auc, federatedAUC, accuracy: 0.002)
        // … and within 0.01 of the centralised baseline.
        XCTAssertEqual(federatedAUC, baselineAUC, accuracy: 0.01, "federated \(federatedAUC), baseline \(baselineAUC)")
        XCTAssertGreaterThan(federatedAUC, 0.95)
        // No party's rows on the wire: none of the guest's feature values as 8-byte doubles.
        let sent = WireIndex(wire.entries.filter { $0.sender == "guest" }.flatMap(\.bytes))
        for v in guest.features.prefix(200) where v != 0 {
            XCTAssertFalse(sent.contains(withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) }), "feature value \(v) on the wire")
        }
    }

    /// A party that crashes in round 3: the training goes on with the others, and every round records who contributed.
    func testAPartyLostMidTrainingIsLeftOutOfLaterRounds() async throws {
        let guest = try Self.load("breast_homo_guest.csv"), host = try Self.load("breast_homo_host.csv")
        let test = try Self.load("breast_homo_test.csv")
        let data = ["bank-a": guest.subset(Array(0..<113)), "bank-b": guest.subset(Array(113..<227)), "bank-c": host]
        let parties = ["bank-a", "bank-b", "bank-c"]
        let training = TrainingParameters(rounds: 8, localEpochs: 1, learningRate: 0.1, l2: 0.001, batchSize: 32, tolerance: 0)
        let parameters = HorizontalLRParameters(jobID: "job-hlr-drop", clients: parties, server: "aggregator", features: 30, training: training,
                                                threshold: 2, roundTimeout: .seconds(30))
        let board = SumSwitchboard(expected: Set(parties), server: "aggregator", tap: { _, _ in })
        var modelChannels: [String: any MessageChannel] = [:], clientEnds: [String: InMemoryChannel] = [:]
        for p in parties {
            let (c, s) = InMemoryChannel.pair(p, "aggregator")
            clientEnds[p] = c
            modelChannels[p] = s
        }
        var auth: [String: KeyAuthentication] = [:]
        for p in parties { auth[p] = try authentication(p) }
        struct Crash: Error {}
        async let server = HorizontalLRServer(parameters: parameters, modelChannels: modelChannels, sumChannels: { await board.take($0) }).run()
        let results = await withTaskGroup(of: (String, Bool).self) { group in
            for p in parties {
                let end = clientEnds[p]!
                let client = HorizontalLRClient(
                    parameters: parameters, me: p, training: data[p]!, evaluation: test, modelChannel: end,
                    withSum: { stream, body in
                        if p == "bank-c" && stream == "round-3" {
                            await end.close()
                            await board.drop(p)
                            throw Crash()
                        }
                        try await body(await board.open(stream, from: p))
                    },
                    authentication: auth[p]!)
                group.addTask { (p, (try? await client.run()) != nil) }
            }
            var out: [String: Bool] = [:]
            for await (p, ok) in group { out[p] = ok }
            return out
        }
        let outcome = try await server
        XCTAssertEqual(results, ["bank-a": true, "bank-b": true, "bank-c": false])
        XCTAssertEqual(outcome.rounds.count, 8)
        for r in outcome.rounds {
            XCTAssertEqual(r.contributors, r.round < 3 ? parties : ["bank-a", "bank-b"], "round \(r.round)")
            XCTAssertEqual(r.samples, r.round < 3 ? 455 : 227, "round \(r.round)")
        }
        XCTAssertEqual(outcome.evaluatedBy, ["bank-a", "bank-b"])
        XCTAssertEqual(outcome.evaluation.count, 2 * 114, "each survivor scored the test rows")
        XCTAssertGreaterThan(outcome.evaluation.auc, 0.95)
    }
}
