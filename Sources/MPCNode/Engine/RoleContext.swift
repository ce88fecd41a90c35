import Foundation
import GRDB
import Logging
import MPCIdentity
import MPCProtocols
import MPCTransport
import MPCWire

/// What every role of every kind gets from the engine when its job starts at this node: the agreed
/// spec, the node's store, audit log and catalog, its sessions with the other participants (dialled
/// through the transport, accepted through the rendezvous), progress reporting and the job's scratch
/// clean-up. A role never reaches into the engine for anything else.
struct RoleContext: Sendable {
    let nodeID: String
    let spec: Mpcnode_V1_JobSpec
    /// When the job started on this node (reports carry it).
    let started: Date
    let configuration: NodeConfiguration
    let store: NodeStore
    let repository: JobRepository
    let catalog: DatasetCatalog
    let audit: AuditLog
    /// The job's sessions with the other participants (TLS between daemons).
    let sessions: any SessionPort
    /// For control messages (progress to the coordinator).
    let transport: PeerTransport
    let logger: Logger
    /// How long a role waits for a peer's session to arrive.
    let sessionWaitTimeout: Duration
    /// Clean-up actions (scratch snapshots), run once when the job ends either way.
    let scratch: JobScratch
    /// Hooks of end-to-end fault tests; nil in production.
    let faults: FaultHooks?
    /// The role continues after its daemon restarted (`JobKind.canResumeAfterRestart`): its scratch
    /// database is reopened, not prepared again.
    var resuming = false

    var jobID: String { spec.jobID }

    /// How long a role waits for a session that follows a long phase of other parties (a ring, an
    /// alignment with every host); an abort ends the wait at once.
    static let setPhaseTimeout: Duration = .seconds(6 * 3600)

    /// The round timeout of the secure sums a role runs: a peer silent for longer is treated as gone.
    var roundTimeout: Duration { .seconds(Int64(configuration.peerIdleTimeoutSeconds)) }

    /// This party's input, or a fault if this node is not a party of the spec (the engine only starts
    /// roles of jobs it accepted, so this means the spec and the role disagree).
    func myInput() throws -> (index: Int, input: Mpcnode_V1_PartyInput) {
        guard let index = spec.parties.firstIndex(where: { $0.nodeID == nodeID }) else {
            throw JobError.fault("this node is not a party of \(jobID)")
        }
        return (index, spec.parties[index])
    }

    /// A snapshot of this party's identifier column (and optionally per-identifier totals of a value
    /// column), in a fresh keyed order, removed when the job ends.
    func snapshot(dataset: String, column: String, valueColumn: String? = nil, decimals: Int = 0) throws -> SQLiteIdentifierSource {
        let source = try SQLiteIdentifierSource.prepare(jobID: jobID, dataset: dataset, column: column, store: store,
                                                              scratchDirectory: configuration.jobsDirectory,
                                                              valueColumn: valueColumn, decimals: decimals)
        scratch.add { source.remove() }
        if let delay = faults?.slowFirstInputRead { source.delayFirstRead(by: delay) }
        return source
    }

    /// The snapshot an earlier run of this job prepared (a role resumed after a restart), removed when the job ends.
    func reopenedSnapshot() throws -> SQLiteIdentifierSource {
        let source = try SQLiteIdentifierSource.reopen(jobID: jobID, scratchDirectory: configuration.jobsDirectory)
        scratch.add { source.remove() }
        return source
    }

    /// This node's limits on the other parties' sets for a job on `dataset` (its own policy's, never the
    /// spec's): what PSI, the vertical alignment and the set operations' ring check every peer's size against.
    func peerSetSizes(dataset: String, ownSize: Int) throws -> ClosedRange<Int> {
        guard let rule = configuration.policy.datasets[dataset] else {
            throw JobError.fault("dataset '\(dataset)' has no policy rule on this node")
        }
        return rule.peerSetSizes(ownSize: ownSize)
    }

    /// Writes the role's `job.started` record (with the spec's hash) and returns its hash.
    @discardableResult
    func recordStarted(_ details: [String: AuditValue]) throws -> String {
        var d = details
        d["spec_hash"] = .string(try JobRepository.specHash(spec))
        return try audit.append(event: "job.started", jobID: jobID, details: d)
    }

    func specHash() throws -> String { try JobRepository.specHash(spec) }

    func address(of node: String) throws -> PeerAddress {
        guard let a = configuration.peers[node] else { throw JobError.unknownPeer(node) }
        return a
    }

    /// Records progress locally and forwards it to the coordinator (both throttled). `unit` names what
    /// is counted ("elements", "per cent", "rounds", "epochs").
    func progressRecorder(unit: String = "elements") -> ProgressRecorder {
        let jobID = jobID, coordinator = spec.coordinator
        return ProgressRecorder(repository: repository, jobID: jobID, unit: unit) { [transport, configuration] snapshot in
            // Forwarded to the coordinator (best effort, never holding the protocol up).
            guard let address = configuration.peers[coordinator] else { return }
            Task {
                _ = try? await transport.control(.with { $0.progress = snapshot.message(jobID: jobID) }, to: coordinator, at: address)
            }
        }
    }

    /// The node's certificate and key, for signing secure-aggregation keys.
    func keyAuthentication() throws -> KeyAuthentication {
        let signatures = try CertificateSignatures(certificatePath: configuration.tls.certificate.path,
                                                   privateKeyPath: configuration.tls.privateKey.path,
                                                   caPath: configuration.tls.caCertificate.path)
        return KeyAuthentication(certificateDER: signatures.certificateDER, sign: { try signatures.sign($0) },
                                 verify: { try signatures.verify(signature: $0, message: $1, nodeID: $2, certificateDER: $3) })
    }

    /// Opens a session of `stream` to `peer` and runs `body` over it.
    func withSession<R: Sendable>(stream: String = "", to peer: String, _ body: (any MessageChannel) async throws -> R) async throws -> R {
        try await sessions.withSession(stream: stream, to: peer, body)
    }

    /// Opens one session of `stream` to each of `peers` (in order) and runs `body` with them.
    func withSessions<R: Sendable>(stream: String, to peers: [String], _ body: ([any MessageChannel]) async throws -> R) async throws -> R {
        try await sessions.withSessions(stream: stream, to: peers, body)
    }

    /// Waits for `peer`'s session of `stream` (the caller closes it, e.g. with `sessions.using`).
    func claim(stream: String = "", from peer: String, timeout: Duration? = nil) async throws -> any MessageChannel {
        try await sessions.accept(stream: stream, from: peer, timeout: timeout ?? sessionWaitTimeout)
    }

    /// Accepts several sessions (stream, peer), keyed "stream/peer"; all or none (`SessionPort.acceptAll`).
    func claimAll(_ wanted: [(stream: String, peer: String)], timeout: Duration? = nil) async throws -> [String: any MessageChannel] {
        try await sessions.acceptAll(wanted, timeout: timeout ?? sessionWaitTimeout)
    }

    /// Accepts the sessions of `stream` that `peers` open, leaving out those that do not arrive in time.
    func claimEach(stream: String = "", from peers: [String]) async -> [String: any MessageChannel] {
        await sessions.acceptEach(stream: stream, from: peers, timeout: sessionWaitTimeout)
    }

    /// Ends every claim of this job still waiting (the role failed).
    func cancelClaims(reason: String) async {
        await sessions.cancelAccepts(reason: reason)
    }
}

/// What a role produced at this node, to be recorded in one transaction with the job's success.
struct RoleCompletion: Sendable {
    var inputRows: Int
    var bytesSent: UInt64
    var bytesReceived: UInt64
    var resultRows: Int
    var receivedResult: Bool
    var details: [String: AuditValue]
    /// Writes the result (if any) inside the transaction that marks the job succeeded.
    var store: @Sendable (Database) throws -> Void
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
