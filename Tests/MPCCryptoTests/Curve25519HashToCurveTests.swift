import CCurve25519
@testable import MPCCrypto
import XCTest

/// RFC 9380's test vectors for curve25519_XMD:SHA-512_ELL2_RO_ (appendix J.7.1) and _NU_ (J.7.2): the
/// field elements from `expand_message_xmd`, each Elligator 2 map's point, and the final point — which
/// is ours after the cofactor 8 is applied by three doublings (X25519's clamping applies it in use).
final class Curve25519HashToCurveTests: XCTestCase {
    static let q128 = "q128_" + String(repeating: "q", count: 128)
    static let a512 = "a512_" + String(repeating: "a", count: 512)

    struct RandomOracleVector { var msg: String, px: String, u0: String, u1: String, q0x: String, q0y: String, q1x: String, q1y: String }
    static let randomOracle: [RandomOracleVector] = [
        .init(msg: "", px: "2de3780abb67e861289f5749d16d3e217ffa722192d16bbd9d1bfb9d112b98c0",
              u0: "005fe8a7b8fef0a16c105e6cadf5a6740b3365e18692a9c05bfbb4d97f645a6a", u1: "1347edbec6a2b5d8c02e058819819bee177077c9d10a4ce165aab0fd0252261a",
              q0x: "36b4df0c864c64707cbf6cf36e9ee2c09a6cb93b28313c169be29561bb904f98", q0y: "6cd59d664fb58c66c892883cd0eb792e52055284dac3907dd756b45d15c3983d",
              q1x: "3fa114783a505c0b2b2fbeef0102853c0b494e7757f2a089d0daae7ed9a0db2b", q1y: "76c0fe7fec932aaafb8eefb42d9cbb32eb931158f469ff3050af15cfdbbeff94"),
        .init(msg: "abc", px: "2b4419f1f2d48f5872de692b0aca72cc7b0a60915dd70bde432e826b6abc526d",
              u0: "49bed021c7a3748f09fa8cdfcac044089f7829d3531066ac9e74e0994e05bc7d", u1: "5c36525b663e63389d886105cee7ed712325d5a97e60e140aba7e2ce5ae851b6",
              q0x: "16b3d86e056b7970fa00165f6f48d90b619ad618791661b7b5e1ec78be10eac1", q0y: "4ab256422d84c5120b278cbdfc4e1facc5baadffeccecf8ee9bf3946106d50ca",
              q1x: "7ec29ddbf34539c40adfa98fcb39ec36368f47f30e8f888cc7e86f4d46e0c264", q1y: "10d1abc1cae2d34c06e247f2141ba897657fb39f1080d54f09ce0af128067c74"),
        .init(msg: "abcdef0123456789", px: "68ca1ea5a6acf4e9956daa101709b1eee6c1bb0df1de3b90d4602382a104c036",
              u0: "6412b7485ba26d3d1b6c290a8e1435b2959f03721874939b21782df17323d160", u1: "24c7b46c1c6d9a21d32f5707be1380ab82db1054fde82865d5c9e3d968f287b2",
              q0x: "71de3dadfe268872326c35ac512164850860567aea0e7325e6b91a98f86533ad", q0y: "26a08b6e9a18084c56f2147bf515414b9b63f1522e1b6c5649f7d4b0324296ec",
              q1x: "5704069021f61e41779e2ba6b932268316d6d2a6f064f997a22fef16d1eaeaca", q1y: "50483c7540f64fb4497619c050f2c7fe55454ec0f0e79870bb44302e34232210"),
        .init(msg: q128, px: "096e9c8bae6c06b554c1ee69383bb0e82267e064236b3a30608d4ed20b73ac5a",
              u0: "5e123990f11bbb5586613ffabdb58d47f64bb5f2fa115f8ea8df0188e0c9e1b5", u1: "5e8553eb00438a0bb1e7faa59dec6d8087f9c8011e5fb8ed9df31cb6c0d4ac19",
              q0x: "7a94d45a198fb5daa381f45f2619ab279744efdd8bd8ed587fc5b65d6cea1df0", q0y: "67d44f85d376e64bb7d713585230cdbfafc8e2676f7568e0b6ee59361116a6e1",
              q1x: "30506fb7a32136694abd61b6113770270debe593027a968a01f271e146e60c18", q1y: "7eeee0e706b40c6b5174e551426a67f975ad5a977ee2f01e8e20a6d612458c3b"),
        .init(msg: a512, px: "1bc61845a138e912f047b5e70ba9606ba2a447a4dade024c8ef3dd42b7bbc5fe",
              u0: "20f481e85da7a3bf60ac0fb11ed1d0558fc6f941b3ac5469aa8b56ec883d6d7d", u1: "017d57fd257e9a78913999a23b52ca988157a81b09c5442501d07fed20869465",
              q0x: "02d606e2699b918ee36f2818f2bc5013e437e673c9f9b9cdc15fd0c5ee913970", q0y: "29e9dc92297231ef211245db9e31767996c5625dfbf92e1c8107ef887365de1e",
              q1x: "38920e9b988d1ab7449c0fa9a6058192c0c797bb3d42ac345724341a1aa98745", q1y: "24dcc1be7c4d591d307e89049fd2ed30aae8911245a9d8554bf6032e5aa40d3d"),
    ]

    struct EncodingVector { var msg: String, px: String, u0: String, qx: String, qy: String }
    static let encoding: [EncodingVector] = [
        .init(msg: "", px: "1bb913f0c9daefa0b3375378ffa534bda5526c97391952a7789eb976edfe4d08", u0: "608d892b641f0328523802a6603427c26e55e6f27e71a91a478148d45b5093cd",
              qx: "51125222da5e763d97f3c10fcc92ea6860b9ccbbd2eb1285728f566721c1e65b", qy: "343d2204f812d3dfc5304a5808c6c0d81a903a5d228b342442aa3c9ba5520a3d"),
        .init(msg: "abc", px: "7c22950b7d900fa866334262fcaea47a441a578df43b894b4625c9b450f9a026", u0: "46f5b22494bfeaa7f232cc8d054be68561af50230234d7d1d63d1d9abeca8da5",
              qx: "7d56d1e08cb0ccb92baf069c18c49bb5a0dcd927eff8dcf75ca921ef7f3e6eeb", qy: "404d9a7dc25c9c05c44ab9a94590e7c3fe2dcec74533a0b24b188a5d5dacf429"),
        .init(msg: "abcdef0123456789", px: "31ad08a8b0deeb2a4d8b0206ca25f567ab4e042746f792f4b7973f3ae2096c52", u0: "235fe40c443766ce7e18111c33862d66c3b33267efa50d50f9e8e5d252a40aaa",
              qx: "3fbe66b9c9883d79e8407150e7c2a1c8680bee496c62fabe4619a72b3cabe90f", qy: "08ec476147c9a0a3ff312d303dbbd076abb7551e5fce82b48ab14b433f8d0a7b"),
        .init(msg: q128, px: "027877759d155b1997d0d84683a313eb78bdb493271d935b622900459d52ceaa", u0: "001e92a544463bda9bd04ddbe3d6eed248f82de32f522669efc5ddce95f46f5b",
              qx: "227e0bb89de700385d19ec40e857db6e6a3e634b1c32962f370d26f84ff19683", qy: "5f86ff3851d262727326a32c1bf7655a03665830fa7f1b8b1e5a09d85bc66e4a"),
        .init(msg: a512, px: "5fd892c0958d1a75f54c3182a18d286efab784e774d1e017ba2fb252998b5dc1", u0: "1a68a1af9f663592291af987203393f707305c7bac9c8d63d6a729bdc553dc19",
              qx: "3bcd651ee54d5f7b6013898aab251ee8ecc0688166fce6e9548d38472f6bd196", qy: "1bb36ad9197299f111b4ef21271c41f4b7ecf5543db8bb5931307ebdb2eaa465"),
    ]

    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
    /// Three doublings (the cofactor 8) of a little-endian u-coordinate, printed big-endian.
    static func timesEight(_ u: [UInt8]) -> String {
        hex(Array(Curve25519HashToCurve.double(u: Curve25519HashToCurve.double(u: Curve25519HashToCurve.double(u: u)))).reversed())
    }

    func testRandomOracleSuiteVectors() throws {
        let dst = Array("QUUX-V01-CS02-with-curve25519_XMD:SHA-512_ELL2_RO_".utf8)
        for v in Self.randomOracle {
            let uniform = Curve25519HashToCurve.expandMessageXMD(Array(v.msg.utf8), dst: dst, length: 96)
            XCTAssertEqual(Self.hex(Curve25519HashToCurve.fieldElement(fromUniform: Array(uniform[0..<48]))), v.u0, "u0 of '\(v.msg.prefix(8))'")
            XCTAssertEqual(Self.hex(Curve25519HashToCurve.fieldElement(fromUniform: Array(uniform[48..<96]))), v.u1, "u1 of '\(v.msg.prefix(8))'")
            let q0 = Curve25519HashToCurve.map(fieldElement: Self.bytes(v.u0)), q1 = Curve25519HashToCurve.map(fieldElement: Self.bytes(v.u1))
            XCTAssertEqual(Self.hex(q0.u), v.q0x); XCTAssertEqual(Self.hex(q0.v), v.q0y)
            XCTAssertEqual(Self.hex(q1.u), v.q1x); XCTAssertEqual(Self.hex(q1.v), v.q1y)
            let u = try XCTUnwrap(Curve25519HashToCurve.hashToCurveU(Array(v.msg.utf8), dst: dst))
            XCTAssertEqual(Self.timesEight(u), v.px, "P of '\(v.msg.prefix(8))'")
        }
    }

    func testEncodingSuiteVectors() {
        let dst = Array("QUUX-V01-CS02-with-curve25519_XMD:SHA-512_ELL2_NU_".utf8)
        for v in Self.encoding {
            let uniform = Curve25519HashToCurve.expandMessageXMD(Array(v.msg.utf8), dst: dst, length: 48)
            XCTAssertEqual(Self.hex(Curve25519HashToCurve.fieldElement(fromUniform: uniform)), v.u0)
            let q = Curve25519HashToCurve.map(fieldElement: Self.bytes(v.u0))
            XCTAssertEqual(Self.hex(q.u), v.qx); XCTAssertEqual(Self.hex(q.v), v.qy)
            XCTAssertEqual(Self.timesEight(Array(Self.bytes(v.qx).reversed())), v.px)
        }
    }

    /// Hashed points blind commutatively with X25519, equal inputs meet and a long DST is hashed first.
    func testHashedPointsBlindCommutativelyAndLongDSTsAreHashed() throws {
        let a = SecretScalar.random(for: .x25519), b = SecretScalar.random(for: .x25519)
        for i in 0..<50 {
            let u = try XCTUnwrap(Curve25519HashToCurve.hashToCurveU(Array("+44 7700 900\(i)".utf8), dst: Array("test".utf8)))
            let point = u.withUnsafeBytes { GroupElement(loadingFrom: $0.baseAddress!) }
            XCTAssertEqual(try X25519.multiply(X25519.multiply(point, by: a), by: b), try X25519.multiply(X25519.multiply(point, by: b), by: a))
        }
        let long = [UInt8](repeating: 0x41, count: 300)
        XCTAssertEqual(Curve25519HashToCurve.effectiveDST(long).count, 64)
        XCTAssertNotEqual(Curve25519HashToCurve.hashToCurveU([1], dst: long), Curve25519HashToCurve.hashToCurveU([1], dst: Array(long.prefix(299))))
    }

    /// The batch path (one inversion for many) gives the single path's bytes, on the RFC's messages and
    /// 300 more, and GroupHash's batch equals its one-by-one hash.
    func testBatchesEqualSingleHashes() throws {
        let dst = Array("QUUX-V01-CS02-with-curve25519_XMD:SHA-512_ELL2_RO_".utf8)
        let hasher = Curve25519HashToCurve.Hasher(dst: dst)
        let messages = Self.randomOracle.map { Array($0.msg.utf8) } + (0..<300).map { Array("id-\($0)".utf8) }
        let batch = hasher.hashToCurveU(batch: messages)
        XCTAssertEqual(batch, messages.map { hasher.hashToCurveU($0)! })
        XCTAssertEqual(Self.timesEight(batch[1]), Self.randomOracle[1].px)
        let ids = (0..<1000).map { Array("+86 138 0000 \($0)".utf8) }
        XCTAssertEqual(try GroupHash.hash(batch: ids, domain: Array("job-1".utf8), group: .x25519),
                       ids.map { GroupHash.hash($0, domain: Array("job-1".utf8), group: .x25519) })
        // The generic arithmetic gives the same bytes as the one in use (BMI2/ADX on most x86-64).
        for message in messages {
            let uniform = Curve25519HashToCurve.expandMessageXMD(message, dst: dst, length: 96)
            var generic = [UInt8](repeating: 0, count: 32)
            XCTAssertEqual(mpc_c25519_generic_hash_u(&generic, uniform), 0)
            XCTAssertEqual(generic, hasher.hashToCurveU(message))
        }
        print("CCurve25519 arithmetic in use: \(mpc_curve25519_uses_bmi2() == 1 ? "BMI2/ADX" : "generic")")
    }

    static func bytes(_ hex: String) -> [UInt8] {
        var out: [UInt8] = [], chars = Array(hex)
        while chars.count >= 2 { out.append(UInt8(String(chars[0..<2]), radix: 16)!); chars.removeFirst(2) }
        return out
    }
}
