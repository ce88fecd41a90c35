import Foundation
import GRDB
import MPCLearning
import MPCProtocols
import MPCTransport
import MPCWire

/// `train-lr --mode horizontal` (Protocols/federated-lr-horizontal.md): the parties hold the same
/// features of different customers; each trains on its own SQLite rows and contributes its updates by
/// secure aggregation; the aggregator (never a party) runs the FedAvg rounds and receives the model.
/// Sessions: "model" (party → aggregator, the whole training) and one per secure sum ("round-N",
/// "evaluate"). The job is the aggregator's: a party lost in a round is left out of later rounds.
struct HorizontalTrainingKind: JobKind {
    /// The wire name both training modes share (the mode tells them apart).
    static let trainingName = JobKindName.trainLR.rawValue
    static let mode = TrainingMode.horizontal.rawValue

    /// The names in a training spec, of either mode.
    static func validateTrainingNames(_ t: Mpcnode_V1_TrainingSpec) throws {
        if !t.aggregator.isEmpty { try PeerSuppliedName.nodeID.validate(t.aggregator, field: "aggregator") }
        for f in t.features { try PeerSuppliedName.column.validate(f, field: "feature column") }
        if !t.label.isEmpty { try PeerSuppliedName.column.validate(t.label, field: "label column") }
        if !t.evalDataset.isEmpty { try PeerSuppliedName.dataset.validate(t.evalDataset, field: "evaluation dataset") }
        try PeerSuppliedName.validate(featureHolders: t.partyFeatures)
    }
    let name = HorizontalTrainingKind.trainingName

    func accepts(_ submission: JobSubmission) -> Bool {
        submission.protocolName == name && submission.training?.mode != VerticalTrainingKind.mode
    }

    func describes(_ spec: Mpcnode_V1_JobSpec) -> Bool {
        guard spec.protocol == name, case .training(let t)? = spec.kind else { return false }
        return t.mode != VerticalTrainingKind.mode
    }

    func validateNames(_ spec: Mpcnode_V1_JobSpec) throws { try HorizontalTrainingKind.validateTrainingNames(spec.training) }

    func checkShape(_ spec: Mpcnode_V1_JobSpec) throws {
        try checkCommonShape(spec)
        try Self.checkTrainingShape(spec)
        guard (2...100_000).contains(spec.training.bins) else { throw JobError.malformedSpec("bins \(spec.training.bins) must lie in 2…100000") }
    }

    /// The hyper-parameters every participant checks itself, whatever the coordinator sent: a NaN
    /// learning rate or four billion rounds would otherwise run (or trap) at every party.
    static func checkTrainingShape(_ spec: Mpcnode_V1_JobSpec) throws {
        let t = spec.training
        guard !t.aggregator.isEmpty, !spec.parties.contains(where: { $0.nodeID == t.aggregator }), t.aggregator != spec.coordinator else {
            throw JobError.malformedSpec("the aggregator must be named and be neither a party nor the coordinator")
        }
        guard (1...10_000).contains(t.rounds), t.localEpochs <= 1000, (1...(1 << 20)).contains(t.batchSize) else {
            throw JobError.malformedSpec("rounds 1…10000, local epochs ≤ 1000, batch size 1…1048576")
        }
        guard t.learningRate.isFinite, t.learningRate > 0, t.learningRate <= 100, t.l2.isFinite, t.l2 >= 0, t.l2 <= 100,
              t.tolerance.isFinite, t.tolerance >= 0, t.holdout.isFinite, (0..<0.9).contains(t.holdout) else {
            throw JobError.malformedSpec("learning rate in (0, 100], l2 and tolerance finite and ≥ 0, hold-out share in [0, 0.9)")
        }
    }

    func prepare(_ submission: JobSubmission, into spec: inout Mpcnode_V1_JobSpec, context: SubmissionContext) throws {
        spec.training = try validate(submission, context: context)
    }

    func participants(of spec: Mpcnode_V1_JobSpec) -> [String] { Self.partiesAndAggregator(spec.training, spec) }

    /// The parties, then the training's aggregator (the arbiter of a vertical job) unless it is one of them.
    static func partiesAndAggregator(_ t: Mpcnode_V1_TrainingSpec, _ spec: Mpcnode_V1_JobSpec) -> [String] {
        var nodes = spec.parties.map(\.nodeID)
        if !nodes.contains(t.aggregator) { nodes.append(t.aggregator) }
        return nodes
    }

    func outcomeOwner(of spec: Mpcnode_V1_JobSpec) -> String? { spec.training.aggregator }

    func failureIsDropout(_ spec: Mpcnode_V1_JobSpec, node: String, error: Error?) -> Bool { node != spec.training.aggregator }

    func roleWithoutData(of node: String, in spec: Mpcnode_V1_JobSpec) -> String? {
        spec.training.aggregator == node && !spec.parties.contains { $0.nodeID == node } ? "aggregator" : nil
    }

    func policyUse(_ spec: Mpcnode_V1_JobSpec) -> JobProtocolUse { .trainLR }

    func checkPolicy(_ spec: Mpcnode_V1_JobSpec, mine: Mpcnode_V1_PartyInput, rule: DatasetPolicy, policy: NodePolicy,
                     nodeID: String) -> PolicyDecision {
        // Each round's update is a secure sum with the default threshold: this dataset's floor applies to it.
        let parties = spec.parties.count
        if let refusal = rule.sumThresholdRefusal(threshold: SecureAggregationParameters.defaultThreshold(clients: parties), clients: parties) {
            return .refused(reason: refusal)
        }
        return Self.checkTrainingPolicy(spec, used: spec.training.features + [spec.training.label], mine: mine, rule: rule, policy: policy,
                                 modelRecipient: spec.training.aggregator)
    }

    /// The rules every kind that reads training columns shares: each column it uses must be allowed,
    /// an evaluation dataset must be exposed to training, and the model may go only to an allowed recipient.
    static func checkTrainingPolicy(_ spec: Mpcnode_V1_JobSpec, used: [String], mine: Mpcnode_V1_PartyInput, rule: DatasetPolicy,
                                    policy: NodePolicy, modelRecipient: String?) -> PolicyDecision {
        for column in used where !rule.columns.contains(column) {
            return .refused(reason: "column '\(column)' of dataset '\(mine.dataset)' may not be used for training")
        }
        if !spec.training.evalDataset.isEmpty && policy.datasets[spec.training.evalDataset]?.protocols.contains(.trainLR) != true {
            return .refused(reason: "evaluation dataset '\(spec.training.evalDataset)' is not exposed to train-lr")
        }
        if let modelRecipient, !rule.resultRecipients.contains(modelRecipient) {
            return .refused(reason: "\(modelRecipient) may not receive a model trained on dataset '\(mine.dataset)'")
        }
        return .allowed
    }

    func inputSize(_ spec: Mpcnode_V1_JobSpec, mine: Mpcnode_V1_PartyInput, catalog: DatasetCatalog) throws -> Int? {
        try? catalog.describe(mine.dataset).rowCount
    }

    func run(_ context: RoleContext) async throws -> RoleCompletion {
        context.spec.training.aggregator == context.nodeID ? try await runAggregator(context) : try await runParty(context)
    }

    private func validate(_ submission: JobSubmission, context: SubmissionContext) throws -> Mpcnode_V1_TrainingSpec {
        let parties = submission.parties.map(\.nodeID)
        guard let t = submission.training else {
            throw JobError.invalidSubmission("train-lr needs --aggregator, --features and --label")
        }
        guard t.mode == Self.mode else {
            throw JobError.invalidSubmission("train-lr --mode \(t.mode) is unknown (available: \(Self.mode), \(VerticalTrainingKind.mode))")
        }
        guard parties.count >= 2 else { throw JobError.invalidSubmission("train-lr needs at least two --party options") }
        guard !parties.contains(t.aggregator), t.aggregator != context.nodeID else {
            throw JobError.invalidSubmission("the aggregator \(t.aggregator) must be neither a party nor the coordinator")
        }
        try context.requireKnown(t.aggregator)
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

    static func parameters(_ spec: Mpcnode_V1_JobSpec, roundTimeout: Duration) -> HorizontalLRParameters {
        let t = spec.training
        return HorizontalLRParameters(
            jobID: spec.jobID, clients: spec.parties.map(\.nodeID), server: t.aggregator, features: t.features.count,
            training: TrainingParameters(rounds: Int(t.rounds), localEpochs: Int(t.localEpochs), learningRate: t.learningRate,
                                         l2: t.l2, batchSize: Int(t.batchSize), tolerance: t.tolerance),
            bins: Int(t.bins), roundTimeout: roundTimeout)
    }

    // MARK: - Party

    private func runParty(_ context: RoleContext) async throws -> RoleCompletion {
        let spec = context.spec, jobID = context.jobID, t = spec.training, nodeID = context.nodeID
        let store = context.store, catalog = context.catalog
        let (_, mine) = try context.myInput()
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
        let parameters = Self.parameters(spec, roundTimeout: context.roundTimeout)
        let startedHash = try context.recordStarted([
            "aggregator": .string(t.aggregator),
            "dataset": .string(mine.dataset), "training_rows": .int(training.count), "evaluation_rows": .int(evaluation.count),
        ])
        context.logger.info("training", metadata: ["job": "\(jobID)", "rows": "\(training.count)", "aggregator": "\(t.aggregator)"])
        let auth = try context.keyAuthentication()
        let me = nodeID
        let recorder = context.progressRecorder(unit: "rounds")
        let rounds = Int(t.rounds)
        recorder.record(done: 0, total: rounds)
        let (outcome, sent, received) = try await context.withSession(stream: "model", to: t.aggregator) { channel in
            let traffic = SessionTraffic()
            var client = HorizontalLRClient(
                parameters: parameters, me: me, training: training, evaluation: evaluation, modelChannel: channel,
                withSum: { stream, body in
                    try await context.withSession(stream: stream, to: parameters.server) { sum in
                        try await body(sum)
                        traffic.add(sent: sum.bytesSent, received: sum.bytesReceived)
                    }
                },
                authentication: auth, auditRecordHash: AuditLog.hashBytes(startedHash))
            client.onRound = { r in recorder.record(done: r, total: rounds) }
            client.afterSecureAggregationRound = context.faults?.afterSecureAggregationRound
            let o = try await client.run()
            return (o, channel.bytesSent + traffic.sent, channel.bytesReceived + traffic.received)
        }
        let model = ModelView(
            id: "model-" + jobID.dropFirst(4) + "-" + nodeID, jobID: jobID, specHash: try context.specHash(), mode: t.mode, role: "party",
            createdAt: Date(), features: t.features, label: t.label,
            weights: Dictionary(uniqueKeysWithValues: zip(t.features, outcome.model.weights)), bias: outcome.model.bias,
            datasets: [nodeID: mine.dataset], training: parameters.training, rounds: [],
            auc: outcome.done.auc, loss: outcome.done.loss, accuracy: outcome.done.accuracy, evaluatedRows: Int(outcome.done.evaluated))
        let models = ModelRepository(store: store)
        return RoleCompletion(inputRows: training.count, bytesSent: sent, bytesReceived: received, resultRows: 1, receivedResult: true,
                          details: ["model": .string(model.id), "rounds_contributed": .array(outcome.roundsContributed.map { .int($0) }),
                                    "evaluation_rows": .int(evaluation.count)],
                          store: { db in try models.insert(db, model) })
    }

    // MARK: - Aggregator

    private func runAggregator(_ context: RoleContext) async throws -> RoleCompletion {
        let spec = context.spec, jobID = context.jobID, t = spec.training
        let parameters = Self.parameters(spec, roundTimeout: context.roundTimeout)
        try context.recordStarted([
            "role": .string("aggregator"),
            "parties": .array(parameters.clients.map { .string($0) }), "rounds": .int(Int(t.rounds)),
        ])
        let sessions = context.sessions, wait = context.sessionWaitTimeout
        let models = try await context.claimAll(parameters.clients.map { ("model", $0) })
        var channels: [String: any MessageChannel] = [:]
        for c in parameters.clients { channels[c] = models["model/\(c)"] }
        let recorder = context.progressRecorder(unit: "rounds")
        let rounds = Int(t.rounds)
        recorder.record(done: 0, total: rounds)
        let traffic = SessionTraffic()
        // A party never sends on its model session: anything arriving there (its end, an abort, a lost
        // connection) means it is gone, and later sums stop waiting for it.
        let gone = GoneParties()
        let watchers = channels.map { (c, channel) in Task { _ = try? await channel.receive(); await gone.mark(c) } }
        defer { for w in watchers { w.cancel() } }
        let outcome = try await HorizontalLRServer(
            parameters: parameters, modelChannels: channels,
            sumChannels: { stream in
                // Parties that do not open their session of this sum in time, or are gone, are left out of it (dropouts).
                await withTaskGroup(of: (String, (any MessageChannel)?).self) { group in
                    for c in parameters.clients {
                        group.addTask {
                            let claim = Task { try await sessions.accept(stream: stream, from: c, timeout: wait) }
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
            id: "model-" + jobID.dropFirst(4), jobID: jobID, specHash: try context.specHash(), mode: t.mode, role: "aggregator",
            createdAt: Date(), features: t.features, label: t.label,
            weights: Dictionary(uniqueKeysWithValues: zip(t.features, outcome.model.weights)), bias: outcome.model.bias,
            datasets: Dictionary(uniqueKeysWithValues: spec.parties.map { ($0.nodeID, $0.dataset) }), training: parameters.training,
            rounds: outcome.rounds, auc: e.auc, loss: e.loss, accuracy: e.accuracy, evaluatedRows: Int(clamping: e.count))
        let store = ModelRepository(store: context.store)
        return RoleCompletion(inputRows: 0, bytesSent: traffic.sent, bytesReceived: traffic.received, resultRows: 1, receivedResult: true,
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
    nonisolated func race(_ party: String, _ claim: Task<any MessageChannel, Error>) async -> (any MessageChannel)? {
        let goneFirst = Task { await self.waitGone(party); claim.cancel() }
        defer { goneFirst.cancel() }
        let result = try? await claim.value
        if await self.isGone(party), let result {
            await result.abort()
            return nil
        }
        return result
    }

    private func isGone(_ party: String) -> Bool { gone.contains(party) }
}

