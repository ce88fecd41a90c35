import XCTest
@testable import MPCCrypto

final class SecureAggregationPrimitiveTests: XCTestCase {
    func testShamirAnyThresholdSubsetReconstructsAndFewerDoNot() throws {
        let secret = MaskExpansion.randomSeed()
        let xs: [UInt32] = Array(1...7)
        let shares = try ShamirSecretSharing.split(secret, threshold: 4, xs: xs)
        XCTAssertEqual(shares.count, 7)
        for subset in [[0, 1, 2, 3], [6, 5, 4, 3], [0, 2, 4, 6], [1, 3, 5, 6]] {
            XCTAssertEqual(try ShamirSecretSharing.combine(subset.map { shares[$0] }, threshold: 4), secret, "\(subset)")
        }
        XCTAssertThrowsError(try ShamirSecretSharing.combine(Array(shares.prefix(3)), threshold: 4))
        // t − 1 shares interpolated as if t−1 were the threshold give something else (with overwhelming probability).
        XCTAssertNotEqual(try? ShamirSecretSharing.combine(Array(shares.prefix(3)), threshold: 3), secret)
        // A tampered share gives a wrong secret or an error, never the secret.
        var tampered = Array(shares.prefix(4))
        tampered[2].y[40] ^= 1
        XCTAssertNotEqual(try? ShamirSecretSharing.combine(tampered, threshold: 4), secret)
        XCTAssertThrowsError(try ShamirSecretSharing.split(secret, threshold: 3, xs: [1, 1, 2]))
        XCTAssertThrowsError(try ShamirSecretSharing.split(secret, threshold: 3, xs: [0, 1, 2]))
    }

    func testShamirFreshRandomnessEachSplit() throws {
        let secret = MaskExpansion.randomSeed()
        let a = try ShamirSecretSharing.split(secret, threshold: 2, xs: [1, 2])
        let b = try ShamirSecretSharing.split(secret, threshold: 2, xs: [1, 2])
        XCTAssertNotEqual(a[0].y, b[0].y)
    }

    func testKeyAgreementIsSymmetricAndPairSpecific() throws {
        let a = KeyAgreementKeyPair.generate(), b = KeyAgreementKeyPair.generate(), c = KeyAgreementKeyPair.generate()
        XCTAssertEqual(try a.sharedKey(with: b.publicKey), try b.sharedKey(with: a.publicKey))
        XCTAssertNotEqual(try a.sharedKey(with: b.publicKey), try a.sharedKey(with: c.publicKey))
        let rebuilt = try KeyAgreementKeyPair(secretKey: a.secretKeyBytes)
        XCTAssertEqual(rebuilt.publicKey, a.publicKey)
        XCTAssertEqual(try rebuilt.sharedKey(with: b.publicKey), try b.sharedKey(with: a.publicKey))
    }

    func testMasksCancelAndAreDeterministicPerSeed() {
        let seed = MaskExpansion.randomSeed()
        for length in [1, 7, 100_000, (1 << 16) + 3] {
            let m1 = MaskExpansion.expand(seed: seed, count: length)
            XCTAssertEqual(m1, MaskExpansion.expand(seed: seed, count: length))
            var v = (0..<length).map { UInt64($0) }
            MaskExpansion.apply(seed: seed, to: &v)
            XCTAssertNotEqual(v.first, 0, "masked")
            MaskExpansion.apply(seed: seed, to: &v, subtract: true)
            XCTAssertEqual(v, (0..<length).map { UInt64($0) }, "length \(length)")
        }
        // A longer expansion extends a shorter one (block boundaries continue the same keystream).
        XCTAssertEqual(Array(MaskExpansion.expand(seed: seed, count: (1 << 16) + 10).prefix(1 << 16)),
                       MaskExpansion.expand(seed: seed, count: 1 << 16))
        XCTAssertNotEqual(MaskExpansion.expand(seed: seed, count: 8), MaskExpansion.expand(seed: MaskExpansion.randomSeed(), count: 8))
    }

    func testShareEncryptionRejectsTamperingAndWrongContext() throws {
        let key = MaskExpansion.randomSeed()
        let sealed = ShareEncryption.seal([1, 2, 3], key: key, associatedData: Array("job|a|b".utf8))
        XCTAssertEqual(try ShareEncryption.open(sealed, key: key, associatedData: Array("job|a|b".utf8)), [1, 2, 3])
        XCTAssertThrowsError(try ShareEncryption.open(sealed, key: key, associatedData: Array("job|a|c".utf8)))
        var altered = sealed
        altered.ciphertext[0] ^= 1
        XCTAssertThrowsError(try ShareEncryption.open(altered, key: key, associatedData: Array("job|a|b".utf8)))
        XCTAssertThrowsError(try ShareEncryption.open(sealed, key: MaskExpansion.randomSeed(), associatedData: Array("job|a|b".utf8)))
    }
}
