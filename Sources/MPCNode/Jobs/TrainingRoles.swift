import Foundation
import GRDB
import MPCLearning
import MPCProtocols
import MPCTransport
import MPCWire

/// The roles of a `train-lr` job (Protocols/federated-lr-horizontal.md): each party trains on its own
/// SQLite rows and contributes updates by secure aggregation; the aggregator runs the rounds. Sessions:
/// "model" (party → aggregator, the whole training), and one per secure sum ("round-N", "evaluate").
extension JobEngine {
    func validateTrainingSubmission(_ submission: JobSubmission) throws -> Mpcnode_V1_TrainingSpec {
        let parties = submission.parties.map(\.nodeID)
        guard let t = submission.training else {
            throw JobError.invalidSubmission("train-lr needs --aggregator, --features and --label")
        }
        guard t.mode == "horizontal" || t.mode == "vertical" else {
            throw JobError.invalidSubmission("train-lr --mode \(t.mode) is unknown (available: horizontal, vertical)")
        }
        guard parties.count >= 2 else { throw JobError.invalidSubmission("train-lr needs at least two --party options") }
        if t.mode == "vertical" {
            return try validateVerticalSubmission(submission, t)
        }
        guard !parties.contains(t.aggregator), t.aggregator != nodeID else {
            throw JobError.invalidSubmission("the aggregator \(t.aggregator) must be neither a party nor the coordinator")
        }
        guard configuration.peers[t.aggregator] != nil else { throw JobError.unknownPeer(t.aggregator) }
        guard !t.features.isEmpty, !t.label.isEmpty, !t.features.contains(t.label) else {
            throw JobError.invalidSubmission("name the feature columns (--features) and a label column (--label) that is not a feature")
        }
        let p = t.parameters
        guard (1...10_000).contains(p.rounds), (1...1000).contains(p.localEpochs), p.learningRate > 0, p.l2 >= 0, p.batchSize >= 1, p.tolerance >= 0 else {
            throw JobError.invalidSubmission("hyper-parameters out of range: rounds 1…10000, local epochs 1…1000, learning rate > 0, l2 ≥ 0, batch size ≥ 1, tolerance ≥ 0")
        }
        guard (0..<1).contains(t.holdout), (2...100_000).contains(t.bins) else {
            throw JobError.invalidSubmission("--holdout must lie in [0, 1) and --bins in 2…100000")
        }
        guard t.evalDataset != nil || t.holdout > 0 else {
            throw JobError.invalidSubmission("name an --eval-dataset or hold out a share of the rows with --holdout")
        }
        return .with {
            $0.mode = t.mode
            $0.aggregator = t.aggregator
            $0.features = t.features
            $0.label = t.label
            $0.rounds = UInt32(p.rounds)
            $0.localEpochs = UInt32(p.localEpochs)
            $0.learningRate = p.learningRate
            $0.l2 = p.l2
            $0.batchSize = UInt32(p.batchSize)
            $0.tolerance = p.tolerance
            $0.evalDataset = t.evalDataset ?? ""
            $0.holdout = t.holdout
            $0.bins = UInt32(t.bins)
        }
    }

    static func trainingParameters(_ spec: Mpcnode_V1_JobSpec, roundTimeout: Duration) -> HorizontalLRParameters {
        let t = spec.training
        return HorizontalLRParameters(
            jobID: spec.jobID, clients: spec.parties.map(\.nodeID), server: t.aggregator, features: t.features.count,
            training: TrainingParameters(rounds: Int(t.rounds), localEpochs: Int(t.localEpochs), learningRate: t.learningRate,
                                         l2: t.l2, batchSize: Int(t.batchSize), tolerance: t.tolerance),
            bins: Int(t.bins), roundTimeout: roundTimeout)
    }

    // MARK: - Party

    func runTrainingParty(_ spec: Mpcnode_V1_JobSpec) async throws -> Completion {
        let jobID = spec.jobID, t = spec.training
        guard let mine = spec.parties.first(where: { $0.nodeID == nodeID }) else { throw JobError.invalidSubmission("this node is not a party of \(jobID)") }
        // Read everything before anything is sent.
        let rows = try TrainingData.load(store: store, catalog: catalog, dataset: mine.dataset, features: t.features, label: t.label)
        let (training, evaluation): (LabeledRows, LabeledRows)
        if t.evalDataset.isEmpty {
            (training, evaluation) = TrainingData.holdOut(rows, share: t.holdout, jobID: jobID)
        } else {
            training = rows
            evaluation = try TrainingData.load(store: store, catalog: catalog, dataset: t.evalDataset, features: t.features, label: t.label)
        }
        guard training.count > 0 else { throw TrainingError.noRows(dataset: mine.dataset) }
        let parameters = Self.trainingParameters(spec, roundTimeout: .seconds(Int64(configuration.peerIdleTimeoutSeconds)))
        let startedHash = try audit.append(event: "job.started", jobID: jobID, details: [
            "spec_hash": .string(try JobRepository.specHash(spec)), "aggregator": .string(t.aggregator),
            "dataset": .string(mine.dataset), "training_rows": .int(training.count), "evaluation_rows": .int(evaluation.count),
        ])
        logger.info("training", metadata: ["job": "\(jobID)", "rows": "\(training.count)", "aggregator": "\(t.aggregator)"])
        let auth = try keyAuthentication()
        let address = try address(of: t.aggregator)
        let transport = self.transport, me = nodeID
        let recorder = progressRecorder(spec, unit: "rounds")
        let rounds = Int(t.rounds)
        recorder.record(done: 0, total: rounds)
        let (outcome, sent, received) = try await transport.withSession(jobID: jobID, stream: "model", to: t.aggregator, at: address) { channel in
            let traffic = TrafficTally()
            var client = HorizontalLRClient(
                parameters: parameters, me: me, training: training, evaluation: evaluation, modelChannel: channel,
                withSum: { stream, body in
                    try await transport.withSession(jobID: jobID, stream: stream, to: parameters.server, at: address) { sum in
                        try await body(sum)
                        traffic.add(sent: sum.bytesSent, received: sum.bytesReceived)
                    }
                },
                authentication: auth, auditRecordHash: Self.hexBytes(startedHash))
            client.onRound = { r in recorder.record(done: r, total: rounds) }
            client.afterSecureAggregationRound = Self.faultInjection()
            let o = try await client.run()
            return (o, channel.bytesSent + traffic.sent, channel.bytesReceived + traffic.received)
        }
        let model = ModelView(
            id: "model-" + jobID.dropFirst(4) + "-" + nodeID, jobID: jobID, specHash: try JobRepository.specHash(spec), mode: t.mode, role: "party",
            createdAt: Date(), features: t.features, label: t.label,
            weights: Dictionary(uniqueKeysWithValues: zip(t.features, outcome.model.weights)), bias: outcome.model.bias,
            datasets: [nodeID: mine.dataset], training: parameters.training, rounds: [],
            auc: outcome.done.auc, loss: outcome.done.loss, accuracy: outcome.done.accuracy, evaluatedRows: Int(outcome.done.evaluated))
        let models = ModelRepository(store: store)
        return Completion(inputRows: training.count, bytesSent: sent, bytesReceived: received, resultRows: 1, receivedResult: true,
                          details: ["model": .string(model.id), "rounds_contributed": .array(outcome.roundsContributed.map { .int($0) }),
                                    "evaluation_rows": .int(evaluation.count)],
                          store: { db in try models.insert(db, model) })
    }

    // MARK: - Aggregator

    func runTrainingAggregator(_ spec: Mpcnode_V1_JobSpec, started: Date) async throws -> Completion {
        let jobID = spec.jobID, t = spec.training
        let parameters = Self.trainingParameters(spec, roundTimeout: .seconds(Int64(configuration.peerIdleTimeoutSeconds)))
        try audit.append(event: "job.started", jobID: jobID, details: [
            "spec_hash": .string(try JobRepository.specHash(spec)), "role": .string("aggregator"),
            "parties": .array(parameters.clients.map { .string($0) }), "rounds": .int(Int(t.rounds)),
        ])
        let rendezvous = self.rendezvous, wait = sessionWaitTimeout
        let models = try await Self.claimAll(rendezvous, jobID: jobID, sessions: parameters.clients.map { ("model", $0) }, timeout: wait)
        var channels: [String: any MessageChannel] = [:]
        for c in parameters.clients { channels[c] = models["model/\(c)"] }
        let recorder = progressRecorder(spec, unit: "rounds")
        let rounds = Int(t.rounds)
        recorder.record(done: 0, total: rounds)
        let traffic = TrafficTally()
        // A party never sends on its model session: anything arriving there (its end, an abort, a lost
        // connection) means it is gone, and later sums stop waiting for it.
        let gone = GoneParties()
        let watchers = channels.map { (c, channel) in Task { _ = try? await channel.receive(); await gone.mark(c) } }
        defer { for w in watchers { w.cancel() } }
        let outcome = try await HorizontalLRServer(
            parameters: parameters, modelChannels: channels,
            sumChannels: { stream in
                // Parties that do not open their session of this sum in time, or are gone, are left out of it (dropouts).
                await withTaskGroup(of: (String, TLSMessageChannel?).self) { group in
                    for c in parameters.clients {
                        group.addTask {
                            let claim = Task { try await rendezvous.claim(jobID: jobID, stream: stream, peer: c, timeout: wait) }
                            let channel = await withTaskCancellationHandler {
                                await gone.race(c, claim)
                            } onCancel: { claim.cancel() }
                            return (c, channel)
                        }
                    }
                    var out: [String: any MessageChannel] = [:]
                    for await (c, channel) in group { if let channel { out[c] = channel; traffic.track(channel) } }
                    return out
                }
            },
            progress: { round in recorder.record(done: round.round, total: rounds, loss: round.loss) }).run()
        for c in models.values { traffic.add(sent: c.bytesSent, received: c.bytesReceived); await c.close() }
        let e = outcome.evaluation
        let model = ModelView(
            id: "model-" + jobID.dropFirst(4), jobID: jobID, specHash: try JobRepository.specHash(spec), mode: t.mode, role: "aggregator",
            createdAt: Date(), features: t.features, label: t.label,
            weights: Dictionary(uniqueKeysWithValues: zip(t.features, outcome.model.weights)), bias: outcome.model.bias,
            datasets: Dictionary(uniqueKeysWithValues: spec.parties.map { ($0.nodeID, $0.dataset) }), training: parameters.training,
            rounds: outcome.rounds, auc: e.auc, loss: e.loss, accuracy: e.accuracy, evaluatedRows: Int(e.count))
        let store = ModelRepository(store: self.store)
        return Completion(inputRows: 0, bytesSent: traffic.sent, bytesReceived: traffic.received, resultRows: 1, receivedResult: true,
                          details: ["model": .string(model.id), "rounds": .int(outcome.rounds.count), "auc": .string(String(format: "%.4f", e.auc)),
                                    "evaluated_by": .array(outcome.evaluatedBy.map { .string($0) })],
                          store: { db in try store.insert(db, model) })
    }
}

/// The parties of a training whose model session has ended; a claim for one of their sessions is abandoned.
actor GoneParties {
    private var gone = Set<String>()
    private var waiters: [String: [CheckedContinuation<Void, Never>]] = [:]

    func mark(_ party: String) {
        gone.insert(party)
        for w in waiters.removeValue(forKey: party) ?? [] { w.resume() }
    }

    private func waitGone(_ party: String) async {
        if gone.contains(party) { return }
        await withCheckedContinuation { waiters[party, default: []].append($0) }
    }

    /// The claimed session, or nil if the party is (or goes) away first or the claim fails. A session claimed
    /// after the party is known to be gone is closed.
    nonisolated func race(_ party: String, _ claim: Task<TLSMessageChannel, Error>) async -> TLSMessageChannel? {
        let goneFirst = Task { await self.waitGone(party); claim.cancel() }
        defer { goneFirst.cancel() }
        let result = try? await claim.value
        if await self.isGone(party), let result {
            result.abort()
            await result.close()
            return nil
        }
        return result
    }

    private func isGone(_ party: String) -> Bool { gone.contains(party) }
}

/// Bytes of a job's many short sessions, added up as they end.
final class TrafficTally: @unchecked Sendable {
    private let lock = NSLock()
    private var _sent: UInt64 = 0, _received: UInt64 = 0
    private var channels: [TLSMessageChannel] = []
    func add(sent: UInt64, received: UInt64) { lock.withLock { _sent += sent; _received += received } }
    /// Counts a channel's bytes when the totals are read (it may still be in use now).
    func track(_ c: TLSMessageChannel) { lock.withLock { channels.append(c) } }
    var sent: UInt64 { lock.withLock { _sent + channels.reduce(0) { $0 + $1.bytesSent } } }
    var received: UInt64 { lock.withLock { _received + channels.reduce(0) { $0 + $1.bytesReceived } } }
}
