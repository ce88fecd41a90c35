import Crypto
import Foundation
import GRDB

/// A JSON value in an audit record's details.
public enum AuditValue: Codable, Sendable, Equatable {
    case string(String), int(Int), bool(Bool), array([AuditValue]), object([String: AuditValue])

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .string(let s): try c.encode(s)
        case .int(let i): try c.encode(i)
        case .bool(let b): try c.encode(b)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int.self) { self = .int(i) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([AuditValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: AuditValue].self)) }
    }
}

/// One entry of the audit log.
public struct AuditRecord: Codable, Sendable {
    public var seq: Int64
    public var at: String
    public var jobID: String?
    public var event: String
    public var details: String
    public var previousHash: String
    public var hash: String
}

/// A row of `audit_log`.
extension AuditRecord: FetchableRecord, TableRecord {
    public static let databaseTableName = "audit_log"

    public init(row: Row) throws {
        self.init(seq: row["seq"], at: row["at"], jobID: row["job_id"], event: row["event"], details: row["details"],
                  previousHash: row["previous_hash"], hash: row["hash"])
    }
}

/// The node's append-only, hash-chained audit log.
///
/// Each record's hash is SHA-256 over the previous record's hash and the record's own canonical text
/// (time, job, event, details with sorted keys), so removing or editing a record breaks every later
/// hash; `verify()` recomputes the chain. A record's hash is what a participant reports to the
/// coordinator, so the two sides' logs can be cross-checked.
public struct AuditLog: Sendable {
    public let store: NodeStore
    static let genesis = String(repeating: "0", count: 64)

    public init(store: NodeStore) { self.store = store }

    /// Appends a record inside the caller's transaction; returns its hash.
    @discardableResult
    public func append(_ db: Database, event: String, jobID: String?, details: [String: AuditValue]) throws -> String {
        let previous = try String.fetchOne(db, sql: "SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1") ?? Self.genesis
        let at = AuditTime.string(Date())
        let detailsJSON = try Self.canonicalJSON(details)
        let hash = Self.hash(previous: previous, at: at, jobID: jobID, event: event, details: detailsJSON)
        try db.execute(sql: "INSERT INTO audit_log (at, job_id, event, details, previous_hash, hash) VALUES (?, ?, ?, ?, ?, ?)",
                       arguments: [at, jobID, event, detailsJSON, previous, hash])
        // The record is also the next leaf of the node's Merkle log (Protocols/ledger.md).
        let seq = db.lastInsertedRowID
        try NodeLedger.appendLeaf(db, seq: seq, hash: LedgerLeaf.hash(seq: seq, at: at, jobID: jobID, event: event, details: detailsJSON))
        return hash
    }

    /// The bytes of a record hash as `append` returns it (hex), for messages that carry it.
    static func hashBytes(_ hex: String) -> [UInt8] {
        var out: [UInt8] = []
        var i = hex.startIndex
        while i < hex.endIndex, let j = hex.index(i, offsetBy: 2, limitedBy: hex.endIndex), let b = UInt8(hex[i..<j], radix: 16) {
            out.append(b)
            i = j
        }
        return out
    }

    /// Appends a record in a transaction of its own.
    @discardableResult
    public func append(event: String, jobID: String?, details: [String: AuditValue]) throws -> String {
        try store.pool.write { db in try append(db, event: event, jobID: jobID, details: details) }
    }

    public func records(jobID: String? = nil, limit: Int = 1000) throws -> [AuditRecord] {
        try store.pool.read { db in
            if let jobID {
                return try AuditRecord.filter(Column("job_id") == jobID).order(Column("seq")).fetchAll(db)
            }
            return try AuditRecord.order(Column("seq").desc).limit(limit).fetchAll(db)
        }
    }

    /// Recomputes the chain; returns the sequence number of the first broken record, or nil if intact.
    public func verify() throws -> Int64? {
        try store.pool.read { db in
            var previous = Self.genesis
            let records = try AuditRecord.order(Column("seq")).fetchCursor(db)
            while let r = try records.next() {
                let expected = Self.hash(previous: previous, at: r.at, jobID: r.jobID, event: r.event, details: r.details)
                guard r.previousHash == previous, r.hash == expected else { return r.seq }
                previous = expected
            }
            return nil
        }
    }

    static func hash(previous: String, at: String, jobID: String?, event: String, details: String) -> String {
        let text = [previous, at, jobID ?? "", event, details].joined(separator: "\n")
        return SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    static func canonicalJSON(_ details: [String: AuditValue]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(details), as: UTF8.self)
    }
}
