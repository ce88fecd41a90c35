import ArgumentParser
import Foundation
import MPCNode

struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Show this node's audit log and check its hash chain (reads the node's database directly).")
    @OptionGroup var options: ConfigOption
    @Option(help: "Only the records of this job.") var job: String?
    @Option(help: "How many recent records.") var limit: Int = 50

    func run() throws {
        let configuration: NodeConfiguration
        let log: AuditLog
        do {
            configuration = try NodeConfiguration.load(path: options.path)
            log = AuditLog(store: try NodeStore(path: configuration.databasePath))
        } catch { throw CLIFailure("\(error)") }
        let records = try log.records(jobID: job, limit: limit)
        print(TextTable.render(header: ["#", "at", "job", "event", "details", "hash"],
                               rows: records.map { ["\($0.seq)", $0.at, $0.jobID ?? "", $0.event, $0.details, String($0.hash.prefix(12))] }))
        if let broken = try log.verify() {
            print("\naudit chain BROKEN at record #\(broken): the log was altered")
            throw ExitCode(3)
        }
        print("\naudit chain intact")
    }
}
