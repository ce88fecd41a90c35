import MPCWire

/// The decision of a participant's policy on a proposed job.
public enum PolicyDecision: Equatable, Sendable {
    case allowed
    case refused(reason: String)
}

/// The rule of a node's policy that refused a job (a fixed set: the label of the refusals metric).
public enum PolicyRule: String, Sendable, CaseIterable {
    case coordinator, notAParty = "not_a_party", malformed, datasetNotExposed = "dataset_not_exposed"
    case protocolNotAllowed = "protocol_not_allowed", kindRule = "kind_rule", recipient, missingInput = "missing_input"
    case minimumSetSize = "minimum_set_size", differencing, queryBudget = "query_budget", peerComparisons = "peer_comparisons"
    case privacyBudget = "privacy_budget", duplicateJob = "duplicate_job"
}

/// Checks a job proposal against a node's policy. Pure: the caller supplies the facts it needs from
/// the store (the input's size), so the rules are testable on their own.
public struct PolicyCheck: Sendable {
    public let policy: NodePolicy
    public let nodeID: String

    public init(policy: NodePolicy, nodeID: String) {
        self.policy = policy
        self.nodeID = nodeID
    }

    /// - Parameters:
    ///   - proposer: the authenticated node that sent the proposal.
    ///   - inputSize: distinct identifiers in this node's input, or nil if the dataset or column does not
    ///     exist. Called only once every other rule has passed, so a refused job reads nothing.
    public func check(_ spec: Mpcnode_V1_JobSpec, proposer: String, inputSize: () throws -> Int?) rethrows -> PolicyDecision {
        try checkWithRule(spec, proposer: proposer, inputSize: inputSize).decision
    }

    /// `check`, with the rule that refused the job (nil when allowed).
    public func checkWithRule(_ spec: Mpcnode_V1_JobSpec, proposer: String, inputSize: () throws -> Int?) rethrows -> (decision: PolicyDecision, rule: PolicyRule?) {
        func refused(_ rule: PolicyRule, _ reason: String) -> (PolicyDecision, PolicyRule?) { (.refused(reason: reason), rule) }
        guard policy.coordinators.contains(proposer) else {
            return refused(.coordinator, "\(proposer) is not a coordinator this node accepts jobs from")
        }
        guard spec.coordinator == proposer else {
            return refused(.coordinator, "the job names \(spec.coordinator) as coordinator but was sent by \(proposer)")
        }
        let kind: any JobKind
        do {
            kind = try JobKinds.kind(of: spec)
            try kind.checkShape(spec)
        } catch { return refused(.malformed, "\(error)") }
        guard let mine = spec.parties.first(where: { $0.nodeID == nodeID }) else {
            // A server, aggregator or arbiter holds no data for the job: it only has to accept the coordinator.
            if kind.roleWithoutData(of: nodeID, in: spec) != nil { return (.allowed, nil) }
            return refused(.notAParty, "this node is not a party of the job")
        }
        guard let rule = policy.datasets[mine.dataset] else {
            return refused(.datasetNotExposed, "dataset '\(mine.dataset)' is not exposed to any job by this node's policy")
        }
        let use = kind.policyUse(spec)
        guard rule.protocols.contains(use) else {
            return refused(.protocolNotAllowed, "dataset '\(mine.dataset)' is not exposed to \(use.rawValue)")
        }
        if case .refused(let reason) = kind.checkPolicy(spec, mine: mine, rule: rule, policy: policy, nodeID: nodeID) {
            return refused(.kindRule, reason)
        }
        for recipient in spec.deliverTo where !rule.resultRecipients.contains(recipient) {
            return refused(.recipient, "\(recipient) may not receive results computed on dataset '\(mine.dataset)'")
        }
        guard let inputSize = try inputSize() else {
            return refused(.missingInput, kind.missingInput(spec, mine: mine))
        }
        guard inputSize >= rule.minimumSetSize else {
            return refused(.minimumSetSize, "input has \(inputSize) distinct identifiers, below the policy minimum of \(rule.minimumSetSize) for dataset '\(mine.dataset)'")
        }
        return (.allowed, nil)
    }
}
