import XCTest
@testable import MPCCrypto

/// The pieces of OT extension (Protocols/psi-oprf.md): base OTs, the bit-matrix transpose, the
/// ChaCha20 column streams at an offset, and the code words.
final class OTExtensionTests: XCTestCase {
    func testBaseOTGivesTheReceiverExactlyTheChosenKey() throws {
        let senderSeed = BucketKey.randomBytes(32), receiverSeed = BucketKey.randomBytes(32)
        let domain = Array("test-domain".utf8)
        let sender = try BaseOT.Sender(seed: senderSeed, label: "0/0", domain: domain)
        let choices = (0..<64).map { $0 % 3 == 0 }
        let (points, keys) = try BaseOT.choose(choices, senderPoint: sender.point, seed: receiverSeed, label: "0/0", domain: domain)
        let pairs = try sender.keys(for: points)
        for i in 0..<choices.count {
            XCTAssertEqual(keys[i], choices[i] ? pairs[i].one : pairs[i].zero, "transfer \(i)")
            XCTAssertNotEqual(keys[i], choices[i] ? pairs[i].zero : pairs[i].one, "transfer \(i): the other key differs")
        }
        // Deterministic in the seeds (a redone bucket repeats its messages).
        let again = try BaseOT.choose(choices, senderPoint: sender.point, seed: receiverSeed, label: "0/0", domain: domain)
        XCTAssertEqual(again.points, points)
        XCTAssertEqual(try BaseOT.Sender(seed: senderSeed, label: "0/0", domain: domain).point, sender.point)
        // An invalid or identity point is refused.
        XCTAssertThrowsError(try BaseOT.choose(choices, senderPoint: Ristretto255.identity, seed: receiverSeed, label: "x", domain: domain))
        XCTAssertThrowsError(try sender.keys(for: [GroupElement(w0: 1, w1: 2, w2: 3, w3: UInt64.max)]))
    }

    func testTransposeMatchesTheDefinition() {
        var rng = SystemRandomNumberGenerator()
        for (rows, cols) in [(8, 8), (16, 512), (512, 2048), (24, 40)] {
            let matrix = (0..<(rows * cols / 8)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let t = BitMatrix.transpose(matrix, rows: rows, cols: cols)
            func bit(_ m: [UInt8], _ r: Int, _ c: Int, _ width: Int) -> UInt8 { (m[r * width / 8 + c / 8] >> UInt8(c % 8)) & 1 }
            for _ in 0..<2000 {
                let r = Int.random(in: 0..<rows), c = Int.random(in: 0..<cols)
                XCTAssertEqual(bit(t, c, r, rows), bit(matrix, r, c, cols), "\(rows)×\(cols) at (\(r), \(c))")
            }
            XCTAssertEqual(BitMatrix.transpose(t, rows: cols, cols: rows), matrix, "transposing twice gives the matrix back")
        }
    }

    func testStreamAtAnOffsetIsThatPartOfTheWholeStream() {
        let key = BucketKey.randomBytes(32)
        var whole = [UInt8](repeating: 0, count: 1024)
        whole.withUnsafeMutableBytes { b in key.withUnsafeBytes { BitMatrix.xorStream(key: $0, firstByte: 0, into: b) } }
        var part = [UInt8](repeating: 0, count: 256)
        part.withUnsafeMutableBytes { b in key.withUnsafeBytes { BitMatrix.xorStream(key: $0, firstByte: 512, into: b) } }
        XCTAssertEqual(part, Array(whole[512..<768]))
        XCTAssertNotEqual(whole, [UInt8](repeating: 0, count: 1024))
    }

    func testCodeWordsDependOnTheJobAndAreSpreadOverTheBins() {
        let ids = (0..<4000).map { Array("id-\($0)".utf8) }
        let code = PseudorandomCode(jobID: "job-1")
        let words = code.codewords(ids)
        XCTAssertEqual(words.count, 4000 * 64)
        XCTAssertEqual(Array(words[64..<128]), code.codewords([ids[1]]), "batch and single agree")
        XCTAssertNotEqual(Array(words[0..<64]), PseudorandomCode(jobID: "job-2").codewords([ids[0]]))
        let hash = CuckooHash(bins: 5120, attempt: 0)
        var counts = [Int](repeating: 0, count: 5120)
        words.withUnsafeBytes { w in for e in 0..<4000 { counts[hash.bin(0, codeword: w.baseAddress! + 64 * e)] += 1 } }
        XCTAssertLessThan(counts.max()!, 12, "no bin takes a crowd")
    }
}
