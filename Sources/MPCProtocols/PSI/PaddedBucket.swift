import MPCCrypto

/// One bucket of a bucketed PSI as sent (Protocols/psi-buckets.md): the bucket's identifiers and the
/// dummies that pad it to its capacity, in the bucket's secret order. Deterministic in the party's seed,
/// so a redone bucket sends exactly the same stream. Held flat (one byte buffer and offsets), since a
/// bucket is about a million identifiers.
struct PaddedBucket: IdentifierSource {
    private let bytes: [UInt8]
    /// Element i is `bytes[ends[i-1] ..< ends[i]]`.
    private let ends: [Int]
    /// The source position of element i, or -1 for a dummy.
    private let positions: [Int]

    var count: Int { ends.count }

    /// - Parameters: members: the bucket's identifiers with their source positions; capacity: the
    ///   elements to send (at least `members.count`); seed: the party's secret seed for the job.
    init(members: BucketMembers, bucket: Int, capacity: Int, seed: [UInt8]) {
        var label = Array("mpcnode-bucket-order-v1".utf8)
        withUnsafeBytes(of: UInt64(bucket).littleEndian) { label.append(contentsOf: $0) }
        let order = KeyedOrder(key: BucketKey.blake2b(label, length: 32, key: seed))
        var dummyLabel = Array("mpcnode-bucket-dummy-v1".utf8)
        withUnsafeBytes(of: UInt64(bucket).littleEndian) { dummyLabel.append(contentsOf: $0) }
        let total = max(members.count, capacity)
        func dummy(_ j: Int) -> [UInt8] {
            var message = dummyLabel
            withUnsafeBytes(of: UInt64(j).littleEndian) { message.append(contentsOf: $0) }
            return BucketKey.blake2b(message, length: 32, key: seed)
        }
        // Element k < members.count is members[k]; above, dummy k.
        var keys: [(hi: UInt64, lo: UInt64)] = []
        keys.reserveCapacity(total)
        var byteCount = 0
        byteCount += members.bytes.count + 32 * (total - members.count)
        if total > members.count {
            for i in 0..<members.count { keys.append(order.value(of: members.identifier(i))) }
            for j in members.count..<total { keys.append(order.value(of: dummy(j))) }
        }
        var sorted = Array(0..<total)
        // Without dummies the members' order (the snapshot's, secret and fixed for the job) is kept.
        if total > members.count {
            sorted.sort { keys[$0].hi != keys[$1].hi ? keys[$0].hi < keys[$1].hi : keys[$0].lo < keys[$1].lo }
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(byteCount)
        var ends: [Int] = []
        ends.reserveCapacity(total)
        var positions: [Int] = []
        positions.reserveCapacity(total)
        for k in sorted {
            if k < members.count {
                bytes.append(contentsOf: members.identifier(k))
                positions.append(members.positions[k])
            } else {
                bytes.append(contentsOf: dummy(k))
                positions.append(-1)
            }
            ends.append(bytes.count)
        }
        self.bytes = bytes
        self.ends = ends
        self.positions = positions
    }

    func identifiers(in range: Range<Int>) async throws -> [[UInt8]] {
        range.clamped(to: 0..<count).map { i in Array(bytes[(i == 0 ? 0 : ends[i - 1]) ..< ends[i]]) }
    }

    /// The source position of element i, nil for a dummy.
    func sourcePosition(_ i: Int) -> Int? { positions[i] >= 0 ? positions[i] : nil }
}
