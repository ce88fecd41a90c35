import MPCBench
import Foundation
import MPCNode
import MPCTestSupport
import XCTest

/// Jobs over the HTTP API, as a coordinator's and a bank's systems would use it: a PSI submitted by
/// POST, followed as server-sent events to its end, its result read page by page by the recipient's
/// operator; the audit trail with its chain verified; datasets as metadata only; each role limited to
/// its paths; bad requests a clear 4xx.
final class JobsHTTPAPITests: XCTestCase {
    func testAJobSubmittedFollowedAndReadOverHTTPWithRolesEnforced() async throws {
        let coordinatorToken = HTTPAPISettings.newToken(), operatorToken = HTTPAPISettings.newToken(), viewer = HTTPAPISettings.newToken()
        func http(_ tokens: [(String, String, String)]) -> String {
            "http:\n  listen: 127.0.0.1:0\n  tokens:\n" + tokens.map { "    - {name: \($0.0), sha256: \($0.1), roles: [\($0.2)]}\n" }.joined() + "\n"
        }
        var consortium: LocalConsortium!
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mpcnode-jobs-api-\(UUID().uuidString)")
        removeAtTearDown(directory)
        consortium = try LocalConsortium.create(in: directory, banks: ["bank-a", "bank-b"], policy: { bank in
            (bank == "bank-a" ? http([("ops", operatorToken.sha256, "operator"), ("regulator-viewer", viewer.sha256, "regulator")]) : "")
                + ConsortiumFixture.defaultPolicy(bank)
        }, coordinatorExtra: http([("desk", coordinatorToken.sha256, "coordinator")]))
        let a = phoneNumbers(400, seed: 41), b = phoneNumbers(400, seed: 42)
        try consortium.importCSV(Self.csv(a), into: "bank-a", dataset: "customers", idColumn: "phone")
        try consortium.importCSV(Self.csv(b), into: "bank-b", dataset: "customers", idColumn: "phone")
        let coordinator = try await NodeWithAPI.start(consortium, "coordinator", logger: ConsortiumFixture.quietLogger)
        let bankA = try await NodeWithAPI.start(consortium, "bank-a", logger: ConsortiumFixture.quietLogger)
        let bankB = try await consortium.start("bank-b", logger: ConsortiumFixture.quietLogger)
        stopAtTearDown([coordinator.node, bankA.node, bankB])
        let desk = PlainHTTPClient(port: try XCTUnwrap(coordinator.api?.port)), ops = PlainHTTPClient(port: try XCTUnwrap(bankA.api?.port))
        func auth(_ token: String, json: Bool = false) -> [String: String] {
            var h = ["Authorization": "Bearer \(token)"]
            if json { h["Content-Type"] = "application/json" }
            return h
        }
        func object(_ r: PlainHTTPClient.Response) -> [String: Any] { (r.json as? [String: Any]) ?? [:] }

        // Submit.
        let submission = try JSONEncoder().encode(JobSubmission.phonePSI(group: "ristretto255"))
        let submitted = try await desk.send("POST", "/v1/jobs", headers: auth(coordinatorToken.token, json: true), body: submission)
        XCTAssertEqual(submitted.status, 202, String(decoding: submitted.body, as: UTF8.self))
        let jobID = try XCTUnwrap(object(submitted)["job_id"] as? String)
        XCTAssertEqual(submitted.headers["location"], "/v1/jobs/\(jobID)")

        // Follow it: events until the end, the last one final.
        let stream = try await PlainHTTPClient(port: try XCTUnwrap(coordinator.api?.port)).send("GET", "/v1/jobs/\(jobID)/events", headers: auth(coordinatorToken.token))
        XCTAssertEqual(stream.status, 200)
        XCTAssertEqual(stream.headers["content-type"], "text/event-stream")
        let text = String(decoding: stream.body, as: UTF8.self)
        XCTAssertTrue(text.hasPrefix("event: job\ndata: {"), text)
        XCTAssertTrue(text.hasSuffix("event: end\ndata: {\"state\":\"succeeded\"}\n\n"), text)
        let job = object(try await desk.send("GET", "/v1/jobs/\(jobID)", headers: auth(coordinatorToken.token)))
        XCTAssertEqual(job["state"] as? String, "succeeded")

        // The recipient's operator reads the result in pages of 7 and gets exactly the intersection.
        let expected = Set(a.map(digits)).intersection(Set(b.map(digits)))
        _ = try await ConsortiumFixture.waitForFinal(bankA.node, jobID: jobID)
        var read: [String] = [], after: String?, pages = 0
        repeat {
            let path = "/v1/jobs/\(jobID)/result?limit=7" + (after.map { "&after=\($0)" } ?? "")
            let page = object(try await ops.send("GET", path, headers: auth(operatorToken.token)))
            read += ((page["rows"] as? [[String?]]) ?? []).compactMap { $0.first ?? nil }
            after = page["next"] as? String
            pages += 1
        } while after != nil && pages < 1000
        XCTAssertEqual(read.count, expected.count)
        XCTAssertEqual(Set(read), expected)
        XCTAssertGreaterThan(expected.count, 20, "the data must overlap for the paging to mean anything")
        XCTAssertGreaterThan(pages, 2)

        // Audit with its chain; datasets as metadata only (no identifier of the data in the answer).
        let audit = object(try await ops.send("GET", "/v1/audit?job=\(jobID)", headers: auth(operatorToken.token)))
        XCTAssertEqual(audit["chain_intact"] as? Bool, true)
        XCTAssertFalse(((audit["records"] as? [[String: Any]]) ?? []).isEmpty)
        let datasets = try await ops.send("GET", "/v1/datasets", headers: auth(operatorToken.token))
        XCTAssertEqual(datasets.status, 200)
        let body = String(decoding: datasets.body, as: UTF8.self)
        XCTAssertTrue(body.contains("\"customers\""), body)
        for phone in a.prefix(50) { XCTAssertFalse(body.contains(digits(phone)), "a row of the dataset in its metadata") }

        // The policy in force, read-only, in the configuration's words with the defaults filled in.
        let policy = object(try await ops.send("GET", "/v1/policy", headers: auth(operatorToken.token)))
        XCTAssertEqual(policy["coordinators"] as? [String], ["coordinator"])
        XCTAssertEqual(policy["min_paillier_bits"] as? Int, 2048)
        let customers = try XCTUnwrap((policy["datasets"] as? [String: [String: Any]])?["customers"], "\(policy)")
        XCTAssertEqual(customers["min_set_size"] as? Int, 20)
        XCTAssertEqual(customers["protocols"] as? [String], ["psi", "psi-cardinality"])
        XCTAssertEqual(customers["min_intersection"] as? Int, DatasetPolicy.defaultMinimumIntersection, "a default is shown")
        XCTAssertNil(customers["max_jobs_per_day"], "an unset limit is absent, not invented")
        do { let status = try await ops.send("GET", "/v1/policy", headers: auth(viewer.token)).status; XCTAssertEqual(status, 403) }
        do { let status = try await ops.send("POST", "/v1/policy", headers: auth(operatorToken.token, json: true), body: Data("{}".utf8)).status; XCTAssertTrue([404, 405].contains(status), "\(status)") }

        // Roles: a regulator's viewer reads reports, not the audit nor results; the operator cannot submit;
        // a bank's node takes no submission at all.
        do { let status = try await ops.send("GET", "/v1/reports", headers: auth(viewer.token)).status; XCTAssertEqual(status, 200) }
        do { let status = try await ops.send("GET", "/v1/audit", headers: auth(viewer.token)).status; XCTAssertEqual(status, 403) }
        do { let status = try await ops.send("GET", "/v1/jobs/\(jobID)/result", headers: auth(viewer.token)).status; XCTAssertEqual(status, 403) }
        do {
            let status = try await desk.send("POST", "/v1/jobs", headers: auth(operatorToken.token, json: true), body: submission).status
            XCTAssertEqual(status, 401, "bank-a's token is not one the coordinator's node knows")
        }
        do { let status = try await ops.send("POST", "/v1/jobs", headers: auth(operatorToken.token, json: true), body: submission).status; XCTAssertEqual(status, 403) }

        // Bad requests.
        do { let status = try await ops.send("GET", "/v1/jobs/no-such-job", headers: auth(operatorToken.token)).status; XCTAssertEqual(status, 404) }
        do { let status = try await ops.send("GET", "/v1/jobs/\(String(repeating: "x", count: 65))", headers: auth(operatorToken.token)).status; XCTAssertEqual(status, 400) }
        do { let status = try await ops.send("GET", "/v1/jobs/bad.id", headers: auth(operatorToken.token)).status; XCTAssertEqual(status, 400) }
        do { let status = try await ops.send("GET", "/v1/jobs?limit=0", headers: auth(operatorToken.token)).status; XCTAssertEqual(status, 400) }
        do { let status = try await ops.send("GET", "/v1/jobs/\(jobID)/result?columns=salary", headers: auth(operatorToken.token)).status; XCTAssertEqual(status, 400) }
        do { let status = try await desk.send("POST", "/v1/jobs", headers: auth(coordinatorToken.token, json: true), body: Data("{\"protocolName\": 7}".utf8)).status; XCTAssertEqual(status, 400) }
        do { let status = try await desk.send("POST", "/v1/jobs", headers: auth(coordinatorToken.token), body: submission).status; XCTAssertEqual(status, 415) }
        // Still answering.
        do { let status = try await ops.send("GET", "/v1/jobs", headers: auth(operatorToken.token)).status; XCTAssertEqual(status, 200) }
    }

    static func csv(_ phones: [String]) -> String {
        "customer_id,phone,balance\n" + phones.enumerated().map { "C\($0.offset),\(digits($0.element)),\($0.offset).00\n" }.joined()
    }
}
