import Foundation

/// The bytes a node holds, across all its peer connections, in frames it is still receiving: a frame
/// over `reservationThreshold` reserves its announced length when its header arrives and gives it back
/// once it is whole (or its connection ends). A frame that does not fit — in the node's whole budget, or
/// in what one peer may hold at once — closes its connection with a clear error, so members that each
/// stay under the per-frame limit cannot together exhaust the node's memory, and one member holding
/// frames open cannot take the budget from the others.
///
/// Thread-safe; one per transport, shared by every connection's decoder.
public final class ReceiveBudget: @unchecked Sendable {
    public let capacity: Int
    /// What one peer (all its connections) may hold reserved at once.
    public let perPeer: Int
    /// Frames up to this size reserve nothing: the per-connection limits bound them well enough.
    public let reservationThreshold: Int
    private let lock = NSLock()
    private var reserved = 0
    private var reservedBy: [String: Int] = [:]

    public init(capacity: Int, perPeer: Int, reservationThreshold: Int = 64 << 10) {
        self.capacity = capacity
        self.perPeer = min(perPeer, capacity)
        self.reservationThreshold = reservationThreshold
    }

    /// Bytes reserved now.
    public var inUse: Int { lock.withLock { reserved } }

    /// Reserves `bytes` for `peer`, or says which limit they do not fit in.
    func reserve(_ bytes: Int, peer: String) -> FramingError? {
        lock.withLock {
            if reservedBy[peer, default: 0] + bytes > perPeer {
                return .receiveBudgetExhausted(bytes: bytes, capacity: perPeer, scope: "one peer's share")
            }
            if reserved + bytes > capacity {
                return .receiveBudgetExhausted(bytes: bytes, capacity: capacity, scope: "the node's whole budget")
            }
            reserved += bytes
            reservedBy[peer, default: 0] += bytes
            return nil
        }
    }

    func release(_ bytes: Int, peer: String) {
        lock.withLock {
            reserved = max(0, reserved - bytes)
            let left = reservedBy[peer, default: 0] - bytes
            reservedBy[peer] = left > 0 ? left : nil
        }
    }
}

/// Who is on the other end of a connection, once its TLS handshake has said so: what the frame decoder
/// charges its reservations to.
public final class ConnectionPeerLabel: @unchecked Sendable {
    private let lock = NSLock()
    private var label: String

    /// `placeholder` until the peer is known (a connection whose identity is not yet checked).
    public init(_ placeholder: String = "unidentified") { label = placeholder }

    public var value: String { lock.withLock { label } }
    public func set(_ peer: String) { lock.withLock { label = peer } }
}
