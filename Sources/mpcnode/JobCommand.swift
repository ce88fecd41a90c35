import ArgumentParser
import Foundation
import MPCNode

struct JobCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "job",
        abstract: "Submit and follow joint computations (through this node's daemon).",
        subcommands: [SubmitCommand.self, Status.self, List.self, Result.self, Abort.self])

    static func client(_ options: ConfigOption) throws -> AdminClient {
        do { return AdminClient(socketPath: try NodeConfiguration.load(path: options.path).adminSocketPath) } catch {
            throw CLIFailure("\(error)")
        }
    }

    static func call(_ options: ConfigOption, _ request: AdminRequest) async throws -> AdminResponse {
        let response: AdminResponse
        do { response = try await client(options).send(request) } catch { throw CLIFailure("\(error)") }
        if let error = response.error { throw CLIFailure(error) }
        return response
    }

    /// Polls the job until it is final, printing its state when it changes.
    static func follow(_ options: ConfigOption, jobID: String) async throws -> JobView {
        var last = ""
        var bar = TerminalProgress()
        while true {
            let job = try await call(options, AdminRequest(command: .jobStatus, jobID: jobID)).job!
            // A state change is a line of its own; progress redraws the bar (a plain line now and then off a terminal).
            let states = "\(job.state.rawValue): " + job.parties.map { "\($0.nodeID) \($0.state ?? "?")" }.joined(separator: ", ")
            if states != last { bar.line(states); last = states }
            let moving = job.parties.compactMap { p in (p.state == "accepted" || p.state == "running") ? p.progress.flatMap { $0.total > 0 ? $0 : nil } : nil }
            if !job.state.isFinal, !moving.isEmpty {
                let fraction = moving.map { min(1, Double($0.done) / Double($0.total)) }.reduce(0, +) / Double(moving.count)
                let slowest = moving.min { Double($0.done) / Double($0.total) < Double($1.done) / Double($1.total) }!
                bar.update(done: Int(fraction * 1000), total: 1000, detail: "slowest party: " + slowest.brief)
            }
            if job.state.isFinal { bar.finish(); return job }
            try await Task.sleep(for: .milliseconds(250))
        }
    }

    static func render(_ job: JobView) -> String {
        var lines = [
            "job          \(job.id)",
            "protocol     \(job.protocolName)\(job.cardinalityOnly ? " (cardinality only)" : "")\(job.group.isEmpty ? "" : " over \(job.group)")",
            "state        \(job.state.rawValue)\(job.reason.map { " — \($0)" } ?? "")",
            "coordinator  \(job.coordinator)",
            "deliver to   \(job.deliverTo.joined(separator: ", "))",
            "spec hash    \(job.specHash)",
            "created      \(Format.date(job.createdAt))   updated \(Format.date(job.updatedAt))",
        ]
        if let progress = job.progress, progress.total > 0 {
            lines.append("progress     \(progress.summary)")
        }
        if job.role == .participant {
            lines.append("this node    input \(job.inputRows.map(String.init) ?? "-") rows, sent \(Format.bytes(job.bytesSent)), received \(Format.bytes(job.bytesReceived)), \(job.elapsedMs.map { "\($0) ms" } ?? "-")")
        }
        lines.append("")
        lines.append(TextTable.render(
            header: ["party", "input", "state", "progress", "rows", "sent", "received", "ms", "reason"],
            rows: job.parties.map { p in
                ["\(p.nodeID)", p.column.isEmpty ? p.dataset : "\(p.dataset).\(p.column)", p.state ?? "-",
                 p.progress.map { $0.total > 0 ? $0.brief : "-" } ?? "-",
                 p.inputRows.map(String.init) ?? "-",
                 Format.bytes(p.bytesSent), Format.bytes(p.bytesReceived), p.elapsedMs.map(String.init) ?? "-", p.reason ?? ""]
            }))
        return lines.joined(separator: "\n")
    }

    struct Abort: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop a job this coordinator's node runs: it fails with the reason, and every party still in it aborts.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "Job id.") var jobID: String
        @Option(help: "Why (recorded in every node's audit log).") var reason: String = ""

        func run() async throws {
            var request = AdminRequest(command: .abortJob, jobID: jobID)
            request.reason = reason
            let job = try await JobCommand.call(options, request).job!
            print("\(job.id): \(job.state.rawValue) — \(job.reason ?? "")")
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a job's state, its parties and progress.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "Job id.") var jobID: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let job = try await JobCommand.call(options, AdminRequest(command: .jobStatus, jobID: jobID)).job!
            if json { try printJSON(job) } else { print(JobCommand.render(job)) }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List recent jobs.")
        @OptionGroup var options: ConfigOption
        @Option(help: "How many.") var limit: Int = 50
        @Flag(help: "Print JSON (for scripts).") var json = false

        func run() async throws {
            let jobs = try await JobCommand.call(options, AdminRequest(command: .listJobs, limit: limit)).jobs ?? []
            if json { try printJSON(jobs); return }
            if jobs.isEmpty { print("no jobs"); return }
            print(TextTable.render(header: ["job", "protocol", "role", "state", "parties", "created", "reason"],
                                   rows: jobs.map { [$0.id, $0.protocolName + ($0.cardinalityOnly ? " (count)" : ""), $0.role.rawValue,
                                                     $0.state.rawValue, $0.parties.map(\.nodeID).joined(separator: ","),
                                                     Format.date($0.createdAt), $0.reason ?? ""] }))
        }
    }

    struct Result: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a job's result (on a recipient node), or write all of it to a file.",
            discussion: """
                With --output, every row is written, page by page (constant memory, any size), as CSV or JSON; \
                --with-columns joins columns of this node's own dataset of the job (as it is now) to each identifier.
                """)
        @OptionGroup var options: ConfigOption
        @Argument(help: "Job id.") var jobID: String
        @Option(help: "Show at most this many identifiers.") var limit: Int = 1000
        @Flag(help: "Print JSON.") var json = false
        @Option(help: "Write every row of the result to this file.") var output: String?
        @Option(help: "The file's format: csv or json (default: from the file's extension, else csv).") var format: String?
        @Option(help: "Columns of this node's dataset to join to each identifier, comma-separated.") var withColumns: String?
        @Option(help: .hidden) var pageRows: Int = JobRepository.maximumPageRows

        func run() async throws {
            if let output {
                let url = URL(fileURLWithPath: output)
                let chosen = format ?? (url.pathExtension.lowercased() == "json" ? "json" : "csv")
                guard let format = ResultExport.Format(rawValue: chosen.lowercased()) else {
                    throw CLIFailure("--format \(chosen): use csv or json")
                }
                let columns = (withColumns ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                var bar = TerminalProgress()
                let started = Date()
                let rows = try await ResultExport(options: options, jobID: jobID, output: url, format: format, columns: columns,
                                                  pageRows: max(1, pageRows)).run { done, total in
                    bar.update(done: done, total: total, detail: "\(done) of \(total) rows written")
                }
                bar.finish()
                print("wrote \(rows) rows to \(url.path) (\(format.rawValue), \(String(format: "%.1f", Date().timeIntervalSince(started))) s)")
                return
            }
            guard withColumns == nil, format == nil else { throw CLIFailure("--with-columns and --format go with --output <file>") }
            let result = try await JobCommand.call(options, AdminRequest(command: .jobResult, jobID: jobID, limit: limit)).result!
            if json { try printJSON(result); return }
            if result.kind == "cardinality" {
                print("intersection size: \(result.cardinality)")
            } else if result.kind == "scores" {
                print("scores: \(result.cardinality) rows (identifier, predicted probability)")
                for (id, v) in zip(result.identifiers ?? [], result.values ?? []) { print("  \(id)  \(String(format: "%.6f", v))") }
                if result.truncated { print("  … (\(result.cardinality - limit) more; use --limit)") }
            } else {
                let what = result.kind == "on-others-lists" ? "on other parties' lists" : "intersection"
                print("\(what): \(result.cardinality) identifiers")
                for id in result.identifiers ?? [] { print("  \(id)") }
                if result.truncated { print("  … (\(result.cardinality - limit) more; use --limit)") }
            }
        }
    }
}

func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    encoder.dateEncodingStrategy = .iso8601
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}
