import MPCProtocols

/// What a data owner allows its data to be used for. Checked on every proposal before any data is read
/// for the job; a job is refused unless every rule allows it.
public struct NodePolicy: Sendable, Equatable {
    /// Nodes allowed to propose jobs to this node.
    public var coordinators: Set<String>
    /// Rules per dataset. A dataset without a rule is not exposed to any job.
    public var datasets: [String: DatasetPolicy]
    /// The smallest Paillier modulus this node takes part with, in any role (`min_paillier_bits`, default
    /// 2048; 1024 only for tests). Checked on the spec and again on the key the arbiter sends.
    public var minimumPaillierBits: Int
    public static let defaultMinimumPaillierBits = 2048
    /// The querier's side of list lookups: the holders' lists it keeps tables of.
    public var lookups: LookupSubscriptions
    /// The most buckets a bucketed PSI may use at this node (`max_buckets`, default 4,096): a peer
    /// proposing more is refused before any element is read (Protocols/psi-buckets.md).
    public var maximumBuckets = 4096
    /// How many times a PSI job or a set operation in buckets resumes after a dropped link before it fails (`max_resumes`, default 3).
    /// Each resume is audited; a peer that breaks a link mid-bucket can rerun that bucket at most this often.
    public var maximumResumes = 3
    /// The rounds a PSI of this node may run (`psi_protocols`, default both): a bank can refuse the
    /// semi-honest KKRT OPRF (Protocols/psi-oprf.md) and keep ECDH only.
    public var psiProtocols: Set<PSIProtocol> = Set(PSIProtocol.allCases)
    /// The most worker processes a PSI job may hand this node's buckets to (`max_workers`, default 16);
    /// a job asking for more, or for any when the node has no `workers:` configured, is refused.
    public var maximumWorkers = 16
    /// The peers whose workers this node's own workers can reach (`workers.peers` in its configuration;
    /// empty when it has no `workers:`): a job with workers runs only with such a peer. Not policy, but
    /// checked with it, before any data is read.
    public var workerPeers: Set<String> = []

    public init(coordinators: Set<String> = [], datasets: [String: DatasetPolicy] = [:],
                minimumPaillierBits: Int = NodePolicy.defaultMinimumPaillierBits, lookups: LookupSubscriptions = .init()) {
        self.coordinators = coordinators
        self.datasets = datasets
        self.minimumPaillierBits = minimumPaillierBits
        self.lookups = lookups
    }

    init(_ raw: RawPolicy, path: String) throws {
        coordinators = Set(raw.coordinators ?? [])
        minimumPaillierBits = raw.min_paillier_bits ?? Self.defaultMinimumPaillierBits
        guard (1024...8192).contains(minimumPaillierBits) else {
            throw ConfigurationError.invalid(path: path, detail: "policy.min_paillier_bits must lie in 1024…8192 (2048 or more in production)")
        }
        lookups = try LookupSubscriptions(raw.lookups, path: path)
        maximumBuckets = raw.max_buckets ?? 4096
        guard (1...65_536).contains(maximumBuckets) else {
            throw ConfigurationError.invalid(path: path, detail: "policy.max_buckets must lie in 1…65536")
        }
        maximumWorkers = raw.max_workers ?? 16
        guard (1...256).contains(maximumWorkers) else {
            throw ConfigurationError.invalid(path: path, detail: "policy.max_workers must lie in 1…256")
        }
        maximumResumes = raw.max_resumes ?? 3
        guard (0...100).contains(maximumResumes) else {
            throw ConfigurationError.invalid(path: path, detail: "policy.max_resumes must lie in 0…100")
        }
        if let names = raw.psi_protocols {
            psiProtocols = []
            for name in names {
                guard let p = PSIProtocol(rawValue: name) else {
                    throw ConfigurationError.invalid(path: path, detail: "policy.psi_protocols: unknown PSI protocol '\(name)' (known: \(PSIProtocol.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                psiProtocols.insert(p)
            }
        }
        var datasets: [String: DatasetPolicy] = [:]
        for (name, rule) in raw.datasets ?? [:] {
            var protocols = Set<JobProtocolUse>()
            for p in rule.protocols ?? [] {
                guard let use = JobProtocolUse(rawValue: p) else {
                    throw ConfigurationError.invalid(path: path, detail: "policy.datasets.\(name).protocols: unknown protocol '\(p)' (known: \(JobProtocolUse.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                protocols.insert(use)
            }
            let minimum = rule.min_set_size ?? DatasetPolicy.defaultMinimumSetSize
            guard minimum >= 1 else {
                throw ConfigurationError.invalid(path: path, detail: "policy.datasets.\(name).min_set_size must be at least 1")
            }
            if let m = rule.max_peer_set_size, m < minimum {
                throw ConfigurationError.invalid(path: path, detail: "policy.datasets.\(name).max_peer_set_size (\(m)) is below its min_set_size (\(minimum))")
            }
            if let r = rule.max_peer_set_ratio, !(r.isFinite && r > 0) {
                throw ConfigurationError.invalid(path: path, detail: "policy.datasets.\(name).max_peer_set_ratio must be a positive number")
            }
            if let share = rule.min_sum_threshold_share, !(share.isFinite && share >= 0.5 && share < 1) {
                throw ConfigurationError.invalid(path: path, detail: "policy.datasets.\(name).min_sum_threshold_share must lie in [0.5, 1): below a majority a lying server needs no help to unmask a client")
            }
            if let m = rule.min_sum_parties, m < 3 {
                throw ConfigurationError.invalid(path: path, detail: "policy.datasets.\(name).min_sum_parties must be at least 3: a sum of two inputs tells each contributor the other's")
            }
            if let e = rule.sum_noise_epsilon, !(e.isFinite && e > 0 && e <= 10) {
                throw ConfigurationError.invalid(path: path, detail: "policy.datasets.\(name).sum_noise_epsilon must lie in (0, 10]")
            }
            if let b = rule.sum_value_bound, !(b.isFinite && b > 0 && b < 1e15) {
                throw ConfigurationError.invalid(path: path, detail: "policy.datasets.\(name).sum_value_bound must be a positive amount")
            }
            if (rule.sum_noise_epsilon == nil) != (rule.sum_value_bound == nil) {
                throw ConfigurationError.invalid(path: path, detail: "policy.datasets.\(name): sum_noise_epsilon and sum_value_bound go together (the noise is scaled to one record's largest value)")
            }
            if let d = rule.sum_epsilon_per_day {
                guard let e = rule.sum_noise_epsilon, d.isFinite, d >= e else {
                    throw ConfigurationError.invalid(path: path, detail: "policy.datasets.\(name).sum_epsilon_per_day needs sum_noise_epsilon and must be at least it")
                }
            }
            if let r = rule.min_batch_rows_per_feature, !(1...1000).contains(r) {
                throw ConfigurationError.invalid(path: path, detail: "policy.datasets.\(name).min_batch_rows_per_feature must lie in 1…1000")
            }
            if let n = rule.residual_noise, !(n.isFinite && n >= 0 && n <= 10) {
                throw ConfigurationError.invalid(path: path, detail: "policy.datasets.\(name).residual_noise must lie in [0, 10]")
            }
            if let h = rule.max_holdout, !(h.isFinite && h >= 0 && h < 0.9) {
                throw ConfigurationError.invalid(path: path, detail: "policy.datasets.\(name).max_holdout must lie in [0, 0.9)")
            }
            for (key, value) in [("max_jobs_per_day", rule.max_jobs_per_day), ("max_coordinators_per_day", rule.max_coordinators_per_day),
                                 ("max_jobs_per_peer_per_input", rule.max_jobs_per_peer_per_input)] {
                if let v = value, v < 1 { throw ConfigurationError.invalid(path: path, detail: "policy.datasets.\(name).\(key) must be at least 1") }
            }
            datasets[name] = DatasetPolicy(columns: Set(rule.columns ?? []), protocols: protocols,
                                           resultRecipients: Set(rule.result_recipients ?? []),
                                           minimumSetSize: minimum,
                                           minimumCellRecords: rule.min_cell_records ?? DatasetPolicy.defaultMinimumCellRecords,
                                           minimumCellParties: rule.min_cell_parties ?? DatasetPolicy.defaultMinimumCellParties,
                                           minimumIntersection: rule.min_intersection ?? DatasetPolicy.defaultMinimumIntersection,
                                           maximumPeerSetSize: rule.max_peer_set_size, maximumPeerSetRatio: rule.max_peer_set_ratio,
                                           minimumSumThresholdShare: rule.min_sum_threshold_share ?? DatasetPolicy.defaultMinimumSumThresholdShare,
                                           minimumSumParties: rule.min_sum_parties ?? DatasetPolicy.defaultMinimumSumParties,
                                           sumNoise: rule.sum_noise_epsilon.map { SumNoise(epsilon: $0, valueBound: rule.sum_value_bound!, epsilonPerDay: rule.sum_epsilon_per_day) },
                                           minimumBatchRowsPerFeature: rule.min_batch_rows_per_feature ?? DatasetPolicy.defaultMinimumBatchRowsPerFeature,
                                           residualNoise: rule.residual_noise ?? 0,
                                           maximumHoldout: rule.max_holdout ?? DatasetPolicy.defaultMaximumHoldout,
                                           maximumJobsPerDay: rule.max_jobs_per_day, maximumCoordinatorsPerDay: rule.max_coordinators_per_day,
                                           maximumJobsPerPeerPerInput: rule.max_jobs_per_peer_per_input,
                                           lookupList: try rule.lookup_lists.map { try LookupListPolicy($0, dataset: name, columns: Set(rule.columns ?? []), path: path) })
        }
        self.datasets = datasets
    }
}

public struct DatasetPolicy: Sendable, Equatable {
    /// A one-element PSI is a membership probe; ten is the least that hides single records at all.
    public static let defaultMinimumSetSize = 10

    /// Columns that may serve as a job's input.
    public var columns: Set<String>
    public var protocols: Set<JobProtocolUse>
    /// Nodes that may receive a result computed on this dataset.
    public var resultRecipients: Set<String>
    /// The least number of distinct identifiers this dataset must contribute (the policy refuses
    /// jobs on smaller inputs, which would reveal too much about each member).
    public var minimumSetSize: Int

    /// Secure sums: the least number of records, and of parties, behind every reported cell; a job must
    /// ask the server to suppress smaller cells at least this strictly.
    public var minimumCellRecords: Int
    public var minimumCellParties: Int
    public static let defaultMinimumCellRecords = 10
    public static let defaultMinimumCellParties = 2

    /// Set operations: nothing computed over an intersection smaller than this is released.
    public var minimumIntersection: Int
    public static let defaultMinimumIntersection = 10

    /// The largest peer set a job on this dataset may process (`max_peer_set_size`), and the largest
    /// ratio of a peer's set to this dataset's own input (`max_peer_set_ratio`): a peer that offers every
    /// number of a country's range would otherwise receive this dataset's whole column as "the intersection".
    public var maximumPeerSetSize: Int?
    public var maximumPeerSetRatio: Double?
    /// What any node processes at most, whatever its policy says (a guard against absurd announced sizes).
    public static let peerSetSizeCeiling = 1 << 28

    /// The peer set sizes a job on this dataset accepts, given this node's own input size. The minimum is
    /// this dataset's own `min_set_size`: each participant applies its minimum to every input of the job.
    public func peerSetSizes(ownSize: Int) -> ClosedRange<Int> {
        var upper = min(maximumPeerSetSize ?? Self.peerSetSizeCeiling, Self.peerSetSizeCeiling)
        if let ratio = maximumPeerSetRatio {
            upper = min(upper, Int(min(Double(Self.peerSetSizeCeiling), (Double(max(ownSize, 1)) * ratio).rounded(.down))))
        }
        return minimumSetSize...max(minimumSetSize, upper)
    }

    /// Secure aggregation (secure sums, horizontal training): the least threshold a job may set, as a share
    /// of its clients: t ≥ ⌊share·n⌋ + 1 (`min_sum_threshold_share`, default 2/3, never below a majority).
    /// Each client checks it itself; the coordinator's spec cannot lower it.
    public var minimumSumThresholdShare: Double
    public static let defaultMinimumSumThresholdShare = 2.0 / 3.0

    /// Secure sums: the noise this node adds to its own measures, and its privacy budget (nil: none).
    public var sumNoise: SumNoise?

    /// Why a secure aggregation of `clients` with `threshold` is refused on this dataset, or nil.
    public func sumThresholdRefusal(threshold: Int, clients: Int) -> String? {
        let floor = sumThresholdFloor(clients: clients)
        guard threshold < floor else { return nil }
        return "threshold \(threshold) of \(clients) clients is below this dataset's floor \(floor) (min_sum_threshold_share): with fewer, a server could unmask a client"
    }

    /// Secure sums: the least number of clients whose inputs a sum may combine (`min_sum_parties`, default
    /// and floor 3). Each client refuses a job with fewer parties and releases no unmasking share when
    /// fewer survive, whatever the spec's threshold.
    public var minimumSumParties: Int
    public static let defaultMinimumSumParties = 3

    /// The least threshold this dataset's policy accepts for a secure aggregation over `clients`.
    public func sumThresholdFloor(clients n: Int) -> Int {
        // The epsilon keeps 2/3·3 at 2 (not 1.999…): the default floor equals ⌊2n/3⌋ + 1 exactly.
        min(n, max(2, Int((minimumSumThresholdShare * Double(n) + 1e-9).rounded(.down)) + 1))
    }

    /// Vertical training: the least batch size per feature of this party (plus one), the noise the guest
    /// adds to the residuals it sends, and the largest share of rows held out for evaluation (whose
    /// partial margins reach the guest in the clear).
    public var minimumBatchRowsPerFeature: Int
    public static let defaultMinimumBatchRowsPerFeature = 8
    public var residualNoise: Double
    public var maximumHoldout: Double
    public static let defaultMaximumHoldout = 0.3

    /// Query budgets over the last 24 hours: jobs that may use this dataset (`max_jobs_per_day`), and
    /// distinct coordinators that may propose them (`max_coordinators_per_day`); none unless set. Repeated
    /// queries are how differences of results single out records.
    public var maximumJobsPerDay: Int?
    public var maximumCoordinatorsPerDay: Int?
    /// Set comparisons (PSI, set operations) this dataset answers each peer on the same input, until it is
    /// imported again (`max_jobs_per_peer_per_input`; none unless set).
    public var maximumJobsPerPeerPerInput: Int?
    /// The dataset offered as a lookup list (`lookup_lists`), or nil.
    public var lookupList: LookupListPolicy?

    public init(columns: Set<String>, protocols: Set<JobProtocolUse>, resultRecipients: Set<String>, minimumSetSize: Int,
                minimumCellRecords: Int = DatasetPolicy.defaultMinimumCellRecords,
                minimumCellParties: Int = DatasetPolicy.defaultMinimumCellParties,
                minimumIntersection: Int = DatasetPolicy.defaultMinimumIntersection,
                maximumPeerSetSize: Int? = nil, maximumPeerSetRatio: Double? = nil,
                minimumSumThresholdShare: Double = DatasetPolicy.defaultMinimumSumThresholdShare,
                minimumSumParties: Int = DatasetPolicy.defaultMinimumSumParties, sumNoise: SumNoise? = nil,
                minimumBatchRowsPerFeature: Int = DatasetPolicy.defaultMinimumBatchRowsPerFeature,
                residualNoise: Double = 0, maximumHoldout: Double = DatasetPolicy.defaultMaximumHoldout,
                maximumJobsPerDay: Int? = nil, maximumCoordinatorsPerDay: Int? = nil, maximumJobsPerPeerPerInput: Int? = nil,
                lookupList: LookupListPolicy? = nil) {
        self.lookupList = lookupList
        self.maximumJobsPerPeerPerInput = maximumJobsPerPeerPerInput
        self.maximumJobsPerDay = maximumJobsPerDay
        self.maximumCoordinatorsPerDay = maximumCoordinatorsPerDay
        self.minimumSumThresholdShare = minimumSumThresholdShare
        self.minimumSumParties = minimumSumParties
        self.sumNoise = sumNoise
        self.minimumBatchRowsPerFeature = minimumBatchRowsPerFeature
        self.residualNoise = residualNoise
        self.maximumHoldout = maximumHoldout
        self.minimumIntersection = minimumIntersection
        self.maximumPeerSetSize = maximumPeerSetSize
        self.maximumPeerSetRatio = maximumPeerSetRatio
        self.columns = columns
        self.protocols = protocols
        self.resultRecipients = resultRecipients
        self.minimumSetSize = minimumSetSize
        self.minimumCellRecords = minimumCellRecords
        self.minimumCellParties = minimumCellParties
    }
}
