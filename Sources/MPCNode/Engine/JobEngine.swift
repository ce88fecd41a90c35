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
    /// This node's metrics (policy refusals are counted here; job outcomes through the store).
    let metrics: NodeMetrics
    var tasks: [String: Task<Void, Never>] = [:]
    /// The daemon is stopping: a role that can resume after a restart is suspended, not failed.
    var stopping = false

    public init(configuration: NodeConfiguration, store: NodeStore, transport: PeerTransport, logger: Logger,
                sessionWaitTimeout: Duration = .seconds(60), faults: FaultHooks? = nil, metrics: NodeMetrics = NodeMetrics()) {
        self.metrics = metrics
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

    /// Resumes the roles that can continue after a restart (a bucketed PSI with its sealed state and
    /// checkpoints on disk); ends every other job that was running when the daemon last stopped, and
    /// tells their coordinators.
    public func recoverAfterRestart() async {
        do {
            var resumable: [Mpcnode_V1_JobSpec] = []
            for id in try repository.jobIDs(inStates: [.running]) {
                guard let spec = try repository.spec(jobID: id), spec.coordinator != nodeID,
                      let kind = try? JobKinds.kind(of: spec) else { continue }
                if let why = kind.whyNotResumable(spec, configuration: configuration) {
                    logger.info("job cannot resume", metadata: ["job": "\(id)", "why": "\(why)"])
                    continue
                }
                resumable.append(spec)
            }
            // Scratch copies of inputs a killed daemon left behind hold plaintext identifiers: removed before
            // anything runs, except those of the jobs that resume.
            JobScratchFiles.removeAll(in: configuration.jobsDirectory, keeping: Set(resumable.map(\.jobID)), logger: logger)
            for spec in resumable {
                logger.notice("job resumes after the restart", metadata: ["job": "\(spec.jobID)"])
                tasks[spec.jobID] = Task(executorPreference: JobExecutor.shared) { await self.runParticipant(spec, resuming: true) }
            }
            let ids = try repository.failUnfinished(reason: JobError.interruptedByRestart.description,
                                                    except: Set(resumable.map(\.jobID)))
            for id in ids {
                logger.warning("job ended by restart", metadata: ["job": "\(id)"])
                if let spec = try repository.spec(jobID: id), spec.coordinator != nodeID {
                    let dropout = (try? JobKinds.kind(of: spec))?.failureIsDropout(spec, node: nodeID, error: nil) ?? false
                    await reportOutcome(spec: spec, state: .failed, reason: JobError.interruptedByRestart.description,
                                        completion: nil, elapsedMs: 0, auditHash: "", dropout: dropout)
                }
            }
        } catch {
            JobScratchFiles.removeAll(in: configuration.jobsDirectory, keeping: [], logger: logger)
            logger.error("could not recover jobs after restart", metadata: ["error": "\(error)"])
        }
    }

    /// Cancels every running job (the daemon is stopping); each ends as failed.
    public func shutdown() async {
        stopping = true
        for (id, task) in tasks {
            logger.info("stopping job", metadata: ["job": "\(id)"])
            task.cancel()
        }
        for task in tasks.values { await task.value }
        tasks.removeAll()
        await rendezvous.dropAll()
    }

    // MARK: - Coordinator

    /// The largest spec a coordinator sends: participants read a proposal only up to 1 MiB (the limit on
    /// an inbound connection's first frame, `TransportOptions.maximumHelloBytes`), less the Hello's framing.
    static let maximumSpecBytes = (1 << 20) - 4096

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
        // Participants accept a proposal of at most 1 MiB (their limit on a connection's first frame).
        let size = (try spec.serializedBytes() as [UInt8]).count
        guard size <= Self.maximumSpecBytes else {
            throw JobError.invalidSubmission("the job's spec takes \(size) bytes, over the \(Self.maximumSpecBytes) every participant accepts: fewer groups or features per job")
        }
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
        tasks[spec.jobID] = Task(executorPreference: JobExecutor.shared) { await self.coordinate(s) }
        return spec.jobID
    }

    static func newJobID() -> String {
        var bytes = [UInt8](repeating: 0, count: 6)
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255) }
        return "job-" + bytes.map { String(format: "%02x", $0) }.joined()
    }

    static func describe(_ error: Error) -> String {
        if error is CancellationError { return "the job was stopped on this node" }
        return "\(error)"
    }

    // MARK: - Sending

    func control(_ request: Mpcnode_V1_ControlRequest, to node: String) async throws -> Mpcnode_V1_ControlResponse {
        guard let address = configuration.peers[node] else { throw JobError.unknownPeer(node) }
        return try await transport.control(request, to: node, at: address)
    }
}
