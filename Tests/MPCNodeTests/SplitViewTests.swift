import Foundation
import GRDB
import MPCCrypto
@testable import MPCNode
import XCTest

/// Split views (Protocols/ledger.md): bank-b keeps two logs and shows bank-a another one than the
/// coordinator sees. Each alone sees a log that only grows; the coordinator catches it when its periodic
/// pull brings the heads bank-a holds — a head of the same size with another root at once, a head of
/// another size when bank-b cannot give a consistency proof joining it to the coordinator's. The other
/// branch's heads are made with bank-b's real key (what a dishonest bank-b would sign) and kept in
/// bank-a's store as bank-a's pull would keep them; the rest is real: nodes, mutual TLS, SQLite.
final class SplitViewTests: XCTestCase {
    func testHeadsPeersHoldOfAThirdNodeAreComparedAndASplitViewIsAFork() async throws {
        let fixture = try ConsortiumFixture()
        defer { fixture.remove() }
        try fixture.importCSV(into: "bank-a", dataset: "customers", phones: phoneNumbers(200, seed: 71))
        try fixture.importCSV(into: "bank-b", dataset: "customers", phones: phoneNumbers(200, seed: 72))
        let nodes = try await fixture.consortium.startAll(logger: ConsortiumFixture.quietLogger)
        defer { let all = nodes; Task { for n in all.values { await n.stop() } } }
        func psi() async throws {
            let id = try await nodes["coordinator"]!.engine.submit(JobSubmission.phonePSI(group: "ristretto255"))
            let state = try await ConsortiumFixture.waitForFinal(nodes["coordinator"]!, jobID: id).state
            XCTAssertEqual(state, .succeeded)
        }
        let coordinator = nodes["coordinator"]!.ledger, bankA = nodes["bank-a"]!.ledger
        let coordinatorHeads = PeerHeads(store: nodes["coordinator"]!.store), bankAHeads = PeerHeads(store: nodes["bank-a"]!.store)
        let bankBKey = nodes["bank-b"]!.signatures

        // Honest: the coordinator and bank-a hold heads of bank-b of different sizes; the coordinator checks
        // bank-a's against its own with a proof from bank-b, keeps it, and raises nothing.
        try await psi()
        _ = await coordinator.pull(from: "bank-b")
        try await psi()
        _ = await bankA.pull(from: "bank-b")
        let heldByA = try XCTUnwrap(try bankAHeads.latest(of: "bank-b"))
        let heldByCoordinator = try XCTUnwrap(try coordinatorHeads.latest(of: "bank-b"))
        XCTAssertGreaterThan(heldByA.size, heldByCoordinator.size)
        let honest = await coordinator.crossCheck([(from: "bank-a", head: heldByA)], answered: ["bank-b"])
        XCTAssertEqual(honest, [:])
        XCTAssertEqual(try coordinatorHeads.held(of: "bank-b", size: heldByA.size).map(\.root), [heldByA.root], "a head proven consistent is kept")
        // That proven head bounds bank-b's log from below although the coordinator never pulled it: a head
        // between the two sizes is a rollback (before, it passed as an advance from the pulled one).
        XCTAssertGreaterThan(heldByA.size, heldByCoordinator.size + 1)
        let between = try TreeHead.sign(node: "bank-b", size: heldByCoordinator.size + 1, root: heldByA.root, at: Date(), with: bankBKey)
        let rolledBack = try coordinator.check(.with { $0.head = between.wire }, from: "bank-b", held: heldByCoordinator)
        guard case .alarm(let rollbackKind, _) = rolledBack else { return XCTFail("a head below a proven one passed: \(rolledBack)") }
        XCTAssertEqual(rollbackKind, "rollback")
        try await nodes["coordinator"]!.store.pool.write { db in
            try db.execute(sql: "DELETE FROM peer_tree_head WHERE node = 'bank-b' AND size = ?", arguments: [between.size])
            try db.execute(sql: "DELETE FROM ledger_alarm")
        }
        let round = await coordinator.pullAll()
        XCTAssertTrue(round.values.allSatisfy { if case .alarm = $0 { false } else { true } }, "\(round)")
        XCTAssertEqual(try coordinatorHeads.alarms(), [])

        // What bank-a could make up itself — a head of bank-b it did not get from bank-b (signed with its own
        // key, or with a broken signature), a head with an absurd name — is ignored: no alarm about anyone.
        let size = try XCTUnwrap(try coordinatorHeads.latest(of: "bank-b")).size
        let otherLog = (0..<size).map { MerkleTree.leafHash(Array("another log \($0)".utf8)) }
        func otherHead(_ n: Int) throws -> TreeHead {
            try TreeHead.sign(node: "bank-b", size: n, root: MerkleTree.root(count: n) { otherLog[$0] }, at: Date(), with: bankBKey)
        }
        func bankAHolds(_ heads: [TreeHead]) async throws {
            try await nodes["bank-a"]!.store.pool.write { try $0.execute(sql: "DELETE FROM peer_tree_head WHERE node = 'bank-b'") }
            for head in heads { try bankAHeads.keep(head) }
        }
        var forged = try otherHead(size)
        forged.signature = Array(forged.signature.reversed())
        try await bankAHolds([forged, TreeHead(node: String(repeating: "x", count: 10_000), size: 1, root: otherLog[0], timestampMs: 0, signature: [], certificate: [])])
        let garbage = await coordinator.pullAll()
        try await bankAHolds([try TreeHead.sign(node: "bank-b", size: size, root: otherLog[0], at: Date(), with: nodes["bank-a"]!.signatures)])
        let garbage2 = await coordinator.pullAll()
        for round in [garbage, garbage2] { XCTAssertTrue(round.values.allSatisfy { if case .alarm = $0 { false } else { true } }, "\(round)") }
        XCTAssertEqual(try coordinatorHeads.alarms(), [])

        // bank-b shows bank-a another log of the size the coordinator holds: a fork at the next round.
        try await bankAHolds([try otherHead(size)])
        let sameSize = await coordinator.pullAll()
        guard case .alarm(let kind, let detail)? = sameSize["bank-b"] else { return XCTFail("a split view of one size passed: \(sameSize)") }
        XCTAssertEqual(kind, "fork")
        XCTAssertTrue(detail.contains("split view") && detail.contains("bank-a") && detail.contains("\(size) leaves"), detail)
        XCTAssertEqual(try coordinatorHeads.alarms().map(\.node), ["bank-b"])

        // A head of the other log of a size the coordinator never held: bank-b gives no proof joining it.
        try await bankAHolds([try otherHead(2)])
        XCTAssertTrue(try coordinatorHeads.held(of: "bank-b", size: 2).isEmpty)
        let otherSize = await coordinator.pullAll()
        guard case .alarm(let kind2, let detail2)? = otherSize["bank-b"] else { return XCTFail("a split view of another size passed: \(otherSize)") }
        XCTAssertEqual(kind2, "fork")
        XCTAssertTrue(detail2.contains("no consistency proof joins them"), detail2)
        let report = try await coordinator.verify(jobID: nil, parties: [])
        XCTAssertFalse(report.verified)

        // bank-b answers pulls but never the proof for a head bank-a holds (here: its request budget is
        // spent each round just before the check, as a node refusing that proof would answer): after three
        // rounds, a "withheld" alarm. A node that is simply down is not counted (it answered no pull).
        XCTAssertTrue(try coordinatorHeads.held(of: "bank-b", size: 3).isEmpty)
        // bank-b regains no request from now on, and its burst is spent: it refuses the proof however long
        // this test takes (with the real one-a-second refill, a slow machine had it answer and fork).
        nodes["bank-b"]!.ledger.requestsPerSecond.withLock { $0 = 0 }
        for _ in 0..<12 { _ = await coordinator.pull(from: "bank-b") }
        try await bankAHolds([try otherHead(3)])
        let shown = await coordinator.pullAll()
        XCTAssertNil({ if case .alarm? = shown["bank-b"] { return 1 } else { return nil } }() as Int?, "\(shown)")
        XCTAssertEqual(try coordinatorHeads.pending(of: "bank-b").map(\.head.size), [3], "kept, waiting for bank-b's proof")
        // The pull round may already have counted one.
        var withheld: (kind: String, detail: String)?
        for _ in 1...3 where withheld == nil {
            for _ in 0..<12 { _ = await coordinator.pull(from: "bank-b") }
            if case .alarm(let kind3, let detail3)? = await coordinator.crossCheck([], answered: ["bank-b"])["bank-b"] { withheld = (kind3, detail3) }
        }
        let attempts = try await nodes["coordinator"]!.store.pool.read { db in
            try Int.fetchOne(db, sql: "SELECT confirm_attempts FROM peer_tree_head WHERE node = 'bank-b' AND size = 3")
        }
        XCTAssertEqual(withheld?.kind, "withheld", "a withheld proof passed")
        XCTAssertEqual(attempts, LedgerGossip.confirmRoundsBeforeAlarm, "the alarm comes at the third unanswered round")
        XCTAssertTrue(withheld?.detail.contains("held by bank-a") == true, "\(String(describing: withheld))")
        let nobodyAnswered = await coordinator.crossCheck([], answered: [])
        XCTAssertEqual(nobodyAnswered, [:], "a node that answered no pull is not counted")

    }
}
