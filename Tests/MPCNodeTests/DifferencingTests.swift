import Foundation
import MPCBench
import MPCNode
import MPCTestSupport
import XCTest

/// Finding 3: results that are each safe can single out records by their difference. Each branch keeps
/// the cells released on its dataset and refuses a secure sum that would differ from them by fewer than
/// its `min_cell_records` of its own records: the total next to the cells of one column (total − high −
/// medium − low = the rest), and the same cells again after a few rows changed.
final class DifferencingTests: XCTestCase {
    func testASumWhoseDifferenceWithReleasedCellsSinglesOutFewRecordsIsRefused() async throws {
        let branches = ["branch-a", "branch-b", "branch-c"]
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mpcnode-diff-\(UUID().uuidString)")
        removeAtTearDown(directory)
        let consortium = try LocalConsortium.create(in: directory, banks: branches, regulators: ["regulator"]) { _ in
            SecureSumFixture.policy(columns: ["risk", "balance"], ["min_set_size: 5", "min_cell_records: 3", "min_cell_parties: 2"])
        }
        var rng = SplitMix(state: 7)
        var csvs: [String: String] = [:]
        for branch in branches {
            var csv = "account,risk,balance\n"
            for i in 0..<30 {
                // branch-a alone has two "frozen" accounts: no released cell of risk covers them.
                let risk = branch == "branch-a" && i < 2 ? "frozen" : ["high", "medium", "low"][i % 3]
                csv += "\(branch)-\(i),\(risk),\(ReportRepository.decimalText(Int64(rng.next() % 100_000), decimals: 2))\n"
            }
            csvs[branch] = csv
            try consortium.importCSV(csv, into: branch, dataset: "accounts", idColumn: "account")
        }
        let nodes = try await consortium.startAll(logger: ConsortiumFixture.quietLogger)
        stopAtTearDown(nodes)
        func sum(groupBy: String?, groups: [String]) async throws -> JobView {
            try await SecureSumFixture.sum(nodes["coordinator"]!, parties: branches, groupBy: groupBy, groups: groups)
        }

        let byRisk = try await sum(groupBy: "risk", groups: ["high", "medium", "low"])
        XCTAssertEqual(byRisk.state, .succeeded, byRisk.reason ?? "")

        // The total of all rows minus the three cells would be branch-a's two frozen accounts.
        let total = try await sum(groupBy: nil, groups: [])
        XCTAssertEqual(total.state, .refused)
        let reason = total.parties.first { $0.nodeID == "branch-a" }?.reason ?? ""
        XCTAssertTrue(reason.contains("leave 2 of this node's records outside them") && reason.contains(byRisk.id), reason)
        for b in ["branch-b", "branch-c"] {
            XCTAssertFalse(total.parties.first { $0.nodeID == b }?.reason?.contains("outside") == true, "\(b) has no record outside the cells")
        }

        // The same cells again, unchanged data: nothing new is singled out.
        let again = try await sum(groupBy: "risk", groups: ["high", "medium", "low"])
        XCTAssertEqual(again.state, .succeeded, again.reason ?? "")

        // branch-b opens two "high" accounts: the same cells again would single them out.
        try consortium.importCSV(csvs["branch-b"]! + "branch-b-new-1,high,10.00\nbranch-b-new-2,high,20.00\n", into: "branch-b",
                                 dataset: "accounts", idColumn: "account", file: "branch-b-2", replace: true)
        let after = try await sum(groupBy: "risk", groups: ["high", "medium", "low"])
        XCTAssertEqual(after.state, .refused)
        let b = after.parties.first { $0.nodeID == "branch-b" }?.reason ?? ""
        XCTAssertTrue(b.contains("cell 'high' of risk") && b.contains("single out 2 records"), b)
        // Nothing of the refused jobs was recorded as released: the history still holds the two grouped sums.
        let released = try nodes["branch-b"]!.store.read { db in try ReleaseHistory().cells(dataset: "accounts", db) }
        XCTAssertEqual(Set(released.map(\.jobID)), [byRisk.id, again.id])
    }

    /// The same cells released over client sets that differ by one branch give that branch's figures by
    /// subtraction. After a sum over four branches, a coordinator asks the same sum of three (as it would
    /// be after a branch went offline): they refuse to send the measures (the release has told them who is
    /// in the sum), and no measure is summed.
    func testTheSameCellsOverClientsThatDifferByOneBranchAreRefused() async throws {
        let branches = ["branch-a", "branch-b", "branch-c", "branch-d"]
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mpcnode-diff-\(UUID().uuidString)")
        removeAtTearDown(directory)
        let consortium = try LocalConsortium.create(in: directory, banks: branches, regulators: ["regulator"]) { _ in
            SecureSumFixture.policy(columns: ["balance"], ["min_set_size: 5", "min_cell_records: 3", "min_sum_threshold_share: 0.5"])
        }
        var rng = SplitMix(state: 8)
        for branch in branches {
            let rows = (0..<10).map { "\(branch)-\($0),\(ReportRepository.decimalText(Int64(rng.next() % 100_000), decimals: 2))" }
            try consortium.importCSV("account,balance\n" + rows.joined(separator: "\n") + "\n", into: branch, dataset: "accounts", idColumn: "account")
        }
        let nodes = try await consortium.startAll(logger: ConsortiumFixture.quietLogger)
        stopAtTearDown(nodes)
        func total(_ parties: [String]) async throws -> JobView { try await SecureSumFixture.sum(nodes["coordinator"]!, parties: parties) }
        let first = try await total(branches)
        XCTAssertEqual(first.state, .succeeded, first.reason ?? "")

        let second = try await total(["branch-a", "branch-b", "branch-c"])
        XCTAssertNotEqual(second.state, .succeeded)
        let reasons = ["branch-a", "branch-b", "branch-c"].map { b in second.parties.first { $0.nodeID == b }?.reason ?? "" }
        XCTAssertTrue(reasons.contains { $0.contains("single out the figures of branch-d") && $0.contains(first.id) }, "\(second.state) \(second.reason ?? "") \(second.parties.map { "\($0.nodeID) \($0.state ?? "") \($0.reason ?? "")" })")
        XCTAssertThrowsError(try ReportRepository(store: nodes["regulator"]!.store).get(second.id), "no report of the second sum")
    }

    /// The total first, then the cells of one column with a small group among them: the job is accepted
    /// (every group asked for is a cell), but the small group is suppressed, so what is released would
    /// leave it outside — total − high − medium − low. Checked again on the cells actually released.
    func testTheReleasedCellsAreCheckedNotOnlyTheCellsAskedFor() async throws {
        let branches = ["branch-a", "branch-b", "branch-c"]
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mpcnode-diff-\(UUID().uuidString)")
        removeAtTearDown(directory)
        let consortium = try LocalConsortium.create(in: directory, banks: branches, regulators: ["regulator"]) { _ in
            SecureSumFixture.policy(columns: ["risk", "balance"], ["min_set_size: 5", "min_cell_records: 3", "min_cell_parties: 2"])
        }
        for branch in branches {
            let rows = (0..<30).map { i in "\(branch)-\(i),\(branch == "branch-a" && i < 2 ? "frozen" : ["high", "medium", "low"][i % 3]),10.00" }
            try consortium.importCSV("account,risk,balance\n" + rows.joined(separator: "\n") + "\n", into: branch, dataset: "accounts", idColumn: "account")
        }
        let nodes = try await consortium.startAll(logger: ConsortiumFixture.quietLogger)
        stopAtTearDown(nodes)
        let total = try await SecureSumFixture.sum(nodes["coordinator"]!, parties: branches)
        XCTAssertEqual(total.state, .succeeded, total.reason ?? "")
        let byRisk = try await SecureSumFixture.sum(nodes["coordinator"]!, parties: branches, groupBy: "risk", groups: ["high", "medium", "low", "frozen"])
        XCTAssertNotEqual(byRisk.state, .succeeded)
        // branch-a's reason comes with its outcome, which may reach the coordinator after the job is already
        // final (another party's failure can end it first on a loaded machine): wait for it.
        var reason = byRisk.parties.first { $0.nodeID == "branch-a" }?.reason ?? ""
        for _ in 0..<100 where !reason.contains("outside them") {
            try await Task.sleep(for: .milliseconds(50))
            reason = (try? JobRepository(store: nodes["coordinator"]!.store).view(jobID: byRisk.id))?.parties.first { $0.nodeID == "branch-a" }?.reason ?? ""
        }
        XCTAssertTrue(reason.contains("leave 2 of this node's records outside them"), "\(byRisk.state) \(reason)")
        XCTAssertThrowsError(try ReportRepository(store: nodes["regulator"]!.store).get(byRisk.id), "no report")
    }

    /// Sums over client sets that each leave out a different pair: no two differ by one client, but
    /// together they give every client's own figure. The span of the sets is checked, not only pairs.
    func testAClientIsolatedByACombinationOfClientSetsIsFound() {
        let all = ["a", "b", "c", "d", "e"]
        XCTAssertNil(ReleaseHistory.isolatedClient([all, ["c", "d", "e"]]), "a pair is not a single client")
        XCTAssertEqual(ReleaseHistory.isolatedClient([all, ["a", "b", "c", "d"]]), "e")
        XCTAssertNil(ReleaseHistory.isolatedClient([all, ["c", "d", "e"], ["b", "d", "e"]]))
        XCTAssertNotNil(ReleaseHistory.isolatedClient([all, ["c", "d", "e"], ["b", "d", "e"], ["a", "d", "e"]]),
                        "a+b, a+c and b+c give a, b and c")
    }
}
