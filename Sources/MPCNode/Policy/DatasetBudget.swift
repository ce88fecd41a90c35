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
