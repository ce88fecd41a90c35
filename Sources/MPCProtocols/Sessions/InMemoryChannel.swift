import Foundation

/// Two connected `MessageChannel`s in one process, for unit tests of protocols.
///
/// Each direction is an unbounded queue. `tap`, if given, sees every message as it is sent (with the
/// sender's id), which is how tests inspect what a protocol puts on the wire. `intercept`, if given,
/// decides what is delivered instead of each message (nothing, a changed one, or several): how tests
/// play a dishonest or broken peer against an honest role (`MessageMutator` in MPCTestSupport).
public final class InMemoryChannel: MessageChannel, CountsBytes, @unchecked Sendable {
    public let peer: NodeID
    private let inbound: AsyncStream<[UInt8]>
    private var inboundIterator: AsyncStream<[UInt8]>.AsyncIterator
    private let outbound: AsyncStream<[UInt8]>.Continuation
    private let me: NodeID
    private let tap: (@Sendable (NodeID, [UInt8]) -> Void)?
    private let intercept: Intercept?
    private let lock = NSLock()
    private var sent: UInt64 = 0, received: UInt64 = 0
    private let ends: PairEnds

    public var bytesSent: UInt64 { lock.withLock { sent } }
    public var bytesReceived: UInt64 { lock.withLock { received } }

    /// What to deliver instead of `message` sent by `sender` to `receiver`.
    public typealias Intercept = @Sendable (_ sender: NodeID, _ receiver: NodeID, _ message: [UInt8]) -> [[UInt8]]

    /// A connected pair: messages sent on the first arrive on the second and vice versa.
    public static func pair(_ a: NodeID, _ b: NodeID,
                            tap: (@Sendable (_ sender: NodeID, _ message: [UInt8]) -> Void)? = nil,
                            intercept: Intercept? = nil) -> (InMemoryChannel, InMemoryChannel) {
        let (toA, toAContinuation) = AsyncStream<[UInt8]>.makeStream()
        let (toB, toBContinuation) = AsyncStream<[UInt8]>.makeStream()
        let ends = PairEnds()
        let channelA = InMemoryChannel(me: a, peer: b, inbound: toA, outbound: toBContinuation, tap: tap, intercept: intercept, ends: ends)
        let channelB = InMemoryChannel(me: b, peer: a, inbound: toB, outbound: toAContinuation, tap: tap, intercept: intercept, ends: ends)
        return (channelA, channelB)
    }

    private init(me: NodeID, peer: NodeID, inbound: AsyncStream<[UInt8]>, outbound: AsyncStream<[UInt8]>.Continuation,
                 tap: (@Sendable (NodeID, [UInt8]) -> Void)?, intercept: Intercept?, ends: PairEnds) {
        self.ends = ends
        self.intercept = intercept
        self.me = me
        self.peer = peer
        self.inbound = inbound
        self.inboundIterator = inbound.makeAsyncIterator()
        self.outbound = outbound
        self.tap = tap
    }

    public func send(_ message: [UInt8]) async throws {
        tap?(me, message)
        for delivered in intercept?(me, peer, message) ?? [message] {
            if case .terminated = outbound.yield(delivered) {
                throw ChannelError.peerDisconnected(peer: peer, detail: "in-memory channel closed")
            }
        }
        lock.withLock { sent += UInt64(message.count) }
    }

    public func receive() async throws -> [UInt8] {
        // Only one task receives on a channel at a time (protocols have one receive loop).
        var iterator = lock.withLock { inboundIterator }
        let next = await iterator.next()
        lock.withLock { inboundIterator = iterator }
        guard let next else { throw ChannelError.peerDisconnected(peer: peer, detail: "channel closed") }
        lock.withLock { received += UInt64(next.count) }
        return next
    }

    public func close() async {
        outbound.finish()
        ends.end()
    }

    /// Returns once either side closed, or when the task is cancelled.
    public func untilEnded() async { await ends.untilEnded() }
}

/// Whether either channel of a pair was closed, and who waits for it.
final class PairEnds: @unchecked Sendable {
    private let lock = NSLock()
    private var ended = false
    private var waiters: [ResumeOnce] = []

    func end() {
        let w = lock.withLock { () -> [ResumeOnce] in
            ended = true
            defer { waiters = [] }
            return waiters
        }
        for x in w { x.resume() }
    }

    func untilEnded() async {
        let once = ResumeOnce()
        let now = lock.withLock { () -> Bool in
            if ended { return true }
            waiters.append(once)
            return false
        }
        if now { return }
        await once.wait()
    }
}
