import Foundation
import GRDB
import MPCWire

/// A dataset's use over the last day at this node, against its policy's query budgets: the jobs this node
/// accepted on it (whatever became of them) and the coordinators that proposed them.
public struct DatasetBudget {
    public let nodeID: String
    public init(nodeID: String) { self.nodeID = nodeID }

    struct Use: Equatable {
        var jobs = 0
        var coordinators = Set<String>()
    }

    func use(of dataset: String, since: Date, _ db: Database) throws -> Use {
        var use = Use()
        let rows = try Row.fetchCursor(db, sql: "SELECT spec FROM job WHERE role = ? AND state != ? AND created_at >= ?",
                                       arguments: [JobRole.participant.rawValue, JobState.refused.rawValue, since])
        while let row = try rows.next() {
            guard let spec = try? Mpcnode_V1_JobSpec(serializedBytes: [UInt8](row["spec"] as Data)),
                  spec.parties.contains(where: { $0.nodeID == nodeID && $0.dataset == dataset }) else { continue }
            use.jobs += 1
            use.coordinators.insert(spec.coordinator)
        }
        return use
    }

    /// Why a set-comparing job (PSI, set operations) on `dataset` would answer one of its peers more often
    /// than `max_jobs_per_peer_per_input` on the same input (since the dataset was last imported), or nil.
    /// Differences of results on an unchanged input single out records (a peer's set changed by one
    /// identifier, a cardinality compared): only a new import of the data renews the peer's allowance.
    public func peerRefusal(_ spec: Mpcnode_V1_JobSpec, dataset: String, rule: DatasetPolicy, _ db: Database) throws -> String? {
        guard let limit = rule.maximumJobsPerPeerPerInput,
              let kind = try? JobKinds.kind(of: spec), JobProtocolUse.comparingSets.contains(kind.policyUse(spec)),
              let importedAt = try Date.fetchOne(db, sql: "SELECT imported_at FROM dataset WHERE name = ?", arguments: [dataset]) else { return nil }
        let peers = Set(spec.parties.map(\.nodeID)).subtracting([nodeID])
        var answered: [String: Int] = [:]
        let rows = try Row.fetchCursor(db, sql: "SELECT spec FROM job WHERE role = ? AND state != ? AND created_at >= ?",
                                       arguments: [JobRole.participant.rawValue, JobState.refused.rawValue, importedAt])
        while let row = try rows.next() {
            guard let earlier = try? Mpcnode_V1_JobSpec(serializedBytes: [UInt8](row["spec"] as Data)),
                  earlier.parties.contains(where: { $0.nodeID == nodeID && $0.dataset == dataset }),
                  let earlierKind = try? JobKinds.kind(of: earlier), JobProtocolUse.comparingSets.contains(earlierKind.policyUse(earlier)) else { continue }
            for p in earlier.parties where peers.contains(p.nodeID) { answered[p.nodeID, default: 0] += 1 }
        }
        guard let (peer, count) = answered.filter({ $0.value >= limit }).sorted(by: { $0.key < $1.key }).first else { return nil }
        return "dataset '\(dataset)' has answered \(peer) in \(count) set comparisons since it was last imported; its policy allows \(limit) per peer on the same input (max_jobs_per_peer_per_input): differences of results on an unchanged input single out records; try again after the dataset's next import"
    }

    /// Why a new job of `coordinator` on `dataset` is over budget, or nil.
    public func refusal(dataset: String, rule: DatasetPolicy, coordinator: String, now: Date = Date(), _ db: Database) throws -> String? {
        guard rule.maximumJobsPerDay != nil || rule.maximumCoordinatorsPerDay != nil else { return nil }
        let used = try use(of: dataset, since: now.addingTimeInterval(-86_400), db)
        if let limit = rule.maximumJobsPerDay, used.jobs >= limit {
            return "dataset '\(dataset)' was used by \(used.jobs) jobs in the last 24 hours, its budget (max_jobs_per_day \(limit)); try again later"
        }
        if let limit = rule.maximumCoordinatorsPerDay, !used.coordinators.contains(coordinator), used.coordinators.count >= limit {
            return "dataset '\(dataset)' was queried by \(used.coordinators.count) coordinators in the last 24 hours, its budget (max_coordinators_per_day \(limit))"
        }
        return nil
    }
}
