import Foundation
import MPCCrypto

/// The fixed parameters of the KKRT PSI (Protocols/psi-oprf.md "Parameters").
enum KKRTParameters {
    /// Base OTs, one per bit of a code word.
    static let baseOTs = PseudorandomCode.bits
    /// Bins a `KkrtColumns` message carries (512 columns × 256 bytes = 128 KiB).
    static let chunkBins = 2048
    /// Cuckoo attempts before the instance fails (each fails with probability ≈ 2^-40).
    static let maximumAttempts = 8
    static let maximumEvictions = 2000
    /// Values in one `KkrtValues` message (3 an element).
    static let valuesPerMessage = 3 * 8192

    /// The cuckoo table's bins for `m` receiver elements: ⌈1.27·m⌉ + 512, rounded up to a multiple of 512.
    static func bins(receiverElements m: Int) -> Int {
        let raw = Int((1.27 * Double(m)).rounded(.up)) + 512
        return (raw + 511) / 512 * 512
    }

    /// ℓ = min(16, ⌈(40 + ⌈log₂ m_R⌉ + ⌈log₂ 3m_S⌉) / 8⌉) bytes: no false match in the bucket but with
    /// probability ≤ 2^-40.
    static func valueLength(receiverElements mR: Int, senderElements mS: Int) -> Int {
        func log2Up(_ x: Int) -> Int { x <= 1 ? 0 : Int.bitWidth - (x - 1).leadingZeroBitCount }
        return min(16, (40 + log2Up(mR) + log2Up(3 * mS) + 7) / 8)
    }
}
