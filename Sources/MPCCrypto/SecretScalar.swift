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
