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
    let transport: PeerTransport
    let rendezvous: SessionRendezvous
    let logger: Logger
    /// How long a role waits for a peer's session to arrive.
    let sessionWaitTimeout: Duration
    /// Clean-up actions (scratch snapshots), run once when the job ends either way.
    let scratch: JobScratch
    /// Hooks of end-to-end fault tests; nil in production.
    let faults: FaultHooks?

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
            throw JobError.invalidSubmission("this node is not a party of \(jobID)")
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
        return source
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
    func withSession<R: Sendable>(stream: String = "", to peer: String, _ body: (TLSMessageChannel) async throws -> R) async throws -> R {
        try await transport.withSession(jobID: jobID, stream: stream, to: peer, at: try address(of: peer), body)
    }

    /// Opens one session of `stream` to each of `peers` (in order) and runs `body` with them.
    func withSessions<R: Sendable>(stream: String, to peers: [String], _ body: ([TLSMessageChannel]) async throws -> R) async throws -> R {
        guard let first = peers.first else { return try await body([]) }
        return try await withSession(stream: stream, to: first) { channel in
            try await withSessions(stream: stream, to: Array(peers.dropFirst())) { rest in try await body([channel] + rest) }
        }
    }

    /// Waits for `peer`'s session of `stream`.
    func claim(stream: String = "", from peer: String, timeout: Duration? = nil) async throws -> TLSMessageChannel {
        try await rendezvous.claim(jobID: jobID, stream: stream, peer: peer, timeout: timeout ?? sessionWaitTimeout)
    }

    /// Claims several inbound sessions (stream, peer), keyed "stream/peer". If one cannot be claimed,
    /// the job's other claims are cancelled, the sessions already claimed are closed, and the error is thrown.
    func claimAll(_ sessions: [(stream: String, peer: String)], timeout: Duration? = nil) async throws -> [String: TLSMessageChannel] {
        let rendezvous = rendezvous, jobID = jobID, timeout = timeout ?? sessionWaitTimeout
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

    /// Claims the sessions of `stream` that `peers` open, leniently: a peer that does not open its session
    /// in time is left out (a dropout of a secure sum), never fails the claim.
    func claimEach(stream: String = "", from peers: [String]) async -> [String: any MessageChannel] {
        let rendezvous = rendezvous, jobID = jobID, wait = sessionWaitTimeout
        return await withTaskGroup(of: (String, TLSMessageChannel?).self) { group in
            for p in peers {
                group.addTask { (p, try? await rendezvous.claim(jobID: jobID, stream: stream, peer: p, timeout: wait)) }
            }
            var out: [String: any MessageChannel] = [:]
            for await (p, channel) in group { if let channel { out[p] = channel } }
            return out
        }
    }

    /// Ends every claim of this job still waiting (the role failed).
    func cancelClaims(reason: String) async {
        await rendezvous.cancelClaims(jobID: jobID, reason: reason)
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

/// Bytes of a job's many short sessions, added up as they end.
final class TrafficTally: @unchecked Sendable {
    private let lock = NSLock()
    private var _sent: UInt64 = 0, _received: UInt64 = 0
    private var channels: [TLSMessageChannel] = []
    func add(sent: UInt64, received: UInt64) { lock.withLock { _sent += sent; _received += received } }
    /// Counts a channel's bytes when the totals are read (it may still be in use now).
    func track(_ c: TLSMessageChannel) { lock.withLock { channels.append(c) } }
    func add(_ channels: [TLSMessageChannel]) { for c in channels { add(sent: c.bytesSent, received: c.bytesReceived) } }
    var sent: UInt64 { lock.withLock { _sent + channels.reduce(0) { $0 + $1.bytesSent } } }
    var received: UInt64 { lock.withLock { _received + channels.reduce(0) { $0 + $1.bytesReceived } } }
}
