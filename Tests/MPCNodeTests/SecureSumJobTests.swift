import MPCBench
import Foundation
import MPCNode
import MPCTestSupport
import XCTest

/// Branches report consortium totals to a regulator through a secure-sum job: real nodes, TLS, SQLite.
final class SecureSumJobTests: XCTestCase {
    func testRegulatorReceivesExactTotalsWithSmallCellsSuppressed() async throws {
        let branches = ["branch-a", "branch-b", "branch-c"]
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mpcnode-ss-\(UUID().uuidString)")
        removeAtTearDown(directory)
        let consortium = try LocalConsortium.create(in: directory, banks: branches, regulators: ["regulator"]) { _ in
            """
            policy:
              coordinators: [coordinator]
              datasets:
                accounts:
                  columns: [risk, balance, account]
                  protocols: [secure-sum]
                  result_recipients: [regulator]
                  min_set_size: 5
                  min_cell_records: 3
                  min_cell_parties: 2
            """
        }
        // Each branch: accounts with a risk category and an exact decimal balance.
        var expected: [String: (records: Int, cents: Int64, parties: Set<String>)] = [:]
        var rng = SplitMix(state: 99)
        for branch in branches {
            var csv = "account,risk,balance\n"
            let rows = 40 + Int(rng.next() % 20)
            for i in 0..<rows {
                // "frozen" appears only at branch-a, twice: a cell below both minimums.
                let risk = branch == "branch-a" && i < 2 ? "frozen" : ["high", "medium", "low"][Int(rng.next() % 3)]
                let cents = Int64(rng.next() % 5_000_000) - 1_000_000
                csv += "\(branch)-\(i),\(risk),\(ReportRepository.decimalText(cents, decimals: 2))\n"
                expected[risk, default: (0, 0, [])].records += 1
                expected[risk]!.cents += cents
                expected[risk]!.parties.insert(branch)
            }
            try consortium.importCSV(csv, into: branch, dataset: "accounts", idColumn: "account")
        }
        let nodes = try await consortium.startAll(logger: ConsortiumFixture.quietLogger)
        stopAtTearDown(nodes)

        let jobID = try await nodes["coordinator"]!.engine.submit(JobSubmission(
            protocolName: "secure-sum", parties: branches.map { .init(nodeID: $0, dataset: "accounts", column: "") },
            deliverTo: ["regulator"], cardinalityOnly: false, group: "",
            aggregate: .init(groupBy: "risk", groups: ["high", "medium", "low", "frozen"], measures: ["sum:balance", "count:account"],
                             decimals: 2, minCellRecords: 3, minCellParties: 2)))
        let job = try await ConsortiumFixture.waitForFinal(nodes["coordinator"]!, jobID: jobID)
        XCTAssertEqual(job.state, .succeeded, job.reason ?? "")

        let report = try ReportRepository(store: nodes["regulator"]!.store).get(jobID)
        XCTAssertEqual(report.included, branches)
        XCTAssertEqual(report.dropped, [])
        XCTAssertEqual(report.specHash, job.specHash)
        for cell in report.cells {
            if cell.group == "frozen" {
                XCTAssertTrue(cell.suppressed)
                XCTAssertNil(cell.records)
                XCTAssertTrue(cell.values.isEmpty)
                continue
            }
            let e = expected[cell.group]!
            XCTAssertFalse(cell.suppressed, cell.group)
            XCTAssertEqual(cell.records, Int64(e.records), cell.group)
            XCTAssertEqual(cell.parties, Int64(e.parties.count), cell.group)
            XCTAssertEqual(cell.values["sum(balance)"], ReportRepository.decimalText(e.cents, decimals: 2), cell.group)
            XCTAssertEqual(cell.values["count(account)"], String(e.records), cell.group)
        }
        // Every node keeps an audit record of the job; no branch stores a report.
        for id in branches + ["regulator", "coordinator"] {
            XCTAssertFalse(try AuditLog(store: nodes[id]!.store).records(jobID: jobID).isEmpty, id)
        }
        XCTAssertTrue(try ReportRepository(store: nodes["branch-a"]!.store).list().isEmpty)
        // Provenance: each branch's audit record of the job's start, as that branch holds it.
        for branch in branches {
            let started = try AuditLog(store: nodes[branch]!.store).records(jobID: jobID).first { $0.event == "job.started" }
            XCTAssertEqual(report.participantAuditHashes[branch], started?.hash, branch)
        }
    }

    func testPolicyRefusesAJobThatSuppressesLessThanTheBranchRequires() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mpcnode-ss-\(UUID().uuidString)")
        removeAtTearDown(directory)
        let consortium = try LocalConsortium.create(in: directory, banks: ["branch-a", "branch-b"], regulators: ["regulator"]) { _ in
            """
            policy:
              coordinators: [coordinator]
              datasets:
                accounts:
                  columns: [risk, balance]
                  protocols: [secure-sum]
                  result_recipients: [regulator]
                  min_set_size: 1
                  min_cell_records: 10
            """
        }
        for b in ["branch-a", "branch-b"] {
            try consortium.importCSV("account,risk,balance\n1,high,1.00\n", into: b, dataset: "accounts", idColumn: "account")
        }
        let nodes = try await consortium.startAll(logger: ConsortiumFixture.quietLogger)
        stopAtTearDown(nodes)
        let jobID = try await nodes["coordinator"]!.engine.submit(JobSubmission(
            protocolName: "secure-sum", parties: [.init(nodeID: "branch-a", dataset: "accounts", column: ""), .init(nodeID: "branch-b", dataset: "accounts", column: "")],
            deliverTo: ["regulator"], cardinalityOnly: false, group: "",
            aggregate: .init(groupBy: nil, groups: [], measures: ["sum:balance"], decimals: 2, minCellRecords: 5, minCellParties: 2)))
        let job = try await ConsortiumFixture.waitForFinal(nodes["coordinator"]!, jobID: jobID)
        XCTAssertEqual(job.state, .refused)
        XCTAssertTrue(job.reason?.contains("cells with fewer than 10 records must be suppressed") == true, job.reason ?? "")
    }
}

