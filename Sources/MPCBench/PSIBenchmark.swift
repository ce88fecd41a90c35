import Foundation
import MPCNode
import Logging
import MPCCrypto
import MPCProtocols

/// `mpcnode bench psi`: two banks and a coordinator in this process, over loopback TLS, from SQLite
/// to the stored result; and, in the same run, the machine's own cost of the group operations, so the
/// ratio to the operation-count bound is measured rather than assumed.
public struct PSIBenchmark {
    public struct Figures: Sendable {
        public var size: Int
        public var group: BlindingGroup
        public var psiProtocol: PSIProtocol
        public var importSeconds: Double
        public var wallSeconds: Double
        public var intersection: Int
        public var bytesSentPerItem: Double
        public var peakMemoryBytes: Int
        public var scalarMultMicroseconds: Double
        public var hashToGroupMicroseconds: Double
        public var boundSeconds: Double
        public var cores: Int
        /// From bank-a's `job.succeeded` record: buckets, resumes, elements processed over every attempt
        /// and in the last one, and what a fresh run processes (buckets × both capacities).
        public var buckets: Int
        public var resumes: Int
        public var elementsProcessed: Int
        public var elementsProcessedLastAttempt: Int
        public var freshRunElements: Int
        /// Worker processes per bank (1: none) and the peak memory of the largest of them.
        public var workers = 1
        public var peakWorkerMemoryBytes = 0
    }

    public let size: Int
    public let group: BlindingGroup
    public let directory: URL
    /// Buckets asked for (nil: one per 2^20 identifiers).
    public var buckets: Int?
    /// bank-a cuts its link after recording this bucket (the job resumes at the next).
    public var dropLinkAfterBucket: Int?
    /// The PSI rounds to run, one job each, in this order, on the same imported sets.
    public var protocols: [PSIProtocol] = [.ecdh]
    /// Worker processes per bank (`mpcnode worker`, this program; nil: the nodes run the buckets).
    public var workers: Int?

    public init(size: Int, group: BlindingGroup, directory: URL, buckets: Int? = nil, dropLinkAfterBucket: Int? = nil) {
        self.size = size
        self.group = group
        self.directory = directory
        self.buckets = buckets
        self.dropLinkAfterBucket = dropLinkAfterBucket
    }

    /// Single-core cost of one scalar multiplication and one hash onto the group, in µs: `hash` as the
    /// protocols hash (X25519: slices of 64 sharing one inversion), `singleHash` one identifier alone.
    public static func groupOperationCosts(_ group: BlindingGroup, samples: Int = 3000) throws -> (mult: Double, hash: Double, singleHash: Double) {
        let cipher = CommutativeCipher.random(group: group, domain: "bench")
        let ids = (0..<samples).map { Array("+4479\($0 * 7919)".utf8) }
        var t = Date()
        let points = ids.map { GroupHash.hash($0, domain: Array("bench".utf8), group: group) }
        let single = Date().timeIntervalSince(t) / Double(samples) * 1e6
        var hash = single
        if group == .x25519 {
            let hasher = Curve25519HashToCurve.Hasher(dst: GroupHash.x25519DSTPrefix + Array("bench".utf8))
            t = Date()
            for start in stride(from: 0, to: samples, by: 64) { _ = hasher.elements(batch: Array(ids[start ..< min(start + 64, samples)])) }
            hash = Date().timeIntervalSince(t) / Double(samples) * 1e6
        }
        t = Date()
        for p in points { _ = try cipher.blind(p) }
        let mult = Date().timeIntervalSince(t) / Double(samples) * 1e6
        return (mult, hash, single)
    }

    public func run(log: (String) -> Void) async throws -> [Figures] {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let cores = ProcessInfo.processInfo.activeProcessorCount
        log("measuring group operations (\(group.rawValue), one core)…")
        let costs = try Self.groupOperationCosts(group)
        log(String(format: "  scalar multiplication %.1f µs, hash to group %.1f µs", costs.mult, costs.hash))

        let workerExecutable = (workers ?? 1) > 1 ? Bundle.main.executableURL : nil
        let consortium = try LocalConsortium.create(in: directory, banks: ["bank-a", "bank-b"], policy: { _ in
            """
            policy:
              coordinators: [coordinator]
              datasets:
                ids:
                  columns: [id]
                  protocols: [psi, psi-cardinality]
                  result_recipients: [bank-a, bank-b]
                  min_set_size: 1
            """
        }, workerExecutable: workerExecutable)
        // Two sets of `size` ids with half in common.
        log("writing and importing 2 × \(size) identifiers…")
        var importSeconds = 0.0
        for (bank, offset) in [("bank-a", 0), ("bank-b", size / 2)] {
            let csv = directory.appendingPathComponent("\(bank).csv")
            FileManager.default.createFile(atPath: csv.path, contents: nil)
            let handle = try FileHandle(forWritingTo: csv)
            handle.write(Data("id\n".utf8))
            var chunk = ""
            for i in offset..<(offset + size) {
                chunk += "ID\(String(i, radix: 10))\n"
                if chunk.utf8.count > 1 << 20 { handle.write(Data(chunk.utf8)); chunk = "" }
            }
            handle.write(Data(chunk.utf8))
            try handle.close()
            let configuration = try consortium.configuration(of: bank)
            let started = Date()
            try DatasetCatalog(store: NodeStore(path: configuration.databasePath))
                .importCSV(DatasetImportRequest(dataset: "ids", csvPath: csv.path, idColumn: "id"))
            importSeconds += Date().timeIntervalSince(started)
        }
        var logger = Logger(label: "bench")
        logger.logLevel = .warning
        var running: [String: NodeRuntime] = [:]
        for id in ["coordinator", "bank-a", "bank-b"] {
            let faults = id == "bank-a" ? dropLinkAfterBucket.map { FaultHooks(dropPSILinkAfterBucket: $0) } : nil
            running[id] = try await consortium.start(id, logger: logger, faults: faults)
        }
        let nodes = running
        var figures: [Figures] = []
        do {
            for p in protocols {
                figures.append(try await runJob(p, nodes: nodes, costs: costs, importSeconds: importSeconds, cores: cores, log: log))
            }
        } catch {
            for node in nodes.values { await node.stop() }
            throw error
        }
        for node in nodes.values { await node.stop() }
        return figures
    }

    private func runJob(_ psiProtocol: PSIProtocol, nodes: [String: NodeRuntime], costs: (mult: Double, hash: Double, singleHash: Double),
                        importSeconds: Double, cores: Int, log: (String) -> Void) async throws -> Figures {
        let coordinator = nodes["coordinator"]!
        log("running PSI (\(psiProtocol.rawValue)) \(size) × \(size) over loopback TLS…")
        let started = Date()
        var submission = JobSubmission(
            protocolName: JobKindName.psi.rawValue,
            parties: [.init(nodeID: "bank-a", dataset: "ids", column: "id"), .init(nodeID: "bank-b", dataset: "ids", column: "id")],
            deliverTo: ["bank-a"], cardinalityOnly: false, group: group.rawValue)
        submission.buckets = buckets
        submission.psiProtocol = psiProtocol.rawValue
        submission.workers = workers
        let jobID = try await coordinator.engine.submit(submission)
        let job = try await BenchmarkJobWait.final(coordinator, jobID: jobID, started: started, every: 5, log: log) {
            // Not there until bank-a has checked the proposal (counting a large dataset takes a while).
            guard let a = try? JobRepository(store: nodes["bank-a"]!.store).view(jobID: jobID) else { return "bank-a checking the proposal" }
            return "bank-a \(a.progressDone ?? 0)/\(a.progressTotal ?? 0)"
        }
        // The coordinator turns succeeded once both outcomes arrived; the result is stored by then.
        let wall = Date().timeIntervalSince(started)
        guard job.state == .succeeded else { throw JobError.aborted(reason: job.reason ?? "job failed") }
        let result = try JobRepository(store: nodes["bank-a"]!.store).result(jobID: jobID, limit: 0)
        let details = try AuditLog(store: nodes["bank-a"]!.store).records(jobID: jobID).first { $0.event == "job.succeeded" }?.details ?? "{}"
        let d = (try? JSONSerialization.jsonObject(with: Data(details.utf8))) as? [String: Any] ?? [:]
        let number = { (key: String) in (d[key] as? NSNumber)?.intValue ?? 0 }
        let capacity = number("bucket_capacity"), bucketCount = number("buckets")
        let sent = job.parties.reduce(0) { $0 + ($1.bytesSent ?? 0) }
        let items = 2 * size
        // Each party hashes its own set and multiplies twice per element (its own set, the peer's).
        let cpuSeconds = (Double(items) * costs.hash + 2 * Double(items) * costs.mult) / 1e6
        var usage = rusage(), children = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        getrusage(RUSAGE_CHILDREN.rawValue, &children)
        var figures = Figures(size: size, group: group, psiProtocol: psiProtocol, importSeconds: importSeconds, wallSeconds: wall,
                       intersection: result.cardinality, bytesSentPerItem: Double(sent) / Double(items),
                       peakMemoryBytes: Int(usage.ru_maxrss) * 1024, scalarMultMicroseconds: costs.mult,
                       hashToGroupMicroseconds: costs.hash, boundSeconds: cpuSeconds / Double(cores), cores: cores,
                       buckets: bucketCount, resumes: number("resumes"), elementsProcessed: number("elements_processed"),
                       elementsProcessedLastAttempt: number("elements_processed_last_attempt"),
                       freshRunElements: bucketCount * 2 * capacity)
        figures.workers = max(1, workers ?? 1)
        figures.peakWorkerMemoryBytes = Int(children.ru_maxrss) * 1024
        return figures
    }
}
