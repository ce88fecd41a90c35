/// The uses a dataset can be exposed to. PSI that delivers the intersection and PSI that delivers
/// only its size are separate uses: a bank may allow counting overlaps but not revealing them.
public enum JobProtocolUse: String, Sendable, CaseIterable, Codable {
    case psi
    case psiCardinality = "psi-cardinality"
    case secureSum = "secure-sum"
    /// n-party PSI delivering the intersection; and delivering only its size.
    case mpsi
    case mpsiCardinality = "mpsi-cardinality"
    /// Counting identifiers several parties hold, and telling a party which of its own others hold.
    case watchlist
    /// Per-identifier totals of a value column over the union of the parties' identifiers.
    case unionSum = "union-sum"
    /// Statistics of a value column over the intersection.
    case intersectionStats = "intersection-stats"
    /// Training a model jointly (the feature and label columns must be allowed).
    case trainLR = "train-lr"
    /// Scoring rows with a jointly trained (vertical) model.
    case predict
}

extension JobProtocolUse {
    /// The uses that compare this dataset's identifiers with other parties' sets (their results differ
    /// with one identifier of a peer's set): what `max_jobs_per_peer_per_input` counts.
    static let comparingSets: Set<JobProtocolUse> = [.psi, .psiCardinality, .mpsi, .mpsiCardinality, .watchlist, .unionSum, .intersectionStats]
}
