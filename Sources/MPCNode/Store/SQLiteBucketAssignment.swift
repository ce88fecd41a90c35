import Foundation
import GRDB
import MPCCrypto
import MPCProtocols

/// A job's snapshot put into buckets (Protocols/psi-buckets.md): each identifier's bucket under the
/// job's bucket key is written next to it in the scratch database and indexed, so a bucket is read
/// with one indexed query and only one bucket is ever in memory.
extension SQLiteIdentifierSource: BucketedIdentifierSource {
    public func assignBuckets(key: BucketKey, count: Int) async throws -> [Int] {
        if let delay = firstReadDelay.take() { try await Task.sleep(for: delay) }
        let stamp = key.check + withUnsafeBytes(of: UInt64(count).littleEndian) { Array($0) }
        return try await queue.write { db in
            try db.execute(sql: "CREATE TABLE IF NOT EXISTS bucket_assignment (id INTEGER PRIMARY KEY CHECK (id = 1), stamp BLOB NOT NULL)")
            let columns = try db.columns(in: "input").map(\.name)
            if !columns.contains("bucket") { try db.execute(sql: "ALTER TABLE input ADD COLUMN bucket INTEGER") }
            // Already bucketed with this key and count (a resumed job): nothing to redo.
            if try Data.fetchOne(db, sql: "SELECT stamp FROM bucket_assignment WHERE id = 1") != Data(stamp) {
                db.add(function: DatabaseFunction("mpc_bucket", argumentCount: 1, pure: true) { values in
                    guard let s = String.fromDatabaseValue(values[0]) else { return nil }
                    return key.bucket(of: s.utf8, count: count)
                })
                try db.execute(sql: "DROP INDEX IF EXISTS input_bucket")
                try db.execute(sql: "UPDATE input SET bucket = mpc_bucket(identifier)")
                try db.execute(sql: "CREATE INDEX input_bucket ON input (bucket)")
                try db.execute(sql: "INSERT OR REPLACE INTO bucket_assignment (id, stamp) VALUES (1, ?)", arguments: [Data(stamp)])
            }
            var sizes = [Int](repeating: 0, count: count)
            let rows = try Row.fetchCursor(db, sql: "SELECT bucket, COUNT(*) FROM input GROUP BY bucket")
            while let row = try rows.next() {
                let b: Int = row[0], n: Int = row[1]
                guard (0..<count).contains(b) else { throw JobError.fault("bucket \(b) outside 0..<\(count) in the job's snapshot") }
                sizes[b] = n
            }
            return sizes
        }
    }

    public func members(ofBucket bucket: Int) async throws -> [BucketMember] {
        try await queue.read { db in
            var out: [BucketMember] = []
            let rows = try Row.fetchCursor(db, sql: "SELECT rowid, identifier FROM input WHERE bucket = ? ORDER BY rowid", arguments: [bucket])
            while let row = try rows.next() {
                let rowid: Int = row[0], s: String = row[1]
                out.append(BucketMember(position: rowid - 1, identifier: Array(s.utf8)))
            }
            return out
        }
    }
}
