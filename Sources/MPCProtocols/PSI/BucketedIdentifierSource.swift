import Foundation
import MPCCrypto

/// The identifiers of one bucket with their positions in the party's `IdentifierSource` order, held
/// flat (one byte buffer, offsets, positions): a bucket is about a million identifiers.
public struct BucketMembers: Sendable {
    public private(set) var bytes: [UInt8] = []
    /// Identifier i is `bytes[ends[i-1] ..< ends[i]]`.
    public private(set) var ends: [Int] = []
    public private(set) var positions: [Int] = []

    public init(expected: Int = 0) {
        ends.reserveCapacity(expected)
        positions.reserveCapacity(expected)
        bytes.reserveCapacity(expected * 16)
    }

    public var count: Int { ends.count }

    public mutating func append(position: Int, identifier: some Collection<UInt8>) {
        bytes.append(contentsOf: identifier)
        ends.append(bytes.count)
        positions.append(position)
    }

    public func identifier(_ i: Int) -> ArraySlice<UInt8> { bytes[(i == 0 ? 0 : ends[i - 1]) ..< ends[i]] }
}

/// A party's input for a bucketed set operation (Protocols/psi-buckets.md): an `IdentifierSource`
/// that can also put its identifiers into buckets under a job's bucket key and hand out one bucket at
/// a time, so a party holds one bucket in memory, never the whole set.
public protocol BucketedIdentifierSource: IdentifierSource {
    /// Puts every identifier into its bucket under `key` (replacing an earlier assignment) and returns
    /// the size of each of the `count` buckets.
    func assignBuckets(key: BucketKey, count: Int) async throws -> [Int]
    /// The identifiers of `bucket`, with their positions (after `assignBuckets`).
    func members(ofBucket bucket: Int) async throws -> BucketMembers
}

extension ArrayIdentifierSource: BucketedIdentifierSource {
    public func assignBuckets(key: BucketKey, count: Int) async throws -> [Int] {
        var sizes = [Int](repeating: 0, count: count)
        for v in values { sizes[key.bucket(of: v, count: count)] += 1 }
        bucketing.set(key: key, count: count)
        return sizes
    }

    public func members(ofBucket bucket: Int) async throws -> BucketMembers {
        guard let (key, count) = bucketing.get() else { preconditionFailure("buckets read before they were assigned") }
        var out = BucketMembers()
        for (i, v) in values.enumerated() where key.bucket(of: v, count: count) == bucket {
            out.append(position: i, identifier: v)
        }
        return out
    }
}

/// The bucket key an in-memory source was last bucketed with.
final class BucketAssignment: @unchecked Sendable {
    private let lock = NSLock()
    private var current: (BucketKey, Int)?

    init() {}

    func set(key: BucketKey, count: Int) { lock.withLock { current = (key, count) } }
    func get() -> (BucketKey, Int)? { lock.withLock { current } }
}
