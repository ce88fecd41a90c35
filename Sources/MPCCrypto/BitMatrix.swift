import COTExtension
import CSodium

/// Bit matrices of OT extension (Protocols/psi-oprf.md): columns expanded from 32-byte keys with
/// ChaCha20, and transposed between columns and rows. A matrix is `rows` rows of `cols` bits stored
/// row after row, least significant bit first (`COTExtension`).
public enum BitMatrix {
    /// The transpose of `rows` × `cols` bits (both multiples of 8).
    public static func transpose(_ matrix: [UInt8], rows: Int, cols: Int) -> [UInt8] {
        precondition(rows % 8 == 0 && cols % 8 == 0 && matrix.count == rows * cols / 8)
        return [UInt8](unsafeUninitializedCapacity: matrix.count) { out, count in
            matrix.withUnsafeBufferPointer { mpc_bitmatrix_transpose(out.baseAddress!, $0.baseAddress!, rows, cols) }
            count = matrix.count
        }
    }

    /// XORs bytes [firstByte, firstByte + buffer.count) of the ChaCha20 stream keyed with `key` (IETF,
    /// zero nonce) into `buffer`; `firstByte` is a multiple of 64 (one ChaCha20 block).
    public static func xorStream(key: UnsafeRawBufferPointer, firstByte: Int, into buffer: UnsafeMutableRawBufferPointer) {
        precondition(key.count == 32 && firstByte % 64 == 0)
        Sodium.ensureInitialized()
        let nonce = [UInt8](repeating: 0, count: Int(crypto_stream_chacha20_ietf_NONCEBYTES))
        let out = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self)
        _ = crypto_stream_chacha20_ietf_xor_ic(out, out, UInt64(buffer.count), nonce, UInt32(firstByte / 64),
                                               key.baseAddress!.assumingMemoryBound(to: UInt8.self))
    }

    /// out = a ⊕ (b ∧ mask), the mask repeated every `mask.count` bytes.
    public static func xorAnd(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, mask: UnsafeRawBufferPointer,
                              into out: UnsafeMutableRawPointer, length: Int) {
        precondition(mask.count > 0 && length % mask.count == 0)
        mpc_xor_and_mask(out.assumingMemoryBound(to: UInt8.self), a.assumingMemoryBound(to: UInt8.self),
                         b.assumingMemoryBound(to: UInt8.self), mask.baseAddress!.assumingMemoryBound(to: UInt8.self),
                         mask.count, length)
    }
}
