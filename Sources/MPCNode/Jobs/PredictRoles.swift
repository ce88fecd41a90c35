import Foundation
import GRDB
import MPCLearning
import MPCProtocols
import MPCTransport
import MPCWire

/// A `predict` job: the guest and the host of a vertical model score the rows they have in common. Rows
/// are aligned by PSI as in training; the host sends its partial margins x_H·w_H for the aligned rows
/// (in the agreed order, as FATE's hetero LR does) and the guest, which holds the intercept, stores
/// σ(x_G·w_G + b + x_H·w_H) per identifier as the job's result. Session "predict" (host → guest).
extension JobEngine {
    func validatePredictSubmission(_ submission: JobSubmission) throws -> Mpcnode_V1_TrainingSpec {
        guard let modelJob = submission.training?.modelJob, !modelJob.isEmpty else {
            throw JobError.invalidSubmission("predict needs --model <the vertical training job>")
        }
        guard let training = try repository.spec(jobID: modelJob), training.protocol == "train-lr", training.training.mode == "vertical" else {
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
        var spec = training.training
        spec.modelJob = modelJob
        return spec
    }

    func runPredictParty(_ spec: Mpcnode_V1_JobSpec, scratch: JobScratch) async throws -> Completion {
        let jobID = spec.jobID
        guard let index = spec.parties.firstIndex(where: { $0.nodeID == nodeID }), index < 2 else {
            throw JobError.invalidSubmission("this node is not a party of \(jobID)")
        }
        let isGuest = index == 0
        let mine = spec.parties[index], other = spec.parties[1 - index]
        let model = try ModelRepository(store: store).get(spec.training.modelJob)
        guard model.mode == "vertical", model.role == (isGuest ? "guest" : "host"), model.jobID == spec.training.modelJob else {
            throw JobError.invalidSubmission("this node holds no \(isGuest ? "guest" : "host") block of model \(spec.training.modelJob)")
        }
        let (order, alignment) = try await alignByPSI(spec, mine: mine, other: other, isGuest: isGuest, scratch: scratch)
        let rows = try TrainingData.loadAligned(store: store, catalog: catalog, dataset: mine.dataset, idColumn: mine.column, ids: order,
                                                features: model.features, label: nil)
        let margins = (0..<rows.count).map { i in model.model.margin(rows.row(i)) }  // includes the bias (0 at the host)
        let transport = self.transport
        var sent = alignment.bytesSent, received = alignment.bytesReceived
        if !isGuest {
            sent += try await transport.withSession(jobID: jobID, stream: "predict", to: other.nodeID, at: try address(of: other.nodeID)) { channel in
                try await VerticalPrediction.sendPartialScores(margins, over: channel)
            }
            return Completion(inputRows: alignment.ownSetSize, bytesSent: sent, bytesReceived: received, resultRows: 0, receivedResult: false,
                              details: ["model": .string(model.id), "aligned_rows": .int(order.count)], store: { _ in })
        }
        let channel = try await rendezvous.claim(jobID: jobID, stream: "predict", peer: other.nodeID, timeout: sessionWaitTimeout)
        let hostMargins: [Double]
        do {
            let (m, bytes) = try await VerticalPrediction.receivePartialScores(count: order.count, over: channel)
            hostMargins = m
            received += bytes
        } catch {
            channel.abort()
            await channel.close()
            throw error
        }
        let scores = zip(margins, hostMargins).map { LogisticModel.sigmoid($0 + $1) }
        let repository = self.repository
        return Completion(
            inputRows: alignment.ownSetSize, bytesSent: sent, bytesReceived: received, resultRows: scores.count, receivedResult: true,
            details: ["model": .string(model.id), "aligned_rows": .int(order.count)],
            store: { db in
                try repository.storeResult(db, jobID: jobID, kind: "scores", cardinality: scores.count) { db in
                    let insert = try db.makeStatement(sql: "INSERT INTO job_result_item (job_id, identifier, value) VALUES (?, ?, ?)")
                    for (id, score) in zip(order, scores) { try insert.execute(arguments: [jobID, id, score]) }
                }
            })
    }
}
