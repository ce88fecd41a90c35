import XCTest
@testable import MPCCrypto

func hexBytes(_ s: String) -> [UInt8] {
    var out: [UInt8] = []
    var i = s.startIndex
    while i < s.endIndex {
        let j = s.index(i, offsetBy: 2)
        out.append(UInt8(s[i..<j], radix: 16)!)
        i = j
    }
    return out
}

final class Ristretto255Tests: XCTestCase {
    /// RFC 9496, A.1: encodings of 0·B … 15·B.
    static let multiplesOfGenerator = [
        "0000000000000000000000000000000000000000000000000000000000000000",
        "e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76",
        "6a493210f7499cd17fecb510ae0cea23a110e8d5b901f8acadd3095c73a3b919",
        "94741f5d5d52755ece4f23f044ee27d5d1ea1e2bd196b462166b16152a9d0259",
        "da80862773358b466ffadfe0b3293ab3d9fd53c5ea6c955358f568322daf6a57",
        "e882b131016b52c1d3337080187cf768423efccbb517bb495ab812c4160ff44e",
        "f64746d3c92b13050ed8d80236a7f0007c3b3f962f5ba793d19a601ebb1df403",
        "44f53520926ec81fbd5a387845beb7df85a96a24ece18738bdcfa6a7822a176d",
        "903293d8f2287ebe10e2374dc1a53e0bc887e592699f02d077d5263cdd55601c",
        "02622ace8f7303a31cafc63f8fc48fdc16e1c8c8d234b2f0d6685282a9076031",
        "20706fd788b2720a1ed2a5dad4952b01f413bcf0e7564de8cdc816689e2db95f",
        "bce83f8ba5dd2fa572864c24ba1810f9522bc6004afe95877ac73241cafdab42",
        "e4549ee16b9aa03099ca208c67adafcafa4c3f3e4e5303de6026e3ca8ff84460",
        "aa52e000df2e16f55fb1032fc33bc42742dad6bd5a8fc0be0167436c5948501f",
        "46376b80f409b29dc2b5f6f0c52591990896e5716f41477cd30085ab7f10301e",
        "e0c418f7c8d9c4cdd7395b93ea124f3ad99021bb681dfc3302a9d99a2e53e64e",
    ]

    /// RFC 9496, A.3: the one-way map on 64-byte inputs.
    static let oneWayMap: [(String, String)] = [
        ("5d1be09e3d0c82fc538112490e35701979d99e06ca3e2b5b54bffe8b4dc772c14d98b696a1bbfb5ca32c436cc61c16563790306c79eaca7705668b47dffe5bb6",
         "3066f82a1a747d45120d1740f14358531a8f04bbffe6a819f86dfe50f44a0a46"),
        ("f116b34b8f17ceb56e8732a60d913dd10cce47a6d53bee9204be8b44f6678b270102a56902e2488c46120e9276cfe54638286b9e4b3cdb470b542d46c2068d38",
         "f26e5b6f7d362d2d2a94c5d0e7602cb4773c95a2e5c31a64f133189fa76ed61b"),
        ("8422e1bbdaab52938b81fd602effb6f89110e1e57208ad12d9ad767e2e25510c27140775f9337088b982d83d7fcf0b2fa1edffe51952cbe7365e95c86eaf325c",
         "006ccd2a9e6867e6a2c5cea83d3302cc9de128dd2a9a57dd8ee7b9d7ffe02826"),
        ("ac22415129b61427bf464e17baee8db65940c233b98afce8d17c57beeb7876c2150d15af1cb1fb824bbd14955f2b57d08d388aab431a391cfc33d5bafb5dbbaf",
         "f8f0c87cf237953c5890aec3998169005dae3eca1fbb04548c635953c817f92a"),
        ("165d697a1ef3d5cf3c38565beefcf88c0f282b8e7dbd28544c483432f1cec7675debea8ebb4e5fe7d6f6e5db15f15587ac4d4d4a1de7191e0c1ca6664abcc413",
         "ae81e7dedf20a497e10c304a765c1767a42d6e06029758d2d7e8ef7cc4c41179"),
        ("a836e6c9a9ca9f1e8d486273ad56a78c70cf18f0ce10abb1c7172ddd605d7fd2979854f47ae1ccf204a33102095b4200e5befc0465accc263175485f0e17ea5c",
         "e2705652ff9f5e44d3e841bf1c251cf7dddb77d140870d1ab2ed64f1a9ce8628"),
        ("2cdc11eaeb95daf01189417cdddbf95952993aa9cb9c640eb5058d09702c74622c9965a697a3b345ec24ee56335b556e677b30e6f90ac77d781064f866a3c982",
         "80bd07262511cdde4863f8a7434cef696750681cb9510eea557088f76d9e5065"),
    ]

    /// RFC 9496, A.2: some encodings that must be rejected.
    static let invalidEncodings = [
        "00ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",  // non-canonical field element
        "0100000000000000000000000000000000000000000000000000000000000000",  // negative field element
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  // s = -1, which gives y = 0
    ]

    func scalar(_ n: Int) throws -> SecretScalar {
        var bytes = [UInt8](repeating: 0, count: 32)
        bytes[0] = UInt8(n)
        return try SecretScalar(littleEndianBytes: bytes)
    }

    func testMultiplesOfGeneratorMatchRFC9496() throws {
        let b = try GroupElement(bytes: hexBytes(Ristretto255.generatorHex))
        for n in 1..<16 {
            XCTAssertEqual(try Ristretto255.multiplyGenerator(by: scalar(n)).hex, Self.multiplesOfGenerator[n], "\(n)·B (base)")
            XCTAssertEqual(try Ristretto255.multiply(b, by: scalar(n)).hex, Self.multiplesOfGenerator[n], "\(n)·B")
        }
        XCTAssertThrowsError(try Ristretto255.multiply(b, by: scalar(0))) { error in
            XCTAssertEqual(error as? CryptoError, .identityResult)
        }
    }

    func testOneWayMapMatchesRFC9496() throws {
        for (input, expected) in Self.oneWayMap {
            XCTAssertEqual(try Ristretto255.fromUniformBytes(hexBytes(input)).hex, expected)
        }
    }

    func testInvalidEncodingsAreRejected() throws {
        for bad in Self.invalidEncodings {
            let e = try GroupElement(bytes: hexBytes(bad))
            XCTAssertFalse(Ristretto255.isValid(e), bad)
            XCTAssertThrowsError(try Ristretto255.multiply(e, by: scalar(3))) { error in
                guard case .invalidGroupElement = error as? CryptoError else { return XCTFail("\(error)") }
            }
        }
        XCTAssertThrowsError(try GroupElement(bytes: [UInt8](repeating: 1, count: 31)))
    }
}
