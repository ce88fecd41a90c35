import XCTest
@testable import MPCCrypto

/// RFC 9497's OPRF(ristretto255, SHA-512), base mode, against the RFC's own test vectors (Appendix A.1.1).
final class OPRFTests: XCTestCase {
    static let seed = hexBytes(String(repeating: "a3", count: 32))
    static let keyInfo = hexBytes("74657374206b6579")  // "test key"
    static let key = "5ebcea5ee37023ccb9fc2d2019f9d7737be85591ae8652ffa9ef0f4d37063b0e"
    static let blind = "64d37aed22a27f5191de1c1d69fadb899d8862b58eb4220029e036ec4c1f6706"
    static let vectors: [(input: String, blinded: String, evaluated: String, output: String)] = [
        ("00", "609a0ae68c15a3cf6903766461307e5c8bb2f95e7e6550e1ffa2dc99e412803c",
         "7ec6578ae5120958eb2db1745758ff379e77cb64fe77b0b2d8cc917ea0869c7e",
         "527759c3d9366f277d8c6020418d96bb393ba2afb20ff90df23fb7708264e2f3ab9135e3bd69955851de4b1f9fe8a0973396719b7912ba9ee8aa7d0b5e24bcf6"),
        ("5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a", "da27ef466870f5f15296299850aa088629945a17d1f5b7f5ff043f76b3c06418",
         "b4cbf5a4f1eeda5a63ce7b77c7d23f461db3fcab0dd28e4e17cecb5c90d02c25",
         "f4a74c9c592497375e796aa837e907b1a045d34306a749db9f34221f7e750cb4f2a6413a6bf6fa5e19ba6348eb673934a722a7ede2e7621306d18951e7cf2c73"),
    ]

    func testDeriveKeyPairMatchesTheRFC() throws {
        let key = try OPRF.deriveKey(seed: Self.seed, info: Self.keyInfo)
        XCTAssertEqual(key.bytes.hex, Self.key)
    }

    func testBlindEvaluateFinalizeMatchTheRFC() throws {
        let key = try SecretScalar(littleEndianBytes: hexBytes(Self.key))
        let blind = try SecretScalar(littleEndianBytes: hexBytes(Self.blind))
        for v in Self.vectors {
            let input = hexBytes(v.input)
            let blinded = try OPRF.blind(input, with: blind)
            XCTAssertEqual(blinded.element.hex, v.blinded, v.input)
            let evaluated = try OPRF.evaluate(blinded.element, key: key)
            XCTAssertEqual(evaluated.hex, v.evaluated, v.input)
            XCTAssertEqual(try OPRF.finalize(input, blind: blind, evaluated: evaluated), hexBytes(v.output), v.input)
            // The holder's own evaluation of its entries gives the same output.
            XCTAssertEqual(try OPRF.output(input, key: key), hexBytes(v.output), v.input)
        }
    }

    func testFreshBlindsHideTheInputAndGiveTheSameOutput() throws {
        let key = try OPRF.deriveKey(seed: Self.seed, info: [])
        let input = Array("447700900123".utf8)
        let a = try OPRF.blind(input), b = try OPRF.blind(input)
        XCTAssertNotEqual(a.element, b.element, "two lookups of one key look unrelated to the holder")
        let outA = try OPRF.finalize(input, blind: a.blind, evaluated: try OPRF.evaluate(a.element, key: key))
        let outB = try OPRF.finalize(input, blind: b.blind, evaluated: try OPRF.evaluate(b.element, key: key))
        XCTAssertEqual(outA, outB)
        XCTAssertEqual(outA, try OPRF.output(input, key: key))
        // A holder's answer to an invalid or identity element is refused.
        XCTAssertThrowsError(try OPRF.evaluate(Ristretto255.identity, key: key))
        XCTAssertThrowsError(try OPRF.evaluate(GroupElement(w0: .max, w1: .max, w2: .max, w3: .max), key: key))
    }

    func testBlindsInvertedTogetherEqualEachInvertedAlone() throws {
        let blinds = (0..<37).map { _ in SecretScalar.random(for: .ristretto255) }
        let together = try OPRF.inverses(of: blinds)
        XCTAssertEqual(together.count, blinds.count)
        for (blind, inverse) in zip(blinds, together) {
            XCTAssertEqual(inverse.bytes.bytes, try OPRF.inverse(of: blind).bytes.bytes)
        }
        XCTAssertEqual(try OPRF.inverses(of: [blinds[0]]).map(\.bytes.bytes), [try OPRF.inverse(of: blinds[0]).bytes.bytes])
        XCTAssertEqual(try OPRF.inverses(of: []).count, 0)
        // And unblinding with them gives the key's output.
        let key = try OPRF.deriveKey(seed: Self.seed, info: [])
        let input = Array("447700900123".utf8)
        let blinded = try OPRF.blind(input)
        let inverse = try OPRF.inverses(of: [blinds[1], blinded.blind, blinds[2]])[1]
        XCTAssertEqual(try OPRF.finalize(input, inverseBlind: inverse, evaluated: try OPRF.evaluate(blinded.element, key: key)),
                       try OPRF.output(input, key: key))
    }
}
