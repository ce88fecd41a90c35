import Crypto
import Foundation
import GRDB
import Logging
import Synchronization
import MPCProtocols
import MPCTransport
import MPCWire

/// Job receipts (Protocols/ledger.md, "Receipts"). At a coordinator, when a job it coordinated ends: the
/// receipt is built from its record (parties, their decisions and input commitments, the outcome), each
/// party is asked to sign it, and the receipt with every signature obtained is delivered to all parties.
/// At a participant: it signs only a receipt whose entries about itself match its own record, and keeps a
/// delivered receipt only if every signature on it verifies; a kept receipt is an audit record
/// (`job.receipt`), so it is a leaf of the party's Merkle log.
public final class JobReceipts: Sendable {
    let nodeID: String
    let store: NodeStore
    let signatures: NodeSignatures
    let transport: PeerTransport
    let peers: [String: PeerAddress]
    let logger: Logger
    /// Asks a party for the proof that its log holds a job's receipt (the ledger's inclusion proof).
    let proveReceipt: @Sendable (_ jobID: String, _ receiptSHA256: String, _ party: String) async throws -> String
    /// How long a report's recipient waits after keeping a receipt before asking the parties for their proofs.
    let proofDelay: Duration

    /// What a receipt's signature covers: this tag, then the receipt's bytes.
    public static let tag = Array("mpcnode-receipt-v1".utf8) + [0]
    /// The largest receipt a node signs or keeps (a job has at most 1,000 parties).
    static let maximumReceiptBytes = 512 << 10

    init(nodeID: String, store: NodeStore, signatures: NodeSignatures, transport: PeerTransport, peers: [String: PeerAddress], logger: Logger,
         proofDelay: Duration = .seconds(3), proveReceipt: @escaping @Sendable (_ jobID: String, _ receiptSHA256: String, _ party: String) async throws -> String) {
        self.proveReceipt = proveReceipt
        self.proofDelay = proofDelay
        self.nodeID = nodeID
        self.store = store
        self.signatures = signatures
        self.transport = transport
        self.peers = peers
        self.logger = logger
    }

    /// Work under way in the background — receipts being issued (each a task started when its job
    /// ended) and a report recipient's collection of proofs: a stopping node cancels and waits for it
    /// (`stop`) before it closes its connections and event loops.
    private let background = Mutex<(next: Int, tasks: [Int: Task<Void, Never>], stopped: Bool)>((0, [:], false))

    /// Issues a receipt for every job this node coordinates, once it ends. (The observer holds the
    /// receipts weakly: the store it is registered with outlives them.)
    func issueWhenJobsEnd() {
        store.jobStates.add { [weak self] db, jobID, state in
            guard let self, state.isFinal,
                  (try? String.fetchOne(db, sql: "SELECT role FROM job WHERE id = ?", arguments: [jobID])) == JobRole.coordinator.rawValue else { return }
            self.inBackground { await self.issue(jobID: jobID) }
        }
    }

    /// Runs `work` in a task that `stop` cancels and waits for (not at all once stopped).
    private func inBackground(_ work: @escaping @Sendable () async -> Void) {
        background.withLock { state in
            guard !state.stopped else { return }
            let key = state.next
            state.next += 1
            state.tasks[key] = Task {
                await work()
                // Runs after the insertion above: the lock is held until it is done.
                self.background.withLock { _ = $0.tasks.removeValue(forKey: key) }
            }
        }
    }

    /// Issues no more receipts and collects no more proofs; work under way is cancelled (it stops before
    /// its next exchange) and waited for.
    func stop() async {
        let running = background.withLock { state in
            state.stopped = true
            return Array(state.tasks.values)
        }
        for task in running { task.cancel() }
        for task in running { await task.value }
    }

    // MARK: coordinator

    /// Builds, gets signed and delivers the receipt of a job this node coordinated.
    public func issue(jobID: String) async {
        // A job whose server reports first ends before the other parties' outcomes (and their result
        // commitments) arrive: they are waited for, a while.
        for _ in 0..<120 {
            let waiting = (try? store.read { db in
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM job_party WHERE job_id = ? AND state NOT IN ('succeeded', 'failed', 'refused')", arguments: [jobID])
            }) ?? 0
            if waiting == 0 || Task.isCancelled { break }
            try? await Task.sleep(for: .milliseconds(250))
        }
        do {
            try Task.checkCancellation()
            let (receipt, parties) = try build(jobID: jobID)
            let bytes: [UInt8] = try receipt.serializedBytes()
            var collected = [try sign(bytes)]
            await withTaskGroup(of: Mpcnode_V1_ReceiptSignature?.self) { group in
                for party in parties where party != nodeID {
                    group.addTask { await self.askSignature(bytes, receipt: receipt, from: party) }
                }
                for await s in group { if let s { collected.append(s) } }
            }
            try Task.checkCancellation()
            let delivery = Mpcnode_V1_ReceiptDelivery.with { $0.receipt = Data(bytes); $0.signatures = collected.sorted { $0.node < $1.node } }
            try keep(delivery, receipt: receipt)
            await withTaskGroup(of: Void.self) { group in
                for party in parties where party != nodeID {
                    group.addTask {
                        guard let address = self.peers[party] else { return }
                        do {
                            let response = try await self.transport.control(.with { $0.receiptDelivery = delivery }, to: party, at: address)
                            if case .error(let e)? = response.kind {
                                self.logger.warning("a party did not keep the job's receipt", metadata: ["job": "\(jobID)", "party": "\(party)", "reason": "\(PeerText.cut(e.message, limit: 200))"])
                            }
                        } catch {
                            self.logger.warning("the job's receipt did not reach a party", metadata: ["job": "\(jobID)", "party": "\(party)", "error": "\(error)"])
                        }
                    }
                }
            }
        } catch is CancellationError {
            logger.warning("no receipt for the job: the node stopped before it was issued", metadata: ["job": "\(jobID)"])
        } catch {
            logger.warning("no receipt for the job", metadata: ["job": "\(jobID)", "error": "\(error)"])
        }
    }

    /// The receipt of a job from this node's (the coordinator's) record, and its parties.
    func build(jobID: String) throws -> (Mpcnode_V1_JobReceipt, [String]) {
        try store.pool.read { db in
            guard let job = try Row.fetchOne(db, sql: "SELECT spec, spec_hash, state, created_at, updated_at FROM job WHERE id = ?", arguments: [jobID]) else {
                throw LedgerCheckError.notProven(node: nodeID, detail: "no job \(jobID)")
            }
            let spec = try Mpcnode_V1_JobSpec(serializedBytes: job["spec"] as Data)
            let rows = try Row.fetchAll(db, sql: "SELECT node_id, state, reason, input_rows, input_commitment, result_commitment FROM job_party WHERE job_id = ? ORDER BY node_id",
                                        arguments: [jobID])
            let receipt = Mpcnode_V1_JobReceipt.with {
                $0.jobID = jobID
                $0.kind = (try? JobKinds.kind(of: spec).name) ?? spec.protocol
                $0.specHash = job["spec_hash"]
                $0.coordinator = nodeID
                $0.outcome = job["state"]
                $0.createdMs = Self.milliseconds(job["created_at"])
                $0.endedMs = Self.milliseconds(job["updated_at"])
                $0.parties = rows.map { r in
                    .with {
                        $0.node = r["node_id"]; $0.state = r["state"]; $0.reason = r["reason"] ?? ""
                        $0.accepted = (r["input_rows"] as Int?) != nil
                        $0.inputCommitment = (r["input_commitment"] as Data?) ?? Data()
                        $0.resultCommitment = (r["result_commitment"] as Data?) ?? Data()
                    }
                }
            }
            return (receipt, rows.map { $0["node_id"] })
        }
    }

    static func milliseconds(_ date: Date?) -> UInt64 { UInt64(max(0, (date ?? Date(timeIntervalSince1970: 0)).timeIntervalSince1970 * 1000)) }

    private func askSignature(_ bytes: [UInt8], receipt: Mpcnode_V1_JobReceipt, from party: String) async -> Mpcnode_V1_ReceiptSignature? {
        guard let address = peers[party] else { return nil }
        do {
            let response = try await transport.control(.with { $0.receiptSign = .with { $0.receipt = Data(bytes) } }, to: party, at: address)
            switch response.kind {
            case .receiptSignature(let s)? where s.node == party:
                try signatures.verify(signature: Array(s.signature), message: Self.tag + bytes, nodeID: party, certificateDER: Array(s.certificate))
                return s
            case .error(let e)?:
                logger.warning("a party refused to sign the job's receipt", metadata: ["job": "\(receipt.jobID)", "party": "\(party)", "reason": "\(PeerText.cut(e.message, limit: 200))"])
                return nil
            default:
                return nil
            }
        } catch {
            logger.warning("no signature of a party on the job's receipt", metadata: ["job": "\(receipt.jobID)", "party": "\(party)", "error": "\(error)"])
            return nil
        }
    }

    private func sign(_ bytes: [UInt8]) throws -> Mpcnode_V1_ReceiptSignature {
        let signed = try signatures.sign(Self.tag + bytes)
        return .with { $0.node = nodeID; $0.signature = Data(signed.signature); $0.certificate = Data(signed.certificateDER) }
    }

    // MARK: participant

    /// Signs a receipt whose job this node knows from `peer`, its coordinator, when the receipt's entries
    /// about this node (decision, input commitment) and the job (spec hash) match its own record.
    func answer(_ request: Mpcnode_V1_ReceiptSignRequest, from peer: String) -> Mpcnode_V1_ControlResponse {
        do {
            let bytes = Array(request.receipt)
            let receipt = try checkAgainstOwnRecord(bytes, from: peer)
            let digest = SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
            // One receipt per job: a coordinator cannot collect this node's signature on two versions.
            try store.write { db in
                if let signed = try String.fetchOne(db, sql: "SELECT sha256 FROM receipt_signed WHERE job_id = ?", arguments: [receipt.jobID]) {
                    guard signed == digest else { throw ReceiptError.mismatch("this node already signed another receipt of job \(receipt.jobID)") }
                    return
                }
                try db.execute(sql: "INSERT INTO receipt_signed (job_id, sha256) VALUES (?, ?)", arguments: [receipt.jobID, digest])
            }
            let signature = try sign(bytes)
            return .with { $0.receiptSignature = signature }
        } catch {
            return .with { $0.error = .with { $0.message = "\(nodeID) does not sign this receipt: \(error)" } }
        }
    }

    /// Keeps a delivered receipt when every signature on it verifies.
    func answer(_ delivery: Mpcnode_V1_ReceiptDelivery, from peer: String) -> Mpcnode_V1_ControlResponse {
        do {
            let receipt = try checkAgainstOwnRecord(Array(delivery.receipt), from: peer)
            try keep(delivery, receipt: receipt)
            return .with { $0.ack = .init() }
        } catch {
            return .with { $0.error = .with { $0.message = "\(nodeID) does not keep this receipt: \(error)" } }
        }
    }

    private func checkAgainstOwnRecord(_ bytes: [UInt8], from peer: String) throws -> Mpcnode_V1_JobReceipt {
        guard bytes.count <= Self.maximumReceiptBytes else { throw ReceiptError.mismatch("a receipt of \(bytes.count) bytes") }
        let receipt = try Mpcnode_V1_JobReceipt(serializedBytes: bytes)
        try PeerSuppliedName.jobID.validate(receipt.jobID)
        let repository = JobRepository(store: store)
        guard let spec = try repository.spec(jobID: receipt.jobID), spec.coordinator == peer, receipt.coordinator == peer else {
            throw ReceiptError.mismatch("no job \(receipt.jobID) coordinated by \(peer) on this node")
        }
        guard receipt.specHash == (try JobRepository.specHash(spec)) else { throw ReceiptError.mismatch("its spec hash is not the job's") }
        let named = receipt.parties.map(\.node)
        guard let kind = try? JobKinds.kind(of: spec), Set(named).count == named.count, Set(named) == Set(kind.participants(of: spec)) else {
            throw ReceiptError.mismatch("its parties are not the job's")
        }
        let mine = receipt.parties.filter { $0.node == nodeID }
        guard receipt.parties.count <= 1000, mine.count == 1 || (mine.isEmpty && receipt.coordinator == nodeID) else {
            throw ReceiptError.mismatch("it lists this node \(mine.count) times")
        }
        if let entry = mine.first {
            let state = try repository.state(jobID: receipt.jobID)
            guard entry.accepted == (state != nil && state != .refused) else {
                throw ReceiptError.mismatch("it says this node \(entry.accepted ? "accepted" : "did not accept") the job")
            }
            if state == .refused {
                let own = try store.pool.read { db in try String.fetchOne(db, sql: "SELECT reason FROM job WHERE id = ?", arguments: [receipt.jobID]) } ?? ""
                // The coordinator keeps a peer's text cut (PeerText.cut): the party compares what it sent, cut alike.
                guard entry.reason == PeerText.cut(own) else { throw ReceiptError.mismatch("it gives another reason for this node's refusal than the one this node gave") }
            }
            let (input, result) = try store.pool.read { db in
                (try InputCommitment.stored(db, jobID: receipt.jobID) ?? [], try ResultCommitment.stored(db, jobID: receipt.jobID) ?? [])
            }
            guard Array(entry.inputCommitment) == input else { throw ReceiptError.mismatch("its input commitment for this node is not the one this node made") }
            guard Array(entry.resultCommitment) == result else { throw ReceiptError.mismatch("its result commitment for this node is not the one this node made") }
        }
        return receipt
    }

    /// Verifies every signature of a delivery against the consortium CA and the receipt's parties, then keeps
    /// it with an audit record (a leaf of the log). A second, different receipt for the job is refused.
    private func keep(_ delivery: Mpcnode_V1_ReceiptDelivery, receipt: Mpcnode_V1_JobReceipt) throws {
        let bytes = Array(delivery.receipt)
        let signers = try Self.verifySignatures(delivery, receipt: receipt, with: signatures)
        let digest = SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
        let isNew: Bool = try store.pool.write { db in
            if let existing = try String.fetchOne(db, sql: "SELECT sha256 FROM job_receipt WHERE job_id = ?", arguments: [receipt.jobID]) {
                guard existing == digest else { throw ReceiptError.mismatch("this node already holds another receipt of job \(receipt.jobID)") }
                return false
            }
            try db.execute(sql: "INSERT INTO job_receipt (job_id, receipt, delivery, sha256, received_at) VALUES (?, ?, ?, ?, ?)",
                           arguments: [receipt.jobID, Data(bytes), try delivery.serializedBytes() as Data, digest, AuditTime.string(Date())])
            try AuditLog(store: store).append(db, event: "job.receipt", jobID: receipt.jobID, details: [
                "receipt_sha256": .string(digest), "outcome": .string(receipt.outcome),
                "signed_by": .array(signers.map { .string($0) }),
                "parties": .int(receipt.parties.count),
            ])
            return true
        }
        guard isNew else { return }
        // A report's recipient (a regulator) also gets each party's proof that its log holds the receipt,
        // so that the report carries them.
        let holdsReport = try store.pool.read { db in try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM report WHERE job_id = ?)", arguments: [receipt.jobID]) } ?? false
        if holdsReport {
            let parties = Set(receipt.parties.map(\.node) + [receipt.coordinator]).subtracting([nodeID]).sorted()
            inBackground { await self.collectProofs(jobID: receipt.jobID, receiptSHA256: digest, parties: parties) }
        }
    }

    /// Asks each party for the proof that its log holds the job's receipt and keeps the outcome.
    func collectProofs(jobID: String, receiptSHA256: String, parties: [String]) async {
        try? await Task.sleep(for: proofDelay)
        for party in parties {
            if Task.isCancelled { return }  // the node is stopping: what was not asked stays unrecorded
            let (proven, detail): (Bool, String)
            do { (proven, detail) = (true, try await proveReceipt(jobID, receiptSHA256, party)) } catch { (proven, detail) = (false, "\(error)") }
            try? await store.pool.write { db in
                try db.execute(sql: "INSERT OR REPLACE INTO receipt_inclusion (job_id, node, proven, detail, checked_at) VALUES (?, ?, ?, ?, ?)",
                               arguments: [jobID, party, proven, detail, AuditTime.string(Date())])
            }
        }
    }

    /// The parties' proofs, as collected, that their logs hold the job's receipt.
    public func inclusions(jobID: String) throws -> [Inclusion] {
        try store.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT node, proven, detail, checked_at FROM receipt_inclusion WHERE job_id = ? ORDER BY node", arguments: [jobID])
                .map { Inclusion(node: $0[0], proven: $0[1], detail: $0[2], checkedAt: $0[3]) }
        }
    }

    public struct Inclusion: Codable, Sendable, Equatable {
        public var node: String
        public var proven: Bool
        public var detail: String
        public var checkedAt: String
    }

    /// The nodes whose signatures on the receipt verify; throws on any signature that does not (a forged or
    /// misattributed one), on a signer who is not a party or the coordinator, and on a signer twice. The
    /// certificates must be valid at `at`: now for a receipt being delivered; when it was received for one
    /// kept (a receipt stays verifiable after its signers' certificates expire or are renewed — received_at
    /// is this node's own time, not a signer's claim).
    public static func verifySignatures(_ delivery: Mpcnode_V1_ReceiptDelivery, receipt: Mpcnode_V1_JobReceipt, with signatures: NodeSignatures,
                                        at: Date = Date()) throws -> [String] {
        let allowed = Set(receipt.parties.map(\.node) + [receipt.coordinator])
        var seen = Set<String>()
        for s in delivery.signatures {
            guard allowed.contains(s.node), seen.insert(s.node).inserted else {
                throw ReceiptError.badSignature(node: PeerText.cut(s.node, limit: 63), detail: "not a party of the job, or signed twice")
            }
            do {
                try signatures.verify(signature: Array(s.signature), message: tag + Array(delivery.receipt), nodeID: s.node, certificateDER: Array(s.certificate), at: at)
            } catch {
                throw ReceiptError.badSignature(node: s.node, detail: "\(error)")
            }
        }
        return seen.sorted()
    }

    // MARK: reading

    /// What a node holds of a job's receipt: who signed it (each signature verified again now, with the
    /// certificates as of when the receipt was received) and who did not.
    public struct Check: Codable, Sendable, Equatable {
        public var sha256: String
        public var outcome: String
        public var signedBy: [String]
        public var unsigned: [String]
        /// Why a signature no longer verifies (nil when all do).
        public var invalid: String?
        /// At a report's recipient: each party's proof that its log holds the receipt, as collected.
        public var inclusions: [Inclusion]?
    }

    public func check(jobID: String) throws -> Check? {
        guard let row = try store.pool.read({ db in try Row.fetchOne(db, sql: "SELECT delivery, sha256, received_at FROM job_receipt WHERE job_id = ?", arguments: [jobID]) }) else {
            return nil
        }
        let receivedAt = AuditTime.date(row["received_at"] as String) ?? Date()
        let delivery = try Mpcnode_V1_ReceiptDelivery(serializedBytes: row["delivery"] as Data)
        let receipt = try Mpcnode_V1_JobReceipt(serializedBytes: delivery.receipt)
        let everyone = Set(receipt.parties.map(\.node) + [receipt.coordinator])
        do {
            let signers = try Self.verifySignatures(delivery, receipt: receipt, with: signatures, at: receivedAt)
            return Check(sha256: row["sha256"], outcome: receipt.outcome, signedBy: signers, unsigned: everyone.subtracting(signers).sorted(), invalid: nil,
                         inclusions: try inclusions(jobID: jobID))
        } catch {
            return Check(sha256: row["sha256"], outcome: receipt.outcome, signedBy: [], unsigned: everyone.sorted(), invalid: "\(error)",
                         inclusions: try inclusions(jobID: jobID))
        }
    }
}

public enum ReceiptError: Error, Equatable, CustomStringConvertible {
    case mismatch(String)
    case badSignature(node: String, detail: String)

    public var description: String {
        switch self {
        case .mismatch(let d): return d
        case .badSignature(let n, let d): return "the signature said to be \(n)'s does not verify: \(d)"
        }
    }
}
