import Crypto
import Foundation
import GRDB

/// A participant's salted commitment to the input it accepted a job with (Protocols/ledger.md,
/// "Receipts"): SHA-256 over a 32-byte salt it keeps and its dataset's name, the column, the rows and the
/// digest of the file they were imported from. It names the input's version in the job's receipt without
/// revealing anything of it; the participant can later open it to an auditor by showing the salt.
enum InputCommitment {
    static let tag = Array("mpcnode-input-v1".utf8) + [0]

    static func make(salt: [UInt8], dataset: String, column: String, rows: Int, sourceSHA256: String) -> [UInt8] {
        var hash = SHA256()
        hash.update(data: tag + salt + LedgerEncoding.string(dataset) + LedgerEncoding.string(column)
                    + LedgerEncoding.u64(UInt64(max(0, rows))) + LedgerEncoding.string(sourceSHA256))
        return Array(hash.finalize())
    }

    /// A fresh commitment to `dataset` as it is now, kept with its salt for `jobID` inside the caller's
    /// transaction; returns the commitment.
    static func record(_ db: Database, jobID: String, dataset: DatasetInfo, column: String) throws -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        let salt = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let commitment = make(salt: salt, dataset: dataset.name, column: column, rows: dataset.rowCount, sourceSHA256: dataset.sourceSHA256)
        try db.execute(sql: "INSERT OR REPLACE INTO job_input_commitment (job_id, salt, commitment) VALUES (?, ?, ?)",
                       arguments: [jobID, Data(salt), Data(commitment)])
        return commitment
    }

    static func stored(_ db: Database, jobID: String) throws -> [UInt8]? {
        try Data.fetchOne(db, sql: "SELECT commitment FROM job_input_commitment WHERE job_id = ?", arguments: [jobID]).map { Array($0) }
    }
}
