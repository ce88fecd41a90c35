import Foundation

/// A node's identity: the node id written in its certificate (e.g. "bank-a").
public typealias NodeID = String

/// An ordered, reliable, authenticated stream of messages with one peer, for one job.
///
/// Protocols are written against this and nothing else, so the same code runs over an in-memory pair
/// in unit tests and over mutually authenticated TLS between daemons. An implementation guarantees:
/// messages arrive in order and unmodified, `peer` is the authenticated identity of the other side,
/// and `receive()` throws (never hangs forever) when the peer goes away or a time limit passes.
public protocol MessageChannel: Sendable {
    /// The authenticated node id of the other side.
    var peer: NodeID { get }
    /// Sends one message. May suspend while the transport applies back-pressure.
    func send(_ message: [UInt8]) async throws
    /// The next message from the peer. Throws `ChannelError` when the peer closed or vanished.
    func receive() async throws -> [UInt8]
    /// Closes the sending direction once everything queued has been written.
    func close() async
    /// Ends the channel at once after an error, so the peer sees the end without waiting for a timeout.
    func abort() async
    /// Returns when the channel has ended, closed by either side or broken, without reading from it (a
    /// role waiting elsewhere learns that a peer gave up), or when the calling task is cancelled.
    func untilEnded() async
}

extension MessageChannel {
    public func abort() async { await close() }
    /// A channel that cannot tell: returns only when the task is cancelled.
    public func untilEnded() async {
        while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
    }
    /// Bytes this channel sent so far, where it counts them (0 otherwise).
    public var bytesSent: UInt64 { (self as? any CountsBytes)?.bytesSent ?? 0 }
    /// Bytes this channel received so far, where it counts them (0 otherwise).
    public var bytesReceived: UInt64 { (self as? any CountsBytes)?.bytesReceived ?? 0 }
}

/// A channel that counts the bytes it carried (a session's traffic, for a job's metrics).
public protocol CountsBytes: AnyObject, Sendable {
    var bytesSent: UInt64 { get }
    var bytesReceived: UInt64 { get }
}

/// Why a channel could not deliver a message.
public enum ChannelError: Error, Equatable, CustomStringConvertible {
    /// The peer closed the channel or its connection was lost.
    case peerDisconnected(peer: NodeID, detail: String)
    /// Nothing arrived from the peer within the time limit.
    case timedOut(peer: NodeID, seconds: Double)
    /// A frame was larger than the transport allows.
    case frameTooLarge(peer: NodeID, bytes: Int, limit: Int)

    public var description: String {
        switch self {
        case .peerDisconnected(let peer, let detail): return "peer \(peer) disconnected: \(detail)"
        case .timedOut(let peer, let s): return "no message from peer \(peer) within \(s) s"
        case .frameTooLarge(let peer, let bytes, let limit): return "frame of \(bytes) bytes from \(peer) exceeds the limit of \(limit) bytes"
        }
    }
}
