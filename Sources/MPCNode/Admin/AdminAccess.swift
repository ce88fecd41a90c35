import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Who may use the admin endpoint, by the credentials the kernel reports for the peer of its Unix socket
/// (SO_PEERCRED), on top of the socket's mode 0600 in a 0700 folder: root, the daemon's own user, or a
/// member of the configured `admin_group`. Anyone else is answered with a refusal and nothing more.
public struct AdminAccess: Sendable {
    public let daemonUID: UInt32
    /// The group whose members may also administer the node (its gid and member names), if configured.
    public let group: (gid: UInt32, members: Set<String>)?

    public init(daemonUID: UInt32 = getuid(), group: (gid: UInt32, members: Set<String>)? = nil) {
        self.daemonUID = daemonUID
        self.group = group
    }

    /// The access for this process, with `groupName` resolved through the system's group database.
    public static func current(groupName: String?) throws -> AdminAccess {
        guard let groupName else { return AdminAccess() }
        guard let entry = getgrnam(groupName) else { throw NodeError.invalidAdminGroup(groupName) }
        var members = Set<String>()
        if var p = entry.pointee.gr_mem {
            while let name = p.pointee { members.insert(String(cString: name)); p += 1 }
        }
        return AdminAccess(group: (entry.pointee.gr_gid, members))
    }

    /// Whether a peer with these credentials may send admin requests.
    public func allows(uid: UInt32, gid: UInt32, userName: String? = nil) -> Bool {
        if uid == 0 || uid == daemonUID { return true }
        guard let group else { return false }
        if gid == group.gid { return true }
        return userName.map(group.members.contains) ?? false
    }

    /// The peer's user name (for group membership), from the password database.
    static func userName(of uid: UInt32) -> String? {
        guard let entry = getpwuid(uid) else { return nil }
        return String(cString: entry.pointee.pw_name)
    }
}
