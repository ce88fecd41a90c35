import Foundation
import GRDB
import MPCCrypto
import MPCProtocols
import MPCTransport
import MPCWire

/// A party failed during the secure sum that ends a set operation: the sum goes on without it.
struct SecureSumDropout: Error, CustomStringConvertible {
    let underlying: Error
    var description: String { "dropped out of the secure sum: \(underlying)" }
}

/// The roles of a multi-party set operation job (Protocols/multi-party-sets.md): each party runs the
/// blinding ring, seals its pseudonyms for the aggregator (through the mixer) and receives what the job
/// delivers to it; the aggregator counts multiplicities, delivers, and builds the report; union-sum and
/// intersection-stats then sum a value column over the union by secure aggregation.
///
/// Sessions between two nodes are told apart by stream: "ring" (party → next party), "mix" (party →
/// mixer), "mixed" (mixer → aggregator), "results" and "sum" (party → aggregator). A party opens a
/// session only when it has something to send, so the receiving side waits up to `setPhaseTimeout` (the
/// ring of a large job takes minutes); a party that fails makes the coordinator abort the job, which
/// ends every wait at once.
extension SetOperationKind {
    // MARK: - Party

    func runOwner(_ context: RoleContext) async throws -> RoleCompletion {
        let spec = context.spec, jobID = context.jobID, nodeID = context.nodeID, kind = operation
        let (index, mine) = try context.myInput()
        let config = try configuration(spec)
        let owners = config.owners
        let next = owners[(index + 1) % owners.count], previous = owners[(index + owners.count - 1) % owners.count]
        let source = try context.snapshot(dataset: mine.dataset, column: mine.column,
                                          valueColumn: kind.sumsValues ? spec.sets.valueColumn : nil, decimals: Int(spec.sets.decimals))
        let startedHash = try context.recordStarted([
            "input_rows": .int(source.count),
            "next": .string(next), "previous": .string(previous), "mixer": .string(config.mixer), "aggregator": .string(config.aggregator),
        ])
        context.logger.info("set operation running", metadata: ["job": "\(jobID)", "kind": "\(kind.rawValue)", "input_rows": "\(source.count)"])
        // Progress in per cent: the ring to 80 (as the own chain comes back), mix and delivery to 90, the sum to 100.
        let repository = context.repository
        let recorder = context.progressRecorder(unit: "per cent")
        let step: @Sendable (Int) -> Void = { recorder.record(done: $0, total: 100) }
        step(0)
        // The mixer waits for the other parties' sealed pseudonyms from the start (they arrive after the ring).
        let isMixer = config.mixer == nodeID
        let mixClaims = Task { () throws -> [TLSMessageChannel] in
            guard isMixer else { return [] }
            let claimed = try await context.claimAll(owners.filter { $0 != nodeID }.map { ("mix", $0) }, timeout: RoleContext.setPhaseTimeout)
            return owners.compactMap { claimed["mix/\($0)"] }
        }
        do {
            // 1. The ring.
            let ringConfig = config.ring
            let me = nodeID
            let pseudonyms = try await context.withSession(stream: "ring", to: next) { toNext in
                let fromPrevious = try await context.claim(stream: "ring", from: previous)
                let r = try await TLSMessageChannel.using([fromPrevious]) {
                    try await PseudonymRingParty(configuration: ringConfig, me: me, source: source, toNext: toNext, fromPrevious: fromPrevious,
                                                 progress: { done, total in recorder.record(done: total == 0 ? 80 : 80 * done / total, total: 100) }).run()
                }
                return (r, toNext.bytesSent + fromPrevious.bytesSent, toNext.bytesReceived + fromPrevious.bytesReceived)
            }
            step(80)
            // 2. Sealed pseudonyms through the mixer; the delivery from the aggregator.
            let aggregator = config.aggregator
            let owner = SetOwner(configuration: config, me: me)
            let outcome: SetOwner.Outcome = try await context.withSession(stream: "results", to: aggregator) { toAggregator in
                if isMixer {
                    let fromOwners = try await mixClaims.value
                    defer { for c in fromOwners { Task { await c.close() } } }
                    return try await context.withSession(stream: "mixed", to: aggregator) { mixed in
                        try await owner.finish(pseudonyms: pseudonyms.0, toAggregator: toAggregator, mixing: .mix(fromOwners: fromOwners, toAggregator: mixed))
                    }
                }
                return try await context.withSession(stream: "mix", to: config.mixer) { toMixer in
                    try await owner.finish(pseudonyms: pseudonyms.0, toAggregator: toAggregator, mixing: .sendTo(toMixer))
                }
            }
            step(90)
            var sent = pseudonyms.1 + outcome.bytesSent, received = pseudonyms.2 + outcome.bytesReceived
            // 3. The secure sum over the union.
            var details: [String: AuditValue] = ["kind": .string(kind.rawValue), "aggregator": .string(aggregator)]
            if kind.sumsValues, case .union(let union) = outcome.delivery {
                details["union_size"] = .int(union.count)
                let vector = try SetOperationKind.unionVector(union: union, pseudonyms: pseudonyms.0, totals: source.totals(), parties: owners.count)
                if !union.isEmpty {
                    let parameters = SecureAggregationParameters(jobID: jobID, clients: owners, server: aggregator, length: vector.count,
                                                                 roundTimeout: context.roundTimeout)
                    let auth = try context.keyAuthentication()
                    let fault = context.faults?.afterSecureAggregationRound
                    do {
                        let (o, s, r) = try await context.withSession(stream: "sum", to: aggregator) { channel in
                            let o = try await SecureAggregationClient(parameters: parameters, me: me, input: vector, channel: channel, authentication: auth,
                                                                      auditRecordHash: AuditLog.hashBytes(startedHash), afterRound: fault).run()
                            return (o, channel.bytesSent, channel.bytesReceived)
                        }
                        sent += s
                        received += r
                        details["included"] = .bool(o.included.contains(me))
                    } catch {
                        throw SecureSumDropout(underlying: error)
                    }
                }
            }
            step(100)
            var resultRows = 0
            var receivedResult = false
            let delivery = outcome.delivery
            switch delivery {
            case .members(let positions): resultRows = positions.count; receivedResult = true
            case .cardinality: resultRows = 1; receivedResult = true
            case .none, .union: break
            }
            return RoleCompletion(
                inputRows: source.count, bytesSent: sent, bytesReceived: received, resultRows: resultRows, receivedResult: receivedResult,
                details: details,
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
        } catch {
            await context.cancelClaims(reason: "\(error)")
            mixClaims.cancel()
            if let channels = try? await mixClaims.value {
                for c in channels { c.abort(); await c.close() }
            }
            throw error
        }
    }

    /// The party's input to the secure sum over the union: for each pseudonym of the union, two slots —
    /// 1 if the party holds it, and its total of the value column there.
    static func unionVector(union: [GroupElement], pseudonyms: [GroupElement], totals: [Int64], parties: Int) throws -> [UInt64] {
        var slot: [GroupElement: Int] = [:]
        slot.reserveCapacity(union.count)
        for (i, p) in union.enumerated() { slot[p] = i }
        let bound = Int64.max / Int64(max(1, parties))
        var vector = [UInt64](repeating: 0, count: 2 * union.count)
        for (position, p) in pseudonyms.enumerated() {
            guard let i = slot[p] else { throw JobError.invalidSubmission("the aggregator's union lacks one of this node's pseudonyms") }
            guard totals[position].magnitude <= UInt64(bound) else {
                throw AggregateError.outOfRange(slot: 2 * i + 1, bound: bound)
            }
            vector[2 * i] = 1
            vector[2 * i + 1] = UInt64(bitPattern: totals[position])
        }
        return vector
    }

    // MARK: - Aggregator

    func runAggregator(_ context: RoleContext) async throws -> RoleCompletion {
        let spec = context.spec, jobID = context.jobID, kind = operation
        let config = try configuration(spec)
        try context.recordStarted([
            "role": .string("aggregator"), "parties": .array(config.owners.map { .string($0) }), "mixer": .string(config.mixer),
        ])
        let claims = Task { () throws -> ([String: any MessageChannel], TLSMessageChannel) in
            let claimed = try await context.claimAll(config.owners.map { ("results", $0) } + [("mixed", config.mixer)],
                                                     timeout: RoleContext.setPhaseTimeout)
            var owners: [String: any MessageChannel] = [:]
            for o in config.owners { owners[o] = claimed["results/\(o)"] }
            return (owners, claimed["mixed/\(config.mixer)"]!)
        }
        do {
            let (owners, mixed) = try await claims.value
            let minimum = Int(spec.sets.minIntersection)
            let releasesIntersection = kind.releasesIntersection
            let outcome = try await SetAggregator(configuration: config).run(fromOwners: owners, fromMixer: mixed) { m in
                if releasesIntersection && m.intersectionSize < minimum {
                    throw JobError.belowMinimum("the intersection has \(m.intersectionSize) members, below the minimum of \(minimum) the job and the parties' policies require; nothing was released")
                }
            }
            for c in owners.values { await c.close() }
            await mixed.close()
            var sent = outcome.bytesSent, received = outcome.bytesReceived
            var sums: SecureAggregationServer.Outcome?
            let m = outcome.multiplicities
            if kind.sumsValues && m.unionSize > 0 {
                let parameters = SecureAggregationParameters(jobID: jobID, clients: config.owners, server: config.aggregator, length: 2 * m.unionSize,
                                                             roundTimeout: context.roundTimeout)
                let channels = await context.claimEach(stream: "sum", from: config.owners)
                let s = try await SecureAggregationServer(parameters: parameters, channels: channels).run()
                sent += s.bytesSent
                received += s.bytesReceived
                sums = s
            }
            let report = SetOperationReport.build(spec: spec, kind: kind, multiplicities: m, sums: sums, started: context.started)
            let reports = ReportRepository(store: context.store)
            return RoleCompletion(
                inputRows: 0, bytesSent: sent, bytesReceived: received, resultRows: report.cells.count, receivedResult: true,
                details: ["report": .string(report.id), "union_size": .int(m.unionSize), "intersection_size": .int(m.intersectionSize),
                          "included": .array(report.included.map { .string($0) }), "dropped": .array(report.dropped.map { .string($0) })],
                store: { db in try reports.insert(db, report) })
        } catch {
            await context.cancelClaims(reason: "\(error)")
            claims.cancel()
            if let (owners, mixed) = try? await claims.value {
                for c in owners.values { await c.close() }
                mixed.abort()
                await mixed.close()
            }
            throw error
        }
    }
}
