import COpenSSLCrypto

/// An arbitrary-precision non-negative integer: an owned OpenSSL `BIGNUM`, cleared when released.
/// Used by Paillier; values are immutable once built (operations return new numbers).
public final class BigNumber: @unchecked Sendable, Equatable, CustomStringConvertible {
    let bn: OpaquePointer

    init() {
        bn = BN_secure_new() ?? BN_new()!
    }

    public convenience init(_ value: UInt64) {
        self.init()
        BN_set_word(bn, UInt(value))
    }

    /// From big-endian bytes.
    public convenience init(bigEndian bytes: [UInt8]) {
        self.init()
        BN_bin2bn(bytes, Int32(bytes.count), bn)
    }

    deinit { BN_clear_free(bn) }

    /// Big-endian bytes, left-padded with zeros to `length` (which must be large enough).
    public func bigEndianBytes(length: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: length)
        _ = BN_bn2binpad(bn, &out, Int32(length))
        return out
    }

    public var bitCount: Int { Int(BN_num_bits(bn)) }
    public var isZero: Bool { BN_is_zero(bn) == 1 }

    public static func == (a: BigNumber, b: BigNumber) -> Bool { BN_cmp(a.bn, b.bn) == 0 }
    static func < (a: BigNumber, b: BigNumber) -> Bool { BN_cmp(a.bn, b.bn) < 0 }

    public var description: String {
        guard let s = BN_bn2dec(bn) else { return "?" }
        defer { CRYPTO_free(s, #fileID, #line) }
        return String(cString: s)
    }

    /// The value as a UInt64 if it fits.
    var uint64: UInt64? {
        guard bitCount <= 64 else { return nil }
        var out = [UInt8](repeating: 0, count: 8)
        _ = BN_bn2binpad(bn, &out, 8)
        return out.reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// A uniformly random number in [0, bound).
    static func random(below bound: BigNumber) -> BigNumber {
        let r = BigNumber()
        precondition(BN_rand_range(r.bn, bound.bn) == 1, "the CSPRNG failed")
        return r
    }

    /// A random number of exactly `bits` bits.
    static func random(bits: Int) -> BigNumber {
        let r = BigNumber()
        precondition(BN_rand(r.bn, Int32(bits), BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) == 1, "the CSPRNG failed")
        return r
    }

    /// A random prime of `bits` bits; with `congruentTo3Mod4`, p ≡ 3 (mod 4).
    static func prime(bits: Int, congruentTo3Mod4: Bool = false) -> BigNumber {
        let p = BigNumber()
        if congruentTo3Mod4 {
            let four = BigNumber(4), three = BigNumber(3)
            withExtendedLifetime((four, three)) {
                precondition(BN_generate_prime_ex(p.bn, Int32(bits), 0, four.bn, three.bn, nil) == 1, "prime generation failed")
            }
        } else {
            precondition(BN_generate_prime_ex(p.bn, Int32(bits), 0, nil, nil, nil) == 1, "prime generation failed")
        }
        return p
    }
}

/// Arithmetic with a scratch context per call site (`BN_CTX` is not thread-safe; one per operation).
enum BigArithmetic {
    static func withContext<R>(_ body: (OpaquePointer) -> R) -> R {
        let ctx = BN_CTX_secure_new() ?? BN_CTX_new()!
        defer { BN_CTX_free(ctx) }
        return body(ctx)
    }

    static func multiply(_ a: BigNumber, _ b: BigNumber) -> BigNumber {
        let r = BigNumber()
        withContext { ctx in _ = BN_mul(r.bn, a.bn, b.bn, ctx) }
        return r
    }

    static func modMultiply(_ a: BigNumber, _ b: BigNumber, _ m: BigNumber) -> BigNumber {
        let r = BigNumber()
        withContext { ctx in _ = BN_mod_mul(r.bn, a.bn, b.bn, m.bn, ctx) }
        return r
    }

    /// a^e mod m for a secret exponent, in constant time (OpenSSL's `BN_mod_exp_mont_consttime`; m odd).
    static func modExpSecret(_ a: BigNumber, _ e: BigNumber, _ m: BigNumber, montgomery: MontgomeryContext? = nil) -> BigNumber {
        let r = BigNumber()
        withContext { ctx in
            precondition(BN_mod_exp_mont_consttime(r.bn, a.bn, e.bn, m.bn, ctx, montgomery?.mont) == 1, "constant-time exponentiation failed")
        }
        return r
    }

    static func modExp(_ a: BigNumber, _ e: BigNumber, _ m: BigNumber, montgomery: MontgomeryContext? = nil) -> BigNumber {
        let r = BigNumber()
        withContext { ctx in
            if let montgomery { _ = BN_mod_exp_mont(r.bn, a.bn, e.bn, m.bn, ctx, montgomery.mont) }
            else { _ = BN_mod_exp(r.bn, a.bn, e.bn, m.bn, ctx) }
        }
        return r
    }

    static func modInverse(_ a: BigNumber, _ m: BigNumber) -> BigNumber? {
        let r = BigNumber()
        let ok = withContext { ctx in BN_mod_inverse(r.bn, a.bn, m.bn, ctx) != nil }
        return ok ? r : nil
    }

    static func add(_ a: BigNumber, _ b: BigNumber) -> BigNumber {
        let r = BigNumber()
        _ = BN_add(r.bn, a.bn, b.bn)
        return r
    }

    static func subtract(_ a: BigNumber, _ b: BigNumber) -> BigNumber {
        let r = BigNumber()
        _ = BN_sub(r.bn, a.bn, b.bn)
        return r
    }

    static func modulo(_ a: BigNumber, _ m: BigNumber) -> BigNumber {
        let r = BigNumber()
        withContext { ctx in _ = BN_nnmod(r.bn, a.bn, m.bn, ctx) }
        return r
    }

    static func divide(_ a: BigNumber, _ d: BigNumber) -> BigNumber {
        let r = BigNumber()
        withContext { ctx in _ = BN_div(r.bn, nil, a.bn, d.bn, ctx) }
        return r
    }
}

/// A precomputed Montgomery context for repeated exponentiations modulo one number.
final class MontgomeryContext: @unchecked Sendable {
    let mont: OpaquePointer
    init(modulus: BigNumber) {
        mont = BN_MONT_CTX_new()!
        BigArithmetic.withContext { ctx in _ = BN_MONT_CTX_set(mont, modulus.bn, ctx) }
    }
    deinit { BN_MONT_CTX_free(mont) }
}
