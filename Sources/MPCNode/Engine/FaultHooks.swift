import Foundation
import MPCProtocols

/// Points at which an end-to-end test makes this node fail on purpose (a bank that disappears in the
/// middle of a secure sum). A node has none unless its starter installs them: `mpcnode serve` does so
/// only in a debug build, from `MPCNODE_FAULT_EXIT_AFTER_SECAGG_ROUND`, so a release daemon cannot be
/// made to fail this way.
public struct FaultHooks: Sendable {
    /// Called by a secure-aggregation client after each round it completed, and by the server after
    /// each round it answered.
    public var afterSecureAggregationRound: (@Sendable (SecureAggregationClient.Round) -> Void)?

    /// A slow party: the first read of a job's input snapshot waits this long (its sessions are
    /// already open, so its peers' links carry nothing meanwhile).
    public var slowFirstInputRead: Duration?

    /// A PSI party cuts its link to the peer right after recording this bucket (once per node), as a
    /// network fault would: the job must resume at the next bucket.
    public var dropPSILinkAfterBucket: Int?
    /// The process exits abruptly (as if killed) right after recording this PSI bucket.
    public var exitAfterPSIBucket: Int?
    /// A PSI party waits this long right after recording this bucket (a window in which a test stops its node).
    public var pauseAfterPSIBucket: (bucket: Int, pause: Duration)?
    /// An owner of a set operation in buckets cuts its link to the mixer in this bucket, after the first
    /// message (once per node), as a network fault would: the job must resume at that bucket.
    public var dropSetMixLinkInBucket: Int?
    let dropOnce = FaultOnce()

    public init(afterSecureAggregationRound: (@Sendable (SecureAggregationClient.Round) -> Void)? = nil,
                slowFirstInputRead: Duration? = nil, dropPSILinkAfterBucket: Int? = nil) {
        self.afterSecureAggregationRound = afterSecureAggregationRound
        self.slowFirstInputRead = slowFirstInputRead
        self.dropPSILinkAfterBucket = dropPSILinkAfterBucket
    }

    /// The process exits abruptly (as if killed) right after `round` of a secure sum, as a client or as
    /// the server, named as in
    /// `MPCNODE_FAULT_EXIT_AFTER_SECAGG_ROUND` (advertise, shareKeys, maskedInput, consistency, unmask); nil for any other name.
    public static func exitAfterSecureAggregationRound(named name: String) -> FaultHooks? {
        let rounds: [String: SecureAggregationClient.Round] = ["advertise": .advertise, "shareKeys": .shareKeys,
                                                               "maskedInput": .maskedInput, "consistency": .consistency, "unmask": .unmask]
        guard let round = rounds[name] else { return nil }
        return FaultHooks(afterSecureAggregationRound: { completed in if completed == round { _exit(137) } })
    }
}

/// True the first time only.
final class FaultOnce: @unchecked Sendable {
    private let lock = NSLock()
    private var taken = false
    func take() -> Bool { lock.withLock { defer { taken = true }; return !taken } }
}

/// A role's session port that cuts its first session of `stream` after one message, once per node (a
/// test's dropped link: the connection closes, the peer sees it at once).
struct SessionCuttingPort: SessionPort {
    let inner: any SessionPort
    let stream: String
    let once: FaultOnce
    var me: NodeID { inner.me }
    var traffic: SessionTraffic { inner.traffic }

    func withSession<R: Sendable>(stream: String, to peer: NodeID, _ body: (any MessageChannel) async throws -> R) async throws -> R {
        try await inner.withSession(stream: stream, to: peer) { channel in
            guard stream == self.stream, once.take() else { return try await body(channel) }
            return try await body(CutAfterFirstMessage(inner: channel))
        }
    }

    func accept(stream: String, from peer: NodeID, timeout: Duration) async throws -> any MessageChannel {
        try await inner.accept(stream: stream, from: peer, timeout: timeout)
    }

    func cancelAccepts(reason: String) async { await inner.cancelAccepts(reason: reason) }
}

/// A channel whose connection breaks when it is about to send its second message.
final class CutAfterFirstMessage: MessageChannel, @unchecked Sendable {
    let inner: any MessageChannel
    private let sent = NSLock()
    private var count = 0
    init(inner: any MessageChannel) { self.inner = inner }
    var peer: NodeID { inner.peer }

    func send(_ message: [UInt8]) async throws {
        let n = sent.withLock { () -> Int in count += 1; return count }
        if n > 1 {
            await inner.abort()
            throw ChannelError.peerDisconnected(peer: peer, detail: "link cut by fault injection")
        }
        try await inner.send(message)
    }

    func receive() async throws -> [UInt8] { try await inner.receive() }
    func close() async { await inner.close() }
    func abort() async { await inner.abort() }
    func untilEnded() async { await inner.untilEnded() }
}
