import Foundation
import MPCBench
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
        let releasedBy = Task.detached {
            while started.value < n { try? await Task.sleep(for: .milliseconds(10)) }
            for _ in 0..<n { release.signal() }
        }
        await releasedBy.value
        for task in blocked {
            let released = await task.value
            XCTAssertTrue(released, "a job thread was not released by the cooperative pool")
        }
    }

    /// A real job's role runs on job threads: the secure-sum roles of three branches and the regulator report
    /// the thread of each round they complete (fails if the engine starts roles without the preference).
    func testANodesJobRolesRunOnJobThreads() async throws {
        let branches = ["branch-a", "branch-b", "branch-c"]
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mpcnode-exec-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let consortium = try LocalConsortium.create(in: directory, banks: branches, regulators: ["regulator"]) { _ in
            SecureSumFixture.policy(columns: ["balance"], ["min_set_size: 5", "min_cell_records: 3", "min_cell_parties: 2"])
        }
        for branch in branches {
            var csv = "account,balance\n"
            for i in 0..<20 { csv += "\(branch)-\(i),\(i).25\n" }
            try consortium.importCSV(csv, into: branch, dataset: "accounts", idColumn: "account")
        }
        let rounds = Recorder()
        let hooks = FaultHooks(afterSecureAggregationRound: { _ in rounds.add(JobExecutor.isJobThread) })
        var nodes: [String: NodeRuntime] = [:]
        for id in ["coordinator", "regulator"] + branches {
            nodes[id] = try await consortium.start(id, logger: ConsortiumFixture.quietLogger, faults: id == "coordinator" ? nil : hooks)
        }
        let job = try await SecureSumFixture.sum(nodes["coordinator"]!, parties: branches, minCellRecords: 3, minCellParties: 2)
        for n in nodes.values { await n.stop() }
        XCTAssertEqual(job.state, .succeeded, job.reason ?? "")
        let seen = rounds.values
        XCTAssertGreaterThanOrEqual(seen.count, 4 * 3, "rounds completed: \(seen.count)")
        XCTAssertEqual(seen.filter { !$0 }.count, 0, "rounds completed off the job threads: \(seen)")
    }

    final class Recorder: @unchecked Sendable {
        private let lock = NSLock()
        private var seen: [Bool] = []
        func add(_ value: Bool) { lock.withLock { seen.append(value) } }
        var values: [Bool] { lock.withLock { seen } }
    }

    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var count = 0
        func add() { lock.withLock { count += 1 } }
        var value: Int { lock.withLock { count } }
    }
}
