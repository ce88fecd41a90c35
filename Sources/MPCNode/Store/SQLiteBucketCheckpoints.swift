import Foundation
import GRDB
import MPCCrypto
import MPCProtocols

/// A bucketed PSI's checkpoints in the job's scratch database (Protocols/psi-buckets.md "Checkpoints
/// and resume"): the state sealed with the node's job key, each completed bucket with the digest of the
/// peer's stream, and the positions each bucket found, written in one transaction. Everything goes
/// with the scratch file when the job ends.
final class SQLiteBucketCheckpoints: BucketCheckpoints, @unchecked Sendable {
    let queue: DatabaseQueue
    private let sealKey: [UInt8]

    init(source: SQLiteIdentifierSource, sealKey: [UInt8]) throws {
        queue = source.queue
        self.sealKey = sealKey
        try queue.inDatabase { db in
            // The snapshot was copied without a journal; checkpoints must survive a crash.
            try db.execute(sql: "PRAGMA journal_mode = WAL")
            try db.execute(sql: """
                CREATE TABLE IF NOT EXISTS bucket_state (id INTEGER PRIMARY KEY CHECK (id = 1), sealed BLOB NOT NULL);
                CREATE TABLE IF NOT EXISTS bucket_done (bucket INTEGER PRIMARY KEY, peer_digest BLOB NOT NULL, cardinality INTEGER);
                CREATE TABLE IF NOT EXISTS bucket_found (bucket INTEGER PRIMARY KEY, positions BLOB NOT NULL, count INTEGER NOT NULL);
                CREATE TABLE IF NOT EXISTS bucket_alive (id INTEGER PRIMARY KEY CHECK (id = 1), at REAL NOT NULL);
                CREATE TABLE IF NOT EXISTS bucket_release (bucket INTEGER NOT NULL, instance INTEGER NOT NULL, digests BLOB NOT NULL,
                                                           PRIMARY KEY (bucket, instance));
                """)
        }
    }

    private let beat = NSLock()
    private var lastBeat = Date.distantPast

    /// Records that the job is alive (at most every 2 s): after a crash, the job resumes at start-up only
    /// if it was alive within the peer idle limit, for which its peer keeps trying.
    func heartbeat() {
        let now = Date()
        let due = beat.withLock { () -> Bool in
            guard now.timeIntervalSince(lastBeat) >= 2 else { return false }
            lastBeat = now
            return true
        }
        guard due else { return }
        try? queue.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO bucket_alive (id, at) VALUES (1, ?)", arguments: [now.timeIntervalSince1970])
        }
    }

    /// Why a job's scratch database cannot resume after a restart, or nil if it can: it must hold a
    /// bucketed PSI's sealed state and have been alive within `seconds`.
    static func whyNotResumable(jobID: String, scratchDirectory: URL, aliveWithin seconds: Double) -> String? {
        guard (try? PeerSuppliedName.jobID.validate(jobID)) != nil else { return "not a job id" }
        let path = scratchDirectory.appendingPathComponent("\(jobID).sqlite").path
        guard FileManager.default.fileExists(atPath: path) else { return "no scratch database" }
        do {
            let queue = try DatabaseQueue(path: path)
            defer { try? queue.close() }
            return try queue.read { db -> String? in
                guard try db.tableExists("bucket_state"), try db.tableExists("bucket_alive"),
                      (try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM bucket_state") ?? 0) == 1,
                      let at = try Double.fetchOne(db, sql: "SELECT at FROM bucket_alive WHERE id = 1") else { return "no checkpoint yet" }
                let age = Date().timeIntervalSince1970 - at
                return age < seconds ? nil : "last alive \(Int(age)) s ago, beyond the peer idle limit of \(Int(seconds)) s"
            }
        } catch {
            return "\(error)"
        }
    }

    func load() async throws -> BucketedPSIState? {
        try await queue.read { [sealKey] db in
            guard let sealed = try Data.fetchOne(db, sql: "SELECT sealed FROM bucket_state WHERE id = 1") else { return nil }
            let plain: [UInt8]
            do { plain = try SecretBox.open([UInt8](sealed), key: sealKey) } catch {
                throw JobError.fault("the job's sealed state does not open with this node's keys/job-seal.key (replaced?): it cannot resume")
            }
            var state = try Self.decode(plain)
            let rows = try Row.fetchCursor(db, sql: "SELECT bucket, peer_digest FROM bucket_done")
            while let row = try rows.next() {
                let b: Int = row[0], digest: Data = row[1]
                state.completed[b] = [UInt8](digest)
            }
            return state
        }
    }

    func begin(_ state: BucketedPSIState) async throws {
        let sealed = try SecretBox.seal(Self.encode(state), key: sealKey)
        try await queue.write { db in
            try db.execute(sql: "DELETE FROM bucket_done")
            try db.execute(sql: "DELETE FROM bucket_found")
            try db.execute(sql: "INSERT OR REPLACE INTO bucket_state (id, sealed) VALUES (1, ?)", arguments: [Data(sealed)])
            try db.execute(sql: "INSERT OR REPLACE INTO bucket_alive (id, at) VALUES (1, ?)", arguments: [Date().timeIntervalSince1970])
        }
    }

    func complete(bucket: Int, output: BucketOutput, peerStreamDigest: [UInt8]) async throws {
        try await queue.write { db in
            try db.execute(sql: "DELETE FROM bucket_found WHERE bucket = ?", arguments: [bucket])
            var cardinality: Int?
            switch output {
            case .none: break
            case .cardinality(let c): cardinality = c
            case .positions(let positions):
                // One row a bucket: its positions as 4-byte little-endian words (a snapshot has < 2^32 rows).
                var packed = [UInt8]()
                packed.reserveCapacity(4 * positions.count)
                for p in positions {
                    guard let word = UInt32(exactly: p) else { throw JobError.fault("position \(p) beyond a snapshot's 2^32 rows") }
                    withUnsafeBytes(of: word.littleEndian) { packed.append(contentsOf: $0) }
                }
                try db.execute(sql: "INSERT INTO bucket_found (bucket, positions, count) VALUES (?, ?, ?)",
                               arguments: [bucket, Data(packed), positions.count])
            }
            try db.execute(sql: "INSERT OR REPLACE INTO bucket_done (bucket, peer_digest, cardinality) VALUES (?, ?, ?)",
                           arguments: [bucket, Data(peerStreamDigest), cardinality])
            try db.execute(sql: "INSERT OR REPLACE INTO bucket_alive (id, at) VALUES (1, ?)", arguments: [Date().timeIntervalSince1970])
        }
    }

    func release(bucket: Int, instance: Int) async throws -> [UInt8]? {
        try await queue.read { db in
            try Data.fetchOne(db, sql: "SELECT digests FROM bucket_release WHERE bucket = ? AND instance = ?", arguments: [bucket, instance]).map { [UInt8]($0) }
        }
    }

    func recordRelease(bucket: Int, instance: Int, digests: [UInt8]) async throws -> [UInt8] {
        try await queue.write { db in
            try db.execute(sql: "INSERT OR IGNORE INTO bucket_release (bucket, instance, digests) VALUES (?, ?, ?)",
                           arguments: [bucket, instance, Data(digests)])
            guard let stored = try Data.fetchOne(db, sql: "SELECT digests FROM bucket_release WHERE bucket = ? AND instance = ?",
                                                 arguments: [bucket, instance]) else {
                throw JobError.fault("the release record of bucket \(bucket) vanished")
            }
            return [UInt8](stored)
        }
    }

    /// Completed buckets.
    func completedCount() throws -> Int {
        try queue.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM bucket_done") ?? 0 }
    }

    /// The number of identifiers found over all buckets, or the sum of the buckets' cardinalities.
    func resultCount(cardinalityOnly: Bool) throws -> Int {
        try queue.read { db in
            try Int.fetchOne(db, sql: cardinalityOnly ? "SELECT COALESCE(SUM(cardinality), 0) FROM bucket_done"
                                                      : "SELECT COALESCE(SUM(count), 0) FROM bucket_found") ?? 0
        }
    }

    /// The identifiers found, sorted (as the node's result index keeps them, so storing them appends to
    /// it), without holding them all in memory; the bytes are valid during the call only.
    func forEachResultIdentifier(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        try queue.inDatabase { db in
            // The buckets' positions into one temporary table (a rowid each), joined to the snapshot.
            try db.execute(sql: "DROP TABLE IF EXISTS temp.found_position")
            try db.execute(sql: "CREATE TEMP TABLE found_position (position INTEGER PRIMARY KEY)")
            defer { try? db.execute(sql: "DROP TABLE IF EXISTS temp.found_position") }
            try db.inTransaction {
                let insert = try db.makeStatement(sql: "INSERT INTO temp.found_position (position) VALUES (?)")
                let blobs = try Data.fetchCursor(db, sql: "SELECT positions FROM bucket_found ORDER BY bucket")
                while let blob = try blobs.next() {
                    guard blob.count % 4 == 0 else { throw JobError.fault("a bucket's stored positions are \(blob.count) bytes, not whole words") }
                    try blob.withUnsafeBytes { raw in
                        for offset in stride(from: 0, to: raw.count, by: 4) {
                            let word = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
                            try RawRows.insert(insert, Int64(word) + 1, db: db)
                        }
                    }
                }
                return .commit
            }
            let select = try db.makeStatement(sql: """
                SELECT input.identifier FROM temp.found_position JOIN input ON input.rowid = found_position.position
                ORDER BY input.identifier
                """)
            try RawRows.forEachText(select, body)
        }
    }

    // seed (32) ‖ key (32) ‖ bucket count (u64 LE) ‖ peer set size (u64 LE)
    static func encode(_ s: BucketedPSIState) -> [UInt8] {
        var out = s.seed + s.key.bytes
        withUnsafeBytes(of: UInt64(s.bucketCount).littleEndian) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt64(s.peerSetSize).littleEndian) { out.append(contentsOf: $0) }
        return out
    }

    static func decode(_ bytes: [UInt8]) throws -> BucketedPSIState {
        guard bytes.count == 80 else { throw JobError.fault("the job's sealed state has \(bytes.count) bytes, expected 80") }
        let word = { (at: Int) in bytes[at..<at + 8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) } }
        return BucketedPSIState(seed: Array(bytes[0..<32]), key: try BucketKey(bytes: Array(bytes[32..<64])),
                                bucketCount: Int(word(64)), peerSetSize: Int(word(72)))
    }
}
