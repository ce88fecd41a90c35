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

    /// Runs a role's attempts 0, 1, … until one returns: after a dropped link, the next attempt (reported
    /// to `onResume`), unless a fault now ends the job (`progress.endsJob`) or the resumes are used up. A
    /// role that `dials` its attempt's first session tries the same attempt again when that session could
    /// not be opened, and pauses before the next. Returns the result and the resumes.
    func attempts<R>(_ progress: some SetAttemptProgress, dials: Bool, _ attempt: (Int) async throws -> R) async throws -> (R, resumes: Int) {
        var a = 0, tries = 0, since = ContinuousClock.now
        while true {
            do {
                return (try await attempt(a), a)
            } catch where dials && !progress.endsJob && progress.opened < a && redials(after: error, attempt: a, since: since) {
                // The aggregator was not reachable: the same attempt again (the others wait for it).
                tries += 1
                try await Task.sleep(for: Self.redialPause(tries))
            } catch where !progress.endsJob && resumes(after: error, attempt: a) {
                a += 1
                tries = 0
                since = ContinuousClock.now
                onResume(.init(attempt: a, bucketsDone: progress.bucketsDone, reason: "\(error)"))
                if dials { try await Task.sleep(for: pause) }
            }
        }
    }

    /// Whether a session ends without an abort message after `error`: the link may be resumed (a peer that
    /// read an abort would fail the job), or this role was stopped (its node tells the others).
    func endsSilently(after error: Error, attempt: Int) -> Bool {
        (maximum > 0 && error is CancellationError) || (attempt < maximum && isDroppedLink(error))
    }
}

/// What a role's attempts need to know of where it stands (`SetResume.attempts`).
protocol SetAttemptProgress: AnyObject {
    /// The last attempt whose first session opened (-1: none yet).
    var opened: Int { get }
    /// A fault now ends the job (the release or the delivery began).
    var endsJob: Bool { get }
    /// Buckets this role has completed (for the audit of a resume).
    var bucketsDone: Int { get }
}
