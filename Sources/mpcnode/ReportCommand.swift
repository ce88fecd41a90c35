import ArgumentParser
import Foundation
import MPCNode

struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Reports of secure sums and set operations delivered to this node (the regulator's view).",
        subcommands: [List.self, Show.self, Export.self])

    static func fetch(_ options: ConfigOption, _ id: String) async throws -> ReportView {
        try await JobCommand.call(options, AdminRequest(command: .showReport, jobID: id)).report!
    }

    /// The report and its job's receipt as this node holds it.
    static func fetchWithReceipt(_ options: ConfigOption, _ id: String) async throws -> (ReportView, JobReceipts.Check?) {
        let response = try await JobCommand.call(options, AdminRequest(command: .showReport, jobID: id))
        return (response.report!, response.receipt)
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the reports.")
        @OptionGroup var options: ConfigOption
        @Flag(help: "Print JSON (for scripts).") var json = false
        func run() async throws {
            let reports = try await JobCommand.call(options, AdminRequest(command: .listReports)).reports ?? []
            if json { try printJSON(reports); return }
            if reports.isEmpty { print("no reports"); return }
            print(TextTable.render(header: ["report", "job", "cells", "suppressed", "included", "dropped", "created"],
                                   rows: reports.map { [$0.id, $0.jobID, "\($0.cells.count)", "\($0.cells.filter(\.suppressed).count)",
                                                        "\($0.included.count)", $0.dropped.joined(separator: ","), Format.date($0.createdAt)] }))
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a report as a table, with its provenance.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "Report or job id.") var id: String
        @Flag(help: "Print JSON (for scripts).") var json = false
        func run() async throws {
            let (r, receipt) = try await ReportCommand.fetchWithReceipt(options, id)
            if json { try printJSON(r); return }
            let receiptLine = receipt.map { c in
                "receipt      \(c.sha256.prefix(16))… signed by \(c.signedBy.joined(separator: ", "))"
                    + (c.unsigned.isEmpty ? "" : "; NOT by \(c.unsigned.joined(separator: ", "))") + (c.invalid.map { "; INVALID: \($0)" } ?? "")
                    + " (mpcnode audit verify --job \(r.jobID) checks every party's log holds it)"
            } ?? "receipt      none yet on this node"
            let proofLine = (receipt?.inclusions ?? []).isEmpty ? "" : "\nin the logs  " + (receipt?.inclusions ?? []).map { "\($0.node) \($0.proven ? "proven" : "NOT proven")" }.joined(separator: ", ")
            print("""
                report       \(r.id)   (\(r.kindName) job \(r.jobID), coordinator \(r.coordinator))
                spec hash    \(r.specHash)
                computed     \(Format.date(r.startedAt)) → \(Format.date(r.createdAt))
                included     \(r.included.count): \(r.included.joined(separator: ", "))
                dropped      \(r.dropped.isEmpty ? "none" : r.dropped.joined(separator: ", "))
                protection   \(r.protection)
                audit        \(r.participantAuditHashes.isEmpty ? "-" : r.participantAuditHashes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value.prefix(16))…" }.joined(separator: ", "))
                \(receiptLine)\(proofLine)
                \((r.notes ?? []).map { "note         \($0)" }.joined(separator: "\n"))

                """)
            let header = [r.groupBy ?? "cell", "records", "parties"] + r.measures
            print(TextTable.render(header: header, rows: r.cells.map { c in
                c.suppressed ? [c.group, "suppressed", c.suppressionReason ?? ""] + r.measures.map { _ in "" }
                    : [c.group, c.records.map(String.init) ?? "", c.parties.map(String.init) ?? ""] + r.measures.map { c.values[$0] ?? "" }
            }))
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write a report as CSV or JSON to standard output.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "Report or job id.") var id: String
        @Option(help: "csv or json.") var format: String = "csv"
        func run() async throws {
            let r = try await ReportCommand.fetch(options, id)
            switch format {
            case "json": try printJSON(r)
            case "csv":
                func field(_ s: String) -> String { s.contains(where: { ",\"\n".contains($0) }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s }
                print(([r.groupBy ?? "cell", "records", "parties", "suppressed"] + r.measures).map(field).joined(separator: ","))
                for c in r.cells {
                    let values = [c.group, c.records.map(String.init) ?? "", c.parties.map(String.init) ?? "", c.suppressed ? "yes" : "no"]
                        + r.measures.map { c.values[$0] ?? "" }
                    print(values.map(field).joined(separator: ","))
                }
            default: throw CLIFailure("unknown format '\(format)': use csv or json")
            }
        }
    }
}
