import MPCCrypto

/// A party's input set for a set protocol: distinct identifiers in a fixed order that is random to
/// everyone but the party (so the order messages are sent in reveals nothing).
///
/// The order must be the same on every call, so that a protocol can refer to "the element at
/// position i" and the caller can later turn positions back into identifiers without the protocol
/// keeping identifiers in memory. `SQLiteIdentifierSource` (in MPCNode) streams from a job's
/// snapshot of a dataset; `ArrayIdentifierSource` serves tests.
public protocol IdentifierSource: Sendable {
    /// The number of distinct identifiers.
    var count: Int { get }
    /// The identifiers at positions `range` (clamped to `0..<count`), in order.
    func identifiers(in range: Range<Int>) async throws -> [[UInt8]]
}

/// An in-memory `IdentifierSource`: duplicates removed, then shuffled with the CSPRNG.
public struct ArrayIdentifierSource: IdentifierSource {
    public let values: [[UInt8]]
    /// The bucket key of the last `assignBuckets` (bucketed PSI in tests).
    let bucketing = BucketAssignment()

    public init(_ identifiers: [String]) {
        var seen = Set<String>()
        var distinct: [[UInt8]] = []
        for id in identifiers where seen.insert(id).inserted { distinct.append(Array(id.utf8)) }
        SecureShuffle.shuffle(&distinct)
        values = distinct
    }

    public var count: Int { values.count }

    public func identifiers(in range: Range<Int>) async throws -> [[UInt8]] {
        Array(values[range.clamped(to: 0..<values.count)])
    }
}

