import MPCBench
import Foundation
import MPCNode
import MPCTestSupport
import XCTest

/// `/metrics` of a bank's node after real jobs (one run, one refused by its policy): the jobs by kind,
/// role and outcome, their durations and bytes, the refusal by rule, the certificates' days to expiry;
/// a token with the `metrics` role only; the probes open.
final class MetricsEndpointTests: XCTestCase {
    func testMetricsCountJobsRefusalsAndCertificateExpiryAndNeedTheMetricsRole() async throws {
        let scrape = HTTPAPISettings.newToken(), lookupOnly = HTTPAPISettings.newToken()
        let fixture = try ConsortiumFixture(policy: { bank in
            (bank == "bank-a" ? """
                http:
                  listen: 127.0.0.1:0
                  tokens:
                    - {name: prometheus, sha256: \(scrape.sha256), roles: [metrics]}
                    - {name: fraud-engine, sha256: \(lookupOnly.sha256), roles: [lookup]}

                """ : "") + ConsortiumFixture.defaultPolicy(bank)
        })
        removeAtTearDown(fixture.directory)
        let a = phoneNumbers(300, seed: 31), b = phoneNumbers(300, seed: 32)
        try fixture.importCSV(into: "bank-a", dataset: "customers", phones: a)
        try fixture.importCSV(into: "bank-b", dataset: "customers", phones: b)
        try fixture.importCSV(into: "bank-a", dataset: "secret", phones: a)
        try fixture.importCSV(into: "bank-b", dataset: "secret", phones: b)
        let coordinator = try await fixture.consortium.start("coordinator", logger: ConsortiumFixture.quietLogger)
        let bankB = try await fixture.consortium.start("bank-b", logger: ConsortiumFixture.quietLogger)
        let bankA = try await NodeWithAPI.start(fixture.consortium, "bank-a", logger: ConsortiumFixture.quietLogger)
        stopAtTearDown([bankA.node, bankB, coordinator])
        let port = try XCTUnwrap(bankA.api?.port)

        func psi(_ dataset: String) async throws -> JobView {
            let id = try await coordinator.engine.submit(JobSubmission.phonePSI(dataset: dataset, group: "ristretto255"))
            return try await ConsortiumFixture.waitForFinal(coordinator, jobID: id)
        }
        let ran = try await psi("customers")
        XCTAssertEqual(ran.state, .succeeded, ran.reason ?? "")
        let refused = try await psi("secret")  // not in either bank's policy
        XCTAssertEqual(refused.state, .refused)
        _ = try await ConsortiumFixture.waitForFinal(bankA.node, jobID: ran.id)

        // A stranger speaking plain HTTP to the peer port: a failed TLS handshake, counted by reason.
        _ = try? await PlainHTTPClient(port: bankA.node.peerPort).send("GET", "/", headers: [:])
        try await Task.sleep(for: .milliseconds(200))

        let client = PlainHTTPClient(port: port)
        let response = try await client.send("GET", "/metrics", headers: ["Authorization": "Bearer \(scrape.token)"])
        XCTAssertEqual(response.status, 200)
        let text = String(decoding: response.body, as: UTF8.self)
        func value(_ name: String, _ labels: [String: String]) -> Double? {
            for line in text.split(separator: "\n") where line.hasPrefix(name + "{") {
                let inside = line.dropFirst(name.count + 1).prefix { $0 != "}" }
                let pairs = Dictionary(uniqueKeysWithValues: inside.split(separator: ",").compactMap { pair -> (String, String)? in
                    let kv = pair.split(separator: "=", maxSplits: 1)
                    return kv.count == 2 ? (String(kv[0]), kv[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))) : nil
                })
                if pairs == labels, let number = line.split(separator: " ").last.flatMap({ Double($0) }) { return number }
            }
            return nil
        }
        XCTAssertEqual(value("mpcnode_jobs_total", ["kind": "psi", "role": "participant", "outcome": "succeeded"]), 1, text)
        XCTAssertEqual(value("mpcnode_jobs_total", ["kind": "psi", "role": "participant", "outcome": "refused"]), 1, text)
        XCTAssertEqual(value("mpcnode_policy_refusals_total", ["rule": "dataset_not_exposed"]), 1, text)
        XCTAssertEqual(value("mpcnode_job_duration_seconds_count", ["kind": "psi", "role": "participant"]), 2, text)
        XCTAssertGreaterThan(value("mpcnode_peer_job_bytes_total", ["kind": "psi", "direction": "sent"]) ?? 0, 1000, text)
        XCTAssertGreaterThan(value("mpcnode_peer_job_bytes_total", ["kind": "psi", "direction": "received"]) ?? 0, 1000, text)
        // Bytes on the wire per peer (after the handshake): bank-a exchanged PSI messages with bank-b.
        XCTAssertGreaterThan(value("mpcnode_peer_bytes_total", ["peer": "bank-b", "direction": "sent"]) ?? 0, 1000, text)
        XCTAssertGreaterThan(value("mpcnode_peer_bytes_total", ["peer": "bank-b", "direction": "received"]) ?? 0, 1000, text)
        XCTAssertGreaterThan(value("mpcnode_peer_bytes_total", ["peer": "coordinator", "direction": "received"]) ?? 0, 0, text)
        XCTAssertNotNil(value("mpcnode_peer_connections", ["peer": "bank-b"]), text)
        let days = try XCTUnwrap(value("mpcnode_certificate_expiry_days", ["certificate": "node"]), text)
        XCTAssertTrue((1...4000).contains(days), "\(days)")
        XCTAssertNotNil(value("mpcnode_certificate_expiry_days", ["certificate": "ca"]), text)
        let handshakes = text.split(separator: "\n").filter { $0.hasPrefix("mpcnode_tls_handshake_failures_total{") }
        XCTAssertEqual(handshakes.count, 1, text)
        XCTAssertTrue(handshakes.first?.hasSuffix(" 1") == true, "\(handshakes)")
        // The coordinator's own count is its own: bank-a never coordinated.
        XCTAssertNil(value("mpcnode_jobs_total", ["kind": "psi", "role": "coordinator", "outcome": "succeeded"]))

        // No token: 401; a token without the role: 403. The probes need none.
        do { let status = try await client.send("GET", "/metrics", headers: [:]).status; XCTAssertEqual(status, 401) }
        do { let status = try await client.send("GET", "/metrics", headers: ["Authorization": "Bearer \(lookupOnly.token)"]).status; XCTAssertEqual(status, 403) }
        let health = try await client.send("GET", "/healthz", headers: [:])
        XCTAssertEqual(health.status, 200)
        XCTAssertEqual(String(decoding: health.body, as: UTF8.self), "ok\n")
        do { let status = try await client.send("GET", "/readyz", headers: [:]).status; XCTAssertEqual(status, 200) }
    }
}
