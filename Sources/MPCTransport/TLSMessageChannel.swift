import Foundation
import MPCProtocols
import NIOCore
import NIOSSL

/// A `MessageChannel` over one mutually authenticated TLS connection: each message is one frame.
///
/// `send` returns once the frame has been handed to the kernel (so the channel applies back-pressure
/// and closing never discards a written message); `receive` throws `ChannelError` when the peer closes,
/// the connection breaks, a frame is truncated or too large, or the peer is silent past the idle limit.
public final class TLSMessageChannel: MessageChannel, CountsBytes, @unchecked Sendable {
    public let peer: NodeID
    private let channel: Channel
    private var iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    private let lock = NSLock()
    private var closed = false
    private var closeWaiters: [CheckedContinuation<Void, Never>] = []
    private var _bytesSent: UInt64 = 0
    private var _bytesReceived: UInt64 = 0

    init(peer: NodeID, channel: Channel, iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator) {
        self.peer = peer
        self.channel = channel
        self.iterator = iterator
        // A connection that closes (the peer hung up, the idle limit, a node stopping) ends the session
        // too: the task holding an accepted connection (`waitUntilClosed`) must not wait on a role that
        // dropped its channel without closing it.
        channel.closeFuture.whenComplete { [weak self] _ in self?.endSession() }
    }

    public var bytesSent: UInt64 { lock.withLock { _bytesSent } }
    public var bytesReceived: UInt64 { lock.withLock { _bytesReceived } }

    public func send(_ message: [UInt8]) async throws {
        let buffer = channel.allocator.buffer(bytes: message)
        do {
            try await channel.writeAndFlush(buffer).get()
        } catch is CancellationError {
            throw CancellationError()  // this side stops (its job was cancelled), not the peer
        } catch {
            throw ChannelError.peerDisconnected(peer: peer, detail: Self.describe(error))
        }
        lock.withLock { _bytesSent += UInt64(message.count + 4) }
    }

    public func receive() async throws -> [UInt8] {
        var iterator = lock.withLock { self.iterator }
        defer { lock.withLock { self.iterator = iterator } }
        let next: ByteBuffer?
        do {
            next = try await iterator.next()
        } catch let error as TransportError {
            if case .idleTimeout(let s) = error { throw ChannelError.timedOut(peer: peer, seconds: s) }
            throw ChannelError.peerDisconnected(peer: peer, detail: error.description)
        } catch let error as FramingError {
            if case .frameTooLarge(let bytes, let limit) = error { throw ChannelError.frameTooLarge(peer: peer, bytes: bytes, limit: limit) }
            throw ChannelError.peerDisconnected(peer: peer, detail: error.description)
        } catch is CancellationError {
            throw CancellationError()  // this side stops (its job was cancelled), not the peer
        } catch {
            throw ChannelError.peerDisconnected(peer: peer, detail: Self.describe(error))
        }
        guard let next else { throw ChannelError.peerDisconnected(peer: peer, detail: "connection closed") }
        lock.withLock { _bytesReceived += UInt64(next.readableBytes + 4) }
        return Array(next.readableBytesView)
    }

    /// Ends the session: whoever holds the connection open (`waitUntilClosed`) lets it close.
    public func close() async { endSession() }

    /// Closes the connection now (after an error): the peer sees it at once. The session ends too, or
    /// the task holding the connection (`waitUntilClosed`) would wait forever and hold up the node's stop.
    public func abort() async {
        channel.close(promise: nil)
        endSession()
    }

    private func endSession() {
        let waiters: [CheckedContinuation<Void, Never>] = lock.withLock {
            closed = true
            defer { closeWaiters.removeAll() }
            return closeWaiters
        }
        for w in waiters { w.resume() }
    }

    /// Runs `body` with sessions this node accepted (claimed inbound channels), then closes them; if `body`
    /// throws, they are aborted first, so each peer sees the end at once.
    public static func using<R>(_ channels: [TLSMessageChannel], isolation: isolated (any Actor)? = #isolation,
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

    /// Returns when the connection has closed (either side, or broken), or when the task is cancelled.
    public func untilEnded() async {
        let ended = ResumeOnce()
        channel.closeFuture.whenComplete { _ in ended.resume() }
        await ended.wait()
    }

    /// Suspends until `close()` or `abort()` is called or the connection closes.
    public func waitUntilClosed() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let already = lock.withLock { () -> Bool in
                if closed { return true }
                closeWaiters.append(c)
                return false
            }
            if already { c.resume() }
        }
    }

    static func describe(_ error: Error) -> String {
        if let e = error as? NIOSSLError { return "TLS error: \(e)" }
        if let e = error as? BoringSSLError { return "TLS error: \(e)" }
        if let e = error as? IOError { return e.description }
        return "\(error)"
    }
}
