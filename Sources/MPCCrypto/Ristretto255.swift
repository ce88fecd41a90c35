import CSodium

/// ristretto255 (RFC 9496) operations from libsodium.
public enum Ristretto255 {
    /// Encoding of the generator B (RFC 9496, A.1).
    public static let generatorHex = "e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76"
    /// The identity element (its canonical encoding is 32 zero bytes); valid in `add` and `subtract`,
    /// never the result of `multiply`.
    public static let identity = GroupElement(w0: 0, w1: 0, w2: 0, w3: 0)

    /// The RFC 9496 one-way map from 64 uniform bytes to an element ("hash to group").
    public static func fromUniformBytes(_ bytes: [UInt8]) throws -> GroupElement {
        Sodium.ensureInitialized()
        guard bytes.count == 64 else {
            throw CryptoError.invalidGroupElement(reason: "the one-way map takes 64 bytes, got \(bytes.count)")
        }
        var out = [UInt8](repeating: 0, count: 32)
        crypto_core_ristretto255_from_hash(&out, bytes)
        return out.withUnsafeBytes { GroupElement(loadingFrom: $0.baseAddress!) }
    }

    /// Whether `element` is the canonical encoding of a group element.
    public static func isValid(_ element: GroupElement) -> Bool {
        Sodium.ensureInitialized()
        var raw = element
        return withUnsafeBytes(of: &raw) { crypto_core_ristretto255_is_valid_point($0.baseAddress!.assumingMemoryBound(to: UInt8.self)) == 1 }
    }

    /// `scalar · element`; throws if `element` is not a valid encoding or the result is the identity.
    public static func multiply(_ element: GroupElement, by scalar: SecretScalar) throws -> GroupElement {
        var p = element, n = scalar.bytes, q = GroupElement(w0: 0, w1: 0, w2: 0, w3: 0)
        let rc = withUnsafeBytes(of: &p) { pp in
            withUnsafeBytes(of: &n) { np in
                withUnsafeMutableBytes(of: &q) { qp in
                    crypto_scalarmult_ristretto255(
                        qp.baseAddress!.assumingMemoryBound(to: UInt8.self),
                        np.baseAddress!.assumingMemoryBound(to: UInt8.self),
                        pp.baseAddress!.assumingMemoryBound(to: UInt8.self))
                }
            }
        }
        guard rc == 0 else {
            // libsodium returns -1 both for an invalid encoding and for an identity result.
            if !isValid(element) { throw CryptoError.invalidGroupElement(reason: "not a canonical ristretto255 encoding") }
            throw CryptoError.identityResult
        }
        return q
    }

    /// `scalar · B` for the generator B.
    public static func multiplyGenerator(by scalar: SecretScalar) throws -> GroupElement {
        var n = scalar.bytes, q = GroupElement(w0: 0, w1: 0, w2: 0, w3: 0)
        let rc = withUnsafeBytes(of: &n) { np in
            withUnsafeMutableBytes(of: &q) { qp in
                crypto_scalarmult_ristretto255_base(
                    qp.baseAddress!.assumingMemoryBound(to: UInt8.self),
                    np.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
        guard rc == 0 else { throw CryptoError.identityResult }
        return q
    }

    /// `a + b`; throws if either is not a valid encoding.
    public static func add(_ a: GroupElement, _ b: GroupElement) throws -> GroupElement {
        try combine(a, b, crypto_core_ristretto255_add)
    }

    /// `a − b`; throws if either is not a valid encoding.
    public static func subtract(_ a: GroupElement, _ b: GroupElement) throws -> GroupElement {
        try combine(a, b, crypto_core_ristretto255_sub)
    }

    /// A uniformly random element (the one-way map of 64 random bytes).
    public static func random() -> GroupElement {
        Sodium.ensureInitialized()
        var bytes = [UInt8](repeating: 0, count: 64)
        randombytes_buf(&bytes, 64)
        return try! fromUniformBytes(bytes)
    }

    private static func combine(_ a: GroupElement, _ b: GroupElement,
                                _ operation: (UnsafeMutablePointer<UInt8>, UnsafePointer<UInt8>, UnsafePointer<UInt8>) -> Int32) throws -> GroupElement {
        Sodium.ensureInitialized()
        var p = a, q = b, r = GroupElement(w0: 0, w1: 0, w2: 0, w3: 0)
        let rc = withUnsafeBytes(of: &p) { pp in
            withUnsafeBytes(of: &q) { qp in
                withUnsafeMutableBytes(of: &r) { rp in
                    operation(rp.baseAddress!.assumingMemoryBound(to: UInt8.self),
                              pp.baseAddress!.assumingMemoryBound(to: UInt8.self),
                              qp.baseAddress!.assumingMemoryBound(to: UInt8.self))
                }
            }
        }
        guard rc == 0 else { throw CryptoError.invalidGroupElement(reason: "not a canonical ristretto255 encoding") }
        return r
    }
}
