import Foundation
import MPCProtocols

/// The policy a node enforces, in its configuration file's own words (`policy:` keys) with every default
/// filled in: what the operator's read-only view shows (`GET /v1/policy`, the console), so that what a
/// job is checked against can be read without knowing the defaults.
public struct PolicyInForce: Encodable, Sendable {
    let coordinators: [String]
    let min_paillier_bits: Int
    let max_buckets: Int
    let max_resumes: Int
    let max_workers: Int
    let psi_protocols: [String]
    let datasets: [String: Dataset]
    let lookups: Lookups

    struct Dataset: Encodable, Sendable {
        let columns: [String]
        let protocols: [String]
        let result_recipients: [String]
        let min_set_size: Int
        let min_cell_records: Int
        let min_cell_parties: Int
        let min_intersection: Int
        let max_peer_set_size: Int?
        let max_peer_set_ratio: Double?
        let min_sum_threshold_share: Double
        let min_sum_parties: Int
        let sum_noise_epsilon: Double?
        let sum_value_bound: Double?
        let sum_epsilon_per_day: Double?
        let min_batch_rows_per_feature: Int
        let residual_noise: Double
        let max_holdout: Double
        let max_jobs_per_day: Int?
        let max_coordinators_per_day: Int?
        let max_jobs_per_peer_per_input: Int?
        let lookup_lists: LookupList?
    }

    struct LookupList: Encodable, Sendable {
        let label_columns: [String]
        let queriers: [String]
        let max_lookups_per_second: Int
        let max_lookups_per_day: Int
        let disclosure: String
        let risk_column: String?
        let risk_levels: [String]
    }

    struct Lookups: Encodable, Sendable {
        let subscribe: [String]
        let sync_seconds: Int
        let timeout_ms: Int
    }

    public init(_ policy: NodePolicy) {
        coordinators = policy.coordinators.sorted()
        min_paillier_bits = policy.minimumPaillierBits
        max_buckets = policy.maximumBuckets
        max_resumes = policy.maximumResumes
        max_workers = policy.maximumWorkers
        psi_protocols = policy.psiProtocols.map(\.rawValue).sorted()
        datasets = policy.datasets.mapValues { d in
            Dataset(columns: d.columns.sorted(), protocols: d.protocols.map(\.rawValue).sorted(), result_recipients: d.resultRecipients.sorted(),
                    min_set_size: d.minimumSetSize, min_cell_records: d.minimumCellRecords, min_cell_parties: d.minimumCellParties,
                    min_intersection: d.minimumIntersection, max_peer_set_size: d.maximumPeerSetSize, max_peer_set_ratio: d.maximumPeerSetRatio,
                    min_sum_threshold_share: d.minimumSumThresholdShare, min_sum_parties: d.minimumSumParties,
                    sum_noise_epsilon: d.sumNoise?.epsilon, sum_value_bound: d.sumNoise?.valueBound, sum_epsilon_per_day: d.sumNoise?.epsilonPerDay,
                    min_batch_rows_per_feature: d.minimumBatchRowsPerFeature, residual_noise: d.residualNoise, max_holdout: d.maximumHoldout,
                    max_jobs_per_day: d.maximumJobsPerDay, max_coordinators_per_day: d.maximumCoordinatorsPerDay,
                    max_jobs_per_peer_per_input: d.maximumJobsPerPeerPerInput,
                    lookup_lists: d.lookupList.map { l in
                        LookupList(label_columns: l.labelColumns, queriers: l.queriers.sorted(), max_lookups_per_second: l.maximumPerSecond,
                                   max_lookups_per_day: l.maximumPerDay, disclosure: l.disclosure.rawValue, risk_column: l.riskColumn,
                                   risk_levels: l.riskLevels)
                    })
        }
        lookups = Lookups(subscribe: policy.lookups.subscriptions.map(\.description), sync_seconds: policy.lookups.syncSeconds,
                          timeout_ms: policy.lookups.timeoutMilliseconds)
    }
}
