import Foundation
import GRDB

/// Which process runs each worker range of a job (Docs/decisions/0009-sharded-psi-workers.md), in the
/// job's scratch database: one live process a range — a second worker of the same index (an orphan of a
/// killed daemon, a pod Kubernetes started again while the first still runs) refuses to start, so a
/// bucket is never answered by two processes at once — and every start counted, so the workers of a job
/// are started again at most `max_resumes` times in all, whoever starts them.
extension SQLiteBucketCheckpoints {
    /// A claim not renewed for this long belongs to a process that is gone.
    static let workerClaimStaleSeconds = 30.0

    /// Takes range `index` for `owner`, or throws why not.
    func claimWorkerRange(index: Int, owner: String, maximumRestarts: Int) throws {
        try queue.write { db in
            try db.execute(sql: "CREATE TABLE IF NOT EXISTS worker_claim (idx INTEGER PRIMARY KEY, owner TEXT NOT NULL, at REAL NOT NULL, starts INTEGER NOT NULL)")
            let now = Date().timeIntervalSince1970
            if let row = try Row.fetchOne(db, sql: "SELECT owner, at FROM worker_claim WHERE idx = ?", arguments: [index]) {
                let holder: String = row[0], at: Double = row[1]
                if !holder.isEmpty, holder != owner, now - at < Self.workerClaimStaleSeconds, Self.mayBeAlive(holder) {
                    throw WorkerError.rangeTaken(index: index, seconds: Int(now - at))
                }
            }
            try db.execute(sql: """
                INSERT INTO worker_claim (idx, owner, at, starts) VALUES (?, ?, ?, 1)
                ON CONFLICT(idx) DO UPDATE SET owner = excluded.owner, at = excluded.at, starts = starts + 1
                """, arguments: [index, owner, now])
            let restarts = try Int.fetchOne(db, sql: "SELECT COALESCE(SUM(starts) - COUNT(*), 0) FROM worker_claim") ?? 0
            guard restarts <= maximumRestarts else {
                throw WorkerError.tooManyRestarts(restarts: restarts, limit: maximumRestarts)
            }
        }
    }

    /// An owner is "host/pid/…": one on this host whose process is gone (a worker its node stopped with
    /// SIGTERM, which releases nothing) holds nothing, without waiting for its claim to go stale.
    static func mayBeAlive(_ owner: String) -> Bool {
        let parts = owner.split(separator: "/")
        guard parts.count >= 2, parts[0] == ProcessInfo.processInfo.hostName, let pid = Int32(parts[1]) else { return true }
        return kill(pid, 0) == 0 || errno != ESRCH
    }

    /// Keeps `owner`'s claim alive (a worker calls it every few seconds while it runs).
    func renewWorkerClaim(index: Int, owner: String) {
        try? queue.write { db in
            try db.execute(sql: "UPDATE worker_claim SET at = ? WHERE idx = ? AND owner = ?",
                           arguments: [Date().timeIntervalSince1970, index, owner])
        }
    }

    /// Gives range `index` up (the worker is ending); its starts stay counted.
    func releaseWorkerClaim(index: Int, owner: String) {
        try? queue.write { db in
            try db.execute(sql: "UPDATE worker_claim SET owner = '' WHERE idx = ? AND owner = ?", arguments: [index, owner])
        }
    }
}
