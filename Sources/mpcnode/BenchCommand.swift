import MPCBench
import ArgumentParser
import Foundation
import MPCCrypto
import MPCLearning
import MPCNode
import MPCProtocols
import Logging

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure protocols end to end on this machine (figures, not tests).",
        subcommands: [PSI.self, UnionSum.self, SecureSum.self, Group.self, Import.self, Paillier.self, VerticalLR.self, LookupTable.self, Lookup.self, Ledger.self])

    struct PSI: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "PSI over loopback TLS, from SQLite to the stored result: two-party, or n-party with --parties.")
        @Option(help: "Identifiers per party (two parties: half of them shared; n parties: about half of a common pool).") var size: Int = 1 << 16
        @Option(help: "Parties: 2 runs the two-party protocol, more the multi-party one (with a regulator as aggregator).") var parties: Int = 2
        @Option(help: "x25519 or ristretto255.") var group: String = "x25519"
        @Option(help: "Work folder (default: a temporary one, removed afterwards).") var dir: String?
        @Option(help: "Two-party: buckets (default: one per 2^20 identifiers; Protocols/psi-buckets.md). More parties: N or auto runs the set operation in buckets (default: one pass; Protocols/multi-party-sets.md).") var buckets: String?
        @Option(help: "Two-party: bank-a cuts its link after this bucket; the job resumes at the next and the figures show the work redone.") var dropLinkAfterBucket: Int?
        @Option(name: .customLong("protocol"), help: "Two-party: ecdh, kkrt (Protocols/psi-oprf.md), or both (kkrt then ecdh on the same sets, and their ratio).") var psiProtocol: String = "ecdh"

        @Option(help: "Two-party: worker processes per bank (`mpcnode worker`, started by each node; Docs/decisions/0009-sharded-psi-workers.md).") var workers: Int?

        func run() async throws {
            guard let g = BlindingGroup(rawValue: group) else { throw CLIFailure("unknown group \(group)") }
            if parties > 2 {
                try await SetOperationBench.run(kind: .mpsi, parties: parties, size: size, group: g, dir: dir, buckets: try SetOperationBench.buckets(buckets))
                return
            }
            let folder = dir.map { URL(fileURLWithPath: $0) }
                ?? FileManager.default.temporaryDirectory.appendingPathComponent("mpcnode-bench-\(UUID().uuidString)")
            defer { if dir == nil { try? FileManager.default.removeItem(at: folder) } }
            let protocols: [MPCProtocols.PSIProtocol]
            switch psiProtocol {
            case "both": protocols = [.kkrt, .ecdh]
            case let name:
                guard let p = MPCProtocols.PSIProtocol(rawValue: name) else { throw CLIFailure("--protocol is ecdh, kkrt or both, not \(name)") }
                protocols = [p]
            }
            let twoPartyBuckets = try buckets.map { text -> Int in
                guard let n = Int(text) else { throw CLIFailure("--buckets of a two-party PSI is a number (its default is chosen from the sizes), not '\(text)'") }
                return n
            }
            var bench = PSIBenchmark(size: size, group: g, directory: folder, buckets: twoPartyBuckets, dropLinkAfterBucket: dropLinkAfterBucket)
            bench.protocols = protocols
            bench.workers = workers
            let all = try await bench.run { print($0) }
            for f in all { Self.report(f) }
            if all.count == 2 {
                print(String(format: "\nkkrt is %.1f× faster than ecdh on the same sets (wall %.2f s vs %.2f s)",
                             all[1].wallSeconds / all[0].wallSeconds, all[0].wallSeconds, all[1].wallSeconds))
            }
        }

        static func report(_ f: PSIBenchmark.Figures) {
            let ecdh = f.psiProtocol == .ecdh
            Swift.print("""

                PSI (\(f.psiProtocol.rawValue)) \(f.size) × \(f.size)\(ecdh ? " over \(f.group.rawValue)" : ""), two nodes + coordinator, loopback TLS 1.3
                  wall time (job, SQLite to stored result)  \(String(format: "%.2f", f.wallSeconds)) s
                  items per second (both sets)              \(Int(Double(2 * f.size) / f.wallSeconds))
                  intersection                              \(f.intersection)
                  bytes sent per item                       \(String(format: "%.1f", f.bytesSentPerItem))
                  peak memory (whole process, all nodes)    \(f.peakMemoryBytes / (1 << 20)) MiB (so far in this run)
                  workers per bank                          \(f.workers)\(f.workers > 1 ? ", peak memory of the largest worker process \(f.peakWorkerMemoryBytes / (1 << 20)) MiB" : "")
                  import (both banks, not in wall time)     \(String(format: "%.2f", f.importSeconds)) s
                  group cost (one core)                     \(String(format: "%.1f", f.scalarMultMicroseconds)) µs/mult, \(String(format: "%.1f", f.hashToGroupMicroseconds)) µs/hash
                  ECDH operation-count bound on \(f.cores) cores      \(String(format: "%.2f", f.boundSeconds)) s  (2n hashes + 4n mults)
                  ratio wall / ECDH bound                   \(String(format: "%.2f", f.wallSeconds / f.boundSeconds))×
                  buckets, resumes                          \(f.buckets), \(f.resumes)
                  elements processed (bank-a, padded)       \(f.elementsProcessed) over all attempts, \(f.elementsProcessedLastAttempt) in the last; a fresh run \(f.freshRunElements)
                  last attempt / fresh run                  \(String(format: "%.1f", 100 * Double(f.elementsProcessedLastAttempt) / Double(max(1, f.freshRunElements)))) %
                """)
        }
    }

    struct UnionSum: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: JobKindName.unionSum.rawValue,
            abstract: "Union-sum: N banks and a regulator over loopback TLS, from SQLite to the stored report.")
        @Option(help: "Banks.") var parties: Int = 10
        @Option(help: "Identifiers per bank (about half of a common pool of twice this size).") var size: Int = 100_000
        @Option(help: "x25519 or ristretto255.") var group: String = "x25519"
        @Option(help: "Work folder (default: a temporary one, removed afterwards).") var dir: String?
        @Option(help: "Run in buckets: N, or auto (one per 2^20 identifiers of all banks); default: one pass.") var buckets: String?
        @Option(help: "In buckets: the last bank cuts its link to the mixer in this bucket; the job resumes there.") var dropLinkInBucket: Int?

        func run() async throws {
            guard let g = BlindingGroup(rawValue: group) else { throw CLIFailure("unknown group \(group)") }
            let b = try SetOperationBench.buckets(buckets)
            if dropLinkInBucket != nil, b == nil { throw CLIFailure("--drop-link-in-bucket needs --buckets") }
            try await SetOperationBench.run(kind: .unionSum, parties: parties, size: size, group: g, dir: dir, buckets: b, dropMixLinkInBucket: dropLinkInBucket)
        }
    }

    struct SecureSum: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: JobKindName.secureSum.rawValue,
            abstract: "Secure aggregation: N clients and a server over loopback TLS, with dropouts.")
        @Option(help: "Clients.") var parties: Int = 10
        @Option(help: "Values per vector.") var length: Int = 100_000
        @Option(help: "Clients that drop out after sharing their keys.") var dropouts: Int = 0

        func run() async throws {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mpcnode-bench-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: folder) }
            let f = try await SecureSumBenchmark(parties: parties, length: length, dropouts: dropouts, directory: folder).run { print($0) }
            print("""

                secure sum: \(f.parties) parties × \(f.length) values, \(f.dropouts) dropouts, loopback TLS 1.3 (one process)
                  wall time (connect + 4 rounds + unmasking)  \(String(format: "%.2f", f.wallSeconds)) s
                  rounds, from all connected to the sum       \(String(format: "%.2f", f.roundsSeconds)) s
                  bytes per client (sent + received)          \(Int(f.bytesPerClient))
                  clients in the sum                          \(f.included)
                  sum equals the plain sum of the survivors   \(f.sumCorrect ? "yes" : "NO")
                  ChaCha20 expansion (one core)               \(String(format: "%.0f", f.chachaValuesPerSecond / 1e6)) M values/s
                """)
            if !f.sumCorrect { throw ExitCode(1) }
        }
    }

    struct LookupTable: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "lookup-table",
            abstract: "Labelled lookups without transport: OPRF evaluations per second, table build time, index memory, one lookup's time.")
        @Option(help: "Entries of the list.") var entries: Int = 100_000
        func run() throws {
            let f = try LookupTableBenchmark.run(entries: entries)
            print("""
                labelled lookup (Protocols/list-lookup.md), one process, no transport, \(f.cores) cores
                  scalar multiplication (one core)         \(String(format: "%.1f", f.scalarMultMicroseconds)) µs
                  holder's OPRF evaluations per second     \(Int(f.evaluationsPerSecond))  (bound \(Int(f.boundPerSecond)) on \(f.cores) cores: \(String(format: "%.2f", f.boundPerSecond / f.evaluationsPerSecond))×)
                  holder's table build                     \(String(format: "%.2f", f.tableSeconds)) s for \(f.entries) entries (\(String(format: "%.1f", f.tableSeconds * 1e6 / Double(f.entries))) µs an entry)
                  querier's index per entry                \(f.indexBytesPerEntry) bytes in memory
                  one lookup, blind to label (no network)  p50 \(String(format: "%.0f", f.lookupMicroseconds.p50)) µs, p99 \(String(format: "%.0f", f.lookupMicroseconds.p99)) µs
                  answers equal plain membership           \(f.answersCorrect ? "yes" : "NO")
                """)
            if !f.answersCorrect { throw ExitCode(1) }
        }
    }

    struct Lookup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Real-time lookups between real nodes over loopback mutual TLS, from the querier's HTTP API to the answer.")
        @Option(help: "List holders (one list each).") var holders: Int = 3
        @Option(help: "Entries of each list.") var entries: Int = 100_000
        @Option(help: "Seconds of each load test.") var seconds: Double = 10
        @Option(help: "The nodes' log level (info shows where a table build's and a sync's time goes).") var logLevel: String = "error"
        func run() async throws {
            guard let level = Logger.Level(rawValue: logLevel) else { throw CLIFailure("--log-level: one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))") }
            guard (1...100).contains(holders), (10...50_000_000).contains(entries) else { throw CLIFailure("--holders 1…100, --entries 10…50000000") }
            let f = try await LookupBenchmark.run(holders: holders, entries: entries, seconds: seconds, logLevel: level) { line in
                FileHandle.standardError.write(Data("  \(line)…\n".utf8))
            }
            func s(_ x: Double) -> String { String(format: x < 10 ? "%.2f" : "%.1f", x) }
            print("""
                list lookups (Protocols/list-lookup.md): \(f.holders) holders × \(f.entries) entries, one querier, real nodes over loopback mutual TLS, \(f.cores) cores
                  holder-1 builds its table                 \(s(f.buildSeconds)) s
                  the querier fetches and applies it        \(s(f.shipSeconds)) s   (build + ship \(s(f.buildSeconds + f.shipSeconds)) s)
                  every other holder's build and ship       \(s(f.allTablesSeconds)) s
                  a delta of \(f.deltaEntries) entries               holder \(s(f.deltaBuildSeconds)) s, querier fetch + apply \(s(f.deltaApplySeconds)) s
                  querier's memory per cached entry         \(String(format: "%.1f", f.indexBytesPerEntry)) bytes in memory (sorted tags; labels in SQLite: \(String(format: "%.0f", f.sqliteBytesPerEntry)) bytes an entry on disk)
                  single-key lookup over HTTP               p50 \(String(format: "%.2f", f.singleKey.p50)) ms, p99 \(String(format: "%.2f", f.singleKey.p99)) ms  (\(f.singleKey.samples) sequential requests, half listed)
                  under load, one key a request             \(Int(f.loadSingle.perSecond)) lookups/s  (\(f.loadSingle.clients) concurrent clients; the node batches per holder)
                  under load, \(f.loadBatched.batch) keys a request             \(Int(f.loadBatched.perSecond)) lookups/s  (\(f.loadBatched.clients) concurrent clients)
                  a holder's OPRF evaluations over TLS      \(Int(f.holderEvaluationsPerSecond))/s  (scalar-multiplication bound \(Int(f.scalarMultBoundPerSecond))/s on \(f.cores) cores: \(String(format: "%.2f", f.scalarMultBoundPerSecond / f.holderEvaluationsPerSecond))×)
                  answers equal plain membership            \(f.answersCorrect ? "yes" : "NO")
                """)
            if !f.answersCorrect { throw ExitCode(1) }
        }
    }

    struct Ledger: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "What the consortium ledger costs: tree heads signed and verified, proofs, gossip bytes, log growth per job.")
        @Option(help: "Jobs whose audit records fill the log.") var jobs: Int = 100_000
        @Option(help: "Audit records a job leaves at a node (a participant's are about 6 to 10).") var recordsPerJob: Int = 8
        @Option(help: "Nodes gossiping heads with each other.") var nodes: Int = 30
        @Option(help: "Seconds between pulls of each peer's head (ledger.gossip_seconds).") var gossipSeconds: Int = 300
        @Option(help: "Parties of the job whose receipt is signed and verified.") var receiptParties: Int = 10
        func run() throws {
            guard jobs >= 3, recordsPerJob >= 2, nodes >= 2, gossipSeconds >= 1 else { throw CLIFailure("--jobs ≥ 3, --records-per-job ≥ 2, --nodes ≥ 2") }
            guard (1...1000).contains(receiptParties) else { throw CLIFailure("--receipt-parties lies in 1…1000") }
            let f = try LedgerBenchmark.run(jobs: jobs, recordsPerJob: recordsPerJob, nodes: nodes, gossipSeconds: gossipSeconds, receiptParties: receiptParties)
            let perMillionJobs = f.databaseBytesPerRecord * Double(f.recordsPerJob) * 1e6 / 1_048_576
            print("""
                ledger, a log of \(f.records) audit records (\(jobs) jobs × \(f.recordsPerJob))
                  append a record with its leaf           \(String(format: "%.1f", f.appendMicrosecondsPerRecord)) µs
                  root of the whole log                   \(String(format: "%.1f", f.rootMilliseconds)) ms
                  sign a tree head (its root + ECDSA)     \(String(format: "%.1f", f.signMilliseconds)) ms
                  verify a head (certificate + signature) \(String(format: "%.2f", f.verifyMilliseconds)) ms
                  consistency proof (⅔ → all)             \(String(format: "%.1f", f.consistencyProofMilliseconds)) ms
                  inclusion proof                         \(String(format: "%.1f", f.inclusionProofMilliseconds)) ms
                  one head exchange on the wire           \(f.exchangeBytes) bytes
                  gossip, \(f.nodes) nodes every \(f.gossipSeconds) s, quiet    \(String(format: "%.1f", f.gossipBytesPerHour / 1_048_576)) MB an hour for the consortium (\(String(format: "%.0f", f.gossipBytesPerHour / Double(f.nodes) / 1024)) KB a node)
                  … busy (every log grew each round)      \(String(format: "%.1f", f.gossipBytesPerHourBusy / 1_048_576)) MB an hour (\(String(format: "%.0f", f.gossipBytesPerHourBusy / Double(f.nodes) / 1024)) KB a node; a third node's head \(f.seenHeadBytes) bytes)
                  database growth per record              \(String(format: "%.0f", f.databaseBytesPerRecord)) bytes (the record, its hash chain, its leaf and subtree hashes)
                  … per 1M jobs                           \(String(format: "%.0f", perMillionJobs)) MB
                receipt of a \(f.receiptParties)-party job
                  one party's signature                   \(String(format: "%.2f", f.receiptSignMilliseconds)) ms
                  every signature verified (each party)   \(String(format: "%.1f", f.receiptVerifyMilliseconds)) ms
                  the signed receipt on the wire          \(f.receiptDeliveryBytes) bytes
                """)
        }
    }

    struct Paillier: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Paillier encryption and decryption per second (one core, and all cores).")
        @Option(help: "Modulus bits.") var bits: Int = 2048
        @Option(help: "Operations per measurement.") var samples: Int = 500
        func run() throws {
            let f = try PaillierBenchmark.run(bits: bits, samples: samples)
            print("""
                Paillier, \(f.bits)-bit modulus (g = n + 1, CRT decryption, DJN short-exponent randomness of \(PaillierPublicKey.randomnessBits(modulusBits: f.bits)) bits)
                  key generation                         \(String(format: "%.2f", f.keyGenerationSeconds)) s
                  encryptions per second, one core       \(Int(f.encryptionsPerSecond))
                  … with textbook rⁿ randomness          \(Int(f.fullExponentEncryptionsPerSecond))
                  decryptions per second, one core       \(Int(f.decryptionsPerSecond))
                  ciphertext additions per second        \(Int(f.additionsPerSecond))
                  scalar multiplications (16-bit) per s  \(Int(f.scalarMultiplicationsPerSecond))
                  encryptions per second, \(f.cores) cores        \(Int(f.allCoresEncryptionsPerSecond))
                """)
        }
    }

    struct VerticalLR: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "vertical-lr",
            abstract: "Vertical LR (Paillier): guest, host(s) and arbiter in one process; time per epoch.")
        @Option(help: "Synthetic rows (ignored with --breast).") var rows: Int = 10_000
        @Option(help: "Guest features (synthetic).") var guestFeatures: Int = 30
        @Option(help: "Host features (synthetic).") var hostFeatures: Int = 300
        @Option(help: "FATE's data folder: train on breast_hetero_guest/host instead of synthetic rows.") var breast: String?
        @Option(help: "Hosts the host features are split over (a chain of hosts).") var hosts: Int = 1
        @Option(help: "Epochs.") var epochs: Int = 1
        @Option(help: "Mini-batch size.") var batchSize: Int = 1024
        @Option(help: "Paillier modulus bits.") var bits: Int = 2048

        func run() async throws {
            let (g, h): (LabeledRows, LabeledRows)
            if let breast {
                func load(_ name: String, labelled: Bool) throws -> LabeledRows {
                    try LabeledRows(csv: String(contentsOf: URL(fileURLWithPath: breast).appendingPathComponent(name), encoding: .utf8), labelled: labelled)
                }
                (g, h) = (try load("breast_hetero_guest.csv", labelled: true), try load("breast_hetero_host.csv", labelled: false))
            } else {
                (g, h) = VerticalLRBenchmark.synthetic(rows: rows, guest: guestFeatures, host: hostFeatures)
            }
            guard (1...h.width).contains(hosts) else { throw ValidationError("--hosts must be 1 … \(h.width) (the host features)") }
            let f = try await VerticalLRBenchmark.run(guest: g, host: h, hosts: hosts, training: .init(rounds: epochs, localEpochs: 1, learningRate: 0.15, l2: 0.001,
                                                                                        batchSize: batchSize, tolerance: 0), keyBits: bits)
            print("""
                vertical LR: \(f.rows) rows × (\(f.guestFeatures) guest + \(f.hostFeatures) host) features\(f.hosts > 1 ? " over \(f.hosts) hosts" : ""), Paillier \(f.keyBits) bits, batch \(batchSize), \(ProcessInfo.processInfo.activeProcessorCount) cores
                  total (incl. key generation)   \(String(format: "%.2f", f.seconds)) s for \(f.epochs) epoch(s)
                  time per epoch                 \(String(format: "%.2f", f.seconds / Double(f.epochs))) s
                  bytes exchanged                \(f.bytes)
                  loss per epoch (Taylor)        \(f.losses.map { String(format: "%.4f", $0) }.joined(separator: ", "))
                  AUC on the training rows       \(String(format: "%.4f", f.auc))
                """)
            let widest = max(f.guestFeatures, (f.hostFeatures + f.hosts - 1) / f.hosts) + 1
            let floor = DatasetPolicy.defaultMinimumBatchRowsPerFeature * widest
            if batchSize < floor {
                print("  note: a node's default policy refuses this batch: it needs at least \(floor) rows (min_batch_rows_per_feature \(DatasetPolicy.defaultMinimumBatchRowsPerFeature) × (\(widest - 1) features + 1)); measured without that check")
            }
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A CSV of N rows written, then imported into a fresh node database: rows per second and peak memory.")
        @Option(help: "Rows of the CSV.") var rows: Int = 1_000_000
        @Option(help: "Folder to work in (kept); a temporary one, removed, by default.") var dir: String?
        func run() throws {
            guard rows > 0 else { throw CLIFailure("--rows must be positive") }
            let folder = dir.map { URL(fileURLWithPath: $0) }
                ?? FileManager.default.temporaryDirectory.appendingPathComponent("mpcnode-bench-import-\(UUID().uuidString)")
            defer { if dir == nil { try? FileManager.default.removeItem(at: folder) } }
            let f = try ImportBenchmark.run(rows: rows, directory: folder) { print($0) }
            print("""

                import of \(f.rows) rows (\(String(format: "%.1f", Double(f.fileBytes) / 1e6)) MB, 3 columns, identifiers normalised trim,digits-only)
                  import, file to committed dataset     \(String(format: "%.2f", f.importSeconds)) s
                  rows per second                       \(String(format: "%.0f", Double(f.rows) / f.importSeconds))
                  peak memory (whole process)           \(f.peakMemoryBytes >> 20) MiB
                  steps:
                """)
            for (name, seconds) in f.stepSeconds {
                print("    \(name.padding(toLength: 40, withPad: " ", startingAt: 0)) \(String(format: "%6.2f", seconds)) s")
            }
        }
    }

    struct Group: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cost of the group operations, per group, on one core.")
        func run() throws {
            for g in BlindingGroup.allCases {
                let c = try PSIBenchmark.groupOperationCosts(g, samples: 5000)
                print("\(g.rawValue.padding(toLength: 13, withPad: " ", startingAt: 0)) scalar mult \(String(format: "%6.1f", c.mult)) µs   hash to group \(String(format: "%6.1f", c.hash)) µs"
                      + (c.hash == c.singleHash ? "" : String(format: " (in slices of 64; %.1f µs alone)", c.singleHash)))
            }
        }
    }
}

enum SetOperationBench {
    /// `--buckets`: nil (one pass), auto (`.some(nil)`) or a count.
    static func buckets(_ text: String?) throws -> Int?? {
        guard let text else { return nil }
        if text == "auto" { return .some(nil) }
        guard let n = Int(text), (1...65_536).contains(n) else { throw CLIFailure("--buckets takes 1…65536 or auto, not '\(text)'") }
        return .some(n)
    }

    static func run(kind: SetOperation, parties: Int, size: Int, group: BlindingGroup, dir: String?, buckets: Int?? = nil,
                    dropMixLinkInBucket: Int? = nil) async throws {
        guard parties >= 2 else { throw CLIFailure("--parties must be at least 2") }
        let folder = dir.map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("mpcnode-bench-\(UUID().uuidString)")
        defer { if dir == nil { try? FileManager.default.removeItem(at: folder) } }
        var bench = SetOperationBenchmark(kind: kind, parties: parties, size: size, group: group, directory: folder)
        bench.buckets = buckets
        bench.dropMixLinkInBucket = dropMixLinkInBucket
        let f = try await bench.run { print($0) }
        let sent = f.bytesSentPerParty.filter { $0.key != "regulator" }.values
        print("""

            \(kind.rawValue): \(f.parties) parties × ~\(f.size) identifiers (\(f.identifiers) in all) over \(group.rawValue), loopback TLS 1.3, one process\(buckets == nil ? "" : ", in buckets (" + (buckets!.map(String.init) ?? "auto") + ")")
              wall time (job, SQLite to stored report)  \(String(format: "%.2f", f.wallSeconds)) s
              union / intersection                      \(f.unionSize) / \(f.intersectionSize)
              bytes sent per party (mean, max)          \(sent.reduce(0, +) / max(1, sent.count)), \(sent.max() ?? 0)
              bytes received by the aggregator          \(f.aggregatorBytesReceived)
              peak memory (whole process, all nodes)    \(f.peakMemoryBytes / (1 << 20)) MiB
              group cost (one core)                     \(String(format: "%.1f", f.costs.mult)) µs/mult, \(String(format: "%.1f", f.costs.hash)) µs/hash, \(String(format: "%.1f", f.costs.seal)) µs/seal, \(String(format: "%.1f", f.costs.open)) µs/open
              operation-count bound on \(f.cores) cores           \(String(format: "%.2f", f.boundSeconds)) s  (per identifier: 1 hash, \(f.parties + 1) mults, 1 seal, 1 open)
              ratio wall / bound                        \(String(format: "%.2f", f.wallSeconds / f.boundSeconds))×
            """)
        if let cut = dropMixLinkInBucket {
            print("  link cut in bucket \(cut): resumes          \(f.resumes) (the aggregator had \(f.bucketsDoneAtResume.map(String.init) ?? "?") buckets done; only the rest ran again)")
        }
        if let ok = f.totalCorrect {
            print("  total equals the plain total             \(ok ? "yes" : "NO")")
            if !ok { throw ExitCode(1) }
        }
    }
}
