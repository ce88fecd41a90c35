import MPCBench
import Foundation
import MPCNode
import MPCTestSupport
import XCTest

/// Set operations between real `mpcnode serve` processes: a party killed in the middle of the ring ends
/// the job on every node with a reason that names it and no result anywhere; a party lost during the
/// secure sum of a union-sum is a dropout, listed in a report that holds exactly the survivors' totals.
final class SetOperationDaemonTests: XCTestCase {
    struct Setup {
        var directory: URL
        var consortium: LocalConsortium
        var data: SetOperationJobTests.Data
        var logs: URL
        func socket(_ id: String) throws -> URL { try consortium.configuration(of: id).adminSocketPath }
    }

    static func setUp(banks: [String], customers: Int, pool: Int) throws -> Setup {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mpcnode-setd-\(UUID().uuidString)")
        let consortium = try LocalConsortium.create(in: directory, banks: banks, regulators: ["regulator"], policy: SetOperationJobTests.policy,
                                                    peerIdleTimeoutSeconds: 30)
        var rng = SplitMix(state: 17)
        var data = SetOperationJobTests.Data()
        for bank in banks {
            var mine: [String: [Int64]] = [:]
            while mine.count < customers { mine["cust-\(String(format: "%06d", Int(rng.next() % UInt64(pool))))"] = [Int64(rng.next() % 100_000)] }
            data.rows[bank] = mine
            var csv = "customer,balance\n"
            for (c, b) in mine { csv += "\(c),\(ReportRepository.decimalText(b[0], decimals: 2))\n" }
            try consortium.importCSV(csv, into: bank, dataset: "customers", idColumn: "customer")
        }
        let logs = directory.appendingPathComponent("logs")
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        return Setup(directory: directory, consortium: consortium, data: data, logs: logs)
    }

    static func start(_ s: Setup, environment: [String: [String: String]] = [:]) async throws -> [String: DaemonProcessTests.Daemon] {
        var daemons: [String: DaemonProcessTests.Daemon] = [:]
        for m in s.consortium.members {
            daemons[m.id] = try DaemonProcessTests.Daemon(id: m.id, configuration: m.configurationPath,
                                                          log: s.logs.appendingPathComponent("\(m.id).log"), environment: environment[m.id] ?? [:])
        }
        for id in daemons.keys { try await DaemonProcessTests.waitForSocket(try s.socket(id)) }
        return daemons
    }

    func testAPartyKilledDuringTheRingFailsTheJobEverywhereWithNoResult() async throws {
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: DaemonProcessTests.binary.path))
        let banks = ["bank-1", "bank-2", "bank-3", "bank-4"]
        let s = try Self.setUp(banks: banks, customers: 20000, pool: 30000)
        defer { try? FileManager.default.removeItem(at: s.directory) }
        var daemons = try await Self.start(s)
        defer { for d in daemons.values where d.process.isRunning { d.process.terminate(); d.process.waitUntilExit() } }

        let submitted = try await AdminClient(socketPath: s.socket("coordinator")).send(AdminRequest(command: .submitJob, submission:
            SetOperationJobTests.submission("mpsi", banks: banks, deliverTo: ["bank-1", "bank-3"], .init(aggregator: "regulator", minIntersection: 3))))
        let jobID = try XCTUnwrap(submitted.jobID, submitted.error ?? "")
        // Kill bank-2 while it is running the job, before the ring has finished (progress below 80 %).
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if let j = try await DaemonProcessTests.job(try s.socket("bank-2"), jobID), j.state == .running { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        try await Task.sleep(for: .milliseconds(700))  // the ring's traffic is flowing
        let midJob = try await DaemonProcessTests.job(try s.socket("bank-2"), jobID)
        XCTAssertEqual(midJob?.state, .running)
        XCTAssertLessThan(midJob?.progressDone ?? 0, 80, "bank-2 should still be in the ring")
        kill(daemons["bank-2"]!.process.processIdentifier, SIGKILL)
        daemons["bank-2"]!.process.waitUntilExit()
        daemons["bank-2"] = nil

        let coordinator = try await DaemonProcessTests.finalJob(try s.socket("coordinator"), jobID, seconds: 60)
        XCTAssertEqual(coordinator?.state, .failed)
        XCTAssertTrue(coordinator?.reason?.contains("bank-2") == true, coordinator?.reason ?? "")
        for id in ["bank-1", "bank-3", "bank-4", "regulator"] {
            let v = try await DaemonProcessTests.finalJob(try s.socket(id), jobID, seconds: 60)
            XCTAssertEqual(v?.state, .failed, id)
            XCTAssertFalse((v?.reason ?? "").isEmpty, id)
        }
        for id in ["bank-1", "bank-3"] {
            let r = try await AdminClient(socketPath: s.socket(id)).send(AdminRequest(command: .jobResult, jobID: jobID))
            XCTAssertNil(r.result, id)
        }
        let report = try await AdminClient(socketPath: s.socket("regulator")).send(AdminRequest(command: .showReport, jobID: jobID))
        XCTAssertNil(report.report)
    }

    func testAPartyLostDuringTheUnionSumsSecureSumIsADropout() async throws {
        let banks = ["bank-1", "bank-2", "bank-3", "bank-4"]
        let s = try Self.setUp(banks: banks, customers: 300, pool: 500)
        defer { try? FileManager.default.removeItem(at: s.directory) }
        let daemons = try await Self.start(s, environment: ["bank-4": ["MPCNODE_FAULT_EXIT_AFTER_SECAGG_ROUND": "shareKeys"]])
        defer { for d in daemons.values where d.process.isRunning { d.process.terminate(); d.process.waitUntilExit() } }

        let submitted = try await AdminClient(socketPath: s.socket("coordinator")).send(AdminRequest(command: .submitJob, submission:
            SetOperationJobTests.submission("union-sum", banks: banks, .init(aggregator: "regulator", valueColumn: "balance"))))
        let jobID = try XCTUnwrap(submitted.jobID, submitted.error ?? "")
        let coordinator = try await DaemonProcessTests.finalJob(try s.socket("coordinator"), jobID, seconds: 60)
        XCTAssertEqual(coordinator?.state, .succeeded, coordinator?.reason ?? "")
        let shown = try await AdminClient(socketPath: s.socket("regulator")).send(AdminRequest(command: .showReport, jobID: jobID))
        let r = try XCTUnwrap(shown.report, shown.error ?? "")
        XCTAssertEqual(r.included, ["bank-1", "bank-2", "bank-3"])
        XCTAssertEqual(r.dropped, ["bank-4"])
        // The union counts every party (the set phase completed); the totals only the survivors' values.
        XCTAssertEqual(r.cells.first { $0.group == "distinct identifiers (union)" }?.records, Int64(s.data.customers.count))
        let survivors = banks.dropLast().map { s.data.rows[$0]! }
        let total = survivors.flatMap { $0.values.map { $0[0] } }.reduce(0, +)
        XCTAssertEqual(r.cells.first { $0.group == "total over the union" }?.values["sum(balance)"], ReportRepository.decimalText(total, decimals: 2))
        XCTAssertTrue(r.notes?.contains { $0.contains("bank-4 dropped out") } == true, "\(r.notes ?? [])")
        daemons["bank-4"]!.process.waitUntilExit()
        XCTAssertEqual(daemons["bank-4"]!.process.terminationStatus, 137)
    }
}
