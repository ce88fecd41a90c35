import Foundation
import MPCLearning
import MPCNode
import MPCTestSupport
import XCTest

/// A horizontal train-lr job between in-process nodes (TLS, SQLite, policies) on FATE's breast_homo split:
/// the model must match a centralised baseline trained on the pooled rows with the same hyper-parameters.
final class TrainingJobTests: XCTestCase {
    static var data: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("shared/data/fate")
    }

    static func rows(_ text: String) -> LabeledRows {
        var features: [Double] = [], labels: [Double] = []
        for line in text.split(separator: "\n").dropFirst() {
            let f = line.split(separator: ",").map { Double($0)! }
            labels.append(f[1])
            features.append(contentsOf: f[2...])
        }
        return LabeledRows(features: features, labels: labels, width: 30)
    }

    func testHorizontalTrainingOnBreastHomoMatchesTheCentralisedBaseline() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mpcnode-lr-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
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
            let catalog = DatasetCatalog(store: try NodeStore(path: consortium.configuration(of: bank).databasePath))
            for (name, text) in [("breast", training), ("breast_test", splits[bank]!)] {
                let path = directory.appendingPathComponent("\(bank)-\(name).csv")
                try text.write(to: path, atomically: true, encoding: .utf8)
                _ = try catalog.importCSV(DatasetImportRequest(dataset: name, csvPath: path.path, idColumn: "id"))
            }
        }
        let taps = WireTaps()
        let nodes = try await consortium.startAll(logger: ConsortiumFixture.quietLogger, transportOptions: taps.options(for:))
        defer { Task { for n in nodes.values { await n.stop() } } }

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
        let (baseline, _) = LocalTrainer.train(.zero(features: 30), on: Self.rows(guestText) + Self.rows(hostText), epochs: 30, parameters: parameters)
        let test = Self.rows(testLines.map(String.init).joined(separator: "\n"))
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
}
