import Foundation
import GRDB
import MPCCrypto
import MPCProtocols
import Synchronization

/// A subscribed list's table as the querier holds it: the holder's signed header, and the sorted tags of
/// its entries in memory (8 bytes an entry; the sealed labels stay in SQLite and are read on a hit only).
public struct SubscribedTable: Sendable {
    public var holder: String
    public var header: ListTableHeader
    public var updatedAt: Date
    /// Where its entries are in `lookup_table_entry`.
    var tableID: Int64
    /// Sorted ascending (compared as unsigned).
    var tags: [UInt64]

    func contains(_ tag: UInt64) -> Bool {
        var lo = 0, hi = tags.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if tags[mid] < tag { lo = mid + 1 } else { hi = mid }
        }
        return lo < tags.count && tags[lo] == tag
    }

    /// The memory the index takes.
    public var indexBytes: Int { tags.count * MemoryLayout<UInt64>.stride }
}

/// An update of a table being received and not yet in force. A full table is written as it arrives under
/// a table id of its own (the table in force is untouched until the swap); a delta waits in
/// `lookup_staging`. The tags are kept in memory for the index (8 bytes an entry).
public final class TableUpdate: @unchecked Sendable {
    let holder: String
    let header: ListTableHeader
    let syncID = UUID().uuidString
    /// A full table's own id.
    let tableID: Int64?
    fileprivate(set) var added: [UInt64] = []
    fileprivate(set) var removed: [UInt64] = []
    /// Rows a full table's batches wrote (what SQLite says it inserted).
    fileprivate(set) var rowsWritten = 0

    fileprivate init(holder: String, header: ListTableHeader, tableID: Int64?) {
        self.holder = holder
        self.header = header
        self.tableID = tableID
    }
}

/// The querier's tables of the lists it subscribes to (Protocols/list-lookup.md, "Offline"): kept in its
/// SQLite, loaded into sorted tag arrays at start, and replaced only by a complete, verified update
/// (a table received in part is never used, and a restart deletes what it left).
public final class SubscribedTables: Sendable {
    public struct Key: Hashable, Sendable { public var holder: String; public var list: String }
    let store: NodeStore
    private let tables = Mutex<[Key: SubscribedTable]>([:])

    public init(store: NodeStore) throws {
        self.store = store
        try store.write { db in try db.execute(sql: "DELETE FROM lookup_staging") }
        try Self.deleteUnused(store)
        let loaded: [Key: SubscribedTable] = try store.read { db in
            var out: [Key: SubscribedTable] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT holder, list, header, table_id, updated_at FROM lookup_table") {
                let holder: String = row["holder"], list: String = row["list"], tableID: Int64 = row["table_id"]
                let header = try JSONDecoder().decode(StoredHeader.self, from: row["header"] as Data).header
                var tags: [UInt64] = []
                tags.reserveCapacity(Int(header.entries))
                let cursor = try Int64.fetchCursor(db, sql: "SELECT tag FROM lookup_table_entry WHERE table_id = ?", arguments: [tableID])
                while let tag = try cursor.next() { tags.append(UInt64(bitPattern: tag)) }
                tags.sort()  // two runs (SQLite orders them signed): a merge
                out[Key(holder: holder, list: list)] = SubscribedTable(holder: holder, header: header, updatedAt: row["updated_at"], tableID: tableID, tags: tags)
            }
            return out
        }
        tables.withLock { $0 = loaded }
    }

    /// At start (nothing is being received): deletes the rows of tables not in force — an update cut off
    /// by a restart, a table replaced just before one.
    private static func deleteUnused(_ store: NodeStore) throws {
        let unused = try store.read { db in try Int64.fetchAll(db, sql: "SELECT table_id FROM lookup_table_unused") }
        for id in unused { try delete(tableID: id, store) }
    }

    private static func delete(tableID id: Int64, _ store: NodeStore) throws {
        try store.write { db in
            try db.execute(sql: "DELETE FROM lookup_table_entry WHERE table_id = ?", arguments: [id])
            try db.execute(sql: "DELETE FROM lookup_table_unused WHERE table_id = ?", arguments: [id])
        }
    }

    public func table(holder: String, list: String) -> SubscribedTable? {
        tables.withLock { $0[Key(holder: holder, list: list)] }
    }

    public var all: [Key: SubscribedTable] { tables.withLock { $0 } }

    /// The sealed labels stored under `tag` in `table` (usually one).
    func sealedLabels(_ table: SubscribedTable, tag: UInt64) throws -> [ShareEncryption.Sealed] {
        try store.read { db in
            try Data.fetchAll(db, sql: "SELECT sealed FROM lookup_table_entry WHERE table_id = ? AND tag = ?",
                              arguments: [table.tableID, Int64(bitPattern: tag)]).compactMap { ListTableBatch.unpack(Array($0)) }
        }
    }

    // MARK: Updates

    /// Starts receiving the update `header` announces (its counts already checked against its kind).
    func begin(holder: String, header: ListTableHeader) throws -> TableUpdate {
        guard header.full else { return TableUpdate(holder: holder, header: header, tableID: nil) }
        let id = try store.write { db -> Int64 in
            try db.execute(sql: "INSERT INTO lookup_table_unused DEFAULT VALUES")
            return db.lastInsertedRowID
        }
        return TableUpdate(holder: holder, header: header, tableID: id)
    }

    /// Keeps one batch of an update being received (not yet in force).
    func stage(_ update: TableUpdate, _ batch: ListTableBatch) throws {
        try store.write { db in
            if let id = update.tableID {
                guard batch.removed.isEmpty else { throw LookupSyncError.countMismatch(holder: update.holder, list: update.header.list, expected: 0, found: batch.removed.count) }
                let insert = try db.makeStatement(sql: "INSERT INTO lookup_table_entry (table_id, tag, sealed) VALUES (?, ?, ?)")
                for entry in batch.added {
                    try insert.execute(arguments: [id, Int64(bitPattern: entry.tag), Data(ListTableBatch.pack(entry.label))])
                    update.rowsWritten += db.changesCount
                }
            } else {
                let insert = try db.makeStatement(sql: "INSERT INTO lookup_staging (sync_id, tag, sealed) VALUES (?, ?, ?)")
                for tag in batch.removed { try insert.execute(arguments: [update.syncID, Int64(bitPattern: tag), nil as Data?]) }
                for entry in batch.added {
                    try insert.execute(arguments: [update.syncID, Int64(bitPattern: entry.tag), Data(ListTableBatch.pack(entry.label))])
                }
            }
        }
        update.removed += batch.removed
        update.added += batch.added.lazy.map(\.tag)
    }

    /// Forgets an update that will not be applied.
    func discard(_ update: TableUpdate) {
        try? store.write { db in
            if let id = update.tableID {
                try db.execute(sql: "DELETE FROM lookup_table_entry WHERE table_id = ?", arguments: [id])
                try db.execute(sql: "DELETE FROM lookup_table_unused WHERE table_id = ?", arguments: [id])
            } else {
                try db.execute(sql: "DELETE FROM lookup_staging WHERE sync_id = ?", arguments: [update.syncID])
            }
        }
    }

    /// Applies a received, verified update in one transaction: a full table replaces the one in force
    /// (whose rows are deleted afterwards); a delta applies only on the version it starts from (otherwise
    /// nothing changes and the caller asks again). The entry count is kept, not recounted: the rows each
    /// statement changed must add up to the signed header's count. Then the in-memory index follows.
    func apply(_ update: TableUpdate, signature: ListTableSignature) throws {
        let header = update.header, holder = update.holder
        let key = Key(holder: holder, list: header.list)
        let current = table(holder: holder, list: header.list)
        if !header.full {
            guard let current, current.header.keyID == header.keyID, current.header.version == header.baseVersion else {
                discard(update)
                throw LookupSyncError.outOfStep(holder: holder, list: header.list, have: current?.header.version ?? 0, deltaFrom: header.baseVersion)
            }
        }
        let removed = Set(update.removed)
        let tableID: Int64 = try store.write { db in
            var entries: Int, tableID: Int64
            if let id = update.tableID {
                tableID = id
                entries = update.rowsWritten
                try db.execute(sql: "DELETE FROM lookup_table_unused WHERE table_id = ?", arguments: [id])
                if let old = current?.tableID { try db.execute(sql: "INSERT INTO lookup_table_unused (table_id) VALUES (?)", arguments: [old]) }
            } else {
                tableID = current!.tableID
                entries = current!.tags.count
                guard removed.count == update.removed.count else {
                    throw LookupSyncError.countMismatch(holder: holder, list: header.list, expected: Int(header.entries), found: entries - update.removed.count + update.added.count)
                }
                let delete = try db.makeStatement(sql: "DELETE FROM lookup_table_entry WHERE table_id = ? AND tag = ?")
                for tag in removed {
                    try delete.execute(arguments: [tableID, Int64(bitPattern: tag)])
                    entries -= db.changesCount
                }
                try db.execute(sql: """
                    INSERT INTO lookup_table_entry (table_id, tag, sealed)
                    SELECT ?, tag, sealed FROM lookup_staging WHERE sync_id = ? AND sealed IS NOT NULL
                    """, arguments: [tableID, update.syncID])
                entries += db.changesCount
                try db.execute(sql: "DELETE FROM lookup_staging WHERE sync_id = ?", arguments: [update.syncID])
            }
            guard entries == Int(header.entries) else {
                throw LookupSyncError.countMismatch(holder: holder, list: header.list, expected: Int(header.entries), found: entries)
            }
            try db.execute(sql: """
                INSERT INTO lookup_table (holder, list, key_id, version, entries, header, signature, certificate, updated_at, table_id)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(holder, list) DO UPDATE SET key_id = excluded.key_id, version = excluded.version, entries = excluded.entries,
                    header = excluded.header, signature = excluded.signature, certificate = excluded.certificate, updated_at = excluded.updated_at,
                    table_id = excluded.table_id
                """, arguments: [holder, header.list, header.keyID, Int64(header.version), entries,
                                 try JSONEncoder().encode(StoredHeader(header)), Data(signature.signature), Data(signature.certificate), Date(), tableID])
            try AuditLog(store: store).append(db, event: "lookup.table.applied", jobID: nil, details: [
                "holder": .string(holder), "list": .string(header.list), "key_id": .string(header.keyID),
                "version": .int(Int(header.version)), "kind": .string(header.full ? "full" : "delta from \(header.baseVersion)"),
                "added": .int(Int(header.added)), "removed": .int(Int(header.removed)), "entries": .int(entries),
            ])
            return tableID
        }
        var tags: [UInt64]
        if header.full {
            tags = update.added
            tags.sort()
        } else {
            tags = current!.tags
            if !removed.isEmpty { tags.removeAll { removed.contains($0) } }
            tags = Self.merge(tags, update.added.sorted())
        }
        let updated = SubscribedTable(holder: holder, header: header, updatedAt: Date(), tableID: tableID, tags: tags)
        tables.withLock { $0[key] = updated }
        // The replaced table's rows go now that the new one is in force (only its own: another list's
        // full table may be arriving under an id of `lookup_table_unused` at this moment).
        if header.full, let old = current?.tableID { try? Self.delete(tableID: old, store) }
        // A large update leaves a write-ahead log of hundreds of MB that every later read and write goes
        // through until SQLite checkpoints it: fold it into the database now, while the update is fresh.
        if header.added + header.removed >= 100_000 {
            try? store.pool.writeWithoutTransaction { db in _ = try db.checkpoint(.truncate) }
        }
    }

    static func merge(_ a: [UInt64], _ b: [UInt64]) -> [UInt64] {
        guard !b.isEmpty else { return a }
        var out: [UInt64] = []
        out.reserveCapacity(a.count + b.count)
        var i = 0, j = 0
        while i < a.count && j < b.count {
            if a[i] <= b[j] { out.append(a[i]); i += 1 } else { out.append(b[j]); j += 1 }
        }
        out += a[i...]
        out += b[j...]
        return out
    }
}

/// The header as stored (JSON).
struct StoredHeader: Codable {
    var list: String, keyID: String, version: UInt64, baseVersion: UInt64, full: Bool, added: UInt64, removed: UInt64, entries: UInt64
    var labelColumns: [String], disclosure: String, riskColumn: String, riskLevels: [String], normalization: String
    var maximumPerSecond: UInt64, maximumPerDay: UInt64

    init(_ h: ListTableHeader) {
        list = h.list; keyID = h.keyID; version = h.version; baseVersion = h.baseVersion; full = h.full; added = h.added
        removed = h.removed; entries = h.entries; labelColumns = h.labelColumns; disclosure = h.disclosure; riskColumn = h.riskColumn
        riskLevels = h.riskLevels; normalization = h.normalization; maximumPerSecond = h.maximumPerSecond; maximumPerDay = h.maximumPerDay
    }

    var header: ListTableHeader {
        ListTableHeader(list: list, keyID: keyID, version: version, baseVersion: baseVersion, full: full, added: added, removed: removed,
                        entries: entries, labelColumns: labelColumns, disclosure: disclosure, riskColumn: riskColumn, riskLevels: riskLevels,
                        normalization: normalization, maximumPerSecond: maximumPerSecond, maximumPerDay: maximumPerDay)
    }
}

public enum LookupSyncError: Error, CustomStringConvertible {
    case outOfStep(holder: String, list: String, have: UInt64, deltaFrom: UInt64)
    case countMismatch(holder: String, list: String, expected: Int, found: Int)

    public var description: String {
        switch self {
        case .outOfStep(let h, let l, let have, let from):
            return "\(h)'s delta of list '\(l)' starts at version \(from) but this node holds version \(have): nothing applied; the next sync asks again"
        case .countMismatch(let h, let l, let e, let f):
            return "\(h)'s update of list '\(l)' would leave \(f) entries where its signed header says \(e): nothing applied"
        }
    }
}
