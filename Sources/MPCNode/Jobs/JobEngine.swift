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
    private var tasks: [String: Task<Void, Never>] = [:]

    public init(configuration: NodeConfiguration, store: NodeStore, transport: PeerTransport, logger: Logger,
                sessionWaitTimeout: Duration = .seconds(60)) {
        self.nodeID = configuration.nodeID
        self.configuration = configuration
        self.store = store
        self.repository = JobRepository(store: store)
        self.catalog = DatasetCatalog(store: store)
        self.audit = AuditLog(store: store)
        self.transport = transport
        self.logger = logger
        self.sessionWaitTimeout = sessionWaitTimeout
    }

    // MARK: - Start-up and shutdown

    /// Ends jobs that were running when the daemon last stopped, and tells their coordinators.
    public func recoverAfterRestart() async {
        do {
            let ids = try repository.failUnfinished(reason: JobError.interruptedByRestart.description)
            for id in ids {
                logger.warning("job ended by restart", metadata: ["job": "\(id)"])
                if let spec = try repository.spec(jobID: id), spec.coordinator != nodeID {
                    await reportOutcome(spec: spec, state: .failed, reason: JobError.interruptedByRestart.description,
                                        completion: nil, elapsedMs: 0, auditHash: "", dropout: failureIsDropout(spec, nil))
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
        let setKind = SetJobKind(rawValue: submission.protocolName)
        // Set operations and training deliver to their aggregator (and, optionally, named parties); predict to its guest.
        let recipientsImplied = setKind != nil || ["train-lr", "predict"].contains(submission.protocolName)
        guard !submission.deliverTo.isEmpty || recipientsImplied else {
            throw JobError.invalidSubmission("name at least one recipient with --deliver-to")
        }
        var aggregateSpec: Mpcnode_V1_AggregateSpec?
        var setSpec: Mpcnode_V1_SetOperationSpec?
        var trainingSpec: Mpcnode_V1_TrainingSpec?
        switch submission.protocolName {
        case "psi":
            guard submission.parties.count == 2 else {
                throw JobError.invalidSubmission("two-party PSI needs exactly two --party options, got \(submission.parties.count)")
            }
            for r in submission.deliverTo where !partyIDs.contains(r) {
                throw JobError.invalidSubmission("recipient \(r) is not a party of the job (PSI delivers to its parties)")
            }
            guard BlindingGroup(rawValue: submission.group) != nil else {
                throw JobError.invalidSubmission("unknown group '\(submission.group)' (available: \(BlindingGroup.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
        case "secure-sum":
            guard submission.parties.count >= 2 else { throw JobError.invalidSubmission("a secure sum needs at least two parties") }
            guard submission.deliverTo.count == 1, let server = submission.deliverTo.first, !partyIDs.contains(server), server != nodeID else {
                throw JobError.invalidSubmission("a secure sum is delivered to exactly one node that is not a party (the regulator), with --deliver-to")
            }
            guard configuration.peers[server] != nil else { throw JobError.unknownPeer(server) }
            guard let a = submission.aggregate else { throw JobError.invalidSubmission("a secure sum needs an aggregate (--measure, --group-by, --groups)") }
            var spec = Mpcnode_V1_AggregateSpec()
            spec.groupBy = a.groupBy ?? ""
            spec.groups = a.groups
            spec.decimals = UInt32(max(0, a.decimals))
            spec.minCellRecords = UInt64(max(1, a.minCellRecords))
            spec.minCellParties = UInt32(max(1, a.minCellParties))
            for m in a.measures {
                let parts = m.split(separator: ":", maxSplits: 1).map(String.init)
                guard parts.count == 2 else { throw JobError.invalidSubmission("measure '\(m)' is not function:column (sum:balance, count:account)") }
                spec.measures.append(.with { $0.function = parts[0]; $0.column = parts[1] })
            }
            do { try LocalAggregate(spec: spec, parties: partyIDs.count).validate() } catch { throw JobError.invalidSubmission("\(error)") }
            if let t = submission.threshold {
                guard (2...partyIDs.count).contains(t) else { throw JobError.invalidSubmission("threshold \(t) must lie in 2…\(partyIDs.count)") }
            }
            aggregateSpec = spec
        case "train-lr":
            trainingSpec = try validateTrainingSubmission(submission)
        case "predict":
            trainingSpec = try validatePredictSubmission(submission)
        default:
            guard let setKind else {
                throw JobError.invalidSubmission("unknown protocol '\(submission.protocolName)' (available: psi, secure-sum, train-lr, predict, \(SetJobKind.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            setSpec = try validateSetSubmission(submission, kind: setKind)
        }
        var spec = Mpcnode_V1_JobSpec()
        spec.jobID = Self.newJobID()
        spec.coordinator = nodeID
        spec.protocol = submission.protocolName
        spec.parties = submission.parties.map { p in .with { $0.nodeID = p.nodeID; $0.dataset = p.dataset; $0.column = p.column } }
        spec.deliverTo = submission.protocolName == "predict" ? [submission.parties.first?.nodeID ?? ""] : submission.deliverTo
        spec.cardinalityOnly = submission.cardinalityOnly
        spec.group = submission.protocolName == "psi" || setKind != nil ? submission.group : ""
        if let aggregateSpec { spec.aggregate = aggregateSpec }
        if let setSpec { spec.sets = setSpec }
        if let trainingSpec { spec.training = trainingSpec }
        spec.threshold = UInt32(submission.threshold ?? 0)
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
        let participants = JobRepository.participants(of: spec)
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
        let failures = await withTaskGroup(of: String?.self) { group in
            for party in participants {
                group.addTask {
                    do {
                        let r = try await self.control(.with { $0.start = .with { $0.jobID = jobID } }, to: party)
                        if case .error(let e)? = r.kind { return "\(party): \(e.message)" }
                        return nil
                    } catch { return "\(party): \(error)" }
                }
            }
            var out: [String] = []
            for await f in group { if let f { out.append(f) } }
            return out
        }
        // A secure sum goes on without clients that could not be started (dropouts); only the server is essential.
        let fatal = spec.protocol == "secure-sum" ? failures.filter { $0.hasPrefix("\(spec.deliverTo.first ?? ""): ") } : failures
        for f in failures where !fatal.contains(f) {
            logger.warning("a client could not be started; the secure sum goes on without it", metadata: ["job": "\(jobID)", "error": "\(f)"])
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
                  JobRepository.participants(of: spec).contains(peer) else {
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
                if let server = JobRepository.server(of: spec) {
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
                  JobRepository.participants(of: spec).contains(peer) else {
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
            var inputRows: Int?
            let check = PolicyCheck(policy: configuration.policy, nodeID: nodeID)
            let verdict = try check.check(spec, proposer: proposer) {
                guard let mine else { return nil }
                if spec.protocol == "secure-sum" || spec.protocol == "train-lr" || spec.protocol == "predict" {
                    inputRows = try? catalog.describe(mine.dataset).rowCount
                } else if let kind = SetJobKind(rawValue: spec.protocol), kind.sumsValues,
                          (try catalog.distinctCount(dataset: mine.dataset, column: spec.sets.valueColumn)) == nil {
                    inputRows = nil  // the value column does not exist
                } else {
                    inputRows = try catalog.distinctCount(dataset: mine.dataset, column: mine.column)
                }
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

    /// What a participant's protocol run produced, to be recorded in one transaction.
    struct Completion {
        var inputRows: Int
        var bytesSent: UInt64
        var bytesReceived: UInt64
        var resultRows: Int
        var receivedResult: Bool
        var details: [String: AuditValue]
        /// Writes the result (if any) inside the transaction that marks the job succeeded.
        var store: (Database) throws -> Void
    }

    /// Runs this node's role of a started job, then records the outcome (state, result, audit record in
    /// one transaction) and reports it to the coordinator.
    private func runParticipant(_ spec: Mpcnode_V1_JobSpec) async {
        let started = Date()
        let jobID = spec.jobID
        defer { tasks[jobID] = nil }
        let scratch = JobScratch()
        do {
            let c: Completion
            switch spec.protocol {
            case "secure-sum":
                c = spec.deliverTo.first == nodeID ? try await runSecureSumServer(spec, started: started)
                                                   : try await runSecureSumClient(spec)
            case "predict":
                c = try await runPredictParty(spec, scratch: scratch)
            case "train-lr" where spec.training.mode == "vertical":
                c = spec.training.aggregator == nodeID ? try await runVerticalArbiter(spec) : try await runVerticalParty(spec, scratch: scratch)
            case "train-lr":
                c = spec.training.aggregator == nodeID ? try await runTrainingAggregator(spec, started: started)
                                                       : try await runTrainingParty(spec)
            case let p where SetJobKind(rawValue: p) != nil:
                c = spec.sets.aggregator == nodeID ? try await runSetAggregator(spec, started: started)
                                                   : try await runSetOwner(spec, scratch: scratch)
            default:
                c = try await runPSI(spec, scratch: scratch)
            }
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
                                dropout: failureIsDropout(spec, error))
        }
    }

    /// Two-party PSI from a snapshot of this node's input.
    private func runPSI(_ spec: Mpcnode_V1_JobSpec, scratch: JobScratch) async throws -> Completion {
        let jobID = spec.jobID
        guard let mineIndex = spec.parties.firstIndex(where: { $0.nodeID == nodeID }) else {
            throw JobError.invalidSubmission("this node is not a party of \(jobID)")
        }
        let mine = spec.parties[mineIndex]
        let otherIndex = mineIndex == 0 ? 1 : 0
        let other = spec.parties[otherIndex]
        let s = try SQLiteIdentifierSource.prepare(jobID: jobID, dataset: mine.dataset, column: mine.column,
                                                   store: store, scratchDirectory: configuration.jobsDirectory)
        scratch.add { s.remove() }
        try audit.append(event: "job.started", jobID: jobID, details: [
            "spec_hash": .string(try JobRepository.specHash(spec)), "peer": .string(other.nodeID), "input_rows": .int(s.count),
        ])
        logger.info("job running", metadata: ["job": "\(jobID)", "peer": "\(other.nodeID)", "input_rows": "\(s.count)"])
        guard let group = BlindingGroup(rawValue: spec.group) else { throw JobError.invalidSubmission("unknown group \(spec.group)") }
        let config = PSIParty.Configuration(
            jobID: jobID, group: group, selfReceivesOutput: spec.deliverTo.contains(nodeID),
            peerReceivesOutput: spec.deliverTo.contains(other.nodeID), cardinalityOnly: spec.cardinalityOnly)
        let onProgress = progressReporter(spec)
        let report: PSIParty.Report
        if mineIndex < otherIndex {
            guard let address = configuration.peers[other.nodeID] else { throw JobError.unknownPeer(other.nodeID) }
            report = try await transport.withSession(jobID: jobID, to: other.nodeID, at: address) { channel in
                try await PSIParty(configuration: config, source: s, channel: channel, progress: onProgress).run()
            }
        } else {
            let channel = try await rendezvous.claim(jobID: jobID, peer: other.nodeID, timeout: sessionWaitTimeout)
            report = try await TLSMessageChannel.using([channel]) {
                try await PSIParty(configuration: config, source: s, channel: channel, progress: onProgress).run()
            }
        }
        var resultRows = 0
        let output = report.output
        switch output {
        case .intersection(let positions), .matches(let positions, _): resultRows = positions.count
        case .cardinality: resultRows = 1
        case .none: break
        }
        let repository = self.repository
        return Completion(
            inputRows: report.ownSetSize, bytesSent: report.bytesSent, bytesReceived: report.bytesReceived,
            resultRows: resultRows, receivedResult: output != .none,
            details: ["peer": .string(other.nodeID), "peer_input_rows": .int(report.peerSetSize)],
            store: { db in
                switch output {
                case .intersection(let positions), .matches(let positions, _):
                    try repository.storeResult(db, jobID: jobID, kind: "intersection", cardinality: positions.count) { db in
                        let insert = try db.makeStatement(sql: "INSERT INTO job_result_item (job_id, identifier) VALUES (?, ?)")
                        try s.forEachIdentifier(atPositions: positions) { try insert.execute(arguments: [jobID, $0]) }
                    }
                case .cardinality(let c):
                    try repository.storeResult(db, jobID: jobID, kind: "cardinality", cardinality: c) { _ in }
                case .none:
                    break
                }
            })
    }

    /// Records a job's progress locally and forwards it to the coordinator (both throttled). `unit` names
    /// what is counted ("elements", "per cent", "rounds", "epochs").
    func progressRecorder(_ spec: Mpcnode_V1_JobSpec, unit: String = "elements") -> ProgressRecorder {
        let jobID = spec.jobID
        return ProgressRecorder(repository: repository, jobID: jobID, unit: unit) { [transport, configuration] snapshot in
            // Forwarded to the coordinator (best effort, never holding the protocol up).
            guard let address = configuration.peers[spec.coordinator] else { return }
            Task {
                _ = try? await transport.control(.with { $0.progress = snapshot.message(jobID: jobID) }, to: spec.coordinator, at: address)
            }
        }
    }

    /// PSI progress: elements of both streams processed.
    func progressReporter(_ spec: Mpcnode_V1_JobSpec) -> @Sendable (PSIParty.Progress) -> Void {
        let progress = progressRecorder(spec)
        return { p in progress.record(done: p.ownBlindedSent + p.peerElementsProcessed, total: p.ownSetSize + (p.peerSetSize ?? 0)) }
    }

    static func describe(_ error: Error) -> String {
        if error is CancellationError { return "the job was stopped on this node" }
        return "\(error)"
    }

    /// Whether this node's failure leaves the job going without it: a client of a secure sum or of a
    /// horizontal training (the server completes with the others), or a party lost in a set operation's
    /// final secure sum.
    func failureIsDropout(_ spec: Mpcnode_V1_JobSpec, _ error: Error?) -> Bool {
        if error is SecureSumDropout { return true }
        switch spec.protocol {
        case "secure-sum": return spec.deliverTo.first != nodeID
        case "train-lr": return spec.training.mode != "vertical" && spec.training.aggregator != nodeID
        default: return false
        }
    }

    func reportOutcome(spec: Mpcnode_V1_JobSpec, state: JobState, reason: String, completion: Completion?,
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
        outcome.auditRecordHash = Data(Self.hexBytes(auditHash))
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

    static func hexBytes(_ hex: String) -> [UInt8] {
        var out: [UInt8] = []
        var i = hex.startIndex
        while i < hex.endIndex, let j = hex.index(i, offsetBy: 2, limitedBy: hex.endIndex), let b = UInt8(hex[i..<j], radix: 16) {
            out.append(b)
            i = j
        }
        return out
    }

    // MARK: - Sending

    func control(_ request: Mpcnode_V1_ControlRequest, to node: String) async throws -> Mpcnode_V1_ControlResponse {
        guard let address = configuration.peers[node] else { throw JobError.unknownPeer(node) }
        return try await transport.control(request, to: node, at: address)
    }
}

/// Clean-up actions of a job (scratch files), run once whether the job succeeded or failed.
final class JobScratch: @unchecked Sendable {
    private let lock = NSLock()
    private var actions: [() -> Void] = []
    func add(_ action: @escaping () -> Void) { lock.withLock { actions.append(action) } }
    func cleanUp() {
        let pending = lock.withLock { defer { actions.removeAll() }; return actions }
        for a in pending { a() }
    }
}

