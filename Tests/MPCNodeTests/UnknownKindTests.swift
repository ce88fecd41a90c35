import MPCBench
import MPCNode
import MPCWire
import XCTest

/// A participant never guesses a job's kind: a name it does not run, or a name whose spec carries
/// another kind's part, is refused by name, recorded as refused, and cannot be started.
final class UnknownKindTests: XCTestCase {
    func testAnUnknownOrMismatchedKindIsRefusedByNameAndNeverRuns() async throws {
        let fixture = try ConsortiumFixture()
        defer { fixture.remove() }
        try fixture.importCSV(into: "bank-a", dataset: "customers", phones: phoneNumbers(200, seed: 9))
        let bankA = try await fixture.consortium.start("bank-a", logger: ConsortiumFixture.quietLogger)
        let coordinator = try HostileNameTests.HostileCoordinator(fixture)

        let cases: [(String, String, (inout Mpcnode_V1_JobSpec) -> Void)] = [
            ("job-unknown-kind", "is not known to this node", { $0.protocol = "psi-turbo" }),
            ("job-no-kind", "is not known to this node", { $0.protocol = "" }),
            ("job-psi-with-sets", "does not match the spec's 'sets' part", { $0.sets.aggregator = "bank-b" }),
            ("job-sum-with-psi", "does not match the spec's 'psi' part", { $0.protocol = "secure-sum"; $0.psi = .init() }),
            ("job-predict-with-training", "does not match the spec's 'training' part", {
                $0.protocol = "predict"; $0.training.mode = "vertical"
            }),
        ]
        for (id, expected, mutate) in cases {
            var spec = HostileNameTests.psiSpec(jobID: id)
            mutate(&spec)
            let decision = try await coordinator.propose(spec)
            XCTAssertFalse(decision.accepted, id)
            XCTAssertTrue(decision.reason.contains(expected), "\(id): \(decision.reason)")
            let start = try await coordinator.start(id)
            guard case .error(let e)? = start.kind else { XCTFail("\(id) was started: \(start)"); continue }
            XCTAssertFalse(e.message.isEmpty)
            XCTAssertEqual(try JobRepository(store: bankA.store).state(jobID: id), .refused, id)
        }
        let refused = try AuditLog(store: bankA.store).records(limit: 1000).filter { $0.event == "job.policy.refused" }
        XCTAssertEqual(refused.count, cases.count)
        XCTAssertNil(try AuditLog(store: bankA.store).verify())

        // The same coordinator's well-formed psi proposal is still accepted.
        let honest = try await coordinator.propose(HostileNameTests.psiSpec(jobID: "job-honest-psi"))
        XCTAssertTrue(honest.accepted, honest.reason)
        await bankA.stop()
        try await coordinator.group.shutdownGracefully()
    }
}
