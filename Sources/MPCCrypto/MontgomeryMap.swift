import COpenSSLCrypto

/// The birational map from edwards25519 to Curve25519: u = (1 + y) / (1 − y) mod p, p = 2²⁵⁵ − 19.
///
/// libsodium's `crypto_sign_ed25519_pk_to_curve25519` computes the same map but first re-checks that
/// the point is in the prime-order subgroup with a full scalar multiplication, which doubles the cost
/// of hashing to X25519; points from `crypto_core_ed25519_from_uniform` have the cofactor cleared
/// already, so the check is redundant here. The arithmetic is OpenSSL's (libcrypto BIGNUM) on public
/// values (hashes of identifiers), so constant time does not matter. Tests compare it with libsodium's
/// map on random points.
enum MontgomeryMap {
    /// The field prime 2²⁵⁵ − 19, little-endian.
    private static let primeLittleEndian: [UInt8] = [0xed] + [UInt8](repeating: 0xff, count: 30) + [0x7f]

    /// Maps an encoded edwards25519 point (y with the sign of x in the top bit) to its u-coordinate.
    /// Returns nil for y = 1 (the identity), which has no image.
    static func montgomeryU(fromEdwards encoded: [UInt8]) -> [UInt8]? {
        precondition(encoded.count == 32)
        var yBytes = encoded
        yBytes[31] &= 0x7f
        guard let ctx = BN_CTX_new() else { return nil }
        defer { BN_CTX_free(ctx) }
        BN_CTX_start(ctx)
        defer { BN_CTX_end(ctx) }
        guard let p = BN_CTX_get(ctx), let y = BN_CTX_get(ctx), let one = BN_CTX_get(ctx),
              let numerator = BN_CTX_get(ctx), let denominator = BN_CTX_get(ctx), let u = BN_CTX_get(ctx) else { return nil }
        BN_lebin2bn(primeLittleEndian, 32, p)
        BN_lebin2bn(yBytes, 32, y)
        BN_set_word(one, 1)
        guard BN_mod_add(numerator, one, y, p, ctx) == 1, BN_mod_sub(denominator, one, y, p, ctx) == 1,
              BN_is_zero(denominator) == 0,
              BN_mod_inverse(denominator, denominator, p, ctx) != nil,
              BN_mod_mul(u, numerator, denominator, p, ctx) == 1 else { return nil }
        var out = [UInt8](repeating: 0, count: 32)
        guard BN_bn2lebinpad(u, &out, 32) == 32 else { return nil }
        return out
    }
}
