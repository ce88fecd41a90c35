import Foundation
import GRDB
import MPCProtocols
import MPCWire

/// The cells of secure sums released on this node's datasets, and the differencing check every new
/// secure sum must pass before it is accepted (issue 11, finding 3).
///
/// Two results that are each safe can single out records by their difference: the same cell released
/// again after a few rows changed, or the total of all rows released next to cells of one column that
/// leave a few rows outside them (total − high − medium − low = the rest, a cell the report suppressed).
/// A participant knows only its own rows, so it measures each difference over them: a job whose
/// cells would differ from released ones by between 1 and `min_cell_records − 1` of this node's records
/// is refused, saying which earlier job and cell. This is stricter than the report's own rule (the
/// difference over all parties may be larger) and it covers these two shapes of differencing, not every
/// linear combination of cells of different columns (Docs/threat-model.md).
public struct ReleaseHistory {
    public struct Cell: Equatable, Sendable {
        /// The group-by column, or "" for the total of all rows.
        public var groupBy: String
        /// The group's value, or nil for the total of all rows.
        public var value: String?
        public var ownRecords: Int
        public var jobID: String
        /// The clients of the sum that released it, sorted.
        public var clients: [String]
    }

    public init() {}

    /// Every released cell on `dataset`, oldest first.
    public func cells(dataset: String, _ db: Database) throws -> [Cell] {
        try Row.fetchAll(db, sql: "SELECT job_id, group_by, cell, own_records, clients FROM released_cell WHERE dataset = ? ORDER BY rowid",
                         arguments: [dataset]).map {
            Cell(groupBy: $0["group_by"], value: $0["cell"], ownRecords: $0["own_records"], jobID: $0["job_id"],
                 clients: ($0["clients"] as String).split(separator: "\n").map(String.init))
        }
    }

    /// Records the cells of `spec` that were released (indices into its cells), with this node's records in
    /// each and the clients of the sum.
    public func record(_ spec: Mpcnode_V1_JobSpec, dataset: String, released: [Int], ownRecords: [Int], clients: [String],
                       at date: Date = Date(), _ db: Database) throws {
        let a = spec.aggregate
        let joined = clients.sorted().joined(separator: "\n")
        for i in released {
            try db.execute(sql: "INSERT INTO released_cell (job_id, dataset, group_by, cell, own_records, clients, released_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           arguments: [spec.jobID, dataset, a.groupBy, a.groupBy.isEmpty ? nil : a.groups[i], ownRecords[i], joined, date])
        }
    }

    /// Why releasing `cells` of `spec` over `clients` would single out a few clients' figures by the
    /// difference with the same cells released over other clients, or nil: checked when the server names
    /// the cells and the clients, before any measure is sent. Fewer than `minimumParties` (at least one)
    /// clients in one release and not the other is refused.
    public func participantRefusal(_ spec: Mpcnode_V1_JobSpec, dataset: String, cells: [Int], clients: [String], minimumParties: Int,
                                   _ db: Database) throws -> String? {
        let a = spec.aggregate
        let now = Set(clients)
        let values: Set<String?> = Set(cells.map { a.groupBy.isEmpty ? nil : a.groups[$0] })
        for h in try self.cells(dataset: dataset, db) where h.groupBy == a.groupBy && values.contains(h.value) && !h.clients.isEmpty {
            let difference = now.symmetricDifference(h.clients)
            guard !difference.isEmpty, difference.count < max(2, minimumParties) else { continue }
            let cell = h.value.map { "'\(PeerText.cut($0, limit: 60))' of \(a.groupBy)" } ?? "the total of all rows"
            return "cell \(cell) was released by job \(h.jobID) over \(h.clients.count) clients; releasing it now over \(clients.count) would single out the figures of \(difference.sorted().joined(separator: ", ")) by the difference (fewer than min_cell_parties \(max(2, minimumParties)) clients); no measure was sent"
        }
        return nil
    }

    /// Why a secure sum over `dataset` would single out fewer than `minimum` of this node's records by its
    /// difference with released cells, or nil.
    public func refusal(_ spec: Mpcnode_V1_JobSpec, dataset: String, minimum: Int, _ db: Database) throws -> String? {
        guard minimum > 1 else { return nil }
        let history = try cells(dataset: dataset, db)
        guard !history.isEmpty else { return nil }
        let table = NodeStore.tableName(forDataset: dataset)
        let columns = Set(try db.columns(in: table).map(\.name))
        let a = spec.aggregate
        func small(_ n: Int) -> Bool { n > 0 && n < minimum }
        func name(_ groupBy: String, _ value: String?) -> String { value.map { "'\(PeerText.cut($0, limit: 60))' of \(groupBy)" } ?? "the total of all rows" }

        // The same cell again, over rows that changed by a few.
        let cells: [String?] = a.groupBy.isEmpty ? [nil] : a.groups.map { $0 }
        for value in cells {
            guard a.groupBy.isEmpty || columns.contains(a.groupBy) else { break }
            let now = try count(db, table: table, groupBy: a.groupBy, value: value)
            for h in history where h.groupBy == a.groupBy && h.value == value && small(abs(now - h.ownRecords)) {
                return "cell \(name(a.groupBy, value)) was released by job \(h.jobID) over \(h.ownRecords) of this node's records and would now cover \(now): the difference of the two results would single out \(abs(now - h.ownRecords)) records, fewer than min_cell_records \(minimum)"
            }
        }
        // The total of all rows next to the cells of one column: what lies outside those cells.
        let totalReleased = a.groupBy.isEmpty || history.contains { $0.groupBy.isEmpty }
        guard totalReleased else { return nil }
        var released = Set(history.map(\.groupBy).filter { !$0.isEmpty })
        if !a.groupBy.isEmpty { released.insert(a.groupBy) }
        // (A column this dataset no longer has, re-imported without it, has nothing left to compare.)
        for column in released.intersection(columns).sorted() {
            var values = Set(history.filter { $0.groupBy == column }.compactMap(\.value))
            if a.groupBy == column { values.formUnion(a.groups) }
            let outside = try countOutside(db, table: table, column: column, values: Array(values))
            if small(outside) {
                let earlier = Set(history.filter { $0.groupBy == column || $0.groupBy.isEmpty }.map(\.jobID)).sorted()
                return "with the total of all rows, the cells of \(column) released (jobs \(earlier.joined(separator: ", ")) and this one) leave \(outside) of this node's records outside them: their difference would single those out, fewer than min_cell_records \(minimum)"
            }
        }
        return nil
    }

    private func count(_ db: Database, table: String, groupBy: String, value: String?) throws -> Int {
        let from = "SELECT COUNT(*) FROM \(NodeStore.quote(table))"
        guard let value else { return try Int.fetchOne(db, sql: from) ?? 0 }
        return try Int.fetchOne(db, sql: "\(from) WHERE \(NodeStore.quote(groupBy)) = ?", arguments: [value]) ?? 0
    }

    /// Rows in no cell of `column` among `values` (a NULL value is in none).
    private func countOutside(_ db: Database, table: String, column: String, values: [String]) throws -> Int {
        let placeholders = Array(repeating: "?", count: values.count).joined(separator: ", ")
        let notIn = values.isEmpty ? "" : " OR \(NodeStore.quote(column)) NOT IN (\(placeholders))"
        return try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \(NodeStore.quote(table)) WHERE \(NodeStore.quote(column)) IS NULL\(notIn)",
                                arguments: StatementArguments(values)) ?? 0
    }
}
