/// The wire names of the job kinds (`JobSpec.protocol`): the one place they are spelled. The kinds,
/// the CLI and the benchmarks name a kind through this type, never by a string of their own.
public enum JobKindName: String, CaseIterable, Sendable {
    case psi
    case secureSum = "secure-sum"
    case mpsi
    case watchlist
    case unionSum = "union-sum"
    case intersectionStats = "intersection-stats"
    /// Both training modes (horizontal and vertical) share it; `TrainingSpec.mode` tells them apart.
    case trainLR = "train-lr"
    case predict
}
