import XCTest
@testable import MPCCrypto

final class MultiPartyPrimitiveTests: XCTestCase {
    /// The ring mask's finish undoes its start and applies the key: finish(start(x)) = key(x), through
    /// any number of other keys in between, in both groups, for many random keys (X25519 redraws).
    func testRingMaskFinishesWithTheKey() throws {
        for group in BlindingGroup.allCases {
            for round in 0..<40 {
                let own = CommutativeCipher.random(group: group, domain: "job-ring")
                let others = (0..<2).map { _ in CommutativeCipher.random(group: group, domain: "job-ring") }
                let (start, finish) = own.ringMask()
                let id = Array("customer-\(round)".utf8)
                var chain = try start.hashAndBlind(id)
                XCTAssertNotEqual(chain, try own.hashAndBlind(id), "\(group): the start is not the key")
                for o in others { chain = try o.blind(chain) }
                var expected = try own.hashAndBlind(id)
                for o in others { expected = try o.blind(expected) }
                XCTAssertEqual(try finish.blind(chain), expected, "\(group) round \(round)")
            }
        }
    }

    func testRingMasksAreFresh() throws {
        for group in BlindingGroup.allCases {
            let own = CommutativeCipher.random(group: group, domain: "job-ring")
            let a = own.ringMask(), b = own.ringMask()
            let id = Array("x".utf8)
            XCTAssertNotEqual(try a.start.hashAndBlind(id), try b.start.hashAndBlind(id))
        }
    }

    func testSealedBoxesOpenOnlyWithTheRecipientKeyAndAreRandomised() throws {
        let recipient = KeyAgreementKeyPair.generate()
        let other = KeyAgreementKeyPair.generate()
        let message = (0..<32).map { UInt8($0 * 7 & 0xff) }
        let a = try SealedBox.seal(message, to: recipient.publicKey)
        let b = try SealedBox.seal(message, to: recipient.publicKey)
        XCTAssertEqual(a.count, 80)
        XCTAssertNotEqual(a, b, "equal messages give unequal boxes")
        XCTAssertEqual(try SealedBox.open(a, with: recipient), message)
        XCTAssertEqual(try SealedBox.open(b, with: recipient), message)
        XCTAssertThrowsError(try SealedBox.open(a, with: other))
        var tampered = a
        tampered[50] ^= 1
        XCTAssertThrowsError(try SealedBox.open(tampered, with: recipient))
        XCTAssertThrowsError(try SealedBox.open(a.prefix(60), with: recipient))
    }
}
