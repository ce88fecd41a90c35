import Foundation
import MPCTransport
import MPCNode
import Logging
import MPCCrypto

/// `mpcnode bench union-sum` and `bench psi --parties N`: N banks and a regulator (the aggregator) in
/// this process, over loopback TLS, from SQLite to the stored report; and, in the same run, the cost
/// of every group operation the construction needs, so the ratio to the operation-count bound is
/// measured rather than assumed.
public struct SetOperationBenchmark {
    public struct Figures: Sendable {
        public var kind: SetOperation
        public var parties: Int
        public var size: Int
        public var identifiers: Int
        public var unionSize: Int64
        public var intersectionSize: Int64
        public var wallSeconds: Double
        public var bytesSentPerParty: [String: Int]
        public var aggregatorBytesReceived: Int
        public var peakMemoryBytes: Int
        public var costs: (mult: Double, hash: Double, seal: Double, open: Double)
        public var boundSeconds: Double
        public var cores: Int
        /// union-sum: whether the report's total equals the plain total of the generated values.
        public var totalCorrect: Bool?
        /// In buckets with a cut link: the aggregator's resumes and the buckets it had done at the first.
        public var resumes: Int = 0
        public var bucketsDoneAtResume: Int?
    }

    public let kind: SetOperation
    public let parties: Int
    public let size: Int
    public let group: BlindingGroup
    public let directory: URL
    /// Run in buckets: nil in one pass; `.some(nil)` the count from the sizes; `.some(n)` n buckets.
    public var buckets: Int??
    /// In buckets: the last bank (not the mixer) cuts its link to the mixer in this bucket (a dropped link
    /// the job resumes at).
    public var dropMixLinkInBucket: Int?

    public init(kind: SetOperation, parties: Int, size: Int, group: BlindingGroup, directory: URL) {
        self.kind = kind
        self.parties = parties
        self.size = size
        self.group = group
        self.directory = directory
    }

    /// Single-core cost of sealing a pseudonym for the aggregator and of opening it, in µs.
    public static func sealingCosts(samples: Int = 2000) throws -> (seal: Double, open: Double) {
        let keys = KeyAgreementKeyPair.generate()
        let message = [UInt8](repeating: 7, count: 32)
        var t = Date()
        let boxes = try (0..<samples).map { _ in try SealedBox.seal(message, to: keys.publicKey) }
        let seal = Date().timeIntervalSince(t) / Double(samples) * 1e6
        t = Date()
        for b in boxes { _ = try SealedBox.open(b, with: keys) }
        return (seal, Date().timeIntervalSince(t) / Double(samples) * 1e6)
    }

    /// Whether party `p` holds identifier `k` of the pool of 2·size: about half of the pool, independently per party.
    static func holds(_ p: Int, _ k: Int) -> Bool {
        var z = UInt64(k) &* 0x9E3779B97F4A7C15 &+ UInt64(p) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return (z ^ (z >> 31)) & 1 == 0
    }

    /// The value of identifier `k` at party `p`, in cents.
    static func cents(_ p: Int, _ k: Int) -> Int64 { Int64((k * 7919 + p * 104_729) % 1_000_000) }

    public func run(log: (String) -> Void) async throws -> Figures {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let cores = ProcessInfo.processInfo.activeProcessorCount
        log("measuring group operations (\(group.rawValue), one core)…")
        let g = try PSIBenchmark.groupOperationCosts(group)
        let s = try Self.sealingCosts()
        log(String(format: "  scalar multiplication %.1f µs, hash %.1f µs, seal %.1f µs, open %.1f µs", g.mult, g.hash, s.seal, s.open))
        let banks = (1...parties).map { String(format: "bank-%02d", $0) }
        let consortium = try LocalConsortium.create(in: directory, banks: banks, regulators: ["regulator"]) { _ in
            """
            policy:
              coordinators: [coordinator]
              datasets:
                customers:
                  columns: [id, balance]
                  protocols: [mpsi, mpsi-cardinality, union-sum]
                  result_recipients: [regulator, \(banks[0])]
                  min_set_size: 1
                  min_intersection: 1
                  min_cell_parties: 1
            """
        }
        log("writing and importing \(parties) × ~\(size) identifiers (each party: about half of a pool of \(2 * size))…")
        var identifiers = 0
        var expectedTotal: Int64 = 0
        for (p, bank) in banks.enumerated() {
            let csv = directory.appendingPathComponent("\(bank).csv")
            FileManager.default.createFile(atPath: csv.path, contents: nil)
            let handle = try FileHandle(forWritingTo: csv)
            handle.write(Data("id,balance\n".utf8))
            var chunk = ""
            for k in 0..<(2 * size) where Self.holds(p, k) {
                let c = Self.cents(p, k)
                expectedTotal += c
                identifiers += 1
                chunk += "ID\(k),\(c / 100).\(String(format: "%02d", c % 100))\n"
                if chunk.utf8.count > 1 << 20 { handle.write(Data(chunk.utf8)); chunk = "" }
            }
            handle.write(Data(chunk.utf8))
            try handle.close()
            try DatasetCatalog(store: NodeStore(path: try consortium.configuration(of: bank).databasePath))
                .importCSV(DatasetImportRequest(dataset: "customers", csvPath: csv.path, idColumn: "id"))
        }
        var logger = Logger(label: "bench")
        logger.logLevel = .warning
        // All parties run in this one process: ten banks snapshot and hash 10^6 identifiers each on the
        // process's job threads (`JobExecutor`), which the connections' handshakes and Hellos no longer
        // wait for; a party that is still busy when a peer dials it is waited for up to 600 s.
        var nodes: [String: NodeRuntime] = [:]
        for m in consortium.members {
            var faults: FaultHooks?
            if m.id == banks.last, let bucket = dropMixLinkInBucket {
                faults = FaultHooks()
                faults?.dropSetMixLinkInBucket = bucket
            }
            nodes[m.id] = try await consortium.start(m.id, logger: logger, sessionWaitTimeout: .seconds(600), faults: faults)
        }
        let coordinator = nodes["coordinator"]!
        log("running \(kind.rawValue) among \(parties) parties over loopback TLS (aggregator: regulator)…")
        let started = Date()
        let jobID: String
        do {
            var submission = JobSubmission(
                protocolName: kind.rawValue, parties: banks.map { .init(nodeID: $0, dataset: "customers", column: "id") },
                deliverTo: kind == .mpsi ? [banks[0]] : [], cardinalityOnly: false, group: group.rawValue,
                sets: .init(aggregator: "regulator", minIntersection: 1, valueColumn: kind.sumsValues ? "balance" : nil, decimals: 2, minCellParties: 1,
                            bucketed: buckets != nil))
            if let count = buckets { submission.buckets = count }
            jobID = try await coordinator.engine.submit(submission)
        } catch {
            for node in nodes.values { await node.stop() }
            throw error
        }
        let job = try await BenchmarkJobWait.final(coordinator, jobID: jobID, started: started, every: 15, log: log) {
            // A bank that has not yet checked the proposal (10^6 rows) has no job yet: 0.
            let steps = banks.map { (try? JobRepository(store: nodes[$0]!.store).view(jobID: jobID).progressDone) ?? 0 }
            return buckets == nil ? "parties' progress (%; ring to 80, mix to 90, sum to 100) \(steps)" : "parties' progress (%; buckets to 90, sum to 100) \(steps)"
        }
        let wall = Date().timeIntervalSince(started)
        guard job.state == .succeeded else {
            for node in nodes.values { await node.stop() }
            throw JobError.aborted(reason: job.reason ?? "job failed")
        }
        let report = try ReportRepository(store: nodes["regulator"]!.store).get(jobID)
        let regulatorJob = try JobRepository(store: nodes["regulator"]!.store).view(jobID: jobID)
        // What each bank sent, from its own record once it has ended there (the coordinator's copy arrives
        // with the bank's outcome report, which can come after the coordinator's final state).
        var sentPerBank: [String: Int] = [:]
        for bank in banks {
            let repository = JobRepository(store: nodes[bank]!.store)
            for _ in 0..<600 where (try? repository.view(jobID: jobID).state.isFinal) != true {
                try await Task.sleep(for: .milliseconds(100))
            }
            sentPerBank[bank] = (try? repository.view(jobID: jobID).bytesSent) ?? 0
        }
        let resumed = try AuditLog(store: nodes["regulator"]!.store).records(jobID: jobID).filter { $0.event == "job.resumed" }
        let doneAtResume = resumed.first.flatMap { r -> Int? in
            guard let data = r.details.data(using: .utf8), let d = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
            return d["buckets_done"] as? Int
        }
        for node in nodes.values { await node.stop() }
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let n = Double(identifiers)
        // Every identifier: one hash, P + 1 scalar multiplications (mask, the other P − 1 keys, finish),
        // one sealing at its owner and one opening at the aggregator.
        let cpu = (n * g.hash + n * Double(parties + 1) * g.mult + n * (s.seal + s.open)) / 1e6
        var correct: Bool?
        if kind == .unionSum {
            correct = report.cells.first { $0.group == "total over the union" }?.values["sum(balance)"]
                == ReportRepository.decimalText(expectedTotal, decimals: 2)
        }
        return Figures(kind: kind, parties: parties, size: size, identifiers: identifiers,
                       unionSize: report.cells.first { $0.group.hasPrefix("distinct identifiers") }?.records ?? -1,
                       intersectionSize: report.cells.first { $0.group.contains("(intersection)") }?.records ?? -1,
                       wallSeconds: wall,
                       bytesSentPerParty: sentPerBank,
                       aggregatorBytesReceived: regulatorJob.bytesReceived ?? 0,
                       peakMemoryBytes: Int(usage.ru_maxrss) * 1024, costs: (g.mult, g.hash, s.seal, s.open),
                       boundSeconds: cpu / Double(cores), cores: cores, totalCorrect: correct,
                       resumes: resumed.count, bucketsDoneAtResume: doneAtResume)
    }
}
