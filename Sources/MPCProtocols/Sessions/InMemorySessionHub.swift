import Foundation

/// Session ports for the participants of one job in one process, over `InMemoryChannel` pairs: how a
/// composite protocol is run with N parties in a unit test, with no TLS and no database.
///
/// `tap`, if given, sees every message any port sends (with the sender's id), which is how tests
/// inspect what a protocol puts on the wire.
public actor InMemorySessionHub {
    private struct Key: Hashable { let to: NodeID; let stream: String; let from: NodeID }
    private var offered: [Key: InMemoryChannel] = [:]
    private var waiting: [Key: CheckedContinuation<any MessageChannel, Error>] = [:]
    private var ended: [NodeID: String] = [:]
    private let tap: (@Sendable (NodeID, [UInt8]) -> Void)?
    private let intercept: InMemoryChannel.Intercept?

    public init(tap: (@Sendable (_ sender: NodeID, _ message: [UInt8]) -> Void)? = nil, intercept: InMemoryChannel.Intercept? = nil) {
        self.tap = tap
        self.intercept = intercept
    }

    /// The port of `node`.
    public nonisolated func port(for node: NodeID) -> InMemorySessionPort { InMemorySessionPort(hub: self, me: node) }

    /// Opens a session from `from` to `to`: returns the dialler's end and hands the other to `to`.
    func open(from: NodeID, to: NodeID, stream: String) throws -> InMemoryChannel {
        let (mine, theirs) = InMemoryChannel.pair(from, to, tap: tap, intercept: intercept)
        let key = Key(to: to, stream: stream, from: from)
        if let w = waiting.removeValue(forKey: key) {
            w.resume(returning: theirs)
        } else {
            offered[key] = theirs
        }
        return mine
    }

    func accept(at node: NodeID, stream: String, from peer: NodeID, timeout: Duration) async throws -> any MessageChannel {
        let key = Key(to: node, stream: stream, from: peer)
        if let c = offered.removeValue(forKey: key) { return c }
        if let reason = ended[node] { throw SessionError.aborted(reason: reason) }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                if Task.isCancelled { return continuation.resume(throwing: CancellationError()) }
                waiting[key] = continuation
                Task { [weak self] in
                    try? await Task.sleep(for: timeout)
                    await self?.expire(key, seconds: Int(timeout.components.seconds))
                }
            }
        } onCancel: {
            Task { await self.cancelWait(key) }
        }
    }

    private func cancelWait(_ key: Key) {
        waiting.removeValue(forKey: key)?.resume(throwing: CancellationError())
    }

    private func expire(_ key: Key, seconds: Int) {
        waiting.removeValue(forKey: key)?.resume(throwing: SessionError.peerDidNotConnect(peer: key.from, seconds: seconds))
    }

    func cancel(at node: NodeID, reason: String) {
        ended[node] = reason
        for key in waiting.keys where key.to == node {
            waiting.removeValue(forKey: key)?.resume(throwing: SessionError.aborted(reason: reason))
        }
    }
}

/// One participant's port on an `InMemorySessionHub`.
public struct InMemorySessionPort: SessionPort {
    let hub: InMemorySessionHub
    public let me: NodeID
    public let traffic = SessionTraffic()

    public func withSession<R: Sendable>(stream: String, to peer: NodeID, _ body: (any MessageChannel) async throws -> R) async throws -> R {
        let channel = try await hub.open(from: me, to: peer, stream: stream)
        traffic.track(channel)
        do {
            let r = try await body(channel)
            await channel.close()
            return r
        } catch {
            await channel.close()
            throw error
        }
    }

    public func accept(stream: String, from peer: NodeID, timeout: Duration) async throws -> any MessageChannel {
        let channel = try await hub.accept(at: me, stream: stream, from: peer, timeout: timeout)
        traffic.track(channel)
        return channel
    }

    public func cancelAccepts(reason: String) async { await hub.cancel(at: me, reason: reason) }
}
