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

    /// Why releasing `cells` of `spec` over `clients` would single out a few clients' figures or records,
    /// or nil: checked when the server names the cells and the clients, before any measure is sent.
    /// - Client sets: with the same cell released over other client sets before, a client's own figure
    ///   must not follow from any combination of the sums (its indicator vector in the span of the sets'),
    ///   and two sets must not differ by fewer than `minimumParties` clients.
    /// - The released cells themselves: the total of all rows next to the released cells of one column
    ///   must not leave 1 … `minimumRecords` − 1 of this node's records outside them.
    public func releaseRefusal(_ spec: Mpcnode_V1_JobSpec, dataset: String, cells: [Int], clients: [String], minimumParties: Int,
                               minimumRecords: Int, _ db: Database) throws -> String? {
        let a = spec.aggregate
        let history = try self.cells(dataset: dataset, db)
        let values: [String?] = cells.map { a.groupBy.isEmpty ? nil : a.groups[$0] }
        for value in Set(values) {
            let earlier = history.filter { $0.groupBy == a.groupBy && $0.value == value && !$0.clients.isEmpty }
            let cell = name(a.groupBy, value)
            for h in earlier {
                let difference = Set(clients).symmetricDifference(h.clients)
                guard !difference.isEmpty, difference.count < max(2, minimumParties) else { continue }
                return "cell \(cell) was released by job \(h.jobID) over \(h.clients.count) clients; releasing it now over \(clients.count) would single out the figures of \(difference.sorted().joined(separator: ", ")) by the difference (fewer than min_cell_parties \(max(2, minimumParties)) clients); no measure was sent"
            }
            var sets = Set(earlier.map { $0.clients.sorted() })
            sets.insert(clients.sorted())
            if sets.count > 1, let isolated = Self.isolatedClient(Array(sets)) {
                let jobs = Set(earlier.map(\.jobID)).sorted().joined(separator: ", ")
                return "cell \(cell) was released over other client sets (jobs \(jobs)); with this release, \(isolated)'s own figures would follow from the sums; no measure was sent"
            }
        }
        guard minimumRecords > 1, a.groupBy.isEmpty || !values.isEmpty else { return nil }
        let released = Set(values.compactMap { $0 })
        return try complementRefusal(a, dataset: dataset, history: history, thisJob: released, minimum: minimumRecords, db)
    }

    /// Why a secure sum over `dataset` would single out fewer than `minimum` of this node's records by its
    /// difference with released cells, or nil; checked at the proposal, with every cell the job asks for
    /// (the release is checked again on the cells actually released, `releaseRefusal`).
    public func refusal(_ spec: Mpcnode_V1_JobSpec, dataset: String, minimum: Int, _ db: Database) throws -> String? {
        guard minimum > 1 else { return nil }
        let history = try cells(dataset: dataset, db)
        guard !history.isEmpty else { return nil }
        let a = spec.aggregate
        guard let counts = try counts(db, dataset: dataset, column: a.groupBy) else { return nil }
        func small(_ n: Int) -> Bool { n > 0 && n < minimum }
        // The same cell again, over rows that changed by a few.
        let cells: [String?] = a.groupBy.isEmpty ? [nil] : a.groups.map { $0 }
        for value in cells {
            let now = value.map { counts[$0] ?? 0 } ?? counts.values.reduce(0, +)
            for h in history where h.groupBy == a.groupBy && h.value == value && small(abs(now - h.ownRecords)) {
                return "cell \(name(a.groupBy, value)) was released by job \(h.jobID) over \(h.ownRecords) of this node's records and would now cover \(now): the difference of the two results would single out \(abs(now - h.ownRecords)) records, fewer than min_cell_records \(minimum)"
            }
        }
        return try complementRefusal(a, dataset: dataset, history: history, thisJob: Set(a.groups), minimum: minimum, db)
    }

    /// The total of all rows next to the cells of one column: what lies outside those cells must not be
    /// 1 … `minimum` − 1 of this node's records.
    private func complementRefusal(_ a: Mpcnode_V1_AggregateSpec, dataset: String, history: [Cell], thisJob: Set<String>, minimum: Int,
                                   _ db: Database) throws -> String? {
        let totalReleased = a.groupBy.isEmpty || history.contains { $0.groupBy.isEmpty }
        guard totalReleased else { return nil }
        var columns = Set(history.map(\.groupBy).filter { !$0.isEmpty })
        if !a.groupBy.isEmpty { columns.insert(a.groupBy) }
        for column in columns.sorted() {
            // (A column this dataset no longer has, re-imported without it, has nothing left to compare.)
            guard let counts = try counts(db, dataset: dataset, column: column) else { continue }
            var values = Set(history.filter { $0.groupBy == column }.compactMap(\.value))
            if a.groupBy == column { values.formUnion(thisJob) }
            let outside = counts.reduce(0) { $0 + ($1.key.map { values.contains($0) } == true ? 0 : $1.value) }
            if outside > 0 && outside < minimum {
                let earlier = Set(history.filter { $0.groupBy == column || $0.groupBy.isEmpty }.map(\.jobID)).sorted()
                return "with the total of all rows, the cells of \(column) released (jobs \(earlier.joined(separator: ", ")) and this one) leave \(outside) of this node's records outside them: their difference would single those out, fewer than min_cell_records \(minimum)"
            }
        }
        return nil
    }

    private func name(_ groupBy: String, _ value: String?) -> String {
        value.map { "'\(PeerText.cut($0, limit: 60))' of \(groupBy)" } ?? "the total of all rows"
    }

    /// This node's rows per value of `column` (NULL as nil) in one pass, or one entry for all rows when
    /// `column` is empty; nil when the dataset has no such column.
    private func counts(_ db: Database, dataset: String, column: String) throws -> [String?: Int]? {
        let table = NodeStore.quote(NodeStore.tableName(forDataset: dataset))
        guard !column.isEmpty else {
            return [nil: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \(table)") ?? 0]
        }
        guard try db.columns(in: NodeStore.tableName(forDataset: dataset)).contains(where: { $0.name == column }) else { return nil }
        var counts: [String?: Int] = [:]
        let rows = try Row.fetchCursor(db, sql: "SELECT \(NodeStore.quote(column)), COUNT(*) FROM \(table) GROUP BY 1")
        while let row = try rows.next() { counts[row[0] as String?] = row[1] }
        return counts
    }

    /// A client whose own figure is a linear combination of the sums over `sets` (its indicator vector lies
    /// in their span), or nil. Exact elimination modulo the prime 2³¹ − 1: a combination over the rationals
    /// is one modulo the prime, so nothing is missed (a rare false alarm only refuses).
    public static func isolatedClient(_ sets: [[String]]) -> String? {
        let clients = Array(Set(sets.flatMap { $0 })).sorted()
        let index = Dictionary(uniqueKeysWithValues: clients.enumerated().map { ($1, $0) })
        let p: UInt64 = 2_147_483_647
        func inverse(_ a: UInt64) -> UInt64 {
            var result: UInt64 = 1, base = a % p, e = p - 2
            while e > 0 { if e & 1 == 1 { result = result * base % p }; base = base * base % p; e >>= 1 }
            return result
        }
        // Reduced row echelon form of the sets' indicator vectors.
        var basis: [(pivot: Int, row: [UInt64])] = []
        func reduce(_ v: [UInt64]) -> [UInt64] {
            var v = v
            for (pivot, row) in basis where v[pivot] != 0 {
                let f = v[pivot]
                for j in 0..<v.count { v[j] = (v[j] + (p - f) * row[j] % p) % p }
            }
            return v
        }
        for set in sets {
            var v = [UInt64](repeating: 0, count: clients.count)
            for c in set { v[index[c]!] = 1 }
            v = reduce(v)
            guard let pivot = v.firstIndex(where: { $0 != 0 }) else { continue }
            let inv = inverse(v[pivot])
            v = v.map { $0 * inv % p }
            basis = basis.map { b in
                guard b.row[pivot] != 0 else { return b }
                let f = b.row[pivot]
                return (pivot: b.pivot, row: zip(b.row, v).map { ($0 + (p - f) * $1 % p) % p })
            }
            basis.append((pivot: pivot, row: v))
        }
        for (i, client) in clients.enumerated() {
            var e = [UInt64](repeating: 0, count: clients.count)
            e[i] = 1
            if reduce(e).allSatisfy({ $0 == 0 }) { return client }
        }
        return nil
    }
}
