import Foundation
@testable import MPCNode
import XCTest

/// Jobs run on `JobExecutor`'s threads, apart from Swift's cooperative pool: a job (and its child tasks)
/// runs there, and with every job thread blocked the cooperative pool — where the transport reads and
/// writes Hellos — still runs.
final class JobExecutorTests: XCTestCase {
    func testAJobAndItsChildTasksRunOnJobThreads() async throws {
        let (own, children) = await Task(executorPreference: JobExecutor.shared) { () async -> (Bool, [Bool]) in
            let own = JobExecutor.isJobThread
            let children = await withTaskGroup(of: Bool.self) { group in
                for _ in 0..<4 { group.addTask { JobExecutor.isJobThread } }
                return await group.reduce(into: []) { $0.append($1) }
            }
            return (own, children)
        }.value
        XCTAssertTrue(own)
        XCTAssertEqual(children, [true, true, true, true])
        // And a task without the preference does not.
        let plain = await Task.detached { JobExecutor.isJobThread }.value
        XCTAssertFalse(plain)
    }

    /// Every job thread blocks until a task on the cooperative pool lets it go. Were jobs on the
    /// cooperative pool (as before `JobExecutor`: as many blocked jobs as it has threads), that task could
    /// not run, and the blocked jobs would time out instead.
    func testWithEveryJobThreadBlockedTheCooperativePoolStillRuns() async throws {
        let n = JobExecutor.shared.threadCount
        let release = DispatchSemaphore(value: 0)
        let started = Counter()
        let blocked = (0..<n).map { _ in
            Task(executorPreference: JobExecutor.shared) { () -> Bool in
                started.add()
                return release.wait(timeout: .now() + 30) == .success  // blocks its thread, as a long SQLite scan does
            }
        }
        let releasedBy = Task.detached { () -> Bool in
            while started.value < n { try? await Task.sleep(for: .milliseconds(10)) }
            for _ in 0..<n { release.signal() }
            return JobExecutor.isJobThread
        }
        let onJobThread = await releasedBy.value
        XCTAssertFalse(onJobThread)
        for task in blocked {
            let released = await task.value
            XCTAssertTrue(released, "a job thread was not released by the cooperative pool")
        }
    }

    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var count = 0
        func add() { lock.withLock { count += 1 } }
        var value: Int { lock.withLock { count } }
    }
}
