import MPCBench
import Foundation
import MPCLearning
import MPCNode
import MPCTestSupport
import XCTest

/// A horizontal train-lr job between in-process nodes (TLS, SQLite, policies) on FATE's breast_homo split:
/// the model must match a centralised baseline trained on the pooled rows with the same hyper-parameters.
final class TrainingJobTests: XCTestCase {
    /// FATE's example data: `MPCNODE_FATE_DATA`, or ../shared/data/fate beside the project (where CI has it).
    static var data: URL {
        if let path = ProcessInfo.processInfo.environment["MPCNODE_FATE_DATA"] { return URL(fileURLWithPath: path) }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("shared/data/fate")
    }

    static func rows(_ text: String) throws -> LabeledRows { try LabeledRows(csv: text, labelled: true) }

    func testHorizontalTrainingOnBreastHomoMatchesTheCentralisedBaseline() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mpcnode-lr-\(UUID().uuidString)")
        removeAtTearDown(directory)
        let columns = (0..<30).map { "x\($0)" } + ["y"]
        let consortium = try LocalConsortium.create(in: directory, banks: ["bank-a", "bank-b"], regulators: ["regulator"]) { _ in
            """
            policy:
              coordinators: [coordinator]
              datasets:
                breast:
                  columns: [\(columns.joined(separator: ", "))]
                  protocols: [train-lr]
                  result_recipients: [regulator]
                  min_set_size: 50
                breast_test:
                  columns: [\(columns.joined(separator: ", "))]
                  protocols: [train-lr]
                  result_recipients: [regulator]
                  min_set_size: 1
            """
        }
        let guestText = try String(contentsOf: Self.data.appendingPathComponent("breast_homo_guest.csv"), encoding: .utf8)
        let hostText = try String(contentsOf: Self.data.appendingPathComponent("breast_homo_host.csv"), encoding: .utf8)
        let testLines = try String(contentsOf: Self.data.appendingPathComponent("breast_homo_test.csv"), encoding: .utf8).split(separator: "\n")
        let header = String(testLines[0])
        let splits = ["bank-a": ([header] + testLines[1...57].map(String.init)).joined(separator: "\n") + "\n",
                      "bank-b": ([header] + testLines[58...].map(String.init)).joined(separator: "\n") + "\n"]
        for (bank, training) in [("bank-a", guestText), ("bank-b", hostText)] {
            for (name, text) in [("breast", training), ("breast_test", splits[bank]!)] {
                try consortium.importCSV(text, into: bank, dataset: name, idColumn: "id", file: "\(bank)-\(name)")
            }
        }
        let taps = WireTaps()
        let nodes = try await consortium.startAll(logger: ConsortiumFixture.quietLogger, transportOptions: taps.options(for:))
        stopAtTearDown(nodes)

        let parameters = TrainingParameters(rounds: 30, localEpochs: 1, learningRate: 0.1, l2: 0.001, batchSize: 32, tolerance: 0)
        let jobID = try await nodes["coordinator"]!.engine.submit(JobSubmission(
            protocolName: "train-lr", parties: ["bank-a", "bank-b"].map { .init(nodeID: $0, dataset: "breast", column: "") },
            deliverTo: [], cardinalityOnly: false, group: "",
            training: .init(aggregator: "regulator", features: (0..<30).map { "x\($0)" }, label: "y", parameters: parameters,
                            evalDataset: "breast_test", holdout: 0)))
        let job = try await ConsortiumFixture.waitForFinal(nodes["coordinator"]!, jobID: jobID, seconds: 120)
        XCTAssertEqual(job.state, .succeeded, job.reason ?? "")

        let model = try ModelRepository(store: nodes["regulator"]!.store).get(jobID)
        XCTAssertEqual(model.rounds.count, 30)
        XCTAssertTrue(model.rounds.allSatisfy { $0.contributors == ["bank-a", "bank-b"] && $0.samples == 455 })
        XCTAssertEqual(model.evaluatedRows, 114)
        XCTAssertEqual(model.datasets, ["bank-a": "breast", "bank-b": "breast"])
        for bank in ["bank-a", "bank-b"] {
            let theirs = try ModelRepository(store: nodes[bank]!.store).get(jobID)
            XCTAssertEqual(theirs.model, model.model, bank)
            XCTAssertEqual(theirs.auc, model.auc)
        }
        // Centralised baseline on the pooled rows, evaluated exactly on the pooled test rows.
        let (baseline, _) = LocalTrainer.train(.zero(features: 30), on: try Self.rows(guestText) + Self.rows(hostText), epochs: 30, parameters: parameters)
        let test = try Self.rows(testLines.map(String.init).joined(separator: "\n"))
        let baselineAUC = Metrics.auc(scores: (0..<test.count).map { baseline.probability(test.row($0)) }, labels: test.labels)
        XCTAssertEqual(try XCTUnwrap(model.auc), baselineAUC, accuracy: 0.01)
        // No row on the wire: none of bank-a's feature values, as text or as 8-byte doubles.
        let wire = WireIndex(taps.sent(by: "bank-a"))
        for field in guestText.split(separator: "\n").dropFirst().prefix(20).flatMap({ $0.split(separator: ",").dropFirst(2) }) where field.count >= 8 {
            XCTAssertFalse(wire.contains(Array(field.utf8)), "\(field) on the wire")
            XCTAssertFalse(wire.contains(withUnsafeBytes(of: Double(field)!.bitPattern.littleEndian) { Array($0) }))
        }
        for id in ["bank-a", "bank-b", "regulator", "coordinator"] {
            XCTAssertFalse(try AuditLog(store: nodes[id]!.store).records(jobID: jobID).isEmpty, id)
        }
    }

    func testVerticalTrainingAlignsByPSIAndMatchesTheCentralisedBaseline() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mpcnode-vlr-\(UUID().uuidString)")
        removeAtTearDown(directory)
        let guestColumns = ["id", "y"] + (0..<10).map { "x\($0)" }, hostColumns = ["id"] + (0..<20).map { "x\($0)" }
        let consortium = try LocalConsortium.create(in: directory, banks: ["bank-a", "telco"], regulators: ["operator"], policy: { node in
            """
            policy:
              coordinators: [coordinator]
              min_paillier_bits: 1024
              datasets:
                patients:
                  columns: [\((node == "bank-a" ? guestColumns : hostColumns).joined(separator: ", "))]
                  protocols: [train-lr, predict]
                  result_recipients: [operator, bank-a]
                  min_set_size: 50
            """
        }, regulatorPolicy: "policy:\n  coordinators: [coordinator]\n  min_paillier_bits: 1024")
        // The host lacks every tenth patient, and lists its rows in another order: the alignment must find the 512 common ones.
        let guestText = try String(contentsOf: Self.data.appendingPathComponent("breast_hetero_guest.csv"), encoding: .utf8)
        let hostLines = try String(contentsOf: Self.data.appendingPathComponent("breast_hetero_host.csv"), encoding: .utf8).split(separator: "\n")
        let kept = hostLines.dropFirst().filter { Int($0.prefix { $0 != "," })! % 10 != 0 }.reversed()
        let hostText = ([String(hostLines[0])] + kept.map(String.init)).joined(separator: "\n") + "\n"
        for (node, text) in [("bank-a", guestText), ("telco", hostText)] {
            try consortium.importCSV(text, into: node, dataset: "patients", idColumn: "id")
        }
        let taps = WireTaps()
        let nodes = try await consortium.startAll(logger: ConsortiumFixture.quietLogger, transportOptions: taps.options(for:))
        stopAtTearDown(nodes)
        let parameters = TrainingParameters(rounds: 6, localEpochs: 1, learningRate: 0.15, l2: 0.001, batchSize: 192, tolerance: 0)
        let jobID = try await nodes["coordinator"]!.engine.submit(JobSubmission(
            protocolName: "train-lr", parties: [.init(nodeID: "bank-a", dataset: "patients", column: "id"), .init(nodeID: "telco", dataset: "patients", column: "id")],
            deliverTo: [], cardinalityOnly: false, group: "",
            training: .init(mode: "vertical", aggregator: "operator", features: [], label: "y", parameters: parameters,
                            partyFeatures: ["bank-a": (0..<10).map { "x\($0)" }, "telco": (0..<20).map { "x\($0)" }], keyBits: 1024)))
        let job = try await ConsortiumFixture.waitForFinal(nodes["coordinator"]!, jobID: jobID, seconds: 300)
        XCTAssertEqual(job.state, .succeeded, job.reason ?? "")
        for id in ["bank-a", "telco"] {
            let state = try await ConsortiumFixture.waitForFinal(nodes[id]!, jobID: jobID).state
            XCTAssertEqual(state, .succeeded, id)
        }
        let guest = try ModelRepository(store: nodes["bank-a"]!.store).get(jobID)
        let host = try ModelRepository(store: nodes["telco"]!.store).get(jobID)
        let arbiter = try ModelRepository(store: nodes["operator"]!.store).get(jobID)
        XCTAssertEqual([guest.role, host.role, arbiter.role], ["guest", "host", "arbiter"])
        XCTAssertEqual(guest.weights.count, 10)
        XCTAssertEqual(host.weights.count, 20)
        XCTAssertEqual(host.bias, 0)
        XCTAssertTrue(arbiter.weights.isEmpty, "the arbiter holds no coefficients")
        // A fifth of the 512 common rows (the same at both sides) is held out; the guest scores them jointly.
        XCTAssertEqual((guest.rounds.first?.samples ?? 0) + (guest.evaluatedRows ?? 0), 512)
        XCTAssertGreaterThan(guest.evaluatedRows ?? 0, 60)
        XCTAssertEqual(host.rounds.first?.samples, guest.rounds.first?.samples)
        XCTAssertGreaterThan(guest.auc ?? 0, 0.95)
        XCTAssertNil(host.auc, "the host learns no metrics")
        XCTAssertEqual(arbiter.rounds.map(\.loss), guest.rounds.map(\.loss))

        // The joint model on the 512 common patients, against a centralised baseline on the joined features.
        var features: [Double] = [], labels: [Double] = []
        let hostByID = Dictionary(uniqueKeysWithValues: kept.map { line -> (String, [Double]) in
            let f = line.split(separator: ","); return (String(f[0]), f.dropFirst().map { Double($0)! })
        })
        for line in guestText.split(separator: "\n").dropFirst() {
            let f = line.split(separator: ",")
            guard let h = hostByID[String(f[0])] else { continue }
            labels.append(Double(f[1])!)
            features += f.dropFirst(2).map { Double($0)! } + h
        }
        let joined = LabeledRows(features: features, labels: labels, width: 30)
        XCTAssertEqual(joined.count, 512)
        let federated = LogisticModel(weights: (0..<10).map { guest.weights["x\($0)"]! } + (0..<20).map { host.weights["x\($0)"]! }, bias: guest.bias)
        let (baseline, _) = LocalTrainer.train(.zero(features: 30), on: joined, epochs: parameters.rounds, parameters: parameters)
        func auc(_ m: LogisticModel) -> Double { Metrics.auc(scores: (0..<joined.count).map { m.probability(joined.row($0)) }, labels: joined.labels) }
        XCTAssertEqual(auc(federated), auc(baseline), accuracy: 0.01)
        // Joint scoring of the common rows with the trained blocks (predict): scores at the guest only.
        let predict = try await nodes["coordinator"]!.engine.submit(JobSubmission(
            protocolName: "predict", parties: [.init(nodeID: "bank-a", dataset: "patients", column: "id"), .init(nodeID: "telco", dataset: "patients", column: "id")],
            deliverTo: [], cardinalityOnly: false, group: "", training: .predict(model: jobID)))
        let predicted = try await ConsortiumFixture.waitForFinal(nodes["coordinator"]!, jobID: predict, seconds: 60)
        XCTAssertEqual(predicted.state, .succeeded, predicted.reason ?? "")
        _ = try await ConsortiumFixture.waitForFinal(nodes["bank-a"]!, jobID: predict)
        let scores = try JobRepository(store: nodes["bank-a"]!.store).result(jobID: predict, limit: 10_000)
        XCTAssertEqual(scores.kind, "scores")
        XCTAssertEqual(scores.cardinality, 512)
        var expected: [String: Double] = [:]
        var k = 0
        for line in guestText.split(separator: "\n").dropFirst() {
            let id = String(line.prefix { $0 != "," })
            guard hostByID[id] != nil else { continue }
            expected[id] = federated.probability(joined.row(k))
            k += 1
        }
        for (id, score) in zip(scores.identifiers ?? [], scores.values ?? []) {
            XCTAssertEqual(score, expected[id]!, accuracy: 1e-9, id)
        }
        XCTAssertThrowsError(try JobRepository(store: nodes["telco"]!.store).result(jobID: predict, limit: 10), "the host gets no scores")

        // Neither the guest's labels nor any feature value crosses the wire in the clear.
        for (node, text) in [("bank-a", guestText), ("telco", hostText)] {
            let wire = WireIndex(taps.sent(by: node))
            for field in text.split(separator: "\n").dropFirst().prefix(15).flatMap({ $0.split(separator: ",").dropFirst(node == "bank-a" ? 2 : 1) }) where field.count >= 8 {
                XCTAssertFalse(wire.contains(Array(field.utf8)), "\(node) sent \(field)")
                XCTAssertFalse(wire.contains(withUnsafeBytes(of: Double(field)!.bitPattern.littleEndian) { Array($0) }), "\(node) sent \(field) as a double")
            }
        }
    }
}
