/// What a node is in the consortium. Written in its certificate (subject OU), so a peer's role is as
/// trustworthy as its identity.
public enum NodeRole: String, Sendable, Codable, CaseIterable {
    /// A data owner: holds datasets and takes part in computations.
    case bank
    /// Proposes jobs and follows them; holds no data of its own.
    case coordinator
    /// Receives aggregated reports only.
    case regulator
    /// A worker process of a bank (`mpcnode worker`): runs a range of its own node's PSI buckets with the
    /// peer's worker of the same index. It carries its bank's node id but is no node: a node refuses every
    /// request from a worker certificate, and a worker talks only to the one peer worker its node's job
    /// plan names (Docs/decisions/0009-sharded-psi-workers.md).
    case worker

    /// The file-name stem of this role's key, request and certificate for `nodeID` (a worker's must not
    /// replace its node's own).
    public func fileStem(nodeID: String) -> String { self == .worker ? "\(nodeID)-worker" : nodeID }
}
