import CSodium
import Foundation

/// The key that puts identifiers into buckets in a bucketed set operation (Protocols/psi-buckets.md).
///
/// `K = BLAKE2b-256("mpcnode-bucket-key-v1" ‖ s₀ ‖ s₁ …)` over every party's random 32-byte share in
/// party order, so no party alone chooses it. The bucket of an identifier is BLAKE2b-64 keyed with `K`
/// of the identifier, modulo the bucket count: equal identifiers land in equal buckets at every party.
public struct BucketKey: Sendable, Equatable {
    public let bytes: [UInt8]

    public static let shareLength = 32

    public init(bytes: [UInt8]) throws {
        guard bytes.count == 32 else { throw CryptoError.invalidKey(reason: "a bucket key is 32 bytes, got \(bytes.count)") }
        self.bytes = bytes
    }

    /// The key from the parties' shares, in party order (each exactly 32 bytes).
    public init(shares: [[UInt8]]) throws {
        guard !shares.isEmpty, shares.allSatisfy({ $0.count == Self.shareLength }) else {
            throw CryptoError.invalidKey(reason: "bucket key shares are \(Self.shareLength) bytes each")
        }
        let input = Array("mpcnode-bucket-key-v1".utf8) + shares.flatMap { $0 }
        bytes = Self.blake2b(input, length: 32, key: nil)
    }

    /// A fresh random share.
    public static func randomShare() -> [UInt8] { randomBytes(shareLength) }

    /// The bucket of `identifier` among `count` buckets.
    public func bucket(of identifier: some Collection<UInt8>, count: Int) -> Int {
        precondition(count > 0)
        if count == 1 { return 0 }
        let digest = Self.blake2b(Array(identifier), length: 8, key: bytes)
        let word = digest.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        return Int(word % UInt64(count))
    }

    /// What a party sends to show it holds the same key when a job resumes (reveals nothing of the key).
    public var check: [UInt8] { Self.blake2b(Array("mpcnode-bucket-check-v1".utf8), length: 32, key: bytes) }

    /// Random bytes from libsodium's CSPRNG.
    public static func randomBytes(_ n: Int) -> [UInt8] {
        Sodium.ensureInitialized()
        var out = [UInt8](repeating: 0, count: n)
        randombytes_buf(&out, n)
        return out
    }

    /// BLAKE2b of `message` with an optional key (16–64 bytes).
    public static func blake2b(_ message: [UInt8], length: Int, key: [UInt8]?) -> [UInt8] {
        Sodium.ensureInitialized()
        var out = [UInt8](repeating: 0, count: length)
        if let key {
            crypto_generichash(&out, length, message, UInt64(message.count), key, key.count)
        } else {
            crypto_generichash(&out, length, message, UInt64(message.count), nil, 0)
        }
        return out
    }
}

/// How many buckets and how large (Protocols/psi-buckets.md "Count" and "Padding").
public enum BucketSizing {
    /// Identifiers a bucket is meant to hold.
    public static let targetBucketSize = 1 << 20

    /// `⌈max(n₀, n₁) / 2^20⌉`, at least 1: the count a party proposes for its own size.
    public static func proposedCount(setSize: Int) -> Int {
        max(1, (setSize + targetBucketSize - 1) / targetBucketSize)
    }

    /// Every bucket of a party with `setSize` identifiers is padded to this many elements:
    /// `⌈m + 6·√m⌉ + 16` for `m = setSize / buckets`, or exactly `setSize` with one bucket (its size is
    /// announced anyway). A bucket beyond it happens with probability below 10^-9.
    public static func capacity(setSize: Int, buckets: Int) -> Int {
        precondition(buckets > 0 && setSize >= 0)
        if buckets == 1 { return setSize }
        let m = Double(setSize) / Double(buckets)
        return Int((m + 6 * m.squareRoot()).rounded(.up)) + 16
    }
}
