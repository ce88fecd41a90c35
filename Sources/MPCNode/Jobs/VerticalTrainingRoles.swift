import Crypto
import Foundation
import GRDB
import MPCCrypto
import MPCLearning
import MPCProtocols
import MPCTransport
import MPCWire

/// The roles of a `train-lr --mode vertical` job (Protocols/federated-lr-vertical.md): the guest (first
/// party: label and its features) and the host (second party: its features) align their rows by PSI on
/// their identifier columns, order the common identifiers by a keyed hash, and train with the arbiter's
/// Paillier key. Sessions: "align" (guest → host), "vlr" (guest → host, guest → arbiter, host → arbiter).
extension JobEngine {
    func validateVerticalSubmission(_ submission: JobSubmission, _ t: JobSubmission.TrainingOptions) throws -> Mpcnode_V1_TrainingSpec {
        let parties = submission.parties.map(\.nodeID)
        guard parties.count == 2 else {
            throw JobError.invalidSubmission("vertical training takes two parties: the guest (label holder) first, then the host")
        }
        guard !parties.contains(t.aggregator), t.aggregator != nodeID, configuration.peers[t.aggregator] != nil else {
            throw JobError.invalidSubmission("the arbiter (--aggregator) must be a known node that is neither a party nor the coordinator")
        }
        for p in submission.parties {
            guard !p.column.isEmpty else { throw JobError.invalidSubmission("--party \(p.nodeID):\(p.dataset) names no identifier column to align on (node:dataset.column)") }
            guard let f = t.partyFeatures[p.nodeID], !f.isEmpty else {
                throw JobError.invalidSubmission("name \(p.nodeID)'s feature columns with --party-features \(p.nodeID)=…")
            }
        }
        guard !t.label.isEmpty else { throw JobError.invalidSubmission("name the guest's label column with --label") }
        guard (0..<0.9).contains(t.holdout) else { throw JobError.invalidSubmission("--holdout must lie in [0, 0.9)") }
        guard [1024, 2048, 3072, 4096].contains(t.keyBits) else { throw JobError.invalidSubmission("--key-bits must be 1024 (tests only), 2048, 3072 or 4096") }
        let p = t.parameters
        guard (1...10_000).contains(p.rounds), p.learningRate > 0, p.l2 >= 0, p.batchSize >= 1, p.tolerance >= 0 else {
            throw JobError.invalidSubmission("hyper-parameters out of range: rounds (epochs) 1…10000, learning rate > 0, l2 ≥ 0, batch size ≥ 1, tolerance ≥ 0")
        }
        return .with {
            $0.mode = "vertical"
            $0.aggregator = t.aggregator
            $0.label = t.label
            $0.rounds = UInt32(p.rounds)
            $0.localEpochs = 1
            $0.learningRate = p.learningRate
            $0.l2 = p.l2
            $0.batchSize = UInt32(p.batchSize)
            $0.tolerance = p.tolerance
            $0.keyBits = UInt32(t.keyBits)
            $0.holdout = t.holdout
            $0.partyFeatures = parties.map { node in .with { $0.nodeID = node; $0.features = t.partyFeatures[node]! } }
        }
    }

    static func verticalParameters(_ spec: Mpcnode_V1_JobSpec, rows: Int) -> VerticalLRParameters {
        let t = spec.training
        return VerticalLRParameters(jobID: spec.jobID, guest: spec.parties[0].nodeID, host: spec.parties[1].nodeID, arbiter: t.aggregator, rows: rows,
                                    training: TrainingParameters(rounds: Int(t.rounds), localEpochs: 1, learningRate: t.learningRate, l2: t.l2,
                                                                 batchSize: Int(t.batchSize), tolerance: t.tolerance),
                                    keyBits: t.keyBits == 0 ? 2048 : Int(t.keyBits))
    }

    func runVerticalParty(_ spec: Mpcnode_V1_JobSpec, scratch: JobScratch) async throws -> Completion {
        let jobID = spec.jobID, t = spec.training
        guard let index = spec.parties.firstIndex(where: { $0.nodeID == nodeID }), index < 2 else {
            throw JobError.invalidSubmission("this node is not a party of \(jobID)")
        }
        let isGuest = index == 0
        let mine = spec.parties[index], other = spec.parties[1 - index]
        let features = t.partyFeatures.first { $0.nodeID == nodeID }?.features ?? []
        let (order, alignment) = try await alignByPSI(spec, mine: mine, other: other, isGuest: isGuest, scratch: scratch)
        let inputRows = alignment.ownSetSize
        let all = try TrainingData.loadAligned(store: store, catalog: catalog, dataset: mine.dataset, idColumn: mine.column, ids: order,
                                               features: features, label: isGuest ? t.label : nil)
        // The same rows are held out on both sides: the split depends only on the job id and the agreed order.
        let (aligned, evaluation) = TrainingData.holdOut(all, share: t.holdout, jobID: jobID)
        guard aligned.count >= 2 else { throw TrainingError.noRows(dataset: mine.dataset) }
        logger.info("vertical training aligned", metadata: ["job": "\(jobID)", "rows": "\(aligned.count)", "role": "\(isGuest ? "guest" : "host")"])
        // 2. Training.
        let transport = self.transport, rendezvous = self.rendezvous, wait = sessionWaitTimeout
        let otherAddress = try address(of: other.nodeID), arbiterAddress = try address(of: t.aggregator)
        let parameters = Self.verticalParameters(spec, rows: aligned.count)
        let traffic = TrafficTally()
        let recorder = progressRecorder(spec), epochs = Int(t.rounds)
        let onEpoch: @Sendable (Int, Double) -> Void = { epoch, _ in recorder.record(done: epoch, total: epochs) }
        try? repository.setProgress(jobID: jobID, done: 0, total: epochs)
        let result: (weights: [Double], bias: Double, losses: [Double])
        if isGuest {
            result = try await transport.withSession(jobID: jobID, stream: "vlr", to: other.nodeID, at: otherAddress) { host in
                try await transport.withSession(jobID: jobID, stream: "vlr", to: t.aggregator, at: arbiterAddress) { arbiter in
                    var guest = VerticalLRGuest(parameters: parameters, data: aligned, host: host, arbiter: arbiter)
                    guest.onEpoch = onEpoch
                    let (model, losses) = try await guest.run()
                    traffic.add(sent: host.bytesSent + arbiter.bytesSent, received: host.bytesReceived + arbiter.bytesReceived)
                    return (model.weights, model.bias, losses)
                }
            }
        } else {
            let guest = try await rendezvous.claim(jobID: jobID, stream: "vlr", peer: other.nodeID, timeout: wait)
            do {
                result = try await transport.withSession(jobID: jobID, stream: "vlr", to: t.aggregator, at: arbiterAddress) { arbiter in
                    var host = VerticalLRHost(parameters: parameters, features: aligned, guest: guest, arbiter: arbiter)
                    host.onEpoch = onEpoch
                    let (weights, losses) = try await host.run()
                    traffic.add(sent: guest.bytesSent + arbiter.bytesSent, received: guest.bytesReceived + arbiter.bytesReceived)
                    return (weights, 0, losses)
                }
                await guest.close()
            } catch {
                guest.abort()
                await guest.close()
                throw error
            }
        }
        // 3. Evaluation on the held-out rows: the host sends its partial margins of those rows (as in predict);
        // the guest scores them with the labels it holds.
        var metrics: Metrics.Evaluation?
        if evaluation.count > 0 {
            if isGuest {
                let channel = try await rendezvous.claim(jobID: jobID, stream: "evaluate", peer: other.nodeID, timeout: wait)
                do {
                    let (hostMargins, bytes) = try await VerticalPrediction.receivePartialScores(count: evaluation.count, over: channel)
                    traffic.add(sent: 0, received: bytes)
                    let joint = LogisticModel(weights: result.weights, bias: result.bias)
                    var e = Metrics.Evaluation(bins: 1000)
                    for i in 0..<evaluation.count {
                        let p = LogisticModel.sigmoid(joint.margin(evaluation.row(i)) + hostMargins[i])
                        e.add(probability: p, label: evaluation.labels[i])
                    }
                    metrics = e
                } catch {
                    channel.abort()
                    await channel.close()
                    throw error
                }
            } else {
                let margins = (0..<evaluation.count).map { i in zip(result.weights, evaluation.row(i)).reduce(0) { $0 + $1.0 * $1.1 } }
                let bytes = try await transport.withSession(jobID: jobID, stream: "evaluate", to: other.nodeID, at: otherAddress) { channel in
                    try await VerticalPrediction.sendPartialScores(margins, over: channel)
                }
                traffic.add(sent: bytes, received: 0)
            }
        }
        let model = ModelView(
            id: "model-" + jobID.dropFirst(4) + "-" + nodeID, jobID: jobID, specHash: try JobRepository.specHash(spec), mode: "vertical",
            role: isGuest ? "guest" : "host", createdAt: Date(), features: features, label: isGuest ? t.label : "",
            weights: Dictionary(uniqueKeysWithValues: zip(features, result.weights)), bias: result.bias,
            datasets: Dictionary(uniqueKeysWithValues: spec.parties.map { ($0.nodeID, $0.dataset) }), training: parameters.training,
            rounds: result.losses.enumerated().map { TrainingRound(round: $0.offset + 1, loss: $0.element, samples: aligned.count,
                                                                   contributors: spec.parties.map(\.nodeID)) },
            auc: metrics?.auc, loss: metrics?.loss ?? result.losses.last, accuracy: metrics?.accuracy, evaluatedRows: metrics.map { Int($0.count) })
        let models = ModelRepository(store: store)
        return Completion(inputRows: inputRows, bytesSent: alignment.bytesSent + traffic.sent, bytesReceived: alignment.bytesReceived + traffic.received,
                          resultRows: 1, receivedResult: true,
                          details: ["model": .string(model.id), "aligned_rows": .int(aligned.count), "epochs": .int(result.losses.count)],
                          store: { db in try models.insert(db, model) })
    }

    /// Aligns the two parties' rows by PSI on their identifier columns (both receive the intersection) and
    /// orders the common identifiers by HMAC-SHA-256 keyed with the job id: both sides end with the same list.
    func alignByPSI(_ spec: Mpcnode_V1_JobSpec, mine: Mpcnode_V1_PartyInput, other: Mpcnode_V1_PartyInput, isGuest: Bool,
                    scratch: JobScratch) async throws -> ([String], PSIParty.Report) {
        let jobID = spec.jobID
        let source = try SQLiteIdentifierSource.prepare(jobID: jobID, dataset: mine.dataset, column: mine.column, store: store,
                                                        scratchDirectory: configuration.jobsDirectory)
        scratch.add { source.remove() }
        try audit.append(event: "job.started", jobID: jobID, details: [
            "spec_hash": .string(try JobRepository.specHash(spec)), "role": .string(isGuest ? "guest" : "host"),
            "peer": .string(other.nodeID), "input_rows": .int(source.count),
        ])
        let psi = PSIParty.Configuration(jobID: jobID, group: .x25519, selfReceivesOutput: true, peerReceivesOutput: true, cardinalityOnly: false)
        let report: PSIParty.Report
        if isGuest {
            report = try await transport.withSession(jobID: jobID, stream: "align", to: other.nodeID, at: try address(of: other.nodeID)) { channel in
                try await PSIParty(configuration: psi, source: source, channel: channel).run()
            }
        } else {
            let channel = try await rendezvous.claim(jobID: jobID, stream: "align", peer: other.nodeID, timeout: sessionWaitTimeout)
            do {
                report = try await PSIParty(configuration: psi, source: source, channel: channel).run()
                await channel.close()
            } catch {
                channel.abort()
                await channel.close()
                throw error
            }
        }
        guard case .intersection(let positions) = report.output else {
            throw JobError.invalidSubmission("the alignment delivered no intersection")
        }
        var ids: [String] = []
        try source.forEachIdentifier(atPositions: positions) { ids.append($0) }
        let key = SymmetricKey(data: Data(jobID.utf8))
        let order = ids.map { (Data(HMAC<SHA256>.authenticationCode(for: Data($0.utf8), using: key)), $0) }
            .sorted { $0.0.lexicographicallyPrecedes($1.0) }.map(\.1)
        return (order, report)
    }

    func runVerticalArbiter(_ spec: Mpcnode_V1_JobSpec) async throws -> Completion {
        let jobID = spec.jobID, t = spec.training
        try audit.append(event: "job.started", jobID: jobID, details: [
            "spec_hash": .string(try JobRepository.specHash(spec)), "role": .string("arbiter"),
            "guest": .string(spec.parties[0].nodeID), "host": .string(spec.parties[1].nodeID),
        ])
        let parameters = Self.verticalParameters(spec, rows: 0)
        let claimed = try await Self.claimAll(rendezvous, jobID: jobID, sessions: [("vlr", parameters.guest), ("vlr", parameters.host)],
                                              timeout: Self.setPhaseTimeout)
        let guest = claimed["vlr/\(parameters.guest)"]!, host = claimed["vlr/\(parameters.host)"]!
        let losses: [Double]
        do {
            var arbiter = VerticalLRArbiter(parameters: parameters, guest: guest, host: host)
            let recorder = progressRecorder(spec), epochs = Int(t.rounds)
            arbiter.onEpoch = { epoch, _ in recorder.record(done: epoch, total: epochs) }
            losses = try await arbiter.run()
        } catch {
            for c in [guest, host] { c.abort(); await c.close() }
            throw error
        }
        let sent = guest.bytesSent + host.bytesSent, received = guest.bytesReceived + host.bytesReceived
        for c in [guest, host] { await c.close() }
        let model = ModelView(
            id: "model-" + jobID.dropFirst(4), jobID: jobID, specHash: try JobRepository.specHash(spec), mode: "vertical", role: "arbiter",
            createdAt: Date(), features: [], label: "", weights: [:], bias: 0,
            datasets: Dictionary(uniqueKeysWithValues: spec.parties.map { ($0.nodeID, $0.dataset) }), training: parameters.training,
            rounds: losses.enumerated().map { TrainingRound(round: $0.offset + 1, loss: $0.element, samples: 0, contributors: spec.parties.map(\.nodeID)) },
            auc: nil, loss: losses.last, accuracy: nil, evaluatedRows: nil)
        let models = ModelRepository(store: store)
        return Completion(inputRows: 0, bytesSent: sent, bytesReceived: received, resultRows: 1, receivedResult: true,
                          details: ["model": .string(model.id), "epochs": .int(losses.count)], store: { db in try models.insert(db, model) })
    }
}
