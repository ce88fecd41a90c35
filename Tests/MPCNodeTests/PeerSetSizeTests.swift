import Foundation
import MPCNode
import XCTest

/// Each participant applies its own limits to every input of a job, its peer's included: a member that
/// offers a one-number set (its own policy allowing it) cannot probe another's list, and one that offers
/// a whole number range cannot receive another's whole column as "the intersection".
final class PeerSetSizeTests: XCTestCase {
    static func policy(_ bank: String) -> String {
        // bank-a (the dishonest prober) lets itself use any size; bank-b has a minimum of 50, at most
        // 5,000 peer identifiers and at most 3 times its own input.
        let names = bank == "bank-b" ? ["probe"] : ["one", "range", "fair"]
        let limits = bank == "bank-b" ? "min_set_size: 50\n      max_peer_set_size: 5000\n      max_peer_set_ratio: 3" : "min_set_size: 1"
        return "policy:\n  coordinators: [coordinator]\n  datasets:\n" + names.map { name in
            """
                \(name):
                  columns: [phone]
                  protocols: [psi, psi-cardinality]
                  result_recipients: [bank-a, bank-b]
                  \(limits)

            """
        }.joined()
    }

    func run(_ nodes: [String: NodeRuntime], offering dataset: String, cardinalityOnly: Bool = false) async throws -> JobView {
        let jobID = try await nodes["coordinator"]!.engine.submit(JobSubmission(
            protocolName: JobKindName.psi.rawValue,
            parties: [.init(nodeID: "bank-a", dataset: dataset, column: "phone"), .init(nodeID: "bank-b", dataset: "probe", column: "phone")],
            deliverTo: ["bank-a"], cardinalityOnly: cardinalityOnly, group: "x25519"))
        return try await ConsortiumFixture.waitForFinal(nodes["coordinator"]!, jobID: jobID)
    }

    func testAPeerSetOutsideTheParticipantsOwnLimitsIsRefusedBeforeAnythingIsCompared() async throws {
        let fixture = try ConsortiumFixture(policy: Self.policy)
        defer { fixture.remove() }
        let list = phoneNumbers(300, seed: 12)
        try fixture.importCSV(into: "bank-b", dataset: "probe", phones: list)
        let cases: [(String, String, [String], String)] = [
            ("a one-number probe", "one", [list[7]], "at least 50"),
            ("a number range 20 times bank-b's list", "range", list + phoneNumbers(5700, seed: 13), "at most \(min(5000, 3 * Set(list).count))"),
        ]
        let fair = Array(list.prefix(120)) + phoneNumbers(200, seed: 14)
        for (_, dataset, offered, _) in cases { try fixture.importCSV(into: "bank-a", dataset: dataset, phones: offered) }
        try fixture.importCSV(into: "bank-a", dataset: "fair", phones: fair)
        let nodes = try await fixture.consortium.startAll(logger: ConsortiumFixture.quietLogger)
        for (what, dataset, offered, limit) in cases {
            for cardinalityOnly in [false, true] {
                let job = try await run(nodes, offering: dataset, cardinalityOnly: cardinalityOnly)
                XCTAssertEqual(job.state, .failed, what)
                XCTAssertTrue(job.reason?.contains("bank-a's input of \(Set(offered).count) identifiers is refused") == true, "\(what): \(job.reason ?? "")")
                XCTAssertTrue(job.reason?.contains(limit) == true, "\(what): \(job.reason ?? "")")
                // bank-a received no result, bank-b stored nothing, both logged the failure.
                XCTAssertThrowsError(try JobRepository(store: nodes["bank-a"]!.store).result(jobID: job.id, limit: 10), what)
                let bAudit = try AuditLog(store: nodes["bank-b"]!.store).records(jobID: job.id)
                // (then possibly the coordinator's abort and the job's receipt, which follow the failure)
                XCTAssertTrue(bAudit.map(\.event).contains("job.failed"), "\(what): \(bAudit.map(\.event))")
                XCTAssertFalse(bAudit.map(\.event).contains("job.succeeded"), what)
                XCTAssertNil(try AuditLog(store: nodes["bank-b"]!.store).verify())
            }
        }

        // Within bank-b's limits the same two nodes, still running, compute the intersection.
        let job = try await run(nodes, offering: "fair")
        XCTAssertEqual(job.state, .succeeded, job.reason ?? "")
        let result = try JobRepository(store: nodes["bank-a"]!.store).result(jobID: job.id, limit: 1000)
        let digits = { (phone: String) in String(phone.filter(\.isNumber)) }  // as imported (digits only)
        XCTAssertEqual(Set(result.identifiers ?? []), Set(Set(fair).intersection(Set(list)).map(digits)))
        for n in nodes.values { await n.stop() }
    }
}
