import XCTest
import MPCCrypto
import MPCTestSupport
@testable import MPCProtocols

/// PSI in memory against a plain set intersection.
final class PSIPartyTests: XCTestCase {
    struct Outcome {
        var a: PSIParty.Report
        var b: PSIParty.Report
        var sourceA: ArrayIdentifierSource
        var sourceB: ArrayIdentifierSource
        var wire: [(sender: String, bytes: [UInt8])]
    }

    func runPSI(_ setA: [String], _ setB: [String], aReceives: Bool = true, bReceives: Bool = false,
                cardinalityOnly: Bool = false, group: BlindingGroup = .ristretto255, batchSize: Int = 64,
                peerPositions: Bool = false) async throws -> Outcome {
        let wire = WireLog()
        let (ca, cb) = InMemoryChannel.pair("bank-a", "bank-b", tap: { wire.append($0, $1) })
        let sourceA = ArrayIdentifierSource(setA), sourceB = ArrayIdentifierSource(setB)
        func config(_ me: Bool, _ peer: Bool) -> PSIParty.Configuration {
            var c = PSIParty.Configuration(jobID: "test-job", group: group, selfReceivesOutput: me, peerReceivesOutput: peer,
                                           cardinalityOnly: cardinalityOnly, batchSize: batchSize)
            c.reportsPeerPositions = peerPositions
            return c
        }
        async let ra = PSIParty(configuration: config(aReceives, bReceives), source: sourceA, channel: ca).run()
        async let rb = PSIParty(configuration: config(bReceives, aReceives), source: sourceB, channel: cb).run()
        let (a, b) = try await (ra, rb)
        return Outcome(a: a, b: b, sourceA: sourceA, sourceB: sourceB, wire: wire.entries)
    }

    func identifiers(of output: PSIParty.Output, in source: ArrayIdentifierSource) -> Set<String> {
        guard case .intersection(let positions) = output else { return [] }
        return Set(positions.map { String(decoding: source.values[$0], as: UTF8.self) })
    }

    func randomSets(_ rng: inout SplitMix, sizeA: Int, sizeB: Int, universe: Int) -> ([String], [String]) {
        let a = (0..<sizeA).map { _ in "+44" + String(Int.random(in: 0..<universe, using: &rng)) }
        let b = (0..<sizeB).map { _ in "+44" + String(Int.random(in: 0..<universe, using: &rng)) }
        return (a, b)
    }

    func testIntersectionMatchesPlainSetIntersectionOnRandomSets() async throws {
        var rng = SplitMix(state: 42)
        for (sizeA, sizeB, universe) in [(200, 300, 500), (1000, 50, 2000), (10, 2000, 3000), (500, 500, 100)] {
            let (a, b) = randomSets(&rng, sizeA: sizeA, sizeB: sizeB, universe: universe)
            let expected = Set(a).intersection(Set(b))
            let outcome = try await runPSI(a, b, aReceives: true, bReceives: true)
            XCTAssertEqual(identifiers(of: outcome.a.output, in: outcome.sourceA), expected, "A's view, sizes \(sizeA)×\(sizeB)")
            XCTAssertEqual(identifiers(of: outcome.b.output, in: outcome.sourceB), expected, "B's view, sizes \(sizeA)×\(sizeB)")
            XCTAssertEqual(outcome.a.ownSetSize, Set(a).count, "duplicates are removed")
            XCTAssertEqual(outcome.a.peerSetSize, Set(b).count)
        }
    }

    /// With `reportsPeerPositions`, the recipient also learns where each match sits in the peer's stream
    /// (what a vertical training's guest tells each host): the same identifier at both positions.
    func testPeerPositionsOfTheMatchesPointAtTheSameIdentifiers() async throws {
        var rng = SplitMix(state: 7)
        for (sizeA, sizeB, universe) in [(300, 200, 500), (40, 1000, 1500)] {
            let (a, b) = randomSets(&rng, sizeA: sizeA, sizeB: sizeB, universe: universe)
            let outcome = try await runPSI(a, b, aReceives: true, bReceives: false, peerPositions: true)
            guard case .matches(let own, let theirs) = outcome.a.output else { return XCTFail("no matches: \(outcome.a.output)") }
            XCTAssertEqual(Set(own.map { String(decoding: outcome.sourceA.values[$0], as: UTF8.self) }), Set(a).intersection(Set(b)))
            XCTAssertEqual(own.count, theirs.count)
            for (p, q) in zip(own, theirs) { XCTAssertEqual(outcome.sourceA.values[p], outcome.sourceB.values[q]) }
            XCTAssertEqual(outcome.b.output, .none, "the peer learns nothing")
        }
    }

    func testOnlyTheRecipientLearnsTheIntersection() async throws {
        let outcome = try await runPSI(["a", "b", "c", "d"], ["c", "d", "e"], aReceives: true, bReceives: false)
        XCTAssertEqual(identifiers(of: outcome.a.output, in: outcome.sourceA), ["c", "d"])
        XCTAssertEqual(outcome.b.output, .none)
        let reversed = try await runPSI(["a", "b", "c", "d"], ["c", "d", "e"], aReceives: false, bReceives: true)
        XCTAssertEqual(reversed.a.output, .none)
        XCTAssertEqual(identifiers(of: reversed.b.output, in: reversed.sourceB), ["c", "d"])
    }

    func testCardinalityOnly() async throws {
        var rng = SplitMix(state: 7)
        let (a, b) = randomSets(&rng, sizeA: 700, sizeB: 400, universe: 1000)
        let expected = Set(a).intersection(Set(b)).count
        for group in BlindingGroup.allCases {
            let outcome = try await runPSI(a, b, aReceives: true, bReceives: true, cardinalityOnly: true, group: group)
            XCTAssertEqual(outcome.a.output, .cardinality(expected), "\(group)")
            XCTAssertEqual(outcome.b.output, .cardinality(expected), "\(group)")
        }
    }

    func testEdgeCases() async throws {
        let cases: [([String], [String])] = [
            ([], []), ([], ["x"]), (["x"], []),             // empty sets
            (["x", "x", "x"], ["x"]),                      // duplicates
            (["p", "q"], ["r", "s"]),                      // disjoint
            (["p", "q", "r"], ["r", "q", "p"]),            // identical
            (["only"], (0..<3000).map { "id\($0)" } + ["only"]),  // very unequal sizes
        ]
        for (a, b) in cases {
            let outcome = try await runPSI(a, b, aReceives: true, bReceives: true, group: .x25519, batchSize: 100)
            let expected = Set(a).intersection(Set(b))
            XCTAssertEqual(identifiers(of: outcome.a.output, in: outcome.sourceA), expected, "\(a.prefix(3)) × \(b.prefix(3))")
            XCTAssertEqual(identifiers(of: outcome.b.output, in: outcome.sourceB), expected)
        }
    }

    /// Nothing in the clear: no identifier, and no plain hash of one, appears in any message.
    func testNoIdentifierOrPlainHashOfOneIsSent() async throws {
        let a = (0..<300).map { "+4479\(String(format: "%08d", $0 * 7919))" }
        let b = (0..<300).map { "+4479\(String(format: "%08d", $0 * 7907))" }
        let outcome = try await runPSI(a, b, aReceives: true, bReceives: true)
        XCTAssertFalse(outcome.wire.isEmpty)
        let everything = WireIndex(outcome.wire.flatMap(\.bytes))
        var needles: [[UInt8]] = []
        for id in a + b {
            needles.append(Array(id.utf8))
            needles.append(Array(id.dropFirst(3).utf8))  // digits only
            needles.append(contentsOf: PlainHashes.of(Array(id.utf8)))
        }
        for needle in needles {
            XCTAssertFalse(everything.contains(needle), "found \(needle.count)-byte needle on the wire")
        }
        // The check is not vacuous: the same search finds an identifier planted in the stream.
        XCTAssertTrue(WireIndex(everything.bytes + Array(a[17].utf8)).contains(Array(a[17].utf8)))
    }

    func testGroupMismatchEndsTheRunWithAClearError() async throws {
        let (ca, cb) = InMemoryChannel.pair("bank-a", "bank-b")
        let a = PSIParty(configuration: .init(jobID: "j", group: .ristretto255, selfReceivesOutput: true, peerReceivesOutput: false, cardinalityOnly: false),
                         source: ArrayIdentifierSource(["x"]), channel: ca)
        let b = PSIParty(configuration: .init(jobID: "j", group: .x25519, selfReceivesOutput: false, peerReceivesOutput: true, cardinalityOnly: false),
                         source: ArrayIdentifierSource(["x"]), channel: cb)
        async let ra: PSIParty.Report = a.run()
        async let rb: PSIParty.Report = b.run()
        do { _ = try await ra; XCTFail("A should fail") } catch {
            XCTAssertTrue("\(error)".contains("bank-b"), "\(error)")
        }
        do { _ = try await rb; XCTFail("B should fail") } catch {
            XCTAssertTrue("\(error)".contains("bank-a"), "\(error)")
        }
    }
}

/// Collects what each side sends.
final class WireLog: @unchecked Sendable {
    private let lock = NSLock()
    private var _entries: [(sender: String, bytes: [UInt8])] = []
    func append(_ sender: String, _ bytes: [UInt8]) { lock.withLock { _entries.append((sender, bytes)) } }
    var entries: [(sender: String, bytes: [UInt8])] { lock.withLock { _entries } }
}
