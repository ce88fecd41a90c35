/// Why a protocol run ended without a result. Every case names the peer involved, so an operator can
/// tell which participant to look at.
public enum ProtocolError: Error, Equatable, CustomStringConvertible {
    /// The peer sent something that is not a valid message of this protocol.
    case malformedMessage(peer: NodeID, detail: String)
    /// The peer's frames arrived out of sequence (lost, replayed or reordered).
    case outOfSequence(peer: NodeID, expected: UInt64, got: UInt64)
    /// The peer sent a valid message at the wrong time, or inconsistent counts.
    case protocolViolation(peer: NodeID, detail: String)
    /// The peer's parameters differ from ours (e.g. the group).
    case parameterMismatch(peer: NodeID, detail: String)
    /// The peer ended the session and said why.
    case abortedByPeer(peer: NodeID, reason: String)
    /// The peer's set is outside what this party's policy lets it process (`limit`: "at least 50").
    case peerSetSizeRefused(peer: NodeID, size: UInt64, limit: String)
    /// A job cannot continue where it stopped: this party or the peer no longer holds its state.
    case cannotResume(peer: NodeID, detail: String)

    public var description: String {
        switch self {
        // Details may quote what a peer sent: cut, so one message cannot make a huge error, log or stored reason.
        case .malformedMessage(let peer, let d): return "malformed message from \(peer): \(PeerText.cut(d, limit: 500))"
        case .outOfSequence(let peer, let e, let g): return "message from \(peer) out of sequence (expected #\(e), got #\(g)): replayed, reordered or lost"
        case .protocolViolation(let peer, let d): return "protocol violation by \(peer): \(PeerText.cut(d, limit: 500))"
        case .parameterMismatch(let peer, let d): return "parameters differ from \(peer)'s: \(PeerText.cut(d, limit: 500))"
        case .abortedByPeer(let peer, let r): return "\(peer) aborted the job: \(r)"
        case .peerSetSizeRefused(let peer, let size, let limit):
            return "\(peer)'s input of \(size) identifiers is refused: this node's policy processes peer sets of \(limit) identifiers; nothing of it was compared"
        case .cannotResume(let peer, let d): return "the job cannot resume with \(peer): \(PeerText.cut(d, limit: 500)); submit it again"
        }
    }
}
