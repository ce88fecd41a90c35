import MPCCrypto

/// A set operation run in buckets (Protocols/multi-party-sets.md "Buckets"): what the job asks for and
/// what this node accepts.
public struct SetBucketing: Sendable, Equatable {
    /// The buckets the job names; nil: chosen from the announced set sizes (`SetBucketLayout.count`).
    public var requested: Int?
    /// The most buckets this node takes part in (its policy's `max_buckets`).
    public var maximum: Int

    /// - Parameter maximum: at least 1 (a node's policy allows 1…65536).
    public init(requested: Int?, maximum: Int) {
        self.requested = requested
        self.maximum = max(1, maximum)
    }
}

/// What every role of a bucketed set operation derives from the owners' announced set sizes: the bucket
/// count and each owner's bucket capacity (every bucket of owner i is padded to exactly `capacity[i]`
/// elements, so a bucket's size tells nothing beyond the set size the owner announced).
struct SetBucketLayout: Equatable {
    /// Identifiers a bucket of all owners together is meant to hold.
    static let targetElements = 1 << 20
    /// The most buckets any job may have (the two-party PSI's bound).
    static let maximumCount = 65_536

    let count: Int
    let sizes: [NodeID: Int]
    let capacities: [NodeID: Int]

    /// `⌈Σ sizes / 2^20⌉`, at least 1, unless the job names the count.
    static func count(requested: Int?, sizes: [Int]) -> Int {
        if let requested { return requested }
        let total = sizes.reduce(0, +)
        return max(1, (total + targetElements - 1) / targetElements)
    }

    /// - Throws: `parameterMismatch` naming `peer` when the count is beyond this node's maximum.
    init(bucketing: SetBucketing, owners: [NodeID], sizes: [NodeID: Int], me: NodeID) throws {
        let count = Self.count(requested: bucketing.requested, sizes: owners.map { sizes[$0] ?? 0 })
        guard (1...Self.maximumCount).contains(count) else {
            throw ProtocolError.parameterMismatch(peer: me, detail: "\(count) buckets (a set operation has 1…\(Self.maximumCount))")
        }
        guard count <= bucketing.maximum else {
            throw ProtocolError.parameterMismatch(peer: me, detail: "the set operation needs \(count) buckets; this node's policy allows at most \(bucketing.maximum) (max_buckets)")
        }
        self.count = count
        self.sizes = sizes
        var capacities: [NodeID: Int] = [:]
        for o in owners { capacities[o] = BucketSizing.capacity(setSize: sizes[o] ?? 0, buckets: count) }
        self.capacities = capacities
    }

    /// All owners' elements in one bucket.
    var elementsPerBucket: Int { capacities.values.reduce(0, +) }

    /// The dummies of the whole job: every owner's padding over every bucket. The aggregator counts the
    /// dummies it opens against this, so an owner that seals real pseudonyms in place of dummies (a set
    /// larger than it announced) is caught.
    var dummies: Int { capacities.keys.reduce(0) { $0 + count * capacities[$1]! - sizes[$1, default: 0] } }

    /// The session stream of `base` ("ring", "mix", "mixed") for bucket `b` in attempt `attempt`
    /// (Protocols/multi-party-sets.md "Resume": a resumed attempt's sessions never meet an earlier one's).
    static func stream(_ base: String, bucket: Int, attempt: Int = 0) -> String {
        attempt == 0 ? "\(base)-\(bucket)" : "\(base)-\(bucket)-r\(attempt)"
    }
    /// The session stream of `base` ("results", "ring-key", "mixer") in attempt `attempt`.
    static func stream(_ base: String, attempt: Int) -> String { attempt == 0 ? base : "\(base)-r\(attempt)" }
    static let keyRingStream = "ring-key"
    /// Data-less mixer → aggregator, each attempt: where the attempt starts, and the aggregator's final word.
    static let mixerStream = "mixer"

    /// What a dummy's box seals in place of a pseudonym: not a canonical encoding of an X25519 or a
    /// ristretto255 element (both below 2^255), so it never equals a pseudonym.
    static let dummyMarker = GroupElement(w0: .max, w1: .max, w2: .max, w3: .max)
}

/// An owner's bucket holds more identifiers than its capacity under this job's bucket key.
public struct SetBucketOverCapacity: Error, CustomStringConvertible {
    public let bucket: Int, size: Int, capacity: Int
    public var description: String {
        "bucket \(bucket) holds \(size) of this node's identifiers, over its capacity of \(capacity) (an event below 10^-9 under a random key): submit the job again, which draws a new key"
    }
}
