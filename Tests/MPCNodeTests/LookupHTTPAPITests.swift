import MPCBench
import Foundation
import MPCNode
import MPCTestSupport
import XCTest

/// The local HTTP API a bank's fraud system calls (Docs/api/openapi.yaml): a lookup by token gives the
/// same answers as the node's service; no anonymous access; bad input gets a clear 4xx and leaves the
/// node answering.
final class LookupHTTPAPITests: XCTestCase {
    static let generated = HTTPAPISettings.newToken()
    static var token: String { generated.token }
    static var tokenHash: String { generated.sha256 }

    func testLookupsOverHTTPAndEveryBadRequestIsAClear4xx() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mpcnode-api-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let hash = Self.tokenHash
        let c = try LocalConsortium.create(in: directory, banks: ["bank-a", "bank-b"], policy: { bank in
            bank == "bank-b"
                ? """
                  http:
                    listen: 127.0.0.1:0
                    max_request_bytes: 65536
                    max_batch_keys: 100
                    tokens:
                      - name: fraud-engine
                        sha256: \(hash)
                        roles: [lookup]
                      - name: dashboard
                        sha256: \(String(repeating: "ab", count: 32))
                        roles: [read]
                  \(ListLookupNodeTests.policy("bank-b"))
                  """
                : ListLookupNodeTests.policy(bank)
        })
        let phones = ListLookupNodeTests.phones(60, seed: 3)
        let listed = phones.prefix(30).map { ListLookupNodeTests.Listed(phone: $0, risk: "high", reason: "mule") }
        try ListLookupNodeTests.importList(c, "bank-a", "blacklist", listed)
        let holder = try await c.start("bank-a", logger: ConsortiumFixture.quietLogger)
        let querier = try await NodeWithAPI.start(c, "bank-b", logger: ConsortiumFixture.quietLogger)
        let port = try XCTUnwrap(querier.api?.port)
        await holder.lookupHolder.refreshAll()
        _ = await querier.node.lookupQuerier.syncAll()

        let client = PlainHTTPClient(port: port)
        let auth = ["Authorization": "Bearer \(Self.token)", "Content-Type": "application/json"]
        func post(_ body: String, headers: [String: String] = auth) async throws -> PlainHTTPClient.Response {
            try await client.send("POST", "/v1/lookups", headers: headers, body: Data(body.utf8))
        }

        // One key, written with spaces and a plus: digits-only applies; a hit names holder, label, version.
        var r = try await post(#"{"key": "\#(phones[0])"}"#)
        XCTAssertEqual(r.status, 200, String(decoding: r.body, as: UTF8.self))
        var results = try XCTUnwrap((r.json as? [String: Any])?["results"] as? [[String: Any]])
        XCTAssertEqual(results.count, 1)
        XCTAssertEqual(results[0]["listed"] as? Bool, true)
        let hit = try XCTUnwrap((results[0]["hits"] as? [[String: Any]])?.first)
        XCTAssertEqual(hit["holder"] as? String, "bank-a")
        XCTAssertEqual(hit["label"] as? [String: String], ["risk": "high", "reason": "mule"])
        XCTAssertEqual(hit["version"] as? Int, 1)
        XCTAssertNotNil((r.json as? [String: Any])?["elapsed_ms"] as? Double)

        // A batch: exactly the listed ones are listed.
        let batch = phones.map { "\"\($0)\"" }.joined(separator: ",")
        r = try await post(#"{"keys": [\#(batch)]}"#)
        XCTAssertEqual(r.status, 200)
        results = try XCTUnwrap((r.json as? [String: Any])?["results"] as? [[String: Any]])
        XCTAssertEqual(results.map { $0["listed"] as? Bool }, phones.indices.map { $0 < 30 })

        // No anonymous access, a wrong token, a token without the role.
        r = try await client.send("POST", "/v1/lookups", headers: ["Content-Type": "application/json"], body: Data(#"{"key":"1"}"#.utf8))
        XCTAssertEqual(r.status, 401)
        XCTAssertNotNil(r.headers["www-authenticate"])
        r = try await post(#"{"key":"1"}"#, headers: ["Authorization": "Bearer nope", "Content-Type": "application/json"])
        XCTAssertEqual(r.status, 401)
        r = try await client.send("GET", "/v1/lookups/lists", headers: ["Authorization": "Bearer \(Self.token)"])
        XCTAssertEqual(r.status, 403, "the fraud engine's token has no read role")

        // Bad input: each a 4xx with a JSON error that names the problem.
        func expectError(_ response: PlainHTTPClient.Response, _ status: Int, _ code: String, file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertEqual(response.status, status, String(decoding: response.body, as: UTF8.self), file: file, line: line)
            let error = (response.json as? [String: Any])?["error"] as? [String: String]
            XCTAssertEqual(error?["code"], code, file: file, line: line)
            XCTAssertFalse((error?["message"] ?? "").isEmpty, file: file, line: line)
        }
        expectError(try await post(#"{"key": ""}"#), 400, "bad_key")
        expectError(try await post(#"{"key": "no digits here"}"#), 400, "bad_key")
        expectError(try await post(#"{"keys": []}"#), 400, "no_key")
        expectError(try await post(#"{"key": 12"#), 400, "malformed_json")
        expectError(try await post(#"{"key": 12}"#), 400, "malformed_json")
        expectError(try await post(#"["a"]"#), 400, "malformed_json")
        expectError(try await post(#"{"key": "1"}"#, headers: ["Authorization": "Bearer \(Self.token)", "Content-Type": "text/plain"]), 415, "unsupported_media_type")
        expectError(try await post(#"{"keys": [\#((0..<101).map { "\"\($0)\"" }.joined(separator: ","))]}"#), 413, "too_many_keys")
        expectError(try await post(#"{"keys": ["\#(String(repeating: "9", count: 10 << 20))"]}"#), 413, "request_too_large")
        expectError(try await post(#"{"key": "1", "lists": ["nobody"]}"#), 400, "bad_list")
        expectError(try await post(#"{"key": "1", "lists": ["bank-c:blacklist"]}"#), 404, "unknown_list")
        expectError(try await PlainHTTPClient(port: port).send("GET", "/v1/lookups", headers: ["Authorization": "Bearer \(Self.token)"]), 405, "method_not_allowed")
        expectError(try await PlainHTTPClient(port: port).send("GET", "/v1/nothing", headers: ["Authorization": "Bearer \(Self.token)"]), 404, "not_found")

        // The node is unaffected: the next lookup answers as before.
        r = try await PlainHTTPClient(port: port).send("POST", "/v1/lookups", headers: auth, body: Data(#"{"key": "\#(phones[1])"}"#.utf8))
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(((r.json as? [String: Any])?["results"] as? [[String: Any]])?.first?["listed"] as? Bool, true)

        await querier.stop()
        await holder.stop()
    }
}
