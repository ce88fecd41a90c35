import Foundation
import GRDB
import Logging
import MPCCrypto
import MPCIdentity
import MPCProtocols
import MPCTransport
import MPCWire

/// The coordinator's side of a job's lifecycle: every participant's policy decision, the start, each
/// participant's outcome and progress, and the abort of the others when one fails.
extension JobEngine {
    func coordinate(_ spec: Mpcnode_V1_JobSpec) async {
        defer { tasks[spec.jobID] = nil }
        let jobID = spec.jobID
        // 1. Every participant checks its policy.
        guard let kind = try? JobKinds.kind(of: spec) else { return }
        let participants = kind.participants(of: spec)
        let decisions = await withTaskGroup(of: (String, Result<Mpcnode_V1_JobDecision, Error>).self) { group in
            for party in participants {
                group.addTask {
                    do {
                        let response = try await self.control(.with { $0.proposal = .with { $0.spec = spec } }, to: party)
                        guard case .decision(let d)? = response.kind else {
                            throw JobError.unreachable(node: party, detail: "answered the proposal with \(response)")
                        }
                        return (party, .success(d))
                    } catch {
                        return (party, .failure(error))
                    }
                }
            }
            var out: [(String, Result<Mpcnode_V1_JobDecision, Error>)] = []
            for await d in group { out.append(d) }
            return out
        }
        var refusals: [String] = []
        var accepted: [String] = []
        do {
            try store.write { db in
                for (node, result) in decisions {
                    switch result {
                    case .success(let d) where d.accepted:
                        accepted.append(node)
                        try repository.updateParty(db, jobID: jobID, nodeID: node, state: JobState.accepted.rawValue, inputRows: Int(clamping: d.inputRows))
                        if d.inputCommitment.count == 32 {
                            try db.execute(sql: "UPDATE job_party SET input_commitment = ? WHERE job_id = ? AND node_id = ?",
                                           arguments: [d.inputCommitment, jobID, node])
                        }
                        try audit.append(db, event: "job.accepted", jobID: jobID, details: ["party": .string(node), "input_rows": .int(Int(clamping: d.inputRows))])
                    case .success(var d):
                        d.reason = PeerText.cut(d.reason)
                        refusals.append("\(node): \(d.reason)")
                        try repository.updateParty(db, jobID: jobID, nodeID: node, state: JobState.refused.rawValue, reason: d.reason)
                        try audit.append(db, event: "job.refused", jobID: jobID, details: ["party": .string(node), "reason": .string(d.reason)])
                    case .failure(let e):
                        refusals.append("\(node): unreachable (\(e))")
                        try repository.updateParty(db, jobID: jobID, nodeID: node, state: JobState.failed.rawValue, reason: "\(e)")
                        try audit.append(db, event: "job.unreachable", jobID: jobID, details: ["party": .string(node), "error": .string("\(e)")])
                    }
                }
                if refusals.isEmpty {
                    try repository.setState(db, jobID: jobID, .running)
                } else {
                    try repository.setState(db, jobID: jobID, .refused, reason: refusals.sorted().joined(separator: "; "))
                }
            }
        } catch {
            logger.error("could not record decisions", metadata: ["job": "\(jobID)", "error": "\(error)"])
            return
        }
        if !refusals.isEmpty {
            logger.notice("job refused", metadata: ["job": "\(jobID)", "reasons": "\(refusals.sorted().joined(separator: "; "))"])
            await abortAll(spec, parties: accepted, reason: "job refused: \(refusals.sorted().joined(separator: "; "))")
            return
        }
        // 2. Everyone accepted: start.
        logger.info("job starting", metadata: ["job": "\(jobID)"])
        let failures = await withTaskGroup(of: (node: String, reason: String)?.self) { group in
            for party in participants {
                group.addTask {
                    do {
                        let r = try await self.control(.with { $0.start = .with { $0.jobID = jobID } }, to: party)
                        if case .error(let e)? = r.kind { return (party, e.message) }
                        return nil
                    } catch { return (party, "\(error)") }
                }
            }
            var out: [(node: String, reason: String)] = []
            for await f in group { if let f { out.append(f) } }
            return out
        }
        // Some kinds go on without parties that could not be started (dropouts of a secure sum).
        let fatal = failures.filter { !kind.toleratesStartFailure(of: $0.node, in: spec) }.map { "\($0.node): \($0.reason)" }
        for f in failures where !fatal.contains("\(f.node): \(f.reason)") {
            logger.warning("a party could not be started; the job goes on without it", metadata: ["job": "\(jobID)", "party": "\(f.node)", "error": "\(f.reason)"])
        }
        if fatal.isEmpty {
            try? store.write { db in
                for party in participants {
                    // Unless an outcome already arrived (a fast job), the party is now running.
                    try db.execute(sql: "UPDATE job_party SET state = ? WHERE job_id = ? AND node_id = ? AND state = ?",
                                   arguments: [JobState.running.rawValue, jobID, party, JobState.accepted.rawValue])
                }
            }
        } else {
            let reason = "could not start: " + fatal.sorted().joined(separator: "; ")
            try? store.write { db in
                try repository.setState(db, jobID: jobID, .failed, reason: reason)
                try audit.append(db, event: "job.failed", jobID: jobID, details: ["reason": .string(reason)])
            }
            await abortAll(spec, parties: participants, reason: reason)
        }
    }

    /// A participant reports how the job ended for it.
    func recordOutcome(_ received: Mpcnode_V1_JobOutcome, from peer: String) async -> Mpcnode_V1_ControlResponse {
        var outcome = received
        outcome.reason = PeerText.cut(received.reason)
        do {
            try PeerSuppliedName.jobID.validate(outcome.jobID)
            guard let spec = try repository.spec(jobID: outcome.jobID), spec.coordinator == nodeID,
                  let kind = try? JobKinds.kind(of: spec), kind.participants(of: spec).contains(peer) else {
                return .with { $0.error = .with { $0.message = "no job \(outcome.jobID) coordinated here with \(peer) as a party" } }
            }
            var toAbort: [String] = []
            var failure: String?
            var awaitServer: String?
            try store.write { db in
                try repository.updateParty(db, jobID: spec.jobID, nodeID: peer, state: outcome.state,
                                           reason: outcome.reason.isEmpty ? nil : outcome.reason, outcome: outcome)
                if outcome.resultCommitment.count == 32 {
                    try db.execute(sql: "UPDATE job_party SET result_commitment = ? WHERE job_id = ? AND node_id = ?",
                                   arguments: [outcome.resultCommitment, spec.jobID, peer])
                }
                try audit.append(db, event: "job.outcome", jobID: spec.jobID, details: [
                    "party": .string(peer), "state": .string(outcome.state), "reason": .string(outcome.reason),
                    "party_audit_hash": .string(outcome.auditRecordHash.map { String(format: "%02x", $0) }.joined()),
                ])
                let states = try repository.partyStates(db, jobID: spec.jobID)
                let current = try String.fetchOne(db, sql: "SELECT state FROM job WHERE id = ?", arguments: [spec.jobID]).flatMap(JobState.init(rawValue:))
                guard current?.isFinal == false else { return }
                if let server = kind.outcomeOwner(of: spec) {
                    // The job is the server's (it holds the report). A party failing in a phase the protocol
                    // survives reports itself as a dropout (the report says who is in it); any other failure ends the job.
                    let fatal = outcome.state == JobState.failed.rawValue && (peer == server || !outcome.dropout)
                    if fatal {
                        failure = "\(peer): \(outcome.reason)"
                        try repository.setState(db, jobID: spec.jobID, .failed, reason: failure)
                        try audit.append(db, event: "job.failed", jobID: spec.jobID, details: ["reason": .string(failure!)])
                        toAbort = states.filter { $0.key != peer && !(JobState(rawValue: $0.value)?.isFinal ?? true) }.map(\.key)
                    } else if peer == server && outcome.state == JobState.succeeded.rawValue {
                        try repository.setState(db, jobID: spec.jobID, .succeeded)
                        try audit.append(db, event: "job.succeeded", jobID: spec.jobID, details: [:])
                    } else if peer != server, !(states[server].flatMap(JobState.init(rawValue:))?.isFinal ?? false),
                              states.allSatisfy({ $0.key == server || (JobState(rawValue: $0.value)?.isFinal ?? false) }) {
                        // Everyone else has ended: the server's report is due now, or the server is lost.
                        awaitServer = server
                    }
                } else if outcome.state == JobState.failed.rawValue {
                    failure = "\(peer): \(outcome.reason)"
                    try repository.setState(db, jobID: spec.jobID, .failed, reason: failure)
                    try audit.append(db, event: "job.failed", jobID: spec.jobID, details: ["reason": .string(failure!)])
                    toAbort = states.filter { $0.key != peer && !(JobState(rawValue: $0.value)?.isFinal ?? true) }.map(\.key)
                } else if states.values.allSatisfy({ $0 == JobState.succeeded.rawValue }) {
                    try repository.setState(db, jobID: spec.jobID, .succeeded)
                    try audit.append(db, event: "job.succeeded", jobID: spec.jobID, details: [:])
                }
            }
            if let failure {
                logger.warning("job failed", metadata: ["job": "\(spec.jobID)", "reason": "\(failure)"])
                let s = spec, parties = toAbort
                Task { await self.abortAll(s, parties: parties, reason: failure) }
            }
            if let awaitServer {
                let s = spec
                Task { await self.failIfServerSilent(s, server: awaitServer) }
            }
            return .with { $0.ack = .init() }
        } catch {
            return .with { $0.error = .with { $0.message = "\(error)" } }
        }
    }

    /// Fails the job, naming its server, if the server has not reported its outcome within the grace
    /// period after every other party ended (a killed aggregator would otherwise leave the job running).
    func failIfServerSilent(_ spec: Mpcnode_V1_JobSpec, server: String) async {
        let grace = configuration.serverReportGraceSeconds
        try? await Task.sleep(for: .seconds(grace))
        var failed: String?
        try? store.write { db in
            let current = try String.fetchOne(db, sql: "SELECT state FROM job WHERE id = ?", arguments: [spec.jobID]).flatMap(JobState.init(rawValue:))
            let states = try repository.partyStates(db, jobID: spec.jobID)
            guard current?.isFinal == false, !(states[server].flatMap(JobState.init(rawValue:))?.isFinal ?? false) else { return }
            let reason = "\(server): the server did not report within \(grace) s of every other party's end; it is presumed lost"
            try repository.updateParty(db, jobID: spec.jobID, nodeID: server, state: JobState.failed.rawValue, reason: "presumed lost")
            try repository.setState(db, jobID: spec.jobID, .failed, reason: reason)
            try audit.append(db, event: "job.failed", jobID: spec.jobID, details: ["reason": .string(reason)])
            failed = reason
        }
        if let failed {
            logger.warning("job failed", metadata: ["job": "\(spec.jobID)", "reason": "\(failed)"])
            await abortAll(spec, parties: [server], reason: failed)
        }
    }

    /// A participant's progress report: stored for `job status` at the coordinator.
    func recordProgress(_ progress: Mpcnode_V1_JobProgress, from peer: String) async -> Mpcnode_V1_ControlResponse {
        do {
            try PeerSuppliedName.jobID.validate(progress.jobID)
            guard let spec = try repository.spec(jobID: progress.jobID), spec.coordinator == nodeID,
                  let kind = try? JobKinds.kind(of: spec), kind.participants(of: spec).contains(peer) else {
                return .with { $0.error = .with { $0.message = "no job \(progress.jobID) coordinated here with \(peer) as a party" } }
            }
            try repository.setPartyProgress(jobID: progress.jobID, nodeID: peer, ProgressSnapshot(progress))
            return .with { $0.ack = .init() }
        } catch {
            return .with { $0.error = .with { $0.message = "\(error)" } }
        }
    }

    /// The coordinator's operator stops a job this node coordinates: it fails here with the reason (and
    /// who asked), and every party still in it is told to abort (each ends it as failed, recorded).
    public func abort(jobID: String, reason: String, by who: String) async throws {
        guard let spec = try repository.spec(jobID: jobID), spec.coordinator == nodeID else {
            throw JobError.unknownJob(jobID)
        }
        let reason = String(reason.prefix(500))
        let why = "aborted by \(who)" + (reason.isEmpty ? "" : ": \(reason)")
        var parties: [String] = []
        try store.write { db in
            let current = try String.fetchOne(db, sql: "SELECT state FROM job WHERE id = ?", arguments: [jobID]).flatMap(JobState.init(rawValue:))
            guard let current, !current.isFinal else {
                throw JobError.notRunning("job \(jobID) has already ended (\(current?.rawValue ?? "unknown")): nothing to abort")
            }
            parties = try repository.partyStates(db, jobID: jobID).filter { !(JobState(rawValue: $0.value)?.isFinal ?? true) }.map(\.key)
            try repository.setState(db, jobID: jobID, .failed, reason: why)
            try audit.append(db, event: "job.aborted", jobID: jobID, details: ["by": .string(who), "reason": .string(reason)])
        }
        logger.notice("job aborted", metadata: ["job": "\(jobID)", "by": "\(who)", "reason": "\(reason)"])
        await abortAll(spec, parties: parties, reason: why)
    }

    func abortAll(_ spec: Mpcnode_V1_JobSpec, parties: [String], reason: String) async {
        await withTaskGroup(of: Void.self) { group in
            for party in parties {
                group.addTask {
                    _ = try? await self.control(.with { $0.abort = .with { $0.jobID = spec.jobID; $0.reason = reason } }, to: party)
                }
            }
        }
    }
}
