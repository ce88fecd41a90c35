import ArgumentParser
import Foundation
import MPCCrypto
import MPCNode

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure protocols end to end on this machine (figures, not tests).",
        subcommands: [PSI.self, SecureSum.self, Group.self])

    struct PSI: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Two-party PSI between two nodes over loopback TLS, from SQLite to the stored result.")
        @Option(help: "Identifiers per party (half of them shared).") var size: Int = 1 << 16
        @Option(help: "x25519 or ristretto255.") var group: String = "x25519"
        @Option(help: "Work folder (default: a temporary one, removed afterwards).") var dir: String?

        func run() async throws {
            guard let g = BlindingGroup(rawValue: group) else { throw CLIFailure("unknown group \(group)") }
            let folder = dir.map { URL(fileURLWithPath: $0) }
                ?? FileManager.default.temporaryDirectory.appendingPathComponent("mpcnode-bench-\(UUID().uuidString)")
            defer { if dir == nil { try? FileManager.default.removeItem(at: folder) } }
            let f = try await PSIBenchmark(size: size, group: g, directory: folder).run { print($0) }
            print("""

                PSI \(f.size) × \(f.size) over \(f.group.rawValue), two nodes + coordinator, loopback TLS 1.3
                  wall time (job, SQLite to stored result)  \(String(format: "%.2f", f.wallSeconds)) s
                  items per second (both sets)              \(Int(Double(2 * f.size) / f.wallSeconds))
                  intersection                              \(f.intersection)
                  bytes sent per item                       \(String(format: "%.1f", f.bytesSentPerItem))
                  peak memory (whole process, all nodes)    \(f.peakMemoryBytes / (1 << 20)) MiB
                  import (both banks, not in wall time)     \(String(format: "%.2f", f.importSeconds)) s
                  group cost (one core)                     \(String(format: "%.1f", f.scalarMultMicroseconds)) µs/mult, \(String(format: "%.1f", f.hashToGroupMicroseconds)) µs/hash
                  operation-count bound on \(f.cores) cores           \(String(format: "%.2f", f.boundSeconds)) s  (2n hashes + 4n mults)
                  ratio wall / bound                        \(String(format: "%.2f", f.wallSeconds / f.boundSeconds))×
                """)
        }
    }

    struct SecureSum: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "secure-sum",
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

    struct Group: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cost of the group operations, per group, on one core.")
        func run() throws {
            for g in BlindingGroup.allCases {
                let c = try PSIBenchmark.groupOperationCosts(g, samples: 5000)
                print("\(g.rawValue.padding(toLength: 13, withPad: " ", startingAt: 0)) scalar mult \(String(format: "%6.1f", c.mult)) µs   hash to group \(String(format: "%6.1f", c.hash)) µs")
            }
        }
    }
}
