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

    /// The latest head pulled of each node but `excluded`, received at or after `since` (an ISO 8601 time
    /// of this node; empty: all), at most `limit`: what this node shows its peers (never hearsay).
    func latestOfEach(receivedSince since: String, excluding excluded: Set<String>, limit: Int) throws -> [TreeHead] {
        try store.pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT h.node, h.size, h.root, h.timestamp_ms, h.signature, h.certificate FROM peer_tree_head h
                WHERE h.shown_by IS NULL AND h.size = (SELECT MAX(size) FROM peer_tree_head WHERE node = h.node AND shown_by IS NULL)
                AND h.received_at >= ?
                GROUP BY h.node ORDER BY h.node LIMIT ?
                """, arguments: [since, limit + excluded.count]).map(Self.head).filter { !excluded.contains($0.node) }.prefix(limit).map { $0 }
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

    /// Keeps a head pulled from its node, or (`shownBy`) one another peer held of it.
    func keep(_ head: TreeHead, shownBy: String? = nil) throws {
        try store.pool.write { db in try keep(head, shownBy: shownBy, db) }
    }

    func keep(_ head: TreeHead, shownBy: String? = nil, _ db: Database) throws {
        try db.execute(sql: """
            INSERT OR IGNORE INTO peer_tree_head (node, size, root, timestamp_ms, signature, certificate, received_at, shown_by)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """, arguments: [head.node, head.size, Data(head.root), Int64(clamping: head.timestampMs), Data(head.signature), Data(head.certificate),
                             ISO8601DateFormatter.audit.string(from: Date()), shownBy])
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
