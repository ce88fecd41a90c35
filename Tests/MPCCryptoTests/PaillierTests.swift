import COpenSSLCrypto
import XCTest
@testable import MPCCrypto

final class PaillierTests: XCTestCase {
    static let key = try! PaillierPrivateKey.generate(bits: 1024)

    /// Finding 11: the DJN exponent has ⌈k/2⌉ bits (1024 at 2048, 512 at 1024) and the primes are ≡ 3 (mod 4).
    func testKeyHygiene() throws {
        XCTAssertEqual(PaillierPublicKey.randomnessBits(modulusBits: 2048), 1024)
        XCTAssertEqual(Self.key.publicKey.randomnessBits, 512)
        for prime in [Self.key.p, Self.key.q] {
            XCTAssertEqual(BN_is_bit_set(prime.bn, 0), 1)
            XCTAssertEqual(BN_is_bit_set(prime.bn, 1), 1, "p ≡ 3 (mod 4)")
        }
    }

    func testRoundTripOfSignedValuesAndRandomisedCiphertexts() throws {
        let key = Self.key, pk = key.publicKey
        for v: Int64 in [0, 1, -1, 42, -42, Int64.max, Int64.min + 1, 1 << 40, -(1 << 40)] {
            let c = pk.encrypt(v)
            XCTAssertEqual(key.decryptInt64(c), v)
        }
        let a = pk.encrypt(Int64(7)), b = pk.encrypt(Int64(7))
        XCTAssertNotEqual(a.bigEndianBytes(for: pk), b.bigEndianBytes(for: pk), "encryption is randomised")
        XCTAssertEqual(key.decryptInt64(pk.rerandomize(a)), 7)
        XCTAssertNotEqual(pk.rerandomize(a).bigEndianBytes(for: pk), a.bigEndianBytes(for: pk))
    }

    func testHomomorphicAdditionAndScalarMultiplication() throws {
        let key = Self.key, pk = key.publicKey
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20 {
            let a = Int64.random(in: -1_000_000_000...1_000_000_000, using: &rng)
            let b = Int64.random(in: -1_000_000_000...1_000_000_000, using: &rng)
            let k = Int64.random(in: -100_000...100_000, using: &rng)
            XCTAssertEqual(key.decryptInt64(pk.add(pk.encrypt(a), pk.encrypt(b))), a + b)
            XCTAssertEqual(key.decryptInt64(pk.add(pk.encrypt(a), plain: b)), a + b)
            XCTAssertEqual(key.decryptInt64(pk.multiply(pk.encrypt(a), by: k)), a * k)
        }
        // Sums beyond 64 bits decode as Doubles.
        let big = pk.multiply(pk.encrypt(Int64.max), by: 4)
        XCTAssertNil(key.decryptInt64(big))
        XCTAssertEqual(key.decryptSigned(big), Double(Int64.max) * 4, accuracy: 1e4)
        XCTAssertEqual(key.decryptSigned(pk.multiply(pk.encrypt(Int64.max), by: -4)), -Double(Int64.max) * 4, accuracy: 1e4)
    }

    func testLinearCombinations() throws {
        let key = Self.key, pk = key.publicKey
        let a: [Int64] = [5, -7, 1_000_000, 0, -3]
        let k: [Int64] = [3, 4, -2, 9, -65_536]
        let c = pk.linearCombination(a.map { pk.encrypt($0) }, k)
        XCTAssertEqual(key.decryptInt64(c), zip(a, k).map(*).reduce(0, +))
        XCTAssertEqual(key.decryptInt64(pk.linearCombination([pk.encrypt(Int64(4))], [0])), 0)
        // Many columns at once (simultaneous exponentiation), against the one-by-one combination.
        var rng = SystemRandomNumberGenerator()
        let values = (0..<40).map { _ in Int64.random(in: -1_000_000...1_000_000, using: &rng) }
        let ciphertexts = values.map { pk.encrypt($0) }
        let columns = (0..<7).map { j in (0..<40).map { i -> Int64 in j == 0 ? 0 : j == 1 ? 65_536 : Int64.random(in: -(1 << 21)...(1 << 21), using: &rng) } }
        let all = try pk.linearCombinations(ciphertexts, columns)
        for (j, column) in columns.enumerated() {
            XCTAssertEqual(key.decryptInt64(all[j]), zip(values, column).map(*).reduce(0, +), "column \(j)")
        }
        XCTAssertEqual(try pk.linearCombinations([], [[]]).map { key.decryptInt64($0) }, [0])
    }

    func testMaskedDecryptionRevealsOnlyTheMaskedValue() throws {
        let key = Self.key, pk = key.publicKey
        for v: Int64 in [0, 17, -17, 1 << 50, -(1 << 50)] {
            let mask = pk.randomMask()
            let masked = key.decryptBytes(pk.add(pk.encrypt(v), mask: mask))
            XCTAssertNotEqual(key.decryptInt64(pk.add(pk.encrypt(v), mask: mask)), v)
            XCTAssertEqual(try pk.unmask(masked, mask), Double(v))
        }
        XCTAssertEqual(key.decryptSigned(pk.encrypt(Int64(-123_456))), -123_456)
    }

    func testCiphertextsFromPeersAreCheckedAndForeignKeysDoNotDecrypt() throws {
        let key = Self.key, pk = key.publicKey
        let c = pk.encrypt(Int64(123))
        let received = try pk.ciphertext(bigEndian: c.bigEndianBytes(for: pk))
        XCTAssertEqual(key.decryptInt64(received), 123)
        XCTAssertThrowsError(try pk.ciphertext(bigEndian: [UInt8](repeating: 0, count: pk.ciphertextBytes)))
        XCTAssertThrowsError(try pk.ciphertext(bigEndian: [UInt8](repeating: 0xff, count: pk.ciphertextBytes)))
        let rebuilt = try PaillierPublicKey(n: pk.n, hs: pk.randomnessBase)
        XCTAssertEqual(key.decryptInt64(rebuilt.encrypt(Int64(-5))), -5, "a public key rebuilt from (n, hs) encrypts for the same key")
        let other = try PaillierPrivateKey.generate(bits: 1024)
        // Under another key the bytes are either out of range (refused) or decrypt to something else.
        if let foreign = try? other.publicKey.ciphertext(bigEndian: c.bigEndianBytes(for: pk)) {
            XCTAssertNotEqual(other.decryptInt64(foreign), 123)
        }
    }

    func testDefaultKeysAre2048Bits() throws {
        let key = try PaillierPrivateKey.generate()
        XCTAssertEqual(key.publicKey.bits, 2048)
        XCTAssertEqual(key.decryptInt64(key.publicKey.encrypt(Int64(-987_654_321))), -987_654_321)
    }
}
