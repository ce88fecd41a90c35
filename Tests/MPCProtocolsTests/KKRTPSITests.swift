import XCTest
import MPCCrypto
import MPCTestSupport
import MPCWire
@testable import MPCProtocols

/// PSI with the KKRT OPRF (Protocols/psi-oprf.md) inside the bucketed PSI, in memory: the plain
/// intersection for every bucket count and either output side, nothing identifying on the wire, the
/// protocol both sides must agree on, resume, a peer rerunning a finished bucket, crafted messages.
final class KKRTPSITests: XCTestCase {
    typealias Side = BucketedPSIHarness.Side

    func side(_ values: [String], _ checkpoints: any BucketCheckpoints = InMemoryBucketCheckpoints(), buckets: Int? = nil,
              receives: Bool = true) -> Side {
        Side(source: ArrayIdentifierSource(values), checkpoints: checkpoints, buckets: buckets, receives: receives, psiProtocol: .kkrt)
    }

    func found(_ s: Side) -> Set<String> {
        BucketedPSIHarness.identifiers(s.checkpoints as! InMemoryBucketCheckpoints, s.source)
    }

    func testTheIntersectionForEveryBucketCountAndOutputSide() async throws {
        let (setA, setB) = BucketedPSIHarness.randomSets(seed: 31, sizeA: 900, sizeB: 700, universe: 2000)
        let expected = Set(setA).intersection(Set(setB))
        XCTAssertGreaterThan(expected.count, 150)
        for buckets in [1, 3] {
            for (aReceives, bReceives) in [(true, true), (true, false), (false, true)] {
                let a = side(setA, buckets: buckets, receives: aReceives), b = side(setB, receives: bReceives)
                let (ra, rb) = await BucketedPSIHarness.run(a, b)
                let reportA = try ra.get(), reportB = try rb.get()
                XCTAssertEqual(reportA.bucketCount, buckets)
                XCTAssertEqual(reportB.bucketCount, buckets)
                XCTAssertEqual(found(a), aReceives ? expected : [], "\(buckets) buckets, A receives: \(aReceives)")
                XCTAssertEqual(found(b), bReceives ? expected : [], "\(buckets) buckets, B receives: \(bReceives)")
                XCTAssertEqual(reportA.scalarMultiplications, 0, "no group operation per element")
            }
        }
    }

    /// Disjoint sets give an empty intersection (no false match), and a set inside the other gives it whole.
    func testDisjointAndContainedSets() async throws {
        let a = side((0..<500).map { "acct-\($0)" }, buckets: 2), b = side((500..<1000).map { "acct-\($0)" })
        let (ra, rb) = await BucketedPSIHarness.run(a, b)
        _ = try ra.get(); _ = try rb.get()
        XCTAssertEqual(found(a), [])
        XCTAssertEqual(found(b), [])
        let c = side((0..<300).map { "acct-\($0)" }), d = side((0..<1000).map { "acct-\($0)" })
        let (rc, rd) = await BucketedPSIHarness.run(c, d)
        _ = try rc.get(); _ = try rd.get()
        XCTAssertEqual(found(c), Set((0..<300).map { "acct-\($0)" }))
        XCTAssertEqual(found(d), Set((0..<300).map { "acct-\($0)" }))
    }

    /// What crosses the wire: no identifier, no plain hash of one.
    func testNoIdentifierOrPlainHashIsSent() async throws {
        let setA = (0..<300).map { "+8613\(String(format: "%09d", $0 * 7919))" }
        let setB = (0..<300).map { "+8613\(String(format: "%09d", $0 * 7907))" }
        let log = WireLog()
        let a = side(setA, buckets: 2), b = side(setB)
        let (ra, rb) = await BucketedPSIHarness.run(a, b, tap: log)
        _ = try ra.get(); _ = try rb.get()
        XCTAssertFalse(found(a).isEmpty, "the sets intersect, so values matched")
        BucketedPSIHarness.assertNothingIdentifying(log, setA + setB)
    }

    func testBothSidesMustRunTheSameProtocolAndCardinalityOnlyIsRefused() async throws {
        var a = side(["1", "2", "3"]), b = side(["2", "3", "4"])
        b.psiProtocol = .ecdh
        let (ra, rb) = await BucketedPSIHarness.run(a, b)
        guard case .failure(let ea) = ra, case .failure(let eb) = rb else { return XCTFail("a protocol mismatch ran") }
        XCTAssertTrue("\(ea)".contains("PSI protocol") || "\(eb)".contains("PSI protocol"), "\(ea) / \(eb)")
        a = side(["1", "2", "3"])
        a.cardinalityOnly = true
        b = side(["2", "3", "4"], receives: false)
        b.cardinalityOnly = true
        let (rc, _) = await BucketedPSIHarness.run(a, b)
        guard case .failure(let ec) = rc else { return XCTFail("a cardinality-only KKRT PSI ran") }
        XCTAssertTrue("\(ec)".contains("cardinality-only"), "\(ec)")
    }

    func testAStoppedJobResumesAtTheFirstIncompleteBucket() async throws {
        let (setA, setB) = BucketedPSIHarness.randomSets(seed: 32, sizeA: 600, sizeB: 600, universe: 1400)
        let expected = Set(setA).intersection(Set(setB))
        let storeA = InMemoryBucketCheckpoints(), storeB = InMemoryBucketCheckpoints()
        let sourceA = ArrayIdentifierSource(setA), sourceB = ArrayIdentifierSource(setB)
        var a = side([], StopAtBucket(storeA, bucket: 3), buckets: 6), b = side([], storeB)
        a.source = sourceA
        b.source = sourceB
        let first = await BucketedPSIHarness.run(a, b)
        guard case .failure = first.a, case .failure = first.b else { return XCTFail("the first run should stop") }
        XCTAssertEqual(storeA.current?.firstIncomplete, 3)
        XCTAssertEqual(storeB.current?.firstIncomplete, 4, "B completed bucket 3 before A failed to record it")
        a.checkpoints = storeA
        let second = await BucketedPSIHarness.run(a, b)
        let ra = try second.a.get(), rb = try second.b.get()
        XCTAssertTrue(ra.resumed && rb.resumed)
        XCTAssertEqual(ra.firstBucket, 3)
        XCTAssertEqual(rb.firstBucket, 3, "B redoes bucket 3: A's redone stream is the one it saw")
        XCTAssertEqual(BucketedPSIHarness.identifiers(storeA, sourceA), expected)
        XCTAssertEqual(BucketedPSIHarness.identifiers(storeB, sourceB), expected)
    }

    /// A completed bucket 3, B did not; B reruns it with one identifier changed. In instance 1 B is
    /// the receiver: A, the sender, had completed the bucket and refuses B's changed columns before
    /// sending any value of it.
    func testAPeerThatRerunsAFinishedBucketWithAnotherSetIsRefused() async throws {
        let (setA, setB) = BucketedPSIHarness.randomSets(seed: 33, sizeA: 300, sizeB: 300, universe: 700)
        let storeA = InMemoryBucketCheckpoints(), storeB = InMemoryBucketCheckpoints()
        var a = side(setA, storeA, buckets: 6), b = side(setB, StopAtBucket(storeB, bucket: 3))
        let first = await BucketedPSIHarness.run(a, b)
        guard case .failure = first.b else { return XCTFail("B should stop at bucket 3") }
        XCTAssertEqual(storeA.current?.firstIncomplete, 4)
        let key = try XCTUnwrap(storeB.current?.key)
        let inBucket3 = setB.first { key.bucket(of: Array($0.utf8), count: 6) == 3 }!
        let replacement = (0..<10_000).lazy.map { "+86999\($0)" }.first { key.bucket(of: Array($0.utf8), count: 6) == 3 }!
        b = side(setB.map { $0 == inBucket3 ? replacement : $0 }, storeB)
        a.checkpoints = storeA
        let log = WireLog()
        let second = await BucketedPSIHarness.run(a, b, tap: log)
        guard case .failure(let e) = second.a else { return XCTFail("A answered a changed bucket") }
        XCTAssertTrue("\(e)".contains("completed before with another set"), "\(e)")
        var valuesOfBucket3ByA = 0
        for (sender, bytes) in log.entries where sender == "bank-a" {
            guard let frame = try? Mpcnode_V1_SessionFrame(serializedBytes: bytes), case .psi(let m)? = frame.body else { continue }
            if case .kkrtValues(let v)? = m.body, v.bucket == 3, v.instance == 1 { valuesOfBucket3ByA += 1 }
        }
        XCTAssertEqual(valuesOfBucket3ByA, 0, "A sent no value of the rerun bucket to B")
        XCTAssertEqual(storeA.current?.completed.count, 4, "nothing more was recorded")
    }

    /// Which KKRT messages of `bucket` a party sent, by kind.
    static func sent(by node: String, bucket: UInt64, in log: WireLog) -> Set<String> {
        var kinds = Set<String>()
        for (sender, bytes) in log.entries where sender == node {
            guard let frame = try? Mpcnode_V1_SessionFrame(serializedBytes: bytes), case .psi(let m)? = frame.body else { continue }
            switch m.body {
            case .kkrtChoice(let c)? where c.bucket == bucket: kinds.insert("choice")
            case .kkrtColumns(let c)? where c.bucket == bucket: kinds.insert("columns")
            case .kkrtValues(let v)? where v.bucket == bucket: kinds.insert("values")
            default: break
            }
        }
        return kinds
    }

    /// Only B receives: A is the sender of every bucket. A completed bucket 3, B did not.
    func senderCompletedBucket3() async throws -> (setA: [String], setB: [String], storeA: InMemoryBucketCheckpoints, storeB: InMemoryBucketCheckpoints) {
        let (setA, setB) = BucketedPSIHarness.randomSets(seed: 34, sizeA: 300, sizeB: 300, universe: 700)
        let storeA = InMemoryBucketCheckpoints(), storeB = InMemoryBucketCheckpoints()
        let first = await BucketedPSIHarness.run(side(setA, storeA, buckets: 6, receives: false), side(setB, StopAtBucket(storeB, bucket: 3)))
        guard case .failure = first.b else { throw XCTSkip("B should stop at bucket 3") }
        XCTAssertEqual(storeA.current?.firstIncomplete, 4)
        return (setA, setB, storeA, storeB)
    }

    /// The sender's own checks (A never receives here): B reruns bucket 3 with one identifier changed,
    /// or with another base-OT point; A refuses before its choice (other point) or its values (other set).
    func testTheSenderRefusesARerunWithAnotherSetOrAnotherOpening() async throws {
        var (setA, setB, storeA, storeB) = try await senderCompletedBucket3()
        let key = try XCTUnwrap(storeB.current?.key)
        let inBucket3 = setB.first { key.bucket(of: Array($0.utf8), count: 6) == 3 }!
        let replacement = (0..<10_000).lazy.map { "+86999\($0)" }.first { key.bucket(of: Array($0.utf8), count: 6) == 3 }!
        let log = WireLog()
        let changedSet = await BucketedPSIHarness.run(side(setA, storeA, buckets: 6, receives: false),
                                                      side(setB.map { $0 == inBucket3 ? replacement : $0 }, storeB), tap: log)
        guard case .failure(let e) = changedSet.a else { return XCTFail("A answered a changed bucket") }
        XCTAssertTrue("\(e)".contains("completed before with another set"), "\(e)")
        XCTAssertFalse(Self.sent(by: "bank-a", bucket: 3, in: log).contains("values"), "A sent values of the rerun bucket")

        (setA, setB, storeA, storeB) = try await senderCompletedBucket3()
        let other = Ristretto255.random()
        let log2 = WireLog()
        let changedPoint = await BucketedPSIHarness.run(side(setA, storeA, buckets: 6, receives: false), side(setB, storeB), tap: log2,
                                                        intercept: BucketedPSIHarness.rewriting { m in
            if case .kkrtOpen(var o)? = m.body, o.bucket == 3 { o.baseOtPoint = Data(GroupElement.pack([other])); m.kkrtOpen = o }
        })
        guard case .failure(let e2) = changedPoint.a else { return XCTFail("A answered another opening") }
        XCTAssertTrue("\(e2)".contains("another opening"), "\(e2)")
        XCTAssertEqual(Self.sent(by: "bank-a", bucket: 3, in: log2), [], "A sent nothing of the rerun bucket")
        XCTAssertEqual(storeA.current?.completed.count, 4, "nothing more was recorded")
    }

    /// A (the sender) sent every value of bucket 3 but stopped before recording it complete; B completed
    /// it. B then reruns bucket 3 with one bit of its columns flipped: A's durable record of the stream
    /// it answered refuses the new columns before any value.
    func testASenderThatAnsweredButDidNotCompleteStillRefusesOtherColumns() async throws {
        let (setA, setB) = BucketedPSIHarness.randomSets(seed: 35, sizeA: 300, sizeB: 300, universe: 700)
        let storeA = InMemoryBucketCheckpoints(), storeB = InMemoryBucketCheckpoints()
        let first = await BucketedPSIHarness.run(side(setA, StopAtBucket(storeA, bucket: 3), buckets: 6, receives: false), side(setB, storeB))
        guard case .failure = first.a else { return XCTFail("A should stop at bucket 3") }
        XCTAssertEqual(storeA.current?.firstIncomplete, 3)
        let recorded = try await storeA.release(bucket: 3, instance: 1)
        XCTAssertNotNil(recorded, "A recorded the stream it answered")
        let log = WireLog()
        let second = await BucketedPSIHarness.run(side(setA, storeA, buckets: 6, receives: false), side(setB, storeB), tap: log,
                                                  intercept: BucketedPSIHarness.rewriting { m in
            if case .kkrtColumns(var c)? = m.body, c.bucket == 3, c.firstBin == 0 { c.columns[0] ^= 1; m.kkrtColumns = c }
        })
        guard case .failure(let e) = second.a else { return XCTFail("A answered other columns") }
        XCTAssertTrue("\(e)".contains("another set"), "\(e)")
        XCTAssertFalse(Self.sent(by: "bank-a", bucket: 3, in: log).contains("values"))
        // Without the flip the same rerun goes through: the record is of the honest stream.
        let third = await BucketedPSIHarness.run(side(setA, storeA, buckets: 6, receives: false), side(setB, storeB))
        _ = try third.a.get(); _ = try third.b.get()
    }

    /// The receiver's check (only A receives): A completed bucket 3; B reruns it with its base-OT choice
    /// changed. A refuses before sending any column of it.
    func testTheReceiverRefusesARerunWithAnotherChoice() async throws {
        let (setA, setB) = BucketedPSIHarness.randomSets(seed: 36, sizeA: 300, sizeB: 300, universe: 700)
        let storeA = InMemoryBucketCheckpoints(), storeB = InMemoryBucketCheckpoints()
        let first = await BucketedPSIHarness.run(side(setA, storeA, buckets: 6), side(setB, StopAtBucket(storeB, bucket: 3), receives: false))
        guard case .failure = first.b else { return XCTFail("B should stop at bucket 3") }
        XCTAssertEqual(storeA.current?.firstIncomplete, 4)
        let log = WireLog()
        let second = await BucketedPSIHarness.run(side(setA, storeA, buckets: 6), side(setB, storeB, receives: false), tap: log,
                                                  intercept: BucketedPSIHarness.rewriting { m in
            if case .kkrtChoice(var c)? = m.body, c.bucket == 3 {
                let head = c.points.prefix(32), next = c.points.dropFirst(32).prefix(32)
                c.points = next + head + c.points.dropFirst(64)
                m.kkrtChoice = c
            }
        })
        guard case .failure(let e) = second.a else { return XCTFail("A answered another choice") }
        XCTAssertTrue("\(e)".contains("other base OTs"), "\(e)")
        XCTAssertFalse(Self.sent(by: "bank-a", bucket: 3, in: log).contains("columns"), "A sent columns of the rerun bucket")
    }

    /// B's messages rewritten in flight (a dishonest B): each is refused naming B, nothing recorded.
    func testCraftedMessagesAreRefused() async throws {
        let rewriting = BucketedPSIHarness.rewriting
        let cases: [(String, InMemoryChannel.Intercept, String)] = [
            ("an opening with more bins", rewriting { m in if case .kkrtOpen(var o)? = m.body { o.bins += 512; m.kkrtOpen = o } }, "bins"),
            ("an opening with a larger set", rewriting { m in if case .kkrtOpen(var o)? = m.body { o.setSize = 1 << 40; m.kkrtOpen = o } }, "expected"),
            ("an identity base-OT point", rewriting { m in if case .kkrtOpen(var o)? = m.body { o.baseOtPoint = Data(count: 32); m.kkrtOpen = o } }, "base-OT point"),
            ("a short choice", rewriting { m in if case .kkrtChoice(var c)? = m.body { c.points = c.points.prefix(64); m.kkrtChoice = c } }, "base-OT points"),
            ("columns of another bin", rewriting { m in if case .kkrtColumns(var c)? = m.body { c.firstBin += 2048; m.kkrtColumns = c } }, "columns from bin"),
            ("values of another bucket", rewriting { m in if case .kkrtValues(var v)? = m.body { v.bucket += 1; m.kkrtValues = v } }, "a message of bucket"),
            ("values cut by one byte", rewriting { m in if case .kkrtValues(var v)? = m.body { v.values = v.values.dropLast(); m.kkrtValues = v } }, "bytes of values"),
            ("an end claiming more values", rewriting { m in if case .kkrtValuesEnd(var v)? = m.body { v.count += 3; m.kkrtValuesEnd = v } }, "values ended"),
            ("an empty batch of values", rewriting { m in if case .kkrtValues(var v)? = m.body { v.values = Data(); m.kkrtValues = v } }, "bytes of values"),
            ("a cuckoo attempt beyond the limit", rewriting { m in if case .kkrtOpen(var o)? = m.body { o.attempt = 8; m.kkrtOpen = o } }, "attempt"),
            ("an opening of another instance", rewriting { m in if case .kkrtOpen(var o)? = m.body { o.instance = 0; m.kkrtOpen = o } }, "instance"),
            ("identity base-OT points", rewriting { m in if case .kkrtChoice(var c)? = m.body { c.points = Data(count: c.points.count); m.kkrtChoice = c } }, "base-OT points"),
            ("columns one byte short", rewriting { m in if case .kkrtColumns(var c)? = m.body { c.columns = c.columns.dropLast(); m.kkrtColumns = c } }, "columns from bin"),
            ("a hello announcing 2^28 identifiers", rewriting { m in if case .bucketHello(var h)? = m.body { h.setSize = 1 << 28; m.bucketHello = h } }, "expected"),
        ]
        for (what, intercept, message) in cases {
            let a = side((0..<200).map { "+86\($0)" }, buckets: 2), b = side((100..<300).map { "+86\($0)" })
            let (ra, _) = await BucketedPSIHarness.run(a, b, intercept: intercept)
            guard case .failure(let e) = ra else { XCTFail("A accepted \(what)"); continue }
            XCTAssertTrue("\(e)".contains(message) && "\(e)".contains("bank-b"), "\(what): \(e)")
            XCTAssertEqual((a.checkpoints as! InMemoryBucketCheckpoints).current?.completed.count ?? 0, 0, "\(what): nothing recorded")
        }
    }
}
