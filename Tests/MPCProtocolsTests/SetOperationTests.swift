import Foundation
import MPCCrypto
import MPCTestSupport
import XCTest
@testable import MPCProtocols

/// Multi-party set operations in memory (ring, sealed mix, aggregator), checked against plain set operations.
final class SetOperationTests: XCTestCase {
    struct Run {
        var sources: [ArrayIdentifierSource]
        var owners: [Result<SetOwner.Outcome, Error>]
        var aggregator: Result<SetAggregator.Outcome, Error>
        var wire: WireLog
    }

    static let aggregatorID = "regulator"

    static func run(_ sets: [[String]], group: BlindingGroup = .x25519, deliveries: [Int: SetDeliveryKind] = [:],
                    mixer: Int = 0, absent: Int? = nil,
                    release: @escaping @Sendable (Multiplicities) throws -> Void = { _ in }) async -> Run {
        let names = sets.indices.map { "owner-\($0)" }
        let wire = WireLog()
        let tap: @Sendable (String, [UInt8]) -> Void = { wire.append($0, $1) }
        var toNext: [InMemoryChannel] = [], fromPrevious: [InMemoryChannel?] = Array(repeating: nil, count: names.count)
        for i in names.indices {
            let (a, b) = InMemoryChannel.pair(names[i], names[(i + 1) % names.count], tap: tap)
            toNext.append(a)
            fromPrevious[(i + 1) % names.count] = b
        }
        var toAggregator: [InMemoryChannel] = [], atAggregator: [String: any MessageChannel] = [:]
        for n in names {
            let (a, b) = InMemoryChannel.pair(n, aggregatorID, tap: tap)
            toAggregator.append(a)
            atAggregator[n] = b
        }
        var toMixer: [Int: InMemoryChannel] = [:], atMixer: [any MessageChannel] = []
        for i in names.indices where i != mixer {
            let (a, b) = InMemoryChannel.pair(names[i], names[mixer], tap: tap)
            toMixer[i] = a
            atMixer.append(b)
        }
        let (mixedOut, mixedIn) = InMemoryChannel.pair(names[mixer], aggregatorID, tap: tap)
        var d: [String: SetDeliveryKind] = [:]
        for (i, k) in deliveries { d[names[i]] = k }
        let config = SetOperationConfiguration(jobID: "job-sets", group: group, owners: names, mixer: names[mixer],
                                               aggregator: aggregatorID, deliveries: d, batchSize: 50)
        let sources = sets.map { ArrayIdentifierSource($0) }
        async let aggregatorResult: Result<SetAggregator.Outcome, Error> = {
            do { return .success(try await SetAggregator(configuration: config).run(fromOwners: atAggregator, fromMixer: mixedIn, release: release)) }
            catch { return .failure(error) }
        }()
        let owners = await withTaskGroup(of: (Int, Result<SetOwner.Outcome, Error>).self) { tasks in
            for i in names.indices {
                let mine: [InMemoryChannel] = [toNext[i], fromPrevious[i]!, toAggregator[i]] + (toMixer[i].map { [$0] } ?? [])
                    + (i == mixer ? [mixedOut] : [])
                if i == absent {
                    for c in mine { await c.close() }
                    tasks.addTask { (i, .failure(ChannelError.peerDisconnected(peer: names[i], detail: "absent"))) }
                    continue
                }
                let (next, previous, aggregator, mixing): (InMemoryChannel, InMemoryChannel, InMemoryChannel, SetOwner.Mixing) =
                    (toNext[i], fromPrevious[i]!, toAggregator[i], i == mixer ? .mix(fromOwners: atMixer, toAggregator: mixedOut) : .sendTo(toMixer[i]!))
                let source = sources[i]
                tasks.addTask {
                    do {
                        let psi = try await PseudonymRingParty(configuration: config.ring, me: names[i], source: source,
                                                               toNext: next, fromPrevious: previous).run()
                        return (i, .success(try await SetOwner(configuration: config, me: names[i]).finish(pseudonyms: psi, toAggregator: aggregator, mixing: mixing)))
                    } catch {
                        // As the node does: a failed owner's sessions end.
                        for c in mine { await c.close() }
                        return (i, .failure(error))
                    }
                }
            }
            var out = [Result<SetOwner.Outcome, Error>?](repeating: nil, count: names.count)
            for await (i, r) in tasks { out[i] = r }
            return out.map { $0! }
        }
        return Run(sources: sources, owners: owners, aggregator: await aggregatorResult, wire: wire)
    }

    static func identifiers(_ run: Run, owner i: Int, positions: [Int]) -> Set<String> {
        Set(positions.map { String(decoding: run.sources[i].values[$0], as: UTF8.self) })
    }

    /// Checks every output against plain set operations.
    func check(_ sets: [[String]], group: BlindingGroup = .x25519, file: StaticString = #filePath, line: UInt = #line) async throws {
        let n = sets.count
        var deliveries: [Int: SetDeliveryKind] = [0: .intersection, 1: .onOthersLists]
        if n > 2 { deliveries[2] = .cardinality }
        if n > 3 { deliveries[3] = .union }
        let r = await Self.run(sets, group: group, deliveries: deliveries, mixer: n - 1)
        let plain = sets.map(Set.init)
        var holders: [String: Int] = [:]
        for s in plain { for x in s { holders[x, default: 0] += 1 } }
        let intersection = plain.dropFirst().reduce(plain[0]) { $0.intersection($1) }
        let m = try r.aggregator.get().multiplicities
        XCTAssertEqual(m.unionSize, holders.count, "union size", file: file, line: line)
        XCTAssertEqual(m.intersectionSize, intersection.count, "intersection size", file: file, line: line)
        var histogram = Array(repeating: 0, count: n + 1)
        for c in holders.values { histogram[c] += 1 }
        XCTAssertEqual(m.histogram, histogram, "histogram", file: file, line: line)
        XCTAssertEqual(m.setSizes, Dictionary(uniqueKeysWithValues: plain.enumerated().map { ("owner-\($0.offset)", $0.element.count) }), file: file, line: line)
        for (i, kind) in deliveries {
            let outcome = try r.owners[i].get()
            switch (kind, outcome.delivery) {
            case (.intersection, .members(let p)):
                XCTAssertEqual(Self.identifiers(r, owner: i, positions: p), intersection, "owner \(i) intersection", file: file, line: line)
            case (.onOthersLists, .members(let p)):
                XCTAssertEqual(Self.identifiers(r, owner: i, positions: p), plain[i].filter { holders[$0]! >= 2 }, "owner \(i) on others' lists", file: file, line: line)
            case (.cardinality, .cardinality(let c)):
                XCTAssertEqual(c, intersection.count, file: file, line: line)
            case (.union, .union(let u)):
                XCTAssertEqual(u, m.pseudonyms, file: file, line: line)
            default:
                XCTFail("owner \(i): \(kind) gave \(outcome.delivery)", file: file, line: line)
            }
        }
        for i in sets.indices where deliveries[i] == nil {
            XCTAssertEqual(try r.owners[i].get().delivery, SetDelivery.none, file: file, line: line)
        }
        // The wire: no identifier nor any plain hash of one; and between owners (ring and mix), none of
        // the final pseudonyms (the ring mask hides them from the last hop).
        let everything = WireIndex(r.wire.entries.flatMap(\.bytes))
        for x in holders.keys {
            XCTAssertFalse(everything.contains(Array(x.utf8)), "identifier \(x) on the wire", file: file, line: line)
            for h in PlainHashes.of(Array(x.utf8)) { XCTAssertFalse(everything.contains(h), file: file, line: line) }
        }
        let betweenOwners = WireIndex(r.wire.entries.filter { $0.sender != Self.aggregatorID }.flatMap(\.bytes))
        for p in m.pseudonyms { XCTAssertFalse(betweenOwners.contains(GroupElement.pack([p])), "a pseudonym in the clear from an owner", file: file, line: line) }
    }

    func testRandomSetsOfThreeToTenOwners() async throws {
        var rng = SplitMix(state: 11)
        for n in [3, 5, 10] {
            let sets = (0..<n).map { _ in (0..<Int.random(in: 40...120, using: &rng)).map { _ in "acct-\(Int.random(in: 0..<150, using: &rng))" } }
            try await check(sets)
        }
    }

    func testEdgeCases() async throws {
        // Identifiers of 8+ characters, so that the wire check cannot match random bytes by chance.
        let shared = (0..<30).map { "customer-\($0)" }
        try await check([shared, shared, shared, shared])                                          // identical
        try await check([(0..<20).map { "customer-a\($0)" }, (0..<20).map { "customer-b\($0)" }, (0..<20).map { "customer-c\($0)" }])  // disjoint
        try await check([[], shared, shared])                                                       // one empty
        try await check([[], [], [], []])                                                           // all empty
        try await check([shared + shared + ["customer-x", "customer-x"], shared, ["customer-x"] + shared], group: .ristretto255) // duplicates
        try await check([["customer-1"], (0..<2000).map { "customer-big-\($0)" } + ["customer-1"], ["customer-1", "customer-2"], ["customer-2"]]) // very unequal
        try await check([["customer-p", "customer-q"], ["customer-q", "customer-r"]])                // two owners                                                   // two owners
    }

    func testReleaseRefusalDeliversNothing() async throws {
        struct TooSmall: Error, CustomStringConvertible { var description: String { "intersection below the minimum" } }
        let r = await Self.run([["a", "b"], ["b", "c"], ["b", "d"]], deliveries: [0: .intersection], release: { m in
            if m.intersectionSize < 5 { throw TooSmall() }
        })
        XCTAssertThrowsError(try r.aggregator.get())
        for (i, o) in r.owners.enumerated() {
            guard case .failure(let e) = o else { return XCTFail("owner \(i) finished") }
            XCTAssertTrue("\(e)".contains("intersection below the minimum"), "owner \(i): \(e)")
        }
    }

    func testAnOwnerThatDisappearsFailsEveryRole() async throws {
        let sets = (0..<5).map { i in (0..<60).map { "id-\(($0 * (i + 1)) % 90)" } }
        for absent in [0, 2, 4] {
            let r = await Self.run(sets, deliveries: [1: .intersection], mixer: 4, absent: absent)
            XCTAssertThrowsError(try r.aggregator.get(), "absent \(absent)")
            for (i, o) in r.owners.enumerated() {
                if case .success = o { XCTFail("owner \(i) finished although owner \(absent) was absent") }
            }
        }
    }

    func testTamperedSealedPseudonymIsRefused() async throws {
        // A mixer that flips a bit: the aggregator's box does not open; nobody gets a result.
        let (a, b) = InMemoryChannel.pair("owner-0", "regulator")
        let session = ProtocolSession(channel: a)
        let key = KeyAgreementKeyPair.generate()
        var box = try SealedBox.seal([UInt8](repeating: 7, count: 32), to: key.publicKey)
        box[40] ^= 1
        try await session.sendItems(box, itemSize: 80, batchSize: 10, sealed: true)
        let received = try await ProtocolSession(channel: b).receiveItems(itemSize: 80, sealed: true, limit: 10)
        XCTAssertThrowsError(try SealedBox.open(received, with: key))
    }
}
