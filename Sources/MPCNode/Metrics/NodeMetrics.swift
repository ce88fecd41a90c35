import CoreMetrics
import Foundation
import GRDB
import MPCWire
import MPCTransport
import class Prometheus.PrometheusCollectorRegistry
import struct Prometheus.PrometheusMetricsFactory
import Synchronization

/// This node's metrics, recorded through swift-metrics into a Prometheus registry of its own (several
/// nodes in one process keep theirs apart) and served by the HTTP API at `/metrics`
/// (Docs/operations/metrics.md lists them). Every label value comes from a fixed set or from this
/// node's own configuration (job kinds, outcomes, rules, configured peers): nothing another member
/// sends can grow the number of series.
public final class NodeMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory
    private let certificateExpiry: CoreMetrics.Gauge
    private let caExpiry: CoreMetrics.Gauge

    public init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        let seconds: [Duration] = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200].map { .seconds($0) }
        factory.durationHistogramBuckets[Self.jobDuration] = seconds
        factory.durationHistogramBuckets[Self.lookupDuration] = [1, 2, 5, 10, 20, 50, 100, 250, 500, 1000, 5000].map { .milliseconds($0) }
        self.factory = factory
        certificateExpiry = CoreMetrics.Gauge(label: Self.certificateDays, dimensions: [("certificate", "node")], factory: factory)
        caExpiry = CoreMetrics.Gauge(label: Self.certificateDays, dimensions: [("certificate", "ca")], factory: factory)
    }

    static let jobs = "mpcnode_jobs_total"
    static let jobDuration = "mpcnode_job_duration_seconds"
    static let policyRefusals = "mpcnode_policy_refusals_total"
    static let lookups = "mpcnode_lookups_total"
    static let lookupDuration = "mpcnode_lookup_duration_seconds"
    static let certificateDays = "mpcnode_certificate_expiry_days"
    static let peerBytes = "mpcnode_peer_job_bytes_total"
    static let handshakeFailures = "mpcnode_tls_handshake_failures_total"
    static let peerTraffic = "mpcnode_peer_bytes_total"
    static let peerConnections = "mpcnode_peer_connections"
    static let ledgerAlarms = "mpcnode_ledger_alarms_total"

    /// Follows the jobs of `store`: each one that ends is counted by kind, this node's role and outcome,
    /// with its duration (from its creation here) and the bytes it exchanged with its peers.
    public func observeJobs(of store: NodeStore) {
        store.jobStates.add { [self] db, jobID, state in
            guard state.isFinal, let row = try? Row.fetchOne(db, sql: """
                SELECT spec, role, created_at, bytes_sent, bytes_received FROM job WHERE id = ?
                """, arguments: [jobID]) else { return }
            let kind = (try? Mpcnode_V1_JobSpec(serializedBytes: row["spec"] as Data)).flatMap { try? JobKinds.kind(of: $0).name } ?? "unknown"
            let role: String = row["role"] ?? "unknown"
            CoreMetrics.Counter(label: Self.jobs, dimensions: [("kind", kind), ("role", role), ("outcome", state.rawValue)], factory: factory).increment()
            if let created = row["created_at"] as Date? {
                CoreMetrics.Timer(label: Self.jobDuration, dimensions: [("kind", kind), ("role", role)], factory: factory)
                    .recordNanoseconds(Int64(max(0, Date().timeIntervalSince(created)) * 1e9))
            }
            if let sent = row["bytes_sent"] as Int?, sent > 0 {
                CoreMetrics.Counter(label: Self.peerBytes, dimensions: [("kind", kind), ("direction", "sent")], factory: factory).increment(by: sent)
            }
            if let received = row["bytes_received"] as Int?, received > 0 {
                CoreMetrics.Counter(label: Self.peerBytes, dimensions: [("kind", kind), ("direction", "received")], factory: factory).increment(by: received)
            }
        }
    }

    /// The transport's observer: bytes on the wire and open connections per peer. A peer this node's
    /// configuration does not name is counted as "other" (a member cannot add a series by connecting).
    public func trafficObserver(peers: Set<String>) -> any TrafficObserver { Traffic(metrics: self, peers: peers) }

    private struct TrafficCounters {
        var bytes: [String: CoreMetrics.Counter] = [:]
        var open: [String: Int] = [:]
    }
    private let traffic = Mutex(TrafficCounters())

    final class Traffic: TrafficObserver {
        let metrics: NodeMetrics
        let peers: Set<String>
        init(metrics: NodeMetrics, peers: Set<String>) { self.metrics = metrics; self.peers = peers }
        func label(_ peer: String) -> String { peers.contains(peer) ? peer : "other" }
        func bytes(peer: String, sent: Bool, count: Int) {
            let key = label(peer) + (sent ? "\u{0}sent" : "\u{0}received")
            let counter = metrics.traffic.withLock { t -> CoreMetrics.Counter in
                if let c = t.bytes[key] { return c }
                let c = CoreMetrics.Counter(label: NodeMetrics.peerTraffic, dimensions: [("peer", label(peer)), ("direction", sent ? "sent" : "received")],
                                            factory: metrics.factory)
                t.bytes[key] = c
                return c
            }
            counter.increment(by: count)
        }
        func connected(_ peer: String) { change(peer, by: 1) }
        func disconnected(_ peer: String) { change(peer, by: -1) }
        private func change(_ peer: String, by delta: Int) {
            let name = label(peer)
            let now = metrics.traffic.withLock { t -> Int in
                t.open[name, default: 0] += delta
                return t.open[name]!
            }
            CoreMetrics.Gauge(label: NodeMetrics.peerConnections, dimensions: [("peer", name)], factory: metrics.factory).record(now)
        }
    }

    /// An inbound connection that ended before its TLS handshake authenticated a member, by reason.
    /// A ledger alarm about a configured peer (kinds: rollback, fork, time, signature, impersonation, malformed).
    func ledgerAlarm(node: String, kind: String) {
        CoreMetrics.Counter(label: Self.ledgerAlarms, dimensions: [("node", node), ("kind", kind)], factory: factory).increment()
    }

    public func handshakeFailed(reason: String) {
        CoreMetrics.Counter(label: Self.handshakeFailures, dimensions: [("reason", reason)], factory: factory).increment()
    }

    /// A job this node's policy refused, by the rule that refused it.
    func policyRefused(rule: PolicyRule) {
        CoreMetrics.Counter(label: Self.policyRefusals, dimensions: [("rule", rule.rawValue)], factory: factory).increment()
    }

    /// Keys looked up from this node's API or CLI, by outcome (listed somewhere, not listed, or not
    /// fully answered: a list could not be asked), and the time the request took.
    public func lookups(listed: Int, notListed: Int, incomplete: Int, duration: Duration) {
        for (outcome, n) in [("listed", listed), ("not_listed", notListed), ("incomplete", incomplete)] where n > 0 {
            CoreMetrics.Counter(label: Self.lookups, dimensions: [("outcome", outcome)], factory: factory).increment(by: n)
        }
        let nanoseconds = duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
        CoreMetrics.Timer(label: Self.lookupDuration, factory: factory).recordNanoseconds(nanoseconds)
    }

    /// The Prometheus text exposition, with the certificates' days to expiry as of now.
    public func exposition(certificateNotAfter: Date, caNotAfter: Date?, now: Date = Date()) -> [UInt8] {
        certificateExpiry.record(certificateNotAfter.timeIntervalSince(now) / 86_400)
        if let caNotAfter { caExpiry.record(caNotAfter.timeIntervalSince(now) / 86_400) }
        return registry.emitToBuffer()
    }
}
