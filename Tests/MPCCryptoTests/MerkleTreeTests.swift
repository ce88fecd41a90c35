@testable import MPCCrypto
import MPCTestSupport
import XCTest

/// RFC 9162 §2.1 against the reference vectors of Certificate Transparency (the 8-leaf reference tree:
/// roots at every size, inclusion and consistency proofs), against a plain recursive definition over
/// random trees, and against mutated proofs, which must all fail.
final class MerkleTreeTests: XCTestCase {
    static let leaves: [[UInt8]] = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                    "606162636465666768696a6b6c6d6e6f"].map(hex)
    static let roots = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ].map(hex)
    /// (leaf index, tree size, proof)
    static let inclusion: [(Int, Int, [String])] = [
        (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
        (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
        (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
        (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
        (0, 1, []),
    ]
    /// (old size, new size, proof)
    static let consistency: [(Int, Int, [String])] = [
        (1, 1, []),
        (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
        (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
        (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
        (3, 8, ["0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
                "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
                "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    ]

    static func hex(_ s: String) -> [UInt8] {
        var out: [UInt8] = [], chars = Array(s.utf8)
        while chars.count >= 2 { out.append(UInt8(String(decoding: chars.prefix(2), as: UTF8.self), radix: 16)!); chars.removeFirst(2) }
        return out
    }
    let hashes = MerkleTreeTests.leaves.map(MerkleTree.leafHash)

    func testRootsOfTheReferenceTreeAtEverySize() {
        XCTAssertEqual(try MerkleTree.root(count: 0) { _ in [] }, Self.hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"))
        for n in 1...8 {
            XCTAssertEqual(try MerkleTree.root(count: n) { hashes[$0] }, Self.roots[n - 1], "size \(n)")
        }
    }

    func testInclusionProofsAreTheReferenceOnesAndVerify() throws {
        for (index, size, expected) in Self.inclusion {
            let proof = try MerkleTree.inclusionProof(index: index, size: size) { hashes[$0] }
            XCTAssertEqual(proof, expected.map(Self.hex), "leaf \(index) of \(size)")
            let root = Self.roots[size - 1]
            XCTAssertTrue(MerkleTree.verifyInclusion(index: index, size: size, leafHash: hashes[index], proof: proof, root: root))
            // Mutations: each must fail.
            XCTAssertFalse(MerkleTree.verifyInclusion(index: index + 1, size: size, leafHash: hashes[index], proof: proof, root: root))
            if index > 0 { XCTAssertFalse(MerkleTree.verifyInclusion(index: index - 1, size: size, leafHash: hashes[index], proof: proof, root: root)) }
            XCTAssertFalse(MerkleTree.verifyInclusion(index: index ^ 2, size: size, leafHash: hashes[index], proof: proof, root: root))
            XCTAssertFalse(MerkleTree.verifyInclusion(index: index, size: size * 2, leafHash: hashes[index], proof: proof, root: root))
            if size > 1 { XCTAssertFalse(MerkleTree.verifyInclusion(index: index, size: size / 2, leafHash: hashes[index], proof: proof, root: root)) }
            XCTAssertFalse(MerkleTree.verifyInclusion(index: index, size: size, leafHash: MerkleTree.leafHash(Array("WrongLeaf".utf8)), proof: proof, root: root))
            XCTAssertFalse(MerkleTree.verifyInclusion(index: index, size: size, leafHash: hashes[index], proof: proof, root: MerkleTree.emptyTreeHash))
            for i in proof.indices {
                var bad = proof; bad[i] = MerkleTree.emptyTreeHash
                XCTAssertFalse(MerkleTree.verifyInclusion(index: index, size: size, leafHash: hashes[index], proof: bad, root: root))
            }
            XCTAssertFalse(MerkleTree.verifyInclusion(index: index, size: size, leafHash: hashes[index], proof: proof + [root], root: root))
            XCTAssertFalse(MerkleTree.verifyInclusion(index: index, size: size, leafHash: hashes[index], proof: [root] + proof, root: root))
            if !proof.isEmpty { XCTAssertFalse(MerkleTree.verifyInclusion(index: index, size: size, leafHash: hashes[index], proof: Array(proof.dropLast()), root: root)) }
        }
        XCTAssertThrowsError(try MerkleTree.inclusionProof(index: 3, size: 3) { hashes[$0] })
        XCTAssertFalse(MerkleTree.verifyInclusion(index: 0, size: 0, leafHash: [1], proof: [], root: MerkleTree.emptyTreeHash))
    }

    func testConsistencyProofsAreTheReferenceOnesAndVerify() throws {
        for (old, new, expected) in Self.consistency {
            let proof = try MerkleTree.consistencyProof(oldSize: old, newSize: new) { hashes[$0] }
            XCTAssertEqual(proof, expected.map(Self.hex), "\(old) → \(new)")
            let r1 = Self.roots[old - 1], r2 = Self.roots[new - 1]
            XCTAssertTrue(MerkleTree.verifyConsistency(oldSize: old, newSize: new, oldRoot: r1, newRoot: r2, proof: proof))
            guard !proof.isEmpty else { continue }
            XCTAssertFalse(MerkleTree.verifyConsistency(oldSize: old - 1, newSize: new, oldRoot: r1, newRoot: r2, proof: proof))
            XCTAssertFalse(MerkleTree.verifyConsistency(oldSize: old + 1, newSize: new, oldRoot: r1, newRoot: r2, proof: proof))
            XCTAssertFalse(MerkleTree.verifyConsistency(oldSize: old, newSize: new * 2, oldRoot: r1, newRoot: r2, proof: proof))
            XCTAssertFalse(MerkleTree.verifyConsistency(oldSize: old, newSize: new, oldRoot: Array("WrongRoot".utf8), newRoot: r2, proof: proof))
            XCTAssertFalse(MerkleTree.verifyConsistency(oldSize: old, newSize: new, oldRoot: r1, newRoot: Array("WrongRoot".utf8), proof: proof))
            XCTAssertFalse(MerkleTree.verifyConsistency(oldSize: old, newSize: new, oldRoot: r2, newRoot: r1, proof: proof))
            XCTAssertFalse(MerkleTree.verifyConsistency(oldSize: old, newSize: new, oldRoot: r1, newRoot: r2, proof: []))
            for i in proof.indices {
                var bad = proof; bad[i] = MerkleTree.emptyTreeHash
                XCTAssertFalse(MerkleTree.verifyConsistency(oldSize: old, newSize: new, oldRoot: r1, newRoot: r2, proof: bad))
            }
            XCTAssertFalse(MerkleTree.verifyConsistency(oldSize: old, newSize: new, oldRoot: r1, newRoot: r2, proof: proof + [r1]))
            XCTAssertFalse(MerkleTree.verifyConsistency(oldSize: old, newSize: new, oldRoot: r1, newRoot: r2, proof: Array(proof.dropLast())))
            XCTAssertFalse(MerkleTree.verifyConsistency(oldSize: old, newSize: new, oldRoot: r1, newRoot: r2, proof: [proof[0]] + proof))
        }
        // Sizes that are always consistent, and ones that never are.
        XCTAssertTrue(MerkleTree.verifyConsistency(oldSize: 0, newSize: 0, oldRoot: Self.roots[0], newRoot: Self.roots[0], proof: []))
        XCTAssertTrue(MerkleTree.verifyConsistency(oldSize: 0, newSize: 5, oldRoot: MerkleTree.emptyTreeHash, newRoot: Self.roots[4], proof: []))
        XCTAssertFalse(MerkleTree.verifyConsistency(oldSize: 1, newSize: 0, oldRoot: Self.roots[0], newRoot: MerkleTree.emptyTreeHash, proof: []))
        XCTAssertFalse(MerkleTree.verifyConsistency(oldSize: 1, newSize: 1, oldRoot: Self.roots[0], newRoot: Self.roots[1], proof: []))
        XCTAssertFalse(MerkleTree.verifyConsistency(oldSize: 1, newSize: 1, oldRoot: Self.roots[0], newRoot: Self.roots[0], proof: [Self.roots[0]]))
        XCTAssertFalse(MerkleTree.verifyConsistency(oldSize: 1, newSize: 2, oldRoot: Self.roots[0], newRoot: Self.roots[1], proof: []))
        XCTAssertThrowsError(try MerkleTree.consistencyProof(oldSize: 3, newSize: 2) { hashes[$0] })
    }

    /// Every proof of random trees up to 300 leaves verifies against the recursive definition's root, and a
    /// tree that differs in one leaf gives no consistency with the original.
    func testRandomTreesAgreeWithTheRecursiveDefinition() throws {
        var generator = SplitMix(state: 9162)
        let all = (0..<300).map { _ in MerkleTree.leafHash((0..<Int(generator.next() % 40)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }) }
        func reference(_ d: ArraySlice<MerkleTree.Hash>) -> MerkleTree.Hash {
            if d.isEmpty { return MerkleTree.emptyTreeHash }
            if d.count == 1 { return d.first! }
            var k = 1; while k * 2 < d.count { k *= 2 }
            return MerkleTree.nodeHash(reference(d.prefix(k)), reference(d.dropFirst(k)))
        }
        for _ in 0..<60 {
            let n = 1 + Int(generator.next() % 300), m = 1 + Int(generator.next() % UInt64(n)), i = Int(generator.next() % UInt64(n))
            let rootN = reference(all[0..<n]), rootM = reference(all[0..<m])
            XCTAssertEqual(try MerkleTree.root(count: n) { all[$0] }, rootN)
            let path = try MerkleTree.inclusionProof(index: i, size: n) { all[$0] }
            XCTAssertTrue(MerkleTree.verifyInclusion(index: i, size: n, leafHash: all[i], proof: path, root: rootN), "leaf \(i) of \(n)")
            let proof = try MerkleTree.consistencyProof(oldSize: m, newSize: n) { all[$0] }
            XCTAssertTrue(MerkleTree.verifyConsistency(oldSize: m, newSize: n, oldRoot: rootM, newRoot: rootN, proof: proof), "\(m) → \(n)")
            // One rewritten leaf below m: the rewritten tree's root has no proof from the original head.
            var rewritten = Array(all[0..<n]); rewritten[Int(generator.next() % UInt64(m))] = MerkleTree.leafHash([0xFF])
            let forged = try MerkleTree.consistencyProof(oldSize: m, newSize: n) { rewritten[$0] }
            XCTAssertFalse(MerkleTree.verifyConsistency(oldSize: m, newSize: n, oldRoot: rootM, newRoot: reference(rewritten[...]), proof: forged))
        }
    }

    /// With the hashes of perfect subtrees stored as leaves are appended (what a node's log keeps), every
    /// root and proof is the same as from the leaves alone, and reads far fewer hashes.
    func testStoredPerfectSubtreesGiveTheSameRootsAndProofsWithFewerReads() throws {
        var generator = SplitMix(state: 6962)
        let all = (0..<1000).map { _ in MerkleTree.leafHash([UInt8(truncatingIfNeeded: generator.next()), UInt8(truncatingIfNeeded: generator.next())]) }
        var stored: [Int: [Int: MerkleTree.Hash]] = [0: [:]]
        for (index, hash) in all.enumerated() {
            stored[0]![index] = hash
            try MerkleTree.perfectSubtreeHashes(appending: hash, at: index, perfect: { stored[$0]![$1]! }, store: { stored[$0, default: [:]][$1] = $2 })
        }
        XCTAssertEqual(stored[1]?.count, 500)
        XCTAssertEqual(stored[9]?.count, 1)
        XCTAssertNil(stored[10])
        var reads = 0
        let perfect: MerkleTree.PerfectSubtree = { level, index in reads += 1; return level == 0 ? nil : stored[level]?[index] }
        let leaf = { (i: Int) -> MerkleTree.Hash in reads += 1; return all[i] }
        for _ in 0..<40 {
            let n = 1 + Int(generator.next() % 1000), m = 1 + Int(generator.next() % UInt64(n)), i = Int(generator.next() % UInt64(n))
            reads = 0
            XCTAssertEqual(try MerkleTree.root(count: n, leaf: leaf, perfect: perfect), try MerkleTree.root(count: n) { all[$0] })
            XCTAssertLessThanOrEqual(reads, 2 * 11, "root of \(n) leaves")
            reads = 0
            XCTAssertEqual(try MerkleTree.inclusionProof(index: i, size: n, leaf: leaf, perfect: perfect), try MerkleTree.inclusionProof(index: i, size: n) { all[$0] })
            XCTAssertLessThanOrEqual(reads, 11 * 22, "proof of \(i) in \(n)")
            XCTAssertEqual(try MerkleTree.consistencyProof(oldSize: m, newSize: n, leaf: leaf, perfect: perfect), try MerkleTree.consistencyProof(oldSize: m, newSize: n) { all[$0] })
        }
    }
}
