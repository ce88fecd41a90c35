import Foundation
import MPCProtocols
import MPCTransport
import MPCWire

/// Everything a node needs to know about one kind of job, in one place: how its spec is checked at
/// the coordinator, who takes part and in which role, whose outcome is the job's, which failures are
/// dropouts, what a participant's policy must allow, and which role runs at each node.
///
/// The engine knows no kind by name: it asks the registry (`JobKinds`) for the kind of a spec and
/// calls these requirements. A new kind is its protocol in MPCProtocols, its wire message, one file
/// here, one line in `JobKinds.all`, its CLI subcommand, its tests and its spec.
protocol JobKind: Sendable {
    /// The kind's name on the wire (`JobSpec.protocol`), in the CLI and in audit records.
    var name: String { get }

    /// Whether a submission asks for this kind (by default: its protocol name is `name`).
    func accepts(_ submission: JobSubmission) -> Bool

    /// Whether `spec` is a job of this kind (by default: its protocol is `name`).
    func describes(_ spec: Mpcnode_V1_JobSpec) -> Bool

    /// At the coordinator: checks a submission and writes the kind's part of the spec (its sub-spec,
    /// recipients, group). Throws `JobError.invalidSubmission` with what to change.
    func prepare(_ submission: JobSubmission, into spec: inout Mpcnode_V1_JobSpec, context: SubmissionContext) throws

    /// Every node that takes part, parties first, in a fixed order.
    func participants(of spec: Mpcnode_V1_JobSpec) -> [String]

    /// The participant whose outcome is the job's (it holds the report or the model, and the protocol
    /// goes on without parties that drop out); nil when every participant's outcome counts.
    func outcomeOwner(of spec: Mpcnode_V1_JobSpec) -> String?

    /// Whether this node's failure (with `error`, nil when the job was interrupted by a restart) leaves
    /// the job going without it.
    func failureIsDropout(_ spec: Mpcnode_V1_JobSpec, node: String, error: Error?) -> Bool

    /// Whether the job goes on when `node` could not be started (a client of a secure sum).
    func toleratesStartFailure(of node: String, in spec: Mpcnode_V1_JobSpec) -> Bool

    /// What a participant without a dataset does in the job ("server", "aggregator", "arbiter"), or nil
    /// if `node` is not such a participant.
    func roleWithoutData(of node: String, in spec: Mpcnode_V1_JobSpec) -> String?

    /// The use the party's dataset must allow in its policy.
    func policyUse(_ spec: Mpcnode_V1_JobSpec) -> JobProtocolUse

    /// The kind's own policy rules for the party `mine` (columns, suppression minimums, recipients);
    /// the generic rules (coordinator, dataset, use, `deliver_to`, input size) are `PolicyCheck`'s.
    /// Nil if this node's role of `spec` kept what it needs to continue after its daemon stopped (a
    /// bucketed PSI's sealed state and checkpoints in the job's scratch database) and was alive within the
    /// peer idle limit (its peer waits that long): such a job is resumed at start-up instead of failed.
    /// Otherwise why not.
    func whyNotResumable(_ spec: Mpcnode_V1_JobSpec, configuration: NodeConfiguration) -> String?
    func checkPolicy(_ spec: Mpcnode_V1_JobSpec, mine: Mpcnode_V1_PartyInput, rule: DatasetPolicy, policy: NodePolicy,
                     nodeID: String) -> PolicyDecision

    /// The party's input size as the policy's minimum counts it, or nil if its dataset or a column the
    /// job needs does not exist. Read only after every other rule passed.
    func inputSize(_ spec: Mpcnode_V1_JobSpec, mine: Mpcnode_V1_PartyInput, catalog: DatasetCatalog) throws -> Int?

    /// Checks the names in the kind's own part of a proposed spec (`PeerSuppliedName`), after the engine
    /// checked the names every spec has (job id, parties, datasets, columns, recipients).
    func validateNames(_ spec: Mpcnode_V1_JobSpec) throws

    /// Checks a proposed spec's shape as the coordinator's own `prepare` would (how many parties, who
    /// receives what, the roles): a participant never relies on the coordinator having checked it.
    func checkShape(_ spec: Mpcnode_V1_JobSpec) throws

    /// Why the input is missing, when `inputSize` found none.
    func missingInput(_ spec: Mpcnode_V1_JobSpec, mine: Mpcnode_V1_PartyInput) -> String

    /// Runs this node's role of a started job and returns what it produced (stored by the engine).
    func run(_ context: RoleContext) async throws -> RoleCompletion
}

extension JobKind {
    func whyNotResumable(_ spec: Mpcnode_V1_JobSpec, configuration: NodeConfiguration) -> String? { "\(name) jobs do not resume" }
    func accepts(_ submission: JobSubmission) -> Bool { submission.protocolName == name }
    func describes(_ spec: Mpcnode_V1_JobSpec) -> Bool { spec.protocol == name }
    func participants(of spec: Mpcnode_V1_JobSpec) -> [String] { spec.parties.map(\.nodeID) }
    func outcomeOwner(of spec: Mpcnode_V1_JobSpec) -> String? { nil }
    func failureIsDropout(_ spec: Mpcnode_V1_JobSpec, node: String, error: Error?) -> Bool { error is SecureSumDropout }
    func roleWithoutData(of node: String, in spec: Mpcnode_V1_JobSpec) -> String? { nil }
    func toleratesStartFailure(of node: String, in spec: Mpcnode_V1_JobSpec) -> Bool { false }
    func validateNames(_ spec: Mpcnode_V1_JobSpec) throws {}
    func checkShape(_ spec: Mpcnode_V1_JobSpec) throws { try checkCommonShape(spec) }

    /// What every kind requires: at least two parties, each listed once, and each recipient listed once.
    func checkCommonShape(_ spec: Mpcnode_V1_JobSpec) throws {
        let parties = spec.parties.map(\.nodeID)
        guard parties.count >= 2 else { throw JobError.malformedSpec("\(name) needs at least two parties, the spec has \(parties.count)") }
        guard Set(parties).count == parties.count else { throw JobError.malformedSpec("a party is listed twice (\(parties.joined(separator: ", ")))") }
        guard Set(spec.deliverTo).count == spec.deliverTo.count else { throw JobError.malformedSpec("a recipient is listed twice") }
    }

    func inputSize(_ spec: Mpcnode_V1_JobSpec, mine: Mpcnode_V1_PartyInput, catalog: DatasetCatalog) throws -> Int? {
        try catalog.distinctCount(dataset: mine.dataset, column: mine.column)
    }

    func missingInput(_ spec: Mpcnode_V1_JobSpec, mine: Mpcnode_V1_PartyInput) -> String {
        "dataset '\(mine.dataset)' or its column '\(mine.column)' does not exist on this node"
    }

    /// The rule of kinds whose parties use one identifier column: that column must be allowed.
    func identifierColumnAllowed(_ mine: Mpcnode_V1_PartyInput, rule: DatasetPolicy) -> PolicyDecision {
        rule.columns.contains(mine.column) ? .allowed : .refused(reason: "column '\(mine.column)' of dataset '\(mine.dataset)' may not be used")
    }
}

/// What a kind's `prepare` may consult at the coordinator.
struct SubmissionContext {
    /// The coordinator itself.
    let nodeID: String
    let peers: [String: PeerAddress]
    let repository: JobRepository

    /// Throws unless `node` is a peer in the coordinator's configuration.
    func requireKnown(_ node: String) throws {
        guard peers[node] != nil else { throw JobError.unknownPeer(node) }
    }
}
