import Foundation
import MPCCrypto

/// One identifier of a bucket and its position in the party's `IdentifierSource` order.
public struct BucketMember: Sendable, Equatable {
    public var position: Int
    public var identifier: [UInt8]

    public init(position: Int, identifier: [UInt8]) {
        self.position = position
        self.identifier = identifier
    }
}

/// A party's input for a bucketed set operation (Protocols/psi-buckets.md): an `IdentifierSource`
/// that can also put its identifiers into buckets under a job's bucket key and hand out one bucket at
/// a time, so a party holds one bucket in memory, never the whole set.
public protocol BucketedIdentifierSource: IdentifierSource {
    /// Puts every identifier into its bucket under `key` (replacing an earlier assignment) and returns
    /// the size of each of the `count` buckets.
    func assignBuckets(key: BucketKey, count: Int) async throws -> [Int]
    /// The identifiers of `bucket`, with their positions (after `assignBuckets`).
    func members(ofBucket bucket: Int) async throws -> [BucketMember]
}

extension ArrayIdentifierSource: BucketedIdentifierSource {
    public func assignBuckets(key: BucketKey, count: Int) async throws -> [Int] {
        var sizes = [Int](repeating: 0, count: count)
        for v in values { sizes[key.bucket(of: v, count: count)] += 1 }
        bucketing.set(key: key, count: count)
        return sizes
    }

    public func members(ofBucket bucket: Int) async throws -> [BucketMember] {
        guard let (key, count) = bucketing.get() else { preconditionFailure("buckets read before they were assigned") }
        var out: [BucketMember] = []
        for (i, v) in values.enumerated() where key.bucket(of: v, count: count) == bucket {
            out.append(BucketMember(position: i, identifier: v))
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
