import Foundation
import GRDB

/// The heads of other nodes' logs this node has seen (`peer_tree_head`), and the alarms raised when a
/// new one does not follow from them (`ledger_alarm`).
public struct PeerHeads: Sendable {
    public let store: NodeStore
    public init(store: NodeStore) { self.store = store }

    /// The largest head of `node` held that was pulled from it (not one another peer showed).
    public func latest(of node: String) throws -> TreeHead? {
        try store.pool.read { db in try latest(of: node, db) }
    }

    func latest(of node: String, _ db: Database) throws -> TreeHead? {
        try Row.fetchOne(db, sql: """
            SELECT node, size, root, timestamp_ms, signature, certificate FROM peer_tree_head WHERE node = ? AND shown_by IS NULL
            ORDER BY size DESC, timestamp_ms DESC LIMIT 1
            """, arguments: [node]).map(Self.head)
    }

    /// The latest head pulled of every node, by node.
    public func latestOfEach() throws -> [TreeHead] {
        try store.pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT h.node, h.size, h.root, h.timestamp_ms, h.signature, h.certificate FROM peer_tree_head h
                WHERE h.shown_by IS NULL AND h.size = (SELECT MAX(size) FROM peer_tree_head WHERE node = h.node AND shown_by IS NULL)
                GROUP BY h.node ORDER BY h.node
                """).map(Self.head)
        }
    }

    /// The latest head pulled of each node but `excluded` kept after the cursor `since` (0: all), in the
    /// order kept, at most `limit`, and the cursor of the last one sent (`since` when none): what this node
    /// shows its peers (never hearsay). The cursor is the store's own order, not a clock, so a head kept
    /// while another answer was read is sent next time.
    func latestOfEach(keptAfter since: Int64, excluding excluded: Set<String>, limit: Int) throws -> (heads: [TreeHead], cursor: Int64) {
        try store.pool.read { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT h.node, h.size, h.root, h.timestamp_ms, h.signature, h.certificate, h.seq FROM peer_tree_head h
                WHERE h.shown_by IS NULL AND h.seq > ?
                AND h.size = (SELECT MAX(size) FROM peer_tree_head WHERE node = h.node AND shown_by IS NULL)
                ORDER BY h.seq LIMIT ?
                """, arguments: [since, limit + excluded.count])
            var heads: [TreeHead] = [], cursor = since
            for row in rows {
                let head = Self.head(row)
                if !excluded.contains(head.node) {
                    guard heads.count < limit else { break }
                    heads.append(head)
                }
                cursor = row[6]
            }
            return (heads, cursor)
        }
    }

    /// The heads held of `node` of `size` leaves, pulled or shown (more than one only after a fork).
    func held(of node: String, size: Int) throws -> [TreeHead] {
        try store.pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT node, size, root, timestamp_ms, signature, certificate FROM peer_tree_head WHERE node = ? AND size = ?
                """, arguments: [node, size]).map(Self.head)
        }
    }

    /// Keeps a head pulled from its node. A head kept before as shown by a peer becomes a pulled one (and
    /// is sent on as such).
    func keep(_ head: TreeHead) throws {
        try store.pool.write { db in try keep(head, db) }
    }

    /// The next seq (the cursor order of kept heads).
    static func nextSeq(_ db: Database) throws -> Int64 {
        try db.execute(sql: "UPDATE peer_tree_head_seq SET last = last + 1 WHERE id = 1")
        return try Int64.fetchOne(db, sql: "SELECT last FROM peer_tree_head_seq WHERE id = 1") ?? 0
    }

    func keep(_ head: TreeHead, _ db: Database) throws {
        let seq = try Self.nextSeq(db)
        try db.execute(sql: """
            INSERT INTO peer_tree_head (node, size, root, timestamp_ms, signature, certificate, received_at, shown_by, confirm_attempts, seq)
            VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?)
            ON CONFLICT (node, size, root) DO UPDATE SET shown_by = NULL, confirm_attempts = NULL, seq = excluded.seq
            WHERE peer_tree_head.shown_by IS NOT NULL
            """, arguments: [head.node, head.size, Data(head.root), Int64(clamping: head.timestampMs), Data(head.signature), Data(head.certificate),
                             AuditTime.string(Date()), seq])
    }

    /// The most heads of one node shown by one peer that wait for the node's proof.
    static let maximumPendingPerShower = 8

    /// Keeps a head of a node that peer `shownBy` held: pending (confirm_attempts ≥ 0: the node must prove it
    /// consistent with the heads held) or, as a fork's evidence, refuted (−1). A head already held is left
    /// as it is. Only pulled and proven heads (NULL) count as the node's history.
    func keepShown(_ head: TreeHead, by shownBy: String, pending: Bool) throws {
        try store.pool.write { db in
            if pending {
                let waiting = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM peer_tree_head WHERE node = ? AND shown_by = ? AND confirm_attempts >= 0",
                                               arguments: [head.node, shownBy]) ?? 0
                guard waiting < Self.maximumPendingPerShower else { return }
            }
            try db.execute(sql: """
                INSERT OR IGNORE INTO peer_tree_head (node, size, root, timestamp_ms, signature, certificate, received_at, shown_by, confirm_attempts, seq)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [head.node, head.size, Data(head.root), Int64(clamping: head.timestampMs), Data(head.signature), Data(head.certificate),
                                 AuditTime.string(Date()), shownBy, pending ? 0 : -1, try Self.nextSeq(db)])
        }
    }

    /// A shown head the node proved consistent with the heads held: no longer pending.
    func confirmShown(_ head: TreeHead) throws {
        try store.pool.write { db in
            try db.execute(sql: "UPDATE peer_tree_head SET confirm_attempts = NULL WHERE node = ? AND size = ? AND root = ? AND confirm_attempts >= 0",
                           arguments: [head.node, head.size, Data(head.root)])
        }
    }

    /// A shown head the node's own answer refuted (a fork's evidence): no longer pending, never history.
    func refute(_ head: TreeHead) throws {
        try store.pool.write { db in
            try db.execute(sql: "UPDATE peer_tree_head SET confirm_attempts = -1 WHERE node = ? AND size = ? AND root = ? AND shown_by IS NOT NULL",
                           arguments: [head.node, head.size, Data(head.root)])
        }
    }

    /// One more round in which the node did not prove a pending head; returns the rounds so far.
    func failedConfirm(_ head: TreeHead) throws -> Int {
        try store.pool.write { db in
            try db.execute(sql: "UPDATE peer_tree_head SET confirm_attempts = confirm_attempts + 1 WHERE node = ? AND size = ? AND root = ? AND confirm_attempts >= 0",
                           arguments: [head.node, head.size, Data(head.root)])
            return try Int.fetchOne(db, sql: "SELECT confirm_attempts FROM peer_tree_head WHERE node = ? AND size = ? AND root = ?",
                                    arguments: [head.node, head.size, Data(head.root)]) ?? 0
        }
    }

    /// The heads of `node` that wait for its proof, with who showed each, oldest first.
    func pending(of node: String) throws -> [(head: TreeHead, shownBy: String)] {
        try store.pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT node, size, root, timestamp_ms, signature, certificate, shown_by FROM peer_tree_head
                WHERE node = ? AND confirm_attempts >= 0 ORDER BY seq
                """, arguments: [node]).map { (Self.head($0), $0[6] as String) }
        }
    }

    /// The largest head of `node` that it signed and that this node pulled or saw proven (a log smaller than
    /// it is a rollback, whoever showed it).
    func largestProven(of node: String, _ db: Database) throws -> TreeHead? {
        try Row.fetchOne(db, sql: """
            SELECT node, size, root, timestamp_ms, signature, certificate FROM peer_tree_head WHERE node = ? AND confirm_attempts IS NULL
            ORDER BY size DESC LIMIT 1
            """, arguments: [node]).map(Self.head)
    }

    /// An alarm about `node`: what kind (rollback, fork, time, signature) and what was seen.
    public struct Alarm: Codable, Sendable, Equatable {
        public var at: String
        public var node: String
        public var kind: String
        public var detail: String
    }

    func raise(_ alarm: Alarm) throws {
        try store.pool.write { db in
            try db.execute(sql: "INSERT INTO ledger_alarm (at, node, kind, detail) VALUES (?, ?, ?, ?)",
                           arguments: [alarm.at, alarm.node, alarm.kind, alarm.detail])
        }
    }

    public func alarms(limit: Int = 1000) throws -> [Alarm] {
        try store.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT at, node, kind, detail FROM ledger_alarm ORDER BY id DESC LIMIT ?", arguments: [limit])
                .map { Alarm(at: $0[0], node: $0[1], kind: $0[2], detail: $0[3]) }
        }
    }

    static func head(_ row: Row) -> TreeHead {
        TreeHead(node: row[0], size: row[1], root: Array(row[2] as Data), timestampMs: UInt64(row[3] as Int64),
                 signature: Array(row[4] as Data), certificate: Array(row[5] as Data))
    }
}
