import Foundation
import NIOCore

/// Counts a listener's inbound connections against its limits: those still in their TLS handshake
/// (anyone who can reach the port makes these), and those of each authenticated node.
///
/// When the handshake limit is reached, the oldest connection still in its handshake is closed to make
/// room: an honest peer's handshake takes milliseconds, so a flood of silent or trickling connections
/// evicts its own kind and cannot keep a member out for longer than it takes to connect again. A node's
/// connections over its own limit are closed once its certificate has said who it is.
final class ConnectionAdmission: @unchecked Sendable {
    private let lock = NSLock()
    private let maximumPending: Int
    private let maximumPerPeer: Int
    private var nextTicket = 0
    /// Connections in their handshake, oldest first (tickets grow).
    private var pending: [Int: Channel] = [:]
    private var perPeer: [String: Int] = [:]
    private var _evicted = 0

    init(maximumPending: Int, maximumPerPeer: Int) {
        self.maximumPending = max(1, maximumPending)
        self.maximumPerPeer = max(1, maximumPerPeer)
    }

    /// A connection was accepted and starts its handshake; the ticket is handed to `endHandshake` once.
    func beginHandshake(_ channel: Channel) -> Int {
        let (ticket, evict): (Int, Channel?) = lock.withLock {
            var evict: Channel?
            if pending.count >= maximumPending, let oldest = pending.keys.min() {
                evict = pending.removeValue(forKey: oldest)
                _evicted += 1
            }
            let ticket = nextTicket
            nextTicket += 1
            pending[ticket] = channel
            return (ticket, evict)
        }
        evict?.close(promise: nil)
        return ticket
    }

    func endHandshake(_ ticket: Int) { lock.withLock { _ = pending.removeValue(forKey: ticket) } }

    /// An authenticated connection of `peer`: true if it may be served (then `release` follows once).
    func admit(_ peer: String) -> Bool {
        lock.withLock {
            let open = perPeer[peer, default: 0]
            guard open < maximumPerPeer else { return false }
            perPeer[peer] = open + 1
            return true
        }
    }

    func release(_ peer: String) {
        lock.withLock {
            let open = perPeer[peer, default: 1] - 1
            perPeer[peer] = open > 0 ? open : nil
        }
    }

    /// Connections in their handshake now, and those closed to make room so far (for tests and metrics).
    var pendingHandshakes: Int { lock.withLock { pending.count } }
    var evictedHandshakes: Int { lock.withLock { _evicted } }
}
