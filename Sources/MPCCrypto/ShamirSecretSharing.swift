import COpenSSLCrypto

/// Shamir's t-of-n secret sharing over GF(p), p = 2⁵²¹ − 1 (a Mersenne prime), on OpenSSL BIGNUMs.
///
/// Property: any t shares determine the secret (Lagrange interpolation at 0); any t − 1 shares are
/// uniformly distributed and reveal nothing about it. Secrets are 32 bytes (keys and seeds), far below p.
/// Share x-coordinates are the parties' indices + 1 (never 0, which would be the secret itself).
///
/// ```swift
/// let shares = try ShamirSecretSharing.split(seed, threshold: 3, xs: [1, 2, 3, 4, 5])
/// let again = try ShamirSecretSharing.combine(Array(shares[1...3]), threshold: 3)  // == seed
/// ```
public enum ShamirSecretSharing {
    public struct Share: Sendable, Equatable {
        public var x: UInt32
        /// The share's value, 66 bytes big-endian.
        public var y: [UInt8]
        public init(x: UInt32, y: [UInt8]) { self.x = x; self.y = y }
    }

    static let valueBytes = 66
    static let secretBytes = 32

    private static func prime(_ ctx: OpaquePointer) -> OpaquePointer? {
        guard let p = BN_CTX_get(ctx) else { return nil }
        BN_set_word(p, 1)
        BN_lshift(p, p, 521)
        BN_sub_word(p, 1)
        return p
    }

    public static func split(_ secret: [UInt8], threshold: Int, xs: [UInt32]) throws -> [Share] {
        guard secret.count == secretBytes else { throw CryptoError.invalidScalar(reason: "secrets are \(secretBytes) bytes") }
        guard threshold >= 1, threshold <= xs.count else {
            throw CryptoError.cannotReconstruct(reason: "threshold \(threshold) with \(xs.count) shares")
        }
        guard !xs.contains(0), Set(xs).count == xs.count else { throw CryptoError.cannotReconstruct(reason: "x-coordinates must be distinct and non-zero") }
        guard let ctx = BN_CTX_new() else { throw CryptoError.cannotReconstruct(reason: "out of memory") }
        defer { BN_CTX_free(ctx) }
        BN_CTX_start(ctx)
        defer { BN_CTX_end(ctx) }
        guard let p = prime(ctx) else { throw CryptoError.cannotReconstruct(reason: "out of memory") }
        var coefficients: [OpaquePointer] = []
        for j in 0..<threshold {
            guard let a = BN_CTX_get(ctx) else { throw CryptoError.cannotReconstruct(reason: "out of memory") }
            if j == 0 {
                BN_bin2bn(secret, Int32(secret.count), a)
            } else {
                guard BN_rand_range(a, p) == 1 else { throw CryptoError.cannotReconstruct(reason: "random generator failed") }
            }
            coefficients.append(a)
        }
        guard let y = BN_CTX_get(ctx), let x = BN_CTX_get(ctx) else { throw CryptoError.cannotReconstruct(reason: "out of memory") }
        var shares: [Share] = []
        for xi in xs {
            // Horner: y = (…(a_{t−1}·x + a_{t−2})·x + …)·x + a_0 mod p
            BN_set_word(x, UInt(xi))
            BN_copy(y, coefficients[threshold - 1])
            for j in stride(from: threshold - 2, through: 0, by: -1) {
                BN_mod_mul(y, y, x, p, ctx)
                BN_mod_add(y, y, coefficients[j], p, ctx)
            }
            var out = [UInt8](repeating: 0, count: valueBytes)
            BN_bn2binpad(y, &out, Int32(valueBytes))
            shares.append(Share(x: xi, y: out))
        }
        for a in coefficients { BN_clear(a) }
        return shares
    }

    /// Reconstructs the secret from at least `threshold` shares (the first `threshold` are used).
    public static func combine(_ shares: [Share], threshold: Int) throws -> [UInt8] {
        guard threshold >= 1, shares.count >= threshold else {
            throw CryptoError.cannotReconstruct(reason: "\(shares.count) shares, \(threshold) needed")
        }
        let used = Array(shares.prefix(threshold))
        guard Set(used.map(\.x)).count == used.count, !used.contains(where: { $0.x == 0 }),
              used.allSatisfy({ $0.y.count == valueBytes }) else {
            throw CryptoError.cannotReconstruct(reason: "duplicate, zero or malformed shares")
        }
        guard let ctx = BN_CTX_new() else { throw CryptoError.cannotReconstruct(reason: "out of memory") }
        defer { BN_CTX_free(ctx) }
        BN_CTX_start(ctx)
        defer { BN_CTX_end(ctx) }
        guard let p = prime(ctx), let sum = BN_CTX_get(ctx), let numerator = BN_CTX_get(ctx), let denominator = BN_CTX_get(ctx),
              let term = BN_CTX_get(ctx), let xj = BN_CTX_get(ctx), let diff = BN_CTX_get(ctx), let yi = BN_CTX_get(ctx) else {
            throw CryptoError.cannotReconstruct(reason: "out of memory")
        }
        BN_zero_ex(sum)
        for (i, share) in used.enumerated() {
            // Lagrange basis at 0: Π_{j≠i} x_j / (x_j − x_i)
            BN_set_word(numerator, 1)
            BN_set_word(denominator, 1)
            for (j, other) in used.enumerated() where j != i {
                BN_set_word(xj, UInt(other.x))
                BN_mod_mul(numerator, numerator, xj, p, ctx)
                BN_set_word(diff, UInt(share.x))
                BN_mod_sub(diff, xj, diff, p, ctx)
                BN_mod_mul(denominator, denominator, diff, p, ctx)
            }
            guard BN_mod_inverse(denominator, denominator, p, ctx) != nil else {
                throw CryptoError.cannotReconstruct(reason: "non-invertible denominator")
            }
            BN_bin2bn(share.y, Int32(share.y.count), yi)
            guard BN_cmp(yi, p) < 0 else { throw CryptoError.cannotReconstruct(reason: "share value out of range") }
            BN_mod_mul(term, numerator, denominator, p, ctx)
            BN_mod_mul(term, term, yi, p, ctx)
            BN_mod_add(sum, sum, term, p, ctx)
        }
        guard (BN_num_bits(sum) + 7) / 8 <= Int32(secretBytes) else {
            throw CryptoError.cannotReconstruct(reason: "the shares do not belong to one 32-byte secret")
        }
        var out = [UInt8](repeating: 0, count: secretBytes)
        BN_bn2binpad(sum, &out, Int32(secretBytes))
        return out
    }
}
