import MPCBench
import MPCNode
import MPCWire
import XCTest

/// A participant validates the whole spec itself: a coordinator's node that skips its own checks (or
/// crafts the proposal) gets a refusal naming the rule, recorded in the audit log, and no job starts.
final class MalformedSpecTests: XCTestCase {
    func testSpecsTheCLIWouldRefuseAreRefusedByTheParticipant() async throws {
        let fixture = try ConsortiumFixture(banks: ["bank-a", "bank-b", "bank-c"])
        defer { fixture.remove() }
        try fixture.importCSV(into: "bank-a", dataset: "customers", phones: phoneNumbers(200, seed: 31))
        let bankA = try await fixture.consortium.start("bank-a", logger: ConsortiumFixture.quietLogger)
        let coordinator = try HostileNameTests.HostileCoordinator(fixture)
        let party = { (node: String) in Mpcnode_V1_PartyInput.with { $0.nodeID = node; $0.dataset = "customers"; $0.column = "phone" } }
        let cases: [(String, String, (inout Mpcnode_V1_JobSpec) -> Void)] = [
            ("job-party-twice", "listed twice", { $0.parties = [party("bank-a"), party("bank-a")] }),
            ("job-three-party-psi", "between two parties", { $0.parties.append(party("bank-c")) }),
            ("job-no-recipient", "no recipient", { $0.deliverTo = [] }),
            ("job-outside-recipient", "delivers to one or both of its parties", { $0.deliverTo = ["bank-c"] }),
            ("job-bad-group", "unknown group", { $0.group = "p-256" }),
            ("job-sum-server-party", "not a party", {
                $0.protocol = "secure-sum"; $0.aggregate.measures = [.with { $0.function = "count"; $0.column = "phone" }]; $0.deliverTo = ["bank-b"]
            }),
            ("job-sets-aggregator-party", "neither a party nor the coordinator", {
                $0.protocol = "watchlist"; $0.sets.aggregator = "bank-b"; $0.sets.mixer = "bank-a"; $0.sets.atLeast = 2; $0.deliverTo = []
            }),
        ]
        for (id, expected, mutate) in cases {
            var spec = HostileNameTests.psiSpec(jobID: id)
            mutate(&spec)
            let decision = try await coordinator.propose(spec)
            XCTAssertFalse(decision.accepted, id)
            XCTAssertTrue(decision.reason.contains(expected), "\(id): \(decision.reason)")
            XCTAssertEqual(try JobRepository(store: bankA.store).state(jobID: id), .refused, id)
            guard case .error? = try await coordinator.start(id).kind else { XCTFail("\(id) was started"); continue }
        }

        // A bank (its certificate's role) may not propose: refused, recorded, its id neither echoed nor stored.
        let bank = try HostileNameTests.HostileCoordinator(fixture, identity: "bank-b", role: .bank)
        let decision = try await bank.propose(HostileNameTests.psiSpec(jobID: "../job-from-a-bank"))
        XCTAssertFalse(decision.accepted)
        XCTAssertTrue(decision.reason.contains("not coordinator"), decision.reason)
        XCTAssertEqual(decision.jobID, "")
        let records = try AuditLog(store: bankA.store).records(limit: 1000)
        XCTAssertEqual(records.filter { $0.event == "job.policy.refused" }.count, cases.count)
        XCTAssertEqual(records.filter { $0.event == "job.proposal.refused" }.count, 1)
        XCTAssertNil(try AuditLog(store: bankA.store).verify())

        await bankA.stop()
        try await coordinator.group.shutdownGracefully()
        try await bank.group.shutdownGracefully()
    }
}
