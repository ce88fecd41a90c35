import MPCBench
import Foundation
import GRDB
import MPCNode
import MPCTestSupport
import MPCTransport
import XCTest
@testable import MPCProtocols

/// Real-time list lookups between in-process nodes over mutual TLS (Protocols/list-lookup.md): the answers
/// equal a plain membership test with labels, through deltas and a key rotation; nothing of a key crosses
/// the wire; the holder's quotas and querier list are enforced; a holder that is down is named.
final class ListLookupNodeTests: XCTestCase {
    static let policy: @Sendable (String) -> String = { bank in
        switch bank {
        case "bank-a":
            return """
                policy:
                  coordinators: [coordinator]
                  datasets:
                    blacklist:
                      lookup_lists:
                        label_columns: [risk, reason]
                        queriers: [bank-b]
                        max_lookups_per_second: 4000
                        max_lookups_per_day: 1000
                """
        case "operator":
            return """
                policy:
                  coordinators: [coordinator]
                  datasets:
                    numbers:
                      lookup_lists:
                        label_columns: [risk]
                        queriers: [bank-b, bank-c]
                        disclosure: count
                        risk_column: risk
                        risk_levels: [low, medium, high]
                        max_lookups_per_second: 4000
                  lookups:
                    subscribe: [bank-a:blacklist]
                """
        case "bank-b":
            return """
                policy:
                  coordinators: [coordinator]
                  lookups:
                    subscribe: [bank-a:blacklist, operator:numbers]
                    sync_seconds: 3600
                    timeout_ms: 5000
                """
        default:
            return "policy:\n  coordinators: [coordinator]"
        }
    }

    struct Listed { var phone: String; var risk: String; var reason: String }

    static func csv(_ rows: [Listed]) -> String {
        "phone,risk,reason,listed_on\n" + rows.map { "\($0.phone),\($0.risk),\($0.reason),2026-11-0\(Int.random(in: 1...9))" }.joined(separator: "\n") + "\n"
    }

    static func importList(_ c: LocalConsortium, _ node: String, _ dataset: String, _ rows: [Listed], replace: Bool = false) throws {
        let path = c.directory.appendingPathComponent("\(node)-\(dataset)-\(UUID().uuidString.prefix(6)).csv")
        try csv(rows).write(to: path, atomically: true, encoding: .utf8)
        try DatasetCatalog(store: NodeStore(path: c.configuration(of: node).databasePath)).importCSV(DatasetImportRequest(
            dataset: dataset, csvPath: path.path, idColumn: "phone", normalization: IdentifierNormalization(digitsOnly: true), replace: replace))
    }

    static func phones(_ n: Int, seed: UInt64) -> [String] {
        var rng = SplitMix(state: seed)
        var out = Set<String>()
        while out.count < n { out.insert("+44 7700 \(String(format: "%06d", Int(rng.next() % 1_000_000)))") }
        return out.sorted()
    }

    /// Checks every key's answer from bank-a's list against the plain table `expected` (digits → label).
    func check(_ results: [LookupKeyResult], keys: [String], expected: [String: Listed], version: UInt64? = nil,
               file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(results.count, keys.count, file: file, line: line)
        for (key, result) in zip(keys, results) {
            let hit = result.hits.first { $0.holder == "bank-a" && $0.list == "blacklist" }
            XCTAssertTrue(result.checked.contains { $0.holder == "bank-a" }, "bank-a not asked for \(key): \(result.notAsked)", file: file, line: line)
            if let want = expected[digits(key)] {
                XCTAssertEqual(hit?.label, ["risk": want.risk, "reason": want.reason], "key \(key)", file: file, line: line)
                if let version { XCTAssertEqual(hit?.version, version, file: file, line: line) }
            } else {
                XCTAssertNil(hit, "key \(key) is not listed by bank-a", file: file, line: line)
            }
        }
    }

    func testLookupsEqualPlainMembershipThroughDeltasAndARotationWithNothingOfAKeyOnTheWire() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mpcnode-lookup-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let c = try LocalConsortium.create(in: directory, banks: ["bank-a", "bank-b", "operator"], policy: Self.policy)
        let universe = Self.phones(400, seed: 5)
        let risks = ["low", "medium", "high"]
        var listed: [String: Listed] = [:]
        for (i, p) in universe.prefix(150).enumerated() { listed[digits(p)] = Listed(phone: p, risk: risks[i % 3], reason: "R\(i % 7)") }
        try Self.importList(c, "bank-a", "blacklist", Array(listed.values))
        let operatorRows = universe.suffix(100).map { Listed(phone: $0, risk: "high", reason: "sim-box") }
        try Self.importList(c, "operator", "numbers", operatorRows)

        let taps = WireTaps()
        let nodes = try await c.startAll(logger: ConsortiumFixture.quietLogger, transportOptions: { taps.options(for: $0) })
        let holder = nodes["bank-a"]!, querier = nodes["bank-b"]!
        await holder.lookupHolder.refreshAll()
        await nodes["operator"]!.lookupHolder.refreshAll()
        let errors = await querier.lookupQuerier.syncAll()
        XCTAssertEqual(errors, [:])

        // Listed, unlisted, written differently from the list (the holder's digits-only applies).
        var keys = Array(universe.shuffled().prefix(120))
        keys[0] = keys[0].replacingOccurrences(of: " ", with: "-")
        var results = try await querier.lookupQuerier.lookup(keys)
        check(results, keys: keys, expected: listed, version: 1)
        // The operator's list discloses only a count and the highest risk.
        for (key, r) in zip(keys, results) {
            XCTAssertFalse(r.hits.contains { $0.holder == "operator" })
            if operatorRows.contains(where: { digits($0.phone) == digits(key) }) {
                XCTAssertEqual(r.counted, .init(listedBy: 1, highestRisk: "high"), key)
            } else {
                XCTAssertNil(r.counted, key)
            }
            XCTAssertEqual(r.listed, r.counted != nil || !r.hits.isEmpty)
        }

        // A delta: some entries removed, some added, one relabelled; the next lookup answers from version 2.
        let removed = Array(listed.keys.sorted().prefix(20))
        for d in removed { listed[d] = nil }
        let relabelled = listed.keys.sorted()[0]
        listed[relabelled]!.risk = "critical"
        for p in universe[150..<180] { listed[digits(p)] = Listed(phone: p, risk: "medium", reason: "new") }
        try Self.importList(c, "bank-a", "blacklist", Array(listed.values), replace: true)
        await holder.lookupHolder.refreshAll()
        keys = Array(universe.prefix(200))
        results = try await querier.lookupQuerier.lookup(keys)
        check(results, keys: keys, expected: listed, version: 2)
        let applied = try querier.store.read { db in
            try String.fetchAll(db, sql: "SELECT CAST(details AS TEXT) FROM audit_log WHERE event = 'lookup.table.applied' ORDER BY rowid")
        }
        XCTAssertTrue(applied.last?.contains("delta from 1") == true, "\(applied)")

        // A rotated key: the querier's next lookup is refused for its stale key, fetches the new table, asks again.
        let oldKey = await querier.lookupQuerier.status().first { $0.holder == "bank-a" }?.keyID
        _ = try await holder.lookupHolder.rotate("blacklist")
        results = try await querier.lookupQuerier.lookup(keys)
        check(results, keys: keys, expected: listed, version: 3)
        let status = await querier.lookupQuerier.status().first { $0.holder == "bank-a" }
        XCTAssertNotEqual(status?.keyID, oldKey)
        XCTAssertEqual(status?.entries, UInt64(listed.count))
        XCTAssertEqual(status?.indexBytes, listed.count * 8)
        // The replaced table's rows are gone from the querier's SQLite: only the new table's are left.
        let (stored, inForce, unused) = try querier.store.read { db in
            (try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM lookup_table_entry"), try Int.fetchOne(db, sql: "SELECT SUM(entries) FROM lookup_table"),
             try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM lookup_table_unused"))
        }
        XCTAssertEqual(stored, inForce)
        XCTAssertEqual(unused, 0)

        // Nothing of a key, nor a plain hash of one, crossed the wire either way.
        let sent = WireIndex(taps.sent(by: "bank-b") + taps.sent(by: "bank-a"))
        for key in keys.prefix(60) {
            let normalised = Array(digits(key).utf8)
            XCTAssertFalse(sent.contains(normalised), "key \(key) on the wire")
            for hash in PlainHashes.of(normalised) { XCTAssertFalse(sent.contains(hash), "a plain hash of \(key) on the wire") }
        }
        // The operator is not among bank-a's queriers: it gets no table.
        let refused = await nodes["operator"]!.lookupQuerier.syncAll()
        XCTAssertTrue(refused["bank-a:blacklist"]?.contains("no list 'blacklist' is offered to operator") == true, "\(refused)")
        let operatorAnswer = try await nodes["operator"]!.lookupQuerier.lookup([keys[1]])
        XCTAssertEqual(operatorAnswer[0].notAsked.map(\.holder), ["bank-a"])
        XCTAssertTrue(operatorAnswer[0].checked.isEmpty)
        for n in nodes.values { await n.stop() }
    }

    func testQuotasRefuseAndAreCountedAndADownHolderIsNamed() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mpcnode-lookupq-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let c = try LocalConsortium.create(in: directory, banks: ["bank-a", "bank-b", "operator"], policy: { bank in
            bank == "bank-a" ? Self.policy(bank).replacingOccurrences(of: "max_lookups_per_second: 4000", with: "max_lookups_per_second: 50")
                .replacingOccurrences(of: "max_lookups_per_day: 1000", with: "max_lookups_per_day: 60") : Self.policy(bank)
        })
        let phones = Self.phones(100, seed: 9)
        try Self.importList(c, "bank-a", "blacklist", phones.prefix(50).map { Listed(phone: $0, risk: "high", reason: "mule") })
        try Self.importList(c, "operator", "numbers", phones.suffix(20).map { Listed(phone: $0, risk: "low", reason: "x") })
        var nodes = try await c.startAll(logger: ConsortiumFixture.quietLogger)
        await nodes["bank-a"]!.lookupHolder.refreshAll()
        await nodes["operator"]!.lookupHolder.refreshAll()
        let querier = nodes["bank-b"]!.lookupQuerier
        _ = await querier.syncAll()

        // The per-second bucket holds 50: 40 keys pass, 15 more at once do not (and do not count for the day).
        let first = try await querier.lookup(Array(phones.prefix(40)))
        XCTAssertTrue(first.allSatisfy { $0.checked.contains { $0.holder == "bank-a" } })
        let burst = try await querier.lookup(Array(phones.prefix(55).suffix(15)))
        for r in burst {
            let reason = r.notAsked.first { $0.holder == "bank-a" }?.reason ?? ""
            XCTAssertTrue(reason.contains("rate limit: at most 50 lookups a second"), reason)
        }
        // A second later the bucket is full again, but the day's 60 leave room for 20 keys only.
        try await Task.sleep(for: .seconds(1))
        let second = try await querier.lookup(Array(phones.suffix(40)))
        for r in second {
            let reason = r.notAsked.first { $0.holder == "bank-a" }?.reason ?? ""
            XCTAssertTrue(reason.contains("daily quota used"), reason)
            XCTAssertFalse(r.checked.contains { $0.holder == "bank-a" }, "never a silent not-listed")
            XCTAssertTrue(r.checked.contains { $0.holder == "operator" })
        }
        await nodes["bank-a"]!.lookupHolder.flushUsage(now: Date().addingTimeInterval(3600))
        let usage = try nodes["bank-a"]!.store.read { db in
            try Row.fetchOne(db, sql: "SELECT SUM(evaluated) AS e, SUM(refused) AS r FROM lookup_usage WHERE querier = 'bank-b'")
        }
        XCTAssertEqual(usage?["e"] as Int?, 40)
        XCTAssertEqual(usage?["r"] as Int?, 55)
        let audited = try nodes["bank-a"]!.store.read { db in
            try String.fetchAll(db, sql: "SELECT CAST(details AS TEXT) FROM audit_log WHERE event = 'lookup.evaluations'")
        }
        XCTAssertEqual(audited.count, 1, "one record per querier, list and hour: \(audited)")
        XCTAssertTrue(audited.first?.contains("\"evaluated\":40") == true && audited.first?.contains("\"refused\":55") == true, "\(audited)")

        // A batch larger than a second's worth is refused as such.
        let status = await querier.status().first { $0.holder == "bank-a" }
        XCTAssertEqual(status?.maximumPerSecond, 50)

        // The operator goes down: its list is named as not asked, bank-a's quota answer still comes.
        await nodes["operator"]!.stop()
        nodes["operator"] = nil
        let third = try await querier.lookup([phones[99]])
        let down = third[0].notAsked.first { $0.holder == "operator" }
        XCTAssertNotNil(down, "\(third)")
        XCTAssertFalse(third[0].checked.contains { $0.holder == "operator" })

        // Bad keys are refused before anything is sent.
        do { _ = try await querier.lookup([""]); XCTFail("an empty key") } catch let e as LookupServiceError { XCTAssertTrue("\(e)".contains("empty")) }
        do { _ = try await querier.lookup(["no digits"]); XCTFail("a key without digits") } catch let e as LookupServiceError {
            XCTAssertTrue("\(e)".contains("normalises to nothing"), "\(e)")
        }

        // The querier restarts: its tables come back from its SQLite before any sync.
        await nodes["bank-b"]!.stop()
        let restarted = try await c.start("bank-b", logger: ConsortiumFixture.quietLogger)
        nodes["bank-b"] = restarted
        let after = await restarted.lookupQuerier.status().first { $0.holder == "operator" }
        XCTAssertEqual(after?.entries, 20)
        XCTAssertEqual(after?.version, 1)
        for n in nodes.values { await n.stop() }
    }

    /// A member with a valid certificate sends what no honest querier would, over TLS to a real holder: a
    /// request that is not whole elements, one over the batch limit, the identity element, a sync request
    /// with an oversized name, an unknown service. Each ends that session; the holder stays up, counts
    /// nothing for them, changes nothing in its list, and answers the next honest lookup.
    func testAHolderRefusesCraftedRequestsAndStaysUp() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mpcnode-lookupx-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let c = try LocalConsortium.create(in: directory, banks: ["bank-a", "bank-b", "operator"], policy: Self.policy)
        let phones = Self.phones(40, seed: 11)
        try Self.importList(c, "bank-a", "blacklist", phones.prefix(20).map { Listed(phone: $0, risk: "high", reason: "mule") })
        try Self.importList(c, "operator", "numbers", phones.suffix(5).map { Listed(phone: $0, risk: "low", reason: "x") })
        let nodes = try await c.startAll(logger: ConsortiumFixture.quietLogger)
        let holder = nodes["bank-a"]!, member = nodes["bank-b"]!
        await holder.lookupHolder.refreshAll()
        _ = await member.lookupQuerier.syncAll()
        let status = await member.lookupQuerier.status()
        let keyID = try XCTUnwrap(status.first { $0.holder == "bank-a" }?.keyID)
        let address = member.configuration.peers["bank-a"]!

        /// Sends one crafted lookup request; returns how the session ended for the member.
        func crafted(_ blinded: Data) async -> String {
            do {
                return try await member.transport.withSession(jobID: "", service: LookupServices.query, to: "bank-a", at: address) { channel in
                    let session = ProtocolSession(channel: channel)
                    try await session.sendLookup { $0.request = .with { $0.id = 1; $0.list = "blacklist"; $0.keyID = keyID; $0.blinded = blinded } }
                    let answer = try await session.receiveLookup()
                    return "answered: \(answer)"
                }
            } catch { return "\(error)" }
        }
        let partial = await crafted(Data(repeating: 7, count: 33))
        XCTAssertTrue(partial.contains("is not 1 … 4096 elements"), partial)
        let oversized = await crafted(Data(repeating: 0, count: 32 * 5000))
        XCTAssertTrue(oversized.contains("is not 1 … 4096 elements"), oversized)
        let identity = await crafted(Data(repeating: 0, count: 32))
        XCTAssertTrue(identity.contains("not a valid element"), identity)

        // A sync request with an oversized name; then one for a list not offered to this member.
        let longName: String = await {
            do {
                return try await member.transport.withSession(jobID: "", service: LookupServices.sync, to: "bank-a", at: address) { channel in
                    let session = ProtocolSession(channel: channel)
                    try await ListTableTransfer.request(session, list: String(repeating: "x", count: 300), keyID: "", version: 0)
                    return "answered: \(try await session.receiveLookup())"
                }
            } catch { return "\(error)" }
        }()
        XCTAssertFalse(longName.hasPrefix("answered"), longName)
        let other: String = await {
            do {
                return try await member.transport.withSession(jobID: "", service: LookupServices.sync, to: "bank-a", at: address) { channel in
                    let session = ProtocolSession(channel: channel)
                    try await ListTableTransfer.request(session, list: "customers", keyID: "", version: 0)
                    _ = try await ListTableTransfer.receive(session, list: "customers", maximumEntries: 10, accept: { _ in }, store: { _ in }, verify: { _, _ in })
                    return "a table"
                }
            } catch { return "\(error)" }
        }()
        XCTAssertTrue(other.contains("no list 'customers' is offered to bank-b"), other)
        // An unknown service.
        let unknown: String = await {
            do {
                return try await member.transport.withSession(jobID: "", service: "dump-everything", to: "bank-a", at: address) { channel in
                    "answered: \(try await ProtocolSession(channel: channel).receiveLookup())"
                }
            } catch { return "\(error)" }
        }()
        XCTAssertTrue(unknown.contains("offers no service 'dump-everything'"), unknown)

        // Nothing counted, nothing changed, and the holder answers the next honest lookup.
        await holder.lookupHolder.flushUsage()
        let used = await holder.lookupHolder.used(querier: "bank-b", list: "blacklist")
        let state = await holder.lookupHolder.state("blacklist")
        XCTAssertEqual(used, 0)
        XCTAssertEqual(state?.version, 1)
        XCTAssertEqual(state?.entries, 20)
        let results = try await member.lookupQuerier.lookup(Array(phones.prefix(30)))
        check(results, keys: Array(phones.prefix(30)), expected: Dictionary(uniqueKeysWithValues: phones.prefix(20).map {
            (digits($0), Listed(phone: $0, risk: "high", reason: "mule")) }), version: 1)
        for n in nodes.values { await n.stop() }
    }
}
