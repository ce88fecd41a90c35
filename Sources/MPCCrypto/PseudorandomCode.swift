import CSodium
import Foundation

/// KKRT16's pseudorandom code (Protocols/psi-oprf.md): C(x) = BLAKE2b-512(K_code ‖ x), 512 bits, with
/// K_code = BLAKE2b-256("mpcnode-kkrt-code-v1" ‖ job id). Both parties compute the same code words; the
/// first three 64-bit words of a code word also place its identifier in the cuckoo table (`CuckooHash`).
public struct PseudorandomCode: Sendable {
    /// Bits and bytes of a code word (KKRT's k; at least 424 for 2^-40 at these sizes).
    public static let bits = 512
    public static let bytes = 64

    private let key: [UInt8]

    public init(jobID: String) {
        key = BucketKey.blake2b(Array("mpcnode-kkrt-code-v1".utf8) + Array(jobID.utf8), length: 32, key: nil)
    }

    /// The code words of `identifiers`, 64 bytes each, laid end to end (computed on every core).
    public func codewords(_ identifiers: [[UInt8]]) -> [UInt8] {
        Sodium.ensureInitialized()
        let n = identifiers.count
        guard n > 0 else { return [] }
        var out = [UInt8](repeating: 0, count: n * Self.bytes)
        let key = self.key
        out.withUnsafeMutableBytes { raw in
            let base = SendableAddress(raw.baseAddress!)
            ParallelMap.forEachSlice(count: n) { range in
                var message = [UInt8](repeating: 0, count: 32 + 128)
                message.replaceSubrange(0..<32, with: key)
                for i in range {
                    let id = identifiers[i]
                    message.removeSubrange(32...)
                    message.append(contentsOf: id)
                    crypto_generichash(base.pointer.advanced(by: i * Self.bytes).assumingMemoryBound(to: UInt8.self),
                                       Self.bytes, message, UInt64(message.count), nil, 0)
                }
            }
        }
        return out
    }
}


/// The three cuckoo hash functions of an attempt (Protocols/psi-oprf.md): h_t(x) from word t of C(x),
/// mixed (SplitMix64's finaliser) with a public per-attempt constant and mapped into [0, bins).
public struct CuckooHash: Sendable {
    public let bins: Int
    private let keys: (UInt64, UInt64, UInt64)

    public init(bins: Int, attempt: Int) {
        precondition(bins > 0)
        self.bins = bins
        let base = 0x6d70_636e_6b6b_7274 &+ UInt64(attempt) &* 0x9E37_79B9_7F4A_7C15
        keys = (Self.mix(base &+ 1), Self.mix(base &+ 2), Self.mix(base &+ 3))
    }

    /// h_t of the code word at `codeword` (64 bytes), t in 0..<3.
    @inline(__always)
    public func bin(_ t: Int, codeword: UnsafeRawPointer) -> Int {
        let word = codeword.loadUnaligned(fromByteOffset: 8 * t, as: UInt64.self)
        let key = t == 0 ? keys.0 : (t == 1 ? keys.1 : keys.2)
        return Int(Self.mix(word ^ key).multipliedFullWidth(by: UInt64(bins)).high)
    }

    @inline(__always)
    static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
