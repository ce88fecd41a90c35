import Foundation
import GRDB
import GRDBSQLite

/// Loads a CSV's records into a dataset's table through a prepared INSERT (`data import`, `data append`):
/// each record is checked — field count, UTF-8, the identifier non-empty and at most
/// `DatasetCatalog.maximumIdentifierBytes` after normalisation — and bound as bytes straight from the
/// reader's buffer, without strings (SQLITE_STATIC: the bytes stay put until the row is stepped, and every
/// parameter is bound again before the next step). Errors name the file's line; the caller's transaction
/// then stores nothing.
struct CSVRowLoader {
    let path: String
    /// Fields every record must have (the header's).
    let fieldCount: Int
    /// The record's field bound to each parameter of the statement, in order.
    let fieldOfParameter: [Int]
    /// The identifier's field, normalised before it is bound.
    let idField: Int
    let idColumn: String
    let normalization: IdentifierNormalization

    /// Inserts every remaining record of `reader`; returns how many. `progress` is told the rows so far and
    /// the bytes of the file read, every 100,000 rows.
    func load(_ reader: inout CSVReader, into insert: Statement, db: Database, progress: ((_ rows: Int, _ bytes: Int) -> Void)?) throws -> Int {
        var rows = 0
        var identifier: [UInt8] = []
        let statement = insert.sqliteStatement
        var line = reader.line
        // `insert` owns the raw statement used below: it must outlive the loop.
        try withExtendedLifetime(insert) {
            while try DatasetCatalog.wrap(path, { try reader.nextRaw() }) {
                defer { line = reader.line }
                let blank = try reader.withFields { bytes, ranges -> Bool in
                    if ranges.count == 1 && ranges[0].isEmpty { return true }  // a blank line
                    guard ranges.count == fieldCount else {
                        throw StoreError.malformedCSV(path: path, line: line, reason: "\(ranges.count) fields where the header has \(fieldCount)")
                    }
                    if !Self.isASCII(bytes) {
                        for (index, range) in ranges.enumerated() where !Self.isValidUTF8(UnsafeBufferPointer(rebasing: bytes[range])) {
                            throw StoreError.malformedCSV(path: path, line: line, reason: "field \(index + 1) is not valid UTF-8")
                        }
                    }
                    let raw = UnsafeBufferPointer(rebasing: bytes[ranges[idField]])
                    if !normalization.applyASCII(raw, into: &identifier) {
                        identifier = Array(normalization.apply(String(decoding: raw, as: UTF8.self)).utf8)
                    }
                    if identifier.count > DatasetCatalog.maximumIdentifierBytes {
                        throw StoreError.malformedCSV(path: path, line: line,
                                                      reason: "identifier of \(identifier.count) bytes in column '\(idColumn)' (at most \(DatasetCatalog.maximumIdentifierBytes))")
                    }
                    if identifier.isEmpty {
                        throw StoreError.malformedCSV(path: path, line: line, reason: "empty identifier in column '\(idColumn)' (after \(normalization) normalisation)")
                    }
                    try identifier.withUnsafeBufferPointer { id in
                        var parameter: Int32 = 1
                        for field in fieldOfParameter {
                            Self.bindStatic(statement, parameter, field == idField ? id : UnsafeBufferPointer(rebasing: bytes[ranges[field]]))
                            parameter += 1
                        }
                        let rc = sqlite3_step(statement)
                        sqlite3_reset(statement)
                        guard rc == SQLITE_DONE else {
                            throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: String(cString: sqlite3_errmsg(db.sqliteConnection)))
                        }
                    }
                    return false
                }
                if blank { continue }
                rows += 1
                if rows % 100_000 == 0 { progress?(rows, reader.bytesRead) }
            }
            sqlite3_clear_bindings(statement)
        }
        return rows
    }

    /// Whether `bytes` are UTF-8 (ASCII at once; others checked by the standard library).
    static func isValidUTF8(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        for b in bytes where b >= 0x80 { return String(validating: bytes, as: UTF8.self) != nil }
        return true
    }

    /// Whether every byte is ASCII.
    static func isASCII(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var any: UInt8 = 0
        for b in bytes { any |= b }
        return any < 0x80
    }

    /// Binds text bytes to parameter `index` without SQLite copying them (SQLITE_STATIC).
    static func bindStatic(_ statement: OpaquePointer, _ index: Int32, _ bytes: UnsafeBufferPointer<UInt8>) {
        let empty: StaticString = ""
        let base = bytes.count > 0 ? UnsafeRawPointer(bytes.baseAddress!) : UnsafeRawPointer(empty.utf8Start)
        _ = sqlite3_bind_text(statement, index, base.assumingMemoryBound(to: CChar.self), Int32(bytes.count), nil)
    }
}
