import NIOCore
import NIOTLS

/// Sees every plaintext byte the node writes, after framing and before TLS (tests only).
final class PlaintextTapHandler: ChannelOutboundHandler, @unchecked Sendable {
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private let tap: @Sendable (String, [UInt8]) -> Void
    private let peer: String

    init(peer: String, tap: @escaping @Sendable (String, [UInt8]) -> Void) {
        self.peer = peer
        self.tap = tap
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let buffer = unwrapOutboundIn(data)
        tap(peer, Array(buffer.readableBytesView))
        context.write(data, promise: promise)
    }
}

/// Keeps a connection honest about liveness: a read time-out (nothing at all from the peer, heartbeats
/// included) becomes an error and closes the connection, so whoever awaits the next frame learns the
/// peer is gone; a write time-out, once the TLS handshake has completed, sends a heartbeat, so the peer
/// does not take this node for gone while its job is still working (a ring link waiting on a slow
/// predecessor). A connection is only open while its job or control exchange is, so heartbeats stop
/// with them.
final class ConnectionLivenessHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    private let seconds: Double
    private var authenticated = false

    init(idleSeconds: Double) { self.seconds = idleSeconds }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent {
            switch idle {
            case .read:
                context.fireErrorCaught(TransportError.idleTimeout(seconds: seconds))
                context.close(promise: nil)
            case .write where authenticated:
                var beat = context.channel.allocator.buffer(capacity: 4)
                beat.writeInteger(LengthPrefixedFrameDecoder.heartbeat)
                context.writeAndFlush(NIOAny(beat), promise: nil)
            default:
                break
            }
            return
        }
        if let tls = event as? TLSUserEvent, case .handshakeCompleted = tls { authenticated = true }
        context.fireUserInboundEventTriggered(event)
    }
}

/// Closes a connection whose TLS handshake has not completed within `timeout` of it becoming active (a
/// silent or trickling connection), and calls `settled` once, when the handshake completes or the
/// connection ends, whichever is first (the listener counts connections still in their handshake).
final class HandshakeDeadlineHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    private let timeout: TimeAmount
    private let settled: @Sendable () -> Void
    private var deadline: Scheduled<Void>?
    private var done = false

    init(timeout: TimeAmount, settled: @escaping @Sendable () -> Void = {}) {
        self.timeout = timeout
        self.settled = settled
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(context)
        context.fireChannelActive()
    }

    private func arm(_ context: ChannelHandlerContext) {
        guard deadline == nil, !done else { return }
        let seconds = Double(timeout.nanoseconds) / 1e9
        deadline = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [weak self] in
            guard let self, !self.done else { return }
            self.finish()
            context.fireErrorCaught(TransportError.handshakeTimedOut(seconds: seconds))
            context.close(promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tls = event as? TLSUserEvent, case .handshakeCompleted = tls { finish() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) { finish() }

    private func finish() {
        guard !done else { return }
        done = true
        deadline?.cancel()
        deadline = nil
        settled()
    }
}

/// Reads the peer's certificate when the TLS handshake completes and fulfils `identity` with the node
/// identity it names (the handshake has already checked it chains to the consortium CA). If the
/// connection fails first, `identity` fails with that error.
final class PeerIdentityHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let identity: EventLoopPromise<NodeIdentity>
    let revocations: PeerTransport.Revocations?
    private var settled = false

    init(eventLoop: EventLoop, revocations: PeerTransport.Revocations? = nil) {
        identity = eventLoop.makePromise()
        self.revocations = revocations
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tls = event as? TLSUserEvent, case .handshakeCompleted = tls, !settled {
            settled = true
            do {
                let certificate: NIOSSLCertificate?
                if let server = try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self) {
                    certificate = server.peerCertificate
                } else {
                    certificate = try context.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self).peerCertificate
                }
                identity.succeed(try PeerTransport.identity(of: certificate, revocations: revocations))
            } catch {
                identity.fail(error)
                context.close(promise: nil)  // a revoked or unreadable certificate: nothing more from it
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if !settled { settled = true; identity.fail(error) }
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        failIfUnsettled()
        context.fireChannelInactive()
    }

    /// A connection that never became active (or a pipeline torn down early) still settles the promise.
    func handlerRemoved(context: ChannelHandlerContext) {
        failIfUnsettled()
    }

    private func failIfUnsettled() {
        guard !settled else { return }
        settled = true
        identity.fail(TransportError.handshakeFailed(peer: "?", detail: "connection closed before the TLS handshake completed"))
    }
}

import MPCIdentity
import NIOSSL

/// Counts the bytes a connection reads and writes (TLS records, so what crosses the network) and tells
/// the observer once the peer is authenticated; a connection that was counted as open is counted as
/// closed when it ends.
final class TrafficCountingHandler: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let peer: ConnectionPeerLabel
    let observer: any TrafficObserver

    init(peer: ConnectionPeerLabel, observer: any TrafficObserver) {
        self.peer = peer
        self.observer = observer
    }

    private var known: String? {
        let label = peer.value
        return label == "unidentified" ? nil : label
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if let known { observer.bytes(peer: known, sent: false, count: unwrapInboundIn(data).readableBytes) }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if let known { observer.bytes(peer: known, sent: true, count: unwrapOutboundIn(data).readableBytes) }
        context.write(data, promise: promise)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let known { observer.disconnected(known) }
        context.fireChannelInactive()
    }
}

/// Inbound connections: the peer's first frame (its Hello) must arrive whole within `timeout` of the
/// handshake's end, or the connection closes — a member cannot park a connection, kept up by heartbeats,
/// with a trickled Hello. Watched here on the event loop, where frames arrive, not by the task that reads
/// the Hello: a node whose tasks are all busy (a large job hashing on every core) must not close a
/// connection whose Hello came in time but was not read yet.
final class FirstFrameDeadlineHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    private let timeout: TimeAmount
    private var context: ChannelHandlerContext?
    private var deadline: Scheduled<Void>?
    private var arrived = false

    init(timeout: TimeAmount) { self.timeout = timeout }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        self.context = nil
    }

    /// Starts the clock (on the event loop, once the handshake has named the peer).
    func start() {
        guard let context, !arrived, deadline == nil else { return }
        deadline = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [weak self] in
            guard let self, !self.arrived else { return }
            self.context?.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if !arrived {
            arrived = true
            deadline?.cancel()
            deadline = nil
        }
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        context.fireChannelInactive()
    }
}
