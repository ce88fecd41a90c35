import Foundation

/// Work that waits on some sessions while others stay open: when one of those ends first (its peer gave
/// up, or its link broke), the work stops at once instead of waiting out a claim or a phase.
public enum SessionWatch {
    /// Runs `body`; if one of `watched` ends before it returns, `body` is cancelled and the end is thrown
    /// as `ChannelError.peerDisconnected`. `body` must not close a watched channel itself.
    public static func untilOneEnds<R: Sendable>(_ watched: [any MessageChannel], _ body: @escaping @Sendable () async throws -> R) async throws -> R {
        try await withThrowingTaskGroup(of: R?.self) { group in
            group.addTask { try await body() }
            for channel in watched {
                group.addTask {
                    await channel.untilEnded()
                    if Task.isCancelled { return nil }
                    throw ChannelError.peerDisconnected(peer: channel.peer, detail: "its session ended while this role waited elsewhere")
                }
            }
            while let result = try await group.next() {
                if let result {
                    group.cancelAll()
                    return result
                }
            }
            throw CancellationError()
        }
    }
}
