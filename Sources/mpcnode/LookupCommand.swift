import ArgumentParser
import Foundation
import MPCNode

/// `mpcnode lookup`: real-time list lookups through this node's daemon (Protocols/list-lookup.md).
struct LookupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lookup",
        abstract: "Look keys up in the members' lists this node subscribes to, privately (through its daemon).",
        discussion: """
            The key never leaves this node in the clear: each holder evaluates an oblivious PRF on a blinded
            value. Examples:
              mpcnode lookup --config bank-b.yaml --key 447700900123
              mpcnode lookup --config bank-b.yaml --csv keys.csv > answers.csv
              mpcnode lookup status --config bank-b.yaml
            """,
        subcommands: [Query.self, Status.self, Sync.self, Rotate.self],
        defaultSubcommand: Query.self)

    struct Query: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "query", abstract: "Look one key or a batch up (the default).")
        @OptionGroup var options: ConfigOption
        @Option(help: "A key (repeatable), e.g. a phone number or an account.") var key: [String] = []
        @Option(help: "A CSV file of keys: its first column, or --column; answers are printed as CSV.") var csv: String?
        @Option(help: "The CSV column holding the keys.") var column: String?
        @Option(help: "Ask only this list, as holder:list (repeatable; default: every subscribed list).") var list: [String] = []
        @Flag(help: "Print the answers as JSON.") var json = false

        func run() async throws {
            var keys = key
            if let csv { keys += try Self.keys(csv: csv, column: column) }
            guard !keys.isEmpty else { throw CLIFailure("give a key with --key, or a CSV of keys with --csv") }
            // Batches of at most 1,000 keys a request (each holder's per-second limit applies to each batch).
            var results: [LookupKeyResult] = []
            var elapsed = 0
            var start = 0
            while start < keys.count {
                let chunk = Array(keys[start..<min(start + 1000, keys.count)])
                let r = try await JobCommand.call(options, AdminRequest(command: .lookup, keys: chunk, lists: list.isEmpty ? nil : list))
                results += r.lookups ?? []
                elapsed += r.lookupElapsedMicroseconds ?? 0
                start += chunk.count
            }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(results), as: UTF8.self))
            } else if csv != nil {
                print(Self.csvLines(results).joined(separator: "\n"))
            } else {
                for r in results { print(Self.describe(r)) }
                FileHandle.standardError.write(Data("answered in \(String(format: "%.1f", Double(elapsed) / 1000)) ms\n".utf8))
            }
        }

        static func keys(csv path: String, column: String?) throws -> [String] {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw CLIFailure("cannot read \(path)") }
            var lines = text.split(whereSeparator: \.isNewline).map(String.init)
            guard !lines.isEmpty else { throw CLIFailure("\(path) is empty") }
            var index = 0
            let header = lines[0].split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            if let column {
                guard let i = header.firstIndex(of: column) else { throw CLIFailure("\(path) has no column '\(column)' (header: \(header.joined(separator: ", ")))") }
                index = i
                lines.removeFirst()
            } else if header.count > 1 || header.first.map({ $0.filter(\.isNumber).isEmpty }) == true {
                lines.removeFirst()  // a header line
            }
            return lines.map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
                .filter { $0.count > index }.map { $0[index].trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }

        static func describe(_ r: LookupKeyResult) -> String {
            var lines = ["\(r.key): \(r.listed ? "LISTED" : "not listed")"]
            for h in r.hits {
                let label = h.label.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
                lines.append("  \(h.holder):\(h.list) v\(h.version)  \(label)")
            }
            if let c = r.counted {
                lines.append("  listed by \(c.listedBy) other member\(c.listedBy == 1 ? "" : "s")\(c.highestRisk.map { ", highest risk \($0)" } ?? "")")
            }
            let clean = r.checked.filter { c in !r.hits.contains { $0.holder == c.holder && $0.list == c.list } }
            if !clean.isEmpty { lines.append("  checked: " + clean.map { "\($0.holder):\($0.list) v\($0.version)" }.joined(separator: ", ")) }
            for n in r.notAsked { lines.append("  NOT ASKED \(n.holder):\(n.list): \(n.reason)") }
            return lines.joined(separator: "\n")
        }

        static func csvLines(_ results: [LookupKeyResult]) -> [String] {
            func field(_ s: String) -> String { s.contains(where: { ",\"\n".contains($0) }) ? "\"\(s.replacingOccurrences(of: "\"", with: "\"\""))\"" : s }
            var out = ["key,listed,holder,list,version,label,status"]
            for r in results {
                var wrote = false
                for h in r.hits {
                    let label = h.label.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ";")
                    out.append([r.key, "true", h.holder, h.list, "\(h.version)", label, "listed"].map(field).joined(separator: ","))
                    wrote = true
                }
                if let c = r.counted {
                    out.append([r.key, "true", "", "", "", "listed_by=\(c.listedBy);highest_risk=\(c.highestRisk ?? "")", "counted"].map(field).joined(separator: ","))
                    wrote = true
                }
                for n in r.notAsked {
                    out.append([r.key, "", n.holder, n.list, "", "", "not asked: \(n.reason)"].map(field).joined(separator: ","))
                    wrote = true
                }
                if !wrote { out.append([r.key, "false", "", "", "", "", "not listed"].map(field).joined(separator: ",")) }
            }
            return out
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Each subscribed list (holder, version, entries, last update, quota left) and each list this node offers.")
        @OptionGroup var options: ConfigOption
        @Flag(help: "Print as JSON.") var json = false

        func run() async throws {
            let r = try await JobCommand.call(options, AdminRequest(command: .lookupStatus))
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                encoder.dateEncodingStrategy = .iso8601
                struct Both: Encodable { var subscribed: [LookupListStatus]; var offered: [OfferedListStatus] }
                print(String(decoding: try encoder.encode(Both(subscribed: r.subscribedLists ?? [], offered: r.offeredLists ?? [])), as: UTF8.self))
                return
            }
            Self.printStatus(r)
        }

        static func printStatus(_ r: AdminResponse) {
            let subscribed = r.subscribedLists ?? []
            if subscribed.isEmpty {
                print("subscribed lists: none (policy.lookups.subscribe)")
            } else {
                print("subscribed lists")
                print(TextTable.render(header: ["holder", "list", "version", "entries", "key id", "updated", "per second", "left today", "last sync error"],
                                       rows: subscribed.map { s in
                                           [s.holder, s.list, s.version.map { "\($0)" } ?? "-", s.entries.map { "\($0)" } ?? "-", s.keyID ?? "-",
                                            s.updatedAt.map(Format.date) ?? "never", s.maximumPerSecond.map { "\($0)" } ?? "-",
                                            s.quotaLeftToday.map { "\($0)" } ?? "-", s.lastSyncError.map { String($0.prefix(80)) } ?? ""]
                                       }))
            }
            let offered = r.offeredLists ?? []
            if !offered.isEmpty {
                print("\nlists this node offers")
                print(TextTable.render(header: ["list", "version", "entries", "key id", "queriers", "per second", "per day", "used today"],
                                       rows: offered.map { o in
                                           [o.list, o.version.map { "\($0)" } ?? "not built", o.entries.map { "\($0)" } ?? "-", o.keyID ?? "-",
                                            o.queriers.joined(separator: ","), "\(o.maximumPerSecond)", "\(o.maximumPerDay)",
                                            o.usedToday.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")]
                                       }))
            }
        }
    }

    struct Sync: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Fetch every subscribed list's updates now.")
        @OptionGroup var options: ConfigOption

        func run() async throws {
            let r = try await JobCommand.call(options, AdminRequest(command: .lookupSync))
            for (list, error) in (r.syncErrors ?? [:]).sorted(by: { $0.key < $1.key }) { print("\(list): \(error)") }
            Status.printStatus(r)
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Draw a new key for a list this node offers; queriers fetch its new table.")
        @OptionGroup var options: ConfigOption
        @Option(help: "The list (a dataset of this node with lookup_lists).") var list: String

        func run() async throws {
            let r = try await JobCommand.call(options, AdminRequest(command: .lookupRotate, lists: [list]))
            Status.printStatus(r)
        }
    }
}
