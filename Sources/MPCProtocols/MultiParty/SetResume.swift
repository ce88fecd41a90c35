import Foundation

/// How a role of a set operation in buckets mends a dropped link (Protocols/multi-party-sets.md "Resume"):
/// every role ends its attempt without an abort, and all meet again on the next attempt's sessions, which
/// start at the first bucket not done at every role.
public struct SetResume: Sendable {
    /// One resume, as a role reports it (the node audits it).
    public struct Event: Sendable {
        /// 1 for the first resume.
        public var attempt: Int
        /// Buckets this role had completed when the link dropped.
        public var bucketsDone: Int
        public var reason: String
    }

    /// Resumes this node allows (its policy's `max_resumes`); 0: a dropped link fails the job.
    public var maximum: Int
    /// Which errors are a dropped link (closed, reset, silent past the idle limit, not opened in time).
    public var isDroppedLink: @Sendable (Error) -> Bool
    /// How long a role waits for the others' sessions of a resumed attempt.
    public var reconnectWait: Duration
    /// The pause before a role opens the next attempt's sessions.
    public var pause: Duration
    public var onResume: @Sendable (Event) -> Void

    public init(maximum: Int, isDroppedLink: @escaping @Sendable (Error) -> Bool = SetResume.isChannelFault,
                reconnectWait: Duration = .seconds(300), pause: Duration = .seconds(1), onResume: @escaping @Sendable (Event) -> Void = { _ in }) {
        self.maximum = maximum
        self.isDroppedLink = isDroppedLink
        self.reconnectWait = reconnectWait
        self.pause = pause
        self.onResume = onResume
    }

    /// A dropped link fails the job.
    public static let never = SetResume(maximum: 0)

    /// The faults any session port reports: a channel closed or silent, a session not opened in time.
    @Sendable public static func isChannelFault(_ error: Error) -> Bool {
        switch error {
        case ChannelError.peerDisconnected, ChannelError.timedOut, SessionError.peerDidNotConnect: return true
        default: return false
        }
    }

    /// Whether an attempt that failed with `error` is followed by another.
    func resumes(after error: Error, attempt: Int) -> Bool {
        attempt < maximum && !Task.isCancelled && isDroppedLink(error)
    }

    /// Whether the next attempt's first session, which could not be opened (`error`), is tried again
    /// rather than counted as another attempt: the others wait for it for `reconnectWait`.
    func redials(after error: Error, attempt: Int, since: ContinuousClock.Instant) -> Bool {
        attempt > 0 && !Task.isCancelled && isDroppedLink(error) && ContinuousClock.now - since < reconnectWait
    }

    /// The pause before the n-th try at opening an attempt's first session: 1, 2, 4, 8, then 10 s.
    static func redialPause(_ n: Int) -> Duration { .seconds(min(10, 1 << min(n, 4))) }

    /// Whether a session ends without an abort message after `error`: the link may be resumed (a peer that
    /// read an abort would fail the job), or this role was stopped (its node tells the others).
    func endsSilently(after error: Error, attempt: Int) -> Bool {
        (maximum > 0 && error is CancellationError) || (attempt < maximum && isDroppedLink(error))
    }
}
