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
extension JobEngine {
    static let setPhaseTimeout: Duration = .seconds(6 * 3600)

    func validateSetSubmission(_ submission: JobSubmission, kind: SetJobKind) throws -> Mpcnode_V1_SetOperationSpec {
        let owners = submission.parties.map(\.nodeID)
        guard owners.count >= 2 else { throw JobError.invalidSubmission("\(kind.rawValue) needs at least two --party options") }
        guard let options = submission.sets, !options.aggregator.isEmpty else {
            throw JobError.invalidSubmission("\(kind.rawValue) needs an --aggregator: the node (not a party) that counts and receives the report")
        }
        guard !owners.contains(options.aggregator), options.aggregator != nodeID else {
            throw JobError.invalidSubmission("the aggregator \(options.aggregator) must be neither a party nor the coordinator")
        }
        guard configuration.peers[options.aggregator] != nil else { throw JobError.unknownPeer(options.aggregator) }
        let mixer = options.mixer ?? owners[0]
        guard owners.contains(mixer) else { throw JobError.invalidSubmission("the mixer \(mixer) must be one of the parties") }
        guard BlindingGroup(rawValue: submission.group) != nil else {
            throw JobError.invalidSubmission("unknown group '\(submission.group)' (available: \(BlindingGroup.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        for p in submission.parties where p.column.isEmpty {
            throw JobError.invalidSubmission("--party \(p.nodeID):\(p.dataset) names no identifier column (node:dataset.column)")
        }
        switch kind {
        case .mpsi, .watchlist:
            for r in submission.deliverTo where !owners.contains(r) {
                throw JobError.invalidSubmission("recipient \(r) is not a party (the report goes to the aggregator; --deliver-to names parties that receive their own identifiers)")
            }
        case .unionSum, .intersectionStats:
            guard submission.deliverTo.allSatisfy({ $0 == options.aggregator }) else {
                throw JobError.invalidSubmission("\(kind.rawValue) delivers its report to the aggregator only")
            }
            guard let v = options.valueColumn, !v.isEmpty else { throw JobError.invalidSubmission("\(kind.rawValue) needs --value COLUMN (the decimal column to sum)") }
        }
        guard options.atLeast >= 1, options.atLeast <= owners.count else {
            throw JobError.invalidSubmission("--at-least \(options.atLeast) must lie in 1…\(owners.count)")
        }
        guard (0...9).contains(options.decimals) else { throw JobError.invalidSubmission("--decimals must lie in 0…9") }
        if let t = options.reportingThreshold, LocalAggregate.parseFixedPoint(t, decimals: options.decimals) == nil {
            throw JobError.invalidSubmission("--reporting-threshold '\(t)' is not a decimal with at most \(options.decimals) decimals")
        }
        let edges = try options.bins.map { b -> Int64 in
            guard let v = LocalAggregate.parseFixedPoint(b, decimals: options.decimals) else {
                throw JobError.invalidSubmission("bin edge '\(b)' is not a decimal with at most \(options.decimals) decimals")
            }
            return v
        }
        guard zip(edges, edges.dropFirst()).allSatisfy({ $0 < $1 }) else { throw JobError.invalidSubmission("--bins must be ascending") }
        return .with {
            $0.aggregator = options.aggregator
            $0.mixer = mixer
            $0.atLeast = UInt32(options.atLeast)
            $0.minIntersection = UInt64(max(0, options.minIntersection))
            $0.valueColumn = options.valueColumn ?? ""
            $0.decimals = UInt32(options.decimals)
            $0.reportingThreshold = options.reportingThreshold ?? ""
            $0.histogramBins = options.bins
            $0.minCellParties = UInt32(max(1, options.minCellParties))
        }
    }

    // MARK: - Party

    func runSetOwner(_ spec: Mpcnode_V1_JobSpec, scratch: JobScratch) async throws -> Completion {
        let jobID = spec.jobID
        guard let kind = SetJobKind(rawValue: spec.protocol), let index = spec.parties.firstIndex(where: { $0.nodeID == nodeID }) else {
            throw JobError.invalidSubmission("this node is not a party of \(jobID)")
        }
        let config = try SetJobKind.configuration(spec)
        let mine = spec.parties[index]
        let owners = config.owners
        let next = owners[(index + 1) % owners.count], previous = owners[(index + owners.count - 1) % owners.count]
        let source = try SQLiteIdentifierSource.prepare(jobID: jobID, dataset: mine.dataset, column: mine.column, store: store,
                                                        scratchDirectory: configuration.jobsDirectory,
                                                        valueColumn: kind.sumsValues ? spec.sets.valueColumn : nil,
                                                        decimals: Int(spec.sets.decimals))
        scratch.add { source.remove() }
        let startedHash = try audit.append(event: "job.started", jobID: jobID, details: [
            "spec_hash": .string(try JobRepository.specHash(spec)), "input_rows": .int(source.count),
            "next": .string(next), "previous": .string(previous), "mixer": .string(config.mixer), "aggregator": .string(config.aggregator),
        ])
        logger.info("set operation running", metadata: ["job": "\(jobID)", "kind": "\(kind.rawValue)", "input_rows": "\(source.count)"])
        // Progress in per cent: the ring to 80 (as the own chain comes back), mix and delivery to 90, the sum to 100.
        let repository = self.repository
        let recorder = progressRecorder(spec, unit: "per cent")
        let step: @Sendable (Int) -> Void = { recorder.record(done: $0, total: 100) }
        step(0)
        // The mixer waits for the other parties' sealed pseudonyms from the start (they arrive after the ring).
        let isMixer = config.mixer == nodeID
        let mixClaims = Task { [rendezvous] () throws -> [TLSMessageChannel] in
            guard isMixer else { return [] }
            let claimed = try await Self.claimAll(rendezvous, jobID: jobID, sessions: owners.filter { $0 != self.nodeID }.map { ("mix", $0) },
                                                  timeout: Self.setPhaseTimeout)
            return owners.compactMap { claimed["mix/\($0)"] }
        }
        do {
            // 1. The ring.
            let ringConfig = config.ring
            let me = nodeID
            let rendezvous = self.rendezvous, wait = sessionWaitTimeout, transport = self.transport
            let pseudonyms = try await transport.withSession(jobID: jobID, stream: "ring", to: next, at: try address(of: next)) { toNext in
                let fromPrevious = try await rendezvous.claim(jobID: jobID, stream: "ring", peer: previous, timeout: wait)
                let r = try await TLSMessageChannel.using([fromPrevious]) {
                    try await PseudonymRingParty(configuration: ringConfig, me: me, source: source, toNext: toNext, fromPrevious: fromPrevious,
                                                 progress: { done, total in recorder.record(done: total == 0 ? 80 : 80 * done / total, total: 100) }).run()
                }
                return (r, toNext.bytesSent + fromPrevious.bytesSent, toNext.bytesReceived + fromPrevious.bytesReceived)
            }
            step(80)
            // 2. Sealed pseudonyms through the mixer; the delivery from the aggregator.
            let aggregator = config.aggregator
            let aggregatorAddress = try address(of: aggregator)
            let mixerAddress = isMixer ? aggregatorAddress : try address(of: config.mixer)
            let owner = SetOwner(configuration: config, me: me)
            let outcome: SetOwner.Outcome = try await transport.withSession(jobID: jobID, stream: "results", to: aggregator, at: aggregatorAddress) { toAggregator in
                if isMixer {
                    let fromOwners = try await mixClaims.value
                    defer { for c in fromOwners { Task { await c.close() } } }
                    return try await transport.withSession(jobID: jobID, stream: "mixed", to: aggregator, at: aggregatorAddress) { mixed in
                        try await owner.finish(pseudonyms: pseudonyms.0, toAggregator: toAggregator, mixing: .mix(fromOwners: fromOwners, toAggregator: mixed))
                    }
                }
                return try await transport.withSession(jobID: jobID, stream: "mix", to: config.mixer, at: mixerAddress) { toMixer in
                    try await owner.finish(pseudonyms: pseudonyms.0, toAggregator: toAggregator, mixing: .sendTo(toMixer))
                }
            }
            step(90)
            var sent = pseudonyms.1 + outcome.bytesSent, received = pseudonyms.2 + outcome.bytesReceived
            // 3. The secure sum over the union.
            var details: [String: AuditValue] = ["kind": .string(kind.rawValue), "aggregator": .string(aggregator)]
            if kind.sumsValues, case .union(let union) = outcome.delivery {
                details["union_size"] = .int(union.count)
                let vector = try Self.unionVector(union: union, pseudonyms: pseudonyms.0, totals: source.totals(), parties: owners.count)
                if !union.isEmpty {
                    let parameters = SecureAggregationParameters(jobID: jobID, clients: owners, server: aggregator, length: vector.count,
                                                                 roundTimeout: .seconds(Int64(configuration.peerIdleTimeoutSeconds)))
                    let auth = try keyAuthentication()
                    let fault = Self.faultInjection()
                    do {
                        let (o, s, r) = try await transport.withSession(jobID: jobID, stream: "sum", to: aggregator, at: aggregatorAddress) { channel in
                            let o = try await SecureAggregationClient(parameters: parameters, me: me, input: vector, channel: channel, authentication: auth,
                                                                      auditRecordHash: Self.hexBytes(startedHash), afterRound: fault).run()
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
            return Completion(
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
            await rendezvous.cancelClaims(jobID: jobID, reason: "\(error)")
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

    func runSetAggregator(_ spec: Mpcnode_V1_JobSpec, started: Date) async throws -> Completion {
        let jobID = spec.jobID
        guard let kind = SetJobKind(rawValue: spec.protocol) else { throw JobError.invalidSubmission("not a set operation: \(spec.protocol)") }
        let config = try SetJobKind.configuration(spec)
        try audit.append(event: "job.started", jobID: jobID, details: [
            "spec_hash": .string(try JobRepository.specHash(spec)), "role": .string("aggregator"),
            "parties": .array(config.owners.map { .string($0) }), "mixer": .string(config.mixer),
        ])
        let rendezvous = self.rendezvous
        let claims = Task { () throws -> ([String: any MessageChannel], TLSMessageChannel) in
            let claimed = try await Self.claimAll(rendezvous, jobID: jobID,
                                                  sessions: config.owners.map { ("results", $0) } + [("mixed", config.mixer)],
                                                  timeout: Self.setPhaseTimeout)
            var owners: [String: any MessageChannel] = [:]
            for o in config.owners { owners[o] = claimed["results/\(o)"] }
            return (owners, claimed["mixed/\(config.mixer)"]!)
        }
        do {
            let (owners, mixed) = try await claims.value
            let minimum = Int(spec.sets.minIntersection)
            let releasesIntersection = kind.releasesIntersection(spec)
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
                                                             roundTimeout: .seconds(Int64(configuration.peerIdleTimeoutSeconds)))
                let wait = sessionWaitTimeout
                let channels = await withTaskGroup(of: (String, TLSMessageChannel?).self) { group in
                    for o in config.owners {
                        group.addTask { (o, try? await rendezvous.claim(jobID: jobID, stream: "sum", peer: o, timeout: wait)) }
                    }
                    var out: [String: any MessageChannel] = [:]
                    for await (o, channel) in group { if let channel { out[o] = channel } }
                    return out
                }
                let s = try await SecureAggregationServer(parameters: parameters, channels: channels).run()
                sent += s.bytesSent
                received += s.bytesReceived
                sums = s
            }
            let report = SetOperationReport.build(spec: spec, kind: kind, multiplicities: m, sums: sums, started: started)
            let reports = ReportRepository(store: store)
            return Completion(
                inputRows: 0, bytesSent: sent, bytesReceived: received, resultRows: report.cells.count, receivedResult: true,
                details: ["report": .string(report.id), "union_size": .int(m.unionSize), "intersection_size": .int(m.intersectionSize),
                          "included": .array(report.included.map { .string($0) }), "dropped": .array(report.dropped.map { .string($0) })],
                store: { db in try reports.insert(db, report) })
        } catch {
            await rendezvous.cancelClaims(jobID: jobID, reason: "\(error)")
            claims.cancel()
            if let (owners, mixed) = try? await claims.value {
                for c in owners.values { await c.close() }
                mixed.abort()
                await mixed.close()
            }
            throw error
        }
    }

    /// Claims several inbound sessions (stream, peer) of a job. If one cannot be claimed, the job's other
    /// claims are cancelled, the sessions already claimed are closed, and the error is thrown.
    static func claimAll(_ rendezvous: SessionRendezvous, jobID: String, sessions: [(String, String)],
                         timeout: Duration) async throws -> [String: TLSMessageChannel] {
        let results = await withTaskGroup(of: (String, Result<TLSMessageChannel, Error>).self) { group in
            for (stream, peer) in sessions {
                group.addTask {
                    do { return ("\(stream)/\(peer)", .success(try await rendezvous.claim(jobID: jobID, stream: stream, peer: peer, timeout: timeout))) }
                    catch { return ("\(stream)/\(peer)", .failure(error)) }
                }
            }
            var out: [(String, Result<TLSMessageChannel, Error>)] = []
            var cancelled = false
            for await r in group {
                out.append(r)
                if case .failure(let e) = r.1, !cancelled {
                    cancelled = true
                    await rendezvous.cancelClaims(jobID: jobID, reason: "\(e)")
                }
            }
            return out
        }
        var claimed: [String: TLSMessageChannel] = [:]
        var failure: Error?
        for (key, r) in results {
            switch r {
            case .success(let c): claimed[key] = c
            case .failure(let e): failure = failure ?? e
            }
        }
        if let failure {
            for c in claimed.values { c.abort(); await c.close() }
            throw failure
        }
        return claimed
    }

    func address(of node: String) throws -> PeerAddress {
        guard let a = configuration.peers[node] else { throw JobError.unknownPeer(node) }
        return a
    }
}
