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
    struct Totals {
        var bytesSent: UInt64 = 0
        var bytesReceived: UInt64 = 0
        var elementsProcessed = 0
        var relaunches = 0
    }

    let configuration: NodeConfiguration
    let settings: WorkerSettings
    let plan: PSIWorkerPlan
    let logger: Logger
    let audit: AuditLog

    /// Runs the workers until `checkpoints` holds all `bucketCount` buckets; `progress` gets the buckets done.
    func run(checkpoints: SQLiteBucketCheckpoints, bucketCount: Int, progress: @escaping @Sendable (Int) -> Void) async throws -> Totals {
        try plan.write(in: configuration.jobsDirectory)
        for i in 0..<plan.workerCount { try? FileManager.default.removeItem(at: PSIWorkerSummary.url(jobID: plan.jobID, index: i, in: configuration.jobsDirectory)) }
        try audit.append(event: "job.workers", jobID: plan.jobID, details: [
            "workers": .int(plan.workerCount), "buckets": .int(bucketCount), "peer": .string(plan.peer),
            "launch": .string({ if case .command = settings.launch { return "command" } else { return "local" } }())])
        let watcher = Task {
            // The node's own heartbeat and the job's progress while its workers run.
            while !Task.isCancelled {
                checkpoints.heartbeat()
                if let done = try? checkpoints.completedCount() { progress(done) }
                try? await Task.sleep(for: .seconds(1))
            }
        }
        defer { watcher.cancel() }
        var totals: Totals
        switch settings.launch {
        case .local(let executable):
            totals = try await runLocal(executable: executable ?? Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0]))
        case .command(let command):
            totals = try await runCommand(command, checkpoints: checkpoints, bucketCount: bucketCount)
        }
        let done = try checkpoints.completedCount()
        progress(done)
        guard done == bucketCount else {
            throw WorkerError.incomplete(done: done, buckets: bucketCount)
        }
        if case .command = settings.launch {
            for i in 0..<plan.workerCount {
                guard let s = PSIWorkerSummary.read(jobID: plan.jobID, index: i, in: configuration.jobsDirectory) else { continue }
                totals.bytesSent += s.bytesSent
                totals.bytesReceived += s.bytesReceived
                totals.elementsProcessed += s.elementsProcessed
            }
        }
        return totals
    }

    /// Each worker a child process; waits for all of them, starting again one whose link dropped.
    private func runLocal(executable: URL) async throws -> Totals {
        let jobs = configuration.jobsDirectory, jobID = plan.jobID
        let limit = configuration.policy.maximumResumes
        return try await withThrowingTaskGroup(of: Totals.self) { group in
            for index in 0..<plan.workerCount {
                group.addTask {
                    var totals = Totals()
                    var attempt = 0
                    while true {
                        let status = try await Self.runProcess(executable: executable, arguments: [
                            "worker", "--config", configuration.sourcePath, "--job", jobID, "--index", String(index)],
                            log: PSIWorkerSummary.logURL(jobID: jobID, index: index, in: jobs))
                        let summary = PSIWorkerSummary.read(jobID: jobID, index: index, in: jobs)
                        totals.bytesSent += summary?.bytesSent ?? 0
                        totals.bytesReceived += summary?.bytesReceived ?? 0
                        totals.elementsProcessed += summary?.elementsProcessed ?? 0
                        if status == 0 { return totals }
                        let reason = summary?.error ?? Self.tail(of: PSIWorkerSummary.logURL(jobID: jobID, index: index, in: jobs))
                        guard status == PSIWorker.linkDroppedStatus, attempt < limit else {
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

    /// Runs the configured command (it starts the workers elsewhere and returns), then waits until every
    /// bucket is done, failing when none completes within twice the peer idle limit.
    private func runCommand(_ command: [String], checkpoints: SQLiteBucketCheckpoints, bucketCount: Int) async throws -> Totals {
        let log = configuration.jobsDirectory.appendingPathComponent("\(plan.jobID).worker-launch.log")
        let status = try await Self.runProcess(executable: URL(fileURLWithPath: command[0]), arguments: Array(command.dropFirst()), log: log,
                                               environment: ["MPCNODE_JOB_ID": plan.jobID, "MPCNODE_WORKER_COUNT": String(plan.workerCount),
                                                             "MPCNODE_CONFIG": configuration.sourcePath])
        guard status == 0 else {
            throw WorkerError.launchFailed(detail: "the launch command \(command[0]) exited with status \(status): \(Self.tail(of: log))")
        }
        let patience = max(60, 2 * configuration.peerIdleTimeoutSeconds)
        var last = -1, since = Date()
        while true {
            try Task.checkCancellation()
            let done = try checkpoints.completedCount()
            if done >= bucketCount { return Totals() }
            for i in 0..<plan.workerCount {
                if let s = PSIWorkerSummary.read(jobID: plan.jobID, index: i, in: configuration.jobsDirectory), s.status == .failed {
                    throw WorkerError.workerFailed(index: i, detail: s.error ?? "no reason given")
                }
            }
            if done != last { last = done; since = Date() }
            if Date().timeIntervalSince(since) > Double(patience) { throw WorkerError.noProgress(seconds: patience) }
            try await Task.sleep(for: .seconds(2))
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
                }
            }
        } onCancel: {
            if process.isRunning { process.terminate() }
        }
    }

    /// The last lines of a worker's log (why it failed, when it wrote no summary).
    static func tail(of log: URL) -> String {
        guard let data = FileManager.default.contents(atPath: log.path) else { return "no log" }
        let text = String(decoding: data.suffix(1500), as: UTF8.self)
        return text.split(separator: "\n").suffix(4).joined(separator: " | ")
    }
}
