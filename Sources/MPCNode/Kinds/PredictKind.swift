import Foundation
import GRDB
import MPCLearning
import MPCProtocols
import MPCTransport
import MPCWire

/// `predict`: the guest and the hosts of a vertical model score the rows they all have. Rows are
/// aligned as in training (`VerticalRows`); each host sends its partial margins x_H·w_H for the aligned
/// rows (in the agreed order, as FATE's hetero LR does) and the guest, which holds the intercept, stores
/// σ(x_G·w_G + b + Σ x_H·w_H) per identifier as the job's result (`VerticalScoring`, session "predict").
struct PredictKind: JobKind {
    let name = JobKindName.predict.rawValue

    func describes(_ spec: Mpcnode_V1_JobSpec) -> Bool {
        guard spec.protocol == name, case .predict? = spec.kind else { return false }
        return true
    }

    func validateNames(_ spec: Mpcnode_V1_JobSpec) throws {
        try PeerSuppliedName.jobID.validate(spec.predict.modelJob, field: "model job")
        try PeerSuppliedName.validate(featureHolders: spec.predict.partyFeatures)
    }

    func prepare(_ submission: JobSubmission, into spec: inout Mpcnode_V1_JobSpec, context: SubmissionContext) throws {
        guard let modelJob = submission.training?.modelJob, !modelJob.isEmpty else {
            throw JobError.invalidSubmission("predict needs --model <the vertical training job>")
        }
        guard let training = try context.repository.spec(jobID: modelJob), VerticalTrainingKind().describes(training) else {
            throw JobError.invalidSubmission("\(modelJob) is not a vertical training job coordinated by this node")
        }
        let parties = submission.parties.map(\.nodeID)
        guard parties == training.parties.map(\.nodeID) else {
            throw JobError.invalidSubmission("predict with \(modelJob) takes its parties in the same order: \(training.parties.map(\.nodeID).joined(separator: ", "))")
        }
        for p in submission.parties where p.column.isEmpty {
            throw JobError.invalidSubmission("--party \(p.nodeID):\(p.dataset) names no identifier column to align on (node:dataset.column)")
        }
        guard submission.deliverTo.isEmpty || submission.deliverTo == [parties[0]] else {
            throw JobError.invalidSubmission("the scores go to the guest (\(parties[0])) only")
        }
        spec.predict = .with { $0.modelJob = modelJob; $0.partyFeatures = training.training.partyFeatures }
        // The scores go to the guest only, whatever the submission named.
        spec.deliverTo = [parties[0]]
    }


    func policyUse(_ spec: Mpcnode_V1_JobSpec) -> JobProtocolUse { .predict }

    func checkPolicy(_ spec: Mpcnode_V1_JobSpec, mine: Mpcnode_V1_PartyInput, rule: DatasetPolicy, policy: NodePolicy,
                     nodeID: String) -> PolicyDecision {
        // This party's features of the model and the identifier column for the alignment.
        HorizontalTrainingKind.checkTrainingPolicy(spec, used: VerticalRows.ownFeatures(spec, nodeID: nodeID) + [mine.column],
                                                   mine: mine, rule: rule, policy: policy, modelRecipient: nil)
    }

    func inputSize(_ spec: Mpcnode_V1_JobSpec, mine: Mpcnode_V1_PartyInput, catalog: DatasetCatalog) throws -> Int? {
        try? catalog.describe(mine.dataset).rowCount
    }

    func run(_ context: RoleContext) async throws -> RoleCompletion {
        let spec = context.spec, jobID = context.jobID
        let (index, mine) = try context.myInput()
        let isGuest = index == 0
        let guestID = spec.parties[0].nodeID
        let model = try ModelRepository(store: context.store).get(spec.predict.modelJob)
        guard model.mode == VerticalTrainingKind.mode, model.role == (isGuest ? "guest" : "host"), model.jobID == spec.predict.modelJob else {
            throw JobError.fault("this node holds no \(isGuest ? "guest" : "host") block of model \(spec.predict.modelJob)")
        }
        let (order, alignment) = try await VerticalRows.align(context, index: index)
        let rows = try TrainingData.loadAligned(store: context.store, catalog: context.catalog, dataset: mine.dataset, idColumn: mine.column, ids: order,
                                                features: model.features, label: nil)
        let margins = (0..<rows.count).map { i in model.model.margin(rows.row(i)) }  // includes the bias (0 at a host)
        let scoring = try await VerticalScoring(guest: guestID, hosts: spec.parties.dropFirst().map(\.nodeID), me: context.nodeID,
                                                sessionWait: context.sessionWaitTimeout).run(ownMargins: margins, port: context.sessions)
        let sent = alignment.bytesSent + scoring.bytesSent, received = alignment.bytesReceived + scoring.bytesReceived
        guard isGuest, let scores = scoring.scores else {
            return RoleCompletion(inputRows: alignment.ownSetSize, bytesSent: sent, bytesReceived: received, resultRows: 0,
                                  receivedResult: false, details: ["model": .string(model.id), "aligned_rows": .int(order.count)], store: { _ in })
        }
        let repository = context.repository
        return RoleCompletion(
            inputRows: alignment.ownSetSize, bytesSent: sent, bytesReceived: received, resultRows: scores.count,
            receivedResult: true, details: ["model": .string(model.id), "aligned_rows": .int(order.count)],
            store: { db in
                try repository.storeResult(db, jobID: jobID, kind: "scores", cardinality: scores.count) { db in
                    let insert = try db.makeStatement(sql: "INSERT INTO job_result_item (job_id, identifier, value) VALUES (?, ?, ?)")
                    for (id, score) in zip(order, scores) { try insert.execute(arguments: [jobID, id, score]) }
                }
            })
    }
}
