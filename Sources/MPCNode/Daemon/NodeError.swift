/// Why a node cannot start or be reached. Each message says what to do.
public enum NodeError: Error, CustomStringConvertible {
    case alreadyRunning(socket: String)
    case daemonNotRunning(socket: String, detail: String)
    case cannotListen(address: String, detail: String)
    case invalidAdminGroup(String)
    case certificateMismatch(detail: String)
    case certificateRole(detail: String)

    public var description: String {
        switch self {
        case .alreadyRunning(let s): return "a daemon is already running for this data directory (admin socket \(s)); stop it first"
        case .daemonNotRunning(let s, let d): return "cannot reach the daemon at \(s) (\(d)); start it with `mpcnode serve --config …`"
        case .cannotListen(let a, let d): return "cannot listen on \(a): \(d); is another process using the port?"
        case .invalidAdminGroup(let g): return "admin_group '\(g)' is not a group on this machine; create it or remove the key"
        case .certificateMismatch(let d): return "certificates not reloaded: \(d)"
        case .certificateRole(let d): return "cannot start: \(d)"
        }
    }
}
