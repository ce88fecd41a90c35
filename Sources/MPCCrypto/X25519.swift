import CSodium

/// X25519 (RFC 7748) on Curve25519 u-coordinates, and Elligator 2 hashing onto the curve.
public enum X25519 {
    /// `X25519(scalar, u)`: the u-coordinate of `clamp(scalar) · P` for the point P with u-coordinate `u`.
    /// Clamping makes the map commute: `X25519(a, X25519(b, u)) == X25519(b, X25519(a, u))`.
    /// Throws if the result is all zeros (a small-order input, which a hashed point never is).
    public static func multiply(_ element: GroupElement, by scalar: SecretScalar) throws -> GroupElement {
        Sodium.ensureInitialized()
        var p = element, n = scalar.bytes, q = GroupElement(w0: 0, w1: 0, w2: 0, w3: 0)
        let rc = withUnsafeBytes(of: &p) { pp in
            withUnsafeBytes(of: &n) { np in
                withUnsafeMutableBytes(of: &q) { qp in
                    crypto_scalarmult(
                        qp.baseAddress!.assumingMemoryBound(to: UInt8.self),
                        np.baseAddress!.assumingMemoryBound(to: UInt8.self),
                        pp.baseAddress!.assumingMemoryBound(to: UInt8.self))
                }
            }
        }
        guard rc == 0 else { throw CryptoError.identityResult }
        return q
    }

    /// Maps 32 uniform bytes onto the prime-order subgroup of Curve25519: Elligator 2 onto
    /// edwards25519 with the cofactor cleared (libsodium's `crypto_core_ed25519_from_uniform`), then
    /// the birational map to the Montgomery u-coordinate (`MontgomeryMap`).
    public static func fromUniformBytes(_ bytes: [UInt8]) throws -> GroupElement {
        Sodium.ensureInitialized()
        guard bytes.count == 32 else {
            throw CryptoError.invalidGroupElement(reason: "Elligator 2 takes 32 bytes, got \(bytes.count)")
        }
        var edwards = [UInt8](repeating: 0, count: 32)
        guard crypto_core_ed25519_from_uniform(&edwards, bytes) == 0 else {
            throw CryptoError.invalidGroupElement(reason: "Elligator 2 failed")
        }
        guard let montgomery = MontgomeryMap.montgomeryU(fromEdwards: edwards) else {
            throw CryptoError.invalidGroupElement(reason: "hashed point has no Montgomery form")
        }
        return montgomery.withUnsafeBytes { GroupElement(loadingFrom: $0.baseAddress!) }
    }

    /// libsodium's conversion of an edwards25519 point to its u-coordinate (with its subgroup check).
    /// The reference `MontgomeryMap` is tested against.
    static func libsodiumMontgomeryU(fromEdwards edwards: [UInt8]) -> [UInt8]? {
        var montgomery = [UInt8](repeating: 0, count: 32)
        guard crypto_sign_ed25519_pk_to_curve25519(&montgomery, edwards) == 0 else { return nil }
        return montgomery
    }
}
