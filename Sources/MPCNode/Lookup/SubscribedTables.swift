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

/// The querier's tables of the lists it subscribes to (Protocols/list-lookup.md, "Offline"): kept in its
/// SQLite, loaded into sorted tag arrays at start, and replaced only by a complete, verified update
/// applied in one transaction (a table received in part is never used: it waits in `lookup_staging`,
/// which a restart clears).
public final class SubscribedTables: Sendable {
    public struct Key: Hashable, Sendable { public var holder: String; public var list: String }
    let store: NodeStore
    private let tables = Mutex<[Key: SubscribedTable]>([:])

    public init(store: NodeStore) throws {
        self.store = store
        try store.write { db in try db.execute(sql: "DELETE FROM lookup_staging") }
        let loaded: [Key: SubscribedTable] = try store.read { db in
            var out: [Key: SubscribedTable] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT holder, list, header, updated_at FROM lookup_table") {
                let holder: String = row["holder"], list: String = row["list"]
                let header = try JSONDecoder().decode(StoredHeader.self, from: row["header"] as Data).header
                var tags: [UInt64] = []
                tags.reserveCapacity(Int(header.entries))
                let cursor = try Int64.fetchCursor(db, sql: "SELECT tag FROM lookup_table_entry WHERE holder = ? AND list = ?", arguments: [holder, list])
                while let tag = try cursor.next() { tags.append(UInt64(bitPattern: tag)) }
                tags.sort()
                out[Key(holder: holder, list: list)] = SubscribedTable(holder: holder, header: header, updatedAt: row["updated_at"], tags: tags)
            }
            return out
        }
        tables.withLock { $0 = loaded }
    }

    public func table(holder: String, list: String) -> SubscribedTable? {
        tables.withLock { $0[Key(holder: holder, list: list)] }
    }

    public var all: [Key: SubscribedTable] { tables.withLock { $0 } }

    /// The sealed labels stored under `tag` (usually one).
    func sealedLabels(holder: String, list: String, tag: UInt64) throws -> [ShareEncryption.Sealed] {
        try store.read { db in
            try Data.fetchAll(db, sql: "SELECT sealed FROM lookup_table_entry WHERE holder = ? AND list = ? AND tag = ?",
                              arguments: [holder, list, Int64(bitPattern: tag)]).compactMap { ListTableBatch.unpack(Array($0)) }
        }
    }

    // MARK: Updates

    /// Keeps one batch of an update being received (not yet in force).
    func stage(syncID: String, _ batch: ListTableBatch) throws {
        try store.write { db in
            let insert = try db.makeStatement(sql: "INSERT INTO lookup_staging (sync_id, tag, sealed) VALUES (?, ?, ?)")
            for tag in batch.removed { try insert.execute(arguments: [syncID, Int64(bitPattern: tag), nil as Data?]) }
            for entry in batch.added {
                try insert.execute(arguments: [syncID, Int64(bitPattern: entry.tag), Data(ListTableBatch.pack(entry.label))])
            }
        }
    }

    func discard(syncID: String) {
        try? store.write { db in try db.execute(sql: "DELETE FROM lookup_staging WHERE sync_id = ?", arguments: [syncID]) }
    }

    /// Applies a received, verified update in one transaction: a full table replaces the stored one; a
    /// delta applies only on the version it starts from (otherwise nothing changes and the caller asks
    /// again). Then the in-memory index follows.
    func apply(holder: String, header: ListTableHeader, signature: ListTableSignature, syncID: String) throws {
        let key = Key(holder: holder, list: header.list)
        let current = table(holder: holder, list: header.list)
        if !header.full {
            guard let current, current.header.keyID == header.keyID, current.header.version == header.baseVersion else {
                discard(syncID: syncID)
                throw LookupSyncError.outOfStep(holder: holder, list: header.list, have: current?.header.version ?? 0, deltaFrom: header.baseVersion)
            }
        }
        let (added, removed): ([UInt64], Set<UInt64>) = try store.write { db in
            if header.full {
                try db.execute(sql: "DELETE FROM lookup_table_entry WHERE holder = ? AND list = ?", arguments: [holder, header.list])
            }
            let removed = Set(try Int64.fetchAll(db, sql: "SELECT tag FROM lookup_staging WHERE sync_id = ? AND sealed IS NULL", arguments: [syncID]).map { UInt64(bitPattern: $0) })
            let delete = try db.makeStatement(sql: "DELETE FROM lookup_table_entry WHERE holder = ? AND list = ? AND tag = ?")
            for tag in removed { try delete.execute(arguments: [holder, header.list, Int64(bitPattern: tag)]) }
            try db.execute(sql: """
                INSERT INTO lookup_table_entry (holder, list, tag, sealed)
                SELECT ?, ?, tag, sealed FROM lookup_staging WHERE sync_id = ? AND sealed IS NOT NULL
                """, arguments: [holder, header.list, syncID])
            let added = try Int64.fetchAll(db, sql: "SELECT tag FROM lookup_staging WHERE sync_id = ? AND sealed IS NOT NULL", arguments: [syncID]).map { UInt64(bitPattern: $0) }
            try db.execute(sql: "DELETE FROM lookup_staging WHERE sync_id = ?", arguments: [syncID])
            let entries = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM lookup_table_entry WHERE holder = ? AND list = ?", arguments: [holder, header.list]) ?? 0
            guard entries == Int(header.entries) else {
                throw LookupSyncError.countMismatch(holder: holder, list: header.list, expected: Int(header.entries), found: entries)
            }
            try db.execute(sql: """
                INSERT INTO lookup_table (holder, list, key_id, version, entries, header, signature, certificate, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(holder, list) DO UPDATE SET key_id = excluded.key_id, version = excluded.version, entries = excluded.entries,
                    header = excluded.header, signature = excluded.signature, certificate = excluded.certificate, updated_at = excluded.updated_at
                """, arguments: [holder, header.list, header.keyID, Int64(header.version), entries,
                                 try JSONEncoder().encode(StoredHeader(header)), Data(signature.signature), Data(signature.certificate), Date()])
            try AuditLog(store: store).append(db, event: "lookup.table.applied", jobID: nil, details: [
                "holder": .string(holder), "list": .string(header.list), "key_id": .string(header.keyID),
                "version": .int(Int(header.version)), "kind": .string(header.full ? "full" : "delta from \(header.baseVersion)"),
                "added": .int(Int(header.added)), "removed": .int(Int(header.removed)), "entries": .int(entries),
            ])
            return (added, removed)
        }
        var tags: [UInt64]
        if header.full {
            tags = added.sorted()
        } else {
            tags = current!.tags
            if !removed.isEmpty { tags.removeAll { removed.contains($0) } }
            tags = Self.merge(tags, added.sorted())
        }
        let updated = SubscribedTable(holder: holder, header: header, updatedAt: Date(), tags: tags)
        tables.withLock { $0[key] = updated }
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
