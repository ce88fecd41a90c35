import CSodium

/// A keyed pseudorandom function (BLAKE2b-128 with a fresh 32-byte key) used to put a party's own
/// identifiers into an order that is random to everyone else yet reproducible by the party itself.
///
/// Sorting rows by `KeyedOrder.value(of:)` is a uniformly random permutation to anyone without the
/// key, and the same permutation every time the party reads its rows again with the same key. That
/// lets a party stream its set out of SQLite in shuffled order (`ORDER BY` the PRF) and later map
/// positions in that order back to its own rows without holding them in memory.
public struct KeyedOrder: Sendable {
    private let key: [UInt8]

    public static func random() -> KeyedOrder {
        Sodium.ensureInitialized()
        var key = [UInt8](repeating: 0, count: 32)
        randombytes_buf(&key, 32)
        return KeyedOrder(key: key)
    }

    public init(key: [UInt8]) {
        precondition(key.count == 32, "KeyedOrder needs a 32-byte key")
        self.key = key
    }

    /// 64 bits of a faster PRF (SipHash-2-4 keyed with the first 16 bytes of the key): what a snapshot
    /// sorts its rows by. Two of a million identifiers tie with probability about 2^-25; a tie only keeps
    /// the two in the order SQLite read them.
    public func word(of bytes: UnsafeRawBufferPointer) -> Int64 {
        var out: UInt64 = 0
        key.withUnsafeBufferPointer { k in
            withUnsafeMutableBytes(of: &out) { o in
                _ = crypto_shorthash(o.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                     bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(bytes.count), k.baseAddress!)
            }
        }
        return Int64(bitPattern: out)
    }

    /// 16 bytes of PRF output, as two words compared lexicographically (`hi` first).
    public func value(of bytes: some Collection<UInt8>) -> (hi: UInt64, lo: UInt64) {
        var out = [UInt8](repeating: 0, count: 16)
        let message = Array(bytes)
        crypto_generichash(&out, 16, message, UInt64(message.count), key, 32)
        return out.withUnsafeBytes {
            (UInt64(bigEndian: $0.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
             UInt64(bigEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
        }
    }
}

/// Uniform random permutations from libsodium's CSPRNG.
public enum SecureShuffle {
    /// Fisher–Yates with `randombytes_uniform` (unbiased).
    public static func shuffle<T>(_ array: inout [T]) {
        Sodium.ensureInitialized()
        guard array.count > 1 else { return }
        var i = array.count - 1
        while i > 0 {
            let j = Int(randombytes_uniform(UInt32(i + 1)))
            array.swapAt(i, j)
            i -= 1
        }
    }
}
