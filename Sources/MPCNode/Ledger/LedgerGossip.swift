import Foundation
import GRDB
import Logging
import MPCCrypto
import MPCProtocols
import MPCTransport
import MPCWire
import Synchronization

/// Tree-head gossip (Protocols/ledger.md, "Gossip"): answers a peer's `TreeHeadRequest` with this node's
/// latest signed head and a consistency proof from the head the peer holds, and pulls the heads of its
/// peers the same way, checking each against what it held: a smaller log (rollback), a head no
/// consistency proof joins to the one held (fork: the log was rewritten), a head not signed by the node's
/// certificate, or time going back raise an alarm — logged, counted and kept.
public final class LedgerGossip: Sendable {
    let nodeID: String
    let ledger: NodeLedger
    let heads: PeerHeads
    let signatures: NodeSignatures
    let transport: PeerTransport
    let peers: [String: PeerAddress]
    let metrics: NodeMetrics?
    let logger: Logger
    let store: NodeStore
    /// Each peer's budget of ledger requests: a proof hashes the whole log (O(n)), so a peer gets a burst
    /// of `requestBurst` and then one a second.
    private let budgets = Mutex<[String: (tokens: Double, at: ContinuousClock.Instant)]>([:])
    static let requestBurst = 10.0
    /// Requests a peer regains a second (1; a test sets 0 to play a node that stops answering once its
    /// burst is spent, whatever the test machine's speed).
    let requestsPerSecond = Mutex(1.0)
    /// One head signed at a time, its time taken under the lock: two answers never sign heads whose times
    /// go backwards, nor replace one another.
    private let signing = Mutex(())

    func signHead() throws -> TreeHead {
        try signing.withLock { _ in try ledger.signHead(node: nodeID, with: signatures, at: Date()) }
    }

    /// The longest consistency or inclusion proof a response may carry (a tree of 2^64 leaves needs 64).
    static let maximumProofNodes = 64
    /// The most heads of other nodes an answer carries, and an asker looks at.
    static let maximumSeenHeads = 256
    /// Each peer's `seen_as_of` from its last answer (its cursor): the next pull asks only for heads kept since.
    let seenAsOf = Mutex<[String: String]>([:])

    init(nodeID: String, store: NodeStore, signatures: NodeSignatures, transport: PeerTransport, peers: [String: PeerAddress],
         metrics: NodeMetrics?, logger: Logger) {
        self.nodeID = nodeID
        self.store = store
        ledger = NodeLedger(store: store)
        heads = PeerHeads(store: store)
        self.signatures = signatures
        self.transport = transport
        self.peers = peers
        self.metrics = metrics
        self.logger = logger
    }

    // MARK: answering

    /// nil when `peer` may ask now; otherwise the error to answer.
    private func tooSoon(_ peer: String) -> Mpcnode_V1_ControlResponse? {
        let now = ContinuousClock.now
        let rate = requestsPerSecond.withLock { $0 }
        let refused = budgets.withLock { all -> Bool in
            var b = all[peer] ?? (Self.requestBurst, now)
            let elapsed = Double((now - b.at) / .milliseconds(1)) / 1000
            b.tokens = min(Self.requestBurst, b.tokens + elapsed * rate)
            b.at = now
            guard b.tokens >= 1 else { all[peer] = b; return true }
            b.tokens -= 1
            all[peer] = b
            return false
        }
        return refused ? .with { $0.error = .with { $0.message = "too many ledger requests: one a second after a burst of \(Int(Self.requestBurst)); ask again later" } } : nil
    }

    func answer(_ request: Mpcnode_V1_TreeHeadRequest, from peer: String) -> Mpcnode_V1_ControlResponse {
        if let refusal = tooSoon(peer) { return refusal }
        do {
            let head = try signHead()
            let from = Int(clamping: request.fromSize)
            let to = request.toSize == 0 ? head.size : Int(clamping: request.toSize)
            // A peer holding a larger head than this log has left gets the head alone: it sees the rollback.
            let proof = from == 0 || from > to || to > head.size ? [] : try ledger.consistencyProof(oldSize: from, newSize: to)
            var seen: [TreeHead] = [], asOf = ""
            if request.withSeen {
                // The cursor is this node's own order of keeping heads (a decimal number; anything else: 0).
                let since = Int64(request.seenSince) ?? 0
                let found = try heads.latestOfEach(keptAfter: since, excluding: [peer, nodeID], limit: Self.maximumSeenHeads)
                seen = found.heads
                asOf = String(found.cursor)
            }
            return .with {
                $0.treeHead = .with {
                    $0.head = head.wire; $0.consistency = proof.map { Data($0) }
                    $0.seen = seen.map { var w = $0.wire; w.certificate = Data(); return w }
                    $0.seenAsOf = asOf
                }
            }
        } catch {
            return .with { $0.error = .with { $0.message = "no tree head: \(error)" } }
        }
    }

    /// The proof that this node's log holds the job's receipt, to a node the receipt names (a party or the
    /// coordinator): only that record, whose content every party of the job already has, is ever proven to
    /// a peer — no other audit record leaves the node.
    func answer(_ request: Mpcnode_V1_InclusionProofRequest, from peer: String) -> Mpcnode_V1_ControlResponse {
        guard (1...64).contains(request.jobID.utf8.count), request.event == "job.receipt" else {
            return .with { $0.error = .with { $0.message = "only the proof of a job's receipt (event job.receipt) is given, for a job id of 1 to 64 bytes" } }
        }
        if let refusal = tooSoon(peer) { return refusal }
        do {
            let named = try store.read { db -> Bool in
                guard let bytes = try Data.fetchOne(db, sql: "SELECT receipt FROM job_receipt WHERE job_id = ?", arguments: [request.jobID]),
                      let receipt = try? Mpcnode_V1_JobReceipt(serializedBytes: bytes) else { return false }
                return receipt.coordinator == peer || receipt.parties.contains { $0.node == peer }
            }
            guard named else {
                return .with { $0.error = .with { $0.message = "\(nodeID) holds no receipt of job \(PeerText.cut(request.jobID, limit: 64)) that names \(peer)" } }
            }
            guard let found = try ledger.leaf(ofJob: request.jobID, event: request.event) else {
                return .with { $0.error = .with { $0.message = "\(nodeID) holds no record of job \(PeerText.cut(request.jobID, limit: 64))" + (request.event.isEmpty ? "" : " with event \(PeerText.cut(request.event, limit: 64))") } }
            }
            let head = try signHead()
            let proof = try ledger.inclusionProof(index: found.index, size: head.size)
            let from = Int(clamping: request.fromSize)
            let consistency = from == 0 || from > head.size ? [] : try ledger.consistencyProof(oldSize: from, newSize: head.size)
            return .with {
                $0.inclusion = .with {
                    $0.head = head.wire; $0.leafIndex = UInt64(found.index); $0.leaf = Data(found.data)
                    $0.proof = proof.map { Data($0) }; $0.consistency = consistency.map { Data($0) }
                }
            }
        } catch {
            return .with { $0.error = .with { $0.message = "no inclusion proof: \(error)" } }
        }
    }

    /// A record of a job that a peer proved its log holds.
    public struct ProvenRecord: Equatable, Sendable {
        public var node: String
        public var leafIndex: Int
        public var headSize: Int
        public var at: String
        public var event: String
        public var details: String
    }

    /// Asks `peer` for the proof that its log holds its record of `jobID`, and checks it: the head is
    /// `peer`'s, signed, and follows from the heads of it held (as a pulled head is checked, alarms
    /// included); the leaf is a record of that job; the proof leads from the leaf to the head's root.
    /// With `receiptSHA256`, the record must be of that very receipt (a coordinator that gave different
    /// receipts to different parties is caught here).
    public func proveRecord(ofJob jobID: String, event: String = "job.receipt", receiptSHA256: String? = nil, at peer: String) async throws -> ProvenRecord {
        guard let address = peers[peer] else { throw LedgerCheckError.notAPeer(peer) }
        let held = try heads.latest(of: peer)
        let response = try await transport.control(.with {
            $0.inclusion = .with { $0.jobID = jobID; $0.event = event; $0.fromSize = UInt64(held?.size ?? 0) }
        }, to: peer, at: address)
        guard case .inclusion(let answer)? = response.kind else {
            if case .error(let e)? = response.kind { throw LedgerCheckError.notProven(node: peer, detail: PeerText.cut(e.message, limit: 200)) }
            throw LedgerCheckError.notProven(node: peer, detail: "it did not answer with an inclusion proof")
        }
        guard answer.proof.count <= Self.maximumProofNodes else { throw LedgerCheckError.notProven(node: peer, detail: "a proof of \(answer.proof.count) nodes") }
        switch try check(.with { $0.head = answer.head; $0.consistency = answer.consistency }, from: peer, held: held) {
        case .alarm(let kind, let detail): throw LedgerCheckError.alarm(node: peer, kind: kind, detail: detail)
        case .unreachable(let detail): throw LedgerCheckError.notProven(node: peer, detail: detail)
        case .first, .advanced, .unchanged: break
        }
        let head = TreeHead(answer.head), leaf = Array(answer.leaf)
        guard let record = LedgerLeaf.record(leaf), record.jobID == jobID, event.isEmpty || record.event == event else {
            throw LedgerCheckError.notProven(node: peer, detail: "the leaf it sent is not a record of job \(jobID)")
        }
        if let receiptSHA256 {
            let details = try? JSONDecoder().decode([String: AuditValue].self, from: Data(record.details.utf8))
            guard details?["receipt_sha256"] == .string(receiptSHA256) else {
                throw LedgerCheckError.notProven(node: peer, detail: "its log holds another receipt of job \(jobID) than the one this node holds")
            }
        }
        let index = Int(clamping: answer.leafIndex)
        guard MerkleTree.verifyInclusion(index: index, size: head.size, leafHash: MerkleTree.leafHash(leaf),
                                         proof: answer.proof.map { Array($0) }, root: head.root) else {
            throw LedgerCheckError.notProven(node: peer, detail: "the inclusion proof of leaf \(index) does not lead to its signed root of \(head.size) leaves")
        }
        return ProvenRecord(node: peer, leafIndex: index, headSize: head.size, at: record.at, event: record.event, details: record.details)
    }

    // MARK: pulling

    public enum PullOutcome: Equatable, Sendable {
        case first(size: Int)
        case advanced(from: Int, to: Int)
        case unchanged(size: Int)
        case alarm(kind: String, detail: String)
        case unreachable(String)
    }

    /// Pulls `peer`'s latest head and checks it against the one held.
    @discardableResult
    public func pull(from peer: String) async -> PullOutcome { await pull(from: peer, withSeen: false).outcome }

    /// Pulls `peer`'s latest head and checks it against the one held; with `withSeen`, also the heads of
    /// other nodes it holds that it received since the last time this node asked (a head of those is
    /// returned as sent, unchecked).
    func pull(from peer: String, withSeen: Bool) async -> (outcome: PullOutcome, seen: [TreeHead]) {
        guard let address = peers[peer] else { return (.unreachable("\(peer) is not a peer of \(nodeID)"), []) }
        let held: TreeHead?
        do { held = try heads.latest(of: peer) } catch { return (.unreachable("\(error)"), []) }
        let since = withSeen ? seenAsOf.withLock { $0[peer] ?? "" } : ""
        let response: Mpcnode_V1_ControlResponse
        do {
            response = try await transport.control(.with {
                $0.treeHead = .with { $0.fromSize = UInt64(held?.size ?? 0); $0.withSeen = withSeen; $0.seenSince = since }
            }, to: peer, at: address)
        } catch {
            return (.unreachable("\(error)"), [])
        }
        guard case .treeHead(let answer)? = response.kind else {
            if case .error(let e)? = response.kind { return (.unreachable(PeerText.cut(e.message, limit: 200)), []) }
            return (.unreachable("\(peer) did not answer with a tree head"), [])
        }
        let outcome: PullOutcome
        do { outcome = try check(answer, from: peer, held: held) } catch { return (.unreachable("\(error)"), []) }
        guard withSeen else { return (outcome, []) }
        // At most `maximumSeenHeads` are looked at, of names of 1 to 63 bytes, one a node; the peer's cursor
        // is kept only when short (a member cannot make this node keep or resend anything large).
        if answer.seenAsOf.utf8.count <= 20 { seenAsOf.withLock { $0[peer] = answer.seenAsOf } }
        var nodes = Set<String>()
        let seen = answer.seen.prefix(Self.maximumSeenHeads).map(TreeHead.init).filter {
            (1...63).contains($0.node.utf8.count) && $0.node != nodeID && $0.node != peer && nodes.insert($0.node).inserted
        }
        return (outcome, seen)
    }

    /// Pulls every peer's head, all at once, with the heads each holds of the others, then checks those
    /// against the heads this node holds (`crossCheck`): a node that showed two peers two different logs is
    /// caught when their heads meet here.
    @discardableResult
    public func pullAll() async -> [String: PullOutcome] {
        var out: [String: PullOutcome] = [:]
        var seen: [(from: String, head: TreeHead)] = []
        await withTaskGroup(of: (String, PullOutcome, [TreeHead]).self) { group in
            for peer in peers.keys where peer != nodeID { group.addTask { let r = await self.pull(from: peer, withSeen: true); return (peer, r.outcome, r.seen) } }
            for await (peer, outcome, heads) in group {
                out[peer] = outcome
                seen += heads.map { (peer, $0) }
            }
        }
        let answered = Set(out.compactMap { peer, outcome -> String? in if case .unreachable = outcome { return nil }; return peer })
        for (node, alarm) in await crossCheck(seen, answered: answered) { out[node] = alarm }
        return out
    }

    /// Pulls the heads of these nodes (those that are peers of this node), all at once.
    @discardableResult
    public func pull(_ nodes: Set<String>) async -> [String: PullOutcome] {
        await withTaskGroup(of: (String, PullOutcome).self) { group in
            for peer in nodes where peer != nodeID && peers[peer] != nil { group.addTask { (peer, await self.pull(from: peer)) } }
            var out: [String: PullOutcome] = [:]
            for await (peer, outcome) in group { out[peer] = outcome }
            return out
        }
    }

    /// The latest time a head may carry: a day ahead of this node's clock (clocks differ, never by that much).
    static func latestTimestamp(now: Date = Date()) -> UInt64 { UInt64((now.timeIntervalSince1970 + 86_400) * 1000) }

    func check(_ answer: Mpcnode_V1_TreeHeadResponse, from peer: String, held: TreeHead?) throws -> PullOutcome {
        let head = TreeHead(answer.head)
        guard head.node == peer else {
            return try alarm(peer, "impersonation", "\(peer) answered with a head of '\(PeerText.cut(head.node, limit: 63))'")
        }
        guard answer.consistency.count <= Self.maximumProofNodes else {
            return try alarm(peer, "malformed", "a consistency proof of \(answer.consistency.count) nodes (at most \(Self.maximumProofNodes))")
        }
        guard head.timestampMs <= Self.latestTimestamp() else {
            return try alarm(peer, "time", "a head dated more than a day ahead (\(head.timestampMs) ms since 1970)")
        }
        do { try head.verify(with: signatures) } catch {
            return try alarm(peer, "signature", "\(error)")
        }
        let proof = answer.consistency.map { Array($0) }
        // Decided and kept under the store's writer, against the head held now: another pull of the same
        // peer may have kept a head since `held` was read, and two answers of one size with two roots must
        // meet here and be a fork, never both pass.
        enum Decision { case outcome(PullOutcome), alarm(String, String) }
        let decision: Decision = try store.write { db in
            let current = try heads.latest(of: peer, db)
            let stamp = { (h: TreeHead) in AuditTime.string(h.date) }
            // A head the node signed that this node holds proven — pulled, or shown by a peer and proven by
            // the node — bounds its log from below, whoever showed it.
            if let proven = try heads.largestProven(of: peer, db), (head.size < proven.size), (proven.size > (current?.size ?? 0)) {
                try heads.keep(head, db)
                return .alarm("rollback", "its log has \(head.size) leaves, but it signed a head of \(proven.size) leaves at \(stamp(proven)) that it proved to this node: records were removed or an older copy of its database was restored")
            }
            guard let current else {
                try heads.keep(head, db)
                return .outcome(.first(size: head.size))
            }
            if head.size < current.size {
                try heads.keep(head, db)
                return .alarm("rollback", "its log has \(head.size) leaves, but it signed a head of \(current.size) leaves at \(stamp(current)): records were removed or an older copy of its database was restored")
            }
            if head.size == current.size {
                guard head.root == current.root else {
                    try heads.keep(head, db)
                    return .alarm("fork", "two heads of \(head.size) leaves with different roots (\(current.rootHex.prefix(16))… at \(stamp(current)), \(head.rootHex.prefix(16))… now), both signed by \(peer): its log was rewritten")
                }
                return .outcome(.unchanged(size: head.size))
            }
            // A larger head: its proof is from the head held when the request was sent; if another pull kept a
            // newer one since, this answer is left for the next pull (which brings a proof from that one).
            guard let held, held.size == current.size, held.root == current.root else { return .outcome(.unchanged(size: current.size)) }
            guard MerkleTree.verifyConsistency(oldSize: held.size, newSize: head.size, oldRoot: held.root, newRoot: head.root, proof: proof) else {
                try heads.keep(head, db)
                return .alarm("fork", "its head of \(head.size) leaves does not extend the head of \(held.size) leaves it signed at \(stamp(held)) (no consistency proof joins them): a record among the first \(held.size) was edited, removed or reordered")
            }
            try heads.keep(head, db)
            if head.timestampMs < held.timestampMs {
                return .alarm("time", "its head of \(head.size) leaves is dated before its head of \(held.size) leaves")
            }
            return .outcome(.advanced(from: held.size, to: head.size))
        }
        switch decision {
        case .outcome(let o): return o
        case .alarm(let kind, let detail): return try alarm(peer, kind, detail)
        }
    }

    func alarm(_ peer: String, _ kind: String, _ detail: String) throws -> PullOutcome {
        let alarm = PeerHeads.Alarm(at: AuditTime.string(Date()), node: peer, kind: kind, detail: detail)
        try heads.raise(alarm)
        metrics?.ledgerAlarm(node: peer, kind: kind)
        logger.error("ledger alarm: \(peer)'s log does not follow from what this node saw of it", metadata: ["node": "\(peer)", "kind": "\(kind)", "detail": "\(detail)"])
        return .alarm(kind: kind, detail: detail)
    }
}

extension TreeHead {
    init(_ wire: Mpcnode_V1_TreeHead) {
        self.init(node: wire.node, size: Int(clamping: wire.size), root: Array(wire.root), timestampMs: wire.timestampMs,
                  signature: Array(wire.signature), certificate: Array(wire.certificate))
    }

    var wire: Mpcnode_V1_TreeHead {
        .with {
            $0.node = node; $0.size = UInt64(size); $0.root = Data(root); $0.timestampMs = timestampMs
            $0.signature = Data(signature); $0.certificate = Data(certificate)
        }
    }
}

public enum LedgerCheckError: Error, Equatable, CustomStringConvertible {
    case notAPeer(String)
    case alarm(node: String, kind: String, detail: String)
    case notProven(node: String, detail: String)

    public var description: String {
        switch self {
        case .notAPeer(let n): return "\(n) is not a peer of this node: add it to peers: to check its log"
        case .alarm(let n, let k, let d): return "\(n)'s log raised a \(k) alarm: \(d)"
        case .notProven(let n, let d): return "\(n) did not prove that its log holds the record: \(d)"
        }
    }
}
