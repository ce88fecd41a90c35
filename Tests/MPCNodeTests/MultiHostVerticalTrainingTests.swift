import MPCBench
import Foundation
import MPCLearning
import MPCNode
import MPCTestSupport
import XCTest

/// Vertical training with one guest and two hosts between in-process nodes (TLS, SQLite, policies): the
/// breast_hetero host's 20 features split between a telecom operator (x0…x9) and a credit bureau
/// (x10…x19), each lacking different patients. The alignment keeps the patients all three hold, tells each
/// host only those, and the joint model matches a centralised baseline; `predict` scores with all three.
final class MultiHostVerticalTrainingTests: XCTestCase {
    struct Setup {
        var nodes: [String: NodeRuntime]
        var taps: WireTaps
        var guestText: String
        var hostRows: [[String]]
        var telcoRows: [[String]]
        var bureauRows: [[String]]
        var common: Set<String>
    }

    let telcoFeatures = (0..<10).map { "x\($0)" }, bureauFeatures = (10..<20).map { "x\($0)" }
    let parties: [JobSubmission.Party] = ["bank-a", "telco", "bureau"].map { .init(nodeID: $0, dataset: "patients", column: "id") }

    /// bank-a (guest, label + x0…x9 of all 569 patients), telco (x0…x9, lacking every tenth patient), bureau
    /// (x10…x19, lacking every seventh), operator (arbiter), coordinator; started.
    func start(in directory: URL) async throws -> Setup {
        let columns = ["bank-a": ["id", "y"] + (0..<10).map { "x\($0)" }, "telco": ["id"] + telcoFeatures, "bureau": ["id"] + bureauFeatures]
        let consortium = try LocalConsortium.create(in: directory, banks: ["bank-a", "telco", "bureau"], regulators: ["operator"], policy: { node in
            """
            policy:
              coordinators: [coordinator]
              min_paillier_bits: 1024
              datasets:
                patients:
                  columns: [\(columns[node]!.joined(separator: ", "))]
                  protocols: [train-lr, predict]
                  result_recipients: [operator, bank-a]
                  min_set_size: 50
            """
        }, regulatorPolicy: "policy:\n  coordinators: [coordinator]\n  min_paillier_bits: 1024")
        // breast_hetero: the guest has all 569 patients; the telco lacks every tenth, the bureau every seventh.
        let guestText = try String(contentsOf: TrainingJobTests.data.appendingPathComponent("breast_hetero_guest.csv"), encoding: .utf8)
        let hostRows = try String(contentsOf: TrainingJobTests.data.appendingPathComponent("breast_hetero_host.csv"), encoding: .utf8)
            .split(separator: "\n").dropFirst().map { $0.split(separator: ",").map(String.init) }
        func csv(_ header: [String], _ rows: [[String]]) -> String { ([header] + rows).map { $0.joined(separator: ",") }.joined(separator: "\n") + "\n" }
        let telcoRows = hostRows.filter { Int($0[0])! % 10 != 0 }.map { [$0[0]] + $0[1...10] }
        let bureauRows = hostRows.filter { Int($0[0])! % 7 != 0 }.reversed().map { [$0[0]] + $0[11...20] }
        let common = Set(telcoRows.map { $0[0] }).intersection(bureauRows.map { $0[0] })
        for (node, text) in [("bank-a", guestText), ("telco", csv(columns["telco"]!, telcoRows)), ("bureau", csv(columns["bureau"]!, bureauRows))] {
            try consortium.importCSV(text, into: node, dataset: "patients", idColumn: "id")
        }
        let taps = WireTaps()
        let nodes = try await consortium.startAll(logger: ConsortiumFixture.quietLogger, transportOptions: taps.options(for:))
        return Setup(nodes: nodes, taps: taps, guestText: guestText, hostRows: hostRows, telcoRows: telcoRows, bureauRows: bureauRows, common: common)
    }

    func submitTraining(_ nodes: [String: NodeRuntime], epochs: Int) async throws -> String {
        let parameters = TrainingParameters(rounds: epochs, localEpochs: 1, learningRate: 0.15, l2: 0.001, batchSize: 192, tolerance: 0)
        return try await nodes["coordinator"]!.engine.submit(JobSubmission(
            protocolName: "train-lr", parties: parties, deliverTo: [], cardinalityOnly: false, group: "",
            training: .init(mode: "vertical", aggregator: "operator", features: [], label: "y", parameters: parameters,
                            partyFeatures: ["bank-a": (0..<10).map { "x\($0)" }, "telco": telcoFeatures, "bureau": bureauFeatures], keyBits: 1024)))
    }

    func testAGuestAndTwoHostsAlignTrainAndPredict() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mpcnode-vlr3-\(UUID().uuidString)")
        removeAtTearDown(directory)
        let setup = try await start(in: directory)
        let nodes = setup.nodes, taps = setup.taps, guestText = setup.guestText, hostRows = setup.hostRows
        let telcoRows = setup.telcoRows, bureauRows = setup.bureauRows, common = setup.common
        stopAtTearDown(nodes)
        let parameters = TrainingParameters(rounds: 6, localEpochs: 1, learningRate: 0.15, l2: 0.001, batchSize: 192, tolerance: 0)
        let jobID = try await submitTraining(nodes, epochs: 6)
        let job = try await ConsortiumFixture.waitForFinal(nodes["coordinator"]!, jobID: jobID, seconds: 300)
        XCTAssertEqual(job.state, .succeeded, job.reason ?? "")
        for id in ["bank-a", "telco", "bureau", "operator"] {
            let state = try await ConsortiumFixture.waitForFinal(nodes[id]!, jobID: jobID).state
            XCTAssertEqual(state, .succeeded, id)
        }
        // The coordinator follows the arbiter too: its last progress is the last epoch with its loss.
        let arbiterRow = job.parties.first { $0.nodeID == "operator" }
        XCTAssertEqual(arbiterRow?.dataset, "(arbiter)")
        XCTAssertEqual(arbiterRow?.state, "succeeded")
        // Forwarded progress arrives on its own (best effort), so wait for the arbiter's last epoch a while.
        var arbiterProgress = arbiterRow?.progress
        for _ in 0..<100 where arbiterProgress?.done != 6 {
            try await Task.sleep(for: .milliseconds(100))
            arbiterProgress = try JobRepository(store: nodes["coordinator"]!.store).view(jobID: jobID).parties.first { $0.nodeID == "operator" }?.progress
        }
        XCTAssertEqual(arbiterProgress?.unit, "epochs")
        XCTAssertEqual(arbiterProgress?.total, 6)
        XCTAssertEqual(arbiterProgress?.remainingMs, 0)
        let models = try ["bank-a", "telco", "bureau", "operator"].map { try ModelRepository(store: nodes[$0]!.store).get(jobID) }
        let (guest, telco, bureau, arbiter) = (models[0], models[1], models[2], models[3])
        XCTAssertEqual([guest.role, telco.role, bureau.role, arbiter.role], ["guest", "host", "host", "arbiter"])
        XCTAssertEqual([guest.weights.count, telco.weights.count, bureau.weights.count, arbiter.weights.count], [10, 10, 10, 0])
        XCTAssertEqual(Set(telco.weights.keys), Set(telcoFeatures))
        // Every party trains on the patients all three hold, and only those (a host is not told which of its
        // patients the guest holds when the other host lacks them).
        let aligned = (guest.rounds.first?.samples ?? 0) + (guest.evaluatedRows ?? 0)
        XCTAssertEqual(aligned, common.count)
        XCTAssertEqual(telco.rounds.first?.samples, guest.rounds.first?.samples)
        XCTAssertEqual(bureau.rounds.first?.samples, guest.rounds.first?.samples)
        XCTAssertEqual(arbiter.rounds.map(\.loss), guest.rounds.map(\.loss))
        XCTAssertEqual(arbiterProgress?.loss, arbiter.rounds.last?.loss, "the coordinator sees the last epoch's loss")
        XCTAssertEqual(telco.rounds.map(\.loss), guest.rounds.map(\.loss))
        XCTAssertGreaterThan(guest.auc ?? 0, 0.95)

        // The joint model on the common patients against a centralised baseline on the joined 30 features.
        let hostByID = Dictionary(uniqueKeysWithValues: hostRows.map { ($0[0], $0.dropFirst().map { Double($0)! }) })
        var features: [Double] = [], labels: [Double] = [], ids: [String] = []
        for line in guestText.split(separator: "\n").dropFirst() {
            let f = line.split(separator: ",").map(String.init)
            guard common.contains(f[0]) else { continue }
            ids.append(f[0])
            labels.append(Double(f[1])!)
            features += f.dropFirst(2).map { Double($0)! } + hostByID[f[0]]!
        }
        let joined = LabeledRows(features: features, labels: labels, width: 30)
        let federated = LogisticModel(weights: (0..<10).map { guest.weights["x\($0)"]! } + telcoFeatures.map { telco.weights[$0]! }
                                          + bureauFeatures.map { bureau.weights[$0]! }, bias: guest.bias)
        let (baseline, _) = LocalTrainer.train(.zero(features: 30), on: joined, epochs: parameters.rounds, parameters: parameters)
        func auc(_ m: LogisticModel) -> Double { Metrics.auc(scores: (0..<joined.count).map { m.probability(joined.row($0)) }, labels: joined.labels) }
        XCTAssertEqual(auc(federated), auc(baseline), accuracy: 0.01)

        // predict with the three blocks: one score per common patient, at the guest only.
        let predict = try await nodes["coordinator"]!.engine.submit(JobSubmission(
            protocolName: "predict", parties: parties, deliverTo: [], cardinalityOnly: false, group: "", training: .predict(model: jobID)))
        let predicted = try await ConsortiumFixture.waitForFinal(nodes["coordinator"]!, jobID: predict, seconds: 60)
        XCTAssertEqual(predicted.state, .succeeded, predicted.reason ?? "")
        _ = try await ConsortiumFixture.waitForFinal(nodes["bank-a"]!, jobID: predict)
        let scores = try JobRepository(store: nodes["bank-a"]!.store).result(jobID: predict, limit: 10_000)
        XCTAssertEqual(scores.cardinality, common.count)
        let expected = Dictionary(uniqueKeysWithValues: ids.enumerated().map { ($0.element, federated.probability(joined.row($0.offset))) })
        for (id, score) in zip(scores.identifiers ?? [], scores.values ?? []) { XCTAssertEqual(score, expected[id]!, accuracy: 1e-9, id) }
        for host in ["telco", "bureau"] {
            XCTAssertThrowsError(try JobRepository(store: nodes[host]!.store).result(jobID: predict, limit: 10), "\(host) gets no scores")
        }

        // No label or feature value crosses the wire in the clear, from any party.
        for (node, rows) in [("bank-a", guestText.split(separator: "\n").dropFirst().map { $0.split(separator: ",").map(String.init) }),
                             ("telco", telcoRows), ("bureau", bureauRows)] {
            let wire = WireIndex(taps.sent(by: node))
            for row in rows.prefix(15) {
                for field in row.dropFirst(node == "bank-a" ? 2 : 1) where field.count >= 8 {
                    XCTAssertFalse(wire.contains(Array(field.utf8)), "\(node) sent \(field)")
                    XCTAssertFalse(wire.contains(withUnsafeBytes(of: Double(field)!.bitPattern.littleEndian) { Array($0) }), "\(node) sent \(field) as a double")
                }
            }
        }
    }

    /// The bureau stops in the middle of the training: the job fails on every node, naming what happened,
    /// and no node stores a model.
    func testAHostThatStopsMidTrainingFailsTheJobEverywhere() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mpcnode-vlr3-\(UUID().uuidString)")
        removeAtTearDown(directory)
        let nodes = try await start(in: directory).nodes
        stopAtTearDown(nodes)
        let jobID = try await submitTraining(nodes, epochs: 500)
        let guestJobs = JobRepository(store: nodes["bank-a"]!.store)
        func epochsDone() -> Int { (try? guestJobs.view(jobID: jobID).progress?.done) ?? 0 }
        for _ in 0..<600 where epochsDone() < 2 { try await Task.sleep(for: .milliseconds(50)) }
        XCTAssertGreaterThanOrEqual(epochsDone(), 2, "training under way")
        await nodes["bureau"]!.stop()
        let job = try await ConsortiumFixture.waitForFinal(nodes["coordinator"]!, jobID: jobID, seconds: 120)
        XCTAssertEqual(job.state, .failed)
        for id in ["bank-a", "telco", "operator"] {
            let view = try await ConsortiumFixture.waitForFinal(nodes[id]!, jobID: jobID, seconds: 120)
            XCTAssertEqual(view.state, .failed, id)
            XCTAssertFalse((view.reason ?? "").isEmpty, "\(id) says why")
            XCTAssertThrowsError(try ModelRepository(store: nodes[id]!.store).get(jobID), "\(id) stores no model")
        }
        // Whichever report reached the coordinator first (the bureau's own, or a peer's that lost it) names it.
        let reasons = [job.reason ?? ""] + job.parties.map { $0.reason ?? "" }
        XCTAssertTrue(reasons.contains { $0.contains("bureau") }, "the coordinator's view names the bureau: \(reasons)")
    }
}
