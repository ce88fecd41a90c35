import CSodium

/// A secret scalar of a blinding group. Its bytes never leave the process and are not printed.
public struct SecretScalar: Sendable, CustomStringConvertible {
    let bytes: GroupElement  // 32 bytes, little-endian

    /// A uniformly random scalar: in [1, ℓ) for ristretto255, or 32 random bytes for X25519
    /// (clamped by X25519 itself).
    public static func random(for group: BlindingGroup) -> SecretScalar {
        Sodium.ensureInitialized()
        var raw = [UInt8](repeating: 0, count: 32)
        switch group {
        case .ristretto255:
            repeat {
                crypto_core_ristretto255_scalar_random(&raw)
            } while raw.allSatisfy { $0 == 0 }
        case .x25519:
            randombytes_buf(&raw, 32)
        }
        return SecretScalar(bytes: raw.withUnsafeBytes { GroupElement(loadingFrom: $0.baseAddress!) })
    }

    /// A scalar derived from a 32-byte secret seed and a label (a job's key that must survive a restart:
    /// only the seed is kept, sealed). Uniform as `random` is when the seed is: ristretto255 reduces
    /// 64 bytes of BLAKE2b modulo ℓ; X25519 takes 32 bytes (clamped by X25519 itself).
    public static func derived(for group: BlindingGroup, seed: [UInt8], label: String) throws -> SecretScalar {
        guard seed.count == 32 else { throw CryptoError.invalidKey(reason: "a scalar seed is 32 bytes, got \(seed.count)") }
        let message = Array(label.utf8)
        switch group {
        case .ristretto255:
            let wide = BucketKey.blake2b(message, length: 64, key: seed)
            var raw = [UInt8](repeating: 0, count: 32)
            crypto_core_ristretto255_scalar_reduce(&raw, wide)
            guard !raw.allSatisfy({ $0 == 0 }) else { throw CryptoError.invalidScalar(reason: "the derived scalar is zero") }
            return SecretScalar(bytes: raw.withUnsafeBytes { GroupElement(loadingFrom: $0.baseAddress!) })
        case .x25519:
            let raw = BucketKey.blake2b(message, length: 32, key: seed)
            return SecretScalar(bytes: raw.withUnsafeBytes { GroupElement(loadingFrom: $0.baseAddress!) })
        }
    }

    /// A scalar from its 32-byte little-endian encoding (tests and known-answer vectors).
    public init(littleEndianBytes: [UInt8]) throws {
        guard littleEndianBytes.count == 32 else {
            throw CryptoError.invalidScalar(reason: "expected 32 bytes, got \(littleEndianBytes.count)")
        }
        bytes = littleEndianBytes.withUnsafeBytes { GroupElement(loadingFrom: $0.baseAddress!) }
    }

    init(bytes: GroupElement) { self.bytes = bytes }

    public var description: String { "SecretScalar(<redacted>)" }
}
