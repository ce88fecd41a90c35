import Foundation
import MPCCrypto
import MPCIdentity
import MPCTestSupport
import MPCWire
import XCTest
@testable import MPCProtocols

/// Cells released in two phases (finding 8): the server sums every cell's counts, then the measures of
/// the cells that pass only; a server that tells clients different releases gets no measure at all.
final class TwoPhaseCellSumTests: XCTestCase {
    var pki: TestPKI!
    override func setUpWithError() throws { pki = try TestPKI() }
    override func tearDownWithError() throws { pki.remove() }

    func authentication(_ node: String) throws -> KeyAuthentication { try pki.keyAuthentication(node) }

    struct Run {
        var server: Result<TwoPhaseCellSum.Server.Outcome, Error>
        var clients: [String: Result<TwoPhaseCellSum.Client.Outcome, Error>]
        var vectors: [String: [UInt64]]
        /// Every SecAgg message the server sent or received, decoded.
        var messages: [(sender: String, body: Mpcnode_V1_SecAggMessage.OneOf_Body)]
    }

    static let layout = TwoPhaseCellSum.Layout(cells: 4, measures: 2, minRecords: 5, minParties: 2)

    /// Four clients; per cell [records, contributing, sum, count]. Cell 0: every client, many records
    /// (released); cell 1: one client only (suppressed: parties); cell 2: two clients, 2 records in all
    /// (suppressed: records); cell 3: nobody.
    static func vector(client i: Int, seed: UInt64) -> [UInt64] {
        var rng = SplitMix(state: seed &+ UInt64(i))
        var v = [UInt64](repeating: 0, count: layout.cells * 4)
        func cell(_ c: Int, records: UInt64) {
            v[c * 4] = records
            v[c * 4 + 1] = records > 0 ? 1 : 0
            v[c * 4 + 2] = records > 0 ? rng.next() % 1_000_000 : 0
            v[c * 4 + 3] = records
        }
        cell(0, records: 3 + UInt64(i))
        cell(1, records: i == 0 ? 7 : 0)
        cell(2, records: i < 2 ? 1 : 0)
        return v
    }

    func run(clients n: Int = 4, minimumSurvivors: Int = 3, acceptTimeout: Duration = .seconds(20),
             intercept: InMemoryChannel.Intercept? = nil) async throws -> Run {
        let names = (0..<n).map { "branch-\($0)" }
        let decoded = Locked<[(String, Mpcnode_V1_SecAggMessage.OneOf_Body)]>([])
        let hub = InMemorySessionHub(tap: { sender, bytes in
            guard let frame = try? Mpcnode_V1_SessionFrame(serializedBytes: bytes), case .secagg(let m)? = frame.body, let body = m.body else { return }
            decoded.withValue { $0.append((sender, body)) }
        }, intercept: intercept)
        var parameters = SecureAggregationParameters(jobID: "job-cells", specHash: Array("spec".utf8), clients: names, server: "regulator",
                                                     length: 1, roundTimeout: .seconds(20))
        parameters.minimumSurvivors = minimumSurvivors
        var vectors: [String: [UInt64]] = [:]
        var auth: [String: KeyAuthentication] = [:]
        for (i, name) in names.enumerated() {
            vectors[name] = Self.vector(client: i, seed: 11)
            auth[name] = try authentication(name)
        }
        let server = TwoPhaseCellSum.Server(parameters: parameters, layout: Self.layout)
        async let serverResult: Result<TwoPhaseCellSum.Server.Outcome, Error> = {
            do { return .success(try await server.run(port: hub.port(for: "regulator"), acceptTimeout: acceptTimeout)) } catch { return .failure(error) }
        }()
        let clients = await withTaskGroup(of: (String, Result<TwoPhaseCellSum.Client.Outcome, Error>).self) { group in
            for name in names {
                let client = TwoPhaseCellSum.Client(parameters: parameters, layout: Self.layout, me: name, vector: vectors[name]!, authentication: auth[name]!)
                group.addTask {
                    do { return (name, .success(try await client.run(port: hub.port(for: name)))) } catch { return (name, .failure(error)) }
                }
            }
            var out: [String: Result<TwoPhaseCellSum.Client.Outcome, Error>] = [:]
            for await (n, r) in group { out[n] = r }
            return out
        }
        return Run(server: await serverResult, clients: clients, vectors: vectors, messages: decoded.value)
    }

    func testOnlyCellsThatPassAreSummedAndTheyAreExact() async throws {
        let r = try await run()
        let outcome = try r.server.get()
        XCTAssertEqual(outcome.released, [0])
        let plain = r.vectors.values.reduce(into: [UInt64](repeating: 0, count: 16)) { s, v in for i in 0..<16 { s[i] &+= v[i] } }
        XCTAssertEqual(outcome.counts, [plain[0], plain[1], plain[4], plain[5], plain[8], plain[9], plain[12], plain[13]])
        XCTAssertEqual(outcome.measures, [plain[2], plain[3]])
        let cells = outcome.cells(layout: Self.layout)
        XCTAssertEqual(cells[0].values.map { UInt64(bitPattern: $0) }, [plain[2], plain[3]])
        XCTAssertEqual(cells.map(\.suppressed), [false, true, true, true])
        for (name, c) in r.clients { XCTAssertEqual(try c.get().released, [0], name) }
        // What the server ever received of the measures: one masked vector per client of exactly the
        // released cells' width, never a suppressed cell's (the counts' vectors carry 2 slots per cell).
        let masked = r.messages.compactMap { m -> Int? in if case .maskedInput(let v) = m.body { return Int(v.length) } else { return nil } }
        XCTAssertEqual(masked.sorted(), Array(repeating: 2, count: 4) + Array(repeating: 8, count: 4))
    }

    /// A lying server tells one client that cell 1 (one client's alone) is released and the others that
    /// it is not: the release is bound into the measures' signatures, so every client aborts before it
    /// sends a masked measure.
    func testClientsToldDifferentReleasesAbortBeforeAnyMeasureIsSent() async throws {
        let intercept: InMemoryChannel.Intercept = { sender, receiver, message in
            guard sender == "regulator", receiver == "branch-2", var frame = try? Mpcnode_V1_SessionFrame(serializedBytes: message),
                  case .secagg(var m)? = frame.body, case .cellRelease(var release)? = m.body else { return [message] }
            release.cells = [0, 1]
            m.cellRelease = release
            frame.secagg = m
            return [try! frame.serializedBytes()]
        }
        let r = try await run(intercept: intercept)
        XCTAssertThrowsError(try r.server.get())
        for (name, c) in r.clients { XCTAssertThrowsError(try c.get(), name) }
        let measures = r.messages.filter { m in if case .maskedInput(let v) = m.body { return v.length != 8 } else { return false } }
        XCTAssertTrue(measures.isEmpty, "a masked measure vector was sent: \(measures.map(\.sender))")
    }

    /// A client's own floor of contributors: with 3 clients and a floor of 4 (a member's policy), it
    /// refuses before anything is sent.
    func testAClientRefusesASumWithFewerClientsThanItsFloor() async throws {
        let r = try await run(clients: 3, minimumSurvivors: 4)
        for (name, c) in r.clients {
            XCTAssertThrowsError(try c.get(), name) { e in XCTAssertTrue("\(e)".contains("fewer than the 4"), "\(e)") }
        }
        XCTAssertThrowsError(try r.server.get())
    }

    func testAReleaseNamingCellsOutOfRangeIsRefused() async throws {
        let intercept: InMemoryChannel.Intercept = { sender, _, message in
            guard sender == "regulator", var frame = try? Mpcnode_V1_SessionFrame(serializedBytes: message),
                  case .secagg(var m)? = frame.body, case .cellRelease(var release)? = m.body else { return [message] }
            release.cells = [0, 9]
            m.cellRelease = release
            frame.secagg = m
            return [try! frame.serializedBytes()]
        }
        // (The server waits for measures sessions that never come; in a node the failed clients' reports end it.)
        let r = try await run(acceptTimeout: .seconds(2), intercept: intercept)
        XCTAssertThrowsError(try r.server.get())
        for (name, c) in r.clients {
            XCTAssertThrowsError(try c.get(), name) { e in XCTAssertTrue("\(e)".contains("not increasing cells of this sum"), "\(e)") }
        }
    }
}
