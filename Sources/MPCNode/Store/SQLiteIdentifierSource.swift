import Foundation
import GRDB
import MPCCrypto
import MPCProtocols

/// A job's input read from the node's SQLite: a snapshot of the distinct identifiers of one column,
/// in an order given by a fresh keyed PRF, in a scratch database of the job.
///
/// Preparing it copies the identifiers once (`INSERT … SELECT DISTINCT … ORDER BY prf(v)`), so row i
/// of the scratch table is position i of the protocol: batches are read by rowid range, never the
/// whole set into memory, and the snapshot is unaffected by imports during the job. The scratch file
/// is deleted when the job ends.
public final class SQLiteIdentifierSource: IdentifierSource, @unchecked Sendable {
    let queue: DatabaseQueue
    public let path: URL
    public let count: Int
    /// Fault injection (tests only): the first read waits this long, as a slow party would.
    let firstReadDelay = LockedDelay()

    /// - Parameter valueColumn: when given, each identifier also gets the total of this decimal column
    ///   over its rows (fixed point with `decimals`), read with `totals(in:)`.
    public static func prepare(jobID: String, dataset: String, column: String, store: NodeStore,
                               scratchDirectory: URL, valueColumn: String? = nil, decimals: Int = 0) throws -> SQLiteIdentifierSource {
        // The engine validated the id where the proposal entered; checked again because it names a file.
        try PeerSuppliedName.jobID.validate(jobID)
        try PrivateFiles.folder(scratchDirectory)
        let path = scratchDirectory.appendingPathComponent("\(jobID).sqlite")
        guard path.deletingLastPathComponent().standardizedFileURL.path == scratchDirectory.standardizedFileURL.path else {
            throw JobError.invalidName(field: "job id", value: jobID, rule: PeerSuppliedName.jobID.rule)
        }
        try? FileManager.default.removeItem(at: path)
        let order = KeyedOrder.random()
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        let orderFunction = DatabaseFunction("mpc_order", argumentCount: 1, pure: true) { values -> Int64? in
            guard var s = String.fromDatabaseValue(values[0]) else { return nil }
            return s.withUTF8 { order.word(of: UnsafeRawBufferPointer($0)) }
        }
        let fixedPoint = DatabaseFunction("mpc_fixed", argumentCount: 1, pure: true) { values -> Int64? in
            guard let text = String.fromDatabaseValue(values[0]), !text.trimmingCharacters(in: .whitespaces).isEmpty else { return 0 }
            guard let v = LocalAggregate.parseFixedPoint(text, decimals: decimals) else {
                throw DatabaseError(message: "value '\(text)' of column '\(valueColumn ?? "")' is not a decimal number with at most \(decimals) decimals")
            }
            return v
        }
        configuration.prepareDatabase { db in
            db.add(function: orderFunction)
            db.add(function: fixedPoint)
        }
        // Created 0600 before SQLite opens it: it holds a plaintext copy of the job's identifiers.
        guard FileManager.default.createFile(atPath: path.path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
            throw PrivateFileError.cannotRestrict(path: path.path, detail: "cannot create the job's scratch file")
        }
        let queue = try DatabaseQueue(path: path.path, configuration: configuration)
        let table = NodeStore.quote(NodeStore.tableName(forDataset: dataset))
        let c = NodeStore.quote(column)
        let count: Int = try queue.inDatabase { db in
            try db.execute(sql: "PRAGMA main.journal_mode = OFF")
            try db.execute(sql: "ATTACH DATABASE ? AS src", arguments: [store.path.path])
            try db.execute(sql: "CREATE TABLE input (identifier TEXT NOT NULL, total INTEGER NOT NULL DEFAULT 0)")
            // Deferred: IMMEDIATE (GRDB's default) would take the write lock of every attached database,
            // so the node could not write (accept a proposal, record an outcome) while the snapshot is copied.
            try db.inTransaction(.deferred) {
                if let valueColumn {
                    let v = NodeStore.quote(valueColumn)
                    try db.execute(sql: """
                        INSERT INTO input (identifier, total)
                        SELECT v, t FROM (SELECT \(c) AS v, SUM(mpc_fixed(\(v))) AS t FROM src.\(table)
                                          WHERE \(c) IS NOT NULL AND \(c) <> '' GROUP BY \(c))
                        ORDER BY mpc_order(v)
                        """)
                } else {
                    try db.execute(sql: """
                        INSERT INTO input (identifier)
                        SELECT v FROM (SELECT DISTINCT \(c) AS v FROM src.\(table) WHERE \(c) IS NOT NULL AND \(c) <> '')
                        ORDER BY mpc_order(v)
                        """)
                }
                return .commit
            }
            try db.execute(sql: "DETACH DATABASE src")
            return try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM input") ?? 0
        }
        return SQLiteIdentifierSource(queue: queue, path: path, count: count)
    }

    /// The scratch database an earlier run of the job prepared (a job resumed after a restart).
    public static func reopen(jobID: String, scratchDirectory: URL) throws -> SQLiteIdentifierSource {
        try PeerSuppliedName.jobID.validate(jobID)
        let path = scratchDirectory.appendingPathComponent("\(jobID).sqlite")
        guard FileManager.default.fileExists(atPath: path.path) else {
            throw JobError.fault("the job's scratch database \(path.path) is gone: it cannot resume")
        }
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        let queue = try DatabaseQueue(path: path.path, configuration: configuration)
        let count = try queue.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM input") ?? 0 }
        return SQLiteIdentifierSource(queue: queue, path: path, count: count)
    }

    private init(queue: DatabaseQueue, path: URL, count: Int) {
        self.queue = queue
        self.path = path
        self.count = count
    }

    /// Makes the first read wait `delay` (a test's artificially slow party).
    func delayFirstRead(by delay: Duration) { firstReadDelay.set(delay) }

    public func identifiers(in range: Range<Int>) async throws -> [[UInt8]] {
        if let delay = firstReadDelay.take() { try await Task.sleep(for: delay) }
        let r = range.clamped(to: 0..<count)
        return try await queue.read { db in
            var out: [[UInt8]] = []
            out.reserveCapacity(r.count)
            let cursor = try String.fetchCursor(db, sql: "SELECT identifier FROM input WHERE rowid > ? AND rowid <= ? ORDER BY rowid",
                                                arguments: [r.lowerBound, r.upperBound])
            while let s = try cursor.next() { out.append(Array(s.utf8)) }
            return out
        }
    }

    /// The totals of the value column, position by position (all of them: one Int64 per identifier).
    public func totals() throws -> [Int64] {
        try queue.read { db in try Int64.fetchAll(db, sql: "SELECT total FROM input ORDER BY rowid") }
    }

    /// The identifiers at the given positions (ascending), batch by batch.
    public func forEachIdentifier(atPositions positions: [Int], _ body: (String) throws -> Void) throws {
        try queue.read { db in
            let statement = try db.makeStatement(sql: "SELECT identifier FROM input WHERE rowid = ?")
            for p in positions {
                if let s = try String.fetchOne(statement, arguments: [p + 1]) { try body(s) }
            }
        }
    }

    /// Deletes the scratch files (the database and, when workers shared it, its WAL and shared-memory
    /// index). The connection stays open until the last holder lets the source go: a role abandoned at
    /// its deadline may still be reading (synchronously, so cancellation does not stop it), and a read on
    /// a closed GRDB connection hands SQLite a NULL handle — the process dies. Unlinked files stay
    /// readable through the open connection and are gone from the folder at once.
    public func remove() {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            try? FileManager.default.removeItem(atPath: path.path + suffix)
        }
    }
}

/// A delay taken once.
final class LockedDelay: @unchecked Sendable {
    private let lock = NSLock()
    private var delay: Duration?
    func set(_ d: Duration) { lock.withLock { delay = d } }
    func take() -> Duration? { lock.withLock { defer { delay = nil }; return delay } }
}
