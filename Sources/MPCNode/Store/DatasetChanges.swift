import Foundation
import GRDB

/// Incremental changes to an imported dataset (`mpcnode data append`, `data remove`): each in one
/// transaction, each bumping the dataset's revision (lookup lists built on it become a new version).
extension DatasetCatalog {
    /// Appends the rows of a CSV whose header holds every column of the dataset (extra columns are
    /// ignored), normalising identifiers as at import. On any error nothing is appended.
    @discardableResult
    public func append(dataset: String, csvPath: String) throws -> DatasetInfo {
        let info = try describe(dataset)
        let normalization = IdentifierNormalization(description: info.normalization) ?? IdentifierNormalization()
        var reader = try CSVReader(path: csvPath)
        guard let header = try Self.wrap(csvPath, { try reader.next() }) else { throw StoreError.emptyFile(path: csvPath) }
        let indices = try info.columns.map { column -> Int in
            guard let i = header.firstIndex(of: column) else { throw StoreError.missingColumn(column: column, header: header) }
            return i
        }
        let idPosition = info.columns.firstIndex(of: info.idColumn)!
        let table = NodeStore.quote(NodeStore.tableName(forDataset: dataset))
        return try store.pool.write { db in
            let loader = CSVRowLoader(path: csvPath, fieldCount: header.count, fieldOfParameter: indices,
                                      idField: indices[idPosition], idColumn: info.idColumn, normalization: normalization)
            let rows = try loader.load(reader, table: table, columns: info.columns, db: db, progress: nil).rows
            return try recount(db, info: info, event: "dataset.appended", changed: rows)
        }
    }

    /// Removes every row whose identifier (normalised as at import) is one of `identifiers`. Returns the
    /// dataset and the rows removed.
    @discardableResult
    public func remove(dataset: String, identifiers: [String]) throws -> (info: DatasetInfo, removed: Int) {
        let info = try describe(dataset)
        let normalization = IdentifierNormalization(description: info.normalization) ?? IdentifierNormalization()
        let table = NodeStore.quote(NodeStore.tableName(forDataset: dataset)), id = NodeStore.quote(info.idColumn)
        return try store.pool.write { db in
            let delete = try db.makeStatement(sql: "DELETE FROM \(table) WHERE \(id) = ?")
            var removed = 0
            for identifier in Set(identifiers.map(normalization.apply)) where !identifier.isEmpty {
                try delete.execute(arguments: [identifier])
                removed += db.changesCount
            }
            return (try recount(db, info: info, event: "dataset.removed", changed: removed), removed)
        }
    }

    private func recount(_ db: Database, info: DatasetInfo, event: String, changed: Int) throws -> DatasetInfo {
        let table = NodeStore.quote(NodeStore.tableName(forDataset: info.name)), id = NodeStore.quote(info.idColumn)
        let rows = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \(table)") ?? 0
        let distinct = try Int.fetchOne(db, sql: "SELECT COUNT(DISTINCT \(id)) FROM \(table)") ?? 0
        try db.execute(sql: "UPDATE dataset SET row_count = ?, distinct_ids = ?, revision = revision + 1 WHERE name = ?",
                       arguments: [rows, distinct, info.name])
        try audit.append(db, event: event, jobID: nil, details: [
            "dataset": .string(info.name), "rows_changed": .int(changed), "rows": .int(rows), "distinct_ids": .int(distinct),
        ])
        var updated = info
        updated.rowCount = rows
        updated.distinctIdentifiers = distinct
        return updated
    }
}
