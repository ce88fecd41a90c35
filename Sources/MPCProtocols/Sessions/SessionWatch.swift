import Foundation

/// Work that waits on some sessions while others stay open: when one of those ends first (its peer gave
/// up, or its link broke), the work stops at once instead of waiting out a claim or a phase.
enum SessionWatch {
    /// Runs `body`; if one of `watched` ends before it returns, `body` is cancelled and, once it has
    /// stopped, why that session ended is thrown: the peer's abort if the work read it or it is still to
    /// be read there (a refusal is not taken for a dropped link), else `ChannelError.peerDisconnected`.
    /// A read that was cancelled may have lost the abort (a cancelled read ends the channel's stream): the
    /// role then takes the end for a dropped link, and the job ends at its next attempt or on the
    /// coordinator's abort. `body` may read the watched sessions but must not close them.
    static func untilOneEnds<R: Sendable>(_ watched: [ProtocolSession], _ body: @escaping @Sendable () async throws -> R) async throws -> R {
        var ended: Int?
        var stoppedWith: Error?
        do {
            let value: R? = try await withThrowingTaskGroup(of: SessionWatchStep<R>.self) { group in
                group.addTask { .done(try await body()) }
                for (i, session) in watched.enumerated() {
                    group.addTask {
                        await session.channel.untilEnded()
                        return Task.isCancelled ? .stopped : .ended(i)
                    }
                }
                while let step = try await group.next() {
                    switch step {
                    case .done(let value):
                        group.cancelAll()
                        return value
                    case .ended(let i):
                        // Stop the work and let it finish before the session is read.
                        if ended == nil { ended = i }
                        group.cancelAll()
                    case .stopped:
                        continue
                    }
                }
                return nil
            }
            if let value { return value }
        } catch where ended == nil {
            throw error
        } catch {
            stoppedWith = error
        }
        guard let i = ended else { throw CancellationError() }
        // The work may have read the peer's abort itself before it was stopped: that is the reason then.
        if let e = stoppedWith, !(e is CancellationError), !(e is ChannelError) { throw e }
        throw await watched[i].endReason()
    }
}

/// What ended first in `SessionWatch.untilOneEnds`: the work, a watched session, or neither (the watch was stopped).
enum SessionWatchStep<R: Sendable>: Sendable {
    case done(R)
    case ended(Int)
    case stopped
}
