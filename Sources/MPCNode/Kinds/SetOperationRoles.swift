import Foundation
import GRDB
import MPCCrypto
import MPCProtocols
import MPCWire

/// The node's side of a set operation's roles: the protocol itself (ring → mix → aggregate → sum) is
/// `SetOperationParty` and `SetOperationAggregatorRole` in MPCProtocols; here a party snapshots its input
/// and stores what it was delivered, and the aggregator applies the policies' minimum and stores the report.
extension SetOperationKind {
    func waits(_ context: RoleContext) -> SetOperationParty.Waits {
        SetOperationParty.Waits(session: context.sessionWaitTimeout, phase: RoleContext.setPhaseTimeout)
    }

    /// In buckets, a dropped link is resumed up to this node's `max_resumes` (Protocols/multi-party-sets.md
    /// "Resume"), each resume audited here; in one pass it fails the job.
    func resume(_ context: RoleContext, counted: ResumeCount) -> SetResume {
        guard context.spec.sets.bucketed else { return .never }
        let audit = context.audit, jobID = context.jobID, logger = context.logger
        return SetResume(maximum: context.configuration.policy.maximumResumes, isDroppedLink: PSIKind.isDroppedLink,
                         reconnectWait: .seconds(Int64(context.configuration.peerIdleTimeoutSeconds)), pause: .seconds(1)) { event in
            counted.add()
            let reason = PeerText.cut(event.reason, limit: 300)
            _ = try? audit.append(event: "job.resumed", jobID: jobID, details: [
                "attempt": .int(event.attempt), "buckets_done": .int(event.bucketsDone), "reason": .string(reason)])
            logger.warning("link lost; resuming the set operation", metadata: [
                "job": "\(jobID)", "attempt": "\(event.attempt)", "buckets_done": "\(event.bucketsDone)", "error": "\(reason)"])
        }
    }

    /// The session port of a role, with a test's fault (debug builds) in front of it.
    func sessions(_ context: RoleContext) -> any SessionPort {
        guard let faults = context.faults, let bucket = faults.dropSetMixLinkInBucket else { return context.sessions }
        return SessionCuttingPort(inner: context.sessions, stream: "mix-\(bucket)", once: faults.dropOnce)
    }

    // MARK: - Party

    func runOwner(_ context: RoleContext) async throws -> RoleCompletion {
        let spec = context.spec, jobID = context.jobID, nodeID = context.nodeID, kind = operation
        let (index, mine) = try context.myInput()
        var config = try configuration(spec, maximumBuckets: context.configuration.policy.maximumBuckets)
        let owners = config.owners
        let next = owners[(index + 1) % owners.count], previous = owners[(index + owners.count - 1) % owners.count]
        let source = try context.snapshot(dataset: mine.dataset, column: mine.column,
                                          valueColumn: kind.sumsValues ? spec.sets.valueColumn : nil, decimals: Int(spec.sets.decimals))
        let startedHash = try context.recordStarted([
            "input_rows": .int(source.count),
            "next": .string(next), "previous": .string(previous), "mixer": .string(config.mixer), "aggregator": .string(config.aggregator),
        ])
        config.peerSetSizes = try context.peerSetSizes(dataset: mine.dataset, ownSize: source.count)
        context.logger.info("set operation running", metadata: ["job": "\(jobID)", "kind": "\(kind.rawValue)", "input_rows": "\(source.count)"])
        let recorder = context.progressRecorder(unit: "per cent")
        let sum = kind.sumsValues
            ? SetOperationSum(authentication: try context.keyAuthentication(), auditRecordHash: AuditLog.hashBytes(startedHash),
                              specHash: Array(try JobRepository.specHash(spec).utf8), roundTimeout: context.roundTimeout, afterRound: context.faults?.afterSecureAggregationRound,
                              totals: { try source.totals() })
            : nil
        let resumes = ResumeCount()
        let outcome = try await SetOperationParty(configuration: config, me: nodeID, waits: waits(context), resume: resume(context, counted: resumes))
            .run(source: source, port: sessions(context), sum: sum, progress: { recorder.record(done: $0, total: 100) })
        var details: [String: AuditValue] = ["kind": .string(kind.rawValue), "aggregator": .string(config.aggregator)]
        if let u = outcome.unionSize { details["union_size"] = .int(u) }
        if let included = outcome.includedInSum { details["included"] = .bool(included) }
        if let b = outcome.buckets {
            details["buckets"] = .int(b)
            details["resumes"] = .int(resumes.value)
        }
        var resultRows = 0
        var receivedResult = false
        let delivery = outcome.delivery
        switch delivery {
        case .members(let positions): resultRows = positions.count; receivedResult = true
        case .cardinality: resultRows = 1; receivedResult = true
        case .none, .union: break
        }
        let repository = context.repository
        return RoleCompletion(
            inputRows: source.count, bytesSent: outcome.bytesSent, bytesReceived: outcome.bytesReceived, resultRows: resultRows,
            receivedResult: receivedResult, details: details,
            store: { db in
                switch delivery {
                case .members(let positions):
                    let resultKind = kind == .watchlist ? "on-others-lists" : "intersection"
                    try repository.storeResult(db, jobID: jobID, kind: resultKind, cardinality: positions.count) { db in
                        let insert = try db.makeStatement(sql: "INSERT INTO job_result_item (job_id, identifier) VALUES (?, ?)")
                        try source.forEachIdentifier(atPositions: positions) { try insert.execute(arguments: [jobID, $0]) }
                    }
                case .cardinality(let c):
                    try repository.storeResult(db, jobID: jobID, kind: "cardinality", cardinality: c) { _ in }
                case .none, .union:
                    break
                }
            })
    }

    // MARK: - Mixer that holds no data

    func runMixer(_ context: RoleContext) async throws -> RoleCompletion {
        let config = try configuration(context.spec, maximumBuckets: context.configuration.policy.maximumBuckets)
        try context.recordStarted(["role": .string("mixer"), "parties": .array(config.owners.map { .string($0) }),
                                   "aggregator": .string(config.aggregator)])
        let resumes = ResumeCount()
        let (sent, received) = try await SetMixerRole(configuration: config, me: context.nodeID, waits: waits(context), resume: resume(context, counted: resumes))
            .run(port: sessions(context))
        var details: [String: AuditValue] = ["role": .string("mixer")]
        if config.bucketing != nil { details["resumes"] = .int(resumes.value) }
        return RoleCompletion(inputRows: 0, bytesSent: sent, bytesReceived: received, resultRows: 0, receivedResult: false,
                              details: details, store: { _ in })
    }

    // MARK: - Aggregator

    func runAggregator(_ context: RoleContext) async throws -> RoleCompletion {
        let spec = context.spec, kind = operation
        let config = try configuration(spec, maximumBuckets: context.configuration.policy.maximumBuckets)
        try context.recordStarted([
            "role": .string("aggregator"), "parties": .array(config.owners.map { .string($0) }), "mixer": .string(config.mixer),
        ])
        let minimum = Int(spec.sets.minIntersection)
        let releasesIntersection = kind.releasesIntersection
        let resumes = ResumeCount()
        let outcome = try await SetOperationAggregatorRole(configuration: config, waits: waits(context), resume: resume(context, counted: resumes))
            .run(port: sessions(context), sumRoundTimeout: kind.sumsValues ? context.roundTimeout : nil) { m in
                if releasesIntersection && m.intersectionSize < minimum {
                    throw JobError.belowMinimum("the intersection has \(m.intersectionSize) members, below the minimum of \(minimum) the job and the parties' policies require; nothing was released")
                }
            }
        let m = outcome.multiplicities
        let report = SetOperationReport.build(spec: spec, kind: kind, multiplicities: m, sums: outcome.sums, buckets: outcome.buckets, started: context.started)
        let reports = ReportRepository(store: context.store)
        return RoleCompletion(
            inputRows: 0, bytesSent: outcome.bytesSent, bytesReceived: outcome.bytesReceived, resultRows: report.cells.count, receivedResult: true,
            details: ["report": .string(report.id), "union_size": .int(m.unionSize), "intersection_size": .int(m.intersectionSize),
                      "buckets": .int(outcome.buckets ?? 1), "resumes": .int(resumes.value),
                      "included": .array(report.included.map { .string($0) }), "dropped": .array(report.dropped.map { .string($0) })],
            store: { db in try reports.insert(db, report) })
    }
}

/// Resumes of one role, as they happen.
final class ResumeCount: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}
