import ArgumentParser
import Foundation
import MPCNode

/// `mpcnode job submit <kind> …`: one subcommand per job kind, each with only its own options.
struct SubmitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit",
        abstract: "Propose a job to its parties (from a coordinator node).",
        discussion: "Each kind has its own options: `mpcnode job submit <kind> --help`.",
        subcommands: [SubmitPSI.self, SubmitSecureSum.self, SubmitMPSI.self, SubmitWatchlist.self, SubmitUnionSum.self,
                      SubmitIntersectionStats.self, SubmitTrainLR.self, SubmitPredict.self])
}

/// What every kind's submission takes: the coordinator's configuration, the parties, and whether to wait.
struct SubmitCommon: ParsableArguments {
    @OptionGroup var options: ConfigOption
    @Option(name: .customLong("party"), help: "A party and its input, as node:dataset.column (repeat).") var parties: [String] = []
    @Flag(help: "Wait until the job ends, showing progress, and exit non-zero if it did not succeed.") var wait = false
    @Flag(help: "Print JSON (for scripts): the job id, and with --wait the job as it ended.") var json = false

    func parsedParties() throws -> [JobSubmission.Party] {
        try parties.map { text in
            guard let p = JobSubmission.Party(text) else { throw CLIFailure("--party '\(text)' is not node:dataset.column (or node:dataset for a secure sum)") }
            return p
        }
    }

    /// Sends the submission to this node's daemon, prints the job id, and follows it with `--wait`.
    func submit(_ submission: JobSubmission) async throws {
        let response = try await JobCommand.call(options, AdminRequest(command: .submitJob, submission: submission))
        let id = response.jobID ?? "?"
        if !json { print("submitted \(id)") }
        guard wait else {
            if json { try printJSON(["job_id": id]) }
            return
        }
        let final = try await JobCommand.follow(options, jobID: id)
        if json { try printJSON(final) } else { print(JobCommand.render(final)) }
        if final.state != .succeeded { throw ExitCode(2) }
    }

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

    static func list(_ text: String?) -> [String] {
        text?.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } ?? []
    }
}

struct SubmitPSI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: JobKindName.psi.rawValue, abstract: "Two-party private set intersection.",
        discussion: "Example: mpcnode job submit psi --party bank-a:customers.phone --party bank-b:blacklist.phone --deliver-to bank-a")
    @OptionGroup var common: SubmitCommon
    @Option(name: .customLong("deliver-to"), help: "A party that receives the result (repeat).") var deliverTo: [String] = []
    @Flag(help: "Deliver only the size of the intersection.") var cardinalityOnly = false
    @Option(help: "Group for the blinding: ristretto255 (RFC 9496) or x25519 (faster; RFC 9380 hash_to_curve; Docs/decisions/0007).") var group: String = "ristretto255"
    @Option(help: "Buckets to split the sets into (default: one per 2^20 identifiers of the larger set; Protocols/psi-buckets.md).") var buckets: Int?
    @Option(name: .customLong("protocol"), help: "The PSI run per bucket: ecdh (commutative blinding, Protocols/psi.md) or kkrt (OPRF by OT extension, semi-honest, much faster; the intersection only; Protocols/psi-oprf.md).") var psiProtocol: String = "ecdh"
    @Option(help: "Worker processes each bank hands its buckets to (each bank needs workers: in its configuration; Docs/decisions/0009-sharded-psi-workers.md).") var workers: Int?

    func run() async throws {
        var submission = JobSubmission(protocolName: JobKindName.psi.rawValue, parties: try common.parsedParties(), deliverTo: deliverTo,
                                       cardinalityOnly: cardinalityOnly, group: group)
        submission.buckets = buckets
        submission.psiProtocol = psiProtocol
        submission.workers = workers
        try await common.submit(submission)
    }
}

struct SubmitSecureSum: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: JobKindName.secureSum.rawValue, abstract: "Totals of each party's local aggregate, delivered to one node (a regulator).",
        discussion: "Example: mpcnode job submit secure-sum --party b1:loans --party b2:loans --measure sum:amount --group-by risk --groups low,high --deliver-to regulator")
    @OptionGroup var common: SubmitCommon
    @Option(name: .customLong("deliver-to"), help: "The node (not a party) that runs the sum and receives the report.") var deliverTo: [String] = []
    @Option(help: "The column whose values are the report's cells.") var groupBy: String?
    @Option(help: "The public list of cell values, comma-separated.") var groups: String?
    @Option(name: .customLong("measure"), help: "sum:column or count:column (repeat).") var measures: [String] = []
    @Option(help: "Fixed-point decimals of sums.") var decimals: Int = 2
    @Option(help: "Suppress cells with fewer records.") var minCellRecords: Int = 10
    @Option(help: "Suppress cells with fewer contributing parties.") var minCellParties: Int = 2
    @Option(help: "Survivors needed in every round (default ⌊2n/3⌋+1).") var threshold: Int?

    func run() async throws {
        let aggregate = JobSubmission.Aggregate(groupBy: groupBy, groups: SubmitCommon.list(groups), measures: measures, decimals: decimals,
                                                minCellRecords: minCellRecords, minCellParties: minCellParties)
        try await common.submit(JobSubmission(protocolName: JobKindName.secureSum.rawValue, parties: common.parsedParties(), deliverTo: deliverTo,
                                              cardinalityOnly: false, group: "", aggregate: aggregate, threshold: threshold))
    }
}

/// The roles every set operation has: the aggregator, the mixer, the blinding group.
struct SetOperationRoles: ParsableArguments {
    @Option(help: "The node (not a party) that counts pseudonyms and receives the report.") var aggregator: String
    @Option(help: "The node that shuffles the sealed pseudonyms: a party, or a node that holds no data (default: the first party).") var mixer: String?
    @Option(help: "Group for the blinding: ristretto255 (random-oracle hash, RFC 9496) or x25519 (faster, Elligator 2 encoding; Docs/decisions/0005).") var group: String = "ristretto255"
    @Option(help: "Run in buckets, one bucket's pseudonyms in memory at a time: N buckets, or auto (one per 2^20 identifiers of all parties together; each party refuses more than its policy max_buckets). Default: the whole sets in one pass. Protocols/multi-party-sets.md.") var buckets: String?

    func submission(_ kind: JobKindName, _ common: SubmitCommon, deliverTo: [String] = [], cardinalityOnly: Bool = false,
                    _ fill: (inout JobSubmission.SetOptions) -> Void) throws -> JobSubmission {
        var sets = JobSubmission.SetOptions(aggregator: aggregator, mixer: mixer)
        fill(&sets)
        var submission = JobSubmission(protocolName: kind.rawValue, parties: try common.parsedParties(), deliverTo: deliverTo, cardinalityOnly: cardinalityOnly,
                                       group: group, sets: sets)
        if let buckets {
            submission.sets?.bucketed = true
            if buckets != "auto" {
                guard let n = Int(buckets) else { throw ValidationError("--buckets takes a number of buckets or auto, not '\(buckets)'") }
                submission.buckets = n
            }
        }
        return submission
    }
}

struct SubmitMPSI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: JobKindName.mpsi.rawValue, abstract: "n-party private set intersection (the intersection or its size to named parties).",
        discussion: "Example: mpcnode job submit mpsi --party b1:c.id --party b2:c.id --party b3:c.id --aggregator regulator --deliver-to b1")
    @OptionGroup var common: SubmitCommon
    @OptionGroup var roles: SetOperationRoles
    @Option(name: .customLong("deliver-to"), help: "A party that receives the intersection (repeat).") var deliverTo: [String] = []
    @Flag(help: "Deliver only the size of the intersection.") var cardinalityOnly = false
    @Option(help: "Release nothing over an intersection smaller than this.") var minIntersection: Int = 10

    func run() async throws {
        try await common.submit(roles.submission(.mpsi, common, deliverTo: deliverTo, cardinalityOnly: cardinalityOnly) {
            $0.minIntersection = minIntersection
        })
    }
}

struct SubmitWatchlist: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: JobKindName.watchlist.rawValue, abstract: "Black/grey lists: how many identifiers several parties hold, and which of its own others hold.",
        discussion: "Example: mpcnode job submit watchlist --party b1:risk.account --party b2:risk.account --party b3:risk.account --aggregator operator --at-least 2 --deliver-to b1")
    @OptionGroup var common: SubmitCommon
    @OptionGroup var roles: SetOperationRoles
    @Option(name: .customLong("deliver-to"), help: "A party told which of its identifiers other parties hold (repeat).") var deliverTo: [String] = []
    @Option(help: "Count identifiers held by at least this many parties.") var atLeast: Int = 2

    func run() async throws {
        try await common.submit(roles.submission(.watchlist, common, deliverTo: deliverTo) { $0.atLeast = atLeast })
    }
}

struct SubmitUnionSum: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: JobKindName.unionSum.rawValue, abstract: "Per-identifier totals of a value column over the union of the parties' identifiers, to the aggregator.",
        discussion: "Example: mpcnode job submit union-sum --party b1:customers.id --party b2:customers.id --value balance --aggregator regulator --reporting-threshold 1000000")
    @OptionGroup var common: SubmitCommon
    @OptionGroup var roles: SetOperationRoles
    @Option(help: "The decimal column to sum per identifier.") var value: String
    @Option(help: "Fixed-point decimals of the value column.") var decimals: Int = 2
    @Option(help: "List per-identifier totals at or above this.") var reportingThreshold: String?
    @Option(help: "List a per-identifier total only if at least this many parties hold the identifier.") var minCellParties: Int = 2

    func run() async throws {
        try await common.submit(roles.submission(.unionSum, common) {
            $0.valueColumn = value; $0.decimals = decimals; $0.reportingThreshold = reportingThreshold; $0.minCellParties = minCellParties
        })
    }
}

struct SubmitIntersectionStats: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: JobKindName.intersectionStats.rawValue, abstract: "Count, sum, mean and histogram of per-identifier totals over the intersection, to the aggregator.",
        discussion: "Example: mpcnode job submit intersection-stats --party b1:c.id --party b2:c.id --value balance --bins 0,1000,10000 --aggregator regulator")
    @OptionGroup var common: SubmitCommon
    @OptionGroup var roles: SetOperationRoles
    @Option(help: "The decimal column to sum per identifier.") var value: String
    @Option(help: "Fixed-point decimals of the value column.") var decimals: Int = 2
    @Option(help: "Histogram bin edges, comma-separated, ascending.") var bins: String?
    @Option(help: "Release nothing over an intersection smaller than this.") var minIntersection: Int = 10

    func run() async throws {
        try await common.submit(roles.submission(.intersectionStats, common) {
            $0.valueColumn = value; $0.decimals = decimals; $0.bins = SubmitCommon.list(bins); $0.minIntersection = minIntersection
        })
    }
}

struct SubmitTrainLR: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: JobKindName.trainLR.rawValue, abstract: "Federated logistic regression: horizontal (same features, different customers) or vertical.",
        discussion: """
            Examples:
              mpcnode job submit train-lr --party b1:loans --party b2:loans --aggregator operator --features x0..x29 --label y --rounds 30 --eval-dataset loans_test
              mpcnode job submit train-lr --mode vertical --party bank:clients.id --party telco:subs.id --aggregator operator \\
                  --label y --party-features bank=x0..x9 --party-features telco=x0..x19 --rounds 10
            Vertical: the first --party is the guest (it holds the label), every further one a host; the aggregator is the arbiter.
            """)
    @OptionGroup var common: SubmitCommon
    @Option(help: "horizontal (same features, different customers) or vertical (different features, same customers).") var mode: String = TrainingMode.horizontal.rawValue
    @Option(help: "The node (not a party) that runs the rounds (horizontal) or holds the Paillier key (vertical, the arbiter).") var aggregator: String
    @Option(help: "The 0/1 label column (vertical: the guest's).") var label: String
    @Option(help: "Horizontal: feature columns, comma-separated (x0,x1,… or a range x0..x29).") var features: String?
    @Option(name: .customLong("party-features"), help: "Vertical: node=columns, a party's own features (repeat).") var partyFeatures: [String] = []
    @Option(help: "Vertical: the arbiter's Paillier modulus bits.") var keyBits: Int = 2048
    @Option(help: "Rounds (horizontal) or epochs (vertical).") var rounds: Int = 20
    @Option(help: "Horizontal: local epochs per round.") var localEpochs: Int = 1
    @Option(help: "Learning rate.") var learningRate: Double = 0.1
    @Option(help: "L2 regularisation.") var l2: Double = 0.001
    @Option(help: "Mini-batch size (default: 32 horizontal; vertical: the parties' default floor, 8 rows per feature of the widest party + 1, at least 64).") var batchSize: Int?
    @Option(help: "Stop when the loss changes by less than this.") var tolerance: Double = 1e-5
    @Option(help: "Horizontal: each party's evaluation dataset (same columns).") var evalDataset: String?
    @Option(help: "Share of rows held out for evaluation when there is no --eval-dataset.") var holdout: Double = 0.2

    func run() async throws {
        guard features != nil || mode == TrainingMode.vertical.rawValue else {
            throw CLIFailure("train-lr needs --features (horizontal) or --mode vertical with --party-features")
        }
        var perParty: [String: [String]] = [:]
        for item in partyFeatures {
            guard let eq = item.firstIndex(of: "=") else { throw CLIFailure("--party-features '\(item)' is not node=columns") }
            perParty[String(item[..<eq])] = try SubmitCommon.columns(String(item[item.index(after: eq)...]))
        }
        // A vertical batch must be well above every party's width (each refuses fewer than 8 rows per feature by default).
        let widest = perParty.values.map(\.count).max() ?? 0
        let batch = batchSize ?? (mode == TrainingMode.vertical.rawValue ? max(64, DatasetPolicy.defaultMinimumBatchRowsPerFeature * (widest + 1)) : 32)
        let training = JobSubmission.TrainingOptions(
            mode: mode, aggregator: aggregator, features: try features.map(SubmitCommon.columns) ?? [], label: label,
            parameters: .init(rounds: rounds, localEpochs: localEpochs, learningRate: learningRate, l2: l2, batchSize: batch, tolerance: tolerance),
            evalDataset: evalDataset, holdout: evalDataset == nil ? holdout : 0, partyFeatures: perParty, keyBits: keyBits)
        try await common.submit(JobSubmission(protocolName: JobKindName.trainLR.rawValue, parties: common.parsedParties(), deliverTo: [], cardinalityOnly: false,
                                              group: "", training: training))
    }
}

struct SubmitPredict: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: JobKindName.predict.rawValue, abstract: "Score the parties' common rows with a vertical model (scores to the guest only).",
        discussion: "Example: mpcnode job submit predict --party bank:new_clients.id --party telco:subs.id --model <training job>")
    @OptionGroup var common: SubmitCommon
    @Option(help: "The vertical training job whose model scores the rows.") var model: String

    func run() async throws {
        try await common.submit(JobSubmission(protocolName: JobKindName.predict.rawValue, parties: common.parsedParties(), deliverTo: [], cardinalityOnly: false,
                                              group: "", training: .predict(model: model)))
    }
}
