import MPCBench
import Foundation
import MPCNode
import MPCWire
import XCTest

/// A job's role runs off the engine's actor, and its snapshot holds no lock on the node's database: while
/// one job copies and sorts a 2^20-row snapshot of its input, the same node answers (and records) another
/// proposal at once. (The snapshot's transaction once took the write lock of the attached node database,
/// so every write of the node waited for it.)
final class EngineConcurrencyTests: XCTestCase {
    func testAProposalIsAnsweredWhileAnotherJobPreparesALargeSnapshot() async throws {
        let fixture = try ConsortiumFixture()
        defer { fixture.remove() }
        let rows = 1 << 20
        try fixture.importCSV(into: "bank-a", dataset: "customers", phones: (0..<rows).map { "+44 7\(String(format: "%09d", $0))" })
        try fixture.importCSV(into: "bank-a", dataset: "tiny", phones: phoneNumbers(50, seed: 3))
        let bankA = try await fixture.consortium.start("bank-a", logger: ConsortiumFixture.quietLogger)
        let coordinator = try HostileNameTests.HostileCoordinator(fixture)
        let audit = AuditLog(store: bankA.store)

        // Job 1: a PSI whose first party (bank-a) snapshots 2^20 identifiers before it dials bank-b
        // (not running here, so the job fails right after the snapshot).
        var big = HostileNameTests.psiSpec(jobID: "job-000000000001")
        big.deliverTo = ["bank-a"]
        let accepted = try await coordinator.propose(big)
        XCTAssertTrue(accepted.accepted, accepted.reason)
        guard case .ack? = try await coordinator.start(big.jobID).kind else { return XCTFail("job 1 did not start") }

        // Wait until its snapshot is being written (the scratch file exists, no job.started record yet).
        let scratch = bankA.configuration.jobsDirectory.appendingPathComponent("\(big.jobID).sqlite")
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: scratch.path) && Date() < deadline { try await Task.sleep(for: .milliseconds(5)) }
        XCTAssertTrue(FileManager.default.fileExists(atPath: scratch.path), "job 1 began its snapshot")
        XCTAssertTrue(try audit.records(jobID: big.jobID).allSatisfy { $0.event != "job.started" }, "the snapshot is still being prepared")

        // Job 2, from the same coordinator, on another dataset: answered while job 1 is still preparing.
        var small = HostileNameTests.psiSpec(jobID: "job-000000000002")
        small.parties[0].dataset = "tiny"
        let asked = Date()
        let decision = try await coordinator.propose(small)
        let answeredIn = Date().timeIntervalSince(asked)
        XCTAssertTrue(decision.accepted, decision.reason)
        XCTAssertTrue(try audit.records(jobID: big.jobID).allSatisfy { $0.event != "job.started" },
                      "job 2's proposal was answered (in \(answeredIn) s) only after job 1's snapshot was ready")

        // Job 1 ends (bank-b is unreachable) and its scratch snapshot is removed.
        let job = try await ConsortiumFixture.waitForFinal(bankA, jobID: big.jobID, seconds: 120)
        XCTAssertEqual(job.state, .failed)
        XCTAssertTrue(try audit.records(jobID: big.jobID).contains { $0.event == "job.started" && $0.details.contains("\"input_rows\":\(rows)") })
        XCTAssertFalse(FileManager.default.fileExists(atPath: scratch.path))
        await bankA.stop()
        try await coordinator.group.shutdownGracefully()
    }
}
