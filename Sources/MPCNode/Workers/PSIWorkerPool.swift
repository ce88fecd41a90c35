import Foundation
import Logging
import MPCProtocols

/// A node's side of a PSI job run by workers: once the node agreed on the job's bucket key with its peer
/// (the buckets are assigned in the job's scratch database), it writes the workers' plan and has N
/// workers run the buckets — as its own child processes (`launch: local`), or through the command the
/// configuration names (`launch: command`, e.g. a Kubernetes Indexed Job) — and follows the job's
/// checkpoints until every bucket is done. A local worker whose link dropped is started again (it
/// resumes at its first incomplete bucket), up to the node's `max_resumes` per worker.
struct PSIWorkerPool {
    struct Totals: Sendable {
        var bytesSent: UInt64 = 0
        var bytesReceived: UInt64 = 0
        var elementsProcessed = 0
        var relaunches = 0
    }

    /// What one of the pool's concurrent tasks ended with.
    enum Step: Sendable { case launched, allBucketsDone, finished(Totals) }

    let configuration: NodeConfiguration
    let settings: WorkerSettings
    let plan: PSIWorkerPlan
    let logger: Logger
    let audit: AuditLog

    /// Runs the workers until `checkpoints` holds all `bucketCount` buckets; `progress` gets the buckets done.
    /// Fails when a worker fails, or when no bucket completes within twice the peer idle limit (at least
    /// a minute); workers launched by the command are then stopped through it (MPCNODE_ACTION=stop).
    func run(checkpoints: SQLiteBucketCheckpoints, bucketCount: Int, progress: @escaping @Sendable (Int) -> Void) async throws -> Totals {
        try plan.write(in: configuration.jobsDirectory)
        for i in 0..<plan.workerCount { try? FileManager.default.removeItem(at: PSIWorkerSummary.url(jobID: plan.jobID, index: i, in: configuration.jobsDirectory)) }
        try audit.append(event: "job.workers", jobID: plan.jobID, details: [
            "workers": .int(plan.workerCount), "buckets": .int(bucketCount), "peer": .string(plan.peer),
            "launch": .string({ if case .command = settings.launch { return "command" } else { return "local" } }())])
        let launch = settings.launch
        do {
            var totals = try await withThrowingTaskGroup(of: Step.self) { group in
                group.addTask {
                    switch launch {
                    case .local(let executable):
                        return .finished(try await runLocal(executable: executable ?? Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])))
                    case .command(let command):
                        try await runCommand(command, action: "start")
                        return .launched
                    }
                }
                group.addTask { try await watch(checkpoints: checkpoints, bucketCount: bucketCount, progress: progress) }
                defer { group.cancelAll() }
                for try await step in group {
                    switch step {
                    case .launched: continue
                    case .finished(let t): return t
                    case .allBucketsDone:
                        // Local workers exit on their own a moment later (and say what they sent).
                        if case .command = launch { return Totals() }
                    }
                }
                throw WorkerError.incomplete(done: (try? checkpoints.completedCount()) ?? 0, buckets: bucketCount)
            }
            let done = try checkpoints.completedCount()
            progress(done)
            guard done == bucketCount else { throw WorkerError.incomplete(done: done, buckets: bucketCount) }
            if case .command = launch {
                // The pods write their summaries as they end: wait a little for them.
                let until = Date().addingTimeInterval(10)
                var summaries: [PSIWorkerSummary] = []
                repeat {
                    summaries = (0..<plan.workerCount).compactMap { PSIWorkerSummary.read(jobID: plan.jobID, index: $0, in: configuration.jobsDirectory) }
                    if summaries.count == plan.workerCount { break }
                    try await Task.sleep(for: .milliseconds(500))
                } while Date() < until
                for s in summaries {
                    totals.bytesSent += s.bytesSent
                    totals.bytesReceived += s.bytesReceived
                    totals.elementsProcessed += s.elementsProcessed
                }
            }
            return totals
        } catch {
            if case .command(let command) = launch {
                do { try await runCommand(command, action: "stop") } catch {
                    logger.error("could not stop the job's workers", metadata: ["job": "\(plan.jobID)", "error": "\(error)"])
                }
            }
            throw error
        }
    }

    /// The node's heartbeat and the job's progress while its workers run; returns once every bucket is
    /// done; throws when a worker's summary says it failed (workers launched elsewhere) or no bucket
    /// completes for too long.
    private func watch(checkpoints: SQLiteBucketCheckpoints, bucketCount: Int, progress: @escaping @Sendable (Int) -> Void) async throws -> Step {
        let patience = max(60, 2 * configuration.peerIdleTimeoutSeconds)
        var last = -1, since = Date()
        while true {
            checkpoints.heartbeat()
            let done = try checkpoints.completedCount()
            progress(done)
            if done >= bucketCount { return .allBucketsDone }
            if case .command = settings.launch {
                for i in 0..<plan.workerCount {
                    if let s = PSIWorkerSummary.read(jobID: plan.jobID, index: i, in: configuration.jobsDirectory), s.status == .failed {
                        throw WorkerError.workerFailed(index: i, detail: s.error ?? "no reason given")
                    }
                }
            }
            if done != last { last = done; since = Date() }
            if Date().timeIntervalSince(since) > Double(patience) { throw WorkerError.noProgress(seconds: patience) }
            try await Task.sleep(for: .seconds(1))
        }
    }

    /// Each worker a child process; waits for all of them, starting again one whose link dropped while
    /// the job's restarts stay within `max_resumes` (the workers count them too, in the scratch database).
    private func runLocal(executable: URL) async throws -> Totals {
        let jobs = configuration.jobsDirectory, jobID = plan.jobID
        let restarts = RestartBudget(limit: configuration.policy.maximumResumes)
        return try await withThrowingTaskGroup(of: Totals.self) { group in
            for index in 0..<plan.workerCount {
                group.addTask {
                    var totals = Totals()
                    var attempt = 0
                    while true {
                        try? FileManager.default.removeItem(at: PSIWorkerSummary.url(jobID: jobID, index: index, in: jobs))
                        let status = try await Self.runProcess(executable: executable, arguments: [
                            "worker", "--config", configuration.sourcePath, "--job", jobID, "--index", String(index),
                            "--parent-pid", String(getpid())],
                            log: PSIWorkerSummary.logURL(jobID: jobID, index: index, in: jobs))
                        let summary = PSIWorkerSummary.read(jobID: jobID, index: index, in: jobs)
                        totals.bytesSent += summary?.bytesSent ?? 0
                        totals.bytesReceived += summary?.bytesReceived ?? 0
                        totals.elementsProcessed += summary?.elementsProcessed ?? 0
                        if status == 0 { return totals }
                        let reason = summary?.error ?? Self.tail(of: PSIWorkerSummary.logURL(jobID: jobID, index: index, in: jobs))
                        guard status == PSIWorker.linkDroppedStatus, restarts.take() else {
                            throw WorkerError.workerFailed(index: index, detail: "exit status \(status): \(reason)")
                        }
                        attempt += 1
                        totals.relaunches += 1
                        try audit.append(event: "job.resumed", jobID: jobID, details: [
                            "attempt": .int(attempt), "worker": .int(index), "peer": .string(plan.peer),
                            "reason": .string(PeerText.cut(reason, limit: 300))])
                        logger.warning("worker's link lost; starting it again", metadata: [
                            "job": "\(jobID)", "worker": "\(index)", "attempt": "\(attempt)", "error": "\(reason)"])
                        try await Task.sleep(for: .seconds(1))
                    }
                }
            }
            var all = Totals()
            do {
                for try await t in group {
                    all.bytesSent += t.bytesSent
                    all.bytesReceived += t.bytesReceived
                    all.elementsProcessed += t.elementsProcessed
                    all.relaunches += t.relaunches
                }
            } catch {
                group.cancelAll()  // the other workers are stopped (their processes terminated)
                throw error
            }
            return all
        }
    }

    /// Runs the configured command with MPCNODE_ACTION (start: launch the job's workers and return; stop:
    /// stop them), MPCNODE_JOB_ID, MPCNODE_WORKER_COUNT, MPCNODE_MAX_RESUMES, MPCNODE_MAX_JOB_SECONDS.
    private func runCommand(_ command: [String], action: String) async throws {
        let log = configuration.jobsDirectory.appendingPathComponent("\(plan.jobID).worker-launch.log")
        let status = try await Self.runProcess(executable: URL(fileURLWithPath: command[0]), arguments: Array(command.dropFirst()), log: log,
                                               environment: ["MPCNODE_ACTION": action, "MPCNODE_JOB_ID": plan.jobID,
                                                             "MPCNODE_WORKER_COUNT": String(plan.workerCount),
                                                             "MPCNODE_MAX_RESUMES": String(configuration.policy.maximumResumes),
                                                             "MPCNODE_MAX_JOB_SECONDS": String(configuration.maximumJobSeconds),
                                                             "MPCNODE_CONFIG": configuration.sourcePath])
        guard status == 0 else {
            throw WorkerError.launchFailed(detail: "the launch command \(command[0]) (\(action)) exited with status \(status): \(Self.tail(of: log))")
        }
    }

    /// Runs a process with its output appended to `log`; it is terminated if the waiting task is cancelled.
    private static func runProcess(executable: URL, arguments: [String], log: URL, environment: [String: String] = [:]) async throws -> Int32 {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        if !FileManager.default.fileExists(atPath: log.path) {
            FileManager.default.createFile(atPath: log.path, contents: nil, attributes: [.posixPermissions: 0o600])
        }
        let output = try FileHandle(forWritingTo: log)
        defer { try? output.close() }
        try output.seekToEnd()
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Int32, Error>) in
                process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
                do { try process.run() } catch {
                    process.terminationHandler = nil
                    continuation.resume(throwing: WorkerError.launchFailed(detail: "cannot start \(executable.path): \(error)"))
                    return
                }
                // Cancelled before it ran: the handler below found nothing to stop.
                if Task.isCancelled { process.terminate() }
            }
        } onCancel: {
            if process.isRunning { process.terminate() }
        }
    }

    /// Restarts of a job's local workers, in all.
    final class RestartBudget: @unchecked Sendable {
        private let lock = NSLock()
        private var left: Int
        init(limit: Int) { left = limit }
        func take() -> Bool { lock.withLock { guard left > 0 else { return false }; left -= 1; return true } }
    }

    /// The last lines of a worker's log (why it failed, when it wrote no summary).
    static func tail(of log: URL) -> String {
        guard let data = FileManager.default.contents(atPath: log.path) else { return "no log" }
        let text = String(decoding: data.suffix(1500), as: UTF8.self)
        return text.split(separator: "\n").suffix(4).joined(separator: " | ")
    }
}
