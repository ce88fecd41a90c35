import COpenSSLCrypto

/// Paillier's additively homomorphic encryption (Paillier 1999) with g = n + 1, CRT decryption, and
/// the short-exponent randomness of Damgård, Jurik and Nielsen: the encryptor raises a precomputed
/// hs = h^n mod n² (h = −x² mod n for a random x) to a random exponent of ⌈k/2⌉ bits for a k-bit n
/// (1024 bits at 2048, as in the DJN paper and HEU) instead of computing rⁿ with an n-bit exponent,
/// through a fixed-base comb table (one modular multiplication per byte of the exponent). The primes
/// are ≡ 3 (mod 4) (so h = −x² generates the squares' subgroup as the paper requires), and every
/// exponentiation with a secret exponent (decryption's p − 1, q − 1) runs in constant time.
///
/// Plaintexts are integers modulo n; signed values are encoded as v mod n and decoded from the upper
/// half as negative. E(a)·E(b) = E(a + b) and E(a)^k = E(k·a), modulo n.
public struct PaillierPublicKey: Sendable {
    public let n: BigNumber
    let nSquared: BigNumber
    let hs: BigNumber
    let montgomery: MontgomeryContext
    /// hs^(j·2^(8i)) in Montgomery form, for i < randomnessBits/8 and j < 256: a fixed-base comb that turns
    /// hs^α into randomnessBits/8 modular multiplications (about 16 MB at 2048 bits, built once per key).
    let table: [[BigNumber]]
    /// Exponent length of the encryption randomness: ⌈k/2⌉ bits for a k-bit modulus, in whole bytes.
    public let randomnessBits: Int
    public static func randomnessBits(modulusBits k: Int) -> Int { ((k + 1) / 2 + 7) / 8 * 8 }

    public init(n: BigNumber, hs: BigNumber) throws {
        guard n.bitCount >= 256, BN_is_odd(n.bn) == 1 else { throw CryptoError.invalidScalar(reason: "a Paillier modulus must be odd and at least 256 bits") }
        self.n = n
        self.nSquared = BigArithmetic.multiply(n, n)
        guard !hs.isZero, hs < nSquared else { throw CryptoError.invalidGroupElement(reason: "the Paillier randomness base is out of range") }
        self.hs = hs
        let montgomery = MontgomeryContext(modulus: nSquared)
        self.montgomery = montgomery
        let exponentBits = Self.randomnessBits(modulusBits: n.bitCount)
        self.randomnessBits = exponentBits
        self.table = Self.comb(base: hs, modulus: nSquared, montgomery: montgomery, exponentBits: exponentBits)
    }

    static func comb(base: BigNumber, modulus: BigNumber, montgomery: MontgomeryContext, exponentBits: Int) -> [[BigNumber]] {
        BigArithmetic.withContext { ctx in
            var rows: [[BigNumber]] = []
            var power = BigNumber()  // base^(2^(8i)) in Montgomery form
            _ = BN_to_montgomery(power.bn, base.bn, montgomery.mont, ctx)
            let one = BigNumber(), unit = BigNumber(1)
            withExtendedLifetime(unit) { _ = BN_to_montgomery(one.bn, unit.bn, montgomery.mont, ctx) }
            for _ in 0..<(exponentBits / 8) {
                var row = [one]
                row.reserveCapacity(256)
                for j in 1..<256 {
                    let next = BigNumber()
                    _ = BN_mod_mul_montgomery(next.bn, row[j - 1].bn, power.bn, montgomery.mont, ctx)
                    row.append(next)
                }
                let nextPower = BigNumber()
                _ = BN_mod_mul_montgomery(nextPower.bn, row[255].bn, power.bn, montgomery.mont, ctx)
                power = nextPower
                rows.append(row)
            }
            return rows
        }
    }

    public var bits: Int { n.bitCount }
    /// Bytes of n, and of a ciphertext (which lives modulo n²).
    public var modulusBytes: Int { (bits + 7) / 8 }
    public var ciphertextBytes: Int { 2 * modulusBytes }
    /// The base of the randomness, for sending the key to peers along with n.
    public var randomnessBase: BigNumber { hs }

    /// E(m) for 0 ≤ m < n.
    public func encrypt(_ m: BigNumber) -> PaillierCiphertext {
        // (1 + m·n) mod n² · hs^α mod n²
        let mn = BigArithmetic.modulo(BigArithmetic.add(BigArithmetic.multiply(m, n), BigNumber(1)), nSquared)
        return PaillierCiphertext(value: BigArithmetic.modMultiply(mn, randomness(), nSquared))
    }

    /// E(v) of a signed value (encoded as v mod n).
    public func encrypt(_ v: Int64) -> PaillierCiphertext { encrypt(encode(v)) }

    /// E(v) with the textbook randomness rⁿ mod n² (an n-bit exponent): for benchmarks only.
    public func encryptWithFullExponent(_ v: Int64) -> PaillierCiphertext {
        let mn = BigArithmetic.modulo(BigArithmetic.add(BigArithmetic.multiply(encode(v), n), BigNumber(1)), nSquared)
        let r = BigArithmetic.modExp(BigNumber.random(below: n), n, nSquared, montgomery: montgomery)
        return PaillierCiphertext(value: BigArithmetic.modMultiply(mn, r, nSquared))
    }

    public func encode(_ v: Int64) -> BigNumber {
        v >= 0 ? BigNumber(UInt64(v)) : BigArithmetic.subtract(n, BigNumber(v.magnitude))
    }

    /// hs^α for a random α of `randomnessBits` bits, from the comb: one multiplication per byte of α.
    func randomness() -> BigNumber {
        var alpha = [UInt8](repeating: 0, count: randomnessBits / 8)
        precondition(RAND_bytes(&alpha, Int32(alpha.count)) == 1, "the CSPRNG failed")
        return BigArithmetic.withContext { ctx in
            let acc = BigNumber()
            _ = BN_copy(acc.bn, table[0][Int(alpha[0])].bn)
            for i in 1..<alpha.count {
                _ = BN_mod_mul_montgomery(acc.bn, acc.bn, table[i][Int(alpha[i])].bn, montgomery.mont, ctx)
            }
            let out = BigNumber()
            _ = BN_from_montgomery(out.bn, acc.bn, montgomery.mont, ctx)
            return out
        }
    }

    /// E(a + b).
    public func add(_ a: PaillierCiphertext, _ b: PaillierCiphertext) -> PaillierCiphertext {
        PaillierCiphertext(value: BigArithmetic.modMultiply(a.value, b.value, nSquared))
    }

    /// E(a + v) for a plaintext v, without fresh randomness (re-randomise before sending if needed).
    public func add(_ a: PaillierCiphertext, plain v: Int64) -> PaillierCiphertext {
        let gv = BigArithmetic.modulo(BigArithmetic.add(BigArithmetic.multiply(encode(v), n), BigNumber(1)), nSquared)
        return PaillierCiphertext(value: BigArithmetic.modMultiply(a.value, gv, nSquared))
    }

    /// E(k·a) for a signed plaintext k: a^|k|, inverted modulo n² when k < 0.
    public func multiply(_ a: PaillierCiphertext, by k: Int64) -> PaillierCiphertext {
        let power = BigArithmetic.modExp(a.value, BigNumber(k.magnitude), nSquared, montgomery: montgomery)
        guard k < 0 else { return PaillierCiphertext(value: power) }
        return PaillierCiphertext(value: BigArithmetic.modInverse(power, nSquared) ?? power)
    }

    /// E(Σ kᵢ·aᵢ) = ∏ aᵢ^kᵢ for signed coefficients: the positive and the negative terms are multiplied
    /// separately, so one modular inverse serves the whole combination.
    public func linearCombination(_ ciphertexts: [PaillierCiphertext], _ coefficients: [Int64]) -> PaillierCiphertext {
        precondition(ciphertexts.count == coefficients.count)
        var positive = BigNumber(1), negative = BigNumber(1)
        var anyNegative = false
        for (c, k) in zip(ciphertexts, coefficients) where k != 0 {
            let power = BigArithmetic.modExp(c.value, BigNumber(k.magnitude), nSquared, montgomery: montgomery)
            if k > 0 { positive = BigArithmetic.modMultiply(positive, power, nSquared) }
            else { negative = BigArithmetic.modMultiply(negative, power, nSquared); anyNegative = true }
        }
        guard anyNegative, let inverse = BigArithmetic.modInverse(negative, nSquared) else { return PaillierCiphertext(value: positive) }
        return PaillierCiphertext(value: BigArithmetic.modMultiply(positive, inverse, nSquared))
    }

    /// A uniformly random plaintext, to mask a value before the key holder decrypts it.
    public func randomMask() -> PaillierMask { PaillierMask(value: BigNumber.random(below: n)) }

    /// E(a + R) for a mask R.
    public func add(_ a: PaillierCiphertext, mask: PaillierMask) -> PaillierCiphertext {
        let gr = BigArithmetic.modulo(BigArithmetic.add(BigArithmetic.multiply(mask.value, n), BigNumber(1)), nSquared)
        return PaillierCiphertext(value: BigArithmetic.modMultiply(a.value, gr, nSquared))
    }

    /// The signed value a from the key holder's decryption of E(a + R) (big-endian, modulo n) and the mask R.
    public func unmask(_ plaintext: [UInt8], _ mask: PaillierMask) throws -> Double {
        let m = BigNumber(bigEndian: plaintext)
        guard m < n else { throw CryptoError.invalidScalar(reason: "a masked plaintext must be below n") }
        return signedDouble(BigArithmetic.modulo(BigArithmetic.subtract(m, mask.value), n))
    }

    /// The signed value of a plaintext modulo n (the upper half is negative), as a Double.
    func signedDouble(_ m: BigNumber) -> Double {
        let half = BigArithmetic.divide(n, BigNumber(2))
        if half < m {
            let magnitude = BigArithmetic.subtract(n, m)
            return -(magnitude.uint64.map { Double($0) } ?? Double(magnitude.description)!)
        }
        return m.uint64.map { Double($0) } ?? Double(m.description)!
    }

    /// The same plaintext under fresh randomness.
    public func rerandomize(_ a: PaillierCiphertext) -> PaillierCiphertext {
        PaillierCiphertext(value: BigArithmetic.modMultiply(a.value, randomness(), nSquared))
    }

    /// A ciphertext received from a peer: checked to lie in [1, n²).
    public func ciphertext(bigEndian bytes: [UInt8]) throws -> PaillierCiphertext {
        let v = BigNumber(bigEndian: bytes)
        guard bytes.count <= ciphertextBytes, !v.isZero, v < nSquared else {
            throw CryptoError.invalidGroupElement(reason: "not a Paillier ciphertext for this key")
        }
        return PaillierCiphertext(value: v)
    }
}

/// A random plaintext that hides a value from the key holder (who decrypts the sum).
public struct PaillierMask: Sendable { let value: BigNumber }

public struct PaillierCiphertext: Sendable {
    let value: BigNumber
    public func bigEndianBytes(for key: PaillierPublicKey) -> [UInt8] { value.bigEndianBytes(length: key.ciphertextBytes) }
}

/// The key holder's side: decryption by the Chinese remainder theorem modulo p² and q².
public struct PaillierPrivateKey: Sendable {
    public let publicKey: PaillierPublicKey
    let p: BigNumber, q: BigNumber
    let pSquared: BigNumber, qSquared: BigNumber
    let pMinusOne: BigNumber, qMinusOne: BigNumber
    let hp: BigNumber, hq: BigNumber
    let pInverseModQ: BigNumber
    let montgomeryP: MontgomeryContext, montgomeryQ: MontgomeryContext

    /// A fresh key with an n of exactly `bits` bits (2048 by default).
    public static func generate(bits: Int = 2048) throws -> PaillierPrivateKey {
        while true {
            let p = BigNumber.prime(bits: bits / 2, congruentTo3Mod4: true), q = BigNumber.prime(bits: bits - bits / 2, congruentTo3Mod4: true)
            guard !(p == q) else { continue }
            let n = BigArithmetic.multiply(p, q)
            guard n.bitCount == bits else { continue }
            let x = BigNumber.random(below: n)
            let h = BigArithmetic.subtract(n, BigArithmetic.modMultiply(x, x, n))
            let hs = BigArithmetic.modExp(h, n, BigArithmetic.multiply(n, n))
            guard let key = try? PaillierPrivateKey(p: p, q: q, publicKey: PaillierPublicKey(n: n, hs: hs)) else { continue }
            return key
        }
    }

    init(p: BigNumber, q: BigNumber, publicKey: PaillierPublicKey) throws {
        self.publicKey = publicKey
        self.p = p
        self.q = q
        pSquared = BigArithmetic.multiply(p, p)
        qSquared = BigArithmetic.multiply(q, q)
        pMinusOne = BigArithmetic.subtract(p, BigNumber(1))
        qMinusOne = BigArithmetic.subtract(q, BigNumber(1))
        montgomeryP = MontgomeryContext(modulus: pSquared)
        montgomeryQ = MontgomeryContext(modulus: qSquared)
        let g = BigArithmetic.add(publicKey.n, BigNumber(1))
        func h(_ prime: BigNumber, _ square: BigNumber, _ minusOne: BigNumber) -> BigNumber? {
            let u = BigArithmetic.modExp(g, minusOne, square)
            let l = BigArithmetic.divide(BigArithmetic.subtract(u, BigNumber(1)), prime)
            return BigArithmetic.modInverse(l, prime)
        }
        guard let hp = h(p, pSquared, pMinusOne), let hq = h(q, qSquared, qMinusOne),
              let inv = BigArithmetic.modInverse(p, q) else {
            throw CryptoError.invalidScalar(reason: "degenerate Paillier key")
        }
        self.hp = hp
        self.hq = hq
        pInverseModQ = inv
    }

    /// The plaintext in [0, n).
    public func decrypt(_ c: PaillierCiphertext) -> BigNumber {
        func part(_ prime: BigNumber, _ square: BigNumber, _ minusOne: BigNumber, _ h: BigNumber, _ m: MontgomeryContext) -> BigNumber {
            let u = BigArithmetic.modExpSecret(BigArithmetic.modulo(c.value, square), minusOne, square, montgomery: m)
            let l = BigArithmetic.divide(BigArithmetic.subtract(u, BigNumber(1)), prime)
            return BigArithmetic.modMultiply(l, h, prime)
        }
        let mp = part(p, pSquared, pMinusOne, hp, montgomeryP)
        let mq = part(q, qSquared, qMinusOne, hq, montgomeryQ)
        // m = mp + p·((mq − mp)·p⁻¹ mod q)
        let t = BigArithmetic.modMultiply(BigArithmetic.modulo(BigArithmetic.subtract(mq, mp), q), pInverseModQ, q)
        return BigArithmetic.add(mp, BigArithmetic.multiply(p, t))
    }

    /// The signed plaintext (upper half of [0, n) is negative), as a Double: exact up to 2⁵³ in magnitude.
    public func decryptSigned(_ c: PaillierCiphertext) -> Double { publicKey.signedDouble(decrypt(c)) }

    /// The plaintext in [0, n), big-endian, `modulusBytes` long (to send back a masked value).
    public func decryptBytes(_ c: PaillierCiphertext) -> [UInt8] { decrypt(c).bigEndianBytes(length: publicKey.modulusBytes) }

    /// The signed plaintext as an Int64; nil if out of range.
    public func decryptInt64(_ c: PaillierCiphertext) -> Int64? {
        let m = decrypt(c)
        let half = BigArithmetic.divide(publicKey.n, BigNumber(2))
        if half < m {
            guard let magnitude = BigArithmetic.subtract(publicKey.n, m).uint64, magnitude <= UInt64(Int64.max) else { return nil }
            return -Int64(magnitude)
        }
        guard let v = m.uint64, v <= UInt64(Int64.max) else { return nil }
        return Int64(v)
    }
}

extension PaillierPublicKey {
    /// E(Σᵢ kᵢⱼ·aᵢ) for every column j of coefficients, by simultaneous exponentiation (Straus, 4-bit
    /// windows): each ciphertext's powers a⁰ … a¹⁵ are computed once and shared by all columns, so a column
    /// costs one squaring per coefficient bit plus one multiplication per ciphertext and window, instead of a
    /// full exponentiation per coefficient. Positive and negative coefficients accumulate apart and meet
    /// through one inverse per column. Columns run in parallel.
    public func linearCombinations(_ ciphertexts: [PaillierCiphertext], _ columns: [[Int64]]) throws -> [PaillierCiphertext] {
        guard !ciphertexts.isEmpty else { return columns.map { _ in PaillierCiphertext(value: BigNumber(1)) } }  // E(0), r = 1
        let tables: [[BigNumber]] = try ParallelMap.map(ciphertexts) { c in
            BigArithmetic.withContext { ctx in
                var row: [BigNumber] = []
                row.reserveCapacity(16)
                let one = BigNumber(), unit = BigNumber(1)
                withExtendedLifetime(unit) { _ = BN_to_montgomery(one.bn, unit.bn, montgomery.mont, ctx) }
                let base = BigNumber()
                _ = BN_to_montgomery(base.bn, c.value.bn, montgomery.mont, ctx)
                row.append(one)
                row.append(base)
                for v in 2..<16 {
                    let next = BigNumber()
                    _ = BN_mod_mul_montgomery(next.bn, row[v - 1].bn, base.bn, montgomery.mont, ctx)
                    row.append(next)
                }
                return row
            }
        }
        return try ParallelMap.map(columns) { coefficients in
            precondition(coefficients.count == ciphertexts.count)
            let bits = coefficients.map { 64 - $0.magnitude.leadingZeroBitCount }.max() ?? 0
            let windows = (bits + 3) / 4
            return BigArithmetic.withContext { ctx -> PaillierCiphertext in
                let positive = BigNumber(), negative = BigNumber()
                _ = BN_copy(positive.bn, tables[0][0].bn)
                _ = BN_copy(negative.bn, positive.bn)
                var anyNegative = false
                for w in stride(from: windows - 1, through: 0, by: -1) {
                    if w != windows - 1 {
                        for _ in 0..<4 {
                            _ = BN_mod_mul_montgomery(positive.bn, positive.bn, positive.bn, montgomery.mont, ctx)
                            if anyNegative { _ = BN_mod_mul_montgomery(negative.bn, negative.bn, negative.bn, montgomery.mont, ctx) }
                        }
                    }
                    for (i, k) in coefficients.enumerated() {
                        let digit = Int((k.magnitude >> UInt64(4 * w)) & 15)
                        guard digit != 0 else { continue }
                        if k > 0 {
                            _ = BN_mod_mul_montgomery(positive.bn, positive.bn, tables[i][digit].bn, montgomery.mont, ctx)
                        } else {
                            if !anyNegative {
                                // Catch up the squarings the negative accumulator skipped while it was 1 (it still is).
                                anyNegative = true
                            }
                            _ = BN_mod_mul_montgomery(negative.bn, negative.bn, tables[i][digit].bn, montgomery.mont, ctx)
                        }
                    }
                }
                let p = BigNumber()
                _ = BN_from_montgomery(p.bn, positive.bn, montgomery.mont, ctx)
                guard anyNegative else { return PaillierCiphertext(value: p) }
                let n = BigNumber()
                _ = BN_from_montgomery(n.bn, negative.bn, montgomery.mont, ctx)
                guard let inverse = BigArithmetic.modInverse(n, nSquared) else { return PaillierCiphertext(value: p) }
                return PaillierCiphertext(value: BigArithmetic.modMultiply(p, inverse, nSquared))
            }
        }
    }
}
