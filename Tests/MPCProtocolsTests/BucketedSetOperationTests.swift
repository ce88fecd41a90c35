import Foundation
import MPCCrypto
import MPCTestSupport
import MPCWire
import XCTest
@testable import MPCProtocols

/// Set operations run in buckets (Protocols/multi-party-sets.md "Buckets"): every role over its own
/// in-memory session port, the same code that runs between daemons. The bucketed run must give what the
/// one-pass run gives, never count a dummy, and refuse an owner whose set is larger than it announced.
final class BucketedSetOperationTests: XCTestCase {
    static let waits = SetOperationParty.Waits(session: .seconds(30), phase: .seconds(60))

    struct Run {
        var aggregator: Result<SetOperationAggregatorRole.Outcome, Error>
        var owners: [Int: Result<SetOperationParty.Outcome, Error>]
        var mixerTraffic: (sent: UInt64, received: UInt64)?
        var wire: WireLog
        /// The owners' inputs as run (each shuffled: positions are per run).
        var inputs: [ArrayIdentifierSource]
    }

    /// One set operation among `sets.count` owners ("bank-i"), aggregator "regulator"; `mixer` nil: a
    /// mixer that holds no data. `sources` replaces the owners' inputs (a crafted one).
    func run(_ sets: [[String]], bucketing: SetBucketing?, deliveries: [Int: SetDeliveryKind], mixer: Int? = 0,
             group: BlindingGroup = .ristretto255, intercept: InMemoryChannel.Intercept? = nil,
             sources: [Int: any IdentifierSource] = [:], sum: (@Sendable (Int, ArrayIdentifierSource) -> SetOperationSum)? = nil,
             waits: SetOperationParty.Waits = BucketedSetOperationTests.waits, resume: SetResume = .never,
             cuts: [String: [LinkCut]] = [:], opened: Locked<[String]>? = nil,
             adjust: @escaping @Sendable (String, inout SetOperationConfiguration) -> Void = { _, _ in }) async -> Run {
        let names = sets.indices.map { "bank-\($0)" }
        let mixerName = mixer.map { names[$0] } ?? "mixer"
        let wire = WireLog()
        let hub = InMemorySessionHub(tap: { wire.append($0, $1) }, intercept: intercept)
        var config = SetOperationConfiguration(jobID: "job-buckets", group: group, owners: names, mixer: mixerName, aggregator: "regulator",
                                               deliveries: Dictionary(uniqueKeysWithValues: deliveries.map { (names[$0.key], $0.value) }), batchSize: 32)
        config.bucketing = bucketing
        let job = config
        func configuration(_ role: String) -> SetOperationConfiguration {
            var c = job
            adjust(role, &c)
            return c
        }
        let arrays = sets.map { ArrayIdentifierSource($0) }
        func port(_ node: String) -> any SessionPort {
            LinkCuttingPort(inner: hub.port(for: node), cuts: cuts[node] ?? [], opened: opened ?? Locked([]))
        }
        async let aggregated: Result<SetOperationAggregatorRole.Outcome, Error> = {
            do { return .success(try await SetOperationAggregatorRole(configuration: configuration("regulator"), waits: waits, resume: resume)
                    .run(port: port("regulator"), sumRoundTimeout: sum == nil ? nil : .seconds(30))) }
            catch { return .failure(error) }
        }()
        async let mixed: (sent: UInt64, received: UInt64)? = mixer != nil ? nil
            : try? await SetMixerRole(configuration: configuration(mixerName), me: mixerName, waits: waits, resume: resume).run(port: port(mixerName))
        let owners = await withTaskGroup(of: (Int, Result<SetOperationParty.Outcome, Error>).self) { group in
            for (i, name) in names.enumerated() {
                let source: any IdentifierSource = sources[i] ?? arrays[i]
                let s = sum?(i, arrays[i]), mine = configuration(name), p = port(name)
                group.addTask {
                    do { return (i, .success(try await SetOperationParty(configuration: mine, me: name, waits: waits, resume: resume).run(source: source, port: p, sum: s))) }
                    catch { return (i, .failure(error)) }
                }
            }
            var out: [Int: Result<SetOperationParty.Outcome, Error>] = [:]
            for await (i, r) in group { out[i] = r }
            return out
        }
        return Run(aggregator: await aggregated, owners: owners, mixerTraffic: await mixed, wire: wire, inputs: arrays)
    }

    /// Overlapping sets: some identifiers every owner holds, some several, some one.
    static func sets(owners: Int, seed: UInt64) -> [[String]] {
        var rng = SplitMix(state: seed)
        return (0..<owners).map { i in
            var s = (0..<30).map { "common-\($0)" }
            for _ in 0..<Int.random(in: 60...140, using: &rng) { s.append("customer-\(Int.random(in: 0..<300, using: &rng))") }
            s += (0..<(5 * i)).map { "only-\(i)-\($0)" }
            return s
        }
    }

    /// The identifiers each owner receives, by name.
    static func received(_ o: SetOperationParty.Outcome, source: ArrayIdentifierSource) -> Set<String>? {
        guard case .members(let positions) = o.delivery else { return nil }
        return Set(positions.map { String(decoding: source.values[$0], as: UTF8.self) })
    }

    /// What the aggregator counts, as a comparable summary (the pseudonyms differ between runs).
    static func summary(_ m: Multiplicities) -> [Int] { [m.unionSize, m.intersectionSize] + m.histogram }

    func testBucketedRunsGiveWhatTheOnePassRunGivesForThreeAndFiveOwners() async throws {
        for owners in [3, 5] {
            let sets = Self.sets(owners: owners, seed: UInt64(owners))
            let deliveries: [Int: SetDeliveryKind] = [0: .intersection, 1: .onOthersLists, owners - 1: .cardinality]
            let reference = await run(sets, bucketing: nil, deliveries: deliveries)
            let expected = try reference.aggregator.get().multiplicities
            // The reference itself is right: counted from the sets in the clear.
            var holders: [String: Int] = [:]
            for s in sets { for x in Set(s) { holders[x, default: 0] += 1 } }
            XCTAssertEqual(expected.unionSize, holders.count)
            XCTAssertEqual(expected.intersectionSize, holders.values.filter { $0 == owners }.count)
            for buckets in [1, 4, 7] {
                let r = await run(sets, bucketing: SetBucketing(requested: buckets, maximum: 16), deliveries: deliveries, mixer: buckets == 4 ? nil : 1)
                let m = try r.aggregator.get().multiplicities
                XCTAssertEqual(Self.summary(m), Self.summary(expected), "\(owners) owners, \(buckets) buckets")
                XCTAssertEqual(m.counts.map(Int.init).reduce(0, +), sets.map { Set($0).count }.reduce(0, +), "every real pseudonym counted once, no dummy")
                // One order over all buckets: nothing delivered tells which bucket a pseudonym came from.
                XCTAssertTrue(zip(m.pseudonyms, m.pseudonyms.dropFirst()).allSatisfy { $0 < $1 }, "sorted over the buckets")
                // Deliveries name the same identifiers (positions differ: each run shuffles its input).
                let mine0 = try XCTUnwrap(Self.received(try r.owners[0]!.get(), source: r.inputs[0]))
                let reference0 = try XCTUnwrap(Self.received(try reference.owners[0]!.get(), source: reference.inputs[0]))
                XCTAssertEqual(mine0, reference0)
                XCTAssertEqual(mine0, Set(holders.filter { $0.value == owners }.keys))
                let mine1 = try XCTUnwrap(Self.received(try r.owners[1]!.get(), source: r.inputs[1]))
                XCTAssertEqual(mine1, Set(Set(sets[1]).filter { holders[$0]! >= 2 }))
                XCTAssertEqual(try r.owners[owners - 1]!.get().delivery, .cardinality(expected.intersectionSize))
                XCTAssertEqual(try r.owners[2]!.get().delivery, owners - 1 == 2 ? .cardinality(expected.intersectionSize) : SetDelivery.none)
                if buckets == 4 { XCTAssertGreaterThan(r.mixerTraffic?.received ?? 0, 0, "the data-less mixer carried the boxes") }
            }
        }
    }

    func testDummiesAreNeverCountedAndTheBucketCountFollowsTheSizes() async throws {
        // Seven buckets of sets of 40–140: most boxes are dummies.
        let sets = Self.sets(owners: 3, seed: 9)
        let r = await run(sets, bucketing: SetBucketing(requested: 7, maximum: 7), deliveries: [:])
        let m = try r.aggregator.get().multiplicities
        XCTAssertFalse(m.pseudonyms.contains(SetBucketLayout.dummyMarker))
        XCTAssertEqual(m.counts.map(Int.init).reduce(0, +), sets.map { Set($0).count }.reduce(0, +))
        let sizes = Dictionary(uniqueKeysWithValues: sets.enumerated().map { ("bank-\($0.offset)", Set($0.element).count) })
        let layout = try SetBucketLayout(bucketing: SetBucketing(requested: 7, maximum: 7), owners: Array(sizes.keys).sorted(), sizes: sizes, me: "bank-0")
        XCTAssertGreaterThan(layout.dummies, m.counts.count, "the run was mostly dummies")
        // The rule: ⌈Σ sizes / 2^20⌉ buckets, at least one; a node refuses more than its maximum.
        XCTAssertEqual(SetBucketLayout.count(requested: nil, sizes: [10, 20]), 1)
        XCTAssertEqual(SetBucketLayout.count(requested: nil, sizes: [600_000, 700_000]), 2)
        XCTAssertEqual(SetBucketLayout.count(requested: nil, sizes: Array(repeating: 1_000_000, count: 10)), 10)
        XCTAssertThrowsError(try SetBucketLayout(bucketing: SetBucketing(requested: nil, maximum: 1), owners: ["a", "b"],
                                                 sizes: ["a": 600_000, "b": 700_000], me: "a")) { e in
            XCTAssertTrue("\(e)".contains("needs 2 buckets") && "\(e)".contains("max_buckets"), "\(e)")
        }
        // One owner whose maximum is below the job's count refuses it before anything of its set is sent,
        // and so does a data-less mixer with a lower maximum.
        for refuser in ["bank-2", "mixer"] {
            // Owners waiting for a ring session of the refuser wait until the job ends (between daemons, the
            // coordinator's abort; here, a short phase).
            let refused = await run(sets, bucketing: SetBucketing(requested: 3, maximum: 8), deliveries: [:], mixer: refuser == "mixer" ? nil : 0,
                                    waits: .init(session: .seconds(5), phase: .seconds(5)), adjust: { role, c in
                if role == refuser { c.bucketing?.maximum = 2 }
            })
            XCTAssertThrowsError(try refused.aggregator.get())
            for (_, o) in refused.owners { XCTAssertThrowsError(try o.get()) }
            if refuser == "bank-2" {
                XCTAssertThrowsError(try refused.owners[2]!.get()) { e in XCTAssertTrue("\(e)".contains("max_buckets"), "\(e)") }
            } else {
                XCTAssertNil(refused.mixerTraffic, "the mixer refused")
            }
        }
    }

    /// Each owner applies its own policy to the sizes the aggregator announces (the ring's chains are
    /// padded, so this is where the limits bind), and refuses an announcement of its own size that is not
    /// what it sent.
    func testOwnersCheckTheAnnouncedSizesThemselves() async throws {
        let sets = Self.sets(owners: 3, seed: 12).enumerated().map { i, s in i == 1 ? s + (0..<300).map { "more-\($0)" } : s }
        let limited = await run(sets, bucketing: SetBucketing(requested: 2, maximum: 8), deliveries: [0: .intersection],
                                waits: .init(session: .seconds(5), phase: .seconds(5)), adjust: { role, c in
            if role == "bank-2" { c.peerSetSizes = 1...200 }
        })
        XCTAssertThrowsError(try limited.owners[2]!.get()) { e in
            XCTAssertTrue("\(e)".contains("bank-1") && "\(e)".contains("at most 200"), "\(e)")
        }
        XCTAssertThrowsError(try limited.owners[0]!.get(), "no delivery once an owner refused")
        // A lying aggregator announces bank-0 a size for itself other than the one it sent.
        let intercept: InMemoryChannel.Intercept = { from, to, message in
            guard from == "regulator", to == "bank-0", var frame = try? Mpcnode_V1_SessionFrame(serializedBytes: message),
                  case .sets(var sets)? = frame.body, case .ownerSizes(var m)? = sets.body, let i = m.owners.firstIndex(of: "bank-0") else { return [message] }
            m.sizes[i] += 1
            sets.ownerSizes = m
            frame.sets = sets
            return [try! frame.serializedBytes()]
        }
        let lied = await run(sets, bucketing: SetBucketing(requested: 2, maximum: 8), deliveries: [0: .intersection], intercept: intercept,
                             waits: .init(session: .seconds(5), phase: .seconds(5)))
        XCTAssertThrowsError(try lied.owners[0]!.get()) { e in
            XCTAssertTrue("\(e)".contains("regulator") && "\(e)".contains("for bank-0, which has"), "\(e)")
        }
    }

    func testUnionSumInBucketsSumsEveryIdentifierOnceAndNothingCrossesTheWireInTheClear() async throws {
        var rng = SplitMix(state: 33)
        let names = (0..<4).map { "bank-\($0)" }
        var holdings: [[String: Int64]] = []
        for _ in names {
            var h: [String: Int64] = [:]
            for _ in 0..<Int.random(in: 40...80, using: &rng) { h["account-\(Int.random(in: 0..<120, using: &rng))"] = Int64.random(in: -5000...90000, using: &rng) }
            holdings.append(h)
        }
        let holdingsByBank = holdings
        let pki = try TestPKI()
        defer { pki.remove() }
        let auths = try names.map { try pki.keyAuthentication($0) }
        let r = await run(holdings.map { Array($0.keys) }, bucketing: SetBucketing(requested: 3, maximum: 8),
                          deliveries: Dictionary(uniqueKeysWithValues: names.indices.map { ($0, SetDeliveryKind.union) }), mixer: nil,
                          sum: { i, source in
                              let h = holdingsByBank[i]
                              return SetOperationSum(authentication: auths[i], auditRecordHash: [], roundTimeout: .seconds(30),
                                                     totals: { source.values.map { h[String(decoding: $0, as: UTF8.self)]! } })
                          })
        let outcome = try r.aggregator.get()
        var expected: [String: (holders: Int64, total: Int64)] = [:]
        for h in holdings { for (a, v) in h { expected[a, default: (0, 0)].holders += 1; expected[a, default: (0, 0)].total += v } }
        let sums = try XCTUnwrap(outcome.sums).sum.map { Int64(bitPattern: $0) }
        XCTAssertEqual(outcome.multiplicities.unionSize, expected.count)
        XCTAssertEqual(sums.count, 2 * expected.count)
        let pairs = stride(from: 0, to: sums.count, by: 2).map { "\(sums[$0]):\(sums[$0 + 1])" }.sorted()
        XCTAssertEqual(pairs, expected.values.map { "\($0.holders):\($0.total)" }.sorted())
        // The slot counts agree with the aggregator's multiplicities, slot by slot.
        XCTAssertEqual(stride(from: 0, to: sums.count, by: 2).map { sums[$0] }, outcome.multiplicities.counts.map(Int64.init))
        for i in names.indices {
            XCTAssertEqual(try r.owners[i]!.get().unionSize, expected.count)
            XCTAssertEqual(try r.owners[i]!.get().includedInSum, true)
        }
        let everything = WireIndex(r.wire.entries.flatMap(\.bytes))
        for a in expected.keys {
            XCTAssertFalse(everything.contains(Array(a.utf8)), "\(a) on the wire")
            for hash in PlainHashes.of(Array(a.utf8)) { XCTAssertFalse(everything.contains(hash)) }
        }
        XCTAssertFalse(everything.contains(Array("mpcnode-set-bucket-key-v1".utf8)), "the bucket key's input stays in the ring's hash")
    }

    /// A dishonest owner announces fewer identifiers than it holds (its hello is cut, and the announcement
    /// it reads back is restored, so it pads to its real size): the owners see its chains carry more than
    /// the announced size allows and end the ring; nobody gets a result.
    func testAnOwnerAnnouncingASmallerSetIsRefusedInTheRing() async throws {
        let sets = Self.sets(owners: 3, seed: 4).enumerated().map { i, s in i == 1 ? s + (0..<200).map { "extra-\($0)" } : s }
        let cut: UInt64 = 60
        let intercept: InMemoryChannel.Intercept = { from, to, message in
            guard var frame = try? Mpcnode_V1_SessionFrame(serializedBytes: message), case .sets(var sets)? = frame.body else { return [message] }
            if from == "bank-1", to == "regulator", case .hello(var hello)? = sets.body {
                hello.setSize -= cut
                sets.hello = hello
            } else if from == "regulator", to == "bank-1", case .ownerSizes(var m)? = sets.body, m.buckets == 0,
                      let i = m.owners.firstIndex(of: "bank-1") {
                m.sizes[i] += cut
                sets.ownerSizes = m
            } else {
                return [message]
            }
            frame.sets = sets
            return [try! frame.serializedBytes()]
        }
        let r = await run(sets, bucketing: SetBucketing(requested: 4, maximum: 8), deliveries: [0: .intersection, 2: .intersection], intercept: intercept)
        XCTAssertThrowsError(try r.aggregator.get())
        let honest = [0, 2].compactMap { i -> Error? in if case .failure(let e) = r.owners[i]! { return e } else { return nil } }
        XCTAssertEqual(honest.count, 2, "both honest owners end without a result")
        XCTAssertTrue(honest.contains { "\($0)".contains("bank-1") && "\($0)".contains("capacity its announced set size allows") }, "\(honest)")
        if case .success = r.owners[1]! { XCTFail("the dishonest owner got a result") }
    }

    /// A dishonest owner keeps its announced size and its capacities but seals real pseudonyms in place of
    /// dummies (its input holds more identifiers than it counts): the aggregator finds the dummies short
    /// and releases nothing.
    func testAnOwnerSealingRealPseudonymsInPlaceOfDummiesIsCaught() async throws {
        let sets = Self.sets(owners: 3, seed: 5)
        let inflated = InflatingSource(announced: ArrayIdentifierSource(sets[2]), hidden: ArrayIdentifierSource((0..<25).map { "hidden-\($0)" }))
        let r = await run(sets, bucketing: SetBucketing(requested: 2, maximum: 8), deliveries: [0: .intersection], sources: [2: inflated])
        XCTAssertThrowsError(try r.aggregator.get()) { e in
            XCTAssertTrue("\(e)".contains("dummies") && "\(e)".contains("more identifiers than it announced"), "\(e)")
        }
        for (i, o) in r.owners { if case .success = o { XCTFail("bank-\(i) got a result") } }
    }

    // MARK: - Resume after a dropped link (Protocols/multi-party-sets.md "Resume")

    static let resume = SetResume(maximum: 3, reconnectWait: .seconds(20), pause: .milliseconds(50))

    /// A link cut in bucket 2 (of 4) on an owner's way to the mixer (an owner), after every digest of bucket
    /// 2 reached the aggregator (so buckets 0 and 1 were opened): every role resumes once, at bucket 2 (0 and
    /// 1 are not run again), and the outcome is the one-pass run's; likewise in bucket 1 with a data-less mixer.
    func testADroppedLinkResumesAtTheFirstBucketNotDoneAndGivesTheSameResult() async throws {
        let sets = Self.sets(owners: 3, seed: 21)
        let deliveries: [Int: SetDeliveryKind] = [0: .intersection, 2: .onOthersLists]
        let expected = try await run(sets, bucketing: nil, deliveries: deliveries).aggregator.get().multiplicities
        for (mixer, cut) in [(Optional(0), LinkCut(node: "bank-1", stream: "mix-2", afterMessages: 1)),
                             (nil, LinkCut(node: "bank-2", stream: "mix-1", afterMessages: 1))] {
            let opened = Locked<[String]>([])
            let events = Locked<[SetResume.Event]>([])
            var resume = Self.resume
            resume.onResume = { e in events.withValue { $0.append(e) } }
            let r = await run(sets, bucketing: SetBucketing(requested: 4, maximum: 8), deliveries: deliveries, mixer: mixer, resume: resume,
                              cuts: [cut.node: [cut]], opened: opened)
            let what = "cut \(cut.stream) of \(cut.node)"
            let outcome = try r.aggregator.get()
            XCTAssertEqual(Self.summary(outcome.multiplicities), Self.summary(expected), what)
            XCTAssertEqual(outcome.resumes, 1, what)
            for i in 0..<3 { XCTAssertEqual(try r.owners[i]!.get().resumes, 1, "\(what): bank-\(i)") }
            let all = Set(sets.flatMap { $0 })
            let holders = Dictionary(uniqueKeysWithValues: all.map { x in (x, sets.filter { $0.contains(x) }.count) })
            XCTAssertEqual(try XCTUnwrap(Self.received(try r.owners[0]!.get(), source: r.inputs[0])), Set(holders.filter { $0.value == 3 }.keys), what)
            XCTAssertEqual(try XCTUnwrap(Self.received(try r.owners[2]!.get(), source: r.inputs[2])), Set(Set(sets[2]).filter { holders[$0]! >= 2 }), what)
            // Every role (three owners, the aggregator, a data-less mixer) resumed once; the owners had done
            // the buckets before the cut, and the second attempt ran only the rest, under the same key.
            let firstBucket = cut.stream == "mix-2" ? 2 : 1
            XCTAssertEqual(events.value.count, mixer == nil ? 5 : 4, "\(what): \(events.value.map(\.reason))")
            XCTAssertTrue(events.value.allSatisfy { $0.attempt == 1 }, what)
            let streams = Set(opened.value)
            XCTAssertFalse(streams.contains("ring-key-r1"), "\(what): the key was kept")
            for b in 0..<4 {
                XCTAssertEqual(streams.contains("ring-\(b)-r1"), b >= firstBucket, "\(what): bucket \(b) in the second attempt")
            }
            XCTAssertTrue(streams.contains("results-r1"), what)
        }
    }

    /// A lying aggregator that tells an owner, on the resumed attempt, to start after a bucket the owner never
    /// completed (its boxes of that bucket would be missing from the count): the owner refuses, the job fails.
    func testAnOwnerRefusesAResumeThatSkipsABucketItDidNotComplete() async throws {
        let sets = Self.sets(owners: 3, seed: 23)
        let intercept: InMemoryChannel.Intercept = { from, to, message in
            guard from == "regulator", to == "bank-0", var frame = try? Mpcnode_V1_SessionFrame(serializedBytes: message),
                  case .sets(var body)? = frame.body, case .ownerSizes(var m)? = body.body, m.startBucket == 2, !m.rekey, m.buckets == 0 else { return [message] }
            m.startBucket = 3
            body.ownerSizes = m
            frame.sets = body
            return [try! frame.serializedBytes()]
        }
        // (The others may take bank-0's end for a dropped link and wait for it on the next attempt: between
        // daemons the coordinator's abort ends that wait; here a short one does.)
        var resume = Self.resume
        resume.reconnectWait = .seconds(2)
        let r = await run(sets, bucketing: SetBucketing(requested: 4, maximum: 8), deliveries: [0: .intersection], intercept: intercept,
                          resume: resume, cuts: ["bank-1": [LinkCut(node: "bank-1", stream: "mix-2", afterMessages: 1)]])
        XCTAssertThrowsError(try r.owners[0]!.get()) { e in
            XCTAssertTrue("\(e)".contains("regulator") && "\(e)".contains("announces bucket 3 as the first to run"), "\(e)")
        }
        XCTAssertThrowsError(try r.aggregator.get(), "nothing counted with a bucket missing")
    }

    /// An owner that cuts its link once it has its delivery (instead of acknowledging it) gets no second
    /// one: after the release a fault ends the job at every role, nothing is run again (a resumed run could
    /// otherwise deliver again, computed from another set).
    func testNoResumeOnceTheResultIsReleased() async throws {
        let sets = Self.sets(owners: 3, seed: 24)
        let events = Locked<[SetResume.Event]>([])
        var resume = Self.resume
        resume.onResume = { e in events.withValue { $0.append(e) } }
        // bank-1 sends its hello and three digests, then would send its acknowledgement: the link breaks there.
        let r = await run(sets, bucketing: SetBucketing(requested: 3, maximum: 8), deliveries: [1: .intersection], resume: resume,
                          cuts: ["bank-1": [LinkCut(node: "bank-1", stream: "results", afterMessages: 4)]])
        XCTAssertThrowsError(try r.owners[1]!.get()) { e in XCTAssertTrue("\(e)".contains("link cut by the test"), "\(e)") }
        XCTAssertThrowsError(try r.aggregator.get(), "no report after a fault past the release")
        XCTAssertTrue(events.value.isEmpty, "nothing resumed: \(events.value.map(\.reason))")
    }

    /// A cut in the key ring: no owner holds a key, so the second attempt draws a new one and runs every
    /// bucket; and a role whose resumes are used up fails the job everywhere (nothing hangs).
    func testACutKeyRingDrawsANewKeyAndResumesStopAtTheLimit() async throws {
        let sets = Self.sets(owners: 3, seed: 22)
        let expected = try await run(sets, bucketing: nil, deliveries: [:]).aggregator.get().multiplicities
        let opened = Locked<[String]>([])
        let keyCut = LinkCut(node: "bank-0", stream: "ring-key", afterMessages: 0)
        let r = await run(sets, bucketing: SetBucketing(requested: 3, maximum: 8), deliveries: [:], resume: Self.resume,
                          cuts: ["bank-0": [keyCut]], opened: opened)
        XCTAssertEqual(Self.summary(try r.aggregator.get().multiplicities), Self.summary(expected))
        XCTAssertTrue(Set(opened.value).isSuperset(of: ["ring-key-r1", "ring-0-r1", "ring-1-r1", "ring-2-r1"]), "\(opened.value)")
        XCTAssertFalse(opened.value.contains("ring-0"), "no bucket ran before the key")
        // One resume allowed, two cuts: the second attempt fails too, and every role ends.
        var once = Self.resume
        once.maximum = 1
        let events = Locked<[SetResume.Event]>([])
        once.onResume = { e in events.withValue { $0.append(e) } }
        let twice = await run(sets, bucketing: SetBucketing(requested: 3, maximum: 8), deliveries: [:], resume: once,
                              cuts: ["bank-1": [LinkCut(node: "bank-1", stream: "mix-1", afterMessages: 1),
                                                LinkCut(node: "bank-1", stream: "mix-2-r1", afterMessages: 1)]])
        XCTAssertThrowsError(try twice.aggregator.get())
        for i in 0..<3 { XCTAssertThrowsError(try twice.owners[i]!.get(), "bank-\(i)") }
        // Each of the four roles resumed once (the first cut), then the second cut ended the job.
        XCTAssertEqual(events.value.count, 4, "\(events.value.map(\.reason))")
        XCTAssertThrowsError(try twice.owners[1]!.get()) { e in XCTAssertTrue("\(e)".contains("link cut by the test"), "\(e)") }
    }
}

/// A crafted input: it counts (and so announces) only its `announced` identifiers, but puts the `hidden`
/// ones into its buckets as well, where an honest owner would have dummies.
final class InflatingSource: BucketedIdentifierSource, @unchecked Sendable {
    let announced: ArrayIdentifierSource, hidden: ArrayIdentifierSource
    init(announced: ArrayIdentifierSource, hidden: ArrayIdentifierSource) { self.announced = announced; self.hidden = hidden }
    var count: Int { announced.count }
    func identifiers(in range: Range<Int>) async throws -> [[UInt8]] { try await announced.identifiers(in: range) }
    func assignBuckets(key: BucketKey, count: Int) async throws -> [Int] {
        _ = try await hidden.assignBuckets(key: key, count: count)
        return try await announced.assignBuckets(key: key, count: count)
    }
    func members(ofBucket bucket: Int) async throws -> BucketMembers {
        var members = try await announced.members(ofBucket: bucket)
        let extra = try await hidden.members(ofBucket: bucket)
        // Positions of the hidden ones reuse position 0: the crafted owner keeps nothing of them.
        for i in 0..<extra.count { members.append(position: 0, identifier: extra.identifier(i)) }
        return members
    }

}

/// A dropped link a test makes: `node`'s session of `stream` ends after it sent `afterMessages` messages.
struct LinkCut: Sendable {
    var node: String
    var stream: String
    var afterMessages: Int
}

/// A node's in-memory port that cuts the sessions it opens as `cuts` say (each once), and notes every
/// stream it opens or accepts.
struct LinkCuttingPort: SessionPort {
    let inner: InMemorySessionPort
    let cuts: [LinkCut]
    let opened: Locked<[String]>
    var me: NodeID { inner.me }
    var traffic: SessionTraffic { inner.traffic }

    func withSession<R: Sendable>(stream: String, to peer: NodeID, _ body: (any MessageChannel) async throws -> R) async throws -> R {
        opened.withValue { $0.append(stream) }
        return try await inner.withSession(stream: stream, to: peer) { channel in
            guard let cut = cuts.first(where: { $0.stream == stream }) else { return try await body(channel) }
            return try await body(CuttingChannel(inner: channel, after: cut.afterMessages))
        }
    }

    func accept(stream: String, from peer: NodeID, timeout: Duration) async throws -> any MessageChannel {
        try await inner.accept(stream: stream, from: peer, timeout: timeout)
    }

    func cancelAccepts(reason: String) async { await inner.cancelAccepts(reason: reason) }
}

/// A channel that ends itself (both ways, as a broken connection) when it is about to send message `after + 1`.
final class CuttingChannel: MessageChannel, @unchecked Sendable {
    let inner: any MessageChannel
    let after: Int
    private let sent = Locked(0)
    init(inner: any MessageChannel, after: Int) { self.inner = inner; self.after = after }
    var peer: NodeID { inner.peer }

    func send(_ message: [UInt8]) async throws {
        var cut = false
        sent.withValue { $0 += 1; cut = $0 > after }
        if cut {
            await inner.close()
            throw ChannelError.peerDisconnected(peer: peer, detail: "link cut by the test")
        }
        try await inner.send(message)
    }

    func receive() async throws -> [UInt8] { try await inner.receive() }
    func close() async { await inner.close() }
    func abort() async { await inner.abort() }
    func untilEnded() async { await inner.untilEnded() }
}
