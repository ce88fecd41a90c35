import Foundation
import Logging
import MPCCrypto
import MPCNode
import MPCProtocols
import MPCTransport

/// `mpcnode bench lookup`: real nodes in this process over loopback mutual TLS, timed from the querier's
/// HTTP API to the answer (Protocols/list-lookup.md, "Cost"). N holders with M entries each and one
/// querier subscribed to all of them.
public enum LookupBenchmark {
    public struct Figures: Sendable {
        public var holders: Int
        public var entries: Int
        public var cores: Int
        public var buildSeconds: Double          // holder-1 builds its table
        public var shipSeconds: Double           // the querier fetches and applies holder-1's table
        public var allTablesSeconds: Double      // every other holder's build and ship
        public var deltaEntries: Int
        public var deltaBuildSeconds: Double     // holder-1 makes the delta
        public var deltaApplySeconds: Double     // the querier fetches and applies it
        public var indexBytesPerEntry: Double
        public var sqliteBytesPerEntry: Double
        public var singleKey: (p50: Double, p99: Double, samples: Int)
        public var loadSingle: (perSecond: Double, clients: Int)
        public var loadBatched: (perSecond: Double, clients: Int, batch: Int)
        public var holderEvaluationsPerSecond: Double
        public var scalarMultBoundPerSecond: Double
        public var answersCorrect: Bool
    }

    public static func run(holders: Int, entries: Int, seconds: Double = 10, logLevel: Logger.Level = .error, progress: @escaping @Sendable (String) -> Void) async throws -> Figures {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mpcnode-bench-lookup-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let ids = (1...holders).map { "holder-\($0)" }
        let generated = HTTPAPISettings.newToken()
        let consortium = try LocalConsortium.create(in: directory, banks: ids + ["querier"], policy: { id in
            if id == "querier" {
                return """
                    http:
                      listen: 127.0.0.1:0
                      max_batch_keys: 10000
                      max_request_bytes: 4194304
                      tokens:
                        - name: bench
                          sha256: \(generated.sha256)
                    policy:
                      lookups:
                        subscribe: [\(ids.map { "\($0):blacklist" }.joined(separator: ", "))]
                        sync_seconds: 86400
                        timeout_ms: 60000
                    """
            }
            return """
                policy:
                  datasets:
                    blacklist:
                      lookup_lists:
                        label_columns: [risk, reason]
                        queriers: [querier]
                        max_lookups_per_second: 100000
                        max_lookups_per_day: 1000000000
                """
        })
        var logger = Logger(label: "bench")
        logger.logLevel = logLevel
        // Lists: holder h lists numbers ≡ h (mod 3·holders) … so that a third of the keys asked are listed somewhere.
        progress("writing and importing \(holders) lists of \(entries) entries")
        for (h, id) in ids.enumerated() {
            let path = directory.appendingPathComponent("\(id).csv")
            var text = "phone,risk,reason\n"
            text.reserveCapacity(entries * 32)
            for i in 0..<entries { text += "4477\(String(format: "%08d", i * 3 * holders + h)),\(["low", "medium", "high"][i % 3]),r\(i % 11)\n" }
            try text.write(to: path, atomically: true, encoding: .utf8)
            try DatasetCatalog(store: NodeStore(path: consortium.configuration(of: id).databasePath)).importCSV(DatasetImportRequest(
                dataset: "blacklist", csvPath: path.path, idColumn: "phone", normalization: IdentifierNormalization(digitsOnly: true)))
            try? FileManager.default.removeItem(at: path)
        }
        var nodes: [String: NodeRuntime] = [:]
        for id in ids { nodes[id] = try await consortium.start(id, logger: logger, watchesLookupLists: false) }
        let querier = try await NodeWithAPI.start(consortium, "querier", logger: logger, watchesLookupLists: false)
        defer { }
        let subscriptions = ids.map { LookupSubscriptions.Subscription(holder: $0, list: "blacklist") }

        // Build and ship holder-1's table, then every other one.
        progress("holder-1 builds its table")
        var t = ContinuousClock.now
        await nodes[ids[0]]!.lookupHolder.refreshAll()
        let build = elapsed(since: t)
        progress("the querier fetches it")
        t = ContinuousClock.now
        try await querier.node.lookupQuerier.sync(subscriptions[0])
        let ship = elapsed(since: t)
        t = ContinuousClock.now
        for (i, id) in ids.enumerated().dropFirst() {
            progress("holder \(i + 1) of \(holders): build and ship")
            await nodes[id]!.lookupHolder.refreshAll()
            try await querier.node.lookupQuerier.sync(subscriptions[i])
        }
        let others = elapsed(since: t)

        // A delta of 10,000 entries at holder-1.
        let deltaEntries = min(10_000, max(1, entries / 10))
        let deltaPath = directory.appendingPathComponent("delta.csv")
        try ("phone,risk,reason\n" + (0..<deltaEntries).map { "4488\(String(format: "%08d", $0)),high,delta\n" }.joined())
            .write(to: deltaPath, atomically: true, encoding: .utf8)
        try DatasetCatalog(store: nodes[ids[0]]!.store).append(dataset: "blacklist", csvPath: deltaPath.path)
        progress("holder-1 makes a delta of \(deltaEntries) entries; the querier applies it")
        t = ContinuousClock.now
        await nodes[ids[0]]!.lookupHolder.refreshAll()
        let deltaBuild = elapsed(since: t)
        t = ContinuousClock.now
        try await querier.node.lookupQuerier.sync(subscriptions[0])
        let deltaApply = elapsed(since: t)

        let status = await querier.node.lookupQuerier.status()
        let totalEntries = status.reduce(0) { $0 + Int($1.entries ?? 0) }
        let indexBytes = status.reduce(0) { $0 + $1.indexBytes }
        let dbBytes = (try? FileManager.default.attributesOfItem(atPath: querier.node.configuration.databasePath.path)[.size] as? Int) ?? 0
        let walBytes = (try? FileManager.default.attributesOfItem(atPath: querier.node.configuration.databasePath.path + "-wal")[.size] as? Int) ?? 0

        // Single-key latency over HTTP (one keep-alive connection), half the keys listed.
        let port = querier.api!.port
        let client = PlainHTTPClient(port: port)
        let headers = ["Authorization": "Bearer \(generated.token)", "Content-Type": "application/json"]
        func key(_ i: Int) -> (String, Bool) {
            // Listed: entry i of holder (i mod holders); unlisted: a number no list has.
            i % 2 == 0 ? ("4477\(String(format: "%08d", ((i / 2) % entries) * 3 * holders + (i / 2) % holders))", true)
                       : ("4499\(String(format: "%08d", i))", false)
        }
        var correct = true
        progress("single-key lookups over HTTP")
        for i in 0..<20 { _ = try await client.send("POST", "/v1/lookups", headers: headers, body: Data(#"{"key":"\#(key(i).0)"}"#.utf8)) }
        var latencies: [Double] = []
        let samples = 400
        for i in 0..<samples {
            let (k, listed) = key(i + 1000)
            let start = ContinuousClock.now
            let r = try await client.send("POST", "/v1/lookups", headers: headers, body: Data(#"{"key":"\#(k)"}"#.utf8))
            latencies.append(elapsed(since: start) * 1000)
            let result = ((r.json as? [String: Any])?["results"] as? [[String: Any]])?.first
            if r.status != 200 || (result?["listed"] as? Bool) != listed || ((result?["checked"] as? [Any])?.count ?? 0) != holders { correct = false }
        }
        latencies.sort()

        // Load: concurrent clients, single keys (the node batches them per holder), then batches of 100.
        func load(clients: Int, batch: Int) async throws -> Double {
            let deadline = Date().addingTimeInterval(seconds)
            let counts = try await withThrowingTaskGroup(of: Int.self) { group in
                for c in 0..<clients {
                    group.addTask {
                        let client = PlainHTTPClient(port: port)
                        var done = 0, i = c * 1_000_000
                        while Date() < deadline {
                            let keys = (0..<batch).map { _ -> String in i += 1; return "\"\(key(i).0)\"" }.joined(separator: ",")
                            let r = try await client.send("POST", "/v1/lookups", headers: headers, body: Data(#"{"keys":[\#(keys)]}"#.utf8))
                            guard r.status == 200 else { throw PlainHTTPClient.ClientError.malformed("status \(r.status)") }
                            done += batch
                        }
                        return done
                    }
                }
                return try await group.reduce(0, +)
            }
            return Double(counts) / seconds
        }
        progress("load: 32 clients, one key a request, \(Int(seconds)) s")
        let single = try await load(clients: 32, batch: 1)
        progress("load: 8 clients, 100 keys a request, \(Int(seconds)) s")
        let batched = try await load(clients: 8, batch: 100)

        // A holder's evaluations per second on its TLS lookup sessions (pre-blinded batches of 4,096, the
        // querier doing nothing else), against the scalar-multiplication bound measured now.
        progress("a holder's OPRF evaluations per second over TLS")
        let keyID = status.first { $0.holder == ids[0] }?.keyID ?? ""
        let blinded = try (0..<4096).map { try OPRF.blind(Array("4477\($0)".utf8)).element }
        let address = querier.node.configuration.peers[ids[0]]!
        // Two sessions at once (two querier links), so that the holder's cores are busy while an answer is
        // on the wire.
        let transport = querier.node.transport
        let window = min(5, seconds)
        let evaluations = try await withThrowingTaskGroup(of: Double.self) { group in
            for _ in 0..<2 {
                group.addTask {
                    try await transport.withSession(jobID: "", service: LookupServices.query, to: ids[0], at: address) { channel in
                        let q = ListLookupQuerier(channel: channel)
                        _ = try await q.evaluate(list: "blacklist", keyID: keyID, blinded: blinded)
                        let start = ContinuousClock.now
                        var n = 0
                        while elapsed(since: start) < window {
                            _ = try await q.evaluate(list: "blacklist", keyID: keyID, blinded: blinded)
                            n += blinded.count
                        }
                        let rate = Double(n) / elapsed(since: start)
                        await q.close()
                        return rate
                    }
                }
            }
            return try await group.reduce(0, +)
        }
        let point = OPRF.hashToGroup(Array("bench".utf8))
        let scalar = try OPRF.deriveKey(seed: [UInt8](repeating: 1, count: 32), info: [])
        t = ContinuousClock.now
        for _ in 0..<2000 { _ = try Ristretto255.multiply(point, by: scalar) }
        let mult = elapsed(since: t) / 2000
        let cores = ProcessInfo.processInfo.activeProcessorCount

        await querier.stop()
        for n in nodes.values { await n.stop() }
        return Figures(holders: holders, entries: entries, cores: cores, buildSeconds: build, shipSeconds: ship, allTablesSeconds: others,
                       deltaEntries: deltaEntries, deltaBuildSeconds: deltaBuild, deltaApplySeconds: deltaApply,
                       indexBytesPerEntry: Double(indexBytes) / Double(max(1, totalEntries)),
                       sqliteBytesPerEntry: Double(dbBytes + walBytes) / Double(max(1, totalEntries)),
                       singleKey: (latencies[latencies.count / 2], latencies[latencies.count * 99 / 100], samples),
                       loadSingle: (single, 32), loadBatched: (batched, 8, 100),
                       holderEvaluationsPerSecond: evaluations, scalarMultBoundPerSecond: Double(cores) / mult, answersCorrect: correct)
    }

    static func elapsed(since start: ContinuousClock.Instant) -> Double {
        let d = ContinuousClock.now - start
        return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}
