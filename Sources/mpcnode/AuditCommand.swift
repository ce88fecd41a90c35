import ArgumentParser
import Foundation
import MPCNode

struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "This node's audit log: show it (the default) or verify it and its peers' logs.",
        subcommands: [AuditShow.self, AuditVerify.self], defaultSubcommand: AuditShow.self)
}

struct AuditShow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show this node's audit log and check its hash chain (reads the node's database directly).")
    @OptionGroup var options: ConfigOption
    @Option(help: "Only the records of this job.") var job: String?
    @Option(help: "How many recent records.") var limit: Int = 50
    @Flag(help: "Show each record's details in full, one field a line, under its row (folded to one short line otherwise).") var details = false
    @Flag(help: "Print JSON (records with their details as objects, and whether the chain verifies) for scripts.") var json = false

    struct Listing: Encodable {
        struct Record: Encodable {
            var seq: Int64, at: String, jobID: String?, event: String, details: AuditValue, hash: String
        }
        var records: [Record]
        var chainIntact: Bool
        var brokenAt: Int64?
    }

    func run() throws {
        let configuration: NodeConfiguration
        let log: AuditLog
        do {
            configuration = try NodeConfiguration.load(path: options.path)
            log = AuditLog(store: try NodeStore(path: configuration.databasePath))
        } catch { throw CLIFailure("\(error)") }
        let records = try log.records(jobID: job, limit: limit)
        let broken = try log.verify()
        if json {
            try printJSON(Listing(records: records.map {
                .init(seq: $0.seq, at: $0.at, jobID: $0.jobID, event: $0.event, details: Self.object($0.details), hash: $0.hash)
            }, chainIntact: broken == nil, brokenAt: broken))
            if broken != nil { throw ExitCode(3) }
            return
        }
        var rows: [[String]] = []
        for record in records {
            let fields = Self.fields(record.details)
            rows.append(["\(record.seq)", record.at, record.jobID ?? "", record.event,
                         details ? "" : Self.fold(fields), String(record.hash.prefix(12))])
            if details { rows += fields.map { ["", "", "", "  \($0.key)", $0.value, ""] } }
        }
        print(TextTable.render(header: ["#", "at", "job", "event", details ? "" : "details (--details: in full)", "hash"], rows: rows))
        if let broken {
            print("\naudit chain BROKEN at record #\(broken): the log was altered")
            throw ExitCode(3)
        }
        print("\naudit chain intact")
    }

    /// A record's details as an object (its stored JSON text; a text that is not JSON stays a string).
    static func object(_ text: String) -> AuditValue {
        (try? JSONDecoder().decode(AuditValue.self, from: Data(text.utf8))) ?? .string(text)
    }

    /// The details' fields as key and value text, keys sorted.
    static func fields(_ text: String) -> [(key: String, value: String)] {
        guard case .object(let fields) = object(text) else { return [("", text)] }
        return fields.keys.sorted().map { key in (key, Self.text(fields[key]!)) }
    }

    /// A value as short text: strings bare, lists and objects as compact JSON.
    static func text(_ value: AuditValue) -> String {
        switch value {
        case .string(let s): return s
        case .int(let i): return "\(i)"
        case .bool(let b): return "\(b)"
        case .array, .object:
            return (try? String(decoding: JSONEncoder().encode(value), as: UTF8.self)) ?? ""
        }
    }

    /// One short line: the first fields, cut at 60 characters.
    static func fold(_ fields: [(key: String, value: String)]) -> String {
        let line = fields.map { $0.key.isEmpty ? $0.value : "\($0.key)=\($0.value)" }.joined(separator: " ")
        return line.count <= 60 ? line : String(line.prefix(59)) + "…"
    }
}

struct AuditVerify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Verify this node's Merkle log and its peers' (Protocols/ledger.md); with --job, that every party's log holds the job.",
        discussion: """
            Checks every audit record against its leaf and this node's latest signed head, pulls every peer's signed head \
            with a consistency proof from the one held (a rollback or a rewritten log is an alarm), and with --job asks \
            each party of the job for the proof that its log holds its record of it. Exit 0 when everything verifies, \
            3 otherwise (an unreachable peer is shown but does not fail the check). Needs the daemon running.
            """)
    @OptionGroup var options: ConfigOption
    @Option(help: "A job whose record every party's log must hold.") var job: String?
    @Flag(help: "Print JSON (for scripts).") var json = false

    func run() async throws {
        let response = try await JobCommand.call(options, AdminRequest(command: .ledgerVerify, jobID: job))
        guard let report = response.ledger else { throw CLIFailure("the daemon sent no ledger report") }
        if json {
            try printJSON(report)
        } else {
            print("this node (\(report.node)): \(report.own.size) records in its log; " + (report.own.leafMismatch.map { "BROKEN: \($0)" } ?? "every record matches its leaf"))
            if let size = report.own.latestHeadSize {
                print("  latest signed head: \(size) leaves, " + (report.own.latestHeadMatches == true ? "its root is the log's" : "its root is NOT the log's: the log was rewritten after it was signed"))
            }
            if !report.peers.isEmpty {
                print("")
                print(TextTable.render(header: ["peer", "head", "check"], rows: report.peers.map {
                    [$0.node, $0.heldSize.map { "\($0) leaves" } ?? "-", $0.outcome == "alarm" ? "ALARM \($0.detail)" : $0.detail]
                }))
            }
            if let job = report.job {
                print("\njob \(job):")
                if let r = report.receipt {
                    print("  receipt \(r.sha256.prefix(16))… (outcome \(r.outcome)): signed by \(r.signedBy.joined(separator: ", "))"
                          + (r.unsigned.isEmpty ? "" : "; NOT signed by \(r.unsigned.joined(separator: ", "))")
                          + (r.invalid.map { "; INVALID: \($0)" } ?? ""))
                } else {
                    print("  no receipt of the job on this node (yet: it follows the job's end)")
                }
                print(TextTable.render(header: ["node", "holds the job's record", "how"], rows: report.records.map { [$0.node, $0.proven ? "yes" : "NO", $0.detail] }))
            }
            if !report.alarms.isEmpty {
                print("\nalarms held (latest first):")
                print(TextTable.render(header: ["at", "node", "kind", "detail"], rows: report.alarms.map { [$0.at, $0.node, $0.kind, $0.detail] }))
            }
            print(report.verified ? "\nledger verified" : "\nledger NOT verified: see above")
        }
        if !report.verified { throw ExitCode(3) }
    }
}
