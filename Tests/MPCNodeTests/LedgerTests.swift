import MPCBench
import Foundation
import GRDB
@testable import MPCNode
import XCTest

/// The consortium ledger between real nodes (Protocols/ledger.md): each node's audit records are the
/// leaves of its Merkle log; peers pull signed heads with consistency proofs. An operator who edits an old
/// record (rewriting its leaf too), deletes the tail of the log, or restores an older copy of the database
/// is caught by the peers that saw a later head, which name the node and what they saw; a job's record in
/// each party's log is proven to the coordinator.
final class LedgerTests: XCTestCase {
    func testRewrittenTruncatedOrReplayedLogsAreCaughtByPeersAndJobRecordsAreProven() async throws {
        let fixture = try ConsortiumFixture()
        defer { fixture.remove() }
        try fixture.importCSV(into: "bank-a", dataset: "customers", phones: phoneNumbers(200, seed: 61))
        try fixture.importCSV(into: "bank-b", dataset: "customers", phones: phoneNumbers(200, seed: 62))
        var nodes = try await fixture.consortium.startAll(logger: ConsortiumFixture.quietLogger)
        defer { let all = nodes; Task { for n in all.values { await n.stop() } } }
        func psi() async throws -> String {
            let id = try await nodes["coordinator"]!.engine.submit(JobSubmission.phonePSI(group: "ristretto255"))
            let state = try await ConsortiumFixture.waitForFinal(nodes["coordinator"]!, jobID: id).state
            XCTAssertEqual(state, .succeeded)
            return id
        }
        func restart(_ id: String, tamper: (Database) throws -> Void) async throws {
            await nodes[id]!.stop()
            let store = try NodeStore(path: fixture.consortium.configuration(of: id).databasePath)
            try store.pool.write(tamper)
            nodes[id] = try await fixture.consortium.start(id, logger: ConsortiumFixture.quietLogger)
        }
        let coordinator = { nodes["coordinator"]!.ledger }

        // Honest operation: first heads, then heads that extend them, every job's record proven.
        let first = try await psi()
        let pulled = await coordinator().pullAll()
        for bank in ["bank-a", "bank-b"] {
            switch pulled[bank] {
            case .first?, .advanced?, .unchanged?: break
            default: XCTFail("\(bank): \(String(describing: pulled[bank]))")
            }
        }
        let second = try await psi()
        var receipt: JobReceipts.Check?
        for _ in 0..<200 {
            receipt = try nodes["coordinator"]!.receipts.check(jobID: second)
            if receipt != nil { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        let report = try await coordinator().verify(jobID: second, parties: ["bank-a", "bank-b"], receipt: receipt)
        XCTAssertTrue(report.verified, "\(report)")
        XCTAssertEqual(report.records.filter(\.proven).map(\.node).sorted(), ["bank-a", "bank-b", "coordinator"])
        XCTAssertTrue(report.peers.allSatisfy { ["advanced", "unchanged", "first"].contains($0.outcome) }, "\(report.peers)")
        XCTAssertNil(try NodeLedger(store: nodes["bank-a"]!.store).verifyLeaves())
        // The regulator-style check of an earlier job: bank-b proves it logged it.
        let proven = try await coordinator().proveRecord(ofJob: first, receiptSHA256: try nodes["coordinator"]!.receipts.check(jobID: first)?.sha256, at: "bank-b")
        XCTAssertEqual(proven.node, "bank-b")
        XCTAssertEqual(proven.event, "job.receipt")
        XCTAssertGreaterThan(proven.headSize, proven.leafIndex)

        // bank-a's operator edits an old record in SQLite (a refusal instead of an acceptance) and rewrites
        // its leaf and the hash chain after it, so that bank-a's own checks pass.
        let held = try XCTUnwrap(try PeerHeads(store: nodes["coordinator"]!.store).latest(of: "bank-a"))
        try await restart("bank-a") { db in
            let seq = try XCTUnwrap(try Int64.fetchOne(db, sql: "SELECT seq FROM audit_log WHERE job_id = ? AND event = 'job.policy.accepted'", arguments: [first]))
            try db.execute(sql: "UPDATE audit_log SET event = 'job.policy.refused' WHERE seq = ?", arguments: [seq])
            let r = try XCTUnwrap(try Row.fetchOne(db, sql: "SELECT at, job_id, event, details FROM audit_log WHERE seq = ?", arguments: [seq]))
            try db.execute(sql: "UPDATE ledger_leaf SET hash = ? WHERE seq = ?", arguments: [Data(LedgerTests.leafHash(seq: seq, r)), seq])
            try NodeLedger.rebuildPerfectSubtrees(db)
            try db.execute(sql: "DELETE FROM tree_head")
        }
        XCTAssertNil(try NodeLedger(store: nodes["bank-a"]!.store).verifyLeaves(), "the rewrite covers the node's own check")
        let afterEdit = await coordinator().pull(from: "bank-a")
        guard case .alarm(let kind, let detail) = afterEdit else { return XCTFail("an edited log was not caught: \(afterEdit)") }
        XCTAssertEqual(kind, "fork")
        XCTAssertTrue(detail.contains("\(held.size) leaves"), detail)
        let alarms = try PeerHeads(store: nodes["coordinator"]!.store).alarms()
        XCTAssertEqual(alarms.first?.node, "bank-a")
        XCTAssertEqual(alarms.first?.kind, "fork")
        let metrics = String(decoding: nodes["coordinator"]!.metricsExposition(), as: UTF8.self)
        XCTAssertTrue(metrics.contains("mpcnode_ledger_alarms_total{kind=\"fork\",node=\"bank-a\"} 1") || metrics.contains("mpcnode_ledger_alarms_total{node=\"bank-a\",kind=\"fork\"} 1"), metrics)
        let flagged = try await coordinator().verify(jobID: nil, parties: [])
        XCTAssertFalse(flagged.verified)

        // An edit that leaves the leaf alone is caught by the node's own check.
        try await restart("bank-a") { db in
            try db.execute(sql: "UPDATE audit_log SET details = '{}' WHERE seq = (SELECT MIN(seq) FROM audit_log WHERE job_id = ?)", arguments: [second])
        }
        let mismatch = try NodeLedger(store: nodes["bank-a"]!.store).verifyLeaves()
        XCTAssertTrue(mismatch?.detail.contains("was edited") == true, "\(String(describing: mismatch))")

        // bank-b's operator deletes the tail of its log (the last job's records and what followed).
        _ = await coordinator().pull(from: "bank-b")
        let heldB = try XCTUnwrap(try PeerHeads(store: nodes["coordinator"]!.store).latest(of: "bank-b"))
        try await restart("bank-b") { db in
            let from = try XCTUnwrap(try Int64.fetchOne(db, sql: "SELECT MIN(seq) FROM audit_log WHERE job_id = ?", arguments: [second]))
            try db.execute(sql: "DELETE FROM audit_log WHERE seq >= ?", arguments: [from])
            try db.execute(sql: "DELETE FROM ledger_leaf WHERE seq >= ?", arguments: [from])
            try db.execute(sql: "DELETE FROM tree_head")
        }
        let afterTruncation = await coordinator().pull(from: "bank-b")
        guard case .alarm(let truncationKind, let truncationDetail) = afterTruncation else { return XCTFail("a truncated log was not caught: \(afterTruncation)") }
        XCTAssertTrue(["rollback", "fork"].contains(truncationKind), truncationKind)
        XCTAssertTrue(truncationDetail.contains("\(heldB.size)"), truncationDetail)

        // bank-a's operator restores a copy of its database taken before the last jobs (a replayed old log).
        _ = await coordinator().pull(from: "bank-a")
        await nodes["bank-a"]!.stop()
        let databaseA = try fixture.consortium.configuration(of: "bank-a").databasePath
        let copy = databaseA.deletingLastPathComponent().appendingPathComponent("copy.sqlite")
        do { let store = try NodeStore(path: databaseA); try await store.pool.writeWithoutTransaction { try $0.checkpoint(.truncate) } }
        try FileManager.default.copyItem(at: databaseA, to: copy)
        nodes["bank-a"] = try await fixture.consortium.start("bank-a", logger: ConsortiumFixture.quietLogger)
        _ = try await psi()
        _ = try await psi()
        _ = await coordinator().pull(from: "bank-a")
        await nodes["bank-a"]!.stop()
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: databaseA.path + suffix) }
        try FileManager.default.removeItem(at: databaseA)
        try FileManager.default.copyItem(at: copy, to: databaseA)
        nodes["bank-a"] = try await fixture.consortium.start("bank-a", logger: ConsortiumFixture.quietLogger)
        let afterReplay = await coordinator().pull(from: "bank-a")
        guard case .alarm(let replayKind, _) = afterReplay else { return XCTFail("a replayed old log was not caught: \(afterReplay)") }
        XCTAssertEqual(replayKind, "rollback")
    }

    static func leafHash(seq: Int64, _ r: Row) -> [UInt8] {
        NodeLedger.leafHash(seq: seq, at: r[0], jobID: r[1], event: r[2], details: r[3])
    }
}
