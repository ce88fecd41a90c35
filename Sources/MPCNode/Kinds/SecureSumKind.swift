import Foundation
import MPCCrypto
import MPCProtocols
import MPCTransport
import MPCWire

/// `secure-sum`: each data owner aggregates its own SQLite locally (`AggregateSpec`) and contributes the
/// vector as a client of secure aggregation with dropouts (Protocols/secure-aggregation.md); the single
/// node in `deliver_to` (the regulator) runs the server and stores the report, small cells suppressed.
/// The job is the server's: a client that fails is a dropout, recorded in the report.
struct SecureSumKind: JobKind {
    let name = JobKindName.secureSum.rawValue

    func describes(_ spec: Mpcnode_V1_JobSpec) -> Bool {
        guard spec.protocol == name, case .aggregate? = spec.kind else { return false }
        return true
    }

    func validateNames(_ spec: Mpcnode_V1_JobSpec) throws {
        if !spec.aggregate.groupBy.isEmpty { try PeerSuppliedName.column.validate(spec.aggregate.groupBy, field: "group-by column") }
        for m in spec.aggregate.measures { try PeerSuppliedName.column.validate(m.column, field: "measure column") }
    }

    func checkShape(_ spec: Mpcnode_V1_JobSpec) throws {
        try checkCommonShape(spec)
        guard spec.deliverTo.count == 1, let server = spec.deliverTo.first, !spec.parties.contains(where: { $0.nodeID == server }) else {
            throw JobError.malformedSpec("a secure sum is delivered to exactly one node that is not a party")
        }
        guard spec.threshold == 0 || (2...UInt32(spec.parties.count)).contains(spec.threshold) else {
            throw JobError.malformedSpec("threshold \(spec.threshold) must lie in 2…\(spec.parties.count)")
        }
        do { try LocalAggregate(spec: spec.aggregate, parties: spec.parties.count).validate() } catch {
            throw JobError.malformedSpec("\(error)")
        }
    }

    func prepare(_ submission: JobSubmission, into spec: inout Mpcnode_V1_JobSpec, context: SubmissionContext) throws {
        let partyIDs = submission.parties.map(\.nodeID)
        guard submission.parties.count >= 2 else { throw JobError.invalidSubmission("a secure sum needs at least two parties") }
        guard submission.deliverTo.count == 1, let server = submission.deliverTo.first, !partyIDs.contains(server), server != context.nodeID else {
            throw JobError.invalidSubmission("a secure sum is delivered to exactly one node that is not a party (the regulator), with --deliver-to")
        }
        try context.requireKnown(server)
        guard let a = submission.aggregate else { throw JobError.invalidSubmission("a secure sum needs an aggregate (--measure, --group-by, --groups)") }
        var aggregate = Mpcnode_V1_AggregateSpec()
        aggregate.groupBy = a.groupBy ?? ""
        aggregate.groups = a.groups
        aggregate.decimals = UInt32(max(0, a.decimals))
        aggregate.minCellRecords = UInt64(max(1, a.minCellRecords))
        aggregate.minCellParties = UInt32(max(1, a.minCellParties))
        for m in a.measures {
            let parts = m.split(separator: ":", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw JobError.invalidSubmission("measure '\(m)' is not function:column (sum:balance, count:account)") }
            aggregate.measures.append(.with { $0.function = parts[0]; $0.column = parts[1] })
        }
        do { try LocalAggregate(spec: aggregate, parties: partyIDs.count).validate() } catch { throw JobError.invalidSubmission("\(error)") }
        if let t = submission.threshold {
            guard (2...partyIDs.count).contains(t) else { throw JobError.invalidSubmission("threshold \(t) must lie in 2…\(partyIDs.count)") }
        }
        spec.aggregate = aggregate
    }

    private func server(_ spec: Mpcnode_V1_JobSpec) -> String { spec.deliverTo.first ?? "" }

    func participants(of spec: Mpcnode_V1_JobSpec) -> [String] {
        var nodes = spec.parties.map(\.nodeID)
        if let s = spec.deliverTo.first, !nodes.contains(s) { nodes.append(s) }
        return nodes
    }

    func outcomeOwner(of spec: Mpcnode_V1_JobSpec) -> String? { spec.deliverTo.first }

    /// A client that fails is a dropout, unless its policy stopped the release (then the job ends with its reason).
    func failureIsDropout(_ spec: Mpcnode_V1_JobSpec, node: String, error: Error?) -> Bool {
        if case JobError.refusedDuringJob? = error { return false }
        return node != server(spec)
    }

    /// The sum goes on without clients that could not be started (dropouts); only the server is essential.
    func toleratesStartFailure(of node: String, in spec: Mpcnode_V1_JobSpec) -> Bool { node != server(spec) }

    func roleWithoutData(of node: String, in spec: Mpcnode_V1_JobSpec) -> String? {
        spec.deliverTo == [node] && !spec.parties.contains { $0.nodeID == node } ? "server" : nil
    }

    func policyUse(_ spec: Mpcnode_V1_JobSpec) -> JobProtocolUse { .secureSum }

    func checkPolicy(_ spec: Mpcnode_V1_JobSpec, mine: Mpcnode_V1_PartyInput, rule: DatasetPolicy, policy: NodePolicy,
                     nodeID: String) -> PolicyDecision {
        let aggregate = LocalAggregate(spec: spec.aggregate, parties: spec.parties.count)
        for column in aggregate.columns.sorted() where !rule.columns.contains(column) {
            return .refused(reason: "column '\(column)' of dataset '\(mine.dataset)' may not be aggregated")
        }
        let clients = spec.parties.count
        let threshold = spec.threshold > 0 ? Int(spec.threshold) : SecureAggregationParameters.defaultThreshold(clients: clients)
        if let refusal = rule.sumThresholdRefusal(threshold: threshold, clients: clients) { return .refused(reason: refusal) }
        guard spec.aggregate.minCellRecords >= UInt64(rule.minimumCellRecords) else {
            return .refused(reason: "cells with fewer than \(rule.minimumCellRecords) records must be suppressed (the job asks \(spec.aggregate.minCellRecords))")
        }
        guard spec.aggregate.minCellParties >= UInt32(rule.minimumCellParties) else {
            return .refused(reason: "cells with fewer than \(rule.minimumCellParties) parties must be suppressed (the job asks \(spec.aggregate.minCellParties))")
        }
        guard clients >= rule.minimumSumParties else {
            return .refused(reason: "a sum of \(clients) parties is below this dataset's floor of \(rule.minimumSumParties) (min_sum_parties)")
        }
        if let refusal = rule.sumNoise?.refusal(spec.aggregate) { return .refused(reason: refusal) }
        return .allowed
    }

    func inputSize(_ spec: Mpcnode_V1_JobSpec, mine: Mpcnode_V1_PartyInput, catalog: DatasetCatalog) throws -> Int? {
        try? catalog.describe(mine.dataset).rowCount
    }

    func run(_ context: RoleContext) async throws -> RoleCompletion {
        context.nodeID == server(context.spec) ? try await runServer(context) : try await runClient(context)
    }

    func parameters(_ context: RoleContext) -> SecureAggregationParameters {
        let spec = context.spec
        let aggregate = LocalAggregate(spec: spec.aggregate, parties: spec.parties.count)
        return SecureAggregationParameters(jobID: spec.jobID, specHash: Array(((try? JobRepository.specHash(spec)) ?? "").utf8), clients: spec.parties.map(\.nodeID), server: server(spec),
                                           length: aggregate.length, threshold: spec.threshold > 0 ? Int(spec.threshold) : nil,
                                           roundTimeout: context.roundTimeout)
    }

    static func layout(_ spec: Mpcnode_V1_JobSpec) -> TwoPhaseCellSum.Layout {
        let a = spec.aggregate
        return TwoPhaseCellSum.Layout(cells: LocalAggregate(spec: a, parties: spec.parties.count).cells.count, measures: a.measures.count,
                                      minRecords: a.minCellRecords, minParties: a.minCellParties)
    }

    /// Client: computes the local aggregate from SQLite (before anything is sent), then takes part in the
    /// counts' sum and, for the cells the server releases, the measures' sum.
    private func runClient(_ context: RoleContext) async throws -> RoleCompletion {
        let spec = context.spec
        let (_, mine) = try context.myInput()
        let server = server(spec)
        let aggregate = LocalAggregate(spec: spec.aggregate, parties: spec.parties.count)
        let table = NodeStore.tableName(forDataset: mine.dataset)
        let rule = context.configuration.policy.datasets[mine.dataset]
        let noise = rule?.sumNoise
        var vector = try context.store.read { db in
            try aggregate.compute(db, table: table, clip: noise?.clip(decimals: Int(spec.aggregate.decimals)))
        }
        let width = LocalAggregate.slotsPerCellBeforeMeasures + spec.aggregate.measures.count
        let ownRecords = (0..<aggregate.cells.count).map { Int(clamping: Int64(bitPattern: vector[$0 * width])) }
        // This node's own noise on its measures, before anything is masked (its policy, not the spec).
        if let noise {
            var random = SodiumRandom()
            try noise.apply(to: &vector, aggregate: spec.aggregate, using: &random)
        }
        let rows = try context.catalog.describe(mine.dataset).rowCount
        var started: [String: AuditValue] = ["server": .string(server), "input_rows": .int(rows), "vector_length": .int(vector.count)]
        if let noise { started["noise_epsilon"] = .string(String(noise.epsilon)) }
        let startedHash = try context.recordStarted(started)
        var parameters = parameters(context)
        // This client's own floor of contributors, never the spec's.
        parameters.minimumSurvivors = rule?.minimumSumParties ?? DatasetPolicy.defaultMinimumSumParties
        var client = TwoPhaseCellSum.Client(parameters: parameters, layout: Self.layout(spec), me: context.nodeID, vector: vector,
                                            authentication: try context.keyAuthentication(), auditRecordHash: AuditLog.hashBytes(startedHash),
                                            afterRound: context.faults?.afterSecureAggregationRound)
        // Differencing with what the release names: client sets, and the cells actually released.
        let store = context.store, dataset = mine.dataset
        let minimumParties = rule?.minimumCellParties ?? DatasetPolicy.defaultMinimumCellParties
        let minimumRecords = rule?.minimumCellRecords ?? DatasetPolicy.defaultMinimumCellRecords
        client.approveRelease = { cells, clients in
            if let refusal = try store.read({ db in
                try ReleaseHistory().releaseRefusal(spec, dataset: dataset, cells: cells, clients: clients, minimumParties: minimumParties,
                                                    minimumRecords: minimumRecords, db)
            }) {
                throw JobError.refusedDuringJob(refusal)
            }
        }
        let outcome = try await client.run(port: context.sessions)
        let traffic = context.sessions.traffic
        return RoleCompletion(inputRows: rows, bytesSent: traffic.sent, bytesReceived: traffic.received, resultRows: 0, receivedResult: false,
                              details: ["server": .string(server), "included": .bool(outcome.included.contains(context.nodeID)),
                                        "clients_in_sum": .int(outcome.included.count), "released_cells": .int(outcome.released.count)],
                              store: { db in
                                  // What later jobs on this dataset are checked against (differencing).
                                  try ReleaseHistory().record(spec, dataset: mine.dataset, released: outcome.released, ownRecords: ownRecords,
                                                              clients: outcome.included, db)
                              })
    }

    /// Server: sums the cells' counts, then the measures of the cells that pass the minimums only, and
    /// builds the report, stored in the same transaction that marks the job succeeded.
    private func runServer(_ context: RoleContext) async throws -> RoleCompletion {
        let spec = context.spec
        let parameters = parameters(context)
        try context.recordStarted(["role": .string("aggregation server"), "clients": .array(parameters.clients.map { .string($0) })])
        let outcome = try await TwoPhaseCellSum.Server(parameters: parameters, layout: Self.layout(spec), verify: try context.keyAuthentication().verify,
                                                       afterRound: context.faults?.afterSecureAggregationRound)
            .run(port: context.sessions, acceptTimeout: context.sessionWaitTimeout)
        let report = Self.report(spec: spec, outcome: outcome, started: context.started, kind: name)
        let reports = ReportRepository(store: context.store)
        let suppressed = report.cells.filter(\.suppressed).count
        return RoleCompletion(
            inputRows: 0, bytesSent: outcome.bytesSent, bytesReceived: outcome.bytesReceived,
            resultRows: report.cells.count, receivedResult: true,
            details: ["report": .string(report.id), "included": .array(outcome.included.map { .string($0) }),
                      "dropped": .array(outcome.dropped.map { .string("\($0.client) (\($0.round): \($0.reason))") }),
                      "cells": .int(report.cells.count), "suppressed_cells": .int(suppressed)],
            store: { db in try reports.insert(db, report) })
    }

    static func report(spec: Mpcnode_V1_JobSpec, outcome: TwoPhaseCellSum.Server.Outcome, started: Date, kind: String) -> ReportView {
        let a = spec.aggregate
        let aggregate = LocalAggregate(spec: a, parties: spec.parties.count)
        let names = a.measures.map { "\($0.function)(\($0.column))" }
        let protected = outcome.cells(layout: layout(spec))
        let cells = zip(aggregate.cells, protected).map { (group, c) -> ReportView.Cell in
            var values: [String: String] = [:]
            for (k, m) in a.measures.enumerated() where !c.suppressed {
                values[names[k]] = m.function == "sum" ? ReportRepository.decimalText(c.values[k], decimals: Int(a.decimals)) : String(c.values[k])
            }
            return ReportView.Cell(group: group, records: c.records, parties: c.parties, values: values, suppressed: c.suppressed,
                                   suppressionReason: c.suppressionReason)
        }
        return ReportView(id: "report-" + spec.jobID.dropFirst(4), kind: kind, notes: nil, jobID: spec.jobID, specHash: (try? JobRepository.specHash(spec)) ?? "",
                          coordinator: spec.coordinator, createdAt: Date(), startedAt: started,
                          groupBy: a.groupBy.isEmpty ? nil : a.groupBy, measures: names, decimals: Int(a.decimals),
                          minCellRecords: Int(a.minCellRecords), minCellParties: Int(a.minCellParties),
                          included: outcome.included,
                          // Clients lost after their masked input are still in the sum: only the others are "dropped".
                          dropped: outcome.dropped.map(\.client).filter { !outcome.included.contains($0) },
                          participantAuditHashes: outcome.auditRecordHashes, cells: cells)
    }
}
