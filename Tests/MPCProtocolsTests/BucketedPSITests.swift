import XCTest
import MPCCrypto
import MPCTestSupport
import MPCWire
@testable import MPCProtocols

/// Bucketed PSI in memory (Protocols/psi-buckets.md): the same intersection as one bucket, padded
/// buckets, the bucket count each side allows, resume after a stop, and a peer that reruns a finished
/// bucket with another set.
final class BucketedPSITests: XCTestCase {
    typealias Side = BucketedPSIHarness.Side

    func run(_ a: Side, _ b: Side, group: BlindingGroup = .x25519, tap: WireLog? = nil)
        async -> (a: Result<BucketedPSIParty.Report, Error>, b: Result<BucketedPSIParty.Report, Error>) {
        await BucketedPSIHarness.run(a, b, group: group, tap: tap)
    }

    static func outcome<T>(_ body: () async throws -> T) async -> Result<T, Error> { await BucketedPSIHarness.outcome(body) }

    func identifiers(_ checkpoints: InMemoryBucketCheckpoints, _ source: ArrayIdentifierSource) -> Set<String> {
        BucketedPSIHarness.identifiers(checkpoints, source)
    }

    func randomSets(seed: UInt64, sizeA: Int, sizeB: Int, universe: Int) -> ([String], [String]) {
        BucketedPSIHarness.randomSets(seed: seed, sizeA: sizeA, sizeB: sizeB, universe: universe)
    }

    func testEveryBucketCountGivesThePlainIntersectionAndEveryBucketIsPadded() async throws {
        let (setA, setB) = randomSets(seed: 15, sizeA: 400, sizeB: 300, universe: 900)
        let expected = Set(setA).intersection(Set(setB))
        XCTAssertGreaterThan(expected.count, 50)
        for buckets in [1, 7, 64] {
            let a = Side(source: ArrayIdentifierSource(setA), checkpoints: InMemoryBucketCheckpoints(), buckets: buckets)
            let b = Side(source: ArrayIdentifierSource(setB), checkpoints: InMemoryBucketCheckpoints(), buckets: 1)
            let (ra, rb) = await run(a, b)
            let reportA = try ra.get(), reportB = try rb.get()
            XCTAssertEqual(identifiers(a.checkpoints as! InMemoryBucketCheckpoints, a.source), expected, "\(buckets) buckets, A's view")
            XCTAssertEqual(identifiers(b.checkpoints as! InMemoryBucketCheckpoints, b.source), expected, "\(buckets) buckets, B's view")
            XCTAssertEqual(reportA.bucketCount, buckets, "the larger proposal wins")
            XCTAssertEqual(reportB.bucketCount, buckets)
            let capacityA = BucketSizing.capacity(setSize: a.source.count, buckets: buckets)
            XCTAssertEqual(reportA.capacity, capacityA)
            XCTAssertEqual(reportB.peerCapacity, capacityA, "both sides compute A's capacity from A's announced size")
            if buckets == 1 {
                XCTAssertEqual(capacityA, a.source.count, "one bucket is not padded: its size is announced anyway")
            } else {
                XCTAssertGreaterThan(capacityA * buckets, a.source.count, "buckets are padded")
            }
            // Every bucket of A went out at the capacity, whatever its true size.
            XCTAssertEqual(reportA.scalarMultiplications, buckets * (reportA.capacity + reportA.peerCapacity))
        }
    }

    func testBucketSizesOnTheWireAreAllTheCapacity() async throws {
        let (setA, setB) = randomSets(seed: 16, sizeA: 200, sizeB: 250, universe: 400)
        let log = WireLog()
        let a = Side(source: ArrayIdentifierSource(setA), checkpoints: InMemoryBucketCheckpoints(), buckets: 5)
        let b = Side(source: ArrayIdentifierSource(setB), checkpoints: InMemoryBucketCheckpoints())
        let (ra, _) = await run(a, b, tap: log)
        let report = try ra.get()
        var perBucket: [UInt64: Int] = [:]
        var headers: [UInt64] = []
        for (sender, bytes) in log.entries where sender == "bank-a" {
            guard let frame = try? Mpcnode_V1_SessionFrame(serializedBytes: bytes), case .psi(let m)? = frame.body else { continue }
            if case .header(let h)? = m.body { headers.append(h.setSize) }
            if case .blinded(let batch)? = m.body { perBucket[UInt64(headers.count - 1), default: 0] += batch.elements.count / 32 }
        }
        XCTAssertEqual(headers, Array(repeating: UInt64(report.capacity), count: 5))
        XCTAssertEqual(perBucket.count, 5)
        XCTAssertTrue(perBucket.values.allSatisfy { $0 == report.capacity }, "\(perBucket)")
    }

    func testNoIdentifierOrPlainHashOfOneIsSent() async throws {
        let setA = (0..<300).map { "+8613\(String(format: "%09d", $0 * 7919))" }
        let setB = (0..<300).map { "+8613\(String(format: "%09d", $0 * 7907))" }
        let log = WireLog()
        let a = Side(source: ArrayIdentifierSource(setA), checkpoints: InMemoryBucketCheckpoints(), buckets: 4)
        let b = Side(source: ArrayIdentifierSource(setB), checkpoints: InMemoryBucketCheckpoints())
        let (ra, rb) = await run(a, b, tap: log)
        _ = try ra.get(); _ = try rb.get()
        BucketedPSIHarness.assertNothingIdentifying(log, setA + setB)
    }

    func testABucketCountAboveTheNodesLimitIsRefusedBeforeAnyElement() async throws {
        let log = WireLog()
        let a = Side(source: ArrayIdentifierSource(["1", "2", "3"]), checkpoints: InMemoryBucketCheckpoints(), buckets: 64, maximumBuckets: 100_000)
        let b = Side(source: ArrayIdentifierSource(["2", "3", "4"]), checkpoints: InMemoryBucketCheckpoints(), maximumBuckets: 32)
        let (ra, rb) = await run(a, b, tap: log)
        guard case .failure(let e) = rb else { return XCTFail("B accepted 64 buckets above its limit of 32") }
        XCTAssertTrue("\(e)".contains("allows 1 to 32"), "\(e)")
        guard case .failure = ra else { return XCTFail("A should fail too") }
        for (_, bytes) in log.entries {
            guard let frame = try? Mpcnode_V1_SessionFrame(serializedBytes: bytes), case .psi(let m)? = frame.body else { continue }
            if case .blinded? = m.body { XCTFail("an element was sent") }
        }
    }

    func testCardinalityOnlyRunsInOneBucket() async throws {
        let a = Side(source: ArrayIdentifierSource(["1", "2", "3", "5"]), checkpoints: InMemoryBucketCheckpoints(), cardinalityOnly: true)
        let b = Side(source: ArrayIdentifierSource(["2", "3", "4"]), checkpoints: InMemoryBucketCheckpoints(), receives: false, cardinalityOnly: true)
        let (ra, rb) = await run(a, b)
        XCTAssertEqual(try ra.get().bucketCount, 1)
        _ = try rb.get()
        XCTAssertEqual((a.checkpoints as! InMemoryBucketCheckpoints).cardinality, 2)
        // A peer asking for more buckets is refused: per-bucket counts would tell more than the cardinality.
        let c = Side(source: ArrayIdentifierSource(["1", "2"]), checkpoints: InMemoryBucketCheckpoints(), buckets: 8, cardinalityOnly: false)
        let d = Side(source: ArrayIdentifierSource(["2", "3"]), checkpoints: InMemoryBucketCheckpoints(), receives: false, cardinalityOnly: true)
        let (_, rd) = await run(c, d)
        guard case .failure(let e) = rd else { return XCTFail("a cardinality-only party accepted 8 buckets") }
        XCTAssertTrue("\(e)".contains("cardinality-only"), "\(e)")
    }

    /// A stop after some buckets (here: A fails to record bucket 3) and a second run with the same
    /// checkpoints: both resume at the first bucket either lacks, redo only the rest, and end with the
    /// plain intersection.
    func testAStoppedJobResumesAtTheFirstIncompleteBucket() async throws {
        let (setA, setB) = randomSets(seed: 17, sizeA: 500, sizeB: 500, universe: 1200)
        let expected = Set(setA).intersection(Set(setB))
        let sourceA = ArrayIdentifierSource(setA), sourceB = ArrayIdentifierSource(setB)
        let storeA = InMemoryBucketCheckpoints(), storeB = InMemoryBucketCheckpoints()
        let first = await run(Side(source: sourceA, checkpoints: StopAtBucket(storeA, bucket: 3), buckets: 8),
                              Side(source: sourceB, checkpoints: storeB))
        guard case .failure = first.a, case .failure = first.b else { return XCTFail("the first run should stop") }
        XCTAssertEqual(storeA.current?.firstIncomplete, 3)
        XCTAssertEqual(storeB.current?.firstIncomplete, 4, "B completed bucket 3 before A failed to record it")
        let second = await run(Side(source: sourceA, checkpoints: storeA, buckets: 8), Side(source: sourceB, checkpoints: storeB))
        let ra = try second.a.get(), rb = try second.b.get()
        XCTAssertTrue(ra.resumed && rb.resumed)
        XCTAssertEqual(ra.firstBucket, 3, "the smaller of the two sides' first incomplete buckets")
        XCTAssertEqual(rb.firstBucket, 3)
        XCTAssertEqual(ra.scalarMultiplications, 5 * (ra.capacity + ra.peerCapacity), "buckets 3…7 only")
        XCTAssertEqual(identifiers(storeA, sourceA), expected)
        XCTAssertEqual(identifiers(storeB, sourceB), expected)
    }

    /// B completed bucket 3 and A did not; B then reruns the job with one identifier of bucket 3
    /// changed. A redoes bucket 3, but B had completed it: B checks A's stream — unchanged, so B
    /// answers. The other way round: B lost bucket 3 and changed its set; A, which completed bucket 3,
    /// refuses before returning anything of it.
    func testAPeerThatRerunsAFinishedBucketWithAnotherSetIsRefused() async throws {
        let (setA, setB) = randomSets(seed: 18, sizeA: 300, sizeB: 300, universe: 700)
        let sourceA = ArrayIdentifierSource(setA), sourceB = ArrayIdentifierSource(setB)
        let storeA = InMemoryBucketCheckpoints(), storeB = InMemoryBucketCheckpoints()
        let first = await run(Side(source: sourceA, checkpoints: storeA, buckets: 6),
                              Side(source: sourceB, checkpoints: StopAtBucket(storeB, bucket: 3)))
        guard case .failure = first.b else { return XCTFail("B should stop at bucket 3") }
        XCTAssertEqual(storeA.current?.firstIncomplete, 4)
        // B swaps one of its identifiers of bucket 3 for a new one of bucket 3 (same size, same bucket sizes).
        let key = try XCTUnwrap(storeB.current?.key)
        let inBucket3 = setB.first { key.bucket(of: Array($0.utf8), count: 6) == 3 }!
        let replacement = (0..<10_000).lazy.map { "+86999\($0)" }.first { key.bucket(of: Array($0.utf8), count: 6) == 3 }!
        let changed = ArrayIdentifierSource(setB.map { $0 == inBucket3 ? replacement : $0 })
        let log = WireLog()
        let second = await run(Side(source: sourceA, checkpoints: storeA, buckets: 6), Side(source: changed, checkpoints: storeB), tap: log)
        guard case .failure(let e) = second.a else { return XCTFail("A answered a changed bucket") }
        XCTAssertTrue("\(e)".contains("completed before with another set"), "\(e)")
        guard case .failure = second.b else { return XCTFail("B should learn that A refused") }
        for (sender, bytes) in log.entries where sender == "bank-a" {
            guard let frame = try? Mpcnode_V1_SessionFrame(serializedBytes: bytes), case .psi(let m)? = frame.body else { continue }
            if case .doubleBlinded? = m.body { XCTFail("A returned double-blinded elements of the rerun bucket") }
        }
        XCTAssertEqual(storeA.current?.completed.count, 4, "nothing more was recorded")
    }

    /// B's messages rewritten in flight (a dishonest B with a valid certificate): a resume naming a bucket
    /// beyond the count, and a bucket header announcing one element more than B's capacity. A refuses
    /// each before comparing anything, and records nothing more.
    func testCraftedResumeAndBucketHeaderAreRefused() async throws {
        let rewriting = BucketedPSIHarness.rewriting
        func runBoth(_ storeA: InMemoryBucketCheckpoints, _ storeB: any BucketCheckpoints, intercept: InMemoryChannel.Intercept?)
            async -> (Result<BucketedPSIParty.Report, Error>, Result<BucketedPSIParty.Report, Error>) {
            let (ca, cb) = InMemoryChannel.pair("bank-a", "bank-b", intercept: intercept)
            let psi = { (me: Bool) in PSIParty.Configuration(jobID: "j", group: .x25519, selfReceivesOutput: me, peerReceivesOutput: !me, cardinalityOnly: false) }
            let pa = BucketedPSIParty(configuration: .init(psi: psi(true), isFirstParty: true, requestedBuckets: 4),
                                      source: ArrayIdentifierSource((0..<200).map { "+86\($0)" }), checkpoints: storeA, channel: ca)
            let pb = BucketedPSIParty(configuration: .init(psi: psi(false), isFirstParty: false),
                                      source: ArrayIdentifierSource((100..<300).map { "+86\($0)" }), checkpoints: storeB, channel: cb)
            async let ra = Self.outcome { try await pa.run() }
            async let rb = Self.outcome { try await pb.run() }
            return await (ra, rb)
        }
        // A resume that names bucket 1,000,000 of 4.
        let storeA = InMemoryBucketCheckpoints(), storeB = InMemoryBucketCheckpoints()
        _ = await runBoth(storeA, StopAtBucket(storeB, bucket: 1), intercept: nil)
        let doneBefore = storeA.current?.completed.count
        let (resumeA, _) = await runBoth(storeA, storeB, intercept: rewriting { m in
            if case .bucketHello(var h)? = m.body { h.nextBucket = 1_000_000; m.bucketHello = h }
        })
        guard case .failure(let e1) = resumeA else { return XCTFail("A resumed at a bucket beyond the count") }
        XCTAssertTrue("\(e1)".contains("cannot resume"), "\(e1)")
        XCTAssertEqual(storeA.current?.completed.count, doneBefore, "nothing more was recorded")
        // A bucket header one element above B's capacity.
        let freshA = InMemoryBucketCheckpoints()
        let (headerA, _) = await runBoth(freshA, InMemoryBucketCheckpoints(), intercept: rewriting { m in
            if case .header(var h)? = m.body { h.setSize += 1; m.header = h }
        })
        guard case .failure(let e2) = headerA else { return XCTFail("A accepted a bucket above B's capacity") }
        XCTAssertTrue("\(e2)".contains("is refused"), "\(e2)")
        XCTAssertEqual(freshA.current?.completed.count, 0)
    }

    func testAPartyThatLostTheJobsStateCannotResume() async throws {
        let storeA = InMemoryBucketCheckpoints()
        _ = await run(Side(source: ArrayIdentifierSource(["1", "2", "3"]), checkpoints: StopAtBucket(storeA, bucket: 1), buckets: 2),
                      Side(source: ArrayIdentifierSource(["2", "3", "4"]), checkpoints: InMemoryBucketCheckpoints()))
        let (ra, rb) = await run(Side(source: ArrayIdentifierSource(["1", "2", "3"]), checkpoints: storeA, buckets: 2),
                                 Side(source: ArrayIdentifierSource(["2", "3", "4"]), checkpoints: InMemoryBucketCheckpoints()))
        guard case .failure(let ea) = ra, case .failure(let eb) = rb else { return XCTFail("a resume against a fresh peer should fail") }
        XCTAssertTrue("\(ea)".contains("no longer holds this job's state"), "\(ea)")
        XCTAssertTrue("\(eb)".contains("cannot resume"), "\(eb)")
    }

    /// A bucket beyond its capacity (forced here by a source that reports one the first time) makes
    /// both sides draw new shares: the job runs under another key and still gives the intersection.
    func testAnOverflowingBucketDrawsANewKey() async throws {
        let (setA, setB) = randomSets(seed: 19, sizeA: 100, sizeB: 100, universe: 200)
        let storeA = InMemoryBucketCheckpoints(), storeB = InMemoryBucketCheckpoints()
        let overflowing = OverflowOnce(ArrayIdentifierSource(setA))
        let (ca, cb) = InMemoryChannel.pair("bank-a", "bank-b")
        let psiA = PSIParty.Configuration(jobID: "j", group: .x25519, selfReceivesOutput: true, peerReceivesOutput: false, cardinalityOnly: false)
        let psiB = PSIParty.Configuration(jobID: "j", group: .x25519, selfReceivesOutput: false, peerReceivesOutput: true, cardinalityOnly: false)
        let pa = BucketedPSIParty(configuration: .init(psi: psiA, isFirstParty: true, requestedBuckets: 3),
                                  source: overflowing, checkpoints: storeA, channel: ca)
        let pb = BucketedPSIParty(configuration: .init(psi: psiB, isFirstParty: false),
                                  source: ArrayIdentifierSource(setB), checkpoints: storeB, channel: cb)
        async let ra = pa.run()
        async let rb = pb.run()
        _ = try await (ra, rb)
        XCTAssertEqual(overflowing.keys.count, 2, "a second key was drawn")
        XCTAssertNotEqual(overflowing.keys.first, overflowing.keys.last)
        XCTAssertEqual(storeA.current?.key, overflowing.keys.last)
        XCTAssertEqual(Set(storeA.positions.map { String(decoding: overflowing.inner.values[$0], as: UTF8.self) }),
                       Set(setA).intersection(Set(setB)))
    }
}

/// Checkpoints that fail to record one bucket (a crash between computing it and storing it).
final class StopAtBucket: BucketCheckpoints, @unchecked Sendable {
    let inner: InMemoryBucketCheckpoints
    let bucket: Int
    init(_ inner: InMemoryBucketCheckpoints, bucket: Int) { self.inner = inner; self.bucket = bucket }
    struct Stopped: Error {}
    func load() async throws -> BucketedPSIState? { try await inner.load() }
    func begin(_ state: BucketedPSIState) async throws { try await inner.begin(state) }
    func complete(bucket: Int, output: BucketOutput, peerStreamDigest: [UInt8]) async throws {
        if bucket == self.bucket { throw Stopped() }
        try await inner.complete(bucket: bucket, output: output, peerStreamDigest: peerStreamDigest)
    }
    func release(bucket: Int, instance: Int) async throws -> [UInt8]? { try await inner.release(bucket: bucket, instance: instance) }
    func recordRelease(bucket: Int, instance: Int, digests: [UInt8]) async throws -> [UInt8] {
        try await inner.recordRelease(bucket: bucket, instance: instance, digests: digests)
    }
}

/// A source whose first bucketing reports a bucket of a million identifiers.
final class OverflowOnce: BucketedIdentifierSource, @unchecked Sendable {
    let inner: ArrayIdentifierSource
    private let lock = NSLock()
    private var _keys: [BucketKey] = []
    init(_ inner: ArrayIdentifierSource) { self.inner = inner }
    var keys: [BucketKey] { lock.withLock { _keys } }
    var count: Int { inner.count }
    func identifiers(in range: Range<Int>) async throws -> [[UInt8]] { try await inner.identifiers(in: range) }
    func assignBuckets(key: BucketKey, count: Int) async throws -> [Int] {
        var sizes = try await inner.assignBuckets(key: key, count: count)
        let first = lock.withLock { _keys.append(key); return _keys.count == 1 }
        if first { sizes[0] = 1_000_000 }
        return sizes
    }
    func members(ofBucket bucket: Int) async throws -> BucketMembers { try await inner.members(ofBucket: bucket) }
}
