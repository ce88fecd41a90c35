import ArgumentParser
import Foundation
import Logging
import MPCNode

struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run one worker of a PSI job: its range of the job's buckets, with the peer's worker of the same index.",
        discussion: """
            A node started with `workers: launch: local` runs its workers itself; under Kubernetes, the pods of an \
            Indexed Job run `mpcnode worker --config … --job $MPCNODE_JOB_ID --index $JOB_COMPLETION_INDEX` \
            (Deploy/kubernetes/psi-workers/). The worker reads its node's configuration (workers:, tls.ca_certificate, \
            data_dir) and the plan its node wrote for the job; it uses the worker certificate (role worker), never the \
            node's. Exit status 0: its buckets are done; 75: its link dropped (its node starts it again); 1: failed.
            """)

    @OptionGroup var options: ConfigOption
    @Option(help: "The job whose buckets to run.") var job: String
    @Option(help: "This worker's index, 0 … workers-1 (default: JOB_COMPLETION_INDEX, as Kubernetes sets it).") var index: Int?
    @Option(help: "The node process that started this worker (set by the node): the worker stops when it is gone.") var parentPid: Int32?
    @Option(help: "Log format: json or text.") var logFormat: String = "json"
    @Option(help: "Log level: trace, debug, info, notice, warning, error.") var logLevel: String = "info"

    func run() async throws {
        ServeCommand.bootstrapLogging(format: logFormat, level: logLevel)
        guard let index = index ?? ProcessInfo.processInfo.environment["JOB_COMPLETION_INDEX"].flatMap(Int.init), index >= 0 else {
            throw CLIFailure("give --index (or run as a pod of an Indexed Job, which sets JOB_COMPLETION_INDEX)")
        }
        let status = await PSIWorker.run(configurationPath: options.path, jobID: job, index: index, parentPID: parentPid,
                                         logger: Logger(label: "mpcnode.worker"),
                                         faults: Self.faultHooks())
        if status != 0 { throw ExitCode(status) }
    }
}

extension WorkerCommand {
    /// End-to-end tests cut a worker's link with `MPCNODE_FAULT_WORKER_DROP_LINK=<node>:<bucket>` (the
    /// worker of that node cuts it right after recording that bucket); only a debug build reads it.
    static func faultHooks() -> @Sendable (String) -> FaultHooks? {
        #if DEBUG
        if let text = ProcessInfo.processInfo.environment["MPCNODE_FAULT_WORKER_DROP_LINK"] {
            let parts = text.split(separator: ":")
            if parts.count == 2, let bucket = Int(parts[1]) {
                let node = String(parts[0])
                return { $0 == node ? FaultHooks(dropPSILinkAfterBucket: bucket) : nil }
            }
        }
        #endif
        return { _ in nil }
    }
}
