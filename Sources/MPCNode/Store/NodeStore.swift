import Foundation
import GRDB

/// The node's local SQLite database (WAL mode through GRDB's `DatabasePool`): imported datasets, jobs,
/// results and the audit log. Its schema's history is the migrator below.
public final class NodeStore: Sendable {
    public let pool: DatabasePool
    public let path: URL
    /// Told of every job state change once committed.
    public let jobStates = JobStateObservers()

    public init(path: URL) throws {
        try PrivateFiles.folder(path.deletingLastPathComponent())
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        do {
            pool = try DatabasePool(path: path.path, configuration: configuration)
        } catch {
            throw StoreError.cannotOpen(path: path.path, detail: "\(error)")
        }
        self.path = path
        try Self.migrator.migrate(pool)
        try PrivateFiles.database(path.path)
    }

    /// A synchronous write transaction. (Jobs call it from actor code so that the closure may capture
    /// local state; the transactions are short.)
    public func write<T>(_ updates: (Database) throws -> T) throws -> T {
        try pool.write(updates)
    }

    /// A synchronous read.
    public func read<T>(_ value: (Database) throws -> T) throws -> T {
        try pool.read(value)
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: datasets, jobs, results, audit log") { db in
            try db.create(table: "dataset") { t in
                t.primaryKey("name", .text)
                t.column("table_name", .text).notNull().unique()
                t.column("columns", .text).notNull()            // JSON array of column names
                t.column("id_column", .text).notNull()
                t.column("normalization", .text).notNull()
                t.column("row_count", .integer).notNull()
                t.column("distinct_ids", .integer).notNull()
                t.column("source_path", .text).notNull()
                t.column("source_sha256", .text).notNull()
                t.column("imported_at", .datetime).notNull()
            }
            try db.create(table: "job") { t in
                t.primaryKey("id", .text)
                t.column("spec", .blob).notNull()              // serialised Mpcnode_V1_JobSpec
                t.column("spec_hash", .text).notNull()
                t.column("role", .text).notNull()              // coordinator | participant
                t.column("state", .text).notNull()
                t.column("reason", .text)
                t.column("created_at", .datetime).notNull()
                t.column("updated_at", .datetime).notNull()
                t.column("input_rows", .integer)
                t.column("progress_done", .integer)
                t.column("progress_total", .integer)
                t.column("bytes_sent", .integer)
                t.column("bytes_received", .integer)
                t.column("elapsed_ms", .integer)
            }
            try db.create(table: "job_party") { t in          // the coordinator's view of each participant
                t.column("job_id", .text).notNull().references("job", onDelete: .cascade)
                t.column("node_id", .text).notNull()
                t.column("state", .text).notNull()
                t.column("reason", .text)
                t.column("input_rows", .integer)
                t.column("bytes_sent", .integer)
                t.column("bytes_received", .integer)
                t.column("elapsed_ms", .integer)
                t.column("result_rows", .integer)
                t.column("received_result", .boolean)
                t.column("audit_hash", .text)
                t.primaryKey(["job_id", "node_id"])
            }
            try db.create(table: "job_result") { t in
                t.primaryKey("job_id", .text).references("job", onDelete: .cascade)
                t.column("kind", .text).notNull()              // intersection | cardinality
                t.column("cardinality", .integer).notNull()
                t.column("created_at", .datetime).notNull()
            }
            try db.create(table: "job_result_item") { t in
                t.column("job_id", .text).notNull().references("job_result", column: "job_id", onDelete: .cascade).indexed()
                t.column("identifier", .text).notNull()
            }
            try db.create(table: "audit_log") { t in
                t.autoIncrementedPrimaryKey("seq")
                t.column("at", .text).notNull()
                t.column("job_id", .text).indexed()
                t.column("event", .text).notNull()
                t.column("details", .text).notNull()           // JSON object
                t.column("previous_hash", .text).notNull()
                t.column("hash", .text).notNull()
            }
        }
        migrator.registerMigration("v2: participants' progress at the coordinator") { db in
            try db.alter(table: "job_party") { t in
                t.add(column: "progress_done", .integer)
                t.add(column: "progress_total", .integer)
            }
        }
        migrator.registerMigration("v3: reports of secure sums") { db in
            try db.create(table: "report") { t in
                t.primaryKey("id", .text)
                t.column("job_id", .text).notNull().indexed()
                t.column("spec_hash", .text).notNull()
                t.column("coordinator", .text).notNull()
                t.column("created_at", .datetime).notNull()
                t.column("body", .text).notNull()         // JSON of ReportView
            }
        }
        migrator.registerMigration("v4: trained models") { db in
            try db.create(table: "model") { t in
                t.primaryKey("id", .text)
                t.column("job_id", .text).notNull().indexed()
                t.column("created_at", .datetime).notNull()
                t.column("body", .text).notNull()         // JSON of ModelView
            }
        }
        migrator.registerMigration("v5: a value per result item (predicted scores)") { db in
            try db.alter(table: "job_result_item") { t in t.add(column: "value", .double) }
        }
        migrator.registerMigration("v6: progress with its unit, loss, elapsed and remaining time") { db in
            for table in ["job", "job_party"] {
                try db.alter(table: table) { t in
                    t.add(column: "progress_unit", .text)
                    t.add(column: "progress_loss", .double)
                    t.add(column: "progress_elapsed_ms", .integer)
                    t.add(column: "progress_remaining_ms", .integer)
                }
            }
        }
        migrator.registerMigration("v7: cells of secure sums released on each dataset (differencing)") { db in
            try db.create(table: "released_cell") { t in
                t.column("job_id", .text).notNull()
                t.column("dataset", .text).notNull().indexed()
                // "" and a NULL cell: the total of all rows.
                t.column("group_by", .text).notNull()
                t.column("cell", .text)
                t.column("own_records", .integer).notNull()
                // The clients of the sum, sorted, one per line.
                t.column("clients", .text).notNull().defaults(to: "")
                t.column("released_at", .datetime).notNull()
            }
        }
        migrator.registerMigration("v8: list lookups (holder lists, querier tables, usage per hour), dataset revisions") { db in
            // Bumped by `data append` and `data remove` (a re-import replaces the row).
            try db.alter(table: "dataset") { t in t.add(column: "revision", .integer).notNull().defaults(to: 0) }
            // The holder: one row per dataset offered as a list; its entries with the versions they were
            // added and removed at (a delta from v is every change after v).
            try db.create(table: "lookup_list") { t in
                t.primaryKey("dataset", .text)
                t.column("key_id", .text).notNull()
                t.column("key_seed", .blob).notNull()
                t.column("version", .integer).notNull()
                t.column("entries", .integer).notNull()
                // What the entries were built from (dataset import time, revision, label columns).
                t.column("source", .text).notNull()
                t.column("updated_at", .datetime).notNull()
            }
            try db.create(table: "lookup_list_entry") { t in
                t.column("dataset", .text).notNull()
                t.column("identifier", .text).notNull()
                t.column("label", .text).notNull()
                t.column("tag", .integer).notNull()
                t.column("sealed", .blob).notNull()
                t.column("added_version", .integer).notNull()
                t.column("removed_version", .integer)
            }
            try db.create(index: "lookup_list_entry_identifier", on: "lookup_list_entry", columns: ["dataset", "identifier"])
            try db.create(index: "lookup_list_entry_added", on: "lookup_list_entry", columns: ["dataset", "added_version"])
            try db.create(index: "lookup_list_entry_removed", on: "lookup_list_entry", columns: ["dataset", "removed_version"])
            // The querier: each subscribed list's table as last applied, and its entries.
            try db.create(table: "lookup_table") { t in
                t.column("holder", .text).notNull()
                t.column("list", .text).notNull()
                t.column("key_id", .text).notNull()
                t.column("version", .integer).notNull()
                t.column("entries", .integer).notNull()
                t.column("header", .blob).notNull()         // the signed header (JSON)
                t.column("signature", .blob).notNull()
                t.column("certificate", .blob).notNull()
                t.column("updated_at", .datetime).notNull()
                t.primaryKey(["holder", "list"])
            }
            try db.create(table: "lookup_table_entry") { t in
                t.column("holder", .text).notNull()
                t.column("list", .text).notNull()
                t.column("tag", .integer).notNull()
                t.column("sealed", .blob).notNull()
            }
            try db.create(index: "lookup_table_entry_tag", on: "lookup_table_entry", columns: ["holder", "list", "tag"])
            // An update being received, applied in one transaction once its signature verifies.
            try db.create(table: "lookup_staging") { t in
                t.column("sync_id", .text).notNull().indexed()
                t.column("tag", .integer).notNull()
                t.column("sealed", .blob)                 // NULL: a removed tag
            }
            // The holder's evaluations per querier, list and UTC hour (the audit writes each hour once).
            try db.create(table: "lookup_usage") { t in
                t.column("querier", .text).notNull()
                t.column("list", .text).notNull()
                t.column("hour", .text).notNull()          // yyyy-MM-ddTHH, UTC
                t.column("evaluated", .integer).notNull()
                t.column("refused", .integer).notNull()
                t.column("audited", .boolean).notNull().defaults(to: false)
                t.primaryKey(["querier", "list", "hour"])
            }
        }
        migrator.registerMigration("v9: lookup tables by table id, entries keyed by tag (the cached tables are fetched again)") { db in
            // The holder: nothing reads entries by identifier (a refresh compares whole lists).
            try db.drop(index: "lookup_list_entry_identifier")
            // The querier: a table's entries live under a table id, in one B-tree keyed by tag. A full
            // update is written under a new id while the old one stays in force, and the swap is one row.
            // The tables are a cache of the holders' lists: they are dropped here and the next sync fetches
            // them whole.
            try db.execute(sql: "DELETE FROM lookup_table")
            try db.alter(table: "lookup_table") { t in t.add(column: "table_id", .integer).notNull().defaults(to: 0) }
            try db.drop(table: "lookup_table_entry")
            try db.create(table: "lookup_table_entry", options: [.withoutRowID]) { t in
                t.column("table_id", .integer).notNull()
                t.column("tag", .integer).notNull()
                t.column("sealed", .blob).notNull()
                t.primaryKey(["table_id", "tag", "sealed"])
            }
            // Table ids handed out and not (or no longer) in force: a full update being received, or a
            // replaced table whose rows are still to be deleted. Cleared at start.
            try db.create(table: "lookup_table_unused") { t in
                t.autoIncrementedPrimaryKey("table_id")
            }
        }
        migrator.registerMigration("v10: result items in identifier order per job (pages of a large result)") { db in
            try db.create(index: "job_result_item_identifier", on: "job_result_item", columns: ["job_id", "identifier"])
            try db.execute(sql: "DROP INDEX IF EXISTS index_job_result_item_on_job_id")
        }
        migrator.registerMigration("v11: the Merkle log over the audit records (leaf hashes, signed tree heads, heads of peers, alarms)") { db in
            try db.create(table: "ledger_leaf") { t in
                t.primaryKey("leaf_index", .integer)
                t.column("seq", .integer).notNull().unique()
                t.column("hash", .blob).notNull()
            }
            try db.create(table: "tree_head") { t in
                t.primaryKey("size", .integer)
                t.column("node", .text).notNull()
                t.column("root", .blob).notNull()
                t.column("timestamp_ms", .integer).notNull()
                t.column("signature", .blob).notNull()
                t.column("certificate", .blob).notNull()
            }
            try db.create(table: "peer_tree_head") { t in
                t.column("node", .text).notNull()
                t.column("size", .integer).notNull()
                t.column("root", .blob).notNull()
                t.column("timestamp_ms", .integer).notNull()
                t.column("signature", .blob).notNull()
                t.column("certificate", .blob).notNull()
                t.column("received_at", .text).notNull()
                t.primaryKey(["node", "size", "root"])
            }
            try db.create(table: "ledger_alarm") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("at", .text).notNull()
                t.column("node", .text).notNull()
                t.column("kind", .text).notNull()
                t.column("detail", .text).notNull()
            }
            // The records so far become the first leaves, in their order.
            let records = try Row.fetchCursor(db, sql: "SELECT seq, at, job_id, event, details FROM audit_log ORDER BY seq")
            var index = 0
            while let r = try records.next() {
                let hash = LedgerLeaf.hash(seq: r[0], at: r[1], jobID: r[2], event: r[3], details: r[4])
                try db.execute(sql: "INSERT INTO ledger_leaf (leaf_index, seq, hash) VALUES (?, ?, ?)", arguments: [index, r[0] as Int64, Data(hash)])
                index += 1
            }
        }
        migrator.registerMigration("v12: job receipts (input commitments at participants and the coordinator, signed receipts)") { db in
            try db.alter(table: "job_party") { t in
                t.add(column: "input_commitment", .blob)
                t.add(column: "result_commitment", .blob)
            }
            try db.create(table: "job_input_commitment") { t in
                t.primaryKey("job_id", .text)
                t.column("salt", .blob).notNull()
                t.column("commitment", .blob).notNull()
            }
            try db.create(table: "job_result_commitment") { t in
                t.primaryKey("job_id", .text)
                t.column("salt", .blob).notNull()
                t.column("commitment", .blob).notNull()
            }
            try db.create(table: "job_receipt") { t in
                t.primaryKey("job_id", .text)
                t.column("receipt", .blob).notNull()          // the JobReceipt's bytes, as signed
                t.column("delivery", .blob).notNull()         // the ReceiptDelivery: receipt and signatures
                t.column("sha256", .text).notNull()
                t.column("received_at", .text).notNull()
            }
            // At a party: the one receipt of each job it signed (it never signs two).
            try db.create(table: "receipt_signed") { t in
                t.primaryKey("job_id", .text)
                t.column("sha256", .text).notNull()
            }
            // At a report's recipient: each party's proof that its log holds the job's receipt.
            try db.create(table: "receipt_inclusion") { t in
                t.column("job_id", .text).notNull()
                t.column("node", .text).notNull()
                t.column("proven", .boolean).notNull()
                t.column("detail", .text).notNull()
                t.column("checked_at", .text).notNull()
                t.primaryKey(["job_id", "node"])
            }
        }
        migrator.registerMigration("v13: the hashes of the log's perfect subtrees (roots and proofs in O(log² n) reads), heads of a node shown by another") { db in
            // A head of a node that another peer held and showed (a split view's evidence, or a head proven
            // to extend one pulled): never the head a pull of that node starts from.
            // confirm_attempts: NULL for a head pulled from its node or proven consistent with one; a count of
            // rounds the node did not prove it otherwise (pending). seq: the order heads were kept in (the
            // cursor of `seen_since`).
            try db.alter(table: "peer_tree_head") { t in
                t.add(column: "shown_by", .text)
                t.add(column: "confirm_attempts", .integer)
                t.add(column: "seq", .integer).notNull().defaults(to: 0)
            }
            try db.execute(sql: "UPDATE peer_tree_head SET seq = rowid")
            // The last seq given: it only grows, even when rows are deleted.
            try db.execute(sql: "CREATE TABLE peer_tree_head_seq (id INTEGER PRIMARY KEY CHECK (id = 1), last INTEGER NOT NULL)")
            try db.execute(sql: "INSERT INTO peer_tree_head_seq (id, last) VALUES (1, (SELECT COALESCE(MAX(seq), 0) FROM peer_tree_head))")
            try db.create(table: "ledger_node") { t in
                t.column("level", .integer).notNull()
                t.column("node_index", .integer).notNull()
                t.column("hash", .blob).notNull()
                t.primaryKey(["level", "node_index"])
            }
            try NodeLedger.rebuildPerfectSubtrees(db)
        }
        return migrator
    }

    /// The SQL table that holds a dataset's rows.
    static func tableName(forDataset name: String) -> String { "ds_\(name)" }

    /// Quotes an identifier for SQL.
    static func quote(_ identifier: String) -> String {
        "\"" + identifier.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

public enum StoreError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(path: String, detail: String)
    case invalidDatasetName(String)
    case datasetExists(String)
    case unknownDataset(String)
    /// A stored document written by a newer node.
    case unknownDocumentFormat(Int, supported: Int)
    case unknownColumn(dataset: String, column: String, available: [String])
    case missingColumn(column: String, header: [String])
    case duplicateColumn(String)
    case emptyFile(path: String)
    case malformedCSV(path: String, line: Int, reason: String)

    public var description: String {
        switch self {
        case .cannotOpen(let p, let d): return "cannot open the node database \(p): \(d)"
        case .invalidDatasetName(let n): return "'\(n)' is not a valid dataset name: use 1 to 48 characters of a-z, 0-9 and '_', starting with a letter"
        case .datasetExists(let n): return "dataset '\(n)' already exists; pass --replace to replace it"
        case .unknownDataset(let n): return "no dataset '\(n)' on this node (see `mpcnode data list`)"
        case .unknownDocumentFormat(let f, let s): return "a stored document has format \(f); this node reads formats up to \(s): run the newer mpcnode version that wrote it"
        case .unknownColumn(let d, let c, let a): return "dataset '\(d)' has no column \(Self.shown(c)) (columns: \(Self.shown(a)))"
        case .missingColumn(let c, let h): return "the CSV header has no column \(Self.shown(c)) (header: \(Self.shown(h)))"
        case .duplicateColumn(let c): return "the CSV header names column \(Self.shown(c)) twice"
        case .emptyFile(let p): return "\(p) is empty: it needs a header line"
        case .malformedCSV(let p, let l, let r): return "\(p), line \(l): \(r); nothing was imported"
        }
    }

    /// A name from a file as it appears in a message: quoted with invisible characters escaped (a
    /// byte-order mark shows as \u{FEFF}), at most 64 characters.
    static func shown(_ value: String) -> String {
        let escaped = value.unicodeScalars.map { $0.properties.isWhitespace && $0 != " " || $0.properties.generalCategory == .format || $0.value < 0x20
            ? "\\u{\(String($0.value, radix: 16, uppercase: true))}" : String($0) }.joined()
        return escaped.count <= 64 ? "'\(escaped)'" : "'\(escaped.prefix(64))…' (\(value.utf8.count) bytes)"
    }

    /// A list of names: at most 20 shown, each cut.
    static func shown(_ values: [String]) -> String {
        let listed = values.prefix(20).map { shown($0) }.joined(separator: ", ")
        return values.count > 20 ? listed + ", … (\(values.count) columns)" : listed
    }
}