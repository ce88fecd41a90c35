import ArgumentParser
import Foundation
import MPCNode

struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check a node's configuration, files, permissions, certificate and each peer's reachability, and say what to fix.",
        discussion: "Changes nothing. Exit status 1 when a check failed (warnings alone exit 0).")
    @OptionGroup var options: ConfigOption
    @Flag(help: "Print JSON.") var json = false
    @Flag(help: "Check the files only (not the daemon nor the peers), e.g. before deploying the node.") var offline = false

    func run() async throws {
        let checks = await NodeDoctor.run(configurationPath: options.path, offline: offline)
        if json {
            let rows = checks.map { ["check": $0.name, "outcome": $0.outcome.rawValue, "detail": $0.detail, "fix": $0.fix] }
            let data = try JSONSerialization.data(withJSONObject: rows, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            for c in checks {
                let mark = c.outcome == .ok ? "ok  " : c.outcome == .warning ? "warn" : "FAIL"
                print("[\(mark)] \(c.name): \(c.detail)")
                if !c.fix.isEmpty { print("       → \(c.fix)") }
            }
        }
        if checks.contains(where: { $0.outcome == .failed }) { throw ExitCode(1) }
    }
}
