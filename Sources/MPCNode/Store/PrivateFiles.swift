import Foundation

/// The node's files hold customers' identifiers and balances, so they are the operator's alone: the data
/// folder and every folder below it 0700, every file 0600, from the first command that touches them
/// (an import before the first `serve` included), and tightened again when found looser.
public enum PrivateFiles {
    /// Creates `folder` (and missing parents) and makes it 0700.
    public static func folder(_ folder: URL) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try restrict(folder.path, to: 0o700)
    }

    /// Makes an existing file 0600 (nothing if it does not exist).
    public static func file(_ path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else { return }
        try restrict(path, to: 0o600)
    }

    /// A SQLite database and its WAL and shared-memory files.
    public static func database(_ path: String) throws {
        for p in [path, path + "-wal", path + "-shm", path + "-journal"] { try file(p) }
    }

    /// Refuses a private key that another local user can read or write, naming the file and the fix.
    public static func checkKey(_ path: String) throws {
        let attributes: [FileAttributeKey: Any]
        // The file itself, not a link to it (a Kubernetes Secret's files are links into `..data/`).
        let target = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        do { attributes = try FileManager.default.attributesOfItem(atPath: target) } catch { return }  // missing: the TLS check says so
        let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue ?? 0
        if mode & 0o077 != 0 { throw PrivateFileError.keyReadableByOthers(path: path, mode: mode) }
    }

    private static func restrict(_ path: String, to mode: mode_t) throws {
        if chmod(path, mode) != 0 {
            throw PrivateFileError.cannotRestrict(path: path, detail: String(cString: strerror(errno)))
        }
    }
}

public enum PrivateFileError: Error, CustomStringConvertible, Equatable {
    case keyReadableByOthers(path: String, mode: Int)
    case cannotRestrict(path: String, detail: String)

    public var description: String {
        switch self {
        case .keyReadableByOthers(let p, let m):
            return "the private key \(p) is readable by other users (mode \(String(m, radix: 8))); run `chmod 600 \(p)` and start again"
        case .cannotRestrict(let p, let d):
            return "cannot make \(p) private to this user: \(d); check its owner"
        }
    }
}
