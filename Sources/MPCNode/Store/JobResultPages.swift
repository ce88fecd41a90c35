import Foundation
import GRDB
import MPCWire

/// One page of a job's result rows, in identifier order: what `mpcnode job result --output` streams to a
/// file page after page (constant memory on both sides, whatever the result's size).
public struct JobResultPage: Codable, Sendable, Equatable {
    public var jobID: String
    public var kind: String
    public var cardinality: Int
    /// The columns of each row: `identifier`, then `score` for a predict job's scores, then the columns
    /// of this node's own dataset asked for.
    public var columns: [String]
    /// One row per result identifier, or per matching row of the dataset when columns are joined (an
    /// identifier the dataset no longer has gets empty columns).
    public var rows: [[String?]]
    /// The identifier to continue after; nil on the last page.
    public var next: String?
}

extension JobRepository {
    /// The most rows a page holds (about 2 MB of JSON for phone numbers).
    public static let maximumPageRows = 50_000

    /// The rows of `jobID`'s result after the identifier `after` (nil: from the start), at most `limit`
    /// identifiers, with `columns` of the dataset this node (`localNode`) took part with joined on the
    /// job's column.
    public func resultPage(jobID: String, after: String?, limit: Int, columns: [String] = [], localNode: String) throws -> JobResultPage {
        let limit = max(1, min(limit, Self.maximumPageRows))
        return try store.pool.read { db in
            guard let stored = try JobResultRecord.fetchOne(db, key: jobID) else {
                if try exists(db, jobID: jobID) {
                    throw JobError.notCoordinator("job \(jobID) has no result on this node (it is not a recipient, or the job has not succeeded; see `mpcnode job status \(jobID)`)")
                }
                throw JobError.unknownJob(jobID)
            }
            var page = JobResultPage(jobID: jobID, kind: stored.kind, cardinality: stored.cardinality, columns: ["identifier"], rows: [], next: nil)
            let scores = stored.kind == "scores"
            if scores { page.columns.append("score") }
            guard ["intersection", "on-others-lists", "scores"].contains(stored.kind) else { return page }  // a count only

            var join = ""
            if !columns.isEmpty {
                let (table, key) = try joinedDataset(db, jobID: jobID, columns: columns, localNode: localNode)
                join = " LEFT JOIN \(NodeStore.quote(table)) AS d ON d.\(NodeStore.quote(key)) = r.identifier"
                page.columns += columns
            }
            let selected = (["r.identifier", "r.value"] + columns.map { "d." + NodeStore.quote($0) }).joined(separator: ", ")
            let sql = """
                SELECT \(selected) FROM (
                    SELECT identifier, value FROM job_result_item WHERE job_id = ?\(after == nil ? "" : " AND identifier > ?")
                    ORDER BY identifier LIMIT ?
                ) AS r\(join) ORDER BY r.identifier\(join.isEmpty ? "" : ", d._row")
                """
            let arguments: StatementArguments = after.map { [jobID, $0, limit] } ?? [jobID, limit]
            let cursor = try Row.fetchCursor(db, sql: sql, arguments: arguments)
            var identifiers = 0, last: String?
            while let row = try cursor.next() {
                let identifier: String = row[0]
                if identifier != last { identifiers += 1; last = identifier }
                var out: [String?] = [identifier]
                if scores { out.append((row[1] as Double?).map { "\($0)" }) }
                for i in columns.indices { out.append(row[2 + i] as String?) }
                page.rows.append(out)
            }
            page.next = identifiers == limit ? last : nil
            return page
        }
    }

    /// The dataset table and key column that this node's columns are joined from: its own party's
    /// dataset and column in the job, each asked-for column checked against the dataset's.
    private func joinedDataset(_ db: Database, jobID: String, columns: [String], localNode: String) throws -> (table: String, key: String) {
        guard let record = try JobRecord.fetchOne(db, key: jobID) else { throw JobError.unknownJob(jobID) }
        let spec = try Mpcnode_V1_JobSpec(serializedBytes: record.spec)
        guard let party = spec.parties.first(where: { $0.nodeID == localNode }) else {
            throw JobError.cannotJoinColumns("this node took part in job \(jobID) without a dataset of its own: there are no columns to join (drop --with-columns)")
        }
        guard let info = try DatasetInfo.filter(Column("name") == party.dataset).fetchOne(db) else {
            throw JobError.cannotJoinColumns("dataset '\(party.dataset)' of job \(jobID) is no longer on this node: import it again to join its columns, or drop --with-columns")
        }
        guard info.columns.contains(party.column) else {
            throw JobError.cannotJoinColumns("dataset '\(party.dataset)' no longer has the job's column '\(party.column)' (it was imported again without it): drop --with-columns")
        }
        for column in columns where !info.columns.contains(column) {
            throw StoreError.unknownColumn(dataset: party.dataset, column: column, available: info.columns)
        }
        guard Set(columns).count == columns.count else {
            throw JobError.cannotJoinColumns("--with-columns names a column twice")
        }
        return (NodeStore.tableName(forDataset: party.dataset), party.column)
    }
}
