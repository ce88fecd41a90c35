import Foundation
import GRDB
import MPCNode
import MPCTestSupport
import MPCTransport
import XCTest

/// Real nodes (in this process) with real listeners, TLS 1.3 with mutual authentication and SQLite
/// files: a coordinator and two banks.
final class PSIJobEndToEndTests: XCTestCase {
    func testPSIJobDeliversThePlainIntersectionAndLeavesAuditRecordsEverywhere() async throws {
        let fixture = try ConsortiumFixture()
        removeAtTearDown(fixture.directory)
        let a = phoneNumbers(600, seed: 1), b = phoneNumbers(400, seed: 2)
        try fixture.importCSV(into: "bank-a", dataset: "customers", phones: a)
        try fixture.importCSV(into: "bank-b", dataset: "customers", phones: b)
        let expected = Set(a.map(digits)).intersection(Set(b.map(digits)))
        XCTAssertGreaterThan(expected.count, 10, "the data must overlap for the test to mean anything")

        let taps = WireTaps()
        let nodes = try await fixture.consortium.startAll(logger: ConsortiumFixture.quietLogger, transportOptions: taps.options(for:))
        stopAtTearDown(nodes)

        // Through the coordinator's admin endpoint, as `mpcnode job submit` does.
        let admin = AdminClient(socketPath: try fixture.consortium.configuration(of: "coordinator").adminSocketPath)
        let submitted = try await admin.send(AdminRequest(command: .submitJob, submission: JobSubmission.phonePSI(group: "ristretto255")))
        XCTAssertNil(submitted.error)
        let jobID = try XCTUnwrap(submitted.jobID)
        let job = try await ConsortiumFixture.waitForFinal(nodes["coordinator"]!, jobID: jobID)
        XCTAssertEqual(job.state, .succeeded, job.reason ?? "")

        let result = try JobRepository(store: nodes["bank-a"]!.store).result(jobID: jobID, limit: 100_000)
        XCTAssertEqual(result.kind, "intersection")
        XCTAssertEqual(Set(result.identifiers ?? []), expected)
        XCTAssertThrowsError(try JobRepository(store: nodes["bank-b"]!.store).result(jobID: jobID, limit: 10), "bank-b is not a recipient")

        // The admin endpoint of bank-a serves the same result.
        let viaAdmin = try await AdminClient(socketPath: try fixture.consortium.configuration(of: "bank-a").adminSocketPath)
            .send(AdminRequest(command: .jobResult, jobID: jobID, limit: 100_000))
        XCTAssertEqual(viaAdmin.result?.cardinality, expected.count)

        // Every node has an audit record of the job, and every chain is intact.
        for id in ["coordinator", "bank-a", "bank-b"] {
            let audit = AuditLog(store: nodes[id]!.store)
            let events = try audit.records(jobID: jobID).map(\.event)
            XCTAssertFalse(events.isEmpty, "\(id) has no audit record of the job")
            XCTAssertNil(try audit.verify(), "\(id)'s audit chain")
            if id != "coordinator" { XCTAssertTrue(events.contains("job.succeeded"), "\(id): \(events)") }
        }
        // The coordinator holds each participant's audit hash, equal to the participant's own last record of
        // the job before its receipt (which follows the job's end).
        for party in job.parties {
            let last = try AuditLog(store: nodes[party.nodeID]!.store).records(jobID: jobID).last { $0.event != "job.receipt" }
            XCTAssertEqual(party.auditHash, last?.hash, party.nodeID)
        }

        // Nothing in the clear: every plaintext byte each node put into TLS.
        for id in ["coordinator", "bank-a", "bank-b"] {
            let wire = WireIndex(taps.sent(by: id))
            XCTAssertGreaterThan(wire.bytes.count, 0, "\(id) sent nothing?")
            for phone in a + b {
                for form in [phone, digits(phone)] {
                    XCTAssertFalse(wire.contains(Array(form.utf8)), "\(id) sent identifier \(form)")
                    for h in PlainHashes.of(Array(form.utf8)) { XCTAssertFalse(wire.contains(h), "\(id) sent a plain hash of \(form)") }
                }
            }
        }
        // The check can fail: the tap of bank-a does contain, e.g., the job id it reported.
        XCTAssertTrue(WireIndex(taps.sent(by: "bank-a")).contains(Array(jobID.utf8)))
    }

    func testCardinalityOnlyDeliversTheCountToBothRecipients() async throws {
        let fixture = try ConsortiumFixture()
        removeAtTearDown(fixture.directory)
        let a = phoneNumbers(300, seed: 3, universe: 800), b = phoneNumbers(300, seed: 4, universe: 800)
        try fixture.importCSV(into: "bank-a", dataset: "counts_only", phones: a)
        try fixture.importCSV(into: "bank-b", dataset: "counts_only", phones: b)
        let nodes = try await fixture.consortium.startAll(logger: ConsortiumFixture.quietLogger)
        stopAtTearDown(nodes)
        let jobID = try await nodes["coordinator"]!.engine.submit(JobSubmission.phonePSI(dataset: "counts_only", deliverTo: ["bank-a", "bank-b"], cardinalityOnly: true))
        let job = try await ConsortiumFixture.waitForFinal(nodes["coordinator"]!, jobID: jobID)
        XCTAssertEqual(job.state, .succeeded, job.reason ?? "")
        let expected = Set(a.map(digits)).intersection(Set(b.map(digits))).count
        for bank in ["bank-a", "bank-b"] {
            let r = try JobRepository(store: nodes[bank]!.store).result(jobID: jobID, limit: 10)
            XCTAssertEqual(r.kind, "cardinality")
            XCTAssertEqual(r.cardinality, expected, bank)
            XCTAssertNil(r.identifiers)
        }
    }
}
