import Foundation
import MPCCrypto
import MPCProtocols
import MPCTransport
import MPCWire

/// `psi`: two-party private set intersection by commutative blinding (Protocols/psi.md) or, with
/// `--protocol kkrt`, the OPRF by OT extension (Protocols/psi-oprf.md), in buckets
/// (Protocols/psi-buckets.md): one bucket's elements in memory at a time, every completed bucket
/// checkpointed in the job's scratch database, and a dropped link resumed at the first bucket either
/// side lacks, up to the node's `max_resumes`. Delivers the intersection, or only its size
/// (`cardinality_only`, policy use `psi-cardinality`, one bucket), to the parties in `deliver_to`. The
/// first party dials; the other claims its session.
struct PSIKind: JobKind {
    let name = JobKindName.psi.rawValue

    /// Its spec is the (empty) `PsiSpec`, which a coordinator may leave out.
    func describes(_ spec: Mpcnode_V1_JobSpec) -> Bool {
        guard spec.protocol == name else { return false }
        if case .psi? = spec.kind { return true }
        return spec.kind == nil
    }

    func checkShape(_ spec: Mpcnode_V1_JobSpec) throws {
        try checkCommonShape(spec)
        let parties = spec.parties.map(\.nodeID)
        guard parties.count == 2 else { throw JobError.malformedSpec("psi is between two parties, the spec has \(parties.count)") }
        guard !spec.deliverTo.isEmpty, spec.deliverTo.allSatisfy(parties.contains) else {
            throw JobError.malformedSpec("psi delivers to one or both of its parties, the spec names \(spec.deliverTo.isEmpty ? "no recipient" : spec.deliverTo.joined(separator: ", "))")
        }
        guard BlindingGroup(rawValue: spec.group) != nil else { throw JobError.malformedSpec("unknown group \(JobError.shown(spec.group))") }
        guard spec.psi.buckets <= 65_536 else { throw JobError.malformedSpec("\(spec.psi.buckets) buckets (at most 65536)") }
        guard let psiProtocol = PSIProtocol(wireName: spec.psi.protocol) else {
            throw JobError.malformedSpec("unknown PSI protocol \(JobError.shown(spec.psi.protocol))")
        }
        guard !(psiProtocol == .kkrt && spec.cardinalityOnly) else {
            throw JobError.malformedSpec("a cardinality-only PSI runs with ecdh (the KKRT receiver learns which elements match)")
        }
        guard spec.psi.workers <= 256, !(spec.psi.workers > 1 && spec.cardinalityOnly) else {
            throw JobError.malformedSpec("\(spec.psi.workers) workers\(spec.cardinalityOnly ? " for a cardinality-only PSI (one bucket, no workers)" : " (at most 256)")")
        }
    }

    func prepare(_ submission: JobSubmission, into spec: inout Mpcnode_V1_JobSpec, context: SubmissionContext) throws {
        guard submission.parties.count == 2 else {
            throw JobError.invalidSubmission("two-party PSI needs exactly two --party options, got \(submission.parties.count)")
        }
        guard !submission.deliverTo.isEmpty else { throw JobError.invalidSubmission("name at least one recipient with --deliver-to") }
        let partyIDs = submission.parties.map(\.nodeID)
        for r in submission.deliverTo where !partyIDs.contains(r) {
            throw JobError.invalidSubmission("recipient \(r) is not a party of the job (PSI delivers to its parties)")
        }
        spec.group = try Self.group(named: submission.group).rawValue
        spec.psi = Mpcnode_V1_PsiSpec()
        if let b = submission.buckets {
            guard (1...65_536).contains(b) else { throw JobError.invalidSubmission("--buckets must lie in 1…65536, got \(b)") }
            guard !(submission.cardinalityOnly && b > 1) else {
                throw JobError.invalidSubmission("a cardinality-only PSI runs in one bucket (per-bucket counts would tell more than the size)")
            }
            spec.psi.buckets = UInt32(b)
        }
        spec.psi.protocol = try Self.psiProtocol(named: submission.psiProtocol, cardinalityOnly: submission.cardinalityOnly).rawValue
        if let w = submission.workers {
            guard (1...256).contains(w) else { throw JobError.invalidSubmission("--workers must lie in 1…256, got \(w)") }
            guard !(submission.cardinalityOnly && w > 1) else {
                throw JobError.invalidSubmission("a cardinality-only PSI runs in one bucket, so without workers")
            }
            if let b = submission.buckets, b < w {
                throw JobError.invalidSubmission("--workers \(w) needs at least as many buckets; --buckets is \(b)")
            }
            spec.psi.workers = UInt32(w)
        }
    }

    /// The PSI round a submission names (nil: ECDH), or why not.
    static func psiProtocol(named name: String?, cardinalityOnly: Bool) throws -> PSIProtocol {
        guard let name, !name.isEmpty else { return .ecdh }
        guard let p = PSIProtocol(rawValue: name) else {
            if name == "vole" {
                throw JobError.invalidSubmission("--protocol vole (RR22, OKVS and silent VOLE) is not built yet; use kkrt (the OPRF by OT extension, Protocols/psi-oprf.md) or ecdh")
            }
            throw JobError.invalidSubmission("unknown PSI protocol \(JobError.shown(name)) (available: \(PSIProtocol.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        guard !(p == .kkrt && cardinalityOnly) else {
            throw JobError.invalidSubmission("--cardinality-only runs with --protocol ecdh: the KKRT receiver learns which elements match, more than the size")
        }
        return p
    }

    /// The blinding group a submission names, or what to choose instead.
    static func group(named name: String) throws -> BlindingGroup {
        guard let g = BlindingGroup(rawValue: name) else {
            throw JobError.invalidSubmission("unknown group '\(name)' (available: \(BlindingGroup.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        return g
    }

    func policyUse(_ spec: Mpcnode_V1_JobSpec) -> JobProtocolUse { spec.cardinalityOnly ? .psiCardinality : .psi }

    func checkPolicy(_ spec: Mpcnode_V1_JobSpec, mine: Mpcnode_V1_PartyInput, rule: DatasetPolicy, policy: NodePolicy,
                     nodeID: String) -> PolicyDecision {
        if Int(spec.psi.buckets) > policy.maximumBuckets {
            return .refused(reason: "\(spec.psi.buckets) buckets asked for; this node's policy allows at most \(policy.maximumBuckets) (max_buckets)")
        }
        let psiProtocol = PSIProtocol(wireName: spec.psi.protocol) ?? .ecdh
        if !policy.psiProtocols.contains(psiProtocol) {
            return .refused(reason: "PSI protocol \(psiProtocol.rawValue) asked for; this node's policy allows \(policy.psiProtocols.map(\.rawValue).sorted().joined(separator: ", ")) (psi_protocols)")
        }
        if spec.psi.workers > 1 {
            if Int(spec.psi.workers) > policy.maximumWorkers {
                return .refused(reason: "\(spec.psi.workers) workers asked for; this node's policy allows at most \(policy.maximumWorkers) (max_workers)")
            }
            if let other = spec.parties.first(where: { $0.nodeID != nodeID })?.nodeID, !policy.workerPeers.contains(other) {
                return .refused(reason: "\(spec.psi.workers) workers asked for; this node has no workers configured for \(other) (workers.peers in its configuration)")
            }
        }
        return identifierColumnAllowed(mine, rule: rule)
    }

    func whyNotResumable(_ spec: Mpcnode_V1_JobSpec, configuration: NodeConfiguration) -> String? {
        if configuration.policy.maximumResumes == 0 { return "this node's policy allows no resume (max_resumes: 0)" }
        return SQLiteBucketCheckpoints.whyNotResumable(jobID: spec.jobID, scratchDirectory: configuration.jobsDirectory,
                                                aliveWithin: Double(configuration.peerIdleTimeoutSeconds))
    }

    func run(_ context: RoleContext) async throws -> RoleCompletion {
        let jobID = context.jobID, spec = context.spec, nodeID = context.nodeID
        let (mineIndex, mine) = try context.myInput()
        let otherIndex = mineIndex == 0 ? 1 : 0
        let other = spec.parties[otherIndex]
        let s: SQLiteIdentifierSource
        if context.resuming {
            s = try context.reopenedSnapshot()
        } else {
            s = try context.snapshot(dataset: mine.dataset, column: mine.column)
            try context.recordStarted(["peer": .string(other.nodeID), "input_rows": .int(s.count)])
        }
        context.logger.info("job running", metadata: ["job": "\(jobID)", "peer": "\(other.nodeID)", "input_rows": "\(s.count)"])
        guard let group = BlindingGroup(rawValue: spec.group) else { throw JobError.fault("the job names the unknown group \(JobError.shown(spec.group))") }
        var psi = PSIParty.Configuration(
            jobID: jobID, group: group, selfReceivesOutput: spec.deliverTo.contains(nodeID),
            peerReceivesOutput: spec.deliverTo.contains(other.nodeID), cardinalityOnly: spec.cardinalityOnly)
        let peerSizes = try context.peerSetSizes(dataset: mine.dataset, ownSize: s.count)
        psi.minimumPeerSetSize = peerSizes.lowerBound
        psi.maximumPeerSetSize = peerSizes.upperBound
        let policy = context.configuration.policy
        var config = BucketedPSIParty.Configuration(psi: psi, isFirstParty: mineIndex < otherIndex,
                                                    requestedBuckets: spec.psi.buckets > 0 ? Int(spec.psi.buckets) : nil,
                                                    maximumBuckets: policy.maximumBuckets)
        guard let psiProtocol = PSIProtocol(wireName: spec.psi.protocol), policy.psiProtocols.contains(psiProtocol) else {
            throw JobError.fault("the job names PSI protocol \(JobError.shown(spec.psi.protocol)), which this node's policy does not allow")
        }
        config.psiProtocol = psiProtocol
        let workers = max(1, Int(spec.psi.workers))
        var workerSettings: WorkerSettings?
        if workers > 1 {
            // The node agrees on the key and buckets both sets; its workers run the buckets.
            guard let settings = context.configuration.workers, settings.peers[other.nodeID] != nil, workers <= policy.maximumWorkers else {
                throw JobError.fault("the job asks for \(workers) workers, which this node's configuration (workers:) and policy (max_workers) do not provide")
            }
            workerSettings = settings
            config.workerCount = workers
            config.scope = .agreementOnly
        }
        let checkpoints = try SQLiteBucketCheckpoints(source: s, sealKey: JobSealKey.load(dataDirectory: context.configuration.dataDirectory))
        let progress = context.progressRecorder()
        let processed = ProcessedElements()
        let onProgress: @Sendable (BucketedPSIParty.Progress) -> Void = { p in
            progress.record(done: p.done, total: p.total)
            processed.record(p.processedThisRun)
            checkpoints.heartbeat()
        }

        var bytesSent: UInt64 = 0, bytesReceived: UInt64 = 0, resumes = 0, waits = 0
        let lostTraffic = AttemptTraffic()
        // Since when the peer is away: a peer unreachable for longer than the idle limit is gone.
        var droppedAt: Date? = nil
        let window = Double(context.configuration.peerIdleTimeoutSeconds)
        if context.resuming {
            resumes = 1
            droppedAt = Date()
            let from = (try? await checkpoints.load())?.firstIncomplete ?? 0
            try context.audit.append(event: "job.resumed", jobID: jobID, details: [
                "attempt": .int(resumes), "from_bucket": .int(from), "buckets_done": .int((try? checkpoints.completedCount()) ?? 0),
                "peer": .string(other.nodeID), "after": .string("restart")])
        }
        var report: BucketedPSIParty.Report
        if workerSettings != nil, context.resuming, let saved = try await checkpoints.load() {
            // Restarted while its workers ran: the key and the buckets were agreed before (the peer's node
            // is following its own workers, not in an agreement); the workers check them with each other.
            report = .agreed(saved, ownSetSize: s.count)
        } else {
            while true {
                do {
                    report = try await attempt(context, config: config, source: s, checkpoints: checkpoints, peer: other.nodeID,
                                               dials: mineIndex < otherIndex, progress: onProgress, lostTraffic: lostTraffic)
                    bytesSent += report.bytesSent + lostTraffic.sent
                    bytesReceived += report.bytesReceived + lostTraffic.received
                    processed.endAttempt()
                    break
                } catch where Self.isDroppedLink(error) && !Task.isCancelled {
                    let lost = processed.endAttempt()
                    if Self.isUnreachable(error) {
                        // No session this time (the peer restarts, or its link is down): try again while within
                        // the idle limit since the link dropped; a first connection that fails fails the job.
                        guard let since = droppedAt, Date().timeIntervalSince(since) < window else { throw error }
                        waits += 1
                        context.logger.notice("peer unreachable; trying again", metadata: [
                            "job": "\(jobID)", "peer": "\(other.nodeID)", "error": "\(error)"])
                        try await Task.sleep(for: .seconds(min(10, 1 << min(waits, 4))))
                        continue
                    }
                    guard resumes < policy.maximumResumes else { throw error }
                    resumes += 1
                    waits = 0
                    droppedAt = Date()
                    let from = (try? await checkpoints.load())?.firstIncomplete ?? 0
                    let done = (try? checkpoints.completedCount()) ?? 0
                    try context.audit.append(event: "job.resumed", jobID: jobID, details: [
                        "attempt": .int(resumes), "from_bucket": .int(from), "buckets_done": .int(done), "peer": .string(other.nodeID),
                        "elements_processed": .int(lost),
                        "reason": .string(PeerText.cut("\(error)", limit: 300))])
                    context.logger.warning("link to the peer lost; resuming", metadata: [
                        "job": "\(jobID)", "peer": "\(other.nodeID)", "attempt": "\(resumes)", "from_bucket": "\(from)", "error": "\(error)"])
                    try await Task.sleep(for: .seconds(1))
                }
            }
        }
        var workerTotals = PSIWorkerPool.Totals()
        if let settings = workerSettings {
            let plan = PSIWorkerPlan(jobID: jobID, peer: other.nodeID, dials: mineIndex < otherIndex, workerCount: workers,
                                     psiProtocol: psiProtocol.rawValue, group: group.rawValue,
                                     selfReceivesOutput: psi.selfReceivesOutput, peerReceivesOutput: psi.peerReceivesOutput,
                                     minimumPeerSetSize: psi.minimumPeerSetSize, maximumPeerSetSize: psi.maximumPeerSetSize)
            let jobs = context.configuration.jobsDirectory
            defer { PSIWorkerSummary.removeAll(jobID: jobID, in: jobs) }
            let perBucket = report.capacity + report.peerCapacity, buckets = report.bucketCount
            context.logger.info("handing the buckets to workers", metadata: ["job": "\(jobID)", "workers": "\(workers)", "buckets": "\(buckets)"])
            workerTotals = try await PSIWorkerPool(configuration: context.configuration, settings: settings, plan: plan,
                                                   logger: context.logger, audit: context.audit)
                .run(checkpoints: checkpoints, bucketCount: buckets) { done in progress.record(done: done * perBucket, total: buckets * perBucket) }
            bytesSent += workerTotals.bytesSent
            bytesReceived += workerTotals.bytesReceived
        }
        let resultCount = try checkpoints.resultCount(cardinalityOnly: spec.cardinalityOnly)
        let receives = spec.deliverTo.contains(nodeID)
        let repository = context.repository, cardinalityOnly = spec.cardinalityOnly
        let bucketCount = report.bucketCount
        return RoleCompletion(
            inputRows: report.ownSetSize, bytesSent: bytesSent, bytesReceived: bytesReceived,
            resultRows: receives ? (cardinalityOnly ? 1 : resultCount) : 0, receivedResult: receives,
            details: ["peer": .string(other.nodeID), "peer_input_rows": .int(report.peerSetSize),
                      "psi_protocol": .string(config.psiProtocol.rawValue),
                      "buckets": .int(bucketCount), "bucket_capacity": .int(report.capacity),
                      "resumes": .int(resumes + workerTotals.relaunches), "workers": .int(workers),
                      // Elements of both streams this party processed over every attempt, and in the last one
                      // (a fresh run processes buckets × (both capacities)): what a resume saved.
                      "elements_processed": .int(processed.total + workerTotals.elementsProcessed),
                      "elements_processed_last_attempt": .int(workers > 1 ? workerTotals.elementsProcessed : processed.last)],
            store: { db in
                guard receives else { return }
                if cardinalityOnly {
                    try repository.storeResult(db, jobID: jobID, kind: "cardinality", cardinality: resultCount) { _ in }
                } else {
                    try repository.storeResult(db, jobID: jobID, kind: "intersection", cardinality: resultCount) { db in
                        let insert = try db.makeStatement(sql: "INSERT INTO job_result_item (job_id, identifier) VALUES (?, ?)")
                        RawRows.bind(insert, 1, text: jobID)
                        try checkpoints.forEachResultIdentifier { try RawRows.insertText(insert, at: 2, $0, db: db) }
                        RawRows.clearBindings(insert)
                    }
                }
            })
    }

    /// One attempt over one session: the first party dials, the other claims the session it opens.
    private func attempt(_ context: RoleContext, config: BucketedPSIParty.Configuration, source: SQLiteIdentifierSource,
                         checkpoints: SQLiteBucketCheckpoints, peer: String, dials: Bool,
                         progress: @escaping @Sendable (BucketedPSIParty.Progress) -> Void,
                         lostTraffic: AttemptTraffic) async throws -> BucketedPSIParty.Report {
        let faults = context.faults
        let run = { (channel: any MessageChannel) async throws -> BucketedPSIParty.Report in
            var stored: any BucketCheckpoints = checkpoints
            if let faults, faults.dropPSILinkAfterBucket != nil || faults.exitAfterPSIBucket != nil || faults.pauseAfterPSIBucket != nil {
                stored = FaultAfterBucket(checkpoints, faults: faults, channel: channel)
            }
            do {
                return try await BucketedPSIParty(configuration: config, source: source, checkpoints: stored, channel: channel, progress: progress).run()
            } catch {
                // What an attempt that failed sent and received still counts in the job's traffic.
                if let counted = channel as? CountsBytes { lostTraffic.add(sent: counted.bytesSent, received: counted.bytesReceived) }
                throw error
            }
        }
        if dials {
            return try await context.withSession(to: peer, run)
        }
        let channel = try await context.claim(from: peer)
        return try await context.sessions.using([channel]) { try await run(channel) }
    }

    /// A link that broke (closed, reset, silent past the idle limit, not reachable for a moment): what a
    /// resume can mend. A peer's abort, a protocol violation or a policy refusal is not.
    static func isDroppedLink(_ error: Error) -> Bool {
        switch error {
        case ChannelError.peerDisconnected, ChannelError.timedOut: return true
        case let e as TransportError:
            switch e {
            case .cannotConnect, .connectionClosed, .idleTimeout, .handshakeTimedOut: return true
            default: return false
            }
        case SessionError.peerDidNotConnect: return true
        default: return false
        }
    }

    /// No session could be opened at all (the peer is down or restarting), as opposed to one that broke.
    static func isUnreachable(_ error: Error) -> Bool {
        switch error {
        case SessionError.peerDidNotConnect: return true
        case let e as TransportError:
            if case .cannotConnect = e { return true }
            if case .handshakeTimedOut = e { return true }
            return false
        default: return false
        }
    }
}

/// Bytes of the attempts of a PSI job that failed (a cut link).
final class AttemptTraffic: @unchecked Sendable {
    private let lock = NSLock()
    private var _sent: UInt64 = 0, _received: UInt64 = 0
    func add(sent: UInt64, received: UInt64) { lock.withLock { _sent += sent; _received += received } }
    var sent: UInt64 { lock.withLock { _sent } }
    var received: UInt64 { lock.withLock { _received } }
}

/// Elements processed per attempt of a PSI job (the last progress of each attempt).
final class ProcessedElements: @unchecked Sendable {
    private let lock = NSLock()
    private var current = 0
    private(set) var total = 0
    private(set) var last = 0

    func record(_ n: Int) { lock.withLock { current = max(current, n) } }

    /// Closes the attempt and returns what it processed.
    @discardableResult
    func endAttempt() -> Int {
        lock.withLock {
            defer { total += current; last = current; current = 0 }
            return current
        }
    }
}

/// Fault injection (tests): right after a bucket is recorded, the link is cut (once per node), as a
/// network fault would cut it, or the process exits as if killed.
final class FaultAfterBucket: BucketCheckpoints, @unchecked Sendable {
    let inner: SQLiteBucketCheckpoints
    let faults: FaultHooks
    let channel: any MessageChannel

    init(_ inner: SQLiteBucketCheckpoints, faults: FaultHooks, channel: any MessageChannel) {
        self.inner = inner; self.faults = faults; self.channel = channel
    }

    func load() async throws -> BucketedPSIState? { try await inner.load() }
    func begin(_ state: BucketedPSIState) async throws { try await inner.begin(state) }
    func complete(bucket: Int, output: BucketOutput, peerStreamDigest: [UInt8]) async throws {
        try await inner.complete(bucket: bucket, output: output, peerStreamDigest: peerStreamDigest)
        if bucket == faults.exitAfterPSIBucket { _exit(137) }
        if let (b, pause) = faults.pauseAfterPSIBucket, b == bucket { try await Task.sleep(for: pause) }
        if bucket == faults.dropPSILinkAfterBucket, faults.dropOnce.take(), let tls = channel as? TLSMessageChannel { await tls.abort() }
    }
    func release(bucket: Int, instance: Int) async throws -> [UInt8]? { try await inner.release(bucket: bucket, instance: instance) }
    func recordRelease(bucket: Int, instance: Int, digests: [UInt8]) async throws -> [UInt8] {
        try await inner.recordRelease(bucket: bucket, instance: instance, digests: digests)
    }
}
