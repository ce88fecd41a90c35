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
