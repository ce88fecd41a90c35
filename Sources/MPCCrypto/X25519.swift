import CSodium

/// X25519 (RFC 7748) on Curve25519 u-coordinates (hashing onto the curve: `Curve25519HashToCurve`).
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
}
