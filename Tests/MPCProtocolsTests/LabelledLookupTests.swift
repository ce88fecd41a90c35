import Foundation
import MPCCrypto
import MPCTestSupport
import XCTest
@testable import MPCProtocols

/// Labelled lookups against a holder's table (Protocols/list-lookup.md), in memory: answers equal plain
/// membership with labels, a colliding tag is told apart by its label, and what the querier sends holds
/// no key and no plain hash of one.
final class LabelledLookupTests: XCTestCase {
    func testLookupsEqualPlainMembershipWithLabels() throws {
        var rng = SplitMix(state: 12)
        var list: [String: String] = [:]
        while list.count < 2000 { list["4477\(String(format: "%08d", Int(rng.next() % 100_000_000)))"] = ["high", "medium", "low"][Int(rng.next() % 3)] }
        let key = try OPRF.deriveKey(seed: (0..<32).map { UInt8($0) }, info: Array("bank-a/blacklist".utf8))
        let context = LabelledLookup.context(holder: "bank-a", list: "blacklist", keyID: "k1")
        let table = try LabelledLookup.table(list.map { (Array($0.key.utf8), Array($0.value.utf8)) }, key: key, context: context)
        let index = LabelledLookup.Index(table)
        XCTAssertEqual(index.count, 2000)
        let listed = Array(list.keys.prefix(100))
        var unlisted: [String] = []
        while unlisted.count < 100 {
            let k = "4478\(String(format: "%08d", Int(rng.next() % 100_000_000)))"
            if list[k] == nil { unlisted.append(k) }
        }
        var sent: [UInt8] = []
        for k in listed + unlisted {
            let query = try LabelledLookup.Query(key: Array(k.utf8))
            sent += query.blinded.element.bytes
            let evaluated = try LabelledLookup.evaluate([query.blinded.element], key: key)[0]
            let label = try query.label(evaluated: evaluated, index: index, table: table, context: context)
            XCTAssertEqual(label.map { String(decoding: $0, as: UTF8.self) }, list[k], k)
        }
        // What the querier sent: blinded elements only, no key nor a plain hash of one.
        let wire = WireIndex(sent)
        for k in listed + unlisted {
            XCTAssertFalse(wire.contains(Array(k.utf8)))
            for hash in PlainHashes.of(Array(k.utf8)) { XCTAssertFalse(wire.contains(hash)) }
        }
        // A label moved to another list's context does not open: the lookup says "not listed".
        let other = LabelledLookup.context(holder: "bank-a", list: "greylist", keyID: "k1")
        let q = try LabelledLookup.Query(key: Array(listed[0].utf8))
        XCTAssertNil(try q.label(evaluated: try OPRF.evaluate(q.blinded.element, key: key), index: index, table: table, context: other))
    }

    /// An entry whose tag equals the key's but whose label was sealed for another key (a 64-bit collision,
    /// or a forged entry) is not taken for a hit.
    func testACollidingTagIsToldApartByItsLabel() throws {
        let key = try OPRF.deriveKey(seed: [UInt8](repeating: 7, count: 32), info: [])
        let context = LabelledLookup.context(holder: "bank-a", list: "blacklist", keyID: "k1")
        let asked = Array("447700900123".utf8)
        let (tag, _) = LabelledLookup.split(try OPRF.output(asked, key: key))
        let (_, otherKey) = LabelledLookup.split(try OPRF.output(Array("447700900999".utf8), key: key))
        let forged = LabelledLookup.Entry(tag: tag, label: ShareEncryption.seal(Array("high".utf8), key: otherKey, associatedData: context))
        let index = LabelledLookup.Index([forged])
        XCTAssertEqual(index.rows(for: tag), [0])
        let q = try LabelledLookup.Query(key: asked)
        XCTAssertNil(try q.label(evaluated: try OPRF.evaluate(q.blinded.element, key: key), index: index, table: [forged], context: context))
    }

    /// Keys blinded together (one inversion for the batch) give the same tags and label keys as alone; a
    /// holder's answer that is not a valid element, or is the identity, is refused when it is unblinded.
    func testKeysBlindedTogetherGiveTheSameOutputsAndInvalidAnswersAreRefused() throws {
        let key = try OPRF.deriveKey(seed: [UInt8](repeating: 3, count: 32), info: [])
        let keys = (0..<40).map { Array("44770090\(String(format: "%04d", $0))".utf8) }
        let queries = try LabelledLookup.Query.shared(for: keys)
        XCTAssertEqual(queries.map(\.key), keys)
        XCTAssertEqual(Set(queries.map(\.blinded.element)).count, keys.count)
        let answers = try LabelledLookup.evaluate(queries.map(\.blinded.element), key: key)
        for (q, a) in zip(queries, answers) {
            let out = try q.output(evaluated: a)
            let expected = LabelledLookup.split(try OPRF.output(q.key, key: key))
            XCTAssertEqual(out.tag, expected.tag)
            XCTAssertEqual(out.labelKey, expected.labelKey)
        }
        XCTAssertThrowsError(try queries[0].output(evaluated: GroupElement(w0: .max, w1: .max, w2: .max, w3: .max)))
        XCTAssertThrowsError(try queries[0].output(evaluated: Ristretto255.identity))
    }

    func testTheHolderRefusesInvalidBlindedElements() throws {
        let key = try OPRF.deriveKey(seed: [UInt8](repeating: 1, count: 32), info: [])
        XCTAssertThrowsError(try LabelledLookup.evaluate([Ristretto255.identity], key: key))
        XCTAssertThrowsError(try LabelledLookup.evaluate([GroupElement(w0: .max, w1: .max, w2: .max, w3: .max)], key: key))
    }
}
