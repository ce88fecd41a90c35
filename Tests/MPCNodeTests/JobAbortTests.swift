import MPCBench
import Foundation
import MPCNode
import XCTest

/// A coordinator's desk stops a running job over the HTTP API: it fails at once with who asked and why,
/// the parties abort and record it, the audit says so; a second abort is a 409, another node's caller a 404.
final class JobAbortTests: XCTestCase {
    func testARunningJobAbortedOverHTTPEndsEverywhere() async throws {
        let desk = HTTPAPISettings.newToken()
        let fixture = try ConsortiumFixture()
        removeAtTearDown(fixture.directory)
        let directory = fixture.directory.appendingPathComponent("abort")
        let consortium = try LocalConsortium.create(in: directory, banks: ["bank-a", "bank-b"], policy: ConsortiumFixture.defaultPolicy,
                                                    coordinatorExtra: "http:\n  listen: 127.0.0.1:0\n  tokens:\n    - {name: desk, sha256: \(desk.sha256), roles: [coordinator]}\n")
        try consortium.importCSV("customer_id,phone\n" + (0..<200).map { "C\($0),44770090\(String(format: "%04d", $0))\n" }.joined(),
                                 into: "bank-a", dataset: "customers", idColumn: "phone")
        try consortium.importCSV("customer_id,phone\n" + (100..<300).map { "D\($0),44770090\(String(format: "%04d", $0))\n" }.joined(),
                                 into: "bank-b", dataset: "customers", idColumn: "phone")
        let coordinator = try await NodeWithAPI.start(consortium, "coordinator", logger: ConsortiumFixture.quietLogger)
        let bankA = try await consortium.start("bank-a", logger: ConsortiumFixture.quietLogger)
        // bank-b stalls for 30 s on its input: the job stays running until it is aborted.
        let bankB = try await consortium.start("bank-b", logger: ConsortiumFixture.quietLogger, faults: FaultHooks(slowFirstInputRead: .seconds(30)))
        stopAtTearDown([coordinator.node, bankA, bankB])
        let client = PlainHTTPClient(port: try XCTUnwrap(coordinator.api?.port))
        let headers = ["Authorization": "Bearer \(desk.token)", "Content-Type": "application/json"]

        let jobID = try await coordinator.node.engine.submit(JobSubmission.phonePSI(group: "ristretto255"))
        let repository = JobRepository(store: coordinator.node.store)
        for _ in 0..<100 where try repository.view(jobID: jobID).state != .running { try await Task.sleep(for: .milliseconds(50)) }
        XCTAssertEqual(try repository.view(jobID: jobID).state, .running)

        let started = Date()
        let response = try await client.send("POST", "/v1/jobs/\(jobID)/abort", headers: headers, body: Data(#"{"reason": "wrong dataset chosen"}"#.utf8))
        XCTAssertEqual(response.status, 200, String(decoding: response.body, as: UTF8.self))
        let job = try repository.view(jobID: jobID)
        XCTAssertEqual(job.state, .failed)
        XCTAssertEqual(job.reason, "aborted by desk (HTTP API): wrong dataset chosen")
        // The parties end it too, long before bank-b's stall would.
        let partyA = try await ConsortiumFixture.waitForFinal(bankA, jobID: jobID, seconds: 20)
        XCTAssertEqual(partyA.state, .failed)
        XCTAssertLessThan(Date().timeIntervalSince(started), 20)
        // bank-a records the coordinator's abort and its reason, whether it arrived before or after bank-b's
        // end of their session (which of the two ends bank-a's job first is a race).
        var recordedAtA: [AuditRecord] = []
        for _ in 0..<100 {
            recordedAtA = try AuditLog(store: bankA.store).records(jobID: jobID).filter { $0.event == "job.aborted" }
            if !recordedAtA.isEmpty { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        XCTAssertEqual(recordedAtA.count, 1)
        XCTAssertTrue(recordedAtA.first?.details.contains("wrong dataset chosen") == true, "\(recordedAtA)")
        XCTAssertTrue(partyA.reason?.contains("wrong dataset chosen") == true || partyA.reason?.contains("bank-b") == true, partyA.reason ?? "")
        let events = try AuditLog(store: coordinator.node.store).records(jobID: jobID).map(\.event)
        XCTAssertTrue(events.contains("job.aborted"), "\(events)")

        let again = try await client.send("POST", "/v1/jobs/\(jobID)/abort", headers: headers, body: Data())
        XCTAssertEqual(again.status, 409)
        let unknown = try await client.send("POST", "/v1/jobs/job-000000000000/abort", headers: headers, body: Data())
        XCTAssertEqual(unknown.status, 404)
        let malformed = try await client.send("POST", "/v1/jobs/\(jobID)/abort", headers: headers, body: Data(#"{"reason": 3}"#.utf8))
        XCTAssertEqual(malformed.status, 400)
    }
}
