import Foundation
import MPCCrypto

/// What a party of a bucketed PSI must keep to resume a job where it stopped (Protocols/psi-buckets.md
/// "Checkpoints and resume"): its secret seed (its blinding key and dummies derive from it), the agreed
/// bucket key and count, and for every completed bucket the digest of the peer's stream.
public struct BucketedPSIState: Sendable, Equatable {
    /// 32 secret bytes; the blinding key, the dummies and each bucket's order derive from them.
    public var seed: [UInt8]
    public var key: BucketKey
    public var bucketCount: Int
    /// The peer's announced set size (a resumed peer must announce the same).
    public var peerSetSize: Int
    /// Completed buckets → BLAKE2b-256 of the peer's blinded stream of that bucket.
    public var completed: [Int: [UInt8]]

    public init(seed: [UInt8], key: BucketKey, bucketCount: Int, peerSetSize: Int, completed: [Int: [UInt8]] = [:]) {
        self.seed = seed
        self.key = key
        self.bucketCount = bucketCount
        self.peerSetSize = peerSetSize
        self.completed = completed
    }

    /// The first bucket not completed (`bucketCount` when all are).
    public var firstIncomplete: Int { firstIncomplete(in: 0..<bucketCount) }

    /// The first bucket of `range` not completed (`range.upperBound` when all are).
    public func firstIncomplete(in range: Range<Int>) -> Int {
        var b = range.lowerBound
        while b < range.upperBound, completed[b] != nil { b += 1 }
        return b
    }
}

/// What a bucket gave this party, in positions of its own `IdentifierSource` order.
public enum BucketOutput: Sendable, Equatable {
    case none
    case cardinality(Int)
    /// Own positions in the intersection, ascending.
    case positions([Int])
}

/// Where a bucketed PSI keeps its state. The node keeps it in the job's scratch database with the
/// secrets sealed; tests keep it in memory.
public protocol BucketCheckpoints: Sendable {
    /// The state of an earlier attempt of this job, or nil for a fresh one.
    func load() async throws -> BucketedPSIState?
    /// Records the agreed state before the first bucket runs.
    func begin(_ state: BucketedPSIState) async throws
    /// Records a bucket's output and marks it completed, together (one transaction in the node).
    /// Called again for a redone bucket: it replaces the bucket's output.
    func complete(bucket: Int, output: BucketOutput, peerStreamDigest: [UInt8]) async throws
    /// KKRT (Protocols/psi-oprf.md): the digests of the receiver's stream (opening, then opening and
    /// columns) this party, as sender, released values for in `instance` of `bucket`, or nil.
    func release(bucket: Int, instance: Int) async throws -> [UInt8]?
    /// Records those digests durably before the first value of that instance leaves; never replaced.
    /// Returns the digests recorded, read back in the same transaction: another process's (a second
    /// worker of the same range) if it recorded first, which the caller must then refuse.
    func recordRelease(bucket: Int, instance: Int, digests: [UInt8]) async throws -> [UInt8]
}

/// Checkpoints in memory (tests, and jobs that need not survive a restart).
public final class InMemoryBucketCheckpoints: BucketCheckpoints, @unchecked Sendable {
    private let lock = NSLock()
    private var state: BucketedPSIState?
    private var outputs: [Int: BucketOutput] = [:]
    private var releases: [[Int]: [UInt8]] = [:]

    public init() {}

    public func release(bucket: Int, instance: Int) async throws -> [UInt8]? { lock.withLock { releases[[bucket, instance]] } }

    public func recordRelease(bucket: Int, instance: Int, digests: [UInt8]) async throws -> [UInt8] {
        lock.withLock {
            if releases[[bucket, instance]] == nil { releases[[bucket, instance]] = digests }
            return releases[[bucket, instance]]!
        }
    }

    public func load() async throws -> BucketedPSIState? { current }

    /// The state as recorded so far.
    public var current: BucketedPSIState? { lock.withLock { state } }

    public func begin(_ state: BucketedPSIState) async throws { lock.withLock { self.state = state; outputs = [:]; releases = [:] } }

    public func complete(bucket: Int, output: BucketOutput, peerStreamDigest: [UInt8]) async throws {
        lock.withLock {
            state?.completed[bucket] = peerStreamDigest
            outputs[bucket] = output
        }
    }

    /// Forgets one bucket's completion (a test's crash between the peer's completion and this party's).
    public func forget(bucket: Int) { lock.withLock { _ = state?.completed.removeValue(forKey: bucket); outputs[bucket] = nil } }

    /// Every completed bucket's positions, merged and sorted.
    public var positions: [Int] {
        lock.withLock {
            outputs.values.flatMap { if case .positions(let p) = $0 { return p } else { return [] } }.sorted()
        }
    }

    /// The sum of the buckets' cardinalities.
    public var cardinality: Int {
        lock.withLock { outputs.values.reduce(0) { if case .cardinality(let c) = $1 { return $0 + c } else { return $0 } } }
    }
}
