import Foundation
import GRDB

/// A report at the aggregation server: the consortium's totals per cell, with provenance.
public struct ReportView: Codable, Sendable {
    public struct Cell: Codable, Sendable {
        public var group: String
        /// Nil when the cell is suppressed.
        public var records: Int64?
        public var parties: Int64?
        /// Measure name ("sum(balance)") → exact decimal text; empty when suppressed.
        public var values: [String: String]
        public var suppressed: Bool
        public var suppressionReason: String?
    }

    public var id: String
    /// The job's protocol ("secure-sum", "union-sum", …); nil in reports stored before it was recorded.
    public var kind: String?
    /// What the reader needs to know to interpret the cells.
    public var notes: [String]?
    public var jobID: String
    public var specHash: String
    public var coordinator: String
    public var createdAt: Date
    public var startedAt: Date
    public var groupBy: String?
    public var measures: [String]
    public var decimals: Int
    public var minCellRecords: Int
    public var minCellParties: Int
    public var included: [String]
    public var dropped: [String]
    /// Each participant's audit record of the job (hash of its `job.started` record, signed with its keys).
    public var participantAuditHashes: [String: String]
    public var cells: [Cell]
    /// The job's receipt as this node holds it, its signatures verified when the report is read (never
    /// stored with the report: Protocols/ledger.md).
    public var receipt: JobReceipts.Check?
}

/// Stores and reads reports.
public struct ReportRepository: Sendable {
    public let store: NodeStore
    public init(store: NodeStore) { self.store = store }
    private var documents: JSONDocuments<ReportView> { JSONDocuments(store: store, table: "report", missing: { JobError.noReport($0) }) }

    public func insert(_ db: Database, _ report: ReportView) throws {
        let body = try JSONDocuments.body(report)
        try db.execute(sql: "INSERT INTO report (id, job_id, spec_hash, coordinator, created_at, body) VALUES (?, ?, ?, ?, ?, ?)",
                       arguments: [report.id, report.jobID, report.specHash, report.coordinator, report.createdAt, body])
    }

    public func list(limit: Int = 100) throws -> [ReportView] { try documents.list(limit: limit) }
    public func get(_ id: String) throws -> ReportView { try documents.get(id) }

    /// Formats a fixed-point integer with `decimals` decimals, exactly.
    public static func decimalText(_ value: Int64, decimals: Int) -> String {
        guard decimals > 0 else { return String(value) }
        let negative = value < 0
        let digits = String(value.magnitude)
        let padded = String(repeating: "0", count: max(0, decimals + 1 - digits.count)) + digits
        let cut = padded.index(padded.endIndex, offsetBy: -decimals)
        return (negative ? "-" : "") + padded[..<cut] + "." + padded[cut...]
    }
}
