import ArgumentParser
import Foundation
import MPCIdentity
import MPCNode

struct NodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node",
        abstract: "A node's own identity: make its private key and the request the CA operator signs; its status; API tokens.",
        subcommands: [Init.self, Status.self, Token.self])

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Whether the daemon runs, and its identity, peers, datasets, running jobs and audit chain (exit 1 if it does not answer).")
        @OptionGroup var options: ConfigOption
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let status = try await JobCommand.call(options, AdminRequest(command: .status)).node!
            if json { try printJSON(status); return }
            print("""
                node \(status.nodeID) (\(status.role)), listening on \(status.listen), up since \(Format.date(status.startedAt))
                  peers: \(status.peers.keys.sorted().joined(separator: ", "))
                  datasets: \(status.datasets), running jobs: \(status.runningJobs), audit chain: \(status.auditChainIntact ? "intact" : "BROKEN (see mpcnode audit)")
                """)
            if !status.auditChainIntact { throw ExitCode(2) }
        }
    }

    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make this node's private key (<node>-key.pem, mode 0600, never overwritten) and its certificate signing request (<node>.csr).",
            discussion: "Send the .csr to the consortium's CA operator, who runs `mpcnode ca issue --csr <node>.csr --role <role>` and sends back <node>.pem. The key never leaves this machine.")
        @Option(help: "The node id (a DNS label, e.g. bank-a).") var node: String
        @Option(help: "The node's role: bank, coordinator, regulator, or worker (the key of a bank's PSI worker processes: <node>-worker-key.pem, <node>-worker.csr).") var role: String
        @Option(help: "Folder for the key and the request.") var dir: String = "pki"

        func run() throws {
            guard let role = NodeRole(rawValue: role) else { throw CLIFailure("unknown role '\(role)': use bank, coordinator, regulator or worker") }
            let folder = URL(fileURLWithPath: dir)
            do {
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
                let made = try NodeKeyRequest.make(nodeID: node, role: role)
                let stem = role.fileStem(nodeID: node)
                let key = folder.appendingPathComponent("\(stem)-key.pem").path, csr = folder.appendingPathComponent("\(stem).csr").path
                if FileManager.default.fileExists(atPath: csr) { throw IdentityError.fileExists(path: csr) }
                try NodeKeyRequest.writeNewPrivateFile(made.privateKeyPEM, to: key)
                do {
                    try made.requestPEM.write(toFile: csr, atomically: true, encoding: .utf8)
                } catch {
                    try? FileManager.default.removeItem(atPath: key)  // no key without its request
                    throw IdentityError.unwritableFile(path: csr, detail: "\(error)")
                }
                print("made \(node)'s key and request\n  private key: \(key)  (mode 0600; stays on this machine)\n  request:     \(csr)  (send to the CA operator)")
            } catch let error as IdentityError {
                throw CLIFailure(error.description)
            }
        }
    }

    struct Token: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a bearer token for the node's HTTP API.",
            discussion: "Prints the token once (give it to the calling system) and the entry for http.tokens in the node's configuration, which holds only its SHA-256.")
        @Option(help: "Who uses the token (shown in the API's logs).") var name: String
        @Option(help: "Roles, comma-separated: lookup, read, metrics, operator, coordinator, regulator.") var roles: String = "lookup"

        func run() throws {
            let roles = roles.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            for r in roles where HTTPAPISettings.Role(rawValue: r) == nil { throw CLIFailure("unknown role '\(r)': use one of \(HTTPAPISettings.Role.allCases.map(\.rawValue).joined(separator: ", "))") }
            let (token, sha256) = HTTPAPISettings.newToken()
            print("token (shown once; keep it in the caller's secret store): \(token)")
            print("")
            print("add under http.tokens in the node's configuration:")
            print("    - name: \(name)")
            print("      sha256: \(sha256)")
            print("      roles: [\(roles.joined(separator: ", "))]")
        }
    }
}
