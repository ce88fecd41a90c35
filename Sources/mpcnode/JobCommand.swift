import ArgumentParser
import Foundation
import MPCNode

struct JobCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "job",
        abstract: "Submit and follow joint computations (through this node's daemon).",
        subcommands: [Submit.self, Status.self, List.self, Result.self])

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

    struct Submit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Propose a job to its parties (from a coordinator node).",
            discussion: """
                Examples:
                  mpcnode job submit psi --party bank-a:customers.phone --party bank-b:blacklist.account --deliver-to bank-a
                  mpcnode job submit secure-sum --party b1:loans --party b2:loans --measure sum:amount --deliver-to regulator
                  mpcnode job submit mpsi --party b1:c.id --party b2:c.id --party b3:c.id --aggregator regulator --deliver-to b1
                  mpcnode job submit watchlist --party b1:risk.account --party b2:risk.account --party b3:risk.account \\
                      --aggregator operator --at-least 2 --deliver-to b1 --deliver-to b2 --deliver-to b3
                  mpcnode job submit union-sum --party b1:customers.id --party b2:customers.id --value balance \\
                      --aggregator regulator --reporting-threshold 1000000
                  mpcnode job submit intersection-stats --party b1:c.id --party b2:c.id --value balance --bins 0,1000,10000 --aggregator regulator
                  mpcnode job submit train-lr --party b1:loans --party b2:loans --aggregator operator --features x0..x29 --label y \\
                      --rounds 30 --eval-dataset loans_test
                  mpcnode job submit train-lr --mode vertical --party bank:clients.id --party telco:subs.id --aggregator operator \\
                      --label y --party-features bank=x0..x9 --party-features telco=x0..x19 --rounds 10
                  mpcnode job submit train-lr --mode vertical --party bank:clients.id --party telco:subs.id --party bureau:files.id \\
                      --aggregator operator --label y --party-features bank=x0..x9 --party-features telco=x0..x9 \\
                      --party-features bureau=x10..x19
                  mpcnode job submit predict --party bank:new_clients.id --party telco:subs.id --model <training job>
                """)
        @OptionGroup var options: ConfigOption
        @Argument(help: "The protocol: psi, secure-sum, mpsi, watchlist, union-sum, intersection-stats, train-lr or predict.") var protocolName: String
        @Option(name: .customLong("party"), help: "A party and its input, as node:dataset.column (repeat).") var parties: [String] = []
        @Option(name: .customLong("deliver-to"), help: "A node that receives the result (repeat).") var deliverTo: [String] = []
        @Flag(help: "Deliver only the size of the intersection.") var cardinalityOnly = false
        @Option(help: "Group for the blinding: x25519 or ristretto255.") var group: String = "x25519"
        @Option(help: "Secure sum: the column whose values are the report's cells.") var groupBy: String?
        @Option(help: "Secure sum: the public list of cell values, comma-separated.") var groups: String?
        @Option(name: .customLong("measure"), help: "Secure sum: sum:column or count:column (repeat).") var measures: [String] = []
        @Option(help: "Secure sum: fixed-point decimals of sums.") var decimals: Int = 2
        @Option(help: "Secure sum: suppress cells with fewer records.") var minCellRecords: Int = 10
        @Option(help: "Secure sum: suppress cells with fewer contributing parties.") var minCellParties: Int = 2
        @Option(help: "Secure sum: survivors needed in every round (default ⌊2n/3⌋+1).") var threshold: Int?
        @Option(help: "Set operations: the node (not a party) that counts pseudonyms and receives the report.") var aggregator: String?
        @Option(help: "Set operations: the party that shuffles the sealed pseudonyms (default: the first party).") var mixer: String?
        @Option(help: "watchlist: count identifiers held by at least this many parties.") var atLeast: Int = 2
        @Option(help: "mpsi, intersection-stats: release nothing over an intersection smaller than this.") var minIntersection: Int = 10
        @Option(help: "union-sum, intersection-stats: the decimal column to sum per identifier.") var value: String?
        @Option(help: "union-sum: list per-identifier totals at or above this.") var reportingThreshold: String?
        @Option(help: "intersection-stats: histogram bin edges, comma-separated, ascending.") var bins: String?
        @Option(help: "train-lr: horizontal (same features, different customers) or vertical (different features, same customers; the first --party is the guest, holding the label, every further one a host).") var mode: String = "horizontal"
        @Option(name: .customLong("party-features"), help: "train-lr vertical: node=columns, a party's own features (repeat; the first --party is the guest).") var partyFeatures: [String] = []
        @Option(help: "train-lr vertical: the arbiter's Paillier modulus bits.") var keyBits: Int = 2048
        @Option(help: "predict: the vertical training job whose model scores the parties' common rows.") var model: String?
        @Option(help: "train-lr: feature columns, comma-separated (x0,x1,… or a range x0..x29).") var features: String?
        @Option(help: "train-lr: the 0/1 label column.") var label: String?
        @Option(help: "train-lr: rounds.") var rounds: Int = 20
        @Option(help: "train-lr: local epochs per round.") var localEpochs: Int = 1
        @Option(help: "train-lr: learning rate.") var learningRate: Double = 0.1
        @Option(help: "train-lr: L2 regularisation.") var l2: Double = 0.001
        @Option(help: "train-lr: mini-batch size.") var batchSize: Int = 32
        @Option(help: "train-lr: stop when the loss changes by less than this.") var tolerance: Double = 1e-5
        @Option(help: "train-lr: each party's evaluation dataset (same columns).") var evalDataset: String?
        @Option(help: "train-lr: share of rows held out for evaluation when there is no --eval-dataset.") var holdout: Double = 0.2
        @Flag(help: "Wait until the job ends, showing progress, and exit non-zero if it did not succeed.") var wait = false

        /// "a,b,c" or "x0..x29" (a numbered range), or a mix.
        static func columns(_ text: String) throws -> [String] {
            try text.split(separator: ",").flatMap { part -> [String] in
                let p = part.trimmingCharacters(in: .whitespaces)
                guard let r = p.range(of: "..") else { return [p] }
                let from = String(p[..<r.lowerBound]), to = String(p[r.upperBound...])
                let prefix = String(from.prefix { !$0.isNumber })
                guard let a = Int(from.dropFirst(prefix.count)), let b = Int(to.dropFirst(prefix.count)), to.hasPrefix(prefix), a <= b else {
                    throw CLIFailure("'\(p)' is not a column range like x0..x29")
                }
                return (a...b).map { "\(prefix)\($0)" }
            }
        }

        func run() async throws {
            let parsed = try parties.map { text -> JobSubmission.Party in
                guard let p = JobSubmission.Party(text) else { throw CLIFailure("--party '\(text)' is not node:dataset.column (or node:dataset for a secure sum)") }
                return p
            }
            var aggregate: JobSubmission.Aggregate?
            if protocolName == "secure-sum" {
                aggregate = .init(groupBy: groupBy, groups: groups?.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } ?? [],
                                  measures: measures, decimals: decimals, minCellRecords: minCellRecords, minCellParties: minCellParties)
            }
            var training: JobSubmission.TrainingOptions?
            if protocolName == "predict" {
                guard let model else { throw CLIFailure("predict needs --model <training job id>") }
                training = .predict(model: model)
            }
            if protocolName == "train-lr" {
                guard let aggregator, let label, features != nil || mode == "vertical" else {
                    throw CLIFailure("train-lr needs --aggregator, --label and --features (horizontal) or --party-features (vertical)")
                }
                var perParty: [String: [String]] = [:]
                for item in partyFeatures {
                    guard let eq = item.firstIndex(of: "=") else { throw CLIFailure("--party-features '\(item)' is not node=columns") }
                    perParty[String(item[..<eq])] = try Self.columns(String(item[item.index(after: eq)...]))
                }
                training = .init(mode: mode, aggregator: aggregator, features: try features.map(Self.columns) ?? [], label: label,
                                 parameters: .init(rounds: rounds, localEpochs: localEpochs, learningRate: learningRate, l2: l2,
                                                   batchSize: batchSize, tolerance: tolerance),
                                 evalDataset: evalDataset, holdout: evalDataset == nil ? holdout : 0, partyFeatures: perParty, keyBits: keyBits)
            }
            var sets: JobSubmission.SetOptions?
            if let aggregator, protocolName != "train-lr" {
                sets = .init(aggregator: aggregator, mixer: mixer, atLeast: atLeast, minIntersection: minIntersection, valueColumn: value,
                             decimals: decimals, reportingThreshold: reportingThreshold,
                             bins: bins?.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } ?? [], minCellParties: minCellParties)
            }
            let submission = JobSubmission(protocolName: protocolName, parties: parsed, deliverTo: deliverTo,
                                           cardinalityOnly: cardinalityOnly, group: group, aggregate: aggregate, threshold: threshold, sets: sets,
                                           training: training)
            let response = try await JobCommand.call(options, AdminRequest(command: .submitJob, submission: submission))
            let id = response.jobID ?? "?"
            print("submitted \(id)")
            guard wait else { return }
            let final = try await JobCommand.follow(options, jobID: id)
            print(JobCommand.render(final))
            if final.state != .succeeded { throw ExitCode(2) }
        }
    }

    /// Polls the job until it is final, printing its state when it changes.
    static func follow(_ options: ConfigOption, jobID: String) async throws -> JobView {
        var last = ""
        while true {
            let job = try await call(options, AdminRequest(command: .jobStatus, jobID: jobID)).job!
            let line = "\(job.state.rawValue): " + job.parties.map { p in
                var text = "\(p.nodeID) \(p.state ?? "?")"
                if p.state == "accepted" || p.state == "running", let progress = p.progress, progress.total > 0 {
                    text += " " + progress.brief
                }
                return text
            }.joined(separator: ", ")
            if line != last { FileHandle.standardError.write(Data("  \(line)\n".utf8)); last = line }
            if job.state.isFinal { return job }
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

        func run() async throws {
            let jobs = try await JobCommand.call(options, AdminRequest(command: .listJobs, limit: limit)).jobs ?? []
            if jobs.isEmpty { print("no jobs"); return }
            print(TextTable.render(header: ["job", "protocol", "role", "state", "parties", "created", "reason"],
                                   rows: jobs.map { [$0.id, $0.protocolName + ($0.cardinalityOnly ? " (count)" : ""), $0.role.rawValue,
                                                     $0.state.rawValue, $0.parties.map(\.nodeID).joined(separator: ","),
                                                     Format.date($0.createdAt), $0.reason ?? ""] }))
        }
    }

    struct Result: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a job's result (on a recipient node).")
        @OptionGroup var options: ConfigOption
        @Argument(help: "Job id.") var jobID: String
        @Option(help: "Show at most this many identifiers.") var limit: Int = 1000
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
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
