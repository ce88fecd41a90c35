import MPCCrypto
import MPCProtocols
import MPCWire

/// The multi-party set operations (Protocols/multi-party-sets.md). All share the blinding ring, the
/// sealed mix and the aggregator; they differ in what the aggregator delivers and reports.
public enum SetOperation: String, CaseIterable, Sendable {
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
    public var sumsValues: Bool { self == .unionSum || self == .intersectionStats }

    /// Whether anything computed over the intersection is released (the policies' minimum applies).
    public var releasesIntersection: Bool { self == .mpsi || self == .intersectionStats }
}

/// One set operation as a job kind: n ≥ 2 parties, a mixer (a party, or a node that holds no data), and
/// an aggregator that is not a party. With a value column (union-sum, intersection-stats) the job is the aggregator's, which goes on
/// without parties lost in the final secure sum.
struct SetOperationKind: JobKind {
    let operation: SetOperation
    init(_ operation: SetOperation) { self.operation = operation }

    var name: String { operation.rawValue }

    func describes(_ spec: Mpcnode_V1_JobSpec) -> Bool {
        guard spec.protocol == name, case .sets? = spec.kind else { return false }
        return true
    }

    func validateNames(_ spec: Mpcnode_V1_JobSpec) throws {
        try PeerSuppliedName.nodeID.validate(spec.sets.aggregator, field: "aggregator")
        if !spec.sets.mixer.isEmpty { try PeerSuppliedName.nodeID.validate(spec.sets.mixer, field: "mixer") }
        if !spec.sets.valueColumn.isEmpty { try PeerSuppliedName.column.validate(spec.sets.valueColumn, field: "value column") }
    }

    func checkShape(_ spec: Mpcnode_V1_JobSpec) throws {
        try checkCommonShape(spec)
        let owners = spec.parties.map(\.nodeID), s = spec.sets
        guard !s.aggregator.isEmpty, !owners.contains(s.aggregator), s.aggregator != spec.coordinator else {
            throw JobError.malformedSpec("the aggregator must be named and be neither a party nor the coordinator")
        }
        guard !s.mixer.isEmpty, s.mixer != s.aggregator, s.mixer != spec.coordinator else {
            throw JobError.malformedSpec("the mixer must be named and be neither the aggregator nor the coordinator")
        }
        guard BlindingGroup(rawValue: spec.group) != nil else { throw JobError.malformedSpec("unknown group \(JobError.shown(spec.group))") }
        switch operation {
        case .mpsi, .watchlist:
            guard spec.deliverTo.allSatisfy(owners.contains) else { throw JobError.malformedSpec("\(name) delivers identifiers to parties only") }
        case .unionSum, .intersectionStats:
            guard spec.deliverTo.allSatisfy({ $0 == s.aggregator }) else { throw JobError.malformedSpec("\(name) delivers its report to the aggregator only") }
            guard !s.valueColumn.isEmpty else { throw JobError.malformedSpec("\(name) names no value column") }
        }
        guard (1...UInt32(owners.count)).contains(s.atLeast) else { throw JobError.malformedSpec("at-least \(s.atLeast) must lie in 1…\(owners.count)") }
        guard s.decimals <= 9 else { throw JobError.malformedSpec("decimals \(s.decimals) must lie in 0…9") }
        guard s.buckets <= 65_536, s.bucketed || s.buckets == 0 else {
            throw JobError.malformedSpec("\(s.buckets) buckets\(s.bucketed ? " (at most 65536)" : " for a set operation in one pass")")
        }
    }

    func prepare(_ submission: JobSubmission, into spec: inout Mpcnode_V1_JobSpec, context: SubmissionContext) throws {
        let owners = submission.parties.map(\.nodeID)
        guard owners.count >= 2 else { throw JobError.invalidSubmission("\(name) needs at least two --party options") }
        guard let options = submission.sets, !options.aggregator.isEmpty else {
            throw JobError.invalidSubmission("\(name) needs an --aggregator: the node (not a party) that counts and receives the report")
        }
        guard !owners.contains(options.aggregator), options.aggregator != context.nodeID else {
            throw JobError.invalidSubmission("the aggregator \(options.aggregator) must be neither a party nor the coordinator")
        }
        try context.requireKnown(options.aggregator)
        let mixer = options.mixer ?? owners[0]
        guard mixer != options.aggregator, mixer != context.nodeID else {
            throw JobError.invalidSubmission("the mixer \(mixer) must be a party or a node that holds no data, neither the aggregator nor the coordinator")
        }
        if !owners.contains(mixer) { try context.requireKnown(mixer) }
        spec.group = try PSIKind.group(named: submission.group).rawValue
        for p in submission.parties where p.column.isEmpty {
            throw JobError.invalidSubmission("--party \(p.nodeID):\(p.dataset) names no identifier column (node:dataset.column)")
        }
        switch operation {
        case .mpsi, .watchlist:
            for r in submission.deliverTo where !owners.contains(r) {
                throw JobError.invalidSubmission("recipient \(r) is not a party (the report goes to the aggregator; --deliver-to names parties that receive their own identifiers)")
            }
        case .unionSum, .intersectionStats:
            guard submission.deliverTo.allSatisfy({ $0 == options.aggregator }) else {
                throw JobError.invalidSubmission("\(name) delivers its report to the aggregator only")
            }
            guard let v = options.valueColumn, !v.isEmpty else { throw JobError.invalidSubmission("\(name) needs --value COLUMN (the decimal column to sum)") }
        }
        guard options.atLeast >= 1, options.atLeast <= owners.count else {
            throw JobError.invalidSubmission("--at-least \(options.atLeast) must lie in 1…\(owners.count)")
        }
        guard (0...9).contains(options.decimals) else { throw JobError.invalidSubmission("--decimals must lie in 0…9") }
        if let t = options.reportingThreshold, LocalAggregate.parseFixedPoint(t, decimals: options.decimals) == nil {
            throw JobError.invalidSubmission("--reporting-threshold '\(t)' is not a decimal with at most \(options.decimals) decimals")
        }
        let edges = try options.bins.map { b -> Int64 in
            guard let v = LocalAggregate.parseFixedPoint(b, decimals: options.decimals) else {
                throw JobError.invalidSubmission("bin edge '\(b)' is not a decimal with at most \(options.decimals) decimals")
            }
            return v
        }
        guard zip(edges, edges.dropFirst()).allSatisfy({ $0 < $1 }) else { throw JobError.invalidSubmission("--bins must be ascending") }
        let bucketed = options.bucketed == true || submission.buckets != nil
        if let b = submission.buckets, !(1...65_536).contains(b) {
            throw JobError.invalidSubmission("--buckets must lie in 1…65536 (or be auto), got \(b)")
        }
        spec.sets = .with {
            $0.bucketed = bucketed
            $0.buckets = UInt32(submission.buckets ?? 0)
            $0.aggregator = options.aggregator
            $0.mixer = mixer
            $0.atLeast = UInt32(options.atLeast)
            $0.minIntersection = UInt64(max(0, options.minIntersection))
            $0.valueColumn = options.valueColumn ?? ""
            $0.decimals = UInt32(options.decimals)
            $0.reportingThreshold = options.reportingThreshold ?? ""
            $0.histogramBins = options.bins
            $0.minCellParties = UInt32(max(1, options.minCellParties))
        }
    }

    func participants(of spec: Mpcnode_V1_JobSpec) -> [String] {
        var nodes = spec.parties.map(\.nodeID)
        if !nodes.contains(spec.sets.aggregator) { nodes.append(spec.sets.aggregator) }
        if !spec.sets.mixer.isEmpty, !nodes.contains(spec.sets.mixer) { nodes.append(spec.sets.mixer) }
        return nodes
    }

    func outcomeOwner(of spec: Mpcnode_V1_JobSpec) -> String? { operation.sumsValues ? spec.sets.aggregator : nil }

    func roleWithoutData(of node: String, in spec: Mpcnode_V1_JobSpec) -> String? {
        guard !spec.parties.contains(where: { $0.nodeID == node }) else { return nil }
        if spec.sets.aggregator == node { return "aggregator" }
        return spec.sets.mixer == node ? "mixer" : nil
    }

    func policyUse(_ spec: Mpcnode_V1_JobSpec) -> JobProtocolUse {
        switch operation {
        case .mpsi: return spec.cardinalityOnly ? .mpsiCardinality : .mpsi
        case .watchlist: return .watchlist
        case .unionSum: return .unionSum
        case .intersectionStats: return .intersectionStats
        }
    }

    func checkPolicy(_ spec: Mpcnode_V1_JobSpec, mine: Mpcnode_V1_PartyInput, rule: DatasetPolicy, policy: NodePolicy,
                     nodeID: String) -> PolicyDecision {
        if case .refused(let r) = identifierColumnAllowed(mine, rule: rule) { return .refused(reason: r) }
        if operation.sumsValues && !rule.columns.contains(spec.sets.valueColumn) {
            return .refused(reason: "column '\(spec.sets.valueColumn)' of dataset '\(mine.dataset)' may not be summed")
        }
        if operation.releasesIntersection && spec.sets.minIntersection < UInt64(rule.minimumIntersection) {
            return .refused(reason: "nothing over an intersection smaller than \(rule.minimumIntersection) may be released (the job asks \(spec.sets.minIntersection))")
        }
        if operation == .unionSum && spec.sets.minCellParties < UInt32(rule.minimumCellParties) {
            return .refused(reason: "per-identifier totals held by fewer than \(rule.minimumCellParties) parties must be suppressed (the job asks \(spec.sets.minCellParties))")
        }
        // The union's secure sum runs with the default threshold: this dataset's floor applies to it too.
        let owners = spec.parties.count
        if operation.sumsValues,
           let refusal = rule.sumThresholdRefusal(threshold: SecureAggregationParameters.defaultThreshold(clients: owners), clients: owners) {
            return .refused(reason: refusal)
        }
        if Int(spec.sets.buckets) > policy.maximumBuckets {
            return .refused(reason: "\(spec.sets.buckets) buckets asked for; this node's policy allows at most \(policy.maximumBuckets) (max_buckets)")
        }
        if !rule.resultRecipients.contains(spec.sets.aggregator) {
            return .refused(reason: "\(spec.sets.aggregator) may not receive results computed on dataset '\(mine.dataset)'")
        }
        return .allowed
    }

    func inputSize(_ spec: Mpcnode_V1_JobSpec, mine: Mpcnode_V1_PartyInput, catalog: DatasetCatalog) throws -> Int? {
        if operation.sumsValues, try catalog.distinctCount(dataset: mine.dataset, column: spec.sets.valueColumn) == nil {
            return nil  // the value column does not exist
        }
        return try catalog.distinctCount(dataset: mine.dataset, column: mine.column)
    }

    func missingInput(_ spec: Mpcnode_V1_JobSpec, mine: Mpcnode_V1_PartyInput) -> String {
        operation.sumsValues
            ? "dataset '\(mine.dataset)' or one of its columns '\(mine.column)', '\(spec.sets.valueColumn)' does not exist on this node"
            : "dataset '\(mine.dataset)' or its column '\(mine.column)' does not exist on this node"
    }

    func deliveries(_ spec: Mpcnode_V1_JobSpec) -> [NodeID: SetDeliveryKind] {
        var out: [NodeID: SetDeliveryKind] = [:]
        let owners = spec.parties.map(\.nodeID)
        switch operation {
        case .mpsi:
            for r in spec.deliverTo where owners.contains(r) { out[r] = spec.cardinalityOnly ? .cardinality : .intersection }
        case .watchlist:
            for r in spec.deliverTo where owners.contains(r) { out[r] = .onOthersLists }
        case .unionSum, .intersectionStats:
            for o in owners { out[o] = .union }
        }
        return out
    }

    /// - Parameter maximumBuckets: this node's policy's `max_buckets`: a bucketed job is refused beyond it
    ///   by every role itself, whatever the count the sizes give.
    func configuration(_ spec: Mpcnode_V1_JobSpec, maximumBuckets: Int) throws -> SetOperationConfiguration {
        guard let group = BlindingGroup(rawValue: spec.group) else {
            throw JobError.fault("not a set operation over a known group: \(spec.protocol) over \(JobError.shown(spec.group))")
        }
        var config = SetOperationConfiguration(jobID: spec.jobID, group: group, owners: spec.parties.map(\.nodeID), mixer: spec.sets.mixer,
                                               aggregator: spec.sets.aggregator, deliveries: deliveries(spec))
        if spec.sets.bucketed {
            config.bucketing = SetBucketing(requested: spec.sets.buckets > 0 ? Int(spec.sets.buckets) : nil, maximum: maximumBuckets)
        }
        return config
    }

    func run(_ context: RoleContext) async throws -> RoleCompletion {
        let spec = context.spec, me = context.nodeID
        if spec.sets.aggregator == me { return try await runAggregator(context) }
        if spec.sets.mixer == me && !spec.parties.contains(where: { $0.nodeID == me }) { return try await runMixer(context) }
        return try await runOwner(context)
    }
}
