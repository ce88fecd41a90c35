import CSodium

/// The Merkle tree of Certificate Transparency (RFC 9162 §2.1, the same as RFC 6962's), with SHA-256:
/// tree hashes, inclusion and consistency proofs, and their verification. Leaves are given by their leaf
/// hashes (`leafHash`), read through `leaf(i)` so that a log of millions of entries need not be in
/// memory. Without more, building a root or a proof hashes the subtrees it needs (O(n) hashes for a tree
/// of n leaves); a log that keeps the hashes of its perfect subtrees (`perfectSubtreeHashes`, read through
/// `perfect(level, index)`: the subtree of 2^level leaves starting at leaf index·2^level) makes each
/// O(log² n) reads, since every subtree a root or proof needs splits into O(log n) such subtrees.
public enum MerkleTree {
    public typealias Hash = [UInt8]
    /// The stored hash of the perfect subtree of 2^level leaves starting at leaf index·2^level, if kept.
    public typealias PerfectSubtree = (_ level: Int, _ index: Int) throws -> Hash?

    /// SHA-256 of the empty string: the hash of an empty tree.
    public static let emptyTreeHash: Hash = sha256([])

    /// `SHA-256(0x00 ‖ data)`.
    public static func leafHash(_ data: [UInt8]) -> Hash { sha256([0x00] + data) }

    /// `SHA-256(0x01 ‖ left ‖ right)`.
    public static func nodeHash(_ left: Hash, _ right: Hash) -> Hash { sha256([0x01] + left + right) }

    static func sha256(_ bytes: [UInt8]) -> Hash {
        Sodium.ensureInitialized()
        var out = [UInt8](repeating: 0, count: 32)
        _ = crypto_hash_sha256(&out, bytes, UInt64(bytes.count))
        return out
    }

    /// The largest power of two strictly below n (n > 1).
    static func split(_ n: Int) -> Int {
        precondition(n > 1)
        var k = 1
        while k << 1 < n { k <<= 1 }
        return k
    }

    /// MTH(D[start ..< start+count]) over leaf hashes (and the stored hashes of perfect subtrees, if given).
    public static func root(count: Int, start: Int = 0, leaf: (Int) throws -> Hash, perfect: PerfectSubtree? = nil) throws -> Hash {
        if count == 0 { return emptyTreeHash }
        if count == 1 { return try leaf(start) }
        if let perfect, count & (count - 1) == 0, start % count == 0, let stored = try perfect(count.trailingZeroBitCount, start / count) {
            return stored
        }
        // Splitting at the largest power of two keeps the recursion depth at log n.
        let k = split(count)
        return nodeHash(try root(count: k, start: start, leaf: leaf, perfect: perfect),
                        try root(count: count - k, start: start + k, leaf: leaf, perfect: perfect))
    }

    /// Calls `store(level, index, hash)` for each perfect subtree completed by appending leaf `index` with
    /// hash `leafHash` (level ≥ 1, from the bottom), reading its left siblings through `perfect` (level 0:
    /// the leaves). Called for every leaf in order, it stores every perfect subtree of the log once.
    public static func perfectSubtreeHashes(appending leafHash: Hash, at index: Int, perfect: (_ level: Int, _ index: Int) throws -> Hash,
                                            store: (_ level: Int, _ index: Int, Hash) throws -> Void) throws {
        var i = index, level = 0, hash = leafHash
        while i & 1 == 1 {
            hash = nodeHash(try perfect(level, i - 1), hash)
            level += 1
            i >>= 1
            try store(level, i, hash)
        }
    }

    /// PATH(m, D[n]): the inclusion proof of leaf `index` in the tree of the first `size` leaves.
    public static func inclusionProof(index: Int, size: Int, leaf: (Int) throws -> Hash, perfect: PerfectSubtree? = nil) throws -> [Hash] {
        guard size > 0, (0..<size).contains(index) else { throw MerkleTreeError.indexOutOfRange(index: index, size: size) }
        return try path(index, start: 0, count: size, leaf: leaf, perfect: perfect)
    }

    private static func path(_ m: Int, start: Int, count n: Int, leaf: (Int) throws -> Hash, perfect: PerfectSubtree?) throws -> [Hash] {
        if n == 1 { return [] }
        let k = split(n)
        if m < k {
            return try path(m, start: start, count: k, leaf: leaf, perfect: perfect) + [try root(count: n - k, start: start + k, leaf: leaf, perfect: perfect)]
        }
        return try path(m - k, start: start + k, count: n - k, leaf: leaf, perfect: perfect) + [try root(count: k, start: start, leaf: leaf, perfect: perfect)]
    }

    /// PROOF(m, D[n]): the consistency proof between the trees of the first `oldSize` and `newSize` leaves.
    public static func consistencyProof(oldSize m: Int, newSize n: Int, leaf: (Int) throws -> Hash, perfect: PerfectSubtree? = nil) throws -> [Hash] {
        guard 0 <= m, m <= n else { throw MerkleTreeError.sizesOutOfOrder(old: m, new: n) }
        if m == 0 || m == n { return [] }
        return try subproof(m, start: 0, count: n, complete: true, leaf: leaf, perfect: perfect)
    }

    private static func subproof(_ m: Int, start: Int, count n: Int, complete b: Bool, leaf: (Int) throws -> Hash, perfect: PerfectSubtree?) throws -> [Hash] {
        if m == n { return b ? [] : [try root(count: n, start: start, leaf: leaf, perfect: perfect)] }
        let k = split(n)
        if m <= k {
            return try subproof(m, start: start, count: k, complete: b, leaf: leaf, perfect: perfect) + [try root(count: n - k, start: start + k, leaf: leaf, perfect: perfect)]
        }
        return try subproof(m - k, start: start + k, count: n - k, complete: false, leaf: leaf, perfect: perfect) + [try root(count: k, start: start, leaf: leaf, perfect: perfect)]
    }

    /// The root an inclusion proof leads to (RFC 9162 §2.1.3.2), or nil when the proof's length does not fit
    /// the index and size.
    public static func rootFromInclusionProof(index: Int, size: Int, leafHash: Hash, proof: [Hash]) -> Hash? {
        guard index >= 0, index < size, proof.allSatisfy({ $0.count == 32 }) else { return nil }
        var fn = index, sn = size - 1
        var r = leafHash
        for p in proof {
            if sn == 0 { return nil }
            if fn & 1 == 1 || fn == sn {
                r = nodeHash(p, r)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 { fn >>= 1; sn >>= 1 }
                }
            } else {
                r = nodeHash(r, p)
            }
            fn >>= 1; sn >>= 1
        }
        return sn == 0 ? r : nil
    }

    /// Whether `proof` shows that `leafHash` is leaf `index` of the tree of `size` leaves whose root is `root`.
    public static func verifyInclusion(index: Int, size: Int, leafHash: Hash, proof: [Hash], root: Hash) -> Bool {
        rootFromInclusionProof(index: index, size: size, leafHash: leafHash, proof: proof) == root
    }

    /// Whether `proof` shows that the tree of `oldSize` leaves with root `oldRoot` is a prefix of the tree of
    /// `newSize` leaves with root `newRoot` (RFC 9162 §2.1.4.2).
    public static func verifyConsistency(oldSize: Int, newSize: Int, oldRoot: Hash, newRoot: Hash, proof: [Hash]) -> Bool {
        guard oldSize >= 0, oldSize <= newSize, proof.allSatisfy({ $0.count == 32 }) else { return false }
        if oldSize == newSize { return proof.isEmpty && oldRoot == newRoot }
        if oldSize == 0 { return proof.isEmpty }
        guard !proof.isEmpty else { return false }
        // When the old size is a power of two, the old root is the proof's implicit first node.
        var path = proof
        if oldSize & (oldSize - 1) == 0 { path.insert(oldRoot, at: 0) }
        var fn = oldSize - 1, sn = newSize - 1
        while fn & 1 == 1 { fn >>= 1; sn >>= 1 }
        var fr = path[0], sr = path[0]
        for c in path.dropFirst() {
            if sn == 0 { return false }
            if fn & 1 == 1 || fn == sn {
                fr = nodeHash(c, fr)
                sr = nodeHash(c, sr)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 { fn >>= 1; sn >>= 1 }
                }
            } else {
                sr = nodeHash(sr, c)
            }
            fn >>= 1; sn >>= 1
        }
        return sn == 0 && fr == oldRoot && sr == newRoot
    }
}

public enum MerkleTreeError: Error, Equatable, CustomStringConvertible {
    case indexOutOfRange(index: Int, size: Int)
    case sizesOutOfOrder(old: Int, new: Int)

    public var description: String {
        switch self {
        case .indexOutOfRange(let i, let n): return "leaf \(i) is not in a tree of \(n) leaves"
        case .sizesOutOfOrder(let m, let n): return "no consistency proof from \(m) leaves to \(n): the old size must not exceed the new"
        }
    }
}
