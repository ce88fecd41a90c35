import Foundation
import GRDB
import MPCIdentity
import MPCProtocols
import MPCTransport
import MPCWire

/// The two roles of a `secure-sum` job: a data owner contributes its local aggregate (as a client of
/// secure aggregation); the node named in `deliver_to` runs the server and stores the report.
extension JobEngine {
    func keyAuthentication() throws -> KeyAuthentication {
        let signatures = try CertificateSignatures(certificatePath: configuration.tls.certificate.path,
                                                   privateKeyPath: configuration.tls.privateKey.path,
                                                   caPath: configuration.tls.caCertificate.path)
        return KeyAuthentication(certificateDER: signatures.certificateDER, sign: { try signatures.sign($0) },
                                 verify: { try signatures.verify(signature: $0, message: $1, nodeID: $2, certificateDER: $3) })
    }

    /// Fault injection for end-to-end tests of dropouts: with `MPCNODE_FAULT_EXIT_AFTER_SECAGG_ROUND` set to
    /// a round (advertise, shareKeys, maskedInput, unmask), a client process exits abruptly right after it.
    /// Never set in production; the daemon logs a warning at start-up when it is.
    static func faultInjection() -> (@Sendable (SecureAggregationClient.Round) -> Void)? {
        let names: [String: SecureAggregationClient.Round] = ["advertise": .advertise, "shareKeys": .shareKeys, "maskedInput": .maskedInput, "unmask": .unmask]
        guard let value = ProcessInfo.processInfo.environment["MPCNODE_FAULT_EXIT_AFTER_SECAGG_ROUND"], let round = names[value] else { return nil }
        return { completed in if completed == round { _exit(137) } }
    }

    func secureSumParameters(_ spec: Mpcnode_V1_JobSpec) -> SecureAggregationParameters {
        let aggregate = LocalAggregate(spec: spec.aggregate, parties: spec.parties.count)
        return SecureAggregationParameters(jobID: spec.jobID, clients: spec.parties.map(\.nodeID), server: spec.deliverTo.first ?? "",
                                           length: aggregate.length, threshold: spec.threshold > 0 ? Int(spec.threshold) : nil,
                                           roundTimeout: .seconds(Int64(configuration.peerIdleTimeoutSeconds)))
    }

    /// Client: computes the local aggregate from SQLite (before anything is sent), then runs the client role.
    func runSecureSumClient(_ spec: Mpcnode_V1_JobSpec) async throws -> Completion {
        guard let mine = spec.parties.first(where: { $0.nodeID == nodeID }), let server = spec.deliverTo.first else {
            throw JobError.invalidSubmission("this node is not a party of \(spec.jobID)")
        }
        let aggregate = LocalAggregate(spec: spec.aggregate, parties: spec.parties.count)
        let table = NodeStore.tableName(forDataset: mine.dataset)
        let vector = try store.read { db in try aggregate.compute(db, table: table) }
        let rows = try catalog.describe(mine.dataset).rowCount
        let startedHash = try audit.append(event: "job.started", jobID: spec.jobID, details: [
            "spec_hash": .string(try JobRepository.specHash(spec)), "server": .string(server), "input_rows": .int(rows),
            "vector_length": .int(vector.count),
        ])
        guard let address = configuration.peers[server] else { throw JobError.unknownPeer(server) }
        let parameters = secureSumParameters(spec)
        let auth = try keyAuthentication()
        let me = nodeID
        let fault = Self.faultInjection()
        let (outcome, sent, received) = try await transport.withSession(jobID: spec.jobID, to: server, at: address) { channel in
            let o = try await SecureAggregationClient(parameters: parameters, me: me, input: vector, channel: channel, authentication: auth,
                                                      auditRecordHash: Self.hexBytes(startedHash), afterRound: fault).run()
            return (o, channel.bytesSent, channel.bytesReceived)
        }
        return Completion(inputRows: rows, bytesSent: sent, bytesReceived: received, resultRows: 0, receivedResult: false,
                          details: ["server": .string(server), "included": .bool(outcome.included.contains(nodeID)),
                                    "clients_in_sum": .int(outcome.included.count)],
                          store: { _ in })
    }

    /// Server: collects the clients' sessions, runs the server role, and builds the report (with
    /// small cells suppressed), stored in the same transaction that marks the job succeeded.
    func runSecureSumServer(_ spec: Mpcnode_V1_JobSpec, started: Date) async throws -> Completion {
        let parameters = secureSumParameters(spec)
        try audit.append(event: "job.started", jobID: spec.jobID, details: [
            "spec_hash": .string(try JobRepository.specHash(spec)), "role": .string("aggregation server"),
            "clients": .array(parameters.clients.map { .string($0) }),
        ])
        let wait = sessionWaitTimeout
        let channels = await withTaskGroup(of: (String, TLSMessageChannel?).self) { group in
            for client in parameters.clients {
                group.addTask { (client, try? await self.rendezvous.claim(jobID: spec.jobID, peer: client, timeout: wait)) }
            }
            var out: [String: any MessageChannel] = [:]
            for await (client, channel) in group { if let channel { out[client] = channel } }
            return out
        }
        let outcome = try await SecureAggregationServer(parameters: parameters, channels: channels).run()
        let report = Self.report(spec: spec, outcome: outcome, started: started)
        let reports = ReportRepository(store: store)
        let suppressed = report.cells.filter(\.suppressed).count
        return Completion(
            inputRows: 0, bytesSent: outcome.bytesSent, bytesReceived: outcome.bytesReceived,
            resultRows: report.cells.count, receivedResult: true,
            details: ["report": .string(report.id), "included": .array(outcome.included.map { .string($0) }),
                      "dropped": .array(outcome.dropped.map { .string("\($0.client) (\($0.round): \($0.reason))") }),
                      "cells": .int(report.cells.count), "suppressed_cells": .int(suppressed)],
            store: { db in try reports.insert(db, report) })
    }

    static func report(spec: Mpcnode_V1_JobSpec, outcome: SecureAggregationServer.Outcome, started: Date) -> ReportView {
        let a = spec.aggregate
        let aggregate = LocalAggregate(spec: a, parties: spec.parties.count)
        let totals = LocalAggregate.signed(outcome.sum)
        let width = LocalAggregate.slotsPerCellBeforeMeasures + a.measures.count
        let names = a.measures.map { "\($0.function)(\($0.column))" }
        let cells = aggregate.cells.enumerated().map { (i, group) -> ReportView.Cell in
            let records = totals[i * width], parties = totals[i * width + 1]
            var reason: String?
            if records < Int64(a.minCellRecords) { reason = "fewer than \(a.minCellRecords) records" }
            else if parties < Int64(a.minCellParties) { reason = "fewer than \(a.minCellParties) parties" }
            guard reason == nil else {
                return ReportView.Cell(group: group, records: nil, parties: nil, values: [:], suppressed: true, suppressionReason: reason)
            }
            var values: [String: String] = [:]
            for (k, m) in a.measures.enumerated() {
                let v = totals[i * width + 2 + k]
                values[names[k]] = m.function == "sum" ? ReportRepository.decimalText(v, decimals: Int(a.decimals)) : String(v)
            }
            return ReportView.Cell(group: group, records: records, parties: parties, values: values, suppressed: false, suppressionReason: nil)
        }
        return ReportView(id: "report-" + spec.jobID.dropFirst(4), kind: "secure-sum", notes: nil, jobID: spec.jobID, specHash: (try? JobRepository.specHash(spec)) ?? "",
                          coordinator: spec.coordinator, createdAt: Date(), startedAt: started,
                          groupBy: a.groupBy.isEmpty ? nil : a.groupBy, measures: names, decimals: Int(a.decimals),
                          minCellRecords: Int(a.minCellRecords), minCellParties: Int(a.minCellParties),
                          included: outcome.included,
                          // Clients lost after their masked input are still in the sum: only the others are "dropped".
                          dropped: outcome.dropped.map(\.client).filter { !outcome.included.contains($0) },
                          participantAuditHashes: outcome.auditRecordHashes, cells: cells)
    }
}
