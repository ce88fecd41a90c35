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
        let outcome = try await SetOperationParty(configuration: config, me: nodeID, waits: waits(context))
            .run(source: source, port: context.sessions, sum: sum, progress: { recorder.record(done: $0, total: 100) })
        var details: [String: AuditValue] = ["kind": .string(kind.rawValue), "aggregator": .string(config.aggregator)]
        if let u = outcome.unionSize { details["union_size"] = .int(u) }
        if let included = outcome.includedInSum { details["included"] = .bool(included) }
        if let b = outcome.buckets { details["buckets"] = .int(b) }
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
        let (sent, received) = try await SetMixerRole(configuration: config, me: context.nodeID, waits: waits(context)).run(port: context.sessions)
        return RoleCompletion(inputRows: 0, bytesSent: sent, bytesReceived: received, resultRows: 0, receivedResult: false,
                              details: ["role": .string("mixer")], store: { _ in })
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
        let outcome = try await SetOperationAggregatorRole(configuration: config, waits: waits(context))
            .run(port: context.sessions, sumRoundTimeout: kind.sumsValues ? context.roundTimeout : nil) { m in
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
                      "buckets": .int(outcome.buckets ?? 1),
                      "included": .array(report.included.map { .string($0) }), "dropped": .array(report.dropped.map { .string($0) })],
            store: { db in try reports.insert(db, report) })
    }
}
