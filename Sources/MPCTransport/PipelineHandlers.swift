import NIOCore

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
