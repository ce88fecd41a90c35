import Foundation
import MPCNode

/// `mpcnode bench import`: a CSV of `rows` identifiers (phone numbers with two more columns, as a bank's
/// export would have) written to disk, then imported into a fresh node database: rows per second of the
/// whole import (parsing, normalising, inserting, indexing, counting distinct identifiers, the audit
/// record) and the process's peak memory, which must not grow with the file.
public enum ImportBenchmark {
    public struct Figures: Sendable {
        public var rows: Int
        public var fileBytes: Int
        public var writeSeconds: Double
        public var importSeconds: Double
        /// How long each step of the import took, in order.
        public var stepSeconds: [(name: String, seconds: Double)]
        public var peakMemoryBytes: Int
    }

    public static func run(rows: Int, directory: URL, log: @escaping (String) -> Void) throws -> Figures {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let csv = directory.appendingPathComponent("customers-\(rows).csv")
        var t = Date()
        // A kept folder's CSV of the same size is imported again as it is (a fresh database each time).
        try? FileManager.default.removeItem(at: directory.appendingPathComponent("data"))
        if !FileManager.default.fileExists(atPath: csv.path) {
        FileManager.default.createFile(atPath: csv.path, contents: nil)
        let handle = try FileHandle(forWritingTo: csv)
        var chunk = "customer_id,phone,balance\n"
        for i in 0..<rows {
            // 11-digit numbers with the formatting a real export has ("+86 138-…"), so normalisation works.
            chunk += "C\(i),+86 1\(String(format: "%02d", i % 100))-\(String(format: "%08d", (i &* 2654435761) % 100_000_000)),\(i % 100_000).\(i % 100)\n"
            if chunk.utf8.count > 1 << 20 { handle.write(Data(chunk.utf8)); chunk = "" }
        }
        handle.write(Data(chunk.utf8))
        try handle.close()
        }
        let writeSeconds = Date().timeIntervalSince(t)
        let fileBytes = (try FileManager.default.attributesOfItem(atPath: csv.path)[.size] as? NSNumber)?.intValue ?? 0
        log(String(format: "wrote %d rows (%.1f MB) in %.1f s; importing…", rows, Double(fileBytes) / 1e6, writeSeconds))
        let store = try NodeStore(path: directory.appendingPathComponent("data/node.sqlite"))
        let catalog = DatasetCatalog(store: store)
        t = Date()
        var last = Date()
        // Each step's start, to print how long each took.
        var steps: [(name: String, start: Date)] = [("load (parse, check, insert)", t)]
        try catalog.importCSV(DatasetImportRequest(dataset: "customers", csvPath: csv.path, idColumn: "phone",
                                                    normalization: IdentifierNormalization(trim: true, digitsOnly: true))) { progress in
            switch progress {
            case .rows(let done, let bytes):
                if Date().timeIntervalSince(last) >= 5 {
                    last = Date()
                    log(String(format: "  %d rows (%.0f%% of the file) in %.0f s", done, 100 * Double(bytes) / Double(max(1, fileBytes)), Date().timeIntervalSince(t)))
                }
            case .indexing: steps.append(("index of the identifiers", Date()))
            case .countingDistinct: steps.append(("distinct identifiers counted", Date()))
            case .committing: steps.append(("commit (WAL written into the database)", Date()))
            }
        }
        let end = Date()
        let importSeconds = end.timeIntervalSince(t)
        let stepSeconds = steps.enumerated().map { k, step in
            (step.name, (k + 1 < steps.count ? steps[k + 1].start : end).timeIntervalSince(step.start))
        }
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Figures(rows: rows, fileBytes: fileBytes, writeSeconds: writeSeconds, importSeconds: importSeconds, stepSeconds: stepSeconds,
                       peakMemoryBytes: Int(usage.ru_maxrss) * 1024)
    }
}
