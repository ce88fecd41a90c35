import XCTest
@testable import MPCCrypto

final class CommutativeCipherTests: XCTestCase {
    func testBlindingCommutesInBothGroups() throws {
        for group in BlindingGroup.allCases {
            let a = CommutativeCipher.random(group: group, domain: "job-1")
            let b = CommutativeCipher.random(group: group, domain: "job-1")
            for i in 0..<50 {
                let id = Array("customer-\(i)".utf8)
                let ab = try b.blind(a.hashAndBlind(id))
                let ba = try a.blind(b.hashAndBlind(id))
                XCTAssertEqual(ab, ba, "\(group) item \(i)")
            }
        }
    }

    func testDistinctIdentifiersAndDistinctKeysGiveDistinctElements() throws {
        for group in BlindingGroup.allCases {
            let a = CommutativeCipher.random(group: group, domain: "job-1")
            let a2 = CommutativeCipher.random(group: group, domain: "job-1")
            let values = try (0..<500).map { try a.hashAndBlind(Array("id-\($0)".utf8)) }
            XCTAssertEqual(Set(values).count, 500, "\(group): no collisions among 500 identifiers")
            XCTAssertNotEqual(try a.hashAndBlind(Array("x".utf8)), try a2.hashAndBlind(Array("x".utf8)), "fresh keys differ")
        }
    }

    func testDomainSeparatesJobs() throws {
        for group in BlindingGroup.allCases {
            let h1 = GroupHash.hash(Array("+4412345".utf8), domain: Array("job-1".utf8), group: group)
            let h2 = GroupHash.hash(Array("+4412345".utf8), domain: Array("job-2".utf8), group: group)
            XCTAssertNotEqual(h1, h2)
            // The length prefix keeps ("ab","c") and ("a","bc") apart.
            XCTAssertNotEqual(GroupHash.hash(Array("c".utf8), domain: Array("ab".utf8), group: group),
                              GroupHash.hash(Array("bc".utf8), domain: Array("a".utf8), group: group))
        }
    }

    func testBatchOperationsMatchSingleOperationsAndKeepOrder() throws {
        for group in BlindingGroup.allCases {
            let a = CommutativeCipher.random(group: group, domain: "batch")
            let ids = (0..<1000).map { Array("row-\($0)".utf8) }
            let batch = try a.hashAndBlind(batch: ids)
            XCTAssertEqual(batch, try ids.map { try a.hashAndBlind($0) })
            let b = CommutativeCipher.random(group: group, domain: "batch")
            XCTAssertEqual(try b.blind(batch: batch), try batch.map { try b.blind($0) })
        }
    }

    func testBatchFailurePropagatesTheError() throws {
        let a = CommutativeCipher.random(group: .ristretto255, domain: "batch")
        var elements = try (0..<300).map { try a.hashAndBlind(Array("r\($0)".utf8)) }
        elements[217] = try GroupElement(bytes: hexBytes("00ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"))
        XCTAssertThrowsError(try a.blind(batch: elements))
    }

    func testX25519HashedPointsAreNotSmallOrder() throws {
        // The all-zero u-coordinate and other small-order points make X25519 fail; hashed points never do.
        let k = SecretScalar.random(for: .x25519)
        for i in 0..<200 {
            let p = GroupHash.hash(Array("p\(i)".utf8), domain: [], group: .x25519)
            XCTAssertNoThrow(try X25519.multiply(p, by: k))
        }
        XCTAssertThrowsError(try X25519.multiply(GroupElement(w0: 0, w1: 0, w2: 0, w3: 0), by: k))
    }

    func testPackRoundTrip() throws {
        let a = CommutativeCipher.random(group: .ristretto255, domain: "p")
        let values = try (0..<10).map { try a.hashAndBlind(Array("v\($0)".utf8)) }
        XCTAssertEqual(try GroupElement.unpack(GroupElement.pack(values)), values)
        XCTAssertThrowsError(try GroupElement.unpack([UInt8](repeating: 0, count: 33)))
    }

    func testKeyedOrderIsDeterministicPerKeyAndDiffersAcrossKeys() {
        let k1 = KeyedOrder(key: [UInt8](repeating: 1, count: 32))
        let k2 = KeyedOrder(key: [UInt8](repeating: 2, count: 32))
        let ids = (0..<100).map { Array("id\($0)".utf8) }
        func words(_ k: KeyedOrder, _ id: [UInt8]) -> Int64 { id.withUnsafeBytes { k.word(of: $0) } }
        let order1 = ids.sorted { words(k1, $0) < words(k1, $1) }
        let order1again = ids.sorted { words(k1, $0) < words(k1, $1) }
        let order2 = ids.sorted { words(k2, $0) < words(k2, $1) }
        let byValue = ids.sorted { k1.value(of: $0) < k1.value(of: $1) }
        XCTAssertNotEqual(byValue, ids)
        XCTAssertEqual(order1, order1again)
        XCTAssertNotEqual(order1, order2)
        XCTAssertNotEqual(order1, ids)
    }

    func testSecureShuffleIsAPermutation() {
        var a = Array(0..<1000)
        SecureShuffle.shuffle(&a)
        XCTAssertEqual(a.sorted(), Array(0..<1000))
        XCTAssertNotEqual(a, Array(0..<1000))
    }
}
