import Foundation
import MPCNode
import XCTest

/// The coordinator proposes and follows a job but learns no result, not even its size.
final class CoordinatorLearnsNoResultTests: XCTestCase {
    func testTheCoordinatorLearnsThatAResultWasReceivedButNotItsSize() async throws {
        let fixture = try ConsortiumFixture()
        defer { fixture.remove() }
        let a = phoneNumbers(300, seed: 21), b = Array(a.prefix(137)) + phoneNumbers(200, seed: 22)
        try fixture.importCSV(into: "bank-a", dataset: "customers", phones: a)
        try fixture.importCSV(into: "bank-b", dataset: "customers", phones: b)
        let nodes = try await fixture.consortium.startAll(logger: ConsortiumFixture.quietLogger)
        let coordinator = nodes["coordinator"]!
        for cardinalityOnly in [false, true] {
            let jobID = try await coordinator.engine.submit(JobSubmission(
                protocolName: JobKindName.psi.rawValue,
                parties: [.init(nodeID: "bank-a", dataset: "customers", column: "phone"), .init(nodeID: "bank-b", dataset: "customers", column: "phone")],
                deliverTo: ["bank-a"], cardinalityOnly: cardinalityOnly, group: "x25519"))
            let job = try await ConsortiumFixture.waitForFinal(coordinator, jobID: jobID)
            XCTAssertEqual(job.state, .succeeded, job.reason ?? "")
            // bank-a holds the result; the coordinator knows only that it received one.
            let result = try JobRepository(store: nodes["bank-a"]!.store).result(jobID: jobID, limit: 10)
            XCTAssertGreaterThan(result.cardinality, 0)
            for party in job.parties {
                XCTAssertNil(party.resultRows, "the coordinator holds \(party.nodeID)'s result size")
                XCTAssertEqual(party.receivedResult, party.nodeID == "bank-a", party.nodeID)
            }
            XCTAssertThrowsError(try JobRepository(store: coordinator.store).result(jobID: jobID, limit: 10))
            for record in try AuditLog(store: coordinator.store).records(jobID: jobID) {
                XCTAssertFalse(record.details.contains("result_rows") || record.details.contains("cardinality\":\(result.cardinality)"),
                               "\(record.event): \(record.details)")
            }
        }
        for n in nodes.values { await n.stop() }
    }
}
