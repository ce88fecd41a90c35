import Foundation
import NIOCore

/// The threads jobs run on: a task executor of its own (SE-0417), apart from Swift's cooperative pool.
///
/// A job blocks its thread for long stretches — a SQLite snapshot of millions of rows, a whole set sealed
/// or hashed, a model's epoch — and the cooperative pool has one thread a core. On it, a few busy jobs
/// (or a node with several) hold every thread, and the tasks that keep connections alive — the accept
/// loop, reading a peer's Hello before its deadline, a control request — wait behind them; a peer then
/// closes a connection it had just opened ("TLS handshake … failed: I/O on closed channel"). Jobs' tasks
/// prefer this executor (`Task(executorPreference: JobExecutor.shared)`; their child tasks inherit it),
/// so the cooperative pool stays free for the transport, the HTTP API and the console; the transport's
/// connect and Hello run on the cooperative pool even when a job dials (`PeerTransport`).
///
/// It runs `threads` OS threads (one a core, at least two) taking jobs' partial tasks first in, first out.
public final class JobExecutor: TaskExecutor, @unchecked Sendable {
    /// The process's job threads (a node runs its jobs here; several nodes in one process share them).
    public static let shared = JobExecutor(threads: max(2, ProcessInfo.processInfo.activeProcessorCount), name: "mpcnode-job")

    private let condition = NSCondition()
    private var queue = CircularBuffer<UnownedJob>(initialCapacity: 64)
    public let threadCount: Int

    /// Its threads live as long as the process (only `shared` is made).
    private init(threads: Int, name: String) {
        threadCount = threads
        for i in 0..<threads {
            let thread = Thread { self.work() }
            thread.name = "\(name)-\(i)"
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        condition.lock()
        queue.append(unowned)
        condition.signal()
        condition.unlock()
    }

    private func work() {
        Thread.current.threadDictionary[Self.marker] = true
        while true {
            condition.lock()
            while queue.isEmpty { condition.wait() }
            let job = queue.removeFirst()
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }

    /// Whether the calling code runs on one of this executor's threads.
    public static var isJobThread: Bool { Thread.current.threadDictionary[marker] as? Bool ?? false }
    private static let marker = "mpcnode.job-executor"
}
