import Foundation
import MPCNode
import XCTest

/// Heartbeats keep a waiting link alive, so a peer that keeps its connection up but never sends what is
/// due could stall a job forever; each node's `max_job_seconds` ends it. bank-b here stalls (its first
/// read of its input waits 30 s, its session already open): bank-a, whose limit is 10 s, fails the job
/// naming the limit, and the coordinator learns it.
final class JobDeadlineTests: XCTestCase {
    func testAStalledJobFailsAtTheNodesDeadline() async throws {
        let fixture = try ConsortiumFixture(maximumJobSeconds: 10)
        removeAtTearDown(fixture.directory)
        try fixture.importCSV(into: "bank-a", dataset: "customers", phones: phoneNumbers(120, seed: 41))
        try fixture.importCSV(into: "bank-b", dataset: "customers", phones: phoneNumbers(120, seed: 42))
        var nodes: [String: NodeRuntime] = [:]
        for id in ["coordinator", "bank-a", "bank-b"] {
            nodes[id] = try await fixture.consortium.start(id, logger: ConsortiumFixture.quietLogger,
                                                           faults: id == "bank-b" ? FaultHooks(slowFirstInputRead: .seconds(30)) : nil)
        }
        let running = nodes
        stopAtTearDown(running)
        let started = Date()
        let jobID = try await nodes["coordinator"]!.engine.submit(JobSubmission.phonePSI())
        var job = try await ConsortiumFixture.waitForFinal(nodes["coordinator"]!, jobID: jobID, seconds: 40)
        XCTAssertEqual(job.state, .failed)
        // Both banks have the limit; whichever report reaches the coordinator first ends the job, and the
        // other's follows: the coordinator's view names the deadline once the reports are in.
        func reasons(_ j: JobView) -> [String] { [j.reason ?? ""] + j.parties.map { $0.reason ?? "" } }
        for _ in 0..<100 where !reasons(job).contains(where: { $0.contains("max_job_seconds") }) {
            try await Task.sleep(for: .milliseconds(50))
            job = try JobRepository(store: nodes["coordinator"]!.store).view(jobID: jobID)
        }
        XCTAssertTrue(reasons(job).contains { $0.contains("max_job_seconds") }, "\(reasons(job))")
        XCTAssertFalse(reasons(job).contains { $0.contains("CancellationError") }, "a local stop is worded for people: \(reasons(job))")
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertGreaterThanOrEqual(elapsed, 9.5)
        XCTAssertLessThan(elapsed, 29, "ended by the deadline, not by the stalled party waking up")
    }
}
