import XCTest
@testable import MPCCrypto

/// The pieces a bucketed PSI keeps or derives: the joint bucket key, sealed secrets, derived blinding keys.
final class BucketKeyTests: XCTestCase {
    func testTheKeyDependsOnEveryShareAndTheirOrder() throws {
        let s0 = BucketKey.randomShare(), s1 = BucketKey.randomShare()
        let k = try BucketKey(shares: [s0, s1])
        XCTAssertEqual(k, try BucketKey(shares: [s0, s1]))
        XCTAssertNotEqual(k, try BucketKey(shares: [s1, s0]))
        XCTAssertNotEqual(k, try BucketKey(shares: [s0, BucketKey.randomShare()]))
        XCTAssertThrowsError(try BucketKey(shares: [s0, Array(s1.prefix(31))]))
        XCTAssertNotEqual(k.check, try BucketKey(shares: [s1, s0]).check)
    }

    func testBucketsAreSpreadEvenlyAndStayWithinTheCapacity() throws {
        let key = try BucketKey(shares: [BucketKey.randomShare(), BucketKey.randomShare()])
        let n = 100_000, b = 16
        var sizes = [Int](repeating: 0, count: b)
        for i in 0..<n { sizes[key.bucket(of: Array("+86139\(i)".utf8), count: b)] += 1 }
        let capacity = BucketSizing.capacity(setSize: n, buckets: b)
        XCTAssertLessThanOrEqual(sizes.max()!, capacity)
        XCTAssertGreaterThan(sizes.min()!, n / b - 6 * 80, "no bucket is starved (σ ≈ 77)")
        XCTAssertEqual(BucketSizing.capacity(setSize: 1000, buckets: 1), 1000)
        XCTAssertEqual(BucketSizing.proposedCount(setSize: 1 << 20), 1)
        XCTAssertEqual(BucketSizing.proposedCount(setSize: (1 << 20) + 1), 2)
    }

    func testASealedSecretOpensOnlyWithItsKeyAndUnaltered() throws {
        let key = SecretBox.randomKey(), secret = BucketKey.randomBytes(64)
        let sealed = try SecretBox.seal(secret, key: key)
        XCTAssertEqual(try SecretBox.open(sealed, key: key), secret)
        XCTAssertNotEqual(try SecretBox.seal(secret, key: key), sealed, "a fresh nonce each time")
        var altered = sealed
        altered[30] ^= 1
        XCTAssertThrowsError(try SecretBox.open(altered, key: key))
        XCTAssertThrowsError(try SecretBox.open(sealed, key: SecretBox.randomKey()))
        XCTAssertThrowsError(try SecretBox.open(Array(sealed.prefix(20)), key: key))
    }

    func testADerivedCipherBlindsTheSameWayFromTheSameSeed() throws {
        for group in BlindingGroup.allCases {
            let seed = BucketKey.randomBytes(32)
            let a = try CommutativeCipher.derived(group: group, domain: "job", seed: seed)
            let b = try CommutativeCipher.derived(group: group, domain: "job", seed: seed)
            let c = try CommutativeCipher.derived(group: group, domain: "job", seed: BucketKey.randomBytes(32))
            let x = Array("+8613900000000".utf8)
            XCTAssertEqual(try a.hashAndBlind(x), try b.hashAndBlind(x), "\(group)")
            XCTAssertNotEqual(try a.hashAndBlind(x), try c.hashAndBlind(x), "\(group)")
            // Still commutative with a random key.
            let r = CommutativeCipher.random(group: group, domain: "job")
            XCTAssertEqual(try r.blind(a.hashAndBlind(x)), try a.blind(r.hashAndBlind(x)), "\(group)")
        }
    }
}
