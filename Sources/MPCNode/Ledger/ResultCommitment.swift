import Crypto
import Foundation
import GRDB

/// A party's salted commitment to the result it stored for a job (Protocols/ledger.md, "Receipts"): SHA-256
/// over a 32-byte salt it keeps and, in a fixed order, the job's result (kind, size, every identifier and
/// value in identifier order), report and model as stored. It goes to the coordinator with the party's
/// outcome and into the job's receipt, so that the result can later be shown to be the one the job gave,
/// without the coordinator learning anything of it (the salt defeats guessing a small result).
enum ResultCommitment {
    static let tag = Array("mpcnode-result-v1".utf8) + [0]

    /// Commits to what `jobID` stored at this node, inside the caller's transaction (the one that stored
    /// it); returns nil, storing nothing, when the job stored no result here.
    static func record(_ db: Database, jobID: String) throws -> [UInt8]? {
        var generator = SystemRandomNumberGenerator()
        let salt = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        guard let commitment = try make(db, jobID: jobID, salt: salt) else { return nil }
        try db.execute(sql: "INSERT OR REPLACE INTO job_result_commitment (job_id, salt, commitment) VALUES (?, ?, ?)",
                       arguments: [jobID, Data(salt), Data(commitment)])
        return commitment
    }

    static func make(_ db: Database, jobID: String, salt: [UInt8]) throws -> [UInt8]? {
        var hash = SHA256()
        hash.update(data: tag + salt)
        var any = false
        if let result = try Row.fetchOne(db, sql: "SELECT kind, cardinality FROM job_result WHERE job_id = ?", arguments: [jobID]) {
            any = true
            hash.update(data: LedgerEncoding.string(result[0]) + LedgerEncoding.u64(UInt64(max(0, result[1] as Int))))
            let items = try Row.fetchCursor(db, sql: "SELECT identifier, value FROM job_result_item WHERE job_id = ? ORDER BY identifier", arguments: [jobID])
            while let item = try items.next() {
                let value: Double? = item[1]
                hash.update(data: LedgerEncoding.string(item[0]) + (value.map { [1] + LedgerEncoding.u64($0.bitPattern) } ?? [0]))
            }
        }
        for table in ["report", "model"] {
            for body in try String.fetchAll(db, sql: "SELECT body FROM \(table) WHERE job_id = ? ORDER BY id", arguments: [jobID]) {
                any = true
                hash.update(data: LedgerEncoding.string(table) + LedgerEncoding.string(body))
            }
        }
        return any ? Array(hash.finalize()) : nil
    }

    static func stored(_ db: Database, jobID: String) throws -> [UInt8]? {
        try Data.fetchOne(db, sql: "SELECT commitment FROM job_result_commitment WHERE job_id = ?", arguments: [jobID]).map { Array($0) }
    }

    /// Whether the result stored now is still the one committed to (the party can show it with its salt).
    static func matches(_ db: Database, jobID: String) throws -> Bool? {
        guard let row = try Row.fetchOne(db, sql: "SELECT salt, commitment FROM job_result_commitment WHERE job_id = ?", arguments: [jobID]) else { return nil }
        return try make(db, jobID: jobID, salt: Array(row[0] as Data)) == Array(row[1] as Data)
    }
}
