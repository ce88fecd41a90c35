import MPCBench
import Foundation
import MPCNode
import MPCTestSupport
import XCTest

/// Horizontal training between real `mpcnode serve` processes: a bank that exits abruptly in the first
/// round is left out of the later ones, the training completes, and the model says who contributed when.
final class TrainingDaemonTests: XCTestCase {
    func testABankLostInTheFirstRoundIsLeftOutOfTheRest() async throws {
        let banks = ["bank-a", "bank-b", "bank-c", "bank-d"]  // default threshold ⌊2·4/3⌋ + 1 = 3
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mpcnode-lrd-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let columns = (0..<30).map { "x\($0)" } + ["y"]
        let consortium = try LocalConsortium.create(in: directory, banks: banks, regulators: ["regulator"]) { _ in
            """
            policy:
              coordinators: [coordinator]
              datasets:
                patients:
                  columns: [\(columns.joined(separator: ", "))]
                  protocols: [train-lr]
                  result_recipients: [regulator]
                  min_set_size: 50
            """
        }
        // breast_homo_guest and _host, each split in two.
        var lines: [String] = []
        var header = ""
        for file in ["breast_homo_guest.csv", "breast_homo_host.csv"] {
            let all = try String(contentsOf: TrainingJobTests.data.appendingPathComponent(file), encoding: .utf8).split(separator: "\n").map(String.init)
            header = all[0]
            lines += all.dropFirst()
        }
        let quarter = (lines.count + 3) / 4
        for (i, bank) in banks.enumerated() {
            try consortium.importCSV(([header] + lines[(i * quarter)..<min(lines.count, (i + 1) * quarter)]).joined(separator: "\n") + "\n",
                                     into: bank, dataset: "patients", idColumn: "id")
        }
        let logs = directory.appendingPathComponent("logs")
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        var daemons: [String: DaemonProcessTests.Daemon] = [:]
        for m in consortium.members {
            let env = m.id == "bank-d" ? ["MPCNODE_FAULT_EXIT_AFTER_SECAGG_ROUND": "maskedInput"] : [:]
            daemons[m.id] = try DaemonProcessTests.Daemon(id: m.id, configuration: m.configurationPath, log: logs.appendingPathComponent("\(m.id).log"), environment: env)
        }
        defer { for d in daemons.values where d.process.isRunning { d.process.terminate(); d.process.waitUntilExit() } }
        func socket(_ id: String) throws -> URL { try consortium.configuration(of: id).adminSocketPath }
        for id in daemons.keys { try await DaemonProcessTests.waitForSocket(try socket(id)) }

        let submitted = try await AdminClient(socketPath: socket("coordinator")).send(AdminRequest(command: .submitJob, submission: JobSubmission(
            protocolName: "train-lr", parties: banks.map { .init(nodeID: $0, dataset: "patients", column: "") },
            deliverTo: [], cardinalityOnly: false, group: "",
            training: .init(aggregator: "regulator", features: (0..<30).map { "x\($0)" }, label: "y",
                            parameters: .init(rounds: 5, localEpochs: 1, learningRate: 0.1, l2: 0.001, batchSize: 32, tolerance: 0), holdout: 0.2))))
        let jobID = try XCTUnwrap(submitted.jobID, submitted.error ?? "")
        let started = Date()
        let coordinator = try await DaemonProcessTests.finalJob(try socket("coordinator"), jobID, seconds: 120)
        XCTAssertEqual(coordinator?.state, .succeeded, coordinator?.reason ?? "")
        XCTAssertLessThan(Date().timeIntervalSince(started), 50, "later rounds must not wait the session timeout for the lost bank")
        let shown = try await AdminClient(socketPath: socket("regulator")).send(AdminRequest(command: .showModel, jobID: jobID))
        let model = try XCTUnwrap(shown.model, shown.error ?? "")
        XCTAssertEqual(model.rounds.count, 5)
        XCTAssertEqual(model.rounds.first?.contributors, banks, "bank-d sent its masked input in round 1 before exiting")
        for r in model.rounds.dropFirst() { XCTAssertEqual(r.contributors, ["bank-a", "bank-b", "bank-c"], "round \(r.round)") }
        XCTAssertGreaterThan(model.auc ?? 0, 0.9)
        daemons["bank-d"]!.process.waitUntilExit()
        XCTAssertEqual(daemons["bank-d"]!.process.terminationStatus, 137)
    }
}
