import NIOCore

/// Limits and time-outs of the peer transport.
public struct TransportOptions: Sendable {
    /// The largest frame accepted from a peer once its `Hello` has arrived.
    public var maximumFrameBytes: Int = 64 << 20
    /// The largest first frame (the `Hello`, with a control request at most) accepted on an inbound
    /// connection: a peer cannot make a node buffer a session-sized frame before it said what it wants.
    public var maximumHelloBytes: Int = 1 << 20
    /// How long to wait for a TCP connection and TLS handshake.
    public var connectTimeout: TimeAmount = .seconds(10)
    /// An inbound connection whose TLS handshake has not completed by then is closed (a silent or
    /// trickling connection holds a descriptor for no longer than this).
    public var handshakeTimeout: TimeAmount = .seconds(10)
    /// A peer silent for this long (nothing received, heartbeats included) is treated as gone.
    public var idleTimeout: TimeAmount = .seconds(300)
    /// While a connection is open and nothing else was written for this long, a heartbeat is sent, so
    /// that a session waiting on a slow phase of its job (a ring predecessor still blinding) is not
    /// taken for a silent peer. A third of the idle limit unless set.
    public var heartbeatInterval: TimeAmount?
    /// Inbound connections still in their TLS handshake; more are closed at once.
    public var maximumPendingHandshakes: Int = 256
    /// Inbound connections from one authenticated node at a time; more are closed once it is known.
    public var maximumConnectionsPerPeer: Int = 128
    /// Bytes this node holds at most in large frames still being received, across every connection, and
    /// from one peer (`ReceiveBudget`; 1 GiB, 64 MiB a peer): a frame that does not fit closes its connection.
    public var receiveBudget = ReceiveBudget(capacity: 1 << 30, perPeer: 64 << 20)
    /// Called with every plaintext frame this node sends (length prefix included), just before TLS
    /// encrypts it. For tests that check what leaves the node; nil in production.
    public var plaintextTap: (@Sendable (_ peer: String, _ bytes: [UInt8]) -> Void)?
    /// Called when an inbound connection ends before its TLS handshake authenticated a member, with the
    /// reason as one of a fixed set (`PeerTransport.handshakeFailureReason`): for the node's metrics.
    public var inboundHandshakeFailed: (@Sendable (_ reason: String) -> Void)?
    /// Told of the bytes each authenticated connection carries and of connections opening and closing:
    /// for the node's metrics (nil: nothing counted).
    public var traffic: TrafficObserver?

    public init() {}

    var effectiveHeartbeatInterval: TimeAmount {
        heartbeatInterval ?? .nanoseconds(max(idleTimeout.nanoseconds / 3, 1_000_000))
    }
}


/// What a node counts of its peer connections (bytes on the wire after the handshake, connections open).
public protocol TrafficObserver: Sendable {
    func bytes(peer: String, sent: Bool, count: Int)
    func connected(_ peer: String)
    func disconnected(_ peer: String)
}
