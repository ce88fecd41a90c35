import Crypto
import Foundation
import GRDB
import MPCCrypto
import MPCProtocols

/// A list's state at its holder: the OPRF key and the version queriers are told.
public struct HolderListState: Sendable {
    public var dataset: String
    public var keyID: String
    public var key: SecretScalar
    public var version: UInt64
    public var entries: Int
    public var updatedAt: Date
}

/// What a refresh changed.
public struct HolderListChange: Sendable, Equatable {
    public var version: UInt64
    public var added: Int
    public var removed: Int
    public var entries: Int
    /// Where the time went, in seconds: reading the dataset, comparing it with the entries in force,
    /// the OPRF evaluations and sealing, and the write of the new version.
    public var phases: Phases = Phases()

    public struct Phases: Sendable, Equatable, CustomStringConvertible {
        public var read = 0.0, compare = 0.0, evaluate = 0.0, write = 0.0
        public var description: String { String(format: "read %.2f s, compare %.2f s, evaluate %.2f s, write %.2f s", read, compare, evaluate, write) }
    }

    /// The same change (however long it took).
    public static func == (a: HolderListChange, b: HolderListChange) -> Bool {
        a.version == b.version && a.added == b.added && a.removed == b.removed && a.entries == b.entries
    }
}

/// The holder's side of lookup lists in its SQLite (Protocols/list-lookup.md, "Offline" and "Updates"):
/// each offered dataset's OPRF key and its entries (identifier, exposed label, tag, sealed label) with the
/// versions they were added and removed at. A refresh compares the dataset with the entries and records
/// the difference as the next version; a delta from version v is every change after v.
public struct HolderListStore: Sendable {
    public let store: NodeStore
    public let holder: String

    public init(store: NodeStore, holder: String) { self.store = store; self.holder = holder }

    static func key(seed: [UInt8], dataset: String, keyID: String) throws -> SecretScalar {
        try OPRF.deriveKey(seed: seed, info: Array("MPCNode list-lookup \(dataset) \(keyID)".utf8))
    }

    public func state(_ dataset: String) throws -> HolderListState? {
        try store.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM lookup_list WHERE dataset = ?", arguments: [dataset]) else { return nil }
            let seed: Data = row["key_seed"], keyID: String = row["key_id"]
            return HolderListState(dataset: dataset, keyID: keyID, key: try Self.key(seed: Array(seed), dataset: dataset, keyID: keyID),
                                   version: UInt64(row["version"] as Int64), entries: row["entries"], updatedAt: row["updated_at"])
        }
    }

    /// The dataset's identity for change detection: import time, revision and the exposed columns.
    func source(_ db: Database, dataset: String, policy: LookupListPolicy) throws -> (source: String, info: DatasetInfo)? {
        guard let info = try DatasetInfo.filter(Column("name") == dataset).fetchOne(db),
              let revision = try Int.fetchOne(db, sql: "SELECT revision FROM dataset WHERE name = ?", arguments: [dataset]) else { return nil }
        return ("\(info.importedAt.timeIntervalSince1970)/\(revision)/\(policy.labelColumns.joined(separator: ","))", info)
    }

    /// Brings the list up to date with its dataset: a new list gets a key and every entry; a changed
    /// dataset gets a new version with the entries added and removed. `rotate` draws a new key and
    /// rebuilds every entry under it. Returns nil when nothing changed.
    @discardableResult
    public func refresh(dataset: String, policy: LookupListPolicy, rotate: Bool = false,
                        progress: ((Int, Int) -> Void)? = nil) throws -> HolderListChange? {
        // 1. Read: what the entries were built from, and the dataset now.
        struct Current { var identifier: String; var label: String }
        var phases = HolderListChange.Phases()
        var clock = ContinuousClock.now
        func lap() -> Double {
            let now = ContinuousClock.now, d = now - clock
            clock = now
            return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        }
        let read: (existing: Row?, source: String, info: DatasetInfo, current: [Current])? = try store.read { db in
            guard let (source, info) = try self.source(db, dataset: dataset, policy: policy) else { return nil }
            let existing = try Row.fetchOne(db, sql: "SELECT key_id, key_seed, version, entries, source FROM lookup_list WHERE dataset = ?", arguments: [dataset])
            if let existing, !rotate, (existing["source"] as String) == source { return (existing, source, info, []) }
            for column in policy.labelColumns where !info.columns.contains(column) {
                throw StoreError.unknownColumn(dataset: dataset, column: column, available: info.columns)
            }
            let table = NodeStore.quote(NodeStore.tableName(forDataset: dataset)), id = NodeStore.quote(info.idColumn)
            let labels = policy.labelColumns.map(NodeStore.quote)
            // One entry per identifier: its last row (the latest listing).
            let sql = "SELECT \(([id] + labels).joined(separator: ", ")) FROM \(table) WHERE _row IN (SELECT MAX(_row) FROM \(table) GROUP BY \(id))"
            var current: [Current] = []
            let rows = try Row.fetchCursor(db, sql: sql)
            let sortedColumns = policy.labelColumns.enumerated().sorted { $0.element < $1.element }
            while let row = try rows.next() {
                let label = LabelJSON.object(sortedColumns.map { ($0.element, (row[$0.offset + 1] as String?) ?? "") })
                current.append(Current(identifier: row[0] ?? "", label: label))
            }
            return (existing, source, info, current)
        }
        guard let read else { throw StoreError.unknownDataset(dataset) }
        phases.read = lap()
        if let existing = read.existing, !rotate, (existing["source"] as String) == read.source { return nil }

        // 2. The difference with the entries in force (all of them on a new key).
        var seed: [UInt8], keyID: String, version: UInt64
        if let existing = read.existing, !rotate {
            seed = Array(existing["key_seed"] as Data); keyID = existing["key_id"]; version = UInt64(existing["version"] as Int64)
        } else {
            seed = [UInt8](repeating: 0, count: 32)
            var generator = SystemRandomNumberGenerator()
            for i in seed.indices { seed[i] = generator.next() }
            keyID = String(Self.hex(Array(SHA256.hash(data: seed)).prefix(6)))
            version = UInt64((read.existing?["version"] as Int64?) ?? 0)
        }
        let key = try Self.key(seed: seed, dataset: dataset, keyID: keyID)
        var inForce: [String: Int64] = [:]  // "identifier\0label" → rowid
        if read.existing != nil, !rotate {
            try store.read { db in
                let rows = try Row.fetchCursor(db, sql: "SELECT rowid, identifier, label FROM lookup_list_entry WHERE dataset = ? AND removed_version IS NULL", arguments: [dataset])
                while let row = try rows.next() { inForce["\(row[1] as String)\u{0}\(row[2] as String)"] = row[0] }
            }
        }
        var added: [Current] = []
        for entry in read.current {
            if inForce.removeValue(forKey: "\(entry.identifier)\u{0}\(entry.label)") == nil { added.append(entry) }
        }
        let removed = Array(inForce.values)
        if read.existing != nil, !rotate, added.isEmpty, removed.isEmpty {
            try store.write { db in
                try db.execute(sql: "UPDATE lookup_list SET source = ? WHERE dataset = ?", arguments: [read.source, dataset])
            }
            return nil
        }
        phases.compare = lap()

        // 3. Tags and sealed labels of the added entries (the costly part, outside any transaction).
        let context = LabelledLookup.context(holder: holder, list: dataset, keyID: keyID)
        var built: [(Current, LabelledLookup.Entry)] = []
        built.reserveCapacity(added.count)
        let chunk = 16_384
        var start = 0
        while start < added.count {
            let slice = Array(added[start..<min(start + chunk, added.count)])
            let entries = try LabelledLookup.table(slice.map { (Array($0.identifier.utf8), Array($0.label.utf8)) }, key: key, context: context, shuffle: false)
            built += zip(slice, entries).map { ($0, $1) }
            start += slice.count
            progress?(start, added.count)
        }
        // Stored, and so sent, in the order of their tags: a pseudorandom order under the list's key that
        // says nothing of the list's own order (the tags are sent anyway), and the order in which a
        // querier's B-tree takes them fastest.
        built.sort { $0.1.tag < $1.1.tag }

        phases.evaluate = lap()

        // 4. The new version, in one transaction.
        let next = version + 1
        var change = try store.write { db in
            if rotate || read.existing == nil {
                try db.execute(sql: "DELETE FROM lookup_list_entry WHERE dataset = ?", arguments: [dataset])
            }
            let insert = try db.makeStatement(sql: "INSERT INTO lookup_list_entry (dataset, identifier, label, tag, sealed, added_version) VALUES (?, ?, ?, ?, ?, ?)")
            for (entry, made) in built {
                try insert.execute(arguments: [dataset, entry.identifier, entry.label, Int64(bitPattern: made.tag),
                                               Data(ListTableBatch.pack(made.label)), Int64(next)])
            }
            let remove = try db.makeStatement(sql: "UPDATE lookup_list_entry SET removed_version = ? WHERE rowid = ?")
            for rowid in removed { try remove.execute(arguments: [Int64(next), rowid]) }
            // Kept, not recounted: the entries in force before, less those removed, and those added.
            let before = rotate ? 0 : Int((read.existing?["entries"] as Int64?) ?? 0)
            let entries = before - removed.count + built.count
            try db.execute(sql: """
                INSERT INTO lookup_list (dataset, key_id, key_seed, version, entries, source, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(dataset) DO UPDATE SET key_id = excluded.key_id, key_seed = excluded.key_seed, version = excluded.version,
                    entries = excluded.entries, source = excluded.source, updated_at = excluded.updated_at
                """, arguments: [dataset, keyID, Data(seed), Int64(next), entries, read.source, Date()])
            try AuditLog(store: store).append(db, event: rotate ? "lookup.list.rotated" : "lookup.list.updated", jobID: nil, details: [
                "list": .string(dataset), "version": .int(Int(next)), "key_id": .string(keyID),
                "added": .int(built.count), "removed": .int(removed.count), "entries": .int(entries),
            ])
            return HolderListChange(version: next, added: built.count, removed: removed.count, entries: entries)
        }
        phases.write = lap()
        change.phases = phases
        return change
    }

    /// What a querier holding (`keyID`, `version`) is sent: a delta when it holds an earlier version under
    /// the current key, otherwise the full table.
    public func plan(dataset: String, state: HolderListState, keyID: String, version: UInt64) throws -> (full: Bool, base: UInt64, added: Int, removed: Int) {
        if keyID == state.keyID, version > 0, version <= state.version {
            return try store.read { db in
                let added = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM lookup_list_entry WHERE dataset = ? AND added_version > ? AND removed_version IS NULL",
                                             arguments: [dataset, Int64(version)]) ?? 0
                let removed = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM lookup_list_entry WHERE dataset = ? AND removed_version > ? AND added_version <= ?",
                                               arguments: [dataset, Int64(version), Int64(version)]) ?? 0
                return (false, version, added, removed)
            }
        }
        return (true, 0, state.entries, 0)
    }

    /// The batches of an update, read page by page (a full table never held whole).
    public func batches(dataset: String, full: Bool, base: UInt64) -> () throws -> ListTableBatch? {
        var lastRow: Int64 = 0
        var removedDone = full
        let pageSize = ListTableTransfer.batchEntries
        return {
            try store.read { db -> ListTableBatch? in
                if !removedDone {
                    let rows = try Row.fetchAll(db, sql: """
                        SELECT rowid, tag FROM lookup_list_entry INDEXED BY lookup_list_entry_removed
                        WHERE dataset = ? AND removed_version > ? AND added_version <= ? AND rowid > ?
                        ORDER BY rowid LIMIT ?
                        """, arguments: [dataset, Int64(base), Int64(base), lastRow, pageSize])
                    if !rows.isEmpty {
                        lastRow = rows.last!["rowid"]
                        return ListTableBatch(removed: rows.map { UInt64(bitPattern: $0["tag"] as Int64) })
                    }
                    removedDone = true
                    lastRow = 0
                }
                // A full table walks the rows in order; a delta reads the few added after its base by their index.
                let rows = try Row.fetchAll(db, sql: """
                    SELECT rowid, tag, sealed FROM lookup_list_entry \(full ? "" : "INDEXED BY lookup_list_entry_added")
                    WHERE dataset = ? AND removed_version IS NULL AND added_version > ? AND rowid > ?
                    ORDER BY rowid LIMIT ?
                    """, arguments: [dataset, Int64(base), lastRow, pageSize])
                guard !rows.isEmpty else { return nil }
                lastRow = rows.last!["rowid"]
                return ListTableBatch(added: try rows.map { row in
                    guard let sealed = ListTableBatch.unpack(Array(row["sealed"] as Data)) else { throw StoreError.cannotOpen(path: store.path.path, detail: "a stored sealed label is truncated") }
                    return LabelledLookup.Entry(tag: UInt64(bitPattern: row["tag"] as Int64), label: sealed)
                })
            }
        }
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
}

/// A label as the JSON object the querier opens: keys sorted, strings escaped per RFC 8259 (the same bytes
/// for the same label, so an unchanged entry is recognised; far cheaper than a serializer per entry).
enum LabelJSON {
    static func object(_ pairs: [(String, String)]) -> String {
        var out = "{"
        for (i, (k, v)) in pairs.enumerated() {
            if i > 0 { out += "," }
            out += string(k) + ":" + string(v)
        }
        return out + "}"
    }

    static func string(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
