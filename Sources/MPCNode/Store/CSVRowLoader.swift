import Foundation
import GRDB
import GRDBSQLite

/// Loads a CSV's records into a dataset's table through a prepared INSERT (`data import`, `data append`),
/// on two threads: a reading thread parses the file and checks each record — field count, UTF-8, the
/// identifier non-empty and at most `DatasetCatalog.maximumIdentifierBytes` after normalisation — into
/// batches (`CSVRowBatch`), while the calling thread, which holds the write transaction, binds each row as
/// bytes straight from its batch, without strings (SQLITE_STATIC: the bytes stay put until the row is
/// stepped, and every parameter is bound again before the next step). A few batches circulate
/// (`CSVRowBatchQueue`), so memory does not grow with the file. Errors name the file's line and are
/// raised in file order; the caller's transaction then stores nothing.
struct CSVRowLoader: Sendable {
    let path: String
    /// Fields every record must have (the header's).
    let fieldCount: Int
    /// The record's field bound to each parameter of the statement, in order.
    let fieldOfParameter: [Int]
    /// The identifier's field, normalised before it is bound.
    let idField: Int
    let idColumn: String
    let normalization: IdentifierNormalization
    /// Batches in circulation between the two threads.
    static let batchesInFlight = 4

    /// The reader, handed to the reading thread (nothing else uses it once the load has started).
    private final class HandedOver: @unchecked Sendable {
        var reader: CSVReader
        init(_ reader: consuming CSVReader) { self.reader = reader }
    }

    /// Inserts every remaining record of `reader` into `table` (quoted), one value for each of `columns`
    /// per record; returns how many, and the file's SHA-256 (hex). `progress` is told the rows so far and
    /// the bytes of the file read, every 100,000 rows.
    func load(_ reader: consuming CSVReader, table: String, columns: [String], db: Database,
              progress: ((_ rows: Int, _ bytes: Int) -> Void)?) throws -> (rows: Int, sha256: String) {
        precondition(columns.count == fieldOfParameter.count, "a column for each parameter")
        let k = columns.count
        // Rows go in groups of `group` through one statement (a fraction of the per-row cost of a
        // statement step), the rest of a batch one at a time; within the parameters this SQLite allows
        // (32,766 by default since 3.32, 999 before).
        let variables = Int(sqlite3_limit(db.sqliteConnection, SQLITE_LIMIT_VARIABLE_NUMBER, -1))
        let group = max(1, min(64, variables / k))
        let row = "(" + Array(repeating: "?", count: k).joined(separator: ", ") + ")"
        let into = "INSERT INTO \(table) (\(columns.map(NodeStore.quote).joined(separator: ", "))) VALUES "
        let single = try db.makeStatement(sql: into + row)
        let grouped = try db.makeStatement(sql: into + Array(repeating: row, count: group).joined(separator: ", "))

        let queue = CSVRowBatchQueue(batches: Self.batchesInFlight, parametersPerRow: k)
        let handedOver = HandedOver(reader)
        let readerEnded = DispatchSemaphore(value: 0)
        let thread = Thread { [self] in
            read(&handedOver.reader, into: queue)
            readerEnded.signal()
        }
        thread.name = "csv-reader"
        thread.start()
        // However the writing side ends, the reader stops at its next batch and is waited for.
        defer {
            queue.abandon()
            readerEnded.wait()
        }
        var rows = 0
        // The statements own the raw statements used below: they must outlive the loop.
        return try withExtendedLifetime((single, grouped)) {
            defer {
                sqlite3_clear_bindings(single.sqliteStatement)
                sqlite3_clear_bindings(grouped.sqliteStatement)
            }
            while true {
                switch queue.takeFilled() {
                case .end(let outcome):
                    return (rows, try outcome.get())
                case .batch(let batch):
                    try batch.withValues { value in
                        var next = 0
                        while next < batch.rowCount {
                            let statement = batch.rowCount - next >= group ? grouped : single
                            let count = statement === grouped ? group : 1
                            var parameter: Int32 = 1
                            for r in next ..< next + count {
                                for p in 0 ..< k {
                                    Self.bindStatic(statement.sqliteStatement, parameter, value(r, p))
                                    parameter += 1
                                }
                            }
                            try Self.step(statement.sqliteStatement, db)
                            next += count
                        }
                    }
                    let before = rows
                    rows += batch.rowCount
                    if rows / 100_000 > before / 100_000 { progress?(rows, batch.fileBytesRead) }
                    queue.putEmpty(batch)
                }
            }
        }
    }

    /// Runs a bound INSERT once and resets it.
    private static func step(_ statement: OpaquePointer, _ db: Database) throws {
        let rc = sqlite3_step(statement)
        sqlite3_reset(statement)
        guard rc == SQLITE_DONE else {
            throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: String(cString: sqlite3_errmsg(db.sqliteConnection)))
        }
    }

    /// The reading thread: fills batches with checked records until the file ends, a record is malformed,
    /// or the writer abandons the load.
    private func read(_ reader: inout CSVReader, into queue: CSVRowBatchQueue) {
        var identifier: [UInt8] = []
        var filling: CSVRowBatch?
        do {
            while let batch = queue.takeEmpty() {
                filling = batch
                while !batch.isFull {
                    let line = reader.line  // the line the record starts on, for its errors
                    guard try DatasetCatalog.wrap(path, { try reader.nextRaw() }) else {
                        batch.fileBytesRead = reader.bytesRead
                        if batch.rowCount > 0 { queue.putFilled(batch) }
                        queue.finish(.success(reader.sha256Hex ?? ""))
                        return
                    }
                    try add(reader, line: line, to: batch, identifier: &identifier)
                }
                batch.fileBytesRead = reader.bytesRead
                filling = nil
                queue.putFilled(batch)
            }
        } catch {
            // The records before the bad one go to the writer first: an error it meets in them comes
            // first in the file, and is the one reported.
            if let filling, filling.rowCount > 0 { queue.putFilled(filling) }
            queue.finish(.failure(error))
        }
    }

    /// Checks the record `reader` has just read and appends it to `batch` (a blank line is skipped).
    private func add(_ reader: CSVReader, line: Int, to batch: CSVRowBatch, identifier: inout [UInt8]) throws {
        try reader.withFields { bytes, ranges in
            if ranges.count == 1 && ranges[0].isEmpty { return }  // a blank line
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
            identifier.withUnsafeBufferPointer { id in
                for field in fieldOfParameter {
                    batch.appendValue(field == idField ? id : UnsafeBufferPointer(rebasing: bytes[ranges[field]]))
                }
            }
            batch.endRow()
        }
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
