/// What a node is in the consortium. Written in its certificate (subject OU), so a peer's role is as
/// trustworthy as its identity.
public enum NodeRole: String, Sendable, Codable, CaseIterable {
    /// A data owner: holds datasets and takes part in computations.
    case bank
    /// Proposes jobs and follows them; holds no data of its own.
    case coordinator
    /// Receives aggregated reports only.
    case regulator
}
