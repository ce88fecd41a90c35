import MPCBench
import Foundation
import MPCNode
import MPCTransport
import MPCTestSupport
import XCTest

/// Set operations run in buckets as jobs (Protocols/multi-party-sets.md "Buckets"): in-process nodes with
/// real TLS, SQLite and policies; the reports and deliveries equal the plain set operations on the same data.
final class SetOperationBucketJobTests: XCTestCase {
    func cell(_ r: ReportView, _ group: String, file: StaticString = #filePath, line: UInt = #line) -> ReportView.Cell? {
        let c = r.cells.first { $0.group == group }
        if c == nil { XCTFail("no cell '\(group)' in \(r.cells.map(\.group))", file: file, line: line) }
        return c
    }

    /// Union-sum in three buckets, shuffled by a node that holds no data, then a watchlist with the
    /// bucket count chosen from the sizes: the same figures as in the clear, nothing raw on the wire.
    func testUnionSumAndWatchlistInBucketsMatchThePlainSets() async throws {
        let (directory, consortium, data) = try SetOperationJobTests.setUp(banks: ["bank-1", "bank-2", "bank-3", "bank-4"], seed: 41, extraShared: 3)
        removeAtTearDown(directory)
        let taps = WireTaps()
        let nodes = try await consortium.startAll(logger: ConsortiumFixture.quietLogger, transportOptions: taps.options(for:))
        stopAtTearDown(nodes)
        let banks = ["bank-1", "bank-2", "bank-3"]
        var plainData = data
        plainData.rows["bank-4"] = nil
        let customers = plainData.customers
        var submission = SetOperationJobTests.submission("union-sum", banks: banks, .init(
            aggregator: "regulator", mixer: "bank-4", valueColumn: "balance", decimals: 2, minCellParties: 2))
        submission.buckets = 3
        let jobID = try await nodes["coordinator"]!.engine.submit(submission)
        let job = try await ConsortiumFixture.waitForFinal(nodes["coordinator"]!, jobID: jobID)
        XCTAssertEqual(job.state, .succeeded, job.reason ?? "")
        let r = try ReportRepository(store: nodes["regulator"]!.store).get(jobID)
        XCTAssertEqual(r.included, banks)
        XCTAssertEqual(cell(r, "distinct identifiers (union)")?.records, Int64(customers.count))
        for c in 1...3 {
            let label = "held by exactly \(c) \(c == 1 ? "party" : "parties")"
            XCTAssertEqual(cell(r, label)?.records, Int64(customers.filter { plainData.holders($0) == c }.count), label)
        }
        let total = customers.map(plainData.total).reduce(0, +)
        XCTAssertEqual(cell(r, "total over the union")?.values["sum(balance)"], ReportRepository.decimalText(total, decimals: 2))
        XCTAssertEqual(cell(r, "total over the union")?.records, Int64(customers.map(plainData.holders).reduce(0, +)))
        for id in banks + ["bank-4", "regulator", "coordinator"] {
            let wire = WireIndex(taps.sent(by: id))
            for c in customers {
                XCTAssertFalse(wire.contains(Array(c.utf8)), "\(id) sent \(c)")
                for h in PlainHashes.of(Array(c.utf8)) { XCTAssertFalse(wire.contains(h), "\(id) sent a plain hash of \(c)") }
            }
            XCTAssertFalse(try AuditLog(store: nodes[id]!.store).records(jobID: jobID).isEmpty, id)
        }

        var watch = SetOperationJobTests.submission("watchlist", banks: banks, deliverTo: ["bank-1"], .init(aggregator: "regulator", atLeast: 2))
        watch.sets?.bucketed = true
        let watchID = try await nodes["coordinator"]!.engine.submit(watch)
        let watchJob = try await ConsortiumFixture.waitForFinal(nodes["coordinator"]!, jobID: watchID)
        XCTAssertEqual(watchJob.state, .succeeded, watchJob.reason ?? "")
        let plain = banks.map { Set(plainData.rows[$0]!.keys) }
        let delivered = try JobRepository(store: nodes["bank-1"]!.store).result(jobID: watchID, limit: 10_000)
        XCTAssertEqual(Set(delivered.identifiers ?? []), plain[0].intersection(plain[1].union(plain[2])))
        let report = try ReportRepository(store: nodes["regulator"]!.store).get(watchID)
        XCTAssertEqual(cell(report, "held by at least 2 parties")?.records, Int64(customers.filter { plainData.holders($0) >= 2 }.count))
    }

    /// A job asking for more buckets than a party's policy allows is refused by that party before any data is read.
    func testMoreBucketsThanThePolicyAllowsAreRefused() async throws {
        let (directory, consortium, _) = try SetOperationJobTests.setUp(banks: ["bank-1", "bank-2", "bank-3"], seed: 42)
        removeAtTearDown(directory)
        let nodes = try await consortium.startAll(logger: ConsortiumFixture.quietLogger)
        stopAtTearDown(nodes)
        var submission = SetOperationJobTests.submission("mpsi", banks: ["bank-1", "bank-2", "bank-3"], deliverTo: ["bank-1"],
                                                         .init(aggregator: "regulator", minIntersection: 3))
        submission.buckets = 5000
        let jobID = try await nodes["coordinator"]!.engine.submit(submission)
        let job = try await ConsortiumFixture.waitForFinal(nodes["coordinator"]!, jobID: jobID)
        XCTAssertNotEqual(job.state, .succeeded)
        XCTAssertTrue((job.reason ?? "").contains("max_buckets"), job.reason ?? "")
        XCTAssertThrowsError(try JobRepository(store: nodes["bank-1"]!.store).result(jobID: jobID, limit: 10))
    }
}
