import XCTest
import MPCCrypto
import MPCTestSupport
import MPCWire
@testable import MPCProtocols

/// The worker scopes of the bucketed PSI (Protocols/psi-buckets.md "Sharded workers"), in memory: the
/// parties agree and stop, then each pair of workers runs its range; together they give the one-run
/// intersection, for ECDH and KKRT and a bucket count the workers do not divide. A worker without the
/// agreement, paired with another index or count, or told a next bucket outside its range, refuses.
final class BucketedPSIWorkerTests: XCTestCase {
    typealias Side = BucketedPSIHarness.Side

    func testWorkerRangesCoverEveryBucketExactlyOnce() {
        for buckets in 1...24 {
            for count in 1...min(buckets, 9) {
                let ranges = (0..<count).map { BucketedPSIParty.workerRange(index: $0, count: count, buckets: buckets) }
                XCTAssertTrue(ranges.allSatisfy { !$0.isEmpty }, "\(count) workers, \(buckets) buckets: \(ranges)")
                XCTAssertEqual(ranges.flatMap { Array($0) }, Array(0..<buckets), "\(count) workers, \(buckets) buckets: \(ranges)")
            }
        }
    }

    /// Agreement, then every worker pair: the intersection of one whole run.
    func testAgreementThenEachWorkerPairGiveTheWholeRunsIntersection() async throws {
        let (setA, setB) = BucketedPSIHarness.randomSets(seed: 91, sizeA: 500, sizeB: 420, universe: 1100)
        let expected = Set(setA).intersection(Set(setB))
        XCTAssertGreaterThan(expected.count, 80)
        for psiProtocol in [PSIProtocol.ecdh, .kkrt] {
            for workers in [2, 3] {
                let storeA = InMemoryBucketCheckpoints(), storeB = InMemoryBucketCheckpoints()
                var a = Side(source: ArrayIdentifierSource(setA), checkpoints: storeA, buckets: 5, psiProtocol: psiProtocol)
                var b = Side(source: ArrayIdentifierSource(setB), checkpoints: storeB, psiProtocol: psiProtocol)
                a.workerCount = workers; b.workerCount = workers
                a.scope = .agreementOnly; b.scope = .agreementOnly
                let (ra, rb) = await BucketedPSIHarness.run(a, b)
                XCTAssertEqual(try ra.get().bucketCount, 5)
                XCTAssertEqual(try rb.get().bucketCount, 5)
                XCTAssertEqual(storeA.current?.completed.count, 0, "the agreement runs no bucket")
                XCTAssertTrue(storeA.positions.isEmpty)
                for index in 0..<workers {
                    a.scope = .worker(index: index); b.scope = .worker(index: index)
                    let (wa, wb) = await BucketedPSIHarness.run(a, b)
                    let range = BucketedPSIParty.workerRange(index: index, count: workers, buckets: 5)
                    XCTAssertEqual(try wa.get().firstBucket, range.lowerBound, "\(psiProtocol) worker \(index)")
                    _ = try wb.get()
                    XCTAssertEqual(Set(storeA.current?.completed.keys.map { $0 } ?? []), Set(0..<range.upperBound),
                                   "after worker \(index) of \(workers): the buckets of its range and the ranges before")
                }
                XCTAssertEqual(BucketedPSIHarness.identifiers(storeA, a.source), expected, "\(psiProtocol), \(workers) workers, A's view")
                XCTAssertEqual(BucketedPSIHarness.identifiers(storeB, b.source), expected, "\(psiProtocol), \(workers) workers, B's view")
            }
        }
    }

    func testAWorkerRefusesWithoutTheAgreementAnotherIndexOrCountOrARangeItDoesNotHave() async throws {
        let (setA, setB) = BucketedPSIHarness.randomSets(seed: 92, sizeA: 200, sizeB: 200, universe: 500)
        func agreed(workers: Int) async throws -> (Side, Side) {
            var a = Side(source: ArrayIdentifierSource(setA), checkpoints: InMemoryBucketCheckpoints(), buckets: 4)
            var b = Side(source: ArrayIdentifierSource(setB), checkpoints: InMemoryBucketCheckpoints())
            a.workerCount = workers; b.workerCount = workers
            a.scope = .agreementOnly; b.scope = .agreementOnly
            let (ra, rb) = await BucketedPSIHarness.run(a, b)
            _ = try ra.get(); _ = try rb.get()
            return (a, b)
        }
        func refusal(_ result: Result<BucketedPSIParty.Report, Error>) -> String {
            if case .failure(let e) = result { return "\(e)" }
            return "accepted"
        }

        // No agreement in the checkpoints.
        var fresh = Side(source: ArrayIdentifierSource(setA), checkpoints: InMemoryBucketCheckpoints())
        fresh.workerCount = 2; fresh.scope = .worker(index: 0)
        var freshB = Side(source: ArrayIdentifierSource(setB), checkpoints: InMemoryBucketCheckpoints())
        freshB.workerCount = 2; freshB.scope = .worker(index: 0)
        let (na, nb) = await BucketedPSIHarness.run(fresh, freshB)
        XCTAssertTrue(refusal(na).contains("no agreement"), refusal(na))
        XCTAssertTrue(refusal(nb).contains("no agreement"), refusal(nb))

        // Worker 0 of A meets worker 1 of B.
        var (a, b) = try await agreed(workers: 2)
        a.scope = .worker(index: 0); b.scope = .worker(index: 1)
        var (ra, rb) = await BucketedPSIHarness.run(a, b)
        XCTAssertTrue(refusal(ra).contains("pairs only with the worker of the same index"), refusal(ra))
        XCTAssertTrue(refusal(rb).contains("pairs only with the worker of the same index") || refusal(rb) != "accepted", refusal(rb))
        XCTAssertEqual((a.checkpoints as! InMemoryBucketCheckpoints).current?.completed.count, 0, "nothing ran")

        // Another worker count.
        b.scope = .worker(index: 0); b.workerCount = 3; a.scope = .worker(index: 0)
        (ra, rb) = await BucketedPSIHarness.run(a, b)
        XCTAssertTrue(refusal(ra).contains("workers"), refusal(ra))
        XCTAssertNotEqual(refusal(rb), "accepted")

        // B's worker 0 (buckets 0 and 1) announces bucket 3 as its next: outside the range, refused by A.
        b.workerCount = 2
        let (ca, cb) = try await agreed(workers: 2)
        var wa = ca, wb = cb
        wa.scope = .worker(index: 0); wb.scope = .worker(index: 0)
        let outside = BucketedPSIHarness.rewriting { m in
            if case .bucketHello(var h)? = m.body { h.nextBucket = 3; m.bucketHello = h }
        }
        let (oa, _) = await BucketedPSIHarness.run(wa, wb, intercept: outside)
        XCTAssertTrue(refusal(oa).contains("bucket range"), refusal(oa))
        XCTAssertEqual((wa.checkpoints as! InMemoryBucketCheckpoints).current?.completed.count, 0, "nothing ran")
    }
}
