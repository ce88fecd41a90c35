import Foundation
import MPCCrypto

/// The node-local key that seals a job's secrets while they are on disk (a bucketed PSI's seed and
/// bucket key, kept so the job can resume): `keys/job-seal.key` in the data folder, 32 random bytes,
/// 0600, created at first use. Sealed secrets are deleted with the job's scratch file at its end.
enum JobSealKey {
    private static let lock = NSLock()

    static func load(dataDirectory: URL) throws -> [UInt8] {
        try lock.withLock { try loadOrCreate(dataDirectory: dataDirectory) }
    }

    private static func loadOrCreate(dataDirectory: URL) throws -> [UInt8] {
        let folder = dataDirectory.appendingPathComponent("keys")
        try PrivateFiles.folder(folder)
        let path = folder.appendingPathComponent("job-seal.key").path
        if let existing = FileManager.default.contents(atPath: path) {
            guard existing.count == SecretBox.keyLength else {
                throw JobError.fault("\(path) is not a 32-byte key; move it away and the node makes a new one (jobs in progress then cannot resume)")
            }
            try PrivateFiles.file(path)
            return [UInt8](existing)
        }
        let key = SecretBox.randomKey()
        guard FileManager.default.createFile(atPath: path, contents: Data(key), attributes: [.posixPermissions: 0o600]) else {
            throw PrivateFileError.cannotRestrict(path: path, detail: "cannot create the job sealing key")
        }
        return key
    }
}
