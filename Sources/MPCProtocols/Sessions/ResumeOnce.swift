import Foundation

/// A continuation resumed at most once, by whichever comes first (an event or the waiting task's
/// cancellation), even when the event comes before the continuation exists.
public final class ResumeOnce: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<Void, Never>?
    private var resumed = false

    public init() {}

    /// Waits until `resume()`, or until the task is cancelled.
    public func wait() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let now = lock.withLock { () -> Bool in
                    if resumed { return true }
                    continuation = c
                    return false
                }
                if now { c.resume() }
            }
        } onCancel: { resume() }
    }

    public func resume() {
        let c = lock.withLock { () -> CheckedContinuation<Void, Never>? in
            resumed = true
            defer { continuation = nil }
            return continuation
        }
        c?.resume()
    }
}
