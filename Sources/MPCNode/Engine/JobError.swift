/// Why a job could not be submitted or did not complete. Messages name the node to look at.
public enum JobError: Error, CustomStringConvertible, Equatable {
    /// A coordinator's operator asked for a job that cannot run as asked (nothing was sent).
    case invalidSubmission(String)
    /// The job went wrong at this node while it ran (the spec and the node's state disagree).
    case fault(String)
    case unknownPeer(String)
    case refused(by: String, reason: String)
    case unreachable(node: String, detail: String)
    case aborted(reason: String)
    case interruptedByRestart
    /// A result was withheld because it is smaller than a policy allows.
    case belowMinimum(String)
    /// This node's policy stopped the job once it saw what would be released (a check that needs the
    /// protocol's own messages, such as who is in a sum).
    case refusedDuringJob(String)
    case unknownJob(String)
    case noReport(String)
    case noModel(String)
    case notCoordinator(String)
    /// A name another node supplied breaks its rule (`PeerSuppliedName`); nothing was done with it.
    case invalidName(field: String, value: String, rule: String)
    /// A spec names a kind of job this node does not run.
    case unknownKind(String, known: [String])
    /// A proposed spec breaks its kind's rules of shape (parties, recipients, roles); nothing was done.
    case malformedSpec(String)
    /// The job ran past this node's `max_job_seconds` (a peer that keeps its links alive but never sends what is due).
    case deadlineExceeded(seconds: Int)
    /// A spec names a kind this node runs, but carries another kind's part (a crafted or corrupt spec).
    case kindMismatch(String, part: String)
    /// An abort of a job that has already ended.
    case notRunning(String)
    /// A result's rows were asked for with columns this node cannot join (no dataset of its own in the job, or not any more).
    case cannotJoinColumns(String)

    public var description: String {
        switch self {
        case .invalidSubmission(let d): return "invalid job: \(d)"
        case .fault(let d): return "job fault: \(d)"
        case .unknownPeer(let p): return "\(p) is not a peer in this node's configuration (peers:)"
        case .refused(let n, let r): return "refused by \(n): \(r)"
        case .unreachable(let n, let d): return "\(n) is unreachable: \(d)"
        case .aborted(let r): return "aborted: \(r)"
        case .belowMinimum(let d): return d
        case .refusedDuringJob(let d): return d
        case .interruptedByRestart: return "the daemon stopped while the job was running; submit the job again"
        case .unknownJob(let id): return "no job '\(id)' on this node (see `mpcnode job list`)"
        case .noModel(let id): return "no model '\(id)' on this node (see `mpcnode model list`)"
        case .noReport(let id): return "no report '\(id)' on this node (see `mpcnode report list`)"
        case .notCoordinator(let d): return d
        case .cannotJoinColumns(let d): return d
        case .notRunning(let d): return d
        case .deadlineExceeded(let s): return "the job ran longer than this node's limit of \(s) s (max_job_seconds) and was stopped: a peer stalled it, or the limit is too low for its size"
        case .malformedSpec(let d): return "malformed job spec: \(d); the coordinator's node sent what its own checks refuse"
        case .kindMismatch(let k, let part): return "job kind \(Self.shown(k)) does not match the spec's '\(part)' part; the coordinator's node sent a malformed proposal"
        case .unknownKind(let k, let known): return "job kind \(Self.shown(k)) is not known to this node (it runs \(known.joined(separator: ", ")))"
        case .invalidName(let f, let v, let r): return "\(f) \(Self.shown(v)) is not valid (use \(r)); nothing was done with it"
        }
    }

    /// A value as it may appear in a message or a log: quoted, escaped, at most 64 characters.
    static func shown(_ value: String) -> String {
        let escaped = value.debugDescription
        return escaped.count <= 66 ? escaped : String(escaped.prefix(64)) + "…\" (\(value.utf8.count) bytes)"
    }
}
