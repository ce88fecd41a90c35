import Foundation
import MPCHTTPAPI
import MPCNode
import Logging
import MPCIdentity
import MPCTransport

/// A throwaway consortium in one folder: a CA, a certificate and a configuration file per node, on
/// loopback ports. The benchmark and the end-to-end tests use it to start real nodes (real TLS, real
/// SQLite files) in one process; `Deploy/demo.sh` builds the same layout with the CLI.
public struct LocalConsortium: Sendable {
    public struct Member: Sendable {
        public var id: String
        public var role: NodeRole
        public var port: Int
        public var configurationPath: URL
    }

    public let directory: URL
    public let members: [Member]

    /// Creates the PKI and configuration files. `policy` returns the YAML `policy:` block of each bank.
    public static func create(in directory: URL, banks: [String], coordinator: String = "coordinator", regulators: [String] = [],
                              policy: (String) -> String, peerIdleTimeoutSeconds: Int = 300,
                              serverReportGraceSeconds: Int = 30, maximumJobSeconds: Int = 86_400,
                              regulatorPolicy: String? = nil, coordinatorExtra: String = "",
                              workerExecutable: URL? = nil) throws -> LocalConsortium {
        let pki = directory.appendingPathComponent("pki")
        try FileManager.default.createDirectory(at: pki, withIntermediateDirectories: true)
        let ca = try ConsortiumCA.create(name: "Local test consortium")
        try ca.certificatePEM.write(to: pki.appendingPathComponent("ca.pem"), atomically: true, encoding: .utf8)
        // A throwaway consortium keeps its CA key beside the certificate (a real one keeps it offline).
        FileManager.default.createFile(atPath: pki.appendingPathComponent("ca-key.pem").path, contents: Data(ca.privateKeyPEM.utf8),
                                       attributes: [.posixPermissions: 0o600])
        let ids = [coordinator] + banks + regulators
        let ports = try FreePorts.reserve(ids.count)
        // With workers: each bank's worker certificate and 16 consecutive ports for its workers.
        var workerPorts: [String: Int] = [:]
        if workerExecutable != nil {
            for bank in banks { workerPorts[bank] = try FreePorts.reserveRange(16, avoiding: ports + workerPorts.values.flatMap { $0..<($0 + 16) }) }
        }
        var members: [Member] = []
        for (i, id) in ids.enumerated() {
            let role: NodeRole = id == coordinator ? .coordinator : regulators.contains(id) ? .regulator : .bank
            let issued = try ca.issue(nodeID: id, role: role)
            try issued.certificatePEM.write(to: pki.appendingPathComponent("\(id).pem"), atomically: true, encoding: .utf8)
            FileManager.default.createFile(atPath: pki.appendingPathComponent("\(id)-key.pem").path, contents: Data(issued.privateKeyPEM.utf8),
                                           attributes: [.posixPermissions: 0o600])
            let peers = ids.enumerated().filter { $0.element != id }.map { "  \($0.element): 127.0.0.1:\(ports[$0.offset])" }
            var workers = ""
            if let executable = workerExecutable, let base = workerPorts[id] {
                let worker = try ca.issue(nodeID: id, role: .worker)
                try worker.certificatePEM.write(to: pki.appendingPathComponent("\(id)-worker.pem"), atomically: true, encoding: .utf8)
                FileManager.default.createFile(atPath: pki.appendingPathComponent("\(id)-worker-key.pem").path,
                                               contents: Data(worker.privateKeyPEM.utf8), attributes: [.posixPermissions: 0o600])
                let others = banks.filter { $0 != id }.map { "    \($0): 127.0.0.1:\(workerPorts[$0]!)+{index}" }
                workers = """
                    workers:
                      certificate: pki/\(id)-worker.pem
                      private_key: pki/\(id)-worker-key.pem
                      listen: 127.0.0.1:\(base)+{index}
                      launch: local
                      executable: \(executable.path)
                      peers:
                    \(others.joined(separator: "\n"))
                    """
            }
            let text = """
                node_id: \(id)
                listen: 127.0.0.1:\(ports[i])
                data_dir: data/\(id)
                peer_idle_timeout_seconds: \(peerIdleTimeoutSeconds)
                server_report_grace_seconds: \(serverReportGraceSeconds)
                max_job_seconds: \(maximumJobSeconds)
                tls:
                  certificate: pki/\(id).pem
                  private_key: pki/\(id)-key.pem
                  ca_certificate: pki/ca.pem
                peers:
                \(peers.joined(separator: "\n"))
                \(role == .bank ? policy(id) : role == .regulator ? (regulatorPolicy ?? "policy:\n  coordinators: [\(coordinator)]") : coordinatorExtra)
                \(workers)
                """
            let path = directory.appendingPathComponent("\(id).yaml")
            try text.write(to: path, atomically: true, encoding: .utf8)
            members.append(Member(id: id, role: role, port: ports[i], configurationPath: path))
        }
        return LocalConsortium(directory: directory, members: members)
    }

    /// The path of `id`'s configuration file (what `--config` takes).
    public func configurationFile(of id: String) throws -> URL {
        guard let m = members.first(where: { $0.id == id }) else { throw JobError.unknownPeer(id) }
        return m.configurationPath
    }

    public func configuration(of id: String) throws -> NodeConfiguration {
        guard let m = members.first(where: { $0.id == id }) else { throw JobError.unknownPeer(id) }
        return try NodeConfiguration.load(path: m.configurationPath.path)
    }

    /// Starts every node in this process.
    public func startAll(logger: Logger, transportOptions: (String) -> TransportOptions? = { _ in nil },
                         sessionWaitTimeout: Duration = .seconds(60)) async throws -> [String: NodeRuntime] {
        var nodes: [String: NodeRuntime] = [:]
        for m in members {
            nodes[m.id] = try await start(m.id, logger: logger, transportOptions: transportOptions(m.id),
                                          sessionWaitTimeout: sessionWaitTimeout)
        }
        return nodes
    }

    /// Starts one node in this process.
    public func start(_ id: String, logger: Logger, transportOptions: TransportOptions? = nil,
                      sessionWaitTimeout: Duration = .seconds(60), faults: FaultHooks? = nil,
                      watchesLookupLists: Bool = true) async throws -> NodeRuntime {
        var l = logger
        l[metadataKey: "node"] = "\(id)"
        return try await NodeRuntime.start(configuration: configuration(of: id), logger: l,
                                           transportOptions: transportOptions, sessionWaitTimeout: sessionWaitTimeout, faults: faults,
                                           watchesLookupLists: watchesLookupLists)
    }
}

/// Finds free loopback ports for the nodes' listeners, below the kernel's ephemeral range (32768 and
/// up on Linux): a port is written into the configurations long before the node binds it (a benchmark
/// imports its data in between), and a port from port 0 lies in the ephemeral range, where any outbound
/// connection of the meantime could take it.
public enum FreePorts {
    public static func reserve(_ count: Int) throws -> [Int] {
        var ports: [Int] = []
        var tries = 0
        while ports.count < count {
            tries += 1
            guard tries < 10_000 else { throw NodeError.cannotListen(address: "127.0.0.1", detail: "no free port in 20000…32767") }
            let port = Int.random(in: 20_000...32_767)
            if !ports.contains(port), canBind(port) { ports.append(port) }
        }
        return ports
    }

    /// The first of `count` consecutive free loopback ports (below the ephemeral range), none in `avoiding`.
    public static func reserveRange(_ count: Int, avoiding: [Int] = []) throws -> Int {
        for _ in 0..<2_000 {
            let first = Int.random(in: 20_000...(32_767 - count))
            let range = first..<(first + count)
            if !avoiding.contains(where: { range.contains($0) }) && range.allSatisfy(canBind) { return first }
        }
        throw NodeError.cannotListen(address: "127.0.0.1", detail: "no \(count) consecutive free ports in 20000…32767")
    }

    static func canBind(_ port: Int) -> Bool {
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard s >= 0 else { return false }
        defer { close(s) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}

/// A node started in this process together with its HTTP API (when its configuration has `http:`).
public struct NodeWithAPI: Sendable {
    public let node: NodeRuntime
    public let api: HTTPAPIServer?

    public static func start(_ consortium: LocalConsortium, _ id: String, logger: Logger, watchesLookupLists: Bool = true) async throws -> NodeWithAPI {
        let node = try await consortium.start(id, logger: logger, watchesLookupLists: watchesLookupLists)
        guard let settings = node.configuration.http else { return NodeWithAPI(node: node, api: nil) }
        do {
            return NodeWithAPI(node: node, api: try await HTTPAPIServer.start(node: node, settings: settings, logger: logger))
        } catch {
            await node.stop()
            throw error
        }
    }

    public func stop() async {
        await api?.stop()
        await node.stop()
    }
}
