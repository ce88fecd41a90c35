import Foundation
import GRDB
import MPCLearning

/// A party's training (and evaluation) rows, read from its own SQLite: the job's feature columns and
/// its 0/1 label, row by row in table order. A value that is not a number, or a label other than 0 or
/// 1, is an error naming the row, the column and the value.
enum TrainingData {
    static func load(store: NodeStore, catalog: DatasetCatalog, dataset: String, features: [String], label: String) throws -> LabeledRows {
        let info = try catalog.describe(dataset)
        for column in features + [label] where !info.columns.contains(column) {
            throw TrainingError.missingColumn(dataset: dataset, column: column)
        }
        let table = NodeStore.quote(NodeStore.tableName(forDataset: dataset))
        let columns = (features + [label]).map(NodeStore.quote).joined(separator: ", ")
        return try store.read { db in
            var values: [Double] = [], labels: [Double] = []
            let cursor = try Row.fetchCursor(db, sql: "SELECT rowid, \(columns) FROM \(table) ORDER BY rowid")
            while let row = try cursor.next() {
                let rowid: Int64 = row[0]
                for (k, column) in features.enumerated() {
                    let text: String? = row[k + 1]
                    guard let text, let v = Double(text.trimmingCharacters(in: .whitespaces)), v.isFinite else {
                        throw TrainingError.badValue(dataset: dataset, row: rowid, column: column, value: text ?? "")
                    }
                    values.append(v)
                }
                let text: String? = row[features.count + 1]
                guard let text, let y = Double(text.trimmingCharacters(in: .whitespaces)), y == 0 || y == 1 else {
                    throw TrainingError.badValue(dataset: dataset, row: rowid, column: label, value: text ?? "")
                }
                labels.append(y)
            }
            return LabeledRows(features: values, labels: labels, width: features.count)
        }
    }

    /// The rows of the given identifiers, in that order (vertical training after the alignment): the first
    /// row of each identifier; `label` nil for a party without labels.
    static func loadAligned(store: NodeStore, catalog: DatasetCatalog, dataset: String, idColumn: String, ids: [String],
                            features: [String], label: String?) throws -> LabeledRows {
        let info = try catalog.describe(dataset)
        for column in features + [idColumn] + (label.map { [$0] } ?? []) where !info.columns.contains(column) {
            throw TrainingError.missingColumn(dataset: dataset, column: column)
        }
        let table = NodeStore.quote(NodeStore.tableName(forDataset: dataset))
        let columns = ([idColumn] + features + (label.map { [$0] } ?? [])).map(NodeStore.quote).joined(separator: ", ")
        let wanted = Set(ids)
        let byID: [String: (Int64, [String?])] = try store.read { db in
            var out: [String: (Int64, [String?])] = [:]
            let cursor = try Row.fetchCursor(db, sql: "SELECT rowid, \(columns) FROM \(table) ORDER BY rowid")
            while let row = try cursor.next() {
                guard let id: String = row[1], wanted.contains(id), out[id] == nil else { continue }
                out[id] = (row[0], (0..<(features.count + (label == nil ? 0 : 1))).map { row[$0 + 2] })
            }
            return out
        }
        var values: [Double] = [], labels: [Double] = []
        values.reserveCapacity(ids.count * features.count)
        for id in ids {
            guard let (rowid, fields) = byID[id] else { throw TrainingError.missingColumn(dataset: dataset, column: idColumn) }
            for (k, column) in features.enumerated() {
                guard let text = fields[k], let v = Double(text.trimmingCharacters(in: .whitespaces)), v.isFinite else {
                    throw TrainingError.badValue(dataset: dataset, row: rowid, column: column, value: fields[k] ?? "")
                }
                values.append(v)
            }
            if let label {
                guard let text = fields[features.count], let y = Double(text.trimmingCharacters(in: .whitespaces)), y == 0 || y == 1 else {
                    throw TrainingError.badValue(dataset: dataset, row: rowid, column: label, value: fields[features.count] ?? "")
                }
                labels.append(y)
            } else {
                labels.append(0)
            }
        }
        return LabeledRows(features: values, labels: labels, width: max(1, features.count))
    }

    /// Splits rows into training and held-out evaluation rows: a row is held out when a hash of the job id
    /// and its position falls below `share` (deterministic for the job, independent of the data).
    static func holdOut(_ rows: LabeledRows, share: Double, jobID: String) -> (training: LabeledRows, evaluation: LabeledRows) {
        guard share > 0 else { return (rows, rows.subset([])) }
        var seed: UInt64 = 0xcbf29ce484222325
        for b in jobID.utf8 { seed = (seed ^ UInt64(b)) &* 0x100000001b3 }
        var training: [Int] = [], evaluation: [Int] = []
        for i in 0..<rows.count {
            var z = seed &+ UInt64(i) &* 0x9E3779B97F4A7C15
            z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
            z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
            z ^= z >> 31
            if Double(z >> 11) / Double(1 << 53) < share { evaluation.append(i) } else { training.append(i) }
        }
        return (rows.subset(training), rows.subset(evaluation))
    }
}

public enum TrainingError: Error, CustomStringConvertible, Equatable {
    case missingColumn(dataset: String, column: String)
    case badValue(dataset: String, row: Int64, column: String, value: String)
    case noRows(dataset: String)

    public var description: String {
        switch self {
        case .missingColumn(let d, let c): return "dataset '\(d)' has no column '\(c)'"
        case .badValue(let d, let r, let c, let v): return "dataset '\(d)', row \(r), column '\(c)': '\(v)' is not \(c.isEmpty ? "a number" : "a number (features) or 0/1 (label)")"
        case .noRows(let d): return "dataset '\(d)' has no rows to train on"
        }
    }
}
