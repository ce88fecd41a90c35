import MPCCrypto
import MPCProtocols
import MPCTransport
import MPCWire

/// `psi`: two-party private set intersection by commutative blinding (Protocols/psi.md). Delivers the
/// intersection, or only its size (`cardinality_only`, policy use `psi-cardinality`), to the parties in
/// `deliver_to`. The first party dials; the other claims its session.
struct PSIKind: JobKind {
    let name = JobKindName.psi.rawValue

    /// Its spec is the (empty) `PsiSpec`, which a coordinator may leave out.
    func describes(_ spec: Mpcnode_V1_JobSpec) -> Bool {
        guard spec.protocol == name else { return false }
        if case .psi? = spec.kind { return true }
        return spec.kind == nil
    }

    func checkShape(_ spec: Mpcnode_V1_JobSpec) throws {
        try checkCommonShape(spec)
        let parties = spec.parties.map(\.nodeID)
        guard parties.count == 2 else { throw JobError.malformedSpec("psi is between two parties, the spec has \(parties.count)") }
        guard !spec.deliverTo.isEmpty, spec.deliverTo.allSatisfy(parties.contains) else {
            throw JobError.malformedSpec("psi delivers to one or both of its parties, the spec names \(spec.deliverTo.isEmpty ? "no recipient" : spec.deliverTo.joined(separator: ", "))")
        }
        guard BlindingGroup(rawValue: spec.group) != nil else { throw JobError.malformedSpec("unknown group \(JobError.shown(spec.group))") }
    }

    func prepare(_ submission: JobSubmission, into spec: inout Mpcnode_V1_JobSpec, context: SubmissionContext) throws {
        guard submission.parties.count == 2 else {
            throw JobError.invalidSubmission("two-party PSI needs exactly two --party options, got \(submission.parties.count)")
        }
        guard !submission.deliverTo.isEmpty else { throw JobError.invalidSubmission("name at least one recipient with --deliver-to") }
        let partyIDs = submission.parties.map(\.nodeID)
        for r in submission.deliverTo where !partyIDs.contains(r) {
            throw JobError.invalidSubmission("recipient \(r) is not a party of the job (PSI delivers to its parties)")
        }
        spec.group = try Self.group(named: submission.group).rawValue
        spec.psi = Mpcnode_V1_PsiSpec()
    }

    /// The blinding group a submission names, or what to choose instead.
    static func group(named name: String) throws -> BlindingGroup {
        guard let g = BlindingGroup(rawValue: name) else {
            throw JobError.invalidSubmission("unknown group '\(name)' (available: \(BlindingGroup.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        return g
    }

    func policyUse(_ spec: Mpcnode_V1_JobSpec) -> JobProtocolUse { spec.cardinalityOnly ? .psiCardinality : .psi }

    func checkPolicy(_ spec: Mpcnode_V1_JobSpec, mine: Mpcnode_V1_PartyInput, rule: DatasetPolicy, policy: NodePolicy,
                     nodeID: String) -> PolicyDecision {
        identifierColumnAllowed(mine, rule: rule)
    }

    func run(_ context: RoleContext) async throws -> RoleCompletion {
        let jobID = context.jobID, spec = context.spec, nodeID = context.nodeID
        let (mineIndex, mine) = try context.myInput()
        let otherIndex = mineIndex == 0 ? 1 : 0
        let other = spec.parties[otherIndex]
        let s = try context.snapshot(dataset: mine.dataset, column: mine.column)
        try context.recordStarted(["peer": .string(other.nodeID), "input_rows": .int(s.count)])
        context.logger.info("job running", metadata: ["job": "\(jobID)", "peer": "\(other.nodeID)", "input_rows": "\(s.count)"])
        guard let group = BlindingGroup(rawValue: spec.group) else { throw JobError.fault("the job names the unknown group \(JobError.shown(spec.group))") }
        var config = PSIParty.Configuration(
            jobID: jobID, group: group, selfReceivesOutput: spec.deliverTo.contains(nodeID),
            peerReceivesOutput: spec.deliverTo.contains(other.nodeID), cardinalityOnly: spec.cardinalityOnly)
        let peerSizes = try context.peerSetSizes(dataset: mine.dataset, ownSize: s.count)
        config.minimumPeerSetSize = peerSizes.lowerBound
        config.maximumPeerSetSize = peerSizes.upperBound
        let progress = context.progressRecorder()
        let onProgress: @Sendable (PSIParty.Progress) -> Void = { p in
            progress.record(done: p.ownBlindedSent + p.peerElementsProcessed, total: p.ownSetSize + (p.peerSetSize ?? 0))
        }
        let report: PSIParty.Report
        if mineIndex < otherIndex {
            report = try await context.withSession(to: other.nodeID) { channel in
                try await PSIParty(configuration: config, source: s, channel: channel, progress: onProgress).run()
            }
        } else {
            let channel = try await context.claim(from: other.nodeID)
            report = try await context.sessions.using([channel]) {
                try await PSIParty(configuration: config, source: s, channel: channel, progress: onProgress).run()
            }
        }
        var resultRows = 0
        let output = report.output
        switch output {
        case .intersection(let positions), .matches(let positions, _): resultRows = positions.count
        case .cardinality: resultRows = 1
        case .none: break
        }
        let repository = context.repository
        return RoleCompletion(
            inputRows: report.ownSetSize, bytesSent: report.bytesSent, bytesReceived: report.bytesReceived,
            resultRows: resultRows, receivedResult: output != .none,
            details: ["peer": .string(other.nodeID), "peer_input_rows": .int(report.peerSetSize)],
            store: { db in
                switch output {
                case .intersection(let positions), .matches(let positions, _):
                    try repository.storeResult(db, jobID: jobID, kind: "intersection", cardinality: positions.count) { db in
                        let insert = try db.makeStatement(sql: "INSERT INTO job_result_item (job_id, identifier) VALUES (?, ?)")
                        try s.forEachIdentifier(atPositions: positions) { try insert.execute(arguments: [jobID, $0]) }
                    }
                case .cardinality(let c):
                    try repository.storeResult(db, jobID: jobID, kind: "cardinality", cardinality: c) { _ in }
                case .none:
                    break
                }
            })
    }
}
