import MPCLearning
import Foundation

/// The states a job passes through. `refused`, `succeeded` and `failed` are final.
public enum JobState: String, Codable, Sendable {
    case proposed, accepted, refused, running, succeeded, failed

    public var isFinal: Bool { self == .refused || self == .succeeded || self == .failed }
}

/// How this node takes part in a job.
public enum JobRole: String, Codable, Sendable {
    case coordinator, participant
}

/// A job as `mpcnode job status` shows it.
public struct JobView: Codable, Sendable {
    public var id: String
    public var protocolName: String
    public var role: JobRole
    public var state: JobState
    public var reason: String?
    public var coordinator: String
    public var parties: [PartyView]
    public var deliverTo: [String]
    public var cardinalityOnly: Bool
    public var group: String
    public var specHash: String
    public var createdAt: Date
    public var updatedAt: Date
    public var inputRows: Int?
    public var progressDone: Int?
    public var progressTotal: Int?
    /// This node's progress in full (unit, loss, elapsed, remaining).
    public var progress: ProgressSnapshot?
    public var bytesSent: Int?
    public var bytesReceived: Int?
    public var elapsedMs: Int?
}

/// One participant of a job, as its coordinator (or the participant itself) knows it.
public struct PartyView: Codable, Sendable {
    public var nodeID: String
    public var dataset: String
    public var column: String
    public var state: String?
    public var reason: String?
    public var inputRows: Int?
    public var bytesSent: Int?
    public var bytesReceived: Int?
    public var elapsedMs: Int?
    public var resultRows: Int?
    public var receivedResult: Bool?
    public var auditHash: String?
    public var progressDone: Int?
    public var progressTotal: Int?
    /// The party's last reported progress in full (unit, loss, elapsed, remaining).
    public var progress: ProgressSnapshot?
}

/// A job's result at a recipient.
public struct JobResultView: Codable, Sendable {
    public var jobID: String
    public var kind: String
    public var cardinality: Int
    /// The intersection (absent for cardinality-only results); at most `limit` entries.
    public var identifiers: [String]?
    /// Scores of a predict job, by identifier (same order as `identifiers`).
    public var values: [Double]?
    public var truncated: Bool
    public var createdAt: Date

    public init(jobID: String, kind: String, cardinality: Int, identifiers: [String]?, values: [Double]?, truncated: Bool, createdAt: Date) {
        self.jobID = jobID; self.kind = kind; self.cardinality = cardinality; self.identifiers = identifiers
        self.values = values; self.truncated = truncated; self.createdAt = createdAt
    }
}

/// What a coordinator's operator asks for.
public struct JobSubmission: Codable, Sendable {
    public struct Party: Codable, Sendable {
        public var nodeID: String
        public var dataset: String
        public var column: String
        public init(nodeID: String, dataset: String, column: String) {
            self.nodeID = nodeID; self.dataset = dataset; self.column = column
        }

        /// Parses `node:dataset.column` (or `node:dataset` for a secure sum, which names its columns in the aggregate).
        public init?(_ text: String) {
            guard let colon = text.firstIndex(of: ":") else { return nil }
            nodeID = String(text[..<colon])
            let rest = text[text.index(after: colon)...]
            if let dot = rest.firstIndex(of: ".") {
                dataset = String(rest[..<dot])
                column = String(rest[rest.index(after: dot)...])
                if column.isEmpty { return nil }
            } else {
                dataset = String(rest)
                column = ""
            }
            if nodeID.isEmpty || dataset.isEmpty { return nil }
        }
    }

    /// A secure sum's local aggregate (the same at every party).
    public struct Aggregate: Codable, Sendable {
        public var groupBy: String?
        public var groups: [String]
        /// "sum:column" or "count:column".
        public var measures: [String]
        public var decimals: Int
        public var minCellRecords: Int
        public var minCellParties: Int
        public init(groupBy: String?, groups: [String], measures: [String], decimals: Int, minCellRecords: Int, minCellParties: Int) {
            self.groupBy = groupBy; self.groups = groups; self.measures = measures; self.decimals = decimals
            self.minCellRecords = minCellRecords; self.minCellParties = minCellParties
        }
    }

    /// A multi-party set operation's roles and outputs (mpsi, watchlist, union-sum, intersection-stats).
    public struct SetOptions: Codable, Sendable {
        /// The node that sees the multiset of pseudonyms and receives the report (never a party).
        public var aggregator: String
        /// The party that shuffles the sealed pseudonyms (default: the first party).
        public var mixer: String?
        /// watchlist: count identifiers held by at least this many parties.
        public var atLeast: Int
        /// Release nothing computed over the intersection below this size.
        public var minIntersection: Int
        /// union-sum, intersection-stats: the decimal column summed per identifier.
        public var valueColumn: String?
        public var decimals: Int
        /// union-sum: list per-identifier totals at or above this (decimal text).
        public var reportingThreshold: String?
        /// intersection-stats: histogram bin lower edges (decimal text, ascending).
        public var bins: [String]
        /// A per-identifier total is listed only if at least this many parties hold the identifier.
        public var minCellParties: Int
        /// Run in buckets (Protocols/multi-party-sets.md "Buckets"): with `buckets` that many, without it
        /// one per 2^20 identifiers of all parties together. nil or false: the whole sets in one pass.
        public var bucketed: Bool?
        public init(aggregator: String, mixer: String? = nil, atLeast: Int = 2, minIntersection: Int = 10, valueColumn: String? = nil,
                    decimals: Int = 2, reportingThreshold: String? = nil, bins: [String] = [], minCellParties: Int = 2, bucketed: Bool? = nil) {
            self.aggregator = aggregator; self.mixer = mixer; self.atLeast = atLeast; self.minIntersection = minIntersection
            self.valueColumn = valueColumn; self.decimals = decimals; self.reportingThreshold = reportingThreshold
            self.bins = bins; self.minCellParties = minCellParties; self.bucketed = bucketed
        }
    }

    /// A training job's model, data and hyper-parameters (train-lr).
    public struct TrainingOptions: Codable, Sendable {
        public var mode: String
        public var aggregator: String
        public var features: [String]
        public var label: String
        public var parameters: TrainingParameters
        public var evalDataset: String?
        public var holdout: Double
        public var bins: Int
        /// vertical: each party's own feature columns (the first party, the guest, also holds the label).
        public var partyFeatures: [String: [String]]
        /// vertical: the arbiter's Paillier modulus bits.
        public var keyBits: Int
        /// predict: the vertical training job whose model scores the rows.
        public var modelJob: String?
        public init(mode: String = TrainingMode.horizontal.rawValue, aggregator: String, features: [String], label: String,
                    parameters: TrainingParameters = TrainingParameters(), evalDataset: String? = nil, holdout: Double = 0.2, bins: Int = 1000,
                    partyFeatures: [String: [String]] = [:], keyBits: Int = 2048) {
            self.mode = mode; self.aggregator = aggregator; self.features = features; self.label = label
            self.parameters = parameters; self.evalDataset = evalDataset; self.holdout = holdout; self.bins = bins
            self.partyFeatures = partyFeatures; self.keyBits = keyBits
        }

        /// Options of a predict job.
        public static func predict(model: String) -> TrainingOptions {
            var o = TrainingOptions(aggregator: "", features: [], label: "")
            o.modelJob = model
            return o
        }
    }

    public var protocolName: String
    public var parties: [Party]
    public var deliverTo: [String]
    public var cardinalityOnly: Bool
    public var group: String
    public var aggregate: Aggregate?
    public var threshold: Int?
    public var sets: SetOptions?
    public var training: TrainingOptions?
    /// psi, and set operations in buckets: the bucket count asked for (nil: chosen from the set sizes;
    /// Protocols/psi-buckets.md, Protocols/multi-party-sets.md "Buckets").
    public var buckets: Int?
    /// psi: the round run per bucket, "ecdh" (nil: the default) or "kkrt" (Protocols/psi-oprf.md).
    public var psiProtocol: String?
    /// psi: worker processes each bank hands its buckets to (nil or 1: none; Docs/decisions/0009-sharded-psi-workers.md).
    public var workers: Int?

    public init(protocolName: String, parties: [Party], deliverTo: [String], cardinalityOnly: Bool, group: String,
                aggregate: Aggregate? = nil, threshold: Int? = nil, sets: SetOptions? = nil, training: TrainingOptions? = nil) {
        self.training = training
        self.protocolName = protocolName
        self.parties = parties
        self.deliverTo = deliverTo
        self.cardinalityOnly = cardinalityOnly
        self.group = group
        self.aggregate = aggregate
        self.threshold = threshold
        self.sets = sets
    }
}
