import Foundation
import GRDB
import MPCCrypto
import MPCProtocols

/// A job's snapshot put into buckets (Protocols/psi-buckets.md): the positions of the snapshot, sorted
/// by their bucket under the job's bucket key, are written once to a table of their own in one pass
/// (SQLite's sorter spills to disk, so memory stays bounded), with where each bucket starts; a bucket is
/// then one range of that table joined to the snapshot, and only one bucket is ever in memory. The
/// snapshot itself is not rewritten.
extension SQLiteIdentifierSource: BucketedIdentifierSource {
    public func assignBuckets(key: BucketKey, count: Int) async throws -> [Int] {
        if let delay = firstReadDelay.take() { try await Task.sleep(for: delay) }
        let stamp = Data(key.check + withUnsafeBytes(of: UInt64(count).littleEndian) { Array($0) })
        return try await queue.write { db in
            try db.execute(sql: """
                CREATE TABLE IF NOT EXISTS bucket_assignment (id INTEGER PRIMARY KEY CHECK (id = 1), stamp BLOB NOT NULL);
                CREATE TABLE IF NOT EXISTS bucket_start (bucket INTEGER PRIMARY KEY, first INTEGER NOT NULL, size INTEGER NOT NULL);
                CREATE TABLE IF NOT EXISTS bucket_member (seq INTEGER PRIMARY KEY, position INTEGER NOT NULL);
                """)
            // Already bucketed with this key and count (a resumed job): nothing to redo.
            if count == 1, try Data.fetchOne(db, sql: "SELECT stamp FROM bucket_assignment WHERE id = 1") != stamp {
                // One bucket: the snapshot itself, in its order (no bucket_member rows; `members` reads it).
                try db.execute(sql: "DELETE FROM bucket_member")
                try db.execute(sql: "DELETE FROM bucket_start")
                try db.execute(sql: "INSERT INTO bucket_start (bucket, first, size) VALUES (0, 1, ?)", arguments: [self.count])
                try db.execute(sql: "INSERT OR REPLACE INTO bucket_assignment (id, stamp) VALUES (1, ?)", arguments: [stamp])
            } else if try Data.fetchOne(db, sql: "SELECT stamp FROM bucket_assignment WHERE id = 1") != stamp {
                // The function counts each bucket as SQLite fills its sorter (once a row); the sum is checked.
                let counted = BucketCounts(count)
                db.add(function: DatabaseFunction("mpc_bucket", argumentCount: 1, pure: false) { values in
                    guard let s = String.fromDatabaseValue(values[0]) else { return nil }
                    let b = key.bucket(of: s.utf8, count: count)
                    counted.add(b)
                    return b
                })
                try db.execute(sql: "DELETE FROM bucket_member")
                try db.execute(sql: "DELETE FROM bucket_start")
                try db.execute(sql: "INSERT INTO bucket_member (position) SELECT rowid FROM input ORDER BY mpc_bucket(identifier), rowid")
                db.remove(function: DatabaseFunction("mpc_bucket", argumentCount: 1, pure: false) { _ in nil })
                let sizes = counted.values
                guard sizes.reduce(0, +) == self.count else {
                    throw JobError.fault("bucketing counted \(sizes.reduce(0, +)) identifiers of \(self.count)")
                }
                let insert = try db.makeStatement(sql: "INSERT INTO bucket_start (bucket, first, size) VALUES (?, ?, ?)")
                var first = 1
                for (b, n) in sizes.enumerated() {
                    try insert.execute(arguments: [b, first, n])
                    first += n
                }
                try db.execute(sql: "INSERT OR REPLACE INTO bucket_assignment (id, stamp) VALUES (1, ?)", arguments: [stamp])
            }
            var sizes = [Int](repeating: 0, count: count)
            let rows = try Row.fetchCursor(db, sql: "SELECT bucket, size FROM bucket_start")
            while let row = try rows.next() {
                let b: Int = row[0], n: Int = row[1]
                guard (0..<count).contains(b) else { throw JobError.fault("bucket \(b) outside 0..<\(count) in the job's snapshot") }
                sizes[b] = n
            }
            return sizes
        }
    }

    public func members(ofBucket bucket: Int) async throws -> BucketMembers {
        try await queue.read { db in
            guard let range = try Row.fetchOne(db, sql: "SELECT first, size FROM bucket_start WHERE bucket = ?", arguments: [bucket]) else {
                return BucketMembers()  // an empty bucket
            }
            let first: Int = range[0], size: Int = range[1]
            var out = BucketMembers(expected: size)
            let single = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM bucket_start") == 1
            let rows = single
                ? try Row.fetchCursor(db, sql: "SELECT rowid, identifier FROM input ORDER BY rowid")
                : try Row.fetchCursor(db, sql: """
                    SELECT input.rowid, input.identifier FROM bucket_member JOIN input ON input.rowid = bucket_member.position
                    WHERE bucket_member.seq >= ? AND bucket_member.seq < ? ORDER BY bucket_member.seq
                    """, arguments: [first, first + size])
            while let row = try rows.next() {
                let rowid: Int = row[0], s: String = row[1]
                out.append(position: rowid - 1, identifier: s.utf8)
            }
            return out
        }
    }
}

/// Identifiers counted per bucket while SQLite sorts them.
private final class BucketCounts: @unchecked Sendable {
    private let lock = NSLock()
    private var counts: [Int]
    init(_ buckets: Int) { counts = Array(repeating: 0, count: buckets) }
    func add(_ bucket: Int) { lock.withLock { counts[bucket] += 1 } }
    var values: [Int] { lock.withLock { counts } }
}
