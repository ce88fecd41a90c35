import Crypto
import Foundation
import GRDB
import MPCWire
import SwiftProtobuf

/// Reads and writes jobs, their participants and results in the node's store.
public struct JobRepository: Sendable {
    public let store: NodeStore

    public init(store: NodeStore) { self.store = store }

    /// SHA-256 of the spec's deterministic serialisation: the identity of "what was agreed".
    public static func specHash(_ spec: Mpcnode_V1_JobSpec) throws -> String {
        var options = BinaryEncodingOptions()
        options.useDeterministicOrdering = true
        let bytes: [UInt8] = try spec.serializedBytes(options: options)
        return SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }

    public func insert(_ db: Database, spec: Mpcnode_V1_JobSpec, role: JobRole, state: JobState, reason: String? = nil) throws {
        let now = Date()
        let bytes: [UInt8] = try spec.serializedBytes()
        try db.execute(sql: """
            INSERT INTO job (id, spec, spec_hash, role, state, reason, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """, arguments: [spec.jobID, Data(bytes), try Self.specHash(spec), role.rawValue, state.rawValue, reason, now, now])
        if state.isFinal { store.jobStates.changed(db, jobID: spec.jobID, state: state) }
        if role == .coordinator {
            for node in Self.participants(of: spec) {
                try db.execute(sql: "INSERT INTO job_party (job_id, node_id, state) VALUES (?, ?, ?)",
                               arguments: [spec.jobID, node, JobState.proposed.rawValue])
            }
        }
    }

    /// Every node that takes part, as the job's kind says (the parties only, for a kind this node does not know).
    public static func participants(of spec: Mpcnode_V1_JobSpec) -> [String] {
        (try? JobKinds.kind(of: spec))?.participants(of: spec) ?? spec.parties.map(\.nodeID)
    }

    public func exists(_ db: Database, jobID: String) throws -> Bool {
        try Bool.fetchOne(db, sql: "SELECT 1 FROM job WHERE id = ?", arguments: [jobID]) ?? false
    }

    public func spec(jobID: String) throws -> Mpcnode_V1_JobSpec? {
        try store.pool.read { db in
            guard let data = try Data.fetchOne(db, sql: "SELECT spec FROM job WHERE id = ?", arguments: [jobID]) else { return nil }
            return try Mpcnode_V1_JobSpec(serializedBytes: data)
        }
    }

    public func state(jobID: String) throws -> JobState? {
        try store.pool.read { db in
            try String.fetchOne(db, sql: "SELECT state FROM job WHERE id = ?", arguments: [jobID]).flatMap(JobState.init(rawValue:))
        }
    }

    public func setState(_ db: Database, jobID: String, _ state: JobState, reason: String? = nil) throws {
        try db.execute(sql: "UPDATE job SET state = ?, reason = ?, updated_at = ? WHERE id = ?",
                       arguments: [state.rawValue, reason, Date(), jobID])
        store.jobStates.changed(db, jobID: jobID, state: state)
    }

    public func setMetrics(_ db: Database, jobID: String, inputRows: Int?, bytesSent: UInt64, bytesReceived: UInt64, elapsedMs: Int) throws {
        try db.execute(sql: "UPDATE job SET input_rows = COALESCE(?, input_rows), bytes_sent = ?, bytes_received = ?, elapsed_ms = ?, updated_at = ? WHERE id = ?",
                       arguments: [inputRows, Int(bytesSent), Int(bytesReceived), elapsedMs, Date(), jobID])
    }

    public func setProgress(jobID: String, _ p: ProgressSnapshot) throws {
        try store.pool.write { db in
            try db.execute(sql: """
                UPDATE job SET progress_done = ?, progress_total = ?, progress_unit = ?, progress_loss = ?, progress_elapsed_ms = ?,
                               progress_remaining_ms = ? WHERE id = ?
                """, arguments: [p.done, p.total, p.unit, p.loss, p.elapsedMs, p.remainingMs, jobID])
        }
    }

    public func setPartyProgress(jobID: String, nodeID: String, _ p: ProgressSnapshot) throws {
        try store.write { db in
            try db.execute(sql: """
                UPDATE job_party SET progress_done = ?, progress_total = ?, progress_unit = ?, progress_loss = ?, progress_elapsed_ms = ?,
                                     progress_remaining_ms = ? WHERE job_id = ? AND node_id = ?
                """, arguments: [p.done, p.total, p.unit, p.loss, p.elapsedMs, p.remainingMs, jobID, nodeID])
        }
    }

    public func setInputRows(_ db: Database, jobID: String, _ rows: Int) throws {
        try db.execute(sql: "UPDATE job SET input_rows = ? WHERE id = ?", arguments: [rows, jobID])
    }

    public func updateParty(_ db: Database, jobID: String, nodeID: String, state: String, reason: String? = nil,
                            inputRows: Int? = nil, outcome: Mpcnode_V1_JobOutcome? = nil) throws {
        try db.execute(sql: """
            UPDATE job_party SET state = ?, reason = ?, input_rows = COALESCE(?, input_rows),
                bytes_sent = COALESCE(?, bytes_sent), bytes_received = COALESCE(?, bytes_received),
                elapsed_ms = COALESCE(?, elapsed_ms),
                received_result = COALESCE(?, received_result), audit_hash = COALESCE(?, audit_hash)
            WHERE job_id = ? AND node_id = ?
            """, arguments: [state, reason, inputRows,
                             outcome.map { Int(clamping: $0.bytesSent) }, outcome.map { Int(clamping: $0.bytesReceived) },
                             outcome.map { Int(clamping: $0.elapsedMs) },
                             outcome.map(\.receivedResult),
                             outcome.map { $0.auditRecordHash.map { String(format: "%02x", $0) }.joined() },
                             jobID, nodeID])
    }

    public func partyStates(_ db: Database, jobID: String) throws -> [String: String] {
        var out: [String: String] = [:]
        for party in try JobPartyRecord.filter(Column("job_id") == jobID).fetchAll(db) { out[party.nodeId] = party.state }
        return out
    }

    /// Jobs that were not final when the daemon stopped; they end as failed.
    public func failUnfinished(reason: String, except kept: Set<String> = []) throws -> [String] {
        try store.pool.write { db in
            let ids = try String.fetchAll(db, sql: "SELECT id FROM job WHERE state IN ('proposed', 'accepted', 'running')")
                .filter { !kept.contains($0) }
            for id in ids {
                try setState(db, jobID: id, .failed, reason: reason)
                try AuditLog(store: store).append(db, event: "job.failed", jobID: id, details: ["reason": .string(reason)])
            }
            return ids
        }
    }

    /// The ids of the jobs in any of `states`.
    public func jobIDs(inStates states: [JobState]) throws -> [String] {
        try store.pool.read { db in
            try String.fetchAll(db, sql: "SELECT id FROM job WHERE state IN (\(states.map { _ in "?" }.joined(separator: ",")))",
                                arguments: StatementArguments(states.map(\.rawValue)))
        }
    }

    public func storeResult(_ db: Database, jobID: String, kind: String, cardinality: Int, identifiers: (Database) throws -> Void) throws {
        try db.execute(sql: "DELETE FROM job_result WHERE job_id = ?", arguments: [jobID])
        try db.execute(sql: "INSERT INTO job_result (job_id, kind, cardinality, created_at) VALUES (?, ?, ?, ?)",
                       arguments: [jobID, kind, cardinality, Date()])
        try identifiers(db)
    }

    public func view(jobID: String) throws -> JobView {
        try store.pool.read { db in
            guard let job = try JobRecord.fetchOne(db, key: jobID) else { throw JobError.unknownJob(jobID) }
            return try Self.view(db, job)
        }
    }

    public func list(limit: Int = 100) throws -> [JobView] {
        try store.pool.read { db in
            try JobRecord.order(Column("created_at").desc).limit(limit).fetchAll(db).map { try Self.view(db, $0) }
        }
    }

    public func result(jobID: String, limit: Int) throws -> JobResultView {
        try store.pool.read { db in
            guard let stored = try JobResultRecord.fetchOne(db, key: jobID) else {
                if try exists(db, jobID: jobID) {
                    throw JobError.notCoordinator("job \(jobID) has no result on this node (it is not a recipient, or the job has not succeeded; see `mpcnode job status \(jobID)`)")
                }
                throw JobError.unknownJob(jobID)
            }
            let kind = stored.kind
            var identifiers: [String]?
            var values: [Double]?
            var truncated = false
            if kind == "scores" {
                let rows = try Row.fetchAll(db, sql: "SELECT identifier, value FROM job_result_item WHERE job_id = ? ORDER BY identifier LIMIT ?",
                                            arguments: [jobID, limit + 1])
                truncated = rows.count > limit
                identifiers = rows.prefix(limit).map { $0["identifier"] }
                values = rows.prefix(limit).map { $0["value"] }
            } else if kind == "intersection" || kind == "on-others-lists" {
                let items = try String.fetchAll(db, sql: "SELECT identifier FROM job_result_item WHERE job_id = ? ORDER BY identifier LIMIT ?",
                                                arguments: [jobID, limit + 1])
                truncated = items.count > limit
                identifiers = Array(items.prefix(limit))
            }
            return JobResultView(jobID: jobID, kind: kind, cardinality: stored.cardinality, identifiers: identifiers, values: values,
                                 truncated: truncated, createdAt: stored.createdAt)
        }
    }

    static func view(_ db: Database, _ job: JobRecord) throws -> JobView {
        let spec = try Mpcnode_V1_JobSpec(serializedBytes: job.spec)
        var reported: [String: JobPartyRecord] = [:]
        for p in try JobPartyRecord.filter(Column("job_id") == spec.jobID).fetchAll(db) { reported[p.nodeId] = p }
        var inputs = spec.parties.map { ($0.nodeID, $0.dataset, $0.column) }
        // The nodes that take part without data of their own: a secure sum's server, an aggregator, an arbiter.
        let kind = try? JobKinds.kind(of: spec)
        for node in participants(of: spec) where !spec.parties.contains(where: { $0.nodeID == node }) {
            inputs.append((node, "(\(kind?.roleWithoutData(of: node, in: spec) ?? "participant"))", ""))
        }
        let parties = inputs.map { (node, dataset, column) -> PartyView in
            let p = reported[node]
            return PartyView(nodeID: node, dataset: dataset, column: column,
                             state: p?.state, reason: p?.reason, inputRows: p?.inputRows,
                             bytesSent: p?.bytesSent, bytesReceived: p?.bytesReceived, elapsedMs: p?.elapsedMs,
                             resultRows: p?.resultRows, receivedResult: p?.receivedResult, auditHash: p?.auditHash,
                             progressDone: p?.progressDone, progressTotal: p?.progressTotal, progress: p?.progress)
        }
        return JobView(id: spec.jobID, protocolName: spec.protocol, role: JobRole(rawValue: job.role) ?? .participant,
                       state: JobState(rawValue: job.state) ?? .failed, reason: job.reason, coordinator: spec.coordinator,
                       parties: parties, deliverTo: spec.deliverTo, cardinalityOnly: spec.cardinalityOnly, group: spec.group,
                       specHash: job.specHash, createdAt: job.createdAt, updatedAt: job.updatedAt,
                       inputRows: job.inputRows, progressDone: job.progressDone, progressTotal: job.progressTotal, progress: job.progress,
                       bytesSent: job.bytesSent, bytesReceived: job.bytesReceived, elapsedMs: job.elapsedMs)
    }
}
