import Foundation
import MPCBench
import MPCNode
import MPCTestSupport
import XCTest

/// Finding 3's noise: a branch whose policy sets `sum_noise_epsilon` adds discrete Laplace noise to its
/// own measures (its records' values clamped to `sum_value_bound`) before anything is masked, counts stay
/// exact, and `sum_epsilon_per_day` refuses the sum that would overspend the day's budget.
final class SumNoiseTests: XCTestCase {
    func testANoisedBranchSpendsItsPrivacyBudgetAndThenRefuses() async throws {
        let branches = ["branch-a", "branch-b", "branch-c"]
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mpcnode-noise-\(UUID().uuidString)")
        removeAtTearDown(directory)
        let consortium = try LocalConsortium.create(in: directory, banks: branches, regulators: ["regulator"]) { node in
            SecureSumFixture.policy(columns: ["balance"], ["min_set_size: 5", "min_cell_records: 3"]
                                    + (node == "branch-a" ? ["sum_noise_epsilon: 1.0", "sum_value_bound: 1000", "sum_epsilon_per_day: 2.0"] : []))
        }
        var exact: Int64 = 0
        var rng = SplitMix(state: 3)
        for branch in branches {
            var csv = "account,balance\n"
            for i in 0..<20 {
                let cents = Int64(rng.next() % 90_000)  // under the bound: clamping changes nothing
                exact += cents
                csv += "\(branch)-\(i),\(ReportRepository.decimalText(cents, decimals: 2))\n"
            }
            try consortium.importCSV(csv, into: branch, dataset: "accounts", idColumn: "account")
        }
        let nodes = try await consortium.startAll(logger: ConsortiumFixture.quietLogger)
        stopAtTearDown(nodes)
        func total() async throws -> JobView { try await SecureSumFixture.sum(nodes["coordinator"]!, parties: branches) }
        // Scale of branch-a's noise: Δ = 1000.00 in cents, ε = 1.
        let scale = 100_000.0
        var differences: [Int64] = []
        for _ in 0..<2 {
            let job = try await total()
            XCTAssertEqual(job.state, .succeeded, job.reason ?? "")
            let cell = try XCTUnwrap(try ReportRepository(store: nodes["regulator"]!.store).get(job.id).cells.first)
            XCTAssertEqual(cell.records, 60, "counts are exact")
            let reported = try XCTUnwrap(cell.values["sum(balance)"].flatMap { LocalAggregate.parseFixedPoint($0, decimals: 2) })
            // DLap(100000) exceeds 40 scales with probability e^-40.
            XCTAssertLessThan(abs(Double(reported - exact)), 40 * scale, "the noise is of the configured scale")
            differences.append(reported - exact)
            let started = try AuditLog(store: nodes["branch-a"]!.store).records(jobID: job.id).first { $0.event == "job.started" }
            XCTAssertTrue(started?.details.contains("noise_epsilon") == true, "branch-a records the noise it added")
        }
        // Noise was added: DLap(100000) is 0 with probability 5·10⁻⁶, twice in a row 2.5·10⁻¹¹.
        XCTAssertTrue(differences.contains { $0 != 0 }, "no noise in \(differences)")
        // A third sum would spend ε = 3 > 2 in a day: branch-a refuses, the others have no budget.
        let third = try await total()
        XCTAssertEqual(third.state, .refused)
        let reason = third.parties.first { $0.nodeID == "branch-a" }?.reason ?? ""
        XCTAssertTrue(reason.contains("privacy budget (sum_epsilon_per_day 2.0)"), reason)
    }
}
