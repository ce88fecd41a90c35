import Foundation
import MPCCrypto
import MPCTestSupport
import XCTest
@testable import MPCProtocols

final class PseudonymRingTests: XCTestCase {
    func runRing(_ sets: [[String]], group: BlindingGroup = .x25519) async throws -> (sources: [ArrayIdentifierSource], pseudonyms: [[GroupElement]], wire: [UInt8]) {
        let names = sets.indices.map { "owner-\($0)" }
        let wire = WireLog()
        var toNext: [any MessageChannel] = [], fromPrevious: [any MessageChannel] = Array(repeating: InMemoryChannel.pair("x", "y").0, count: names.count)
        for i in names.indices {
            let (a, b) = InMemoryChannel.pair(names[i], names[(i + 1) % names.count], tap: { wire.append($0, $1) })
            toNext.append(a)
            fromPrevious[(i + 1) % names.count] = b
        }
        let sources = sets.map { ArrayIdentifierSource($0) }
        let config = PseudonymRingParty.Configuration(jobID: "job-ring", group: group, ring: names, batchSize: 64)
        let results = try await withThrowingTaskGroup(of: (Int, [GroupElement]).self) { group in
            for i in names.indices {
                let party = PseudonymRingParty(configuration: config, me: names[i], source: sources[i], toNext: toNext[i], fromPrevious: fromPrevious[i])
                group.addTask { (i, try await party.run().pseudonyms) }
            }
            var out = Array(repeating: [GroupElement](), count: names.count)
            for try await (i, r) in group { out[i] = r }
            return out
        }
        return (sources, results, wire.entries.flatMap(\.bytes))
    }

    func testJointPseudonymsAgreeExactlyOnSharedIdentifiers() async throws {
        var rng = SplitMix(state: 3)
        let sets = (0..<4).map { _ in (0..<300).map { _ in "acct-\(Int.random(in: 0..<800, using: &rng))" } }
        let r = try await runRing(sets)
        var byIdentifier: [String: Set<GroupElement>] = [:]
        for (i, source) in r.sources.enumerated() {
            XCTAssertEqual(r.pseudonyms[i].count, source.count)
            for (p, id) in source.values.enumerated() { byIdentifier[String(decoding: id, as: UTF8.self), default: []].insert(r.pseudonyms[i][p]) }
        }
        // Every identifier has one pseudonym whoever holds it, and distinct identifiers have distinct ones.
        XCTAssertTrue(byIdentifier.values.allSatisfy { $0.count == 1 })
        XCTAssertEqual(Set(byIdentifier.values.map { $0.first! }).count, byIdentifier.count)
        // Pairwise: pseudonym sets intersect exactly where the plain sets do.
        for i in 0..<4 {
            for j in (i + 1)..<4 {
                let plain = Set(sets[i]).intersection(Set(sets[j])).count
                XCTAssertEqual(Set(r.pseudonyms[i]).intersection(Set(r.pseudonyms[j])).count, plain, "\(i)×\(j)")
            }
        }
        // Nothing in the clear on the wire.
        let wire = WireIndex(r.wire)
        for id in Set(sets.flatMap { $0 }) {
            XCTAssertFalse(wire.contains(Array(id.utf8)), id)
            for h in PlainHashes.of(Array(id.utf8)) { XCTAssertFalse(wire.contains(h)) }
        }
    }

    func testTwoOwnersAndEmptySets() async throws {
        let r = try await runRing([["a", "b"], [], ["b", "c"]], group: .ristretto255)
        XCTAssertEqual(r.pseudonyms[1], [])
        XCTAssertEqual(Set(r.pseudonyms[0]).intersection(Set(r.pseudonyms[2])).count, 1)
        let two = try await runRing([["x"], ["x", "y"]])
        XCTAssertEqual(Set(two.pseudonyms[0]).intersection(Set(two.pseudonyms[1])).count, 1)
    }
}
