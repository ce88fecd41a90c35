import ArgumentParser
import Foundation
import MPCNode

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Import and inspect this node's datasets (works whether or not the daemon runs).",
        subcommands: [Import.self, Append.self, Remove.self, List.self, Describe.self])

    static func catalog(_ options: ConfigOption) throws -> DatasetCatalog {
        do {
            let configuration = try NodeConfiguration.load(path: options.path)
            return DatasetCatalog(store: try NodeStore(path: configuration.databasePath))
        } catch {
            throw CLIFailure("\(error)")
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Load a CSV file (with a header line) into a dataset, in one transaction.",
            discussion: "A malformed file is rejected with its line number and reason, and nothing of it is stored.")
        @OptionGroup var options: ConfigOption
        @Option(help: "Dataset name (a-z, 0-9, _).") var dataset: String
        @Option(help: "The CSV file.") var csv: String
        @Option(help: "The column with the identifier used to match records across nodes.") var idColumn: String
        @Option(help: "Columns to keep, comma-separated (default: all).") var columns: String?
        @Option(help: "Identifier normalisation, comma-separated: trim, case-fold, digits-only, or none.") var normalize: String = "trim"
        @Flag(help: "Replace an existing dataset of that name.") var replace = false
        @Flag(help: "Print JSON (for scripts).") var json = false

        func run() throws {
            var normalization = IdentifierNormalization(trim: false)
            for step in normalize.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
                switch step {
                case "trim": normalization.trim = true
                case "case-fold": normalization.caseFold = true
                case "digits-only": normalization.digitsOnly = true
                case "none": break
                default: throw CLIFailure("unknown normalisation '\(step)': use trim, case-fold, digits-only or none")
                }
            }
            let request = DatasetImportRequest(
                dataset: dataset, csvPath: csv, idColumn: idColumn,
                columns: columns?.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) },
                normalization: normalization, replace: replace)
            let catalog = try DataCommand.catalog(options)
            let started = Date()
            do {
                var bar = TerminalProgress()
                let size = ((try? FileManager.default.attributesOfItem(atPath: csv))?[.size] as? NSNumber)?.intValue ?? 0
                let info = try catalog.importCSV(request) { progress in
                    if case .rows(_, let bytes) = progress {
                        bar.update(done: bytes, total: size, detail: progress.description)
                    } else {
                        bar.line("\(progress.description)… (\(String(format: "%.1f", Date().timeIntervalSince(started))) s)")
                    }
                }
                bar.finish()
                if json { try printJSON(info); return }
                let seconds = Date().timeIntervalSince(started)
                print("imported \(info.rowCount) rows (\(info.distinctIdentifiers) distinct \(info.idColumn)) into dataset '\(info.name)' in \(String(format: "%.2f", seconds)) s")
                print("  columns: \(info.columns.joined(separator: ", "))  normalisation: \(info.normalization)  sha256: \(info.sourceSHA256.prefix(16))…")
            } catch {
                throw CLIFailure("import failed: \(error)")
            }
        }
    }

    struct Append: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Append the rows of a CSV to a dataset (its header must hold the dataset's columns).",
            discussion: "One transaction: on any error nothing is appended. Lookup lists built on the dataset become a new version.")
        @OptionGroup var options: ConfigOption
        @Option(help: "Dataset name.") var dataset: String
        @Option(help: "The CSV file.") var csv: String
        @Flag(help: "Print JSON (for scripts).") var json = false

        func run() throws {
            do {
                let info = try DataCommand.catalog(options).append(dataset: dataset, csvPath: csv)
                if json { try printJSON(info); return }
                print("dataset '\(info.name)' now holds \(info.rowCount) rows (\(info.distinctIdentifiers) distinct \(info.idColumn))")
            } catch { throw CLIFailure("append failed: \(error)") }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove every row of a dataset whose identifier is given (normalised as at import).",
            discussion: "Identifiers come from --id (repeatable) or one per line of --file. One transaction.")
        @OptionGroup var options: ConfigOption
        @Option(help: "Dataset name.") var dataset: String
        @Option(name: .customLong("id"), help: "An identifier to remove (repeatable).") var ids: [String] = []
        @Option(help: "A file with one identifier per line.") var file: String?
        @Flag(help: "Print JSON (for scripts).") var json = false

        func run() throws {
            var identifiers = ids
            if let file {
                guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw CLIFailure("cannot read \(file)") }
                identifiers += text.split(whereSeparator: \.isNewline).map(String.init)
            }
            guard !identifiers.isEmpty else { throw CLIFailure("name identifiers with --id or --file") }
            do {
                let (info, removed) = try DataCommand.catalog(options).remove(dataset: dataset, identifiers: identifiers)
                struct Outcome: Encodable { var removedRows: Int; var dataset: DatasetInfo }
                if json { try printJSON(Outcome(removedRows: removed, dataset: info)); return }
                print("removed \(removed) rows; dataset '\(info.name)' now holds \(info.rowCount) rows")
            } catch { throw CLIFailure("remove failed: \(error)") }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the datasets.")
        @OptionGroup var options: ConfigOption
        @Flag(help: "Print JSON (for scripts).") var json = false

        func run() throws {
            let list = try DataCommand.catalog(options).list()
            if json { try printJSON(list); return }
            if list.isEmpty { print("no datasets; import one with `mpcnode data import`"); return }
            print(TextTable.render(header: ["dataset", "rows", "distinct ids", "id column", "columns", "imported"],
                                   rows: list.map { [$0.name, "\($0.rowCount)", "\($0.distinctIdentifiers)", $0.idColumn,
                                                     $0.columns.joined(separator: ","), Format.date($0.importedAt)] }))
        }
    }

    struct Describe: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Describe one dataset.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "Dataset name.") var name: String
        @Flag(help: "Print JSON (for scripts).") var json = false

        func run() throws {
            let info: DatasetInfo
            do { info = try DataCommand.catalog(options).describe(name) } catch { throw CLIFailure("\(error)") }
            if json { try printJSON(info); return }
            print("""
                dataset        \(info.name)
                rows           \(info.rowCount)
                distinct ids   \(info.distinctIdentifiers)
                id column      \(info.idColumn) (normalisation: \(info.normalization))
                columns        \(info.columns.joined(separator: ", "))
                source         \(info.sourcePath)
                source sha256  \(info.sourceSHA256)
                imported       \(Format.date(info.importedAt))
                """)
        }
    }
}

enum Format {
    static func date(_ d: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: d)
    }

    static func bytes(_ n: Int?) -> String {
        guard let n else { return "-" }
        if n >= 1 << 30 { return String(format: "%.2f GiB", Double(n) / Double(1 << 30)) }
        if n >= 1 << 20 { return String(format: "%.1f MiB", Double(n) / Double(1 << 20)) }
        if n >= 1 << 10 { return String(format: "%.1f KiB", Double(n) / Double(1 << 10)) }
        return "\(n) B"
    }
}

/// Plain text tables for the terminal.
enum TextTable {
    static func render(header: [String], rows: [[String]]) -> String {
        var widths = header.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces)
        }
        return ([line(header), line(widths.map { String(repeating: "-", count: $0) })] + rows.map(line)).joined(separator: "\n")
    }
}
