import Foundation

/// What `mpcnode audit verify` shows (Protocols/ledger.md, "The regulator's check"): this node's own log
/// checked against its records and its latest signed head; every peer's head pulled and checked against
/// those held; with a job, each other party's proof that its log holds its record of the job; the alarms held.
public struct LedgerReport: Codable, Sendable {
    public struct Own: Codable, Sendable {
        public var size: Int
        /// nil when every record has its unchanged leaf.
        public var leafMismatch: String?
        public var latestHeadSize: Int?
        /// Whether the latest signed head's root is the root of the log's first leaves now.
        public var latestHeadMatches: Bool?
    }
    public struct Peer: Codable, Sendable {
        public var node: String
        /// first, advanced, unchanged, alarm or unreachable.
        public var outcome: String
        public var detail: String
        public var heldSize: Int?
        public var heldAt: Date?
    }
    public struct Record: Codable, Sendable {
        public var node: String
        public var proven: Bool
        public var detail: String
    }
    public var node: String
    public var own: Own
    public var peers: [Peer]
    public var job: String?
    /// The job's receipt as this node holds it (signatures verified again), nil when it holds none.
    public var receipt: JobReceipts.Check?
    public var records: [Record]
    public var alarms: [PeerHeads.Alarm]

    /// Whether everything verified: an unreachable peer is reported but does not fail the check.
    public var verified: Bool {
        own.leafMismatch == nil && own.latestHeadMatches != false && alarms.isEmpty
            && !peers.contains { peer in peer.outcome == "alarm" && (job == nil || records.contains { $0.node == peer.node }) } && records.allSatisfy(\.proven)
            && (job == nil || (receipt.map { $0.invalid == nil && $0.unsigned.isEmpty } ?? false))
    }
}

/// What the node holds of the ledger now, without asking anyone (`GET /v1/ledger`, the console): its log's
/// size and latest head, the latest head held of each peer, and the alarms.
public struct LedgerStatus: Codable, Sendable {
    public struct Head: Codable, Sendable {
        public var node: String
        public var size: Int
        public var root: String
        public var signedAt: Date
    }
    public var size: Int
    public var latestHead: Head?
    public var peers: [Head]
    public var alarms: [PeerHeads.Alarm]
}

extension LedgerGossip {
    public func status() throws -> LedgerStatus {
        func view(_ h: TreeHead) -> LedgerStatus.Head { .init(node: h.node, size: h.size, root: h.rootHex, signedAt: h.date) }
        return LedgerStatus(size: try ledger.size(), latestHead: try ledger.latestHead().map(view), peers: try heads.latestOfEach().map(view),
                            alarms: try heads.alarms(limit: 100))
    }

    /// Builds the report; with `jobID`, asks each of `parties` (other than this node) to prove its record of the job.
    public func verify(jobID: String?, parties: [String], receipt: JobReceipts.Check? = nil) async throws -> LedgerReport {
        let mismatch = try ledger.verifyLeaves()
        let size = try ledger.size()
        let latest = try ledger.latestHead()
        var matches: Bool?
        if let latest { matches = latest.size <= size ? (try? ledger.root(size: latest.size)) == latest.root : false }
        let outcomes = await pullAll()
        var peerRows: [LedgerReport.Peer] = []
        for (peer, outcome) in outcomes.sorted(by: { $0.key < $1.key }) {
            let held = try heads.latest(of: peer)
            let (name, detail): (String, String)
            switch outcome {
            case .first(let n): (name, detail) = ("first", "first head held: \(n) leaves")
            case .advanced(let a, let b): (name, detail) = ("advanced", "\(a) → \(b) leaves, consistent")
            case .unchanged(let n): (name, detail) = ("unchanged", "\(n) leaves, the same root")
            case .alarm(let kind, let d): (name, detail) = ("alarm", "\(kind): \(d)")
            case .unreachable(let d): (name, detail) = ("unreachable", d)
            }
            peerRows.append(.init(node: peer, outcome: name, detail: detail, heldSize: held?.size, heldAt: held?.date))
        }
        var records: [LedgerReport.Record] = []
        if let jobID {
            // Every party must prove it logged the job's receipt — the one this node holds, when it holds one.
            let event = "job.receipt"
            let own = try ledger.leaf(ofJob: jobID, event: event)
            records.append(.init(node: nodeID, proven: own != nil, detail: own.map { "leaf \($0.index) of this node's log" } ?? "this node holds no receipt of the job"))
            for party in Set(parties).subtracting([nodeID]).sorted() {
                do {
                    let proven = try await proveRecord(ofJob: jobID, event: event, receiptSHA256: receipt?.sha256, at: party)
                    records.append(.init(node: party, proven: true,
                                         detail: "\(proven.event) at \(proven.at): leaf \(proven.leafIndex) of its signed head of \(proven.headSize) leaves"))
                } catch {
                    records.append(.init(node: party, proven: false, detail: "\(error)"))
                }
            }
        }
        // With a job, the alarms that matter are those about its parties (another node's alarm is shown by
        // `audit verify` without --job).
        let involved = Set(parties)
        let alarms = try heads.alarms(limit: 100).filter { jobID == nil || involved.contains($0.node) }
        return LedgerReport(node: nodeID, own: .init(size: size, leafMismatch: mismatch?.detail, latestHeadSize: latest?.size, latestHeadMatches: matches),
                            peers: peerRows, job: jobID, receipt: receipt, records: records, alarms: alarms)
    }
}
