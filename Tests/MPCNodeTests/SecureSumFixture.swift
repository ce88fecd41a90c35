import Foundation
import MPCNode

/// What the secure-sum tests share: a branch's policy for its "accounts" and a sum submitted and waited for.
enum SecureSumFixture {
    /// A branch's policy exposing `accounts` to secure sums for the regulator, with `settings` (YAML keys of
    /// the dataset rule, e.g. "min_cell_records: 3") added.
    static func policy(columns: [String], _ settings: [String]) -> String {
        """
        policy:
          coordinators: [coordinator]
          datasets:
            accounts:
              columns: [\(columns.joined(separator: ", "))]
              protocols: [secure-sum]
              result_recipients: [regulator]
        \(settings.map { "      " + $0 }.joined(separator: "\n"))
        """
    }

    /// Submits a secure sum of `measures` over `parties`' accounts to the regulator and waits for its end.
    static func sum(_ coordinator: NodeRuntime, parties: [String], groupBy: String? = nil, groups: [String] = [],
                    measures: [String] = ["sum:balance"], minCellRecords: Int = 3, minCellParties: Int = 2) async throws -> JobView {
        let id = try await coordinator.engine.submit(JobSubmission(
            protocolName: "secure-sum", parties: parties.map { .init(nodeID: $0, dataset: "accounts", column: "") },
            deliverTo: ["regulator"], cardinalityOnly: false, group: "",
            aggregate: .init(groupBy: groupBy, groups: groups, measures: measures, decimals: 2, minCellRecords: minCellRecords,
                             minCellParties: minCellParties)))
        return try await ConsortiumFixture.waitForFinal(coordinator, jobID: id)
    }
}
