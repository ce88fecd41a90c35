import Foundation
import MPCBench
import MPCNode
import MPCWire
import XCTest

/// Finding 2's query budgets: a dataset's policy caps the jobs that may use it, and the coordinators that
/// may propose them, over the last 24 hours. Each participant counts and refuses by itself.
final class QueryBudgetTests: XCTestCase {
    /// bank-a running alone with 100 numbers in `customers` under a PSI policy with `budget` (one YAML key),
    /// and a coordinator that proposes to it directly.
    static func bankA(budget: String, seed: UInt64) async throws -> (ConsortiumFixture, NodeRuntime, HostileNameTests.HostileCoordinator) {
        let fixture = try ConsortiumFixture(policy: { _ in
            """
            policy:
              coordinators: [coordinator]
              datasets:
                customers:
                  columns: [phone]
                  protocols: [psi, psi-cardinality]
                  result_recipients: [bank-a, bank-b]
                  min_set_size: 20
                  \(budget)
            """
        })
        try fixture.importCSV(into: "bank-a", dataset: "customers", phones: phoneNumbers(100, seed: seed))
        let bankA = try await fixture.consortium.start("bank-a", logger: ConsortiumFixture.quietLogger)
        return (fixture, bankA, try HostileNameTests.HostileCoordinator(fixture))
    }

    func testADatasetOverItsDailyJobBudgetIsRefused() async throws {
        let (fixture, bankA, coordinator) = try await Self.bankA(budget: "max_jobs_per_day: 2", seed: 51)
        defer { fixture.remove() }
        var decisions: [Mpcnode_V1_JobDecision] = []
        for i in 0..<3 { decisions.append(try await coordinator.propose(HostileNameTests.psiSpec(jobID: "job-budget-\(i)"))) }
        XCTAssertEqual(decisions.map(\.accepted), [true, true, false])
        XCTAssertTrue(decisions[2].reason.contains("max_jobs_per_day 2"), decisions[2].reason)
        XCTAssertEqual(try JobRepository(store: bankA.store).state(jobID: "job-budget-2"), .refused)
        await bankA.stop()
        try await coordinator.group.shutdownGracefully()
    }

    /// Finding 3 for PSI: a peer that changes its set by one identifier between two cardinalities learns
    /// whether this dataset holds it. With `max_jobs_per_peer_per_input: 1`, an unchanged input answers each
    /// peer once; a new import of the data renews the allowance.
    func testAnUnchangedInputAnswersEachPeerOnlyAsOftenAsItsPolicySays() async throws {
        let (fixture, bankA, coordinator) = try await Self.bankA(budget: "max_jobs_per_peer_per_input: 1", seed: 52)
        defer { fixture.remove() }
        let first = try await coordinator.propose(HostileNameTests.psiSpec(jobID: "job-peer-0"))
        let second = try await coordinator.propose(HostileNameTests.psiSpec(jobID: "job-peer-1"))
        XCTAssertTrue(first.accepted, first.reason)
        XCTAssertFalse(second.accepted)
        XCTAssertTrue(second.reason.contains("answered bank-b in 1 set comparisons") && second.reason.contains("max_jobs_per_peer_per_input"), second.reason)
        // The bank's list is updated: bank-b may ask again.
        try fixture.importCSV(into: "bank-a", dataset: "customers", phones: phoneNumbers(101, seed: 53), replace: true)
        let third = try await coordinator.propose(HostileNameTests.psiSpec(jobID: "job-peer-2"))
        XCTAssertTrue(third.accepted, third.reason)
        await bankA.stop()
        try await coordinator.group.shutdownGracefully()
    }

    func testDistinctCoordinatorsAreCountedOverTheLastDay() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mpcnode-budget-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try NodeStore(path: folder.appendingPathComponent("node.sqlite"))
        let repository = JobRepository(store: store)
        func spec(_ id: String, coordinator: String, dataset: String = "customers") -> Mpcnode_V1_JobSpec {
            .with {
                $0.jobID = id; $0.coordinator = coordinator; $0.protocol = "psi"
                $0.parties = [.with { $0.nodeID = "bank-a"; $0.dataset = dataset }, .with { $0.nodeID = "bank-b"; $0.dataset = "x" }]
            }
        }
        try store.write { db in
            try repository.insert(db, spec: spec("job-1", coordinator: "coord-1"), role: .participant, state: .succeeded)
            try repository.insert(db, spec: spec("job-2", coordinator: "coord-2"), role: .participant, state: .failed)
            try repository.insert(db, spec: spec("job-3", coordinator: "coord-3"), role: .participant, state: .refused)  // not a use
            try repository.insert(db, spec: spec("job-4", coordinator: "coord-4", dataset: "other"), role: .participant, state: .succeeded)
        }
        let rule = DatasetPolicy(columns: ["phone"], protocols: [.psi], resultRecipients: [], minimumSetSize: 10, maximumCoordinatorsPerDay: 2)
        let reasons = try store.read { db in
            try ["coord-1", "coord-3"].map { try DatasetBudget(nodeID: "bank-a").refusal(dataset: "customers", rule: rule, coordinator: $0, db) }
        }
        XCTAssertNil(reasons[0], "a coordinator already counted may go on")
        XCTAssertTrue(reasons[1]?.contains("max_coordinators_per_day 2") == true, reasons[1] ?? "")
        // A day later the budget is free again.
        let later = try store.read { db in
            try DatasetBudget(nodeID: "bank-a").refusal(dataset: "customers", rule: rule, coordinator: "coord-3", now: Date().addingTimeInterval(90_000), db)
        }
        XCTAssertNil(later)
    }
}
