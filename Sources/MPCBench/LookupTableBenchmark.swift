import Foundation
import MPCCrypto
import MPCProtocols

/// Figures of the labelled lookup's parts that need no transport (Protocols/list-lookup.md): a holder's
/// OPRF evaluations per second against the scalar-multiplication bound, the time to build a table, the
/// querier's index memory per entry, and one lookup's time in one process (no network).
public enum LookupTableBenchmark {
    public struct Figures: Sendable {
        public var cores: Int
        public var scalarMultMicroseconds: Double
        public var evaluationsPerSecond: Double
        public var boundPerSecond: Double
        public var entries: Int
        public var tableSeconds: Double
        public var indexBytesPerEntry: Int
        public var lookupMicroseconds: (p50: Double, p99: Double)
        public var answersCorrect: Bool
    }

    public static func run(entries: Int, lookups: Int = 1000) throws -> Figures {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let key = try OPRF.deriveKey(seed: (0..<32).map { UInt8($0) }, info: Array("bench".utf8))
        // One core: scalar multiplications.
        let point = OPRF.hashToGroup(Array("bench".utf8))
        let samples = 2000
        var start = Date()
        for _ in 0..<samples { _ = try Ristretto255.multiply(point, by: key) }
        let multSeconds = Date().timeIntervalSince(start) / Double(samples)
        // All cores: a holder answering a batch of blinded keys.
        let blinded = try (0..<20_000).map { try OPRF.blind(Array("4477\($0)".utf8)).element }
        start = Date()
        _ = try ParallelMap.map(blinded) { try OPRF.evaluate($0, key: key) }
        let evaluations = Double(blinded.count) / Date().timeIntervalSince(start)
        // The table of a list.
        let list = (0..<entries).map { (identifier: Array("4477\(String(format: "%08d", $0 * 7))".utf8), label: Array("high".utf8)) }
        let context = LabelledLookup.context(holder: "holder", list: "blacklist", keyID: "k1")
        start = Date()
        let table = try LabelledLookup.table(list, key: key, context: context)
        let tableSeconds = Date().timeIntervalSince(start)
        let index = LabelledLookup.Index(table)
        // Lookups, half listed, in one process.
        var times: [Double] = []
        var correct = true
        for i in 0..<lookups {
            let listed = i % 2 == 0
            let k = listed ? list[(i * 7919) % entries].identifier : Array("4478\(String(format: "%08d", i))".utf8)
            let t0 = Date()
            let q = try LabelledLookup.Query(key: k)
            let evaluated = try OPRF.evaluate(q.blinded.element, key: key)
            let label = try q.label(evaluated: evaluated, index: index, table: table, context: context)
            times.append(Date().timeIntervalSince(t0) * 1e6)
            if (label != nil) != listed { correct = false }
        }
        times.sort()
        return Figures(cores: cores, scalarMultMicroseconds: multSeconds * 1e6, evaluationsPerSecond: evaluations,
                       boundPerSecond: Double(cores) / multSeconds, entries: entries, tableSeconds: tableSeconds,
                       indexBytesPerEntry: MemoryLayout<UInt64>.stride + MemoryLayout<UInt32>.stride,
                       lookupMicroseconds: (times[times.count / 2], times[min(times.count - 1, times.count * 99 / 100)]),
                       answersCorrect: correct)
    }
}
