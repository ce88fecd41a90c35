import NIOCore

/// Limits and time-outs of the peer transport.
public struct TransportOptions: Sendable {
    /// The largest frame accepted from a peer.
    public var maximumFrameBytes: Int = 64 << 20
    /// How long to wait for a TCP connection and TLS handshake.
    public var connectTimeout: TimeAmount = .seconds(10)
    /// A peer silent for this long (nothing received) is treated as gone.
    public var idleTimeout: TimeAmount = .seconds(300)
    /// Called with every plaintext frame this node sends (length prefix included), just before TLS
    /// encrypts it. For tests that check what leaves the node; nil in production.
    public var plaintextTap: (@Sendable (_ peer: String, _ bytes: [UInt8]) -> Void)?

    public init() {}
}
