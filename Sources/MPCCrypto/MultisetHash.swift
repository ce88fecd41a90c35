import CSodium

/// A hash of a multiset of byte strings that can be computed in parts and added up: the sum, in
/// ristretto255, of every member's hash onto the group (MuHash of Bellare and Micciancio, "A new paradigm
/// for collision-free hashing: incrementality at reduced cost", 1997, in an additive prime-order group).
/// Finding two different multisets with the same hash is as hard as discrete logarithms in the group, so
/// whoever relays a multiset cannot substitute, add or drop members without changing the sum; the order
/// of the members does not matter. The empty multiset hashes to the identity.
public struct MultisetHash: Sendable, Equatable {
    static let tag: [UInt8] = Array("MPCNode/multiset-hash/v1".utf8)

    public let domain: [UInt8]
    /// The sum of the members' hashes (and of any masks added); the identity for the empty multiset.
    public private(set) var sum: GroupElement

    public init(domain: [UInt8], sum: GroupElement = Ristretto255.identity) {
        self.domain = domain
        self.sum = sum
    }

    /// The hash of one member onto the group: the one-way map of BLAKE2b-512(tag ‖ len(domain) ‖ domain ‖ member).
    public static func element(_ member: some Collection<UInt8>, domain: [UInt8]) -> GroupElement {
        Sodium.ensureInitialized()
        var message = tag
        message.reserveCapacity(tag.count + 4 + domain.count + member.count)
        withUnsafeBytes(of: UInt32(domain.count).littleEndian) { message.append(contentsOf: $0) }
        message.append(contentsOf: domain)
        message.append(contentsOf: member)
        var digest = [UInt8](repeating: 0, count: 64)
        crypto_generichash(&digest, 64, message, UInt64(message.count), nil, 0)
        return try! Ristretto255.fromUniformBytes(digest)
    }

    /// Adds a group element (a member's hash, or a mask) to the sum; throws if it is not a valid encoding.
    public mutating func add(_ element: GroupElement) throws { sum = try Ristretto255.add(sum, element) }

    /// Subtracts a group element from the sum; throws if it is not a valid encoding.
    public mutating func subtract(_ element: GroupElement) throws { sum = try Ristretto255.subtract(sum, element) }

    /// Adds another hash of the same domain (the hash of the two multisets' union with multiplicities).
    public mutating func add(_ other: MultisetHash) throws {
        precondition(other.domain == domain, "multiset hashes of different domains")
        try add(other.sum)
    }

    /// `of`, a chunk of members at a time with a yield between chunks (`ParallelMap.mapInChunks`): for a
    /// whole set's members in a task.
    public static func ofInChunks(_ bytes: [UInt8], memberSize: Int, domain: [UInt8], chunk: Int = 16_384) async throws -> MultisetHash {
        precondition(memberSize > 0 && bytes.count % memberSize == 0)
        let count = bytes.count / memberSize
        var total = MultisetHash(domain: domain)
        var start = 0
        while start < count {
            let end = min(count, start + chunk)
            try total.add(of(Array(bytes[(start * memberSize)..<(end * memberSize)]), memberSize: memberSize, domain: domain))
            start = end
            if start < count { await Task.yield() }
        }
        return total
    }

    /// The hash of `members` (fixed-size slices of `bytes`), computed on every core.
    public static func of(_ bytes: [UInt8], memberSize: Int, domain: [UInt8]) throws -> MultisetHash {
        precondition(memberSize > 0 && bytes.count % memberSize == 0)
        let count = bytes.count / memberSize
        let chunk = 1024
        let partial = try ParallelMap.map(Array(stride(from: 0, to: count, by: chunk))) { start -> MultisetHash in
            var h = MultisetHash(domain: domain)
            for i in start..<min(count, start + chunk) {
                try h.add(element(bytes[(i * memberSize)..<((i + 1) * memberSize)], domain: domain))
            }
            return h
        }
        var total = MultisetHash(domain: domain)
        for p in partial { try total.add(p) }
        return total
    }
}
