import Foundation
import GRDB
import MPCCrypto

/// This node's Merkle log over its audit records (Protocols/ledger.md): the leaf hash of each record is
/// stored as the record is appended (`AuditLog.append`, table `ledger_leaf`), and the node signs heads of
/// the tree (`tree_head`). The hash of each perfect subtree is stored as its last leaf is appended
/// (`ledger_node`), so a root or a proof reads O(log² n) hashes, not the whole log.
public struct NodeLedger: Sendable {
    public let store: NodeStore

    public init(store: NodeStore) { self.store = store }

    /// The leaf hash of an audit record (what a verifier recomputes from a record it is shown).
    public static func leafHash(seq: Int64, at: String, jobID: String?, event: String, details: String) -> [UInt8] {
        LedgerLeaf.hash(seq: seq, at: at, jobID: jobID, event: event, details: details)
    }

    /// Appends the leaf of the record `seq` inside the caller's transaction (the record's own).
    static func appendLeaf(_ db: Database, seq: Int64, hash: [UInt8]) throws {
        let next = try Int.fetchOne(db, sql: "SELECT COALESCE(MAX(leaf_index), -1) + 1 FROM ledger_leaf") ?? 0
        try db.execute(sql: "INSERT INTO ledger_leaf (leaf_index, seq, hash) VALUES (?, ?, ?)", arguments: [next, seq, Data(hash)])
        try storePerfectSubtrees(db, appending: hash, at: next)
    }

    /// Stores the perfect subtrees the leaf `index` completes. A subtree's hash replaces any kept from a
    /// log that was cut back and grew again: a subtree is only read once all its leaves are in the log,
    /// and then it was stored with its last leaf.
    static func storePerfectSubtrees(_ db: Database, appending hash: [UInt8], at index: Int) throws {
        let leaf = { (i: Int) throws -> MerkleTree.Hash in
            guard let data = try Data.fetchOne(db.cachedStatement(sql: "SELECT hash FROM ledger_leaf WHERE leaf_index = ?"), arguments: [i]) else {
                throw LedgerError.noSuchLeaf(index: i, size: index)
            }
            return Array(data)
        }
        try MerkleTree.perfectSubtreeHashes(appending: hash, at: index, perfect: { level, i in
            if level == 0 { return try leaf(i) }
            if let data = try Data.fetchOne(db.cachedStatement(sql: "SELECT hash FROM ledger_node WHERE level = ? AND node_index = ?"), arguments: [level, i]) {
                return Array(data)
            }
            // A missing subtree (rows deleted, or written by a binary from before v13) is hashed from its leaves:
            // an audit record is never refused for it.
            return try MerkleTree.root(count: 1 << level, start: i << level, leaf: leaf)
        }, store: { level, i, h in
            try db.cachedStatement(sql: "INSERT OR REPLACE INTO ledger_node (level, node_index, hash) VALUES (?, ?, ?)").execute(arguments: [level, i, Data(h)])
        })
    }

    /// Recomputes every perfect subtree from the leaves (migration v13; a test's thorough forger).
    static func rebuildPerfectSubtrees(_ db: Database) throws {
        try db.execute(sql: "DELETE FROM ledger_node")
        let leaves = try Row.fetchCursor(db, sql: "SELECT leaf_index, hash FROM ledger_leaf ORDER BY leaf_index")
        while let row = try leaves.next() { try storePerfectSubtrees(db, appending: Array(row[1] as Data), at: row[0]) }
    }

    /// Reads a root or proof's hashes in one read transaction: leaves and perfect subtrees, one row each.
    private func withTree<T>(size: Int, _ body: (_ leaf: (Int) throws -> MerkleTree.Hash, _ perfect: @escaping MerkleTree.PerfectSubtree) throws -> T) throws -> T {
        try store.pool.read { db in
            let count = try Int.fetchOne(db, sql: "SELECT COALESCE(MAX(leaf_index), -1) + 1 FROM ledger_leaf") ?? 0
            guard size <= count else { throw LedgerError.noSuchLeaf(index: size - 1, size: count) }
            let leaf = { (i: Int) throws -> MerkleTree.Hash in
                guard let data = try Data.fetchOne(db.cachedStatement(sql: "SELECT hash FROM ledger_leaf WHERE leaf_index = ?"), arguments: [i]) else {
                    throw LedgerError.noSuchLeaf(index: i, size: count)
                }
                return Array(data)
            }
            let perfect: MerkleTree.PerfectSubtree = { level, i in
                try Data.fetchOne(db.cachedStatement(sql: "SELECT hash FROM ledger_node WHERE level = ? AND node_index = ?"), arguments: [level, i]).map { Array($0) }
            }
            return try body(leaf, perfect)
        }
    }

    /// How many leaves the log holds.
    public func size() throws -> Int {
        try store.pool.read { db in try Int.fetchOne(db, sql: "SELECT COALESCE(MAX(leaf_index), -1) + 1 FROM ledger_leaf") ?? 0 }
    }

    /// The root of the first `size` leaves.
    public func root(size: Int) throws -> MerkleTree.Hash {
        try withTree(size: size) { leaf, perfect in try MerkleTree.root(count: size, leaf: leaf, perfect: perfect) }
    }

    /// The inclusion proof of leaf `index` in the tree of the first `size` leaves.
    public func inclusionProof(index: Int, size: Int) throws -> [MerkleTree.Hash] {
        try withTree(size: size) { leaf, perfect in try MerkleTree.inclusionProof(index: index, size: size, leaf: leaf, perfect: perfect) }
    }

    /// The consistency proof from the tree of `oldSize` leaves to that of `newSize`.
    public func consistencyProof(oldSize: Int, newSize: Int) throws -> [MerkleTree.Hash] {
        try withTree(size: newSize) { leaf, perfect in try MerkleTree.consistencyProof(oldSize: oldSize, newSize: newSize, leaf: leaf, perfect: perfect) }
    }

    /// The leaf of the latest record of `jobID` (with `event`, when not empty): its index and leaf data.
    public func leaf(ofJob jobID: String, event: String = "") throws -> (index: Int, data: [UInt8])? {
        try store.pool.read { db in
            let sql = """
                SELECT a.seq, a.at, a.job_id, a.event, a.details, l.leaf_index FROM audit_log a JOIN ledger_leaf l ON l.seq = a.seq
                WHERE a.job_id = ? \(event.isEmpty ? "" : "AND a.event = ?") ORDER BY a.seq DESC LIMIT 1
                """
            let arguments: StatementArguments = event.isEmpty ? [jobID] : [jobID, event]
            guard let r = try Row.fetchOne(db, sql: sql, arguments: arguments) else { return nil }
            return (r[5], LedgerLeaf.data(seq: r[0], at: r[1], jobID: r[2], event: r[3], details: r[4]))
        }
    }

    /// What `verifyLeaves` finds: nil when every record has its leaf and every leaf its record, unchanged.
    public struct LeafMismatch: Equatable, Sendable, CustomStringConvertible {
        public var seq: Int64?
        public var leafIndex: Int?
        public var detail: String
        public var description: String { detail }
    }

    /// Recomputes each record's leaf hash and compares it with the stored one, in order: an edited,
    /// removed or inserted record shows here (unless its leaf was rewritten too, which the heads peers
    /// hold show instead).
    public func verifyLeaves() throws -> LeafMismatch? {
        if let mismatch = try verifyRecordsAgainstLeaves() { return mismatch }
        return try verifyPerfectSubtrees()
    }

    /// Recomputes every perfect subtree from the leaves and compares it with the stored one (`ledger_node`):
    /// an edited subtree would give wrong roots and proofs, which peers would take for a rewritten log.
    private func verifyPerfectSubtrees() throws -> LeafMismatch? {
        try store.pool.read { db in
            var stack: [(level: Int, hash: MerkleTree.Hash)] = []
            let leaves = try Row.fetchCursor(db, sql: "SELECT leaf_index, hash FROM ledger_leaf ORDER BY leaf_index")
            let stored = try db.cachedStatement(sql: "SELECT hash FROM ledger_node WHERE level = ? AND node_index = ?")
            while let row = try leaves.next() {
                let index: Int = row[0]
                var node = (level: 0, hash: Array(row[1] as Data))
                var position = index
                while let last = stack.last, last.level == node.level {
                    stack.removeLast()
                    node = (node.level + 1, MerkleTree.nodeHash(last.hash, node.hash))
                    position >>= 1
                    guard let kept = try Data.fetchOne(stored, arguments: [node.level, position]), Array(kept) == node.hash else {
                        return LeafMismatch(seq: nil, leafIndex: index, detail: "the stored hash of the subtree of \(1 << node.level) leaves at leaf \(position << node.level) (ledger_node) does not match its leaves: it was edited or removed")
                    }
                }
                stack.append(node)
            }
            return nil
        }
    }

    private func verifyRecordsAgainstLeaves() throws -> LeafMismatch? {
        try store.pool.read { db in
            let rows = try Row.fetchCursor(db, sql: """
                SELECT a.seq, a.at, a.job_id, a.event, a.details, l.leaf_index, l.hash
                FROM audit_log a LEFT JOIN ledger_leaf l ON l.seq = a.seq ORDER BY a.seq
                """)
            var expectedIndex = 0
            while let row = try rows.next() {
                let seq: Int64 = row[0]
                guard let index: Int = row[5], let stored: Data = row[6] else {
                    return LeafMismatch(seq: seq, leafIndex: nil, detail: "audit record #\(seq) has no leaf in the log: it was inserted afterwards")
                }
                guard index == expectedIndex else {
                    return LeafMismatch(seq: seq, leafIndex: index, detail: "audit record #\(seq) is leaf \(index), leaf \(expectedIndex) was expected: a record before it was removed")
                }
                let hash = LedgerLeaf.hash(seq: seq, at: row[1], jobID: row[2], event: row[3], details: row[4])
                guard Array(stored) == hash else {
                    return LeafMismatch(seq: seq, leafIndex: index, detail: "audit record #\(seq) differs from its leaf \(index): the record was edited")
                }
                expectedIndex += 1
            }
            let leaves = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM ledger_leaf") ?? 0
            if leaves != expectedIndex {
                return LeafMismatch(seq: nil, leafIndex: expectedIndex, detail: "the log holds \(leaves) leaves for \(expectedIndex) audit records: records were removed")
            }
            return nil
        }
    }

    /// Signs a head of the log as it is now, keeps it and returns it; returns the latest head instead when
    /// the log has not grown since it.
    @discardableResult
    public func signHead(node: String, with signatures: NodeSignatures, at date: Date = Date()) throws -> TreeHead {
        let size = try size()
        if let latest = try latestHead(), latest.size == size { return latest }
        let head = try TreeHead.sign(node: node, size: size, root: try root(size: size), at: date, with: signatures)
        try store.pool.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO tree_head (size, node, root, timestamp_ms, signature, certificate) VALUES (?, ?, ?, ?, ?, ?)",
                           arguments: [head.size, head.node, Data(head.root), Int64(head.timestampMs), Data(head.signature), Data(head.certificate)])
        }
        return head
    }

    /// The latest head this node signed, if any.
    public func latestHead() throws -> TreeHead? {
        try store.pool.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT size, node, root, timestamp_ms, signature, certificate FROM tree_head ORDER BY size DESC LIMIT 1") else { return nil }
            return TreeHead(node: row[1], size: row[0], root: Array(row[2] as Data), timestampMs: UInt64(row[3] as Int64),
                            signature: Array(row[4] as Data), certificate: Array(row[5] as Data))
        }
    }
}
