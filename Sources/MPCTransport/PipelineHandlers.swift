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

/// Turns a read time-out into an error, so that whoever awaits the next frame learns the peer is silent.
final class IdleTimeoutHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    private let seconds: Double

    init(seconds: Double) { self.seconds = seconds }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            context.fireErrorCaught(TransportError.idleTimeout(seconds: seconds))
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}

/// Reads the peer's certificate when the TLS handshake completes and fulfils `identity` with the node
/// identity it names (the handshake has already checked it chains to the consortium CA). If the
/// connection fails first, `identity` fails with that error.
final class PeerIdentityHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let identity: EventLoopPromise<NodeIdentity>
    private var settled = false

    init(eventLoop: EventLoop) { identity = eventLoop.makePromise() }

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
                identity.succeed(try PeerTransport.identity(of: certificate))
            } catch {
                identity.fail(error)
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
