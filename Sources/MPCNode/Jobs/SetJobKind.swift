import MPCCrypto
import MPCProtocols
import MPCWire

/// The multi-party set operations a job can run (Protocols/multi-party-sets.md). All share the ring,
/// the sealed mix and the aggregator; they differ in what the aggregator delivers and reports.
public enum SetJobKind: String, CaseIterable, Sendable {
    /// n-party PSI: the intersection (or its size) to the parties in `deliver_to`; the report to the aggregator.
    case mpsi
    /// Black/grey lists: how many identifiers at least k parties hold; each party in `deliver_to` learns
    /// which of its own identifiers some other party holds.
    case watchlist
    /// Per-identifier totals of a value column over the union, by secure aggregation; the report to the aggregator.
    case unionSum = "union-sum"
    /// Count, sum, mean and histogram of per-identifier totals over the intersection; the report to the aggregator.
    case intersectionStats = "intersection-stats"

    /// Whether a secure sum of a value column follows the set phase.
    var sumsValues: Bool { self == .unionSum || self == .intersectionStats }

    /// Whether anything computed over the intersection is released (the policies' minimum applies).
    func releasesIntersection(_ spec: Mpcnode_V1_JobSpec) -> Bool {
        switch self {
        case .mpsi, .intersectionStats: return true
        case .watchlist, .unionSum: return false
        }
    }

    func deliveries(_ spec: Mpcnode_V1_JobSpec) -> [NodeID: SetDeliveryKind] {
        var out: [NodeID: SetDeliveryKind] = [:]
        let owners = spec.parties.map(\.nodeID)
        switch self {
        case .mpsi:
            for r in spec.deliverTo where owners.contains(r) { out[r] = spec.cardinalityOnly ? .cardinality : .intersection }
        case .watchlist:
            for r in spec.deliverTo where owners.contains(r) { out[r] = .onOthersLists }
        case .unionSum, .intersectionStats:
            for o in owners { out[o] = .union }
        }
        return out
    }

    /// The policy use a dataset must allow.
    func policyUse(_ spec: Mpcnode_V1_JobSpec) -> JobProtocolUse {
        switch self {
        case .mpsi: return spec.cardinalityOnly ? .mpsiCardinality : .mpsi
        case .watchlist: return .watchlist
        case .unionSum: return .unionSum
        case .intersectionStats: return .intersectionStats
        }
    }

    static func configuration(_ spec: Mpcnode_V1_JobSpec) throws -> SetOperationConfiguration {
        guard let kind = SetJobKind(rawValue: spec.protocol), let group = BlindingGroup(rawValue: spec.group) else {
            throw JobError.invalidSubmission("not a set operation over a known group: \(spec.protocol) over '\(spec.group)'")
        }
        return SetOperationConfiguration(jobID: spec.jobID, group: group, owners: spec.parties.map(\.nodeID), mixer: spec.sets.mixer,
                                         aggregator: spec.sets.aggregator, deliveries: kind.deliveries(spec))
    }
}
