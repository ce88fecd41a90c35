import Foundation
import MPCCrypto
import MPCTestSupport
import MPCWire
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

    /// A mixer's part after the ring, played by a test instead of `SetOwner`: its ring result, its
    /// session to the aggregator, the other owners' sessions to it, and its "mixed" session.
    typealias MixerPart = @Sendable (PseudonymRingParty.Result, InMemoryChannel, [any MessageChannel], InMemoryChannel) async throws -> SetOwner.Outcome

    static func run(_ sets: [[String]], group: BlindingGroup = .x25519, deliveries: [Int: SetDeliveryKind] = [:],
                    mixer: Int = 0, absent: Int? = nil, intercept: InMemoryChannel.Intercept? = nil, dishonestMixer: MixerPart? = nil,
                    release: @escaping @Sendable (Multiplicities) throws -> Void = { _ in }) async -> Run {
        let names = sets.indices.map { "owner-\($0)" }
        let wire = WireLog()
        let tap: @Sendable (String, [UInt8]) -> Void = { wire.append($0, $1) }
        var toNext: [InMemoryChannel] = [], fromPrevious: [InMemoryChannel?] = Array(repeating: nil, count: names.count)
        for i in names.indices {
            let (a, b) = InMemoryChannel.pair(names[i], names[(i + 1) % names.count], tap: tap, intercept: intercept)
            toNext.append(a)
            fromPrevious[(i + 1) % names.count] = b
        }
        var toAggregator: [InMemoryChannel] = [], atAggregator: [String: any MessageChannel] = [:]
        for n in names {
            let (a, b) = InMemoryChannel.pair(n, aggregatorID, tap: tap, intercept: intercept)
            toAggregator.append(a)
            atAggregator[n] = b
        }
        var toMixer: [Int: InMemoryChannel] = [:], atMixer: [any MessageChannel] = []
        for i in names.indices where i != mixer {
            let (a, b) = InMemoryChannel.pair(names[i], names[mixer], tap: tap, intercept: intercept)
            toMixer[i] = a
            atMixer.append(b)
        }
        let (mixedOut, mixedIn) = InMemoryChannel.pair(names[mixer], aggregatorID, tap: tap, intercept: intercept)
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
                let fromOwners = atMixer, mixerOut = mixedOut
                tasks.addTask {
                    do {
                        let psi = try await PseudonymRingParty(configuration: config.ring, me: names[i], source: source,
                                                               toNext: next, fromPrevious: previous).run()
                        if i == mixer, let dishonestMixer {
                            return (i, .success(try await dishonestMixer(psi, aggregator, fromOwners, mixerOut)))
                        }
                        return (i, .success(try await SetOwner(configuration: config, me: names[i]).finish(ring: psi, toAggregator: aggregator, mixing: mixing)))
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

    /// A dishonest mixer (owner-0) rewrites the shuffled boxes it forwards: a box of its own making in
    /// place of another owner's (sealed properly to the aggregator's key, so it opens), or a copy of one
    /// box in place of another. The counts still match; the owners' box digests do not, so the aggregator
    /// aborts naming the mixer, and no owner gets a result.
    func testAForgingMixerMakesTheAggregatorAbort() async throws {
        let sets = (0..<4).map { i in (0..<60).map { "customer-\(($0 * (i + 1)) % 80)" } }
        for substitution in ["forged", "duplicated"] {
            let sealingKey = Locked<[UInt8]?>(nil)
            let done = Locked(false)
            let intercept: InMemoryChannel.Intercept = { from, to, message in
                guard var frame = try? Mpcnode_V1_SessionFrame(serializedBytes: message), case .sets(var sets)? = frame.body else { return [message] }
                if from == Self.aggregatorID, case .sealingKey(let k)? = sets.body { sealingKey.withValue { $0 = [UInt8](k.publicKey) } }
                guard from == "owner-0", to == Self.aggregatorID, case .sealed(var batch)? = sets.body, batch.offset == 0 else { return [message] }
                var boxes = [UInt8](batch.elements)
                let size = SealedPseudonym.size
                if substitution == "forged" {
                    let key = sealingKey.value!
                    let forged = try! SealedBox.seal(GroupElement.pack([Ristretto255.random()]), to: key)
                    boxes.replaceSubrange(size..<(2 * size), with: forged)
                } else {
                    boxes.replaceSubrange(size..<(2 * size), with: Array(boxes[0..<size]))
                }
                done.withValue { $0 = true }
                batch.elements = Data(boxes)
                sets.sealed = batch
                frame.sets = sets
                return [try! frame.serializedBytes()]
            }
            let r = await Self.run(sets, deliveries: [1: .intersection], mixer: 0, intercept: intercept)
            XCTAssertTrue(done.value, substitution)
            XCTAssertThrowsError(try r.aggregator.get(), substitution) { e in
                XCTAssertTrue("\(e)".contains("owner-0") && "\(e)".contains("not the ones the owners sealed"), "\(substitution): \(e)")
            }
            for (i, o) in r.owners.enumerated() {
                if case .success = o { XCTFail("\(substitution): owner \(i) finished with a result") }
            }
        }
    }

    /// The attack the owners' digests alone would not stop: a mixer that waits for the other owners' boxes
    /// before it sends its own digest could make that digest cover a box it substitutes. It never sees a
    /// box in time: owners hold their boxes until the aggregator has every digest, the mixer's included.
    func testAMixerSeesNoOtherOwnersBoxBeforeItsDigestIsFixed() async throws {
        let sets = (0..<3).map { i in (0..<40).map { "customer-\(($0 * (i + 1)) % 60)" } }
        let boxesSeen = Locked<Int?>(nil)
        let r = await Self.run(sets, deliveries: [1: .intersection], mixer: 0, dishonestMixer: { ring, toAggregator, fromOwners, _ in
            let results = ProtocolSession(channel: toAggregator)
            try await results.sendSets { $0.hello = .with { $0.setSize = UInt64(ring.pseudonyms.count) } }
            guard case .sealingKey = try await results.receiveSets(expecting: "the sealing key") else { throw CancellationError() }
            // Its digest withheld, it waits two seconds for any owner's first box.
            let seen = await withTaskGroup(of: Bool?.self) { group in
                for c in fromOwners {
                    group.addTask { (try? await ProtocolSession(channel: c).receiveSets(expecting: "sealed pseudonyms")) == nil ? nil : true }
                }
                group.addTask { try? await Task.sleep(for: .seconds(2)); return false }
                var seen = 0
                for await box in group {
                    guard let box else { continue }
                    guard box else { break }
                    seen += 1
                }
                group.cancelAll()
                return seen
            }
            boxesSeen.withValue { $0 = seen }
            throw ProtocolError.protocolViolation(peer: "owner-0", detail: "the dishonest mixer gives up")
        })
        XCTAssertEqual(boxesSeen.value, 0, "the mixer saw boxes before its digest was with the aggregator")
        XCTAssertThrowsError(try r.aggregator.get())
        for (i, o) in r.owners.enumerated() {
            if case .success = o { XCTFail("owner \(i) finished with a result") }
        }
    }

    /// An owner that announces more identifiers than its chain carried in the ring (to seal extra copies
    /// of its own pseudonyms, past a data-less mixer) is caught by the other owners' view of the ring.
    func testAnOwnerInflatingItsSetSizeIsCaught() async throws {
        let sets = (0..<3).map { i in (0..<40).map { "customer-\(($0 * (i + 1)) % 60)" } }
        let intercept: InMemoryChannel.Intercept = { from, to, message in
            guard from == "owner-1", to == Self.aggregatorID, var frame = try? Mpcnode_V1_SessionFrame(serializedBytes: message),
                  case .sets(var sets)? = frame.body, case .hello(var hello)? = sets.body else { return [message] }
            hello.setSize += 5
            sets.hello = hello
            frame.sets = sets
            return [try! frame.serializedBytes()]
        }
        let r = await Self.run(sets, deliveries: [0: .intersection], mixer: 0, intercept: intercept)
        XCTAssertThrowsError(try r.aggregator.get()) { e in
            XCTAssertTrue("\(e)".contains("owner-1") && "\(e)".contains("but its chain carried"), "\(e)")
        }
        for (i, o) in r.owners.enumerated() {
            if case .success = o { XCTFail("owner \(i) finished with a result") }
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
