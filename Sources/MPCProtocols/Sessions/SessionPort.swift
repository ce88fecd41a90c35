import Foundation

/// How a role of a job reaches the other participants: it opens a session of a named stream to a peer,
/// or accepts the one a peer opens. Several sessions of one job between the same two nodes are told
/// apart by their stream ("ring", "mix", "sum", …).
///
/// Composite protocols (a set operation's ring → mix → aggregate → sum, the vertical alignment) are
/// written against this port, never against a transport: `InMemorySessionHub` provides ports for N
/// parties in one test process, and the node's TLS transport provides the port between daemons. A port
/// belongs to one job at one node and counts the traffic of every session it opened or accepted.
public protocol SessionPort: Sendable {
    /// This node.
    var me: NodeID { get }
    /// Opens a session of `stream` to `peer` and runs `body` over it. The session ends when `body`
    /// returns (closed) or throws (aborted, so the peer sees the end at once).
    func withSession<R: Sendable>(stream: String, to peer: NodeID, _ body: (any MessageChannel) async throws -> R) async throws -> R
    /// The session of `stream` that `peer` opens, once it arrives; throws `SessionError` if it does not
    /// within `timeout`, or if this job's accepts were cancelled. The caller closes it.
    func accept(stream: String, from peer: NodeID, timeout: Duration) async throws -> any MessageChannel
    /// Ends every accept of this job still waiting (a role failed or the job was aborted); later accepts
    /// fail at once with `reason`.
    func cancelAccepts(reason: String) async
    /// The traffic of every session this port opened or accepted so far.
    var traffic: SessionTraffic { get }
}

/// Why a session could not be had.
public enum SessionError: Error, CustomStringConvertible, Equatable {
    /// The peer did not open its session in time.
    case peerDidNotConnect(peer: NodeID, seconds: Int)
    /// The job's sessions were cancelled (the job failed or was aborted).
    case aborted(reason: String)

    public var description: String {
        switch self {
        case .peerDidNotConnect(let p, let s): return "\(p) did not open its session within \(s) s"
        case .aborted(let r): return "aborted: \(r)"
        }
    }
}

/// Bytes of a job's sessions: channels are counted when the totals are read (they may still be in use).
public final class SessionTraffic: @unchecked Sendable {
    private let lock = NSLock()
    private var channels: [any CountsBytes] = []
    private var extraSent: UInt64 = 0, extraReceived: UInt64 = 0

    public init() {}

    public func track(_ channel: any MessageChannel) {
        guard let c = channel as? any CountsBytes else { return }
        lock.withLock { channels.append(c) }
    }

    /// Traffic counted elsewhere (a protocol's own tally).
    public func add(sent: UInt64, received: UInt64) { lock.withLock { extraSent += sent; extraReceived += received } }

    public var sent: UInt64 { lock.withLock { channels.reduce(extraSent) { $0 + $1.bytesSent } } }
    public var received: UInt64 { lock.withLock { channels.reduce(extraReceived) { $0 + $1.bytesReceived } } }
}

extension SessionPort {
    /// Opens one session of `stream` to each of `peers` (in order) and runs `body` with them.
    public func withSessions<R: Sendable>(stream: String, to peers: [NodeID], _ body: ([any MessageChannel]) async throws -> R) async throws -> R {
        guard let first = peers.first else { return try await body([]) }
        return try await withSession(stream: stream, to: first) { channel in
            try await withSessions(stream: stream, to: Array(peers.dropFirst())) { rest in try await body([channel] + rest) }
        }
    }

    /// Runs `body` with sessions this node accepted, then closes them; if `body` throws, they are aborted
    /// first, so each peer sees the end at once.
    public func using<R>(_ channels: [any MessageChannel], isolation: isolated (any Actor)? = #isolation,
                         _ body: () async throws -> R) async throws -> R {
        let result: R
        do {
            result = try await body()
        } catch {
            for c in channels { await c.abort() }
            throw error
        }
        for c in channels { await c.close() }
        return result
    }

    /// Accepts `peer`'s session of `stream`, runs `body` over it, and closes it (aborts it on error).
    public func withAccepted<R>(stream: String, from peer: NodeID, timeout: Duration,
                                isolation: isolated (any Actor)? = #isolation,
                                _ body: (any MessageChannel) async throws -> R) async throws -> R {
        let channel = try await accept(stream: stream, from: peer, timeout: timeout)
        return try await using([channel]) { try await body(channel) }
    }

    /// Accepts several sessions (stream, peer), keyed "stream/peer". If one cannot be had, the job's other
    /// accepts are cancelled, the sessions already accepted are aborted, and the error is thrown.
    public func acceptAll(_ sessions: [(stream: String, peer: NodeID)], timeout: Duration) async throws -> [String: any MessageChannel] {
        let results = await withTaskGroup(of: (String, Result<any MessageChannel, Error>).self) { group in
            for (stream, peer) in sessions {
                group.addTask {
                    do { return ("\(stream)/\(peer)", .success(try await self.accept(stream: stream, from: peer, timeout: timeout))) }
                    catch { return ("\(stream)/\(peer)", .failure(error)) }
                }
            }
            var out: [(String, Result<any MessageChannel, Error>)] = []
            for await r in group {
                out.append(r)
                // The other accepts of this call end at once (not the job's: a bucketed set operation
                // accepts the next attempt's sessions after a dropped link).
                if case .failure = r.1 { group.cancelAll() }
            }
            return out
        }
        var accepted: [String: any MessageChannel] = [:]
        var failure: Error?
        for (key, r) in results {
            switch r {
            case .success(let c): accepted[key] = c
            case .failure(let e): failure = failure ?? e
            }
        }
        if let failure {
            for c in accepted.values { await c.abort() }
            throw failure
        }
        return accepted
    }

    /// Accepts the sessions of `stream` that `peers` open, leniently: a peer that does not open its
    /// session in time is left out (a dropout of a secure sum), never fails the others.
    public func acceptEach(stream: String, from peers: [NodeID], timeout: Duration) async -> [NodeID: any MessageChannel] {
        await withTaskGroup(of: (NodeID, (any MessageChannel)?).self) { group in
            for p in peers {
                group.addTask { (p, try? await self.accept(stream: stream, from: p, timeout: timeout)) }
            }
            var out: [NodeID: any MessageChannel] = [:]
            for await (p, channel) in group { if let channel { out[p] = channel } }
            return out
        }
    }
}
