import Foundation
import MPCTransport

/// A bank's PSI worker processes (`workers:` in its configuration; Docs/decisions/0009-sharded-psi-workers.md).
/// A PSI job that asks for N workers has each bank hand its buckets to N `mpcnode worker` processes;
/// worker i of one bank pairs with worker i of the other over mutual TLS with worker certificates.
///
/// ```yaml
/// workers:
///   certificate: pki/bank-a-worker.pem      # role worker, node id bank-a (`mpcnode ca issue --role worker`)
///   private_key: pki/bank-a-worker-key.pem
///   listen: 127.0.0.1:7600+{index}          # worker i listens on 7600 + i
///   launch: local                           # local: this node starts the processes; command: runs `command`
///   # command: [/usr/local/bin/launch-psi-workers]   # (launch: command) e.g. applies a Kubernetes Indexed Job
///   peers:                                  # where each peer's worker i listens; never taken from the wire
///     bank-b: 127.0.0.1:7700+{index}
///     # bank-c: psi-worker-{index}.psi-workers.bank-c.svc:7600
/// ```
public struct WorkerSettings: Sendable, Equatable {
    public enum Launch: Sendable, Equatable {
        /// The node starts each worker as a child process of `executable` (default: this program).
        case local(executable: URL?)
        /// The node runs `command` once a job's plan is written, with MPCNODE_JOB_ID and
        /// MPCNODE_WORKER_COUNT in its environment (a script that applies a Kubernetes Indexed Job), and
        /// follows the job's checkpoints until every bucket is done.
        case command([String])
    }

    public var certificate: URL
    public var privateKey: URL
    public var listen: WorkerAddressTemplate
    public var launch: Launch
    public var peers: [String: WorkerAddressTemplate]

    init(_ raw: RawWorkers, path: String, resolve: (String) -> URL) throws {
        certificate = resolve(raw.certificate)
        privateKey = resolve(raw.private_key)
        listen = try WorkerAddressTemplate(raw.listen, key: "workers.listen", path: path)
        switch raw.launch ?? "local" {
        case "local":
            // Local workers share one host: each needs a port of its own.
            guard listen.portAddsIndex || listen.text.contains("{index}") else {
                throw ConfigurationError.invalid(path: path, detail: "workers.listen: '\(listen.text)' gives every local worker the same port; write host:port+{index}")
            }
            launch = .local(executable: raw.executable.map(resolve))
        case "command":
            guard let command = raw.command, let first = command.first, !first.isEmpty else {
                throw ConfigurationError.invalid(path: path, detail: "workers.launch: command needs workers.command, the program and its arguments")
            }
            launch = .command(command)
        case let other:
            throw ConfigurationError.invalid(path: path, detail: "workers.launch: '\(other)' is neither local nor command")
        }
        var peers: [String: WorkerAddressTemplate] = [:]
        for (id, text) in raw.peers ?? [:] {
            peers[id] = try WorkerAddressTemplate(text, key: "workers.peers.\(id)", path: path)
        }
        self.peers = peers
    }
}

/// Where worker i listens: `host:port` in which `{index}` stands for i; a port written `7600+{index}`
/// is 7600 + i (workers sharing one host), a plain port is every worker's (one host each, as the pods
/// of a Kubernetes Indexed Job behind a headless Service).
public struct WorkerAddressTemplate: Sendable, Equatable, CustomStringConvertible {
    public let text: String
    let host: String
    let port: Int
    let portAddsIndex: Bool

    init(_ text: String, key: String, path: String) throws {
        self.text = text
        guard let colon = text.lastIndex(of: ":") else {
            throw ConfigurationError.invalid(path: path, detail: "\(key): '\(text)' is not host:port (with {index} for the worker's index)")
        }
        host = String(text[..<colon])
        var portText = String(text[text.index(after: colon)...])
        portAddsIndex = portText.hasSuffix("+{index}")
        if portAddsIndex { portText.removeLast("+{index}".count) }
        let sample = host.replacingOccurrences(of: "{index}", with: "0")
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")
        guard let p = Int(portText), (1...65_535).contains(p), !sample.isEmpty, sample.allSatisfy(allowed.contains) else {
            throw ConfigurationError.invalid(path: path, detail: "\(key): '\(text)' is not host:port, host:port+{index} or a host with {index} and a port")
        }
        port = p
    }

    /// Worker `index`'s address.
    public func address(index: Int) -> PeerAddress {
        PeerAddress(host: host.replacingOccurrences(of: "{index}", with: String(index)), port: portAddsIndex ? port + index : port)
    }

    /// Whether `count` workers fit the port range.
    func fits(_ count: Int) -> Bool { !portAddsIndex || port + count - 1 <= 65_535 }

    public var description: String { text }
}

struct RawWorkers: Codable {
    var certificate: String
    var private_key: String
    var listen: String
    var launch: String?
    var executable: String?
    var command: [String]?
    var peers: [String: String]?
}
