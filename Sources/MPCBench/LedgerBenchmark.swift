import Foundation
import MPCCrypto
import MPCIdentity
import MPCNode
import MPCWire

/// `mpcnode bench ledger`: what the consortium ledger costs (Protocols/ledger.md) — signing and verifying
/// a tree head (what a job's end costs each party), the bytes of one head exchange and so of gossip among
/// N nodes per hour, proofs at the log's size, and the log's growth on disk per job.
public enum LedgerBenchmark {
    public struct Figures: Sendable {
        public var records: Int
        public var recordsPerJob: Int
        public var appendMicrosecondsPerRecord: Double
        /// The root of the whole log and the ECDSA signature over it (what a peer's pull after a job costs).
        public var signMilliseconds: Double
        public var verifyMilliseconds: Double
        public var rootMilliseconds: Double
        public var consistencyProofMilliseconds: Double
        public var inclusionProofMilliseconds: Double
        public var exchangeBytes: Int
        public var nodes: Int
        public var gossipSeconds: Int
        /// Every node pulls every peer each round, and no peer's log grew since the last round.
        public var gossipBytesPerHour: Double
        /// One head of a third node as a peer sends it (split-view check), without its certificate.
        public var seenHeadBytes: Int
        /// Every peer's log grew since the last round: each answer carries the heads of the other N−2 nodes,
        /// and each node asks each peer for one proof between two of its heads.
        public var gossipBytesPerHourBusy: Double
        public var databaseBytesPerRecord: Double
        public var receiptParties: Int
        /// One party's ECDSA signature over a receipt of `receiptParties` parties.
        public var receiptSignMilliseconds: Double
        /// Every signature of such a receipt verified (what each party does when it is delivered).
        public var receiptVerifyMilliseconds: Double
        public var receiptDeliveryBytes: Int
    }

    /// Appends `jobs` × `recordsPerJob` audit records to a fresh node database and measures.
    public static func run(jobs: Int, recordsPerJob: Int, nodes: Int, gossipSeconds: Int, receiptParties: Int = 10) throws -> Figures {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mpcnode-bench-ledger-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let ca = try ConsortiumCA.create(name: "Ledger benchmark")
        let issued = try ca.issue(nodeID: "bank-a", role: .bank)
        let paths = ["ca.pem", "bank-a.pem", "bank-a-key.pem"].map { directory.appendingPathComponent($0).path }
        try ca.certificatePEM.write(toFile: paths[0], atomically: true, encoding: .utf8)
        try issued.certificatePEM.write(toFile: paths[1], atomically: true, encoding: .utf8)
        try issued.privateKeyPEM.write(toFile: paths[2], atomically: true, encoding: .utf8)
        let signatures = NodeSignatures(try CertificateSignatures(certificatePath: paths[1], privateKeyPath: paths[2], caPath: paths[0]))
        let database = directory.appendingPathComponent("data/node.sqlite")
        let store = try NodeStore(path: database)
        let ledger = NodeLedger(store: store)
        let audit = AuditLog(store: store)
        let before = try databaseBytes(database)

        // Records as jobs leave them: a batch of a job's records per transaction.
        var t = Date()
        for j in 0..<jobs {
            try store.pool.write { db in
                for r in 0..<recordsPerJob {
                    try audit.append(db, event: r == 0 ? "job.proposed" : r == recordsPerJob - 1 ? "job.succeeded" : "job.progress", jobID: "job-\(j)",
                                     details: ["party": .string("bank-\(r % 5)"), "input_rows": .int(j * 10 + r)])
                }
            }
        }
        let records = jobs * recordsPerJob
        let append = Date().timeIntervalSince(t) / Double(records) * 1e6
        try store.pool.writeWithoutTransaction { db in try db.checkpoint(.truncate) }
        let after = try databaseBytes(database)

        t = Date()
        let root = try ledger.root(size: records)
        let rootTime = Date().timeIntervalSince(t)
        t = Date()
        let head = try ledger.signHead(node: "bank-a", with: signatures)
        let sign = Date().timeIntervalSince(t)
        precondition(head.root == root)
        t = Date()
        for _ in 0..<20 { try head.verify(with: signatures) }
        let verify = Date().timeIntervalSince(t) / 20
        t = Date()
        let consistency = try ledger.consistencyProof(oldSize: records - records / 3, newSize: records)
        let consistencyTime = Date().timeIntervalSince(t)
        t = Date()
        _ = try ledger.inclusionProof(index: records / 2, size: records)
        let inclusionTime = Date().timeIntervalSince(t)

        // One exchange: the request and the answer a peer sends (its head with its certificate and a proof).
        let asOf = ISO8601DateFormatter().string(from: Date()) + ".000"
        let request = try Mpcnode_V1_ControlRequest.with {
            $0.treeHead = .with { $0.fromSize = UInt64(records - records / 3); $0.withSeen = true; $0.seenSince = asOf }
        }.serializedBytes() as [UInt8]
        let answer = try Mpcnode_V1_ControlResponse.with {
            $0.treeHead = .with {
                $0.head = .with {
                    $0.node = head.node; $0.size = UInt64(head.size); $0.root = Data(head.root); $0.timestampMs = head.timestampMs
                    $0.signature = Data(head.signature); $0.certificate = Data(head.certificate)
                }
                $0.consistency = consistency.map { Data($0) }
                $0.seenAsOf = asOf
            }
        }.serializedBytes() as [UInt8]
        let exchange = request.count + answer.count + 2 * 4  // length prefixes
        let seenHeadBytes: [UInt8] = try Mpcnode_V1_TreeHeadResponse.with {
            $0.seen = [.with { $0.node = "bank-99"; $0.size = UInt64(records); $0.root = Data(head.root); $0.timestampMs = head.timestampMs; $0.signature = Data(head.signature) }]
        }.serializedBytes()
        let seenHead = seenHeadBytes.count

        // A receipt of a job with `receiptParties` parties, each with its own certificate, signed by all.
        let names = (1...receiptParties).map { "bank-\($0)" }
        var signers: [String: CertificateSignatures] = [:]
        for name in names {
            let cert = try ca.issue(nodeID: name, role: .bank)
            let c = directory.appendingPathComponent("\(name).pem").path, k = directory.appendingPathComponent("\(name)-key.pem").path
            try cert.certificatePEM.write(toFile: c, atomically: true, encoding: .utf8)
            try cert.privateKeyPEM.write(toFile: k, atomically: true, encoding: .utf8)
            signers[name] = try CertificateSignatures(certificatePath: c, privateKeyPath: k, caPath: paths[0])
        }
        let receipt = Mpcnode_V1_JobReceipt.with {
            $0.jobID = "job-0"; $0.kind = "union-sum"; $0.specHash = String(repeating: "ab", count: 32); $0.coordinator = "bank-1"; $0.outcome = "succeeded"
            $0.parties = names.map { n in .with { $0.node = n; $0.accepted = true; $0.state = "succeeded"; $0.inputCommitment = Data(repeating: 1, count: 32) } }
        }
        let receiptBytes: [UInt8] = try receipt.serializedBytes()
        t = Date()
        var signed: [Mpcnode_V1_ReceiptSignature] = []
        for name in names {
            let s = try signers[name]!.sign(JobReceipts.tag + receiptBytes)
            signed.append(.with { $0.node = name; $0.signature = Data(s); $0.certificate = Data(signers[name]!.certificateDER) })
        }
        let receiptSign = Date().timeIntervalSince(t) / Double(receiptParties)
        let delivery = Mpcnode_V1_ReceiptDelivery.with { $0.receipt = Data(receiptBytes); $0.signatures = signed }
        t = Date()
        let verifiedBy = try JobReceipts.verifySignatures(delivery, receipt: receipt, with: signatures)
        let receiptVerify = Date().timeIntervalSince(t)
        precondition(verifiedBy.count == receiptParties)
        let deliveryBytes = (try delivery.serializedBytes() as [UInt8]).count
        let rounds = 3600 / Double(gossipSeconds), pulls = Double(nodes * (nodes - 1))
        let perHour = pulls * rounds * Double(exchange)
        let perHourBusy = pulls * rounds * Double(exchange + max(0, nodes - 2) * seenHead) + pulls * rounds * Double(exchange)
        return Figures(records: records, recordsPerJob: recordsPerJob, appendMicrosecondsPerRecord: append, signMilliseconds: sign * 1000,
                       verifyMilliseconds: verify * 1000, rootMilliseconds: rootTime * 1000, consistencyProofMilliseconds: consistencyTime * 1000,
                       inclusionProofMilliseconds: inclusionTime * 1000, exchangeBytes: exchange, nodes: nodes, gossipSeconds: gossipSeconds,
                       gossipBytesPerHour: perHour, seenHeadBytes: seenHead, gossipBytesPerHourBusy: perHourBusy, databaseBytesPerRecord: Double(after - before) / Double(records),
                       receiptParties: receiptParties, receiptSignMilliseconds: receiptSign * 1000, receiptVerifyMilliseconds: receiptVerify * 1000,
                       receiptDeliveryBytes: deliveryBytes)
    }

    static func databaseBytes(_ url: URL) throws -> Int {
        ["", "-wal"].reduce(0) { sum, suffix in
            sum + (((try? FileManager.default.attributesOfItem(atPath: url.path + suffix))?[.size] as? NSNumber)?.intValue ?? 0)
        }
    }
}
