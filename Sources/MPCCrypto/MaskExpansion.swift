import CSodium

/// Expands a 32-byte seed into a mask of UInt64 values with the ChaCha20 keystream, and adds or
/// subtracts it in place (arithmetic in Z_{2^64}).
///
/// Both holders of a seed get the same mask; without the seed it is indistinguishable from random.
/// A seed must serve one job only (the nonce is fixed).
public enum MaskExpansion {
    static let nonce = [UInt8](repeating: 0, count: 8)
    /// Keystream is produced in blocks of this many values (bounded memory for long vectors).
    static let blockValues = 1 << 16

    public static func apply(seed: [UInt8], to vector: inout [UInt64], subtract: Bool = false) {
        precondition(seed.count == 32, "mask seeds are 32 bytes")
        Sodium.ensureInitialized()
        let n = vector.count
        guard n > 0 else { return }
        var keystream = [UInt64](repeating: 0, count: min(n, blockValues))
        let zeros = [UInt8](repeating: 0, count: min(n, blockValues) * 8)
        var offset = 0
        while offset < n {
            let count = min(blockValues, n - offset)
            keystream.withUnsafeMutableBytes { raw in
                // ChaCha20 with an initial block counter, so each block continues the same keystream.
                _ = crypto_stream_chacha20_xor_ic(raw.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                                  zeros, UInt64(count * 8),
                                                  nonce, UInt64(offset * 8 / 64), seed)
            }
            vector.withUnsafeMutableBufferPointer { v in
                if subtract {
                    for i in 0..<count { v[offset + i] &-= UInt64(littleEndian: keystream[i]) }
                } else {
                    for i in 0..<count { v[offset + i] &+= UInt64(littleEndian: keystream[i]) }
                }
            }
            offset += count
        }
    }

    /// The mask itself (tests and benchmarks).
    public static func expand(seed: [UInt8], count: Int) -> [UInt64] {
        var v = [UInt64](repeating: 0, count: count)
        apply(seed: seed, to: &v)
        return v
    }

    /// 32 random bytes from the CSPRNG.
    public static func randomSeed() -> [UInt8] {
        Sodium.ensureInitialized()
        var s = [UInt8](repeating: 0, count: 32)
        randombytes_buf(&s, 32)
        return s
    }
}
