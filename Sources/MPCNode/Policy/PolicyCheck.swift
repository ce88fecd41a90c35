import MPCWire

/// The decision of a participant's policy on a proposed job.
public enum PolicyDecision: Equatable, Sendable {
    case allowed
    case refused(reason: String)
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
        guard policy.coordinators.contains(proposer) else {
            return .refused(reason: "\(proposer) is not a coordinator this node accepts jobs from")
        }
        guard spec.coordinator == proposer else {
            return .refused(reason: "the job names \(spec.coordinator) as coordinator but was sent by \(proposer)")
        }
        guard let mine = spec.parties.first(where: { $0.nodeID == nodeID }) else {
            if spec.protocol == "secure-sum" && spec.deliverTo == [nodeID] {
                // The aggregation server holds no data for the job: it only has to accept the coordinator.
                return .allowed
            }
            if SetJobKind(rawValue: spec.protocol) != nil && spec.sets.aggregator == nodeID {
                // Likewise the aggregator of a set operation.
                return .allowed
            }
            if spec.protocol == "train-lr" && spec.training.aggregator == nodeID {
                return .allowed
            }
            return .refused(reason: "this node is not a party of the job")
        }
        guard let rule = policy.datasets[mine.dataset] else {
            return .refused(reason: "dataset '\(mine.dataset)' is not exposed to any job by this node's policy")
        }
        let use: JobProtocolUse
        switch spec.protocol {
        case "psi": use = spec.cardinalityOnly ? .psiCardinality : .psi
        case "secure-sum": use = .secureSum
        case "train-lr": use = .trainLR
        case "predict": use = .predict
        default:
            guard let kind = SetJobKind(rawValue: spec.protocol) else {
                return .refused(reason: "protocol '\(spec.protocol)' is not supported")
            }
            use = kind.policyUse(spec)
        }
        guard rule.protocols.contains(use) else {
            return .refused(reason: "dataset '\(mine.dataset)' is not exposed to \(use.rawValue)")
        }
        if use == .secureSum {
            let aggregate = LocalAggregate(spec: spec.aggregate, parties: spec.parties.count)
            for column in aggregate.columns.sorted() where !rule.columns.contains(column) {
                return .refused(reason: "column '\(column)' of dataset '\(mine.dataset)' may not be aggregated")
            }
            guard spec.aggregate.minCellRecords >= UInt64(rule.minimumCellRecords) else {
                return .refused(reason: "cells with fewer than \(rule.minimumCellRecords) records must be suppressed (the job asks \(spec.aggregate.minCellRecords))")
            }
            guard spec.aggregate.minCellParties >= UInt32(rule.minimumCellParties) else {
                return .refused(reason: "cells with fewer than \(rule.minimumCellParties) parties must be suppressed (the job asks \(spec.aggregate.minCellParties))")
            }
        } else if use == .trainLR || use == .predict {
            var used = spec.training.features + [spec.training.label]
            if spec.training.mode == "vertical" {
                // Vertical: this party's own features, the label at the guest, and the identifier column for the alignment.
                used = (spec.training.partyFeatures.first { $0.nodeID == nodeID }?.features ?? []) + [mine.column]
                if spec.parties.first?.nodeID == nodeID && use == .trainLR { used.append(spec.training.label) }
            }
            for column in used where !rule.columns.contains(column) {
                return .refused(reason: "column '\(column)' of dataset '\(mine.dataset)' may not be used for training")
            }
            if !spec.training.evalDataset.isEmpty && policy.datasets[spec.training.evalDataset]?.protocols.contains(.trainLR) != true {
                return .refused(reason: "evaluation dataset '\(spec.training.evalDataset)' is not exposed to train-lr")
            }
            if use == .trainLR && !rule.resultRecipients.contains(spec.training.aggregator) {
                return .refused(reason: "\(spec.training.aggregator) may not receive a model trained on dataset '\(mine.dataset)'")
            }
        } else {
            guard rule.columns.contains(mine.column) else {
                return .refused(reason: "column '\(mine.column)' of dataset '\(mine.dataset)' may not be used")
            }
        }
        if let kind = SetJobKind(rawValue: spec.protocol) {
            if kind.sumsValues && !rule.columns.contains(spec.sets.valueColumn) {
                return .refused(reason: "column '\(spec.sets.valueColumn)' of dataset '\(mine.dataset)' may not be summed")
            }
            if kind.releasesIntersection(spec) && spec.sets.minIntersection < UInt64(rule.minimumIntersection) {
                return .refused(reason: "nothing over an intersection smaller than \(rule.minimumIntersection) may be released (the job asks \(spec.sets.minIntersection))")
            }
            if kind == .unionSum && spec.sets.minCellParties < UInt32(rule.minimumCellParties) {
                return .refused(reason: "per-identifier totals held by fewer than \(rule.minimumCellParties) parties must be suppressed (the job asks \(spec.sets.minCellParties))")
            }
            if !rule.resultRecipients.contains(spec.sets.aggregator) {
                return .refused(reason: "\(spec.sets.aggregator) may not receive results computed on dataset '\(mine.dataset)'")
            }
        }
        for recipient in spec.deliverTo where !rule.resultRecipients.contains(recipient) {
            return .refused(reason: "\(recipient) may not receive results computed on dataset '\(mine.dataset)'")
        }
        guard let inputSize = try inputSize() else {
            if let kind = SetJobKind(rawValue: spec.protocol), kind.sumsValues {
                return .refused(reason: "dataset '\(mine.dataset)' or one of its columns '\(mine.column)', '\(spec.sets.valueColumn)' does not exist on this node")
            }
            return .refused(reason: "dataset '\(mine.dataset)' or its column '\(mine.column)' does not exist on this node")
        }
        guard inputSize >= rule.minimumSetSize else {
            return .refused(reason: "input has \(inputSize) distinct identifiers, below the policy minimum of \(rule.minimumSetSize) for dataset '\(mine.dataset)'")
        }
        return .allowed
    }
}
