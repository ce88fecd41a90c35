import Foundation

/// What a node tells its workers about one PSI job (`jobs/<job>.workers.json`, mode 0600, written by the
/// node once it agreed on the job's bucket key with its peer; the key itself stays sealed in the job's
/// scratch database). A worker takes its peer, its side and its limits from here and from its node's
/// configuration, never from the wire.
struct PSIWorkerPlan: Codable, Equatable {
    var jobID: String
    /// The other bank, whose worker of the same index this node's worker pairs with.
    var peer: String
    /// Whether this node's workers dial (the job's first party dials, as its node did).
    var dials: Bool
    var workerCount: Int
    var psiProtocol: String
    var group: String
    var selfReceivesOutput: Bool
    var peerReceivesOutput: Bool
    var minimumPeerSetSize: Int
    var maximumPeerSetSize: Int

    static func url(jobID: String, in jobsDirectory: URL) -> URL {
        jobsDirectory.appendingPathComponent("\(jobID).workers.json")
    }

    func write(in jobsDirectory: URL) throws {
        let data = try JSONEncoder().encode(self)
        let url = Self.url(jobID: jobID, in: jobsDirectory)
        try? FileManager.default.removeItem(at: url)
        guard FileManager.default.createFile(atPath: url.path, contents: data, attributes: [.posixPermissions: 0o600]) else {
            throw JobError.fault("cannot write the workers' plan \(url.path)")
        }
    }

    static func read(jobID: String, in jobsDirectory: URL) throws -> PSIWorkerPlan {
        let url = url(jobID: jobID, in: jobsDirectory)
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw WorkerError.noPlan(jobID: jobID, path: url.path)
        }
        let plan = try JSONDecoder().decode(PSIWorkerPlan.self, from: data)
        guard plan.jobID == jobID else { throw WorkerError.noPlan(jobID: jobID, path: url.path) }
        return plan
    }
}

/// How one worker's run ended (`jobs/<job>.worker-<i>.json`, written by the worker, read by its node).
struct PSIWorkerSummary: Codable, Equatable {
    enum Status: String, Codable { case done, linkDropped = "link-dropped", failed }
    var index: Int
    var status: Status
    var error: String?
    var firstBucket: Int
    var bucketsRun: Int
    var bytesSent: UInt64
    var bytesReceived: UInt64
    var elementsProcessed: Int

    static func url(jobID: String, index: Int, in jobsDirectory: URL) -> URL {
        jobsDirectory.appendingPathComponent("\(jobID).worker-\(index).json")
    }

    static func logURL(jobID: String, index: Int, in jobsDirectory: URL) -> URL {
        jobsDirectory.appendingPathComponent("\(jobID).worker-\(index).log")
    }

    func write(jobID: String, in jobsDirectory: URL) throws {
        let url = Self.url(jobID: jobID, index: index, in: jobsDirectory)
        let temporary = url.appendingPathExtension("tmp")
        try? FileManager.default.removeItem(at: temporary)
        guard FileManager.default.createFile(atPath: temporary.path, contents: try JSONEncoder().encode(self), attributes: [.posixPermissions: 0o600]),
              rename(temporary.path, url.path) == 0 else {
            throw JobError.fault("cannot write the worker's summary \(url.path): errno \(errno)")
        }
    }

    static func read(jobID: String, index: Int, in jobsDirectory: URL) -> PSIWorkerSummary? {
        guard let data = FileManager.default.contents(atPath: url(jobID: jobID, index: index, in: jobsDirectory).path) else { return nil }
        return try? JSONDecoder().decode(PSIWorkerSummary.self, from: data)
    }

    /// Removes every file of a job's workers (the plan, summaries, logs).
    static func removeAll(jobID: String, in jobsDirectory: URL) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: jobsDirectory.path) else { return }
        for name in names where name == "\(jobID).workers.json" || name.hasPrefix("\(jobID).worker-") {
            try? FileManager.default.removeItem(at: jobsDirectory.appendingPathComponent(name))
        }
    }
}

/// Why a worker cannot run, or why its job's workers failed: what to do next.
public enum WorkerError: Error, CustomStringConvertible {
    case notConfigured(path: String)
    case noPlan(jobID: String, path: String)
    case badIndex(index: Int, count: Int)
    case notAWorkerCertificate(path: String, role: String)
    case noPeerWorkers(peer: String)
    case workerFailed(index: Int, detail: String)
    case launchFailed(detail: String)
    case incomplete(done: Int, buckets: Int)
    case noProgress(seconds: Int)
    case rangeTaken(index: Int, seconds: Int)
    case tooManyRestarts(restarts: Int, limit: Int)
    case jobEnded(jobID: String)

    public var description: String {
        switch self {
        case .notConfigured(let p): return "\(p) has no workers: section (a worker certificate, where workers listen, the peers' workers); see Docs/decisions/0009-sharded-psi-workers.md"
        case .noPlan(let j, let p): return "no plan for job \(j) at \(p): a worker runs only a job its node has agreed and handed to its workers"
        case .badIndex(let i, let n): return "worker index \(i) is not one of the job's \(n) workers (0…\(n - 1))"
        case .notAWorkerCertificate(let p, let r): return "\(p) has role \(r); a worker needs a certificate of role worker (`mpcnode node init --role worker`, then `mpcnode ca issue --role worker`)"
        case .noPeerWorkers(let p): return "workers.peers has no address for \(p)'s workers"
        case .workerFailed(let i, let d): return "worker \(i) failed: \(d)"
        case .launchFailed(let d): return "the workers could not be started: \(d)"
        case .incomplete(let d, let b): return "the workers ended with \(d) of \(b) buckets done (see their logs in the node's jobs folder while the job runs)"
        case .rangeTaken(let i, let s): return "worker range \(i) is held by another live process (renewed \(s) s ago): one process a range, so a bucket is never answered twice"
        case .tooManyRestarts(let r, let l): return "the job's workers were started again \(r) times, more than this node's policy allows (max_resumes: \(l))"
        case .jobEnded(let j): return "job \(j) ended at this node (its plan is gone, or the node that started this worker stopped): this worker stops"
        case .noProgress(let s): return "the workers completed no bucket for \(s) s (are they running? see the launch command's output and their logs)"
        }
    }
}
