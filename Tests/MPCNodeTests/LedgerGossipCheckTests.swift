import Foundation
import MPCCrypto
@testable import MPCNode
import MPCWire
import XCTest

/// What a node does with tree heads a dishonest peer crafts (the checks of a pull, fed directly): a head
/// dated far in the future is an alarm, not a crash; two heads of one size with different roots, each
/// with a valid proof from the head held (two extensions of one log), are a fork even when the second
/// answer was requested before the first was kept (as two concurrent pulls would).
final class LedgerGossipCheckTests: XCTestCase {
    func testCraftedHeadsAreAlarmsAndTwoBranchesOfOneLogAreAFork() async throws {
        let fixture = try ConsortiumFixture()
        removeAtTearDown(fixture.directory)
        let nodes = try await fixture.consortium.startAll(logger: ConsortiumFixture.quietLogger)
        stopAtTearDown(nodes)
        let gossip = nodes["coordinator"]!.ledger, bankB = nodes["bank-b"]!.signatures
        func answer(_ head: TreeHead, proof: [MerkleTree.Hash] = []) -> Mpcnode_V1_TreeHeadResponse {
            .with { $0.head = head.wire; $0.consistency = proof.map { Data($0) } }
        }
        // Two logs sharing their first 5 leaves, then different.
        let common = (0..<5).map { MerkleTree.leafHash([UInt8($0)]) }
        let left = common + (0..<4).map { MerkleTree.leafHash([0xA0, UInt8($0)]) }
        let right = common + (0..<4).map { MerkleTree.leafHash([0xB0, UInt8($0)]) }
        let held = try TreeHead.sign(node: "bank-b", size: 5, root: MerkleTree.root(count: 5) { common[$0] }, at: Date(), with: bankB)
        let first = try gossip.check(answer(held), from: "bank-b", held: nil)
        XCTAssertEqual(first, .first(size: 5))

        // A head dated at the end of time: an alarm (it once trapped converting to Int64).
        var future = try TreeHead.sign(node: "bank-b", size: 9, root: MerkleTree.root(count: 9) { left[$0] }, at: Date(), with: bankB)
        future.timestampMs = UInt64.max
        guard case .alarm(let kind, _) = try gossip.check(answer(future), from: "bank-b", held: held) else { return XCTFail("a head from the future passed") }
        XCTAssertEqual(kind, "time")

        // Two branches, each with a valid proof from the head held.
        let a = try TreeHead.sign(node: "bank-b", size: 9, root: MerkleTree.root(count: 9) { left[$0] }, at: Date(), with: bankB)
        let b = try TreeHead.sign(node: "bank-b", size: 9, root: MerkleTree.root(count: 9) { right[$0] }, at: Date(), with: bankB)
        let proofA = try MerkleTree.consistencyProof(oldSize: 5, newSize: 9) { left[$0] }
        let proofB = try MerkleTree.consistencyProof(oldSize: 5, newSize: 9) { right[$0] }
        XCTAssertTrue(MerkleTree.verifyConsistency(oldSize: 5, newSize: 9, oldRoot: held.root, newRoot: b.root, proof: proofB))
        XCTAssertEqual(try gossip.check(answer(a, proof: proofA), from: "bank-b", held: held), .advanced(from: 5, to: 9))
        guard case .alarm(let forkKind, _) = try gossip.check(answer(b, proof: proofB), from: "bank-b", held: held) else {
            return XCTFail("the second branch passed")
        }
        XCTAssertEqual(forkKind, "fork")
        // A head said to be bank-b's but signed by bank-a: a signature alarm.
        let wrongSigner = try TreeHead.sign(node: "bank-b", size: 10, root: MerkleTree.root(count: 9) { left[$0] }, at: Date(), with: nodes["bank-a"]!.signatures)
        guard case .alarm(let signatureKind, _) = try gossip.check(answer(wrongSigner), from: "bank-b", held: a) else { return XCTFail("a forged head passed") }
        XCTAssertEqual(signatureKind, "signature")
        XCTAssertEqual(Set(try PeerHeads(store: nodes["coordinator"]!.store).alarms().map(\.kind)), ["time", "fork", "signature"])
    }
}
