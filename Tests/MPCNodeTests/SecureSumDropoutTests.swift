import MPCBench
import Foundation
import MPCNode
import MPCTestSupport
import XCTest

/// Branch daemons (real processes, TLS, SQLite) that die abruptly right after a given round of secure
/// aggregation. The regulator's report must hold exactly the plain sum of the survivors; with fewer
/// survivors than the threshold the job fails everywhere and no report is stored.
final class SecureSumDropoutTests: XCTestCase {
    func testBranchesDyingAtEachRound() async throws {
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: DaemonProcessTests.binary.path),
                      "\(DaemonProcessTests.binary.path) is missing: build with `swift build --build-tests` first")
        let branches = Self.branches
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mpcnode-drop-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let logs = directory.appendingPathComponent("logs")
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)

        // (branches that die, after which round of the counts' sum, threshold) → false: the report leaves them
        // out; nil: the job fails with that reason. A branch that dies once its counts are in the sum cannot
        // take part in the measures' sum, so the job fails: counts of one set of branches and measures of
        // another would single it out.
        let lost = "did not come back for the measures"
        let scenarios: [([String], String, Int?, Bool?, String)] = [
            (["branch-2"], "advertise", nil, false, ""),
            (["branch-3"], "shareKeys", nil, false, ""),
            (["branch-4"], "maskedInput", nil, nil, lost),
            (["branch-5"], "unmask", nil, nil, lost),
            (["branch-1", "branch-3"], "advertise", 3, false, ""),
            (["branch-2", "branch-5"], "shareKeys", 3, false, ""),
            (["branch-1", "branch-4"], "maskedInput", 3, nil, lost),
            (["branch-1", "branch-2"], "shareKeys", nil, nil, "fewer than the threshold 4"),  // 3 survivors < default threshold 4
        ]
        for (run, (dying, round, threshold, inSum, failure)) in scenarios.enumerated() {
            // A consortium of its own each time: the same total over other survivors would be refused
            // (differencing across client sets, DifferencingTests).
            let (consortium, cents, records) = try Self.consortium(in: directory.appendingPathComponent("run-\(run)"))
            var daemons: [String: DaemonProcessTests.Daemon] = [:]
            for m in consortium.members {
                let env = dying.contains(m.id) ? ["MPCNODE_FAULT_EXIT_AFTER_SECAGG_ROUND": round] : [:]
                daemons[m.id] = try DaemonProcessTests.Daemon(id: m.id, configuration: m.configurationPath,
                                                              log: logs.appendingPathComponent("\(m.id)-\(run).log"), environment: env)
            }
            func socket(_ id: String) throws -> URL { try consortium.configuration(of: id).adminSocketPath }
            for id in daemons.keys { try await DaemonProcessTests.waitForSocket(try socket(id)) }

            let jobID = try await Self.submitSum(try socket("coordinator"), threshold: threshold)
            let coordinatorView = try await DaemonProcessTests.finalJob(try socket("coordinator"), jobID, seconds: 60)
            let regulatorView = try await DaemonProcessTests.finalJob(try socket("regulator"), jobID, seconds: 60)
            let report = try await AdminClient(socketPath: socket("regulator")).send(AdminRequest(command: .showReport, jobID: jobID))
            let label = "\(dying) after \(round)"
            if let inSum {
                XCTAssertEqual(coordinatorView?.state, .succeeded, "\(label): \(coordinatorView?.reason ?? "")")
                let survivors = inSum ? branches : branches.filter { !dying.contains($0) }
                let r = try XCTUnwrap(report.report, "\(label): \(report.error ?? "")")
                XCTAssertEqual(r.included, survivors, label)
                let cell = try XCTUnwrap(r.cells.first)
                XCTAssertEqual(cell.values["sum(balance)"], ReportRepository.decimalText(survivors.reduce(0) { $0 + cents[$1]! }, decimals: 2), label)
                XCTAssertEqual(cell.records, Int64(survivors.reduce(0) { $0 + records[$1]! }), label)
            } else {
                XCTAssertEqual(regulatorView?.state, .failed, label)
                XCTAssertTrue(regulatorView?.reason?.contains(failure) == true, "\(label): \(regulatorView?.reason ?? "")")
                XCTAssertEqual(coordinatorView?.state, .failed, label)
                XCTAssertNil(report.report, "\(label): no report")
                for b in branches where !dying.contains(b) {
                    let v = try await DaemonProcessTests.finalJob(try socket(b), jobID, seconds: 30)
                    XCTAssertEqual(v?.state, .failed, "\(label): \(b) ends too")
                }
            }
            for d in daemons.values where d.process.isRunning { d.process.terminate(); d.process.waitUntilExit() }
            for b in dying { XCTAssertEqual(daemons[b]!.process.terminationStatus, 137, "\(b) died by fault injection") }
        }
    }

    static let branches = (1...5).map { "branch-\($0)" }  // default threshold ⌊2·5/3⌋ + 1 = 4

    /// Five branches with a few accounts each, and their plain totals.
    static func consortium(in directory: URL, serverReportGraceSeconds: Int = 30) throws -> (LocalConsortium, [String: Int64], [String: Int]) {
        let consortium = try LocalConsortium.create(in: directory, banks: branches, regulators: ["regulator"],
                                                    policy: { _ in
            """
            policy:
              coordinators: [coordinator]
              datasets:
                accounts:
                  columns: [balance]
                  protocols: [secure-sum]
                  result_recipients: [regulator]
                  min_set_size: 1
                  min_cell_records: 1
                  min_cell_parties: 1
                  min_sum_threshold_share: 0.5
            """
        }, serverReportGraceSeconds: serverReportGraceSeconds)
        var cents: [String: Int64] = [:]
        var records: [String: Int] = [:]
        var rng = SplitMix(state: 5)
        for b in branches {
            var csv = "account,balance\n"
            records[b] = 10 + Int(rng.next() % 10)
            for i in 0..<records[b]! {
                let c = Int64(rng.next() % 1_000_000)
                cents[b, default: 0] += c
                csv += "\(b)-\(i),\(ReportRepository.decimalText(c, decimals: 2))\n"
            }
            try consortium.importCSV(csv, into: b, dataset: "accounts", idColumn: "account")
        }
        return (consortium, cents, records)
    }

    static func submitSum(_ socket: URL, threshold: Int? = nil) async throws -> String {
        let submitted = try await AdminClient(socketPath: socket).send(AdminRequest(command: .submitJob, submission: JobSubmission(
            protocolName: "secure-sum", parties: branches.map { .init(nodeID: $0, dataset: "accounts", column: "") },
            deliverTo: ["regulator"], cardinalityOnly: false, group: "",
            aggregate: .init(groupBy: nil, groups: [], measures: ["sum:balance"], decimals: 2, minCellRecords: 1, minCellParties: 1),
            threshold: threshold)))
        return try XCTUnwrap(submitted.jobID, submitted.error ?? "")
    }

    /// Finding 17: the server (the regulator) is killed in the middle of the sum. The branches see it
    /// go and end; the coordinator fails the job naming the server within its grace period instead
    /// of waiting for a report that will never come.
    func testTheServerDyingFailsTheJobEverywhereNamingIt() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mpcnode-drop-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let (consortium, _, _) = try Self.consortium(in: directory, serverReportGraceSeconds: 3)
        let logs = directory.appendingPathComponent("logs")
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        for (run, round) in ["advertise", "shareKeys", "maskedInput"].enumerated() {
            var daemons: [String: DaemonProcessTests.Daemon] = [:]
            for m in consortium.members {
                let env = m.id == "regulator" ? ["MPCNODE_FAULT_EXIT_AFTER_SECAGG_ROUND": round] : [:]
                daemons[m.id] = try DaemonProcessTests.Daemon(id: m.id, configuration: m.configurationPath,
                                                              log: logs.appendingPathComponent("\(m.id)-server-\(run).log"), environment: env)
            }
            func socket(_ id: String) throws -> URL { try consortium.configuration(of: id).adminSocketPath }
            for id in daemons.keys { try await DaemonProcessTests.waitForSocket(try socket(id)) }
            let jobID = try await Self.submitSum(try socket("coordinator"))
            let started = Date()
            let coordinatorView = try await DaemonProcessTests.finalJob(try socket("coordinator"), jobID, seconds: 60)
            let label = "regulator killed after \(round)"
            XCTAssertEqual(coordinatorView?.state, .failed, label)
            XCTAssertTrue(coordinatorView?.reason?.contains("regulator") == true, "\(label): \(coordinatorView?.reason ?? "")")
            XCTAssertLessThan(Date().timeIntervalSince(started), 45, "\(label): failed in bounded time")
            for b in Self.branches {
                let v = try await DaemonProcessTests.finalJob(try socket(b), jobID, seconds: 30)
                XCTAssertEqual(v?.state, .failed, "\(label): \(b) ends too")
            }
            daemons["regulator"]!.process.waitUntilExit()
            XCTAssertEqual(daemons["regulator"]!.process.terminationStatus, 137, "the regulator died by fault injection")
            for d in daemons.values where d.process.isRunning { d.process.terminate(); d.process.waitUntilExit() }
        }
    }
}
