import Foundation
import GRDB
import Logging
import MPCCrypto
import MPCIdentity
import MPCProtocols
import MPCTransport
import MPCWire

/// A participant's side of a job's lifecycle: the policy check of a proposal, the start (its role runs
/// off this actor, through the job's kind), the abort, inbound sessions, and the outcome it records and
/// reports to the coordinator.
extension JobEngine {
    /// Refuses a proposal before reading it (its sender may not propose at all), and records why. The
    /// proposal's id is not echoed or stored: it was never validated.
    func refuseProposal(from proposer: String, reason: String) -> Mpcnode_V1_ControlResponse {
        logger.warning("refused a proposal from a node that may not propose", metadata: ["from": "\(proposer)", "reason": "\(reason)"])
        _ = try? audit.append(event: "job.proposal.refused", jobID: nil, details: ["from": .string(proposer), "reason": .string(reason)])
        return .with { $0.decision = .with { $0.reason = reason } }
    }

    /// Checks a proposal against the local policy and records the decision.
    func handleProposal(_ spec: Mpcnode_V1_JobSpec, from proposer: String) async -> Mpcnode_V1_ControlResponse {
        var decision = Mpcnode_V1_JobDecision()
        decision.jobID = spec.jobID
        do {
            try PeerSuppliedName.validate(spec: spec)
        } catch {
            // Refused before the id is used for anything: recorded without it (it may be hostile).
            decision.jobID = ""
            decision.reason = "\(error)"
            logger.warning("refused a malformed proposal", metadata: ["coordinator": "\(proposer)", "reason": "\(error)"])
            _ = try? audit.append(event: "job.proposal.invalid", jobID: nil, details: [
                "coordinator": .string(proposer), "reason": .string("\(error)"),
            ])
            return .with { $0.decision = decision }
        }
        do {
            if try repository.state(jobID: spec.jobID) != nil {
                decision.reason = "a job with id \(spec.jobID) already exists on this node"
                metrics.policyRefused(rule: .duplicateJob)
                return .with { $0.decision = decision }
            }
            let mine = spec.parties.first { $0.nodeID == nodeID }
            let kind = try? JobKinds.kind(of: spec)
            var inputRows: Int?
            let check = PolicyCheck(policy: configuration.policy, nodeID: nodeID)
            var (verdict, refusingRule) = try check.checkWithRule(spec, proposer: proposer) {
                guard let mine, let kind else { return nil }
                inputRows = try kind.inputSize(spec, mine: mine, catalog: catalog)
                return inputRows
            }
            let hash = try JobRepository.specHash(spec)
            // Differencing with the cells already released on the dataset (secure sums): read before the
            // decision's transaction, so a long history does not hold the node's writer.
            if verdict == .allowed, let mine, case .aggregate? = spec.kind, let rule = configuration.policy.datasets[mine.dataset],
               let difference = try store.read({ db in try ReleaseHistory().refusal(spec, dataset: mine.dataset, minimum: rule.minimumCellRecords, db) }) {
                verdict = .refused(reason: difference)
                refusingRule = .differencing
            }
            // The input's version, for the commitment the receipt will carry (read before the transaction).
            let inputInfo = verdict == .allowed ? mine.flatMap { try? catalog.describe($0.dataset) } : nil
            var commitment: [UInt8] = []
            try store.write { db in
                // The query budgets, counted in the same transaction that records the decision.
                if verdict == .allowed, let mine, let rule = configuration.policy.datasets[mine.dataset],
                   let over = try DatasetBudget(nodeID: nodeID).refusal(dataset: mine.dataset, rule: rule, coordinator: proposer, db) {
                    verdict = .refused(reason: over)
                    refusingRule = .queryBudget
                }
                // Repeated set comparisons with one peer on an unchanged input (differencing of PSI results).
                if verdict == .allowed, let mine, let rule = configuration.policy.datasets[mine.dataset],
                   let over = try DatasetBudget(nodeID: nodeID).peerRefusal(spec, dataset: mine.dataset, rule: rule, db) {
                    verdict = .refused(reason: over)
                    refusingRule = .peerComparisons
                }
                // The privacy budget of a dataset whose secure sums are noised.
                if verdict == .allowed, let mine, case .aggregate? = spec.kind, let noise = configuration.policy.datasets[mine.dataset]?.sumNoise,
                   let over = try noise.budgetRefusal(dataset: mine.dataset, nodeID: nodeID, db) {
                    verdict = .refused(reason: over)
                    refusingRule = .privacyBudget
                }
                switch verdict {
                case .allowed:
                    try repository.insert(db, spec: spec, role: .participant, state: .accepted)
                    try repository.setInputRows(db, jobID: spec.jobID, inputRows ?? 0)
                    if let inputInfo, let mine {
                        commitment = try InputCommitment.record(db, jobID: spec.jobID, dataset: inputInfo, column: mine.column)
                    }
                    try audit.append(db, event: "job.policy.accepted", jobID: spec.jobID, details: [
                        "spec_hash": .string(hash), "coordinator": .string(proposer), "input_rows": .int(inputRows ?? 0),
                        "dataset": .string(mine?.dataset ?? ""), "column": .string(mine?.column ?? ""),
                        "peers": .array(spec.parties.map(\.nodeID).filter { $0 != nodeID }.map { .string($0) }),
                    ])
                case .refused(let reason):
                    try repository.insert(db, spec: spec, role: .participant, state: .refused, reason: reason)
                    try audit.append(db, event: "job.policy.refused", jobID: spec.jobID, details: [
                        "spec_hash": .string(hash), "coordinator": .string(proposer), "reason": .string(reason),
                    ])
                }
            }
            switch verdict {
            case .allowed:
                decision.accepted = true
                decision.inputRows = UInt64(inputRows ?? 0)
                decision.inputCommitment = Data(commitment)
                logger.info("job accepted", metadata: ["job": "\(spec.jobID)", "coordinator": "\(proposer)"])
            case .refused(let reason):
                decision.reason = reason
                metrics.policyRefused(rule: refusingRule ?? .kindRule)
                logger.notice("job refused by policy", metadata: ["job": "\(spec.jobID)", "reason": "\(reason)"])
            }
        } catch {
            decision.accepted = false
            decision.reason = "could not check the proposal: \(error)"
        }
        return .with { $0.decision = decision }
    }

    func handleStart(_ jobID: String, from peer: String) async -> Mpcnode_V1_ControlResponse {
        do {
            try PeerSuppliedName.jobID.validate(jobID)
            guard let spec = try repository.spec(jobID: jobID), spec.coordinator == peer else {
                return .with { $0.error = .with { $0.message = "no job \(jobID) proposed by \(peer) on \(nodeID)" } }
            }
            guard try repository.state(jobID: jobID) == .accepted else {
                return .with { $0.error = .with { $0.message = "job \(jobID) is not in the accepted state on \(nodeID)" } }
            }
            try store.write { db in try repository.setState(db, jobID: jobID, .running) }
            tasks[jobID] = Task(executorPreference: JobExecutor.shared) { await self.runParticipant(spec) }
            return .with { $0.ack = .init() }
        } catch {
            return .with { $0.error = .with { $0.message = "\(error)" } }
        }
    }

    func handleAbort(_ jobID: String, reason received: String, from peer: String) async -> Mpcnode_V1_ControlResponse {
        let reason = PeerText.cut(received)
        do {
            try PeerSuppliedName.jobID.validate(jobID)
            guard let spec = try repository.spec(jobID: jobID), spec.coordinator == peer else {
                return .with { $0.error = .with { $0.message = "no job \(jobID) coordinated by \(peer) on \(nodeID)" } }
            }
            let wasFinal = try store.write { db -> Bool in
                let state = try String.fetchOne(db, sql: "SELECT state FROM job WHERE id = ?", arguments: [jobID]).flatMap(JobState.init(rawValue:))
                guard state?.isFinal == false else {
                    // Already ended (a peer's abort can arrive first): the coordinator's abort and its reason
                    // are still recorded, once.
                    let recorded = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM audit_log WHERE job_id = ? AND event = 'job.aborted'", arguments: [jobID]) ?? 0
                    if state == .failed, recorded == 0 {
                        try audit.append(db, event: "job.aborted", jobID: jobID, details: ["by": .string(peer), "reason": .string(reason), "already": .string("failed")])
                    }
                    return true
                }
                try repository.setState(db, jobID: jobID, .failed, reason: "aborted by \(peer): \(reason)")
                try audit.append(db, event: "job.aborted", jobID: jobID, details: ["by": .string(peer), "reason": .string(reason)])
                return false
            }
            if !wasFinal {
                logger.notice("job aborted", metadata: ["job": "\(jobID)", "by": "\(peer)", "reason": "\(reason)"])
                await rendezvous.cancelClaims(jobID: jobID, reason: reason)
                tasks[jobID]?.cancel()
            }
            return .with { $0.ack = .init() }
        } catch {
            return .with { $0.error = .with { $0.message = "\(error)" } }
        }
    }

    /// An inbound protocol session: handed to the job if the peer takes part in it (a party, or a role
    /// without data such as a mixer), refused otherwise.
    func handleSession(_ open: Mpcnode_V1_SessionOpen, from peer: String, channel: TLSMessageChannel) async {
        let acceptable: Bool
        do {
            try PeerSuppliedName.jobID.validate(open.jobID)
            try PeerSuppliedName.stream.validate(open.stream)
            let spec = try repository.spec(jobID: open.jobID)
            let state = try repository.state(jobID: open.jobID)
            let participants = spec.flatMap { spec in (try? JobKinds.kind(of: spec))?.participants(of: spec) } ?? []
            acceptable = participants.contains(peer) && peer != nodeID && (state == .accepted || state == .running)
        } catch { acceptable = false }
        guard acceptable else {
            let shownID = JobError.shown(open.jobID)
            logger.warning("refused a session", metadata: ["job": "\(shownID)", "peer": "\(peer)"])
            var frame = Mpcnode_V1_SessionFrame()
            frame.abort = .with { $0.reason = "\(nodeID) has no running job \(shownID) with \(peer) as a party" }
            if let bytes: [UInt8] = try? frame.serializedBytes() { try? await channel.send(bytes) }
            return
        }
        await rendezvous.offer(jobID: open.jobID, stream: open.stream, peer: peer, channel: channel, timeout: sessionWaitTimeout)
    }

    /// Runs this node's role of a started job, then records the outcome (state, result, audit record in
    /// one transaction) and reports it to the coordinator.
    func runParticipant(_ spec: Mpcnode_V1_JobSpec, resuming: Bool = false) async {
        let started = Date()
        let jobID = spec.jobID
        defer { tasks[jobID] = nil }
        let scratch = JobScratch()
        var kind: (any JobKind)?
        do {
            let k = try JobKinds.kind(of: spec)
            kind = k
            let sessions = TLSSessionPort(me: nodeID, jobID: jobID, transport: transport, rendezvous: rendezvous,
                                          addresses: configuration.peers)
            var role = RoleContext(nodeID: nodeID, spec: spec, started: started, configuration: configuration, store: store,
                                      repository: repository, catalog: catalog, audit: audit, sessions: sessions, transport: transport,
                                      logger: logger, sessionWaitTimeout: sessionWaitTimeout, scratch: scratch, faults: faults)
            role.resuming = resuming
            let context = role
            // Runs off this actor (the role is not isolated to it), so proposals, sessions and aborts of
            // other jobs are served while this one prepares its input or computes.
            let c = try await Self.withDeadline(seconds: configuration.maximumJobSeconds) { try await k.run(context) }
            let elapsed = Int(Date().timeIntervalSince(started) * 1000)
            var details = c.details
            details["spec_hash"] = .string(try JobRepository.specHash(spec))
            details["node"] = .string(nodeID)
            details["input_rows"] = .int(c.inputRows)
            details["bytes_sent"] = .int(Int(c.bytesSent))
            details["bytes_received"] = .int(Int(c.bytesReceived))
            details["elapsed_ms"] = .int(elapsed)
            details["result_rows"] = .int(c.resultRows)
            details["received_result"] = .bool(c.receivedResult)
            let finalDetails = details
            var resultCommitment: [UInt8] = []
            let hash: String = try store.write { db in
                try c.store(db)
                resultCommitment = try ResultCommitment.record(db, jobID: jobID) ?? []
                try repository.setMetrics(db, jobID: jobID, inputRows: c.inputRows, bytesSent: c.bytesSent,
                                          bytesReceived: c.bytesReceived, elapsedMs: elapsed)
                try repository.setState(db, jobID: jobID, .succeeded)
                return try audit.append(db, event: "job.succeeded", jobID: jobID, details: finalDetails)
            }
            scratch.cleanUp()
            logger.info("job succeeded", metadata: ["job": "\(jobID)", "elapsed_ms": "\(elapsed)", "result_rows": "\(c.resultRows)"])
            await reportOutcome(spec: spec, state: .succeeded, reason: "", completion: c, elapsedMs: elapsed, auditHash: hash,
                                resultCommitment: resultCommitment)
        } catch {
            if stopping, let kind, kind.whyNotResumable(spec, configuration: configuration) == nil,
               (try? repository.state(jobID: jobID)) == .running {
                // The daemon stops: the role keeps its sealed state and checkpoints and resumes at the next start.
                _ = try? audit.append(event: "job.suspended", jobID: jobID, details: [
                    "reason": .string("the daemon stopped; the job resumes when it starts again")])
                logger.notice("job suspended until the daemon starts again", metadata: ["job": "\(jobID)"])
                return
            }
            scratch.cleanUp()
            let reason = PeerText.cut(Self.describe(error))
            let failure = JobFailure.of(error, isDropout: kind?.failureIsDropout(spec, node: nodeID, error: error) ?? false)
            let elapsed = Int(Date().timeIntervalSince(started) * 1000)
            var hash = ""
            var finalReason = reason
            do {
                hash = try store.write { db in
                    if let job = try JobRecord.fetchOne(db, key: jobID), JobState(rawValue: job.state)?.isFinal == true {
                        // Already ended (aborted by the coordinator): keep that reason.
                        finalReason = job.reason ?? reason
                        return try String.fetchOne(db, sql: "SELECT hash FROM audit_log WHERE job_id = ? ORDER BY seq DESC LIMIT 1", arguments: [jobID]) ?? ""
                    }
                    try repository.setState(db, jobID: jobID, .failed, reason: reason)
                    try repository.setMetrics(db, jobID: jobID, inputRows: nil, bytesSent: 0, bytesReceived: 0, elapsedMs: elapsed)
                    return try audit.append(db, event: "job.failed", jobID: jobID, details: [
                        "reason": .string(reason), "failure": .string(failure.rawValue), "elapsed_ms": .int(elapsed),
                    ])
                }
            } catch {
                logger.error("could not record the failure", metadata: ["job": "\(jobID)", "error": "\(error)"])
            }
            logger.warning("job failed", metadata: ["job": "\(jobID)", "failure": "\(failure.rawValue)", "reason": "\(finalReason)"])
            await reportOutcome(spec: spec, state: .failed, reason: finalReason, completion: nil, elapsedMs: elapsed, auditHash: hash,
                                dropout: failure == .dropout)
        }
    }

    func reportOutcome(spec: Mpcnode_V1_JobSpec, state: JobState, reason: String, completion: RoleCompletion?,
                       elapsedMs: Int, auditHash: String, dropout: Bool = false, resultCommitment: [UInt8] = []) async {
        var outcome = Mpcnode_V1_JobOutcome()
        outcome.resultCommitment = Data(resultCommitment)
        outcome.dropout = dropout
        outcome.jobID = spec.jobID
        outcome.state = state.rawValue
        outcome.reason = reason
        outcome.bytesSent = completion?.bytesSent ?? 0
        outcome.bytesReceived = completion?.bytesReceived ?? 0
        outcome.receivedResult = completion?.receivedResult ?? false
        outcome.elapsedMs = Int64(elapsedMs)
        outcome.auditRecordHash = Data(AuditLog.hashBytes(auditHash))
        var lastError: Error?
        for attempt in 0..<3 {
            do {
                _ = try await control(.with { $0.outcome = outcome }, to: spec.coordinator)
                return
            } catch {
                lastError = error
                try? await Task.sleep(for: .milliseconds(200 * (attempt + 1)))
            }
        }
        logger.warning("could not report the outcome to the coordinator", metadata: ["job": "\(spec.jobID)", "error": "\(lastError.map { "\($0)" } ?? "")"])
    }

    /// Runs a role, failing it with `deadlineExceeded` once it has run `seconds` (the role is cancelled
    /// and left to wind down; the failure is not held up by a role that is slow to notice).
    nonisolated static func withDeadline<R: Sendable>(seconds: Int, _ body: @escaping @Sendable () async throws -> R) async throws -> R {
        let once = FirstResult<R>()
        let work = Task(executorPreference: JobExecutor.shared) { try await body() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<R, Error>) in
                once.set(continuation)
                let timer = Task {
                    guard (try? await Task.sleep(for: .seconds(seconds))) != nil else { return }  // cancelled: the work ended
                    if once.finish(.failure(JobError.deadlineExceeded(seconds: seconds))) { work.cancel() }
                }
                Task {
                    once.finish(await work.result)
                    timer.cancel()  // nothing keeps the finished role (and its results) alive for a day
                }
            }
        } onCancel: {
            work.cancel()
        }
    }
}

/// Resumes a continuation with whichever result arrives first.
final class FirstResult<R: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<R, Error>?
    private var pending: Result<R, Error>?
    private var done = false

    func set(_ c: CheckedContinuation<R, Error>) {
        let ready: Result<R, Error>? = lock.withLock {
            if let p = pending { pending = nil; return p }
            continuation = c
            return nil
        }
        if let ready { c.resume(with: ready) }
    }

    /// True if this result was the first.
    @discardableResult
    func finish(_ result: Result<R, Error>) -> Bool {
        let (first, c): (Bool, CheckedContinuation<R, Error>?) = lock.withLock {
            guard !done else { return (false, nil) }
            done = true
            if let c = continuation { continuation = nil; return (true, c) }
            pending = result
            return (true, nil)
        }
        c?.resume(with: result)
        return first
    }
}
