import NIOCore
import Synchronization

/// An accepted connection's async channel that is closed properly even if nobody serves it.
///
/// A server's child channels are wrapped for async use as they are accepted, then handed to the accept
/// loop. When the listener closes at that moment (a node stopping while a peer connects), the hand-off is
/// dropped, and NIO traps on an async channel released without being opened ("Deinited NIOAsyncWriter
/// without calling finish()"): a peer's connection timed right could crash the node. Released unopened,
/// this wrapper opens and closes the channel itself.
public final class AcceptedConnection<Inbound: Sendable, Outbound: Sendable>: Sendable {
    private let channel: NIOAsyncChannel<Inbound, Outbound>
    private let opened = Mutex(false)

    public init(_ channel: NIOAsyncChannel<Inbound, Outbound>) { self.channel = channel }

    /// The channel, for the one server task that serves it (with `executeThenClose`).
    public func open() -> NIOAsyncChannel<Inbound, Outbound> {
        opened.withLock { $0 = true }
        return channel
    }

    deinit {
        guard !opened.withLock({ $0 }) else { return }
        let channel = self.channel
        Task { try? await channel.executeThenClose { _, _ in } }
    }
}
