import Foundation

/// The bytes a node holds, across all its peer connections, in frames it is still receiving: a frame
/// over `reservationThreshold` reserves its announced length when its header arrives and gives it back
/// once it is whole (or its connection ends). A frame that does not fit closes its connection with a
/// clear error, so members that each stay under the per-frame limit cannot together exhaust the node's
/// memory (eight peers × 64 MiB frames would otherwise be half a gigabyte).
///
/// Thread-safe; one per transport, shared by every connection's decoder.
public final class ReceiveBudget: @unchecked Sendable {
    public let capacity: Int
    /// Frames up to this size reserve nothing: the per-connection limits bound them well enough.
    public let reservationThreshold: Int
    private let lock = NSLock()
    private var reserved = 0

    public init(capacity: Int, reservationThreshold: Int = 64 << 10) {
        self.capacity = capacity
        self.reservationThreshold = reservationThreshold
    }

    /// Bytes reserved now.
    public var inUse: Int { lock.withLock { reserved } }

    /// Reserves `bytes`, or returns false when they do not fit.
    func reserve(_ bytes: Int) -> Bool {
        lock.withLock {
            guard reserved + bytes <= capacity else { return false }
            reserved += bytes
            return true
        }
    }

    func release(_ bytes: Int) {
        lock.withLock { reserved = max(0, reserved - bytes) }
    }
}
