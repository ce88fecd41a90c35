import Foundation
import GRDB
import GRDBSQLite

/// Bulk paths on SQLite's own statements (`Statement.sqliteStatement`): a million result rows go through
/// these in about a second, where GRDB's per-row argument arrays take several.
enum RawRows {
    /// Steps `insert` once with integer parameters `values` (bound in order).
    static func insert(_ insert: Statement, _ values: Int64..., db: Database) throws {
        let statement = insert.sqliteStatement
        for (i, v) in values.enumerated() { sqlite3_bind_int64(statement, Int32(i + 1), v) }
        try step(statement, db: db)
    }

    /// Binds `text` to parameter `index` of `statement` for the following steps (SQLite keeps a copy).
    static func bind(_ statement: Statement, _ index: Int32, text: String) {
        let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
        _ = sqlite3_bind_text(statement.sqliteStatement, index, text, -1, transient)
    }

    /// Steps `insert` with parameter 1 left as bound and parameter `index` the text `bytes`.
    static func insertText(_ insert: Statement, at index: Int32, _ bytes: UnsafeRawBufferPointer, db: Database) throws {
        let statement = insert.sqliteStatement
        CSVRowLoader.bindStatic(statement, index, bytes.bindMemory(to: UInt8.self))
        try step(statement, db: db)
    }

    /// Forgets every parameter (one bound without a copy must not outlive its buffer).
    static func clearBindings(_ statement: Statement) {
        sqlite3_clear_bindings(statement.sqliteStatement)
    }

    /// Calls `body` with the bytes of column 0 (text) of every row of `select` (valid only during the call).
    static func forEachText(_ select: Statement, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let statement = select.sqliteStatement
        try withExtendedLifetime(select) {
            while true {
                let rc = sqlite3_step(statement)
                if rc == SQLITE_DONE { break }
                guard rc == SQLITE_ROW else { throw DatabaseError(resultCode: ResultCode(rawValue: rc)) }
                let n = Int(sqlite3_column_bytes(statement, 0))
                let base = sqlite3_column_text(statement, 0)
                try body(UnsafeRawBufferPointer(start: base.map(UnsafeRawPointer.init), count: n))
            }
            sqlite3_reset(statement)
        }
    }

    private static func step(_ statement: OpaquePointer, db: Database) throws {
        let rc = sqlite3_step(statement)
        sqlite3_reset(statement)
        guard rc == SQLITE_DONE else {
            throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: String(cString: sqlite3_errmsg(db.sqliteConnection)))
        }
    }
}
