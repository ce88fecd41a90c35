import Foundation
import GRDB
import Logging
import MPCCrypto
import MPCIdentity
import MPCProtocols
import MPCTransport
import MPCWire

/// Runs this node's side of every job: as coordinator (propose, collect decisions, start, follow the
/// outcomes) and as participant (check the policy, run the protocol on its own data, store the result
/// if it is a recipient, report the outcome). Every step that changes a job's state writes the audit
/// log in the same transaction.
public actor JobEngine {
    public let nodeID: String
    let configuration: NodeConfiguration
    let store: NodeStore
    let repository: JobRepository
    let catalog: DatasetCatalog
    let audit: AuditLog
    let transport: PeerTransport
    let rendezvous = SessionRendezvous()
    let logger: Logger
    /// How long a participant waits for its peer's session to arrive.
    let sessionWaitTimeout: Duration
    /// Hooks of end-to-end fault tests (nil in production).
    let faults: FaultHooks?
    var tasks: [String: Task<Void, Never>] = [:]

    public init(configuration: NodeConfiguration, store: NodeStore, transport: PeerTransport, logger: Logger,
                sessionWaitTimeout: Duration = .seconds(60), faults: FaultHooks? = nil) {
        self.nodeID = configuration.nodeID
        self.configuration = configuration
        self.store = store
        self.repository = JobRepository(store: store)
        self.catalog = DatasetCatalog(store: store)
        self.audit = AuditLog(store: store)
        self.transport = transport
        self.logger = logger
        self.sessionWaitTimeout = sessionWaitTimeout
        self.faults = faults
    }

    // MARK: - Start-up and shutdown

    /// Ends jobs that were running when the daemon last stopped, and tells their coordinators.
    public func recoverAfterRestart() async {
        do {
            let ids = try repository.failUnfinished(reason: JobError.interruptedByRestart.description)
            for id in ids {
                logger.warning("job ended by restart", metadata: ["job": "\(id)"])
                if let spec = try repository.spec(jobID: id), spec.coordinator != nodeID {
                    let dropout = (try? JobKinds.kind(of: spec))?.failureIsDropout(spec, node: nodeID, error: nil) ?? false
                    await reportOutcome(spec: spec, state: .failed, reason: JobError.interruptedByRestart.description,
                                        completion: nil, elapsedMs: 0, auditHash: "", dropout: dropout)
                }
            }
        } catch {
            logger.error("could not recover jobs after restart", metadata: ["error": "\(error)"])
        }
    }

    /// Cancels every running job (the daemon is stopping); each ends as failed.
    public func shutdown() async {
        for (id, task) in tasks {
            logger.info("stopping job", metadata: ["job": "\(id)"])
            task.cancel()
        }
        for task in tasks.values { await task.value }
        tasks.removeAll()
    }

    // MARK: - Coordinator

    /// Validates a submission, stores it as proposed, and starts coordinating it. Returns the job id.
    public func submit(_ submission: JobSubmission) throws -> String {
        let partyIDs = submission.parties.map(\.nodeID)
        guard Set(partyIDs).count == partyIDs.count else { throw JobError.invalidSubmission("a node appears twice among the parties") }
        guard !partyIDs.contains(nodeID) else {
            throw JobError.invalidSubmission("this node (\(nodeID)) coordinates the job and cannot also be a party; submit it from a coordinator node")
        }
        for id in partyIDs where configuration.peers[id] == nil { throw JobError.unknownPeer(id) }
        let kind = try JobKinds.kind(of: submission)
        var spec = Mpcnode_V1_JobSpec()
        spec.jobID = Self.newJobID()
        spec.coordinator = nodeID
        spec.protocol = kind.name
        spec.parties = submission.parties.map { p in .with { $0.nodeID = p.nodeID; $0.dataset = p.dataset; $0.column = p.column } }
        spec.deliverTo = submission.deliverTo
        spec.cardinalityOnly = submission.cardinalityOnly
        spec.threshold = UInt32(submission.threshold ?? 0)
        try kind.prepare(submission, into: &spec, context: SubmissionContext(nodeID: nodeID, peers: configuration.peers, repository: repository))
        // What this node would refuse from another coordinator, it does not send either.
        do { try PeerSuppliedName.validate(spec: spec) } catch { throw JobError.invalidSubmission("\(error)") }
        spec.createdAtUnixMs = Int64(Date().timeIntervalSince1970 * 1000)
        let hash = try JobRepository.specHash(spec)
        try store.pool.write { db in
            try repository.insert(db, spec: spec, role: .coordinator, state: .proposed)
            try audit.append(db, event: "job.proposed", jobID: spec.jobID, details: [
                "spec_hash": .string(hash), "protocol": .string(spec.protocol),
                "parties": .array(spec.parties.map { .string("\($0.nodeID):\($0.dataset).\($0.column)") }),
                "deliver_to": .array(spec.deliverTo.map { .string($0) }), "cardinality_only": .bool(spec.cardinalityOnly),
            ])
        }
        logger.info("job proposed", metadata: ["job": "\(spec.jobID)", "spec_hash": "\(hash)"])
        let s = spec
        tasks[spec.jobID] = Task { await self.coordinate(s) }
        return spec.jobID
    }

    static func newJobID() -> String {
        var bytes = [UInt8](repeating: 0, count: 6)
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255) }
        return "job-" + bytes.map { String(format: "%02x", $0) }.joined()
    }

    private func coordinate(_ spec: Mpcnode_V1_JobSpec) async {
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
                        try repository.updateParty(db, jobID: jobID, nodeID: node, state: JobState.accepted.rawValue, inputRows: Int(d.inputRows))
                        try audit.append(db, event: "job.accepted", jobID: jobID, details: ["party": .string(node), "input_rows": .int(Int(d.inputRows))])
                    case .success(let d):
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
    func recordOutcome(_ outcome: Mpcnode_V1_JobOutcome, from peer: String) async -> Mpcnode_V1_ControlResponse {
        do {
            try PeerSuppliedName.jobID.validate(outcome.jobID)
            guard let spec = try repository.spec(jobID: outcome.jobID), spec.coordinator == nodeID,
                  let kind = try? JobKinds.kind(of: spec), kind.participants(of: spec).contains(peer) else {
                return .with { $0.error = .with { $0.message = "no job \(outcome.jobID) coordinated here with \(peer) as a party" } }
            }
            var toAbort: [String] = []
            var failure: String?
            try store.write { db in
                try repository.updateParty(db, jobID: spec.jobID, nodeID: peer, state: outcome.state,
                                           reason: outcome.reason.isEmpty ? nil : outcome.reason, outcome: outcome)
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
            return .with { $0.ack = .init() }
        } catch {
            return .with { $0.error = .with { $0.message = "\(error)" } }
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

    private func abortAll(_ spec: Mpcnode_V1_JobSpec, parties: [String], reason: String) async {
        await withTaskGroup(of: Void.self) { group in
            for party in parties {
                group.addTask {
                    _ = try? await self.control(.with { $0.abort = .with { $0.jobID = spec.jobID; $0.reason = reason } }, to: party)
                }
            }
        }
    }

    // MARK: - Participant

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
                return .with { $0.decision = decision }
            }
            let mine = spec.parties.first { $0.nodeID == nodeID }
            let kind = try? JobKinds.kind(of: spec)
            var inputRows: Int?
            let check = PolicyCheck(policy: configuration.policy, nodeID: nodeID)
            let verdict = try check.check(spec, proposer: proposer) {
                guard let mine, let kind else { return nil }
                inputRows = try kind.inputSize(spec, mine: mine, catalog: catalog)
                return inputRows
            }
            let hash = try JobRepository.specHash(spec)
            try store.write { db in
                switch verdict {
                case .allowed:
                    try repository.insert(db, spec: spec, role: .participant, state: .accepted)
                    try repository.setInputRows(db, jobID: spec.jobID, inputRows ?? 0)
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
                logger.info("job accepted", metadata: ["job": "\(spec.jobID)", "coordinator": "\(proposer)"])
            case .refused(let reason):
                decision.reason = reason
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
            tasks[jobID] = Task { await self.runParticipant(spec) }
            return .with { $0.ack = .init() }
        } catch {
            return .with { $0.error = .with { $0.message = "\(error)" } }
        }
    }

    func handleAbort(_ jobID: String, reason: String, from peer: String) async -> Mpcnode_V1_ControlResponse {
        do {
            try PeerSuppliedName.jobID.validate(jobID)
            guard let spec = try repository.spec(jobID: jobID), spec.coordinator == peer else {
                return .with { $0.error = .with { $0.message = "no job \(jobID) coordinated by \(peer) on \(nodeID)" } }
            }
            let wasFinal = try store.write { db -> Bool in
                let state = try String.fetchOne(db, sql: "SELECT state FROM job WHERE id = ?", arguments: [jobID]).flatMap(JobState.init(rawValue:))
                guard state?.isFinal == false else { return true }
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

    /// An inbound protocol session: handed to the job if the peer is its party, refused otherwise.
    func handleSession(_ open: Mpcnode_V1_SessionOpen, from peer: String, channel: TLSMessageChannel) async {
        let acceptable: Bool
        do {
            try PeerSuppliedName.jobID.validate(open.jobID)
            try PeerSuppliedName.stream.validate(open.stream)
            let spec = try repository.spec(jobID: open.jobID)
            let state = try repository.state(jobID: open.jobID)
            acceptable = spec?.parties.contains { $0.nodeID == peer } == true && (state == .accepted || state == .running)
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
    private func runParticipant(_ spec: Mpcnode_V1_JobSpec) async {
        let started = Date()
        let jobID = spec.jobID
        defer { tasks[jobID] = nil }
        let scratch = JobScratch()
        var kind: (any JobKind)?
        do {
            let k = try JobKinds.kind(of: spec)
            kind = k
            let context = RoleContext(nodeID: nodeID, spec: spec, started: started, configuration: configuration, store: store,
                                      repository: repository, catalog: catalog, audit: audit, transport: transport,
                                      rendezvous: rendezvous, logger: logger, sessionWaitTimeout: sessionWaitTimeout,
                                      scratch: scratch, faults: faults)
            // Runs off this actor (the role is not isolated to it), so proposals, sessions and aborts of
            // other jobs are served while this one prepares its input or computes.
            let c = try await k.run(context)
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
            let hash: String = try store.write { db in
                try c.store(db)
                try repository.setMetrics(db, jobID: jobID, inputRows: c.inputRows, bytesSent: c.bytesSent,
                                          bytesReceived: c.bytesReceived, elapsedMs: elapsed)
                try repository.setState(db, jobID: jobID, .succeeded)
                return try audit.append(db, event: "job.succeeded", jobID: jobID, details: finalDetails)
            }
            scratch.cleanUp()
            logger.info("job succeeded", metadata: ["job": "\(jobID)", "elapsed_ms": "\(elapsed)", "result_rows": "\(c.resultRows)"])
            await reportOutcome(spec: spec, state: .succeeded, reason: "", completion: c, elapsedMs: elapsed, auditHash: hash)
        } catch {
            scratch.cleanUp()
            let reason = Self.describe(error)
            let elapsed = Int(Date().timeIntervalSince(started) * 1000)
            var hash = ""
            var finalReason = reason
            do {
                hash = try store.write { db in
                    if let stateRow = try Row.fetchOne(db, sql: "SELECT state, reason FROM job WHERE id = ?", arguments: [jobID]),
                       JobState(rawValue: stateRow["state"])?.isFinal == true {
                        // Already ended (aborted by the coordinator): keep that reason.
                        finalReason = stateRow["reason"] ?? reason
                        return try String.fetchOne(db, sql: "SELECT hash FROM audit_log WHERE job_id = ? ORDER BY seq DESC LIMIT 1", arguments: [jobID]) ?? ""
                    }
                    try repository.setState(db, jobID: jobID, .failed, reason: reason)
                    try repository.setMetrics(db, jobID: jobID, inputRows: nil, bytesSent: 0, bytesReceived: 0, elapsedMs: elapsed)
                    return try audit.append(db, event: "job.failed", jobID: jobID, details: [
                        "reason": .string(reason), "elapsed_ms": .int(elapsed),
                    ])
                }
            } catch {
                logger.error("could not record the failure", metadata: ["job": "\(jobID)", "error": "\(error)"])
            }
            logger.warning("job failed", metadata: ["job": "\(jobID)", "reason": "\(finalReason)"])
            await reportOutcome(spec: spec, state: .failed, reason: finalReason, completion: nil, elapsedMs: elapsed, auditHash: hash,
                                dropout: kind?.failureIsDropout(spec, node: nodeID, error: error) ?? false)
        }
    }

    static func describe(_ error: Error) -> String {
        if error is CancellationError { return "the job was stopped on this node" }
        return "\(error)"
    }

    func reportOutcome(spec: Mpcnode_V1_JobSpec, state: JobState, reason: String, completion: RoleCompletion?,
                       elapsedMs: Int, auditHash: String, dropout: Bool = false) async {
        var outcome = Mpcnode_V1_JobOutcome()
        outcome.dropout = dropout
        outcome.jobID = spec.jobID
        outcome.state = state.rawValue
        outcome.reason = reason
        outcome.bytesSent = completion?.bytesSent ?? 0
        outcome.bytesReceived = completion?.bytesReceived ?? 0
        outcome.resultRows = UInt64(completion?.resultRows ?? 0)
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

    // MARK: - Sending

    func control(_ request: Mpcnode_V1_ControlRequest, to node: String) async throws -> Mpcnode_V1_ControlResponse {
        guard let address = configuration.peers[node] else { throw JobError.unknownPeer(node) }
        return try await transport.control(request, to: node, at: address)
    }
}
