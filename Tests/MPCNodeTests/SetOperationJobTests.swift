import MPCBench
import Foundation
import MPCNode
import MPCTransport
import MPCTestSupport
import XCTest

/// Multi-party set operations as jobs: in-process nodes with real TLS, SQLite and policies, checked
/// against plain set operations on the same data, with every byte handed to TLS inspected.
final class SetOperationJobTests: XCTestCase {
    static let policy: @Sendable (String) -> String = { _ in
        """
        policy:
          coordinators: [coordinator]
          datasets:
            customers:
              columns: [customer, balance]
              protocols: [mpsi, mpsi-cardinality, watchlist, union-sum, intersection-stats]
              result_recipients: [regulator, bank-1, bank-2, bank-3, bank-4, bank-5, bank-6, bank-7, bank-8, bank-9, bank-10]
              min_set_size: 5
              min_intersection: 3
              min_cell_parties: 2
            private:
              columns: [customer, balance]
              protocols: [mpsi]
              result_recipients: [regulator]
              min_set_size: 5
        """
    }

    /// Per bank: customer → rows of balances (cents). Customers come from a common pool, so they overlap.
    struct Data {
        var rows: [String: [String: [Int64]]] = [:]
        func holders(_ c: String) -> Int { rows.values.filter { $0[c] != nil }.count }
        var customers: Set<String> { Set(rows.values.flatMap(\.keys)) }
        func total(_ c: String) -> Int64 { rows.values.compactMap { $0[c]?.reduce(0, +) }.reduce(0, +) }
    }

    static func setUp(banks: [String], seed: UInt64, pool: Int = 120, size: ClosedRange<Int> = 30...70,
                      extraShared: Int = 0, policy: @escaping @Sendable (String) -> String = policy) throws -> (URL, LocalConsortium, Data) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mpcnode-sets-\(UUID().uuidString)")
        let consortium = try LocalConsortium.create(in: directory, banks: banks, regulators: ["regulator"], policy: policy)
        var rng = SplitMix(state: seed)
        var data = Data()
        for bank in banks {
            var mine: [String: [Int64]] = [:]
            let n = Int(rng.next() % UInt64(size.count)) + size.lowerBound
            for _ in 0..<n {
                let c = "cust-\(String(format: "%05d", Int(rng.next() % UInt64(pool))))"
                mine[c, default: []].append(Int64(rng.next() % 2_000_000) - 200_000)  // some rows twice
            }
            for i in 0..<extraShared { mine["shared-\(i)", default: []].append(100_00) }
            data.rows[bank] = mine
            var csv = "customer,balance,note\n"
            for (c, balances) in mine.sorted(by: { $0.key < $1.key }) {
                for b in balances { csv += "\(c),\(ReportRepository.decimalText(b, decimals: 2)),x\n" }
            }
            for dataset in ["customers", "private"] {
                try consortium.importCSV(csv, into: bank, dataset: dataset, idColumn: "customer")
            }
        }
        return (directory, consortium, data)
    }

    static func submission(_ kind: String, banks: [String], dataset: String = "customers", deliverTo: [String] = [],
                           _ options: JobSubmission.SetOptions) -> JobSubmission {
        JobSubmission(protocolName: kind, parties: banks.map { .init(nodeID: $0, dataset: dataset, column: "customer") },
                      deliverTo: deliverTo, cardinalityOnly: false, group: "x25519", sets: options)
    }

    func cell(_ r: ReportView, _ group: String, file: StaticString = #filePath, line: UInt = #line) -> ReportView.Cell? {
        let c = r.cells.first { $0.group == group }
        if c == nil { XCTFail("no cell '\(group)' in \(r.cells.map(\.group))", file: file, line: line) }
        return c
    }

    func testUnionSumReportMatchesPlainTotalsAndNothingRawCrossesTheWire() async throws {
        let banks = ["bank-1", "bank-2", "bank-3", "bank-4"]
        let (directory, consortium, data) = try Self.setUp(banks: banks, seed: 7)
        removeAtTearDown(directory)
        let taps = WireTaps()
        let nodes = try await consortium.startAll(logger: ConsortiumFixture.quietLogger, transportOptions: taps.options(for:))
        stopAtTearDown(nodes)

        let jobID = try await nodes["coordinator"]!.engine.submit(Self.submission("union-sum", banks: banks, .init(
            aggregator: "regulator", mixer: "bank-3", valueColumn: "balance", decimals: 2, reportingThreshold: "5000.00", minCellParties: 2)))
        let job = try await ConsortiumFixture.waitForFinal(nodes["coordinator"]!, jobID: jobID)
        XCTAssertEqual(job.state, .succeeded, job.reason ?? "")
        let r = try ReportRepository(store: nodes["regulator"]!.store).get(jobID)
        XCTAssertEqual(r.kind, "union-sum")
        XCTAssertEqual(r.included, banks)
        let customers = data.customers
        XCTAssertEqual(cell(r, "distinct identifiers (union)")?.records, Int64(customers.count))
        for c in 1...4 {
            let label = "held by exactly \(c) \(c == 1 ? "party" : "parties")"
            XCTAssertEqual(cell(r, label)?.records, Int64(customers.filter { data.holders($0) == c }.count), label)
        }
        let total = customers.map(data.total).reduce(0, +)
        XCTAssertEqual(cell(r, "total over the union")?.values["sum(balance)"], ReportRepository.decimalText(total, decimals: 2))
        XCTAssertEqual(cell(r, "total over the union")?.records, Int64(customers.map(data.holders).reduce(0, +)))
        // Per-identifier rows: the (holders, total) pairs of customers at or above the threshold, with those
        // held by a single bank suppressed.
        let above = customers.filter { data.total($0) >= 5000_00 }
        XCTAssertEqual(cell(r, "identifiers with a total ≥ 5000.00")?.records, Int64(above.count))
        let listed = r.cells.filter { $0.group.hasPrefix("ψ-") }
        XCTAssertEqual(listed.count, above.count)
        XCTAssertEqual(listed.filter(\.suppressed).count, above.filter { data.holders($0) < 2 }.count)
        XCTAssertEqual(listed.filter { !$0.suppressed }.map { "\($0.parties!):\($0.values["sum(balance)"]!)" }.sorted(),
                       above.filter { data.holders($0) >= 2 }.map { "\(data.holders($0)):\(ReportRepository.decimalText(data.total($0), decimals: 2))" }.sorted())
        // Nothing raw on the wire from anyone, and every node keeps an audit record; no bank holds a report.
        for id in banks + ["regulator", "coordinator"] {
            let wire = WireIndex(taps.sent(by: id))
            for c in customers {
                XCTAssertFalse(wire.contains(Array(c.utf8)), "\(id) sent \(c)")
                for h in PlainHashes.of(Array(c.utf8)) { XCTAssertFalse(wire.contains(h), "\(id) sent a plain hash of \(c)") }
            }
            XCTAssertFalse(try AuditLog(store: nodes[id]!.store).records(jobID: jobID).isEmpty, id)
        }
        XCTAssertTrue(try ReportRepository(store: nodes["bank-1"]!.store).list().isEmpty)
        // The check can fail: a bank's tap does contain, e.g., the job id.
        XCTAssertTrue(WireIndex(taps.sent(by: "bank-1")).contains(Array(jobID.utf8)))
    }

    func testMultiPartyPSIAndWatchlistDeliverOnlyToTheNamedParties() async throws {
        let banks = ["bank-1", "bank-2", "bank-3"]
        let (directory, consortium, data) = try Self.setUp(banks: banks, seed: 21, pool: 60, extraShared: 4)
        removeAtTearDown(directory)
        let nodes = try await consortium.startAll(logger: ConsortiumFixture.quietLogger)
        stopAtTearDown(nodes)
        let coordinator = nodes["coordinator"]!.engine
        let plain = banks.map { Set(data.rows[$0]!.keys) }
        let intersection = plain.dropFirst().reduce(plain[0]) { $0.intersection($1) }
        XCTAssertGreaterThanOrEqual(intersection.count, 4)

        let mpsi = try await coordinator.submit(Self.submission("mpsi", banks: banks, deliverTo: ["bank-2"], .init(aggregator: "regulator", minIntersection: 3)))
        let mpsiState = try await ConsortiumFixture.waitForFinal(nodes["coordinator"]!, jobID: mpsi).state
        XCTAssertEqual(mpsiState, .succeeded)
        let got = try JobRepository(store: nodes["bank-2"]!.store).result(jobID: mpsi, limit: 10_000)
        XCTAssertEqual(Set(got.identifiers ?? []), intersection)
        for other in ["bank-1", "bank-3"] { XCTAssertThrowsError(try JobRepository(store: nodes[other]!.store).result(jobID: mpsi, limit: 10)) }
        let mpsiReport = try ReportRepository(store: nodes["regulator"]!.store).get(mpsi)
        XCTAssertEqual(cell(mpsiReport, "held by all 3 parties (intersection)")?.records, Int64(intersection.count))

        let watch = try await coordinator.submit(Self.submission("watchlist", banks: banks, deliverTo: ["bank-1", "bank-3"],
                                                                  .init(aggregator: "regulator", atLeast: 2)))
        let watchState = try await ConsortiumFixture.waitForFinal(nodes["coordinator"]!, jobID: watch).state
        XCTAssertEqual(watchState, .succeeded)
        for (i, bank) in banks.enumerated() where bank != "bank-2" {
            let others = plain.enumerated().filter { $0.offset != i }.map(\.element).reduce(Set<String>()) { $0.union($1) }
            let r = try JobRepository(store: nodes[bank]!.store).result(jobID: watch, limit: 10_000)
            XCTAssertEqual(r.kind, "on-others-lists")
            XCTAssertEqual(Set(r.identifiers ?? []), plain[i].intersection(others), bank)
        }
        XCTAssertThrowsError(try JobRepository(store: nodes["bank-2"]!.store).result(jobID: watch, limit: 10))
        let watchReport = try ReportRepository(store: nodes["regulator"]!.store).get(watch)
        XCTAssertEqual(cell(watchReport, "held by at least 2 parties")?.records, Int64(data.customers.filter { data.holders($0) >= 2 }.count))
    }

    /// Finding 6's "non-owner mixer where the consortium has one": bank-4 takes no part with data, only
    /// shuffles the three parties' sealed pseudonyms; the result is the plain intersection, and bank-4
    /// stores nothing of it.
    func testAMixerThatIsNotAPartyShufflesTheBoxes() async throws {
        let (directory, consortium, data) = try Self.setUp(banks: ["bank-1", "bank-2", "bank-3", "bank-4"], seed: 23, pool: 60, extraShared: 4)
        removeAtTearDown(directory)
        let nodes = try await consortium.startAll(logger: ConsortiumFixture.quietLogger)
        stopAtTearDown(nodes)
        let banks = ["bank-1", "bank-2", "bank-3"]
        let plain = banks.map { Set(data.rows[$0]!.keys) }
        let intersection = plain.dropFirst().reduce(plain[0]) { $0.intersection($1) }
        let job = try await nodes["coordinator"]!.engine.submit(Self.submission("mpsi", banks: banks, deliverTo: ["bank-2"],
                                                                                 .init(aggregator: "regulator", mixer: "bank-4", minIntersection: 3)))
        let view = try await ConsortiumFixture.waitForFinal(nodes["coordinator"]!, jobID: job)
        XCTAssertEqual(view.state, .succeeded, view.reason ?? "")
        XCTAssertEqual(Set(try JobRepository(store: nodes["bank-2"]!.store).result(jobID: job, limit: 10_000).identifiers ?? []), intersection)
        XCTAssertEqual(try JobRepository(store: nodes["bank-4"]!.store).state(jobID: job), .succeeded)
        XCTAssertThrowsError(try JobRepository(store: nodes["bank-4"]!.store).result(jobID: job, limit: 10), "the mixer stores no result")
        let started = try AuditLog(store: nodes["bank-4"]!.store).records(jobID: job).first { $0.event == "job.started" }
        XCTAssertTrue(started?.details.contains("mixer") == true, started?.details ?? "no start record at the mixer")
    }

    func testTenPartyPSIOverTLS() async throws {
        let banks = (1...10).map { "bank-\($0)" }
        let (directory, consortium, data) = try Self.setUp(banks: banks, seed: 10, pool: 40, size: 25...35, extraShared: 5)
        removeAtTearDown(directory)
        let nodes = try await consortium.startAll(logger: ConsortiumFixture.quietLogger)
        stopAtTearDown(nodes)
        let plain = banks.map { Set(data.rows[$0]!.keys) }
        let intersection = plain.dropFirst().reduce(plain[0]) { $0.intersection($1) }
        let jobID = try await nodes["coordinator"]!.engine.submit(Self.submission("mpsi", banks: banks, deliverTo: ["bank-4", "bank-10"],
                                                                                   .init(aggregator: "regulator", mixer: "bank-7", minIntersection: 3)))
        let job = try await ConsortiumFixture.waitForFinal(nodes["coordinator"]!, jobID: jobID)
        XCTAssertEqual(job.state, .succeeded, job.reason ?? "")
        for bank in ["bank-4", "bank-10"] {
            XCTAssertEqual(Set(try JobRepository(store: nodes[bank]!.store).result(jobID: jobID, limit: 1000).identifiers ?? []), intersection, bank)
        }
        let r = try ReportRepository(store: nodes["regulator"]!.store).get(jobID)
        XCTAssertEqual(cell(r, "distinct identifiers (union)")?.records, Int64(data.customers.count))
        XCTAssertEqual(cell(r, "held by all 10 parties (intersection)")?.records, Int64(intersection.count))
    }

    func testIntersectionStatisticsMatchPlainValues() async throws {
        let banks = ["bank-1", "bank-2", "bank-3"]
        let (directory, consortium, data) = try Self.setUp(banks: banks, seed: 5, pool: 50, extraShared: 3)
        removeAtTearDown(directory)
        let nodes = try await consortium.startAll(logger: ConsortiumFixture.quietLogger)
        stopAtTearDown(nodes)
        let jobID = try await nodes["coordinator"]!.engine.submit(Self.submission("intersection-stats", banks: banks, .init(
            aggregator: "regulator", minIntersection: 3, valueColumn: "balance", decimals: 2, bins: ["0", "10000", "20000"])))
        let job = try await ConsortiumFixture.waitForFinal(nodes["coordinator"]!, jobID: jobID)
        XCTAssertEqual(job.state, .succeeded, job.reason ?? "")
        let r = try ReportRepository(store: nodes["regulator"]!.store).get(jobID)
        let members = data.customers.filter { data.holders($0) == 3 }
        let totals = members.map(data.total)
        let over = cell(r, "over the intersection")
        XCTAssertEqual(over?.records, Int64(members.count))
        XCTAssertEqual(over?.values["sum(balance)"], ReportRepository.decimalText(totals.reduce(0, +), decimals: 2))
        let mean = Int64((Double(totals.reduce(0, +)) / Double(totals.count)).rounded())
        XCTAssertEqual(over?.values["mean(balance)"], ReportRepository.decimalText(mean, decimals: 2))
        XCTAssertEqual(cell(r, "total < 0")?.records, Int64(totals.filter { $0 < 0 }.count))
        XCTAssertEqual(cell(r, "0 ≤ total < 10000")?.records, Int64(totals.filter { $0 >= 0 && $0 < 10000_00 }.count))
        XCTAssertEqual(cell(r, "10000 ≤ total < 20000")?.records, Int64(totals.filter { $0 >= 10000_00 && $0 < 20000_00 }.count))
        XCTAssertEqual(cell(r, "total ≥ 20000")?.records, Int64(totals.filter { $0 >= 20000_00 }.count))
    }

    func testSmallIntersectionsAndPolicyRefusalsReleaseNothing() async throws {
        let banks = ["bank-1", "bank-2", "bank-3"]
        // Large pool, small sets: the intersection of three is (almost surely) below 3 — checked below.
        let (directory, consortium, data) = try Self.setUp(banks: banks, seed: 3, pool: 5000, size: 20...30)
        removeAtTearDown(directory)
        let nodes = try await consortium.startAll(logger: ConsortiumFixture.quietLogger)
        stopAtTearDown(nodes)
        let coordinator = nodes["coordinator"]!.engine
        XCTAssertLessThan(data.customers.filter { data.holders($0) == 3 }.count, 3)

        let small = try await coordinator.submit(Self.submission("mpsi", banks: banks, deliverTo: ["bank-1"], .init(aggregator: "regulator", minIntersection: 3)))
        let job = try await ConsortiumFixture.waitForFinal(nodes["coordinator"]!, jobID: small)
        XCTAssertEqual(job.state, .failed)
        XCTAssertTrue(job.reason?.contains("below the minimum of 3") == true, job.reason ?? "")
        XCTAssertThrowsError(try JobRepository(store: nodes["bank-1"]!.store).result(jobID: small, limit: 10))
        XCTAssertThrowsError(try ReportRepository(store: nodes["regulator"]!.store).get(small))
        for bank in banks {
            let state = try await ConsortiumFixture.waitForFinal(nodes[bank]!, jobID: small).state
            XCTAssertEqual(state, .failed, bank)
        }

        // A job asking less protection than the policy (min_intersection 3), and a dataset not exposed to union-sum.
        let lax = try await coordinator.submit(Self.submission("mpsi", banks: banks, deliverTo: ["bank-1"], .init(aggregator: "regulator", minIntersection: 1)))
        let laxJob = try await ConsortiumFixture.waitForFinal(nodes["coordinator"]!, jobID: lax)
        XCTAssertEqual(laxJob.state, .refused)
        XCTAssertTrue(laxJob.reason?.contains("intersection smaller than 3") == true, laxJob.reason ?? "")
        let unexposed = try await coordinator.submit(Self.submission("union-sum", banks: banks, dataset: "private",
                                                                      .init(aggregator: "regulator", valueColumn: "balance")))
        let unexposedJob = try await ConsortiumFixture.waitForFinal(nodes["coordinator"]!, jobID: unexposed)
        XCTAssertEqual(unexposedJob.state, .refused)
        XCTAssertTrue(unexposedJob.reason?.contains("not exposed to union-sum") == true, unexposedJob.reason ?? "")
    }

    func testABadValueFailsTheJobEverywhereWithTheReasonAndNoReport() async throws {
        let banks = ["bank-1", "bank-2", "bank-3"]
        let (directory, consortium, _) = try Self.setUp(banks: banks, seed: 8)
        removeAtTearDown(directory)
        let bad = directory.appendingPathComponent("bad.csv")
        try "customer,balance\n" .appending((0..<20).map { "cust-\($0),\($0 == 7 ? "12.5x" : "100.00")\n" }.joined()).write(to: bad, atomically: true, encoding: .utf8)
        let store = try NodeStore(path: consortium.configuration(of: "bank-2").databasePath)
        _ = try DatasetCatalog(store: store).importCSV(DatasetImportRequest(dataset: "customers", csvPath: bad.path, idColumn: "customer", replace: true))
        let nodes = try await consortium.startAll(logger: ConsortiumFixture.quietLogger)
        stopAtTearDown(nodes)
        let jobID = try await nodes["coordinator"]!.engine.submit(Self.submission("union-sum", banks: banks, .init(aggregator: "regulator", valueColumn: "balance")))
        let job = try await ConsortiumFixture.waitForFinal(nodes["coordinator"]!, jobID: jobID)
        XCTAssertEqual(job.state, .failed)
        XCTAssertTrue(job.reason?.contains("'12.5x'") == true && job.reason?.contains("bank-2") == true, job.reason ?? "")
        for id in banks + ["regulator"] {
            let state = try await ConsortiumFixture.waitForFinal(nodes[id]!, jobID: jobID).state
            XCTAssertEqual(state, .failed, id)
        }
        XCTAssertThrowsError(try ReportRepository(store: nodes["regulator"]!.store).get(jobID))
        // The dataset itself is untouched.
        XCTAssertEqual(try DatasetCatalog(store: nodes["bank-2"]!.store).describe("customers").rowCount, 20)
    }

    func testSubmissionsThatCannotWorkAreRejectedWithTheReason() async throws {
        let banks = ["bank-1", "bank-2"]
        let (directory, consortium, _) = try Self.setUp(banks: banks, seed: 1)
        removeAtTearDown(directory)
        let nodes = try await consortium.startAll(logger: ConsortiumFixture.quietLogger)
        stopAtTearDown(nodes)
        let coordinator = nodes["coordinator"]!.engine
        let cases: [(JobSubmission, String)] = [
            (Self.submission("union-sum", banks: banks, .init(aggregator: "bank-1", valueColumn: "balance")), "neither a party"),
            (Self.submission("union-sum", banks: banks, .init(aggregator: "regulator")), "needs --value"),
            (Self.submission("mpsi", banks: banks, deliverTo: ["regulator"], .init(aggregator: "regulator")), "is not a party"),
            (Self.submission("mpsi", banks: banks, .init(aggregator: "regulator", mixer: "bank-9")), "bank-9 is not a peer"),
            (Self.submission("mpsi", banks: banks, .init(aggregator: "regulator", mixer: "regulator")), "neither the aggregator nor the coordinator"),
            (Self.submission("watchlist", banks: banks, .init(aggregator: "regulator", atLeast: 3)), "must lie in 1…2"),
        ]
        for (submission, expected) in cases {
            do {
                _ = try await coordinator.submit(submission)
                XCTFail("accepted: \(expected)")
            } catch {
                XCTAssertTrue("\(error)".contains(expected), "\(error)")
            }
        }
    }

    /// Finding 21: links of a running job stay up while the job is alive. Every node takes a peer silent
    /// for 1 s as gone; bank-2 is artificially slow (its first read of its input waits 4 s, its ring
    /// sessions already open), so bank-3 hears nothing from it for 4 s. Heartbeats keep the links up
    /// and the union-sum succeeds with the plain totals.
    func testASlowPartyDoesNotIdleOutTheRingOfARunningJob() async throws {
        let banks = ["bank-1", "bank-2", "bank-3"]
        let (directory, consortium, data) = try Self.setUp(banks: banks, seed: 33)
        removeAtTearDown(directory)
        var options = TransportOptions()
        options.idleTimeout = .seconds(1)
        var nodes: [String: NodeRuntime] = [:]
        for m in consortium.members {
            nodes[m.id] = try await consortium.start(m.id, logger: ConsortiumFixture.quietLogger, transportOptions: options,
                                                     faults: m.id == "bank-2" ? FaultHooks(slowFirstInputRead: .seconds(4)) : nil)
        }
        let running = nodes
        stopAtTearDown(running)
        let started = Date()
        let jobID = try await nodes["coordinator"]!.engine.submit(Self.submission("union-sum", banks: banks, .init(
            aggregator: "regulator", mixer: "bank-3", valueColumn: "balance", decimals: 2, minCellParties: 2)))
        let job = try await ConsortiumFixture.waitForFinal(nodes["coordinator"]!, jobID: jobID)
        XCTAssertEqual(job.state, .succeeded, job.reason ?? "")
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 4, "the slow party was slow")
        let r = try ReportRepository(store: nodes["regulator"]!.store).get(jobID)
        let total = data.customers.map(data.total).reduce(0, +)
        XCTAssertEqual(cell(r, "total over the union")?.values["sum(balance)"], ReportRepository.decimalText(total, decimals: 2))
    }
}
