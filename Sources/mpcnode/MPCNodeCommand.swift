import ArgumentParser
import Foundation

@main
struct MPCNodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mpcnode",
        abstract: "A privacy-preserving multi-party computation node for bank consortia.",
        discussion: """
            Each participant runs one daemon (`mpcnode serve`). Data owners import data into the node's own
            SQLite (`mpcnode data import`) and set a policy in the node's configuration; coordinators propose
            joint computations (`mpcnode job submit`). Nodes talk only over mutually authenticated TLS 1.3
            with certificates from the consortium CA (`mpcnode ca`).
            """,
        subcommands: [CACommand.self, NodeCommand.self, DoctorCommand.self, ServeCommand.self, DataCommand.self, JobCommand.self, LookupCommand.self, ReportCommand.self, ModelCommand.self, AuditCommand.self, BenchCommand.self, WorkerCommand.self]
    )

    /// Every file this program creates (the node's database, scratch copies, keys, exports) is the
    /// operator's alone unless it says otherwise.
    static func main() async {
        umask(0o077)
        await main(nil)
    }
}

/// `--config`, shared by every command that acts on one node.
struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: "The node's configuration file (default: $MPCNODE_CONFIG or ./mpcnode.yaml).")
    var config: String?

    var path: String {
        config ?? ProcessInfo.processInfo.environment["MPCNODE_CONFIG"] ?? "mpcnode.yaml"
    }
}

/// An error already explained to the user: print it and exit non-zero without a stack of context.
struct CLIFailure: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}
