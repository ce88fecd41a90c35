import Foundation
import GRDB
import MPCNode
import MPCTestSupport
import MPCTransport
import XCTest

/// Bucketed PSI between real nodes (TLS, SQLite): a link cut in the middle of a job is resumed at the
/// next bucket and the job ends with the plain intersection; a bucket count above a node's policy is
/// refused at the proposal.
final class PSIResumeTests: XCTestCase {
    func testALinkCutAfterABucketResumesThereAndTheResultIsThePlainIntersection() async throws {
        try await linkCutResumes(psiProtocol: nil)
    }

    /// The same with the KKRT round (Protocols/psi-oprf.md): a redone bucket repeats its base OTs,
    /// columns and values byte for byte, so the resume needs nothing of its own.
    func testALinkCutInAKKRTJobResumesThereToo() async throws {
        try await linkCutResumes(psiProtocol: "kkrt")
    }

    func linkCutResumes(psiProtocol: String?) async throws {
        let fixture = try ConsortiumFixture()
        removeAtTearDown(fixture.directory)
        let a = phoneNumbers(700, seed: 31, universe: 2000), b = phoneNumbers(600, seed: 32, universe: 2000)
        try fixture.importCSV(into: "bank-a", dataset: "customers", phones: a)
        try fixture.importCSV(into: "bank-b", dataset: "customers", phones: b)
        let expected = Set(a.map(digits)).intersection(Set(b.map(digits)))
        XCTAssertGreaterThan(expected.count, 50)
        let logger = ConsortiumFixture.quietLogger
        var started: [String: NodeRuntime] = [:]
        started["coordinator"] = try await fixture.consortium.start("coordinator", logger: logger)
        started["bank-a"] = try await fixture.consortium.start("bank-a", logger: logger, faults: FaultHooks(dropPSILinkAfterBucket: 2))
        started["bank-b"] = try await fixture.consortium.start("bank-b", logger: logger)
        let nodes = started
        stopAtTearDown(nodes)

        let submission = JobSubmission.phonePSI(deliverTo: ["bank-a", "bank-b"], buckets: 6, psiProtocol: psiProtocol)
        let jobID = try await nodes["coordinator"]!.engine.submit(submission)
        let job = try await ConsortiumFixture.waitForFinal(nodes["coordinator"]!, jobID: jobID, seconds: 120)
        XCTAssertEqual(job.state, .succeeded, job.reason ?? "")
        for bank in ["bank-a", "bank-b"] {
            let r = try JobRepository(store: nodes[bank]!.store).result(jobID: jobID, limit: 100_000)
            XCTAssertEqual(Set(r.identifiers ?? []), expected, bank)
            XCTAssertEqual(r.cardinality, expected.count, bank)
            let records = try AuditLog(store: nodes[bank]!.store).records(jobID: jobID)
            let resumed = records.filter { $0.event == "job.resumed" }
            XCTAssertEqual(resumed.count, 1, "\(bank): \(records.map(\.event))")
            let details = try XCTUnwrap(resumed.first?.details)
            XCTAssertTrue(details.contains("\"from_bucket\":3"), "\(bank): \(details)")
            let succeeded = try XCTUnwrap(records.first { $0.event == "job.succeeded" }?.details)
            XCTAssertTrue(succeeded.contains("\"resumes\":1") && succeeded.contains("\"buckets\":6"), "\(bank): \(succeeded)")
            XCTAssertTrue(succeeded.contains("\"psi_protocol\":\"\(psiProtocol ?? "ecdh")\""), "\(bank): \(succeeded)")
        }
        // The job's scratch file, with the sealed key and checkpoints, is gone.
        for bank in ["bank-a", "bank-b"] {
            let scratch = try fixture.consortium.configuration(of: bank).jobsDirectory.appendingPathComponent("\(jobID).sqlite")
            XCTAssertFalse(FileManager.default.fileExists(atPath: scratch.path), bank)
        }
    }

    /// bank-b's daemon stops (gracefully) in the middle of the job: its role is suspended, not failed, and
    /// resumes when bank-b starts again; bank-a waits for it within the idle limit.
    func testAJobSuspendedByADaemonStopResumesWhenItStartsAgain() async throws {
        let fixture = try ConsortiumFixture()
        removeAtTearDown(fixture.directory)
        let a = phoneNumbers(500, seed: 35, universe: 1500), b = phoneNumbers(500, seed: 36, universe: 1500)
        try fixture.importCSV(into: "bank-a", dataset: "customers", phones: a)
        try fixture.importCSV(into: "bank-b", dataset: "customers", phones: b)
        let logger = ConsortiumFixture.quietLogger
        let coordinator = try await fixture.consortium.start("coordinator", logger: logger)
        let bankA = try await fixture.consortium.start("bank-a", logger: logger)
        var pausing = FaultHooks()
        pausing.pauseAfterPSIBucket = (bucket: 1, pause: .seconds(60))
        let firstB = try await fixture.consortium.start("bank-b", logger: logger, faults: pausing)
        let submission = JobSubmission.phonePSI(buckets: 4)
        let jobID = try await coordinator.engine.submit(submission)
        // bank-b pauses after its bucket 1; then its daemon stops.
        let audit = AuditLog(store: firstB.store)
        for _ in 0..<200 {
            let progress = (try? JobRepository(store: firstB.store).view(jobID: jobID))?.progressDone ?? 0
            if progress > 0, try FileManager.default.contentsOfDirectory(atPath: firstB.configuration.jobsDirectory.path).isEmpty == false,
               try Self.completedBuckets(firstB, jobID) >= 2 { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        XCTAssertEqual(try Self.completedBuckets(firstB, jobID), 2)
        await firstB.stop()
        XCTAssertEqual(try JobRepository(store: firstB.store).view(jobID: jobID).state, .running, "suspended, not failed")
        XCTAssertTrue(try audit.records(jobID: jobID).contains { $0.event == "job.suspended" })

        let secondB = try await fixture.consortium.start("bank-b", logger: logger)
        stopAtTearDown([coordinator, bankA, secondB])
        let job = try await ConsortiumFixture.waitForFinal(coordinator, jobID: jobID, seconds: 120)
        XCTAssertEqual(job.state, .succeeded, job.reason ?? "")
        let r = try JobRepository(store: bankA.store).result(jobID: jobID, limit: 100_000)
        XCTAssertEqual(Set(r.identifiers ?? []), Set(a.map(digits)).intersection(Set(b.map(digits))))
        let events = try AuditLog(store: secondB.store).records(jobID: jobID)
        XCTAssertTrue(events.contains { $0.event == "job.resumed" && $0.details.contains("\"from_bucket\":2") }, "\(events.map(\.details))")
    }

    /// Buckets bank-b recorded in the job's scratch database.
    static func completedBuckets(_ node: NodeRuntime, _ jobID: String) throws -> Int {
        let path = node.configuration.jobsDirectory.appendingPathComponent("\(jobID).sqlite").path
        guard FileManager.default.fileExists(atPath: path) else { return 0 }
        let queue = try DatabaseQueue(path: path)
        defer { try? queue.close() }
        return try queue.read { db in try db.tableExists("bucket_done") ? (Int.fetchOne(db, sql: "SELECT COUNT(*) FROM bucket_done") ?? 0) : 0 }
    }

    func testABucketCountAboveANodesPolicyIsRefusedAtTheProposal() async throws {
        let fixture = try ConsortiumFixture(policy: { bank in
            ConsortiumFixture.defaultPolicy(bank).replacingOccurrences(of: "  coordinators: [coordinator]", with: "  coordinators: [coordinator]\n  max_buckets: 8")
        })
        removeAtTearDown(fixture.directory)
        try fixture.importCSV(into: "bank-a", dataset: "customers", phones: phoneNumbers(100, seed: 33))
        try fixture.importCSV(into: "bank-b", dataset: "customers", phones: phoneNumbers(100, seed: 34))
        let nodes = try await fixture.consortium.startAll(logger: ConsortiumFixture.quietLogger)
        stopAtTearDown(nodes)
        let submission = JobSubmission.phonePSI(buckets: 64)
        let jobID = try await nodes["coordinator"]!.engine.submit(submission)
        let job = try await ConsortiumFixture.waitForFinal(nodes["coordinator"]!, jobID: jobID)
        XCTAssertEqual(job.state, .refused)
        XCTAssertTrue((job.reason ?? "").contains("max_buckets"), job.reason ?? "")
    }
}
