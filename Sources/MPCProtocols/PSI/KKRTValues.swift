import CSodium
import MPCCrypto

/// The OPRF values of a KKRT instance (Protocols/psi-oprf.md steps 3–4): BLAKE2b of a row of the
/// OT-extension matrix (64 bytes) and the hash function's number, truncated to ℓ bytes.
enum KKRTValues {
    /// Writes the value of `row` (64 bytes) of `bin` under hash function `t` to `out` (ℓ ≤ 16 bytes):
    /// BLAKE2b-128 of 0x4B ‖ t ‖ bin (4 bytes, little-endian) ‖ row, truncated.
    @inline(__always)
    static func value(t: Int, bin: Int, row: UnsafeRawPointer, length: Int, into out: UnsafeMutableRawPointer) {
        var message = (UInt64(0x4B) | UInt64(t) << 8 | UInt64(UInt32(truncatingIfNeeded: bin)) << 16, 0 as UInt64, 0 as UInt64,
                       0 as UInt64, 0 as UInt64, 0 as UInt64, 0 as UInt64, 0 as UInt64, 0 as UInt64)
        var digest = (UInt64(0), UInt64(0))
        withUnsafeMutableBytes(of: &message) { m in
            m.baseAddress!.advanced(by: 6).copyMemory(from: row, byteCount: PseudorandomCode.bytes)
            withUnsafeMutableBytes(of: &digest) { d in
                crypto_generichash(d.baseAddress!.assumingMemoryBound(to: UInt8.self), 16,
                                   m.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt64(6 + PseudorandomCode.bytes), nil, 0)
                out.copyMemory(from: d.baseAddress!, byteCount: length)
            }
        }
    }
}
