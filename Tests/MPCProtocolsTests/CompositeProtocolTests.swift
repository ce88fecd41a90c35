import Foundation
import MPCCrypto
import MPCIdentity
import MPCTestSupport
import XCTest
@testable import MPCProtocols

/// The composite protocols as whole jobs over in-memory session ports: several parties in one process,
/// no TLS, no database. The same `SetOperationParty`, `SetOperationAggregatorRole`,
/// `VerticalRowAlignment` and `VerticalScoring` run between daemons over TLS.
final class CompositeProtocolTests: XCTestCase {
    var pki: TestPKI!
    override func setUpWithError() throws { pki = try TestPKI() }
    override func tearDownWithError() throws { pki.remove() }

    func authentication(_ node: String) throws -> KeyAuthentication { try pki.keyAuthentication(node) }

    static let waits = SetOperationParty.Waits(session: .seconds(30), phase: .seconds(60))

    /// Union-sum among `sets.count` banks, ring → mix → aggregate → secure sum, every role over its own port.
    func testUnionSumOfFourBanksOverSessionPorts() async throws { try await unionSumOfFourBanks(mixer: "bank-2") }

    /// The same with a mixer that holds no data (a node the consortium runs to shuffle): it takes part
    /// only in the mix, and the result is the same.
    func testUnionSumWithADataLessMixer() async throws { try await unionSumOfFourBanks(mixer: "mixer") }

    func unionSumOfFourBanks(mixer: String) async throws {
        var rng = SplitMix(state: 21)
        let names = (0..<4).map { "bank-\($0)" }
        // Each bank holds some accounts with a balance (in cents); an account's total is its sum over banks.
        var holdings: [[String: Int64]] = []
        for _ in names {
            var h: [String: Int64] = [:]
            for _ in 0..<Int.random(in: 30...60, using: &rng) { h["account-\(Int.random(in: 0..<80, using: &rng))"] = Int64.random(in: -5000...90000, using: &rng) }
            holdings.append(h)
        }
        let wire = WireLog()
        let hub = InMemorySessionHub(tap: { wire.append($0, $1) })
        let config = SetOperationConfiguration(jobID: "job-union", group: .ristretto255, owners: names, mixer: mixer, aggregator: "regulator",
                                               deliveries: Dictionary(uniqueKeysWithValues: names.map { ($0, SetDeliveryKind.union) }), batchSize: 16)
        let sources = holdings.map { ArrayIdentifierSource(Array($0.keys)) }
        let auths = try names.map { try authentication($0) }
        async let aggregated = SetOperationAggregatorRole(configuration: config, waits: Self.waits)
            .run(port: hub.port(for: "regulator"), sumRoundTimeout: .seconds(30))
        async let mixed: (sent: UInt64, received: UInt64)? = names.contains(mixer) ? nil
            : try SetMixerRole(configuration: config, me: mixer, waits: Self.waits).run(port: hub.port(for: mixer))
        let parties = try await withThrowingTaskGroup(of: (Int, SetOperationParty.Outcome).self) { group in
            for (i, name) in names.enumerated() {
                let source = sources[i], h = holdings[i]
                let totals: @Sendable () throws -> [Int64] = { source.values.map { h[String(decoding: $0, as: UTF8.self)]! } }
                let sum = SetOperationSum(authentication: auths[i], auditRecordHash: [], roundTimeout: .seconds(30), totals: totals)
                group.addTask {
                    (i, try await SetOperationParty(configuration: config, me: name, waits: Self.waits).run(source: source, port: hub.port(for: name), sum: sum))
                }
            }
            var out: [Int: SetOperationParty.Outcome] = [:]
            for try await (i, o) in group { out[i] = o }
            return out
        }
        let outcome = try await aggregated
        let mixerTraffic = try await mixed
        if !names.contains(mixer) { XCTAssertGreaterThan(mixerTraffic?.received ?? 0, 0, "the data-less mixer carried the boxes") }
        // The aggregator's sums, slot by slot, are exactly the per-account holder counts and totals.
        var expected: [String: (holders: Int64, total: Int64)] = [:]
        for h in holdings { for (a, v) in h { expected[a, default: (0, 0)].holders += 1; expected[a, default: (0, 0)].total += v } }
        let sums = try XCTUnwrap(outcome.sums).sum.map { Int64(bitPattern: $0) }
        XCTAssertEqual(outcome.multiplicities.unionSize, expected.count)
        let pairs = stride(from: 0, to: sums.count, by: 2).map { "\(sums[$0]):\(sums[$0 + 1])" }.sorted()
        XCTAssertEqual(pairs, expected.values.map { "\($0.holders):\($0.total)" }.sorted())
        XCTAssertEqual(try XCTUnwrap(outcome.sums).included.sorted(), names)
        for i in names.indices {
            XCTAssertEqual(parties[i]?.unionSize, expected.count)
            XCTAssertEqual(parties[i]?.includedInSum, true)
            XCTAssertGreaterThan(parties[i]?.bytesSent ?? 0, 0, "the port counts the party's traffic")
        }
        // What crossed the ports: no account identifier, no plain hash of one, no balance in the clear.
        let everything = WireIndex(wire.entries.flatMap(\.bytes))
        for a in expected.keys {
            XCTAssertFalse(everything.contains(Array(a.utf8)), "\(a) on the wire")
            for hash in PlainHashes.of(Array(a.utf8)) { XCTAssertFalse(everything.contains(hash)) }
        }
    }

    /// n-party PSI with the intersection delivered to two banks, and an intersection below the release
    /// minimum refused before anything is delivered.
    func testMultiPartyIntersectionAndReleaseRefusalOverSessionPorts() async throws {
        let names = (0..<5).map { "bank-\($0)" }
        let common = (0..<25).map { "customer-common-\($0)" }
        let sets = names.enumerated().map { i, _ in common + (0..<(10 * (i + 1))).map { "customer-\(i)-only-\($0)" } }
        for minimum in [10, 26] {
            let hub = InMemorySessionHub()
            let config = SetOperationConfiguration(jobID: "job-mpsi", group: .x25519, owners: names, mixer: names[4], aggregator: "aggregator",
                                                   deliveries: ["bank-0": .intersection, "bank-3": .cardinality])
            struct BelowMinimum: Error {}
            async let aggregated = SetOperationAggregatorRole(configuration: config, waits: Self.waits)
                .run(port: hub.port(for: "aggregator"), sumRoundTimeout: nil) { m in if m.intersectionSize < minimum { throw BelowMinimum() } }
            let sources = sets.map { ArrayIdentifierSource($0) }
            let results = await withTaskGroup(of: (Int, Result<SetOperationParty.Outcome, Error>).self) { group in
                for (i, name) in names.enumerated() {
                    let source = sources[i]
                    group.addTask {
                        do { return (i, .success(try await SetOperationParty(configuration: config, me: name, waits: Self.waits)
                                                    .run(source: source, port: hub.port(for: name), sum: nil))) }
                        catch { return (i, .failure(error)) }
                    }
                }
                var out: [Int: Result<SetOperationParty.Outcome, Error>] = [:]
                for await (i, r) in group { out[i] = r }
                return out
            }
            let aggregate: Result<SetOperationAggregatorRole.Outcome, Error>
            do { aggregate = .success(try await aggregated) } catch { aggregate = .failure(error) }
            if minimum > common.count {
                XCTAssertThrowsError(try aggregate.get())
                for (i, r) in results { if case .success = r { XCTFail("bank-\(i) was delivered something below the minimum") } }
                continue
            }
            XCTAssertEqual(try aggregate.get().multiplicities.intersectionSize, common.count)
            guard case .members(let positions) = try results[0]!.get().delivery else { return XCTFail("bank-0 got no intersection") }
            XCTAssertEqual(Set(positions.map { String(decoding: sources[0].values[$0], as: UTF8.self) }), Set(common))
            XCTAssertEqual(try results[3]!.get().delivery, .cardinality(common.count))
            XCTAssertEqual(try results[1]!.get().delivery, SetDelivery.none)
        }
    }

    /// Vertical alignment of a guest and three hosts: every party ends with exactly the rows all four
    /// hold, in the same agreed order; a host is told only those rows.
    func testVerticalAlignmentOfAGuestAndThreeHostsOverSessionPorts() async throws {
        let everyone = (0..<40).map { "patient-\($0)" }
        let sets = [
            everyone + (0..<15).map { "patient-guest-\($0)" },
            everyone + (0..<9).map { "patient-h1-\($0)" } + (0..<5).map { "patient-guest-\($0)" },  // shares 5 with the guest only
            everyone + (0..<7).map { "patient-h2-\($0)" },
            Array(everyone.prefix(35)) + (0..<3).map { "patient-h3-\($0)" },                         // lacks 5 of the common rows
        ]
        let names = ["guest", "host-1", "host-2", "host-3"]
        let wire = WireLog()
        let hub = InMemorySessionHub(tap: { wire.append($0, $1) })
        let sources = sets.map { ArrayIdentifierSource($0) }
        let orders = try await withThrowingTaskGroup(of: (Int, [String]).self) { group in
            for (i, name) in names.enumerated() {
                let source = sources[i]
                group.addTask {
                    let o = try await VerticalRowAlignment(jobID: "job-align", guest: "guest", hosts: Array(names.dropFirst()), me: name, waits: Self.waits)
                        .run(source: source, port: hub.port(for: name))
                    XCTAssertEqual(o.positions, o.positions.sorted())
                    let ids = o.positions.map { String(decoding: source.values[$0], as: UTF8.self) }
                    return (i, VerticalRowAlignment.agreedOrder(ids, jobID: "job-align"))
                }
            }
            var out = [[String]](repeating: [], count: names.count)
            for try await (i, order) in group { out[i] = order }
            return out
        }
        let joint = Set(everyone.prefix(35))
        for (i, order) in orders.enumerated() {
            XCTAssertEqual(Set(order), joint, "\(names[i]) aligned on the rows all parties hold")
            XCTAssertEqual(order, orders[0], "\(names[i]) has the guest's order")
        }
        XCTAssertNotEqual(orders[0], everyone.prefix(35).sorted(), "the agreed order is keyed, not the identifiers' own order")
        // No identifier crossed the ports in the clear.
        let everything = WireIndex(wire.entries.flatMap(\.bytes))
        for s in sets { for x in s { XCTAssertFalse(everything.contains(Array(x.utf8)), "\(x) on the wire") } }
    }

    /// Prediction with a vertical model: alignment, then each host's partial margins of the aligned rows
    /// to the guest. The guest's scores equal σ of the whole model on the joined rows; only the rows all
    /// parties hold are scored; no identifier and no feature value crosses the ports.
    func testVerticalPredictionOfAGuestAndTwoHostsOverSessionPorts() async throws {
        var rng = SplitMix(state: 77)
        let names = ["guest", "host-1", "host-2"]
        let everyone = (0..<30).map { "customer-\($0)" }
        let sets = [everyone + ["customer-g0", "customer-g1"], everyone + ["customer-h1"], Array(everyone.dropLast(4)) + ["customer-h2"]]
        // Each party's features of each of its customers, and its block of the model.
        let widths = [3, 2, 4]
        var features: [[String: [Double]]] = []
        for (i, set) in sets.enumerated() {
            features.append(Dictionary(uniqueKeysWithValues: set.map { id in (id, (0..<widths[i]).map { _ in Double.random(in: -2...2, using: &rng) }) }))
        }
        let weights = widths.map { w in (0..<w).map { _ in Double.random(in: -1...1, using: &rng) } }
        let bias = 0.25
        let wire = WireLog()
        let hub = InMemorySessionHub(tap: { wire.append($0, $1) })
        let sources = sets.map { ArrayIdentifierSource($0) }
        let results = try await withThrowingTaskGroup(of: (Int, [String], [Double]?).self) { group in
            for (i, name) in names.enumerated() {
                let source = sources[i], own = features[i], w = weights[i]
                group.addTask {
                    let port = hub.port(for: name)
                    let alignment = try await VerticalRowAlignment(jobID: "job-predict", guest: "guest", hosts: Array(names.dropFirst()), me: name,
                                                                   waits: Self.waits).run(source: source, port: port)
                    let ids = alignment.positions.map { String(decoding: source.values[$0], as: UTF8.self) }
                    let order = VerticalRowAlignment.agreedOrder(ids, jobID: "job-predict")
                    let margins = order.map { id in zip(w, own[id]!).reduce(i == 0 ? bias : 0) { $0 + $1.0 * $1.1 } }
                    let outcome = try await VerticalScoring(guest: "guest", hosts: Array(names.dropFirst()), me: name, sessionWait: .seconds(30))
                        .run(ownMargins: margins, port: port)
                    return (i, order, outcome.scores)
                }
            }
            var out: [(order: [String], scores: [Double]?)] = Array(repeating: ([], nil), count: names.count)
            for try await (i, order, scores) in group { out[i] = (order, scores) }
            return out
        }
        let order = results[0].order
        XCTAssertEqual(Set(order), Set(everyone.dropLast(4)), "only the rows all three hold are scored")
        XCTAssertNil(results[1].scores, "a host learns no score")
        XCTAssertNil(results[2].scores)
        let scores = try XCTUnwrap(results[0].scores)
        XCTAssertEqual(scores.count, order.count)
        for (id, score) in zip(order, scores) {
            var margin = bias
            for p in 0..<3 { margin += zip(weights[p], features[p][id]!).reduce(0) { $0 + $1.0 * $1.1 } }
            XCTAssertEqual(score, 1 / (1 + exp(-margin)), accuracy: 1e-12, id)
        }
        // No identifier and no feature value on the wire: only blinded elements and partial margins.
        let everything = WireIndex(wire.entries.flatMap(\.bytes))
        for s in sets { for x in s { XCTAssertFalse(everything.contains(Array(x.utf8)), "\(x) on the wire") } }
        for f in features { for row in f.values { for v in row {
            withUnsafeBytes(of: v.bitPattern.littleEndian) { XCTAssertFalse(everything.contains(Array($0)), "a feature value on the wire") }
        } } }
    }

    /// Finding 2 for the alignment: a guest that offers a whole number range (20,000 identifiers against a
    /// host's 50) to learn which of them the host holds is refused by the host's own limit on peer sets,
    /// checked on the PSI header before anything is compared.
    func testAHostRefusesAGuestSetBeyondItsLimit() async throws {
        let hub = InMemorySessionHub()
        let guest = ArrayIdentifierSource((0..<20_000).map { "+4477\($0)" })
        let host = ArrayIdentifierSource((0..<50).map { "+4477\($0 * 7)" })
        async let guestRun: Void = {
            _ = try? await VerticalRowAlignment(jobID: "job-range", guest: "guest", hosts: ["host"], me: "guest", waits: Self.waits)
                .run(source: guest, port: hub.port(for: "guest"))
        }()
        var aligner = VerticalRowAlignment(jobID: "job-range", guest: "guest", hosts: ["host"], me: "host", waits: Self.waits)
        aligner.peerSetSizes = 10...500
        do {
            _ = try await aligner.run(source: host, port: hub.port(for: "host"))
            XCTFail("the host aligned with a 20,000-identifier range")
        } catch {
            XCTAssertTrue("\(error)".contains("20000") && "\(error)".contains("at most 500"), "\(error)")
        }
        await guestRun
    }

    /// Finding 2 for set operations: an owner that puts a whole number range (2,000 identifiers) into a
    /// watchlist job to learn every other list is refused by another owner's own limit (at most 200), as
    /// its chain passes that owner's ring step — before the aggregator delivers anything.
    func testAnOwnerRefusesAnotherOwnersSetBeyondItsLimit() async throws {
        let hub = InMemorySessionHub()
        let names = ["bank-0", "bank-1", "bank-2"]
        let base = SetOperationConfiguration(jobID: "job-watch", group: .ristretto255, owners: names, mixer: "bank-1", aggregator: "regulator",
                                             deliveries: Dictionary(uniqueKeysWithValues: names.map { ($0, SetDeliveryKind.onOthersLists) }), batchSize: 64)
        let sets = [(0..<80).map { "+4477\($0 * 3)" }, (0..<2000).map { "+4477\($0)" }, (0..<90).map { "+4477\($0 * 5)" }]
        let waits = SetOperationParty.Waits(session: .seconds(5), phase: .seconds(10))
        async let aggregator: Void = { _ = try? await SetOperationAggregatorRole(configuration: base, waits: waits).run(port: hub.port(for: "regulator"), sumRoundTimeout: nil) }()
        let outcomes = await withTaskGroup(of: (String, Error?).self) { group in
            for (i, name) in names.enumerated() {
                var config = base
                if name == "bank-2" { config.peerSetSizes = 10...200 }
                let source = ArrayIdentifierSource(sets[i])
                group.addTask {
                    do { _ = try await SetOperationParty(configuration: config, me: name, waits: waits).run(source: source, port: hub.port(for: name), sum: nil); return (name, nil) }
                    catch { return (name, error) }
                }
            }
            var out: [String: Error?] = [:]
            for await (n, e) in group { out[n] = e }
            return out
        }
        await aggregator
        let refusal = try XCTUnwrap(outcomes["bank-2"] ?? nil, "bank-2 must refuse")
        XCTAssertTrue("\(refusal)".contains("bank-1's input") && "\(refusal)".contains("at most 200"), "\(refusal)")
        for name in names { XCTAssertNotNil(outcomes[name] ?? nil, "\(name) gets no delivery") }
    }
}
