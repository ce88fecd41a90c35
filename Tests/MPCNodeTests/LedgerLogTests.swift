import Foundation
import MPCCrypto
import MPCIdentity
@testable import MPCNode
import XCTest

/// A node's Merkle log over a thousand jobs' records, the database closed and reopened (a restart) every
/// hundred jobs, a head signed at each: every pair of heads is joined by a consistency proof, every head
/// verifies against the CA, and records chosen at random are proven in the last head from their own text.
final class LedgerLogTests: XCTestCase {
    func testAThousandJobsWithRestartsGiveHeadsThatAreAllConsistent() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mpcnode-ledger-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let ca = try ConsortiumCA.create(name: "Ledger test")
        let issued = try ca.issue(nodeID: "bank-a", role: .bank)
        let caPath = directory.appendingPathComponent("ca.pem").path, certificate = directory.appendingPathComponent("bank-a.pem").path
        let key = directory.appendingPathComponent("bank-a-key.pem").path
        try ca.certificatePEM.write(toFile: caPath, atomically: true, encoding: .utf8)
        try issued.certificatePEM.write(toFile: certificate, atomically: true, encoding: .utf8)
        try issued.privateKeyPEM.write(toFile: key, atomically: true, encoding: .utf8)
        let signatures = NodeSignatures(try CertificateSignatures(certificatePath: certificate, privateKeyPath: key, caPath: caPath))
        let database = directory.appendingPathComponent("data/node.sqlite")

        var heads: [TreeHead] = []
        for round in 0..<10 {
            let store = try NodeStore(path: database)  // reopened every round, as after a restart
            let audit = AuditLog(store: store)
            for j in 0..<100 {
                let job = "job-\(round)-\(j)"
                try audit.append(event: "job.proposed", jobID: job, details: ["parties": .array([.string("bank-a"), .string("bank-b")])])
                try audit.append(event: "job.started", jobID: job, details: [:])
                try audit.append(event: j % 7 == 0 ? "job.failed" : "job.succeeded", jobID: job, details: ["round": .int(round)])
            }
            heads.append(try NodeLedger(store: store).signHead(node: "bank-a", with: signatures))
        }
        let ledger = NodeLedger(store: try NodeStore(path: database))
        XCTAssertEqual(heads.map(\.size), (1...10).map { $0 * 300 })
        XCTAssertNil(try ledger.verifyLeaves())
        for head in heads { XCTAssertNoThrow(try head.verify(with: signatures)) }

        var pairs = Array(zip(heads, heads.dropFirst()))
        pairs += [(heads[0], heads[9]), (heads[2], heads[7]), (heads[4], heads[5])]
        for (old, new) in pairs {
            let proof = try ledger.consistencyProof(oldSize: old.size, newSize: new.size)
            XCTAssertTrue(MerkleTree.verifyConsistency(oldSize: old.size, newSize: new.size, oldRoot: old.root, newRoot: new.root, proof: proof),
                          "\(old.size) → \(new.size)")
        }
        // A head whose root was not the log's (a rewrite) has no proof to the last one.
        var forged = heads[3]; forged.root[0] ^= 1
        XCTAssertFalse(MerkleTree.verifyConsistency(oldSize: forged.size, newSize: heads[9].size, oldRoot: forged.root, newRoot: heads[9].root,
                                                    proof: try ledger.consistencyProof(oldSize: forged.size, newSize: heads[9].size)))
        XCTAssertThrowsError(try forged.verify(with: signatures), "the signature covers the root")

        let records = try AuditLog(store: ledger.store).records(limit: 10_000).sorted { $0.seq < $1.seq }
        XCTAssertEqual(records.count, 3000)
        for index in stride(from: 0, to: 3000, by: 137) {
            let r = records[index]
            let leaf = NodeLedger.leafHash(seq: r.seq, at: r.at, jobID: r.jobID, event: r.event, details: r.details)
            let proof = try ledger.inclusionProof(index: index, size: heads[9].size)
            XCTAssertTrue(MerkleTree.verifyInclusion(index: index, size: heads[9].size, leafHash: leaf, proof: proof, root: heads[9].root), "record \(r.seq)")
        }

        // The node's own check covers the stored subtrees: an edited one is named. Removed ones (or a binary
        // from before v13 that wrote records) never make an audit record fail: a missing sibling is hashed
        // from the leaves, and roots read with and without stored subtrees agree.
        XCTAssertNil(try ledger.verifyLeaves())
        try ledger.store.pool.write { try $0.execute(sql: "UPDATE ledger_node SET hash = zeroblob(32) WHERE level = 3 AND node_index = 5") }
        let edited = try ledger.verifyLeaves()
        XCTAssertTrue(edited?.detail.contains("subtree of 8 leaves at leaf 40") == true, "\(String(describing: edited))")
        try ledger.store.pool.write { try $0.execute(sql: "DELETE FROM ledger_node") }
        let size = try ledger.size()
        for k in 0..<9 { try ledger.store.pool.write { db in try AuditLog(store: ledger.store).append(db, event: "test.after-removal", jobID: "j\(k)", details: [:]) } }
        XCTAssertEqual(try ledger.size(), size + 9)
        let withoutStored = try ledger.root(size: size + 9)
        try ledger.store.pool.write { try NodeLedger.rebuildPerfectSubtrees($0) }
        XCTAssertEqual(try ledger.root(size: size + 9), withoutStored)
        XCTAssertNil(try ledger.verifyLeaves())
    }
}
