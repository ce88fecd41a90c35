import Foundation
import MPCTransport
import Yams

/// A node's configuration file (YAML). Relative paths are resolved against the file's folder.
///
/// ```yaml
/// node_id: bank-a
/// listen: 127.0.0.1:7401
/// data_dir: data/bank-a
/// tls:
///   certificate: pki/bank-a.pem
///   private_key: pki/bank-a-key.pem
///   ca_certificate: pki/ca.pem
///   revocation_list: pki/revocations.json   # optional: the CA's signed list of revoked certificates
///   watch_seconds: 30                        # reload when these files change (0: only on SIGHUP)
/// peers:
///   coordinator: 127.0.0.1:7400
///   bank-b: 127.0.0.1:7402
/// policy:
///   coordinators: [coordinator]
///   datasets:
///     customers:
///       columns: [phone]
///       protocols: [psi, psi-cardinality]
///       result_recipients: [bank-a]
///       min_set_size: 100
/// ledger:
///   gossip_seconds: 300                      # pull the peers' tree heads this often (and at each job's end)
/// ```
public struct NodeConfiguration: Sendable, Equatable {
    public var nodeID: String
    public var listen: PeerAddress
    public var dataDirectory: URL
    public var tls: TLSFiles
    public var peers: [String: PeerAddress]
    public var policy: NodePolicy
    /// Seconds a peer may stay silent during a job before the job fails.
    public var peerIdleTimeoutSeconds: Int
    /// At a coordinator: seconds to wait, once every other party of a job with a server (a secure sum's
    /// aggregator) has ended, for the server's own outcome before the job fails naming the server.
    public var serverReportGraceSeconds: Int
    /// The longest a job may run at this node before it fails here (`max_job_seconds`, default a day):
    /// heartbeats keep a waiting link alive, so a peer that withholds a message would otherwise stall it.
    public var maximumJobSeconds: Int
    /// A Unix group whose members may use the admin socket besides root and the daemon's user (`admin_group`).
    public var adminGroup: String?
    /// The local HTTP API, when configured (`http:`).
    public var http: HTTPAPISettings?
    /// How often the node pulls its peers' tree heads besides each job's end (`ledger.gossip_seconds`).
    public var ledgerGossipSeconds: Int = 300
    /// The node's PSI worker processes (`workers:`), if it has any.
    public var workers: WorkerSettings?
    /// Where the file was read from (for messages).
    public var sourcePath: String

    public struct TLSFiles: Sendable, Equatable {
        public var certificate: URL
        public var privateKey: URL
        public var caCertificate: URL
        /// The consortium CA's signed list of revoked certificates (`mpcnode ca revoke`), if any.
        public var revocationList: URL?
        /// How often the daemon looks for changed TLS files to reload (0: only on SIGHUP).
        public var watchSeconds: Int = 30
    }

    /// The SQLite file of the node.
    public var databasePath: URL { dataDirectory.appendingPathComponent("node.sqlite") }
    /// The admin endpoint: a Unix socket only the node's own user can open.
    public var adminSocketPath: URL { dataDirectory.appendingPathComponent("admin.sock") }
    /// Per-job scratch files.
    public var jobsDirectory: URL { dataDirectory.appendingPathComponent("jobs") }

    public static func load(path: String) throws -> NodeConfiguration {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw ConfigurationError.unreadable(path: path, detail: error.localizedDescription)
        }
        return try parse(text, path: path)
    }

    public static func parse(_ text: String, path: String) throws -> NodeConfiguration {
        let raw: RawConfiguration
        do { raw = try YAMLDecoder().decode(RawConfiguration.self, from: text) } catch {
            throw ConfigurationError.invalid(path: path, detail: Self.describe(error))
        }
        let base = URL(fileURLWithPath: path).deletingLastPathComponent()
        func resolve(_ p: String) -> URL {
            p.hasPrefix("/") ? URL(fileURLWithPath: p) : base.appendingPathComponent(p).standardizedFileURL
        }
        guard let listen = PeerAddress(raw.listen) else {
            throw ConfigurationError.invalid(path: path, detail: "listen: '\(raw.listen)' is not host:port")
        }
        var peers: [String: PeerAddress] = [:]
        for (id, address) in raw.peers ?? [:] {
            guard let a = PeerAddress(address) else {
                throw ConfigurationError.invalid(path: path, detail: "peers.\(id): '\(address)' is not host:port")
            }
            peers[id] = a
        }
        let idle = raw.peer_idle_timeout_seconds ?? 300, grace = raw.server_report_grace_seconds ?? 30
        let maximumJob = raw.max_job_seconds ?? 86_400
        guard (10...604_800).contains(maximumJob) else {
            throw ConfigurationError.invalid(path: path, detail: "max_job_seconds: \(maximumJob) is not between 10 and 604800 (a week)")
        }
        guard (1...86_400).contains(idle) else {
            throw ConfigurationError.invalid(path: path, detail: "peer_idle_timeout_seconds: \(idle) is not between 1 and 86400")
        }
        guard (1...86_400).contains(grace) else {
            throw ConfigurationError.invalid(path: path, detail: "server_report_grace_seconds: \(grace) is not between 1 and 86400")
        }
        let gossip = raw.ledger?.gossip_seconds ?? 300
        guard (5...86_400).contains(gossip) else {
            throw ConfigurationError.invalid(path: path, detail: "ledger.gossip_seconds: \(gossip) is not between 5 and 86400")
        }
        let watch = raw.tls.watch_seconds ?? 30
        guard (0...86_400).contains(watch) else {
            throw ConfigurationError.invalid(path: path, detail: "tls.watch_seconds: \(watch) is not between 0 (off) and 86400")
        }
        let workers = try raw.workers.map { try WorkerSettings($0, path: path, resolve: resolve) }
        for id in workers?.peers.keys.sorted() ?? [] where peers[id] == nil {
            throw ConfigurationError.invalid(path: path, detail: "workers.peers.\(id): \(id) is not among peers")
        }
        var policy = try NodePolicy(raw.policy ?? RawPolicy(), path: path)
        policy.workerPeers = Set(workers?.peers.keys.map { $0 } ?? [])
        for id in policy.workerPeers where !(workers?.peers[id]?.fits(policy.maximumWorkers) ?? true) {
            throw ConfigurationError.invalid(path: path, detail: "workers.peers.\(id): \(policy.maximumWorkers) workers (policy.max_workers) would pass port 65535")
        }
        if let w = workers, !w.listen.fits(policy.maximumWorkers) {
            throw ConfigurationError.invalid(path: path, detail: "workers.listen: \(policy.maximumWorkers) workers (policy.max_workers) would pass port 65535")
        }
        return NodeConfiguration(
            nodeID: raw.node_id, listen: listen, dataDirectory: resolve(raw.data_dir),
            tls: TLSFiles(certificate: resolve(raw.tls.certificate), privateKey: resolve(raw.tls.private_key),
                          caCertificate: resolve(raw.tls.ca_certificate), revocationList: raw.tls.revocation_list.map(resolve),
                          watchSeconds: watch),
            peers: peers, policy: policy,
            peerIdleTimeoutSeconds: idle, serverReportGraceSeconds: grace,
            maximumJobSeconds: maximumJob, adminGroup: raw.admin_group,
            http: try raw.http.map { try HTTPAPISettings($0, path: path, resolve: resolve) }, ledgerGossipSeconds: gossip,
            workers: workers, sourcePath: path)
    }

    static func describe(_ error: Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, let context):
            return "missing key '\((context.codingPath + [key]).map(\.stringValue).joined(separator: "."))'"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            return "\(context.codingPath.map(\.stringValue).joined(separator: ".")): \(context.debugDescription)"
        case DecodingError.dataCorrupted(let context):
            return "\(context.codingPath.map(\.stringValue).joined(separator: ".")): \(context.debugDescription)"
        default:
            return "\(error)"
        }
    }
}

public enum ConfigurationError: Error, CustomStringConvertible {
    case unreadable(path: String, detail: String)
    case invalid(path: String, detail: String)

    public var description: String {
        switch self {
        case .unreadable(let p, let d): return "cannot read the configuration \(p): \(d)"
        case .invalid(let p, let d): return "configuration \(p) is invalid: \(d)"
        }
    }
}

/// The file's shape, as YAML keys.
struct RawConfiguration: Codable {
    var node_id: String
    var listen: String
    var data_dir: String
    var tls: RawTLS
    var peers: [String: String]?
    var policy: RawPolicy?
    var peer_idle_timeout_seconds: Int?
    var server_report_grace_seconds: Int?
    var max_job_seconds: Int?
    var admin_group: String?
    var http: RawHTTP?
    var ledger: RawLedger?
    var workers: RawWorkers?
}

struct RawLedger: Codable {
    var gossip_seconds: Int?
}

struct RawTLS: Codable {
    var certificate: String
    var private_key: String
    var ca_certificate: String
    var revocation_list: String?
    var watch_seconds: Int?
}

struct RawPolicy: Codable {
    var coordinators: [String]?
    var datasets: [String: RawDatasetPolicy]?
    var min_paillier_bits: Int?
    var max_buckets: Int?
    var max_resumes: Int?
    var max_workers: Int?
    var psi_protocols: [String]?
    var lookups: RawLookupSubscriptions?
}

struct RawLookupList: Codable {
    var label_columns: [String]?
    var queriers: [String]?
    var max_lookups_per_second: Int?
    var max_lookups_per_day: Int?
    var disclosure: String?
    var risk_column: String?
    var risk_levels: [String]?
}

struct RawLookupSubscriptions: Codable {
    var subscribe: [String]?
    var sync_seconds: Int?
    var timeout_ms: Int?
}

struct RawDatasetPolicy: Codable {
    var columns: [String]?
    var protocols: [String]?
    var result_recipients: [String]?
    var min_set_size: Int?
    var min_cell_records: Int?
    var min_cell_parties: Int?
    var min_intersection: Int?
    var max_peer_set_size: Int?
    var max_peer_set_ratio: Double?
    var min_sum_threshold_share: Double?
    var min_sum_parties: Int?
    var sum_noise_epsilon: Double?
    var sum_value_bound: Double?
    var sum_epsilon_per_day: Double?
    var min_batch_rows_per_feature: Int?
    var residual_noise: Double?
    var max_holdout: Double?
    var max_jobs_per_day: Int?
    var max_coordinators_per_day: Int?
    var max_jobs_per_peer_per_input: Int?
    var lookup_lists: RawLookupList?
}
