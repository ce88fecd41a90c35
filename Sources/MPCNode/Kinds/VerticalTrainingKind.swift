import Foundation
import GRDB
import MPCLearning
import MPCProtocols
import MPCTransport
import MPCWire

/// `train-lr --mode vertical` (Protocols/federated-lr-vertical.md): the guest (first party: the label and
/// its features) and one or more hosts (the other parties: their features of the same customers) align
/// their rows by PSI (`VerticalRows`), then train with the arbiter's Paillier key; each stores only its
/// own block of the model. Sessions: "align" and "aligned" (guest → each host), "vlr" (guest → each host,
/// guest → arbiter, host → arbiter, host i → host i+1), "evaluate" (each host → guest).
struct VerticalTrainingKind: JobKind {
    static let mode = TrainingMode.vertical.rawValue
    let name = HorizontalTrainingKind.trainingName

    func accepts(_ submission: JobSubmission) -> Bool { submission.protocolName == name && submission.training?.mode == Self.mode }
    func describes(_ spec: Mpcnode_V1_JobSpec) -> Bool {
        guard spec.protocol == name, case .training(let t)? = spec.kind else { return false }
        return t.mode == Self.mode
    }

    func validateNames(_ spec: Mpcnode_V1_JobSpec) throws { try HorizontalTrainingKind.validateTrainingNames(spec.training) }

    func checkShape(_ spec: Mpcnode_V1_JobSpec) throws {
        try checkCommonShape(spec)
        try HorizontalTrainingKind.checkTrainingShape(spec)
        guard spec.training.keyBits == 0 || [1024, 2048, 3072, 4096].contains(spec.training.keyBits) else {
            throw JobError.malformedSpec("Paillier modulus of \(spec.training.keyBits) bits (1024 for tests, 2048, 3072 or 4096)")
        }
        let listed = spec.training.partyFeatures.map(\.nodeID)
        guard Set(listed) == Set(spec.parties.map(\.nodeID)), listed.count == spec.parties.count,
              spec.training.partyFeatures.allSatisfy({ (1...10_000).contains($0.features.count) }) else {
            throw JobError.malformedSpec("each party's features are listed once, 1 to 10000 of them")
        }
    }

    func prepare(_ submission: JobSubmission, into spec: inout Mpcnode_V1_JobSpec, context: SubmissionContext) throws {
        guard submission.parties.count >= 2 else { throw JobError.invalidSubmission("train-lr needs at least two --party options") }
        spec.training = try validate(submission, context: context)
    }

    func participants(of spec: Mpcnode_V1_JobSpec) -> [String] { HorizontalTrainingKind.partiesAndAggregator(spec.training, spec) }

    /// The arbiter's outcome is the job's; every party's failure ends it (no dropouts in vertical training).
    func outcomeOwner(of spec: Mpcnode_V1_JobSpec) -> String? { spec.training.aggregator }

    func failureIsDropout(_ spec: Mpcnode_V1_JobSpec, node: String, error: Error?) -> Bool { false }

    func roleWithoutData(of node: String, in spec: Mpcnode_V1_JobSpec) -> String? {
        spec.training.aggregator == node && !spec.parties.contains { $0.nodeID == node } ? "arbiter" : nil
    }

    func policyUse(_ spec: Mpcnode_V1_JobSpec) -> JobProtocolUse { .trainLR }

    func checkPolicy(_ spec: Mpcnode_V1_JobSpec, mine: Mpcnode_V1_PartyInput, rule: DatasetPolicy, policy: NodePolicy,
                     nodeID: String) -> PolicyDecision {
        // This party's own features and the identifier column for the alignment; the label at the guest.
        let own = VerticalRows.ownFeatures(spec, nodeID: nodeID)
        var used = own + [mine.column]
        let isGuest = spec.parties.first?.nodeID == nodeID
        if isGuest { used.append(spec.training.label) }
        let t = spec.training
        // This party's own floors, whatever the coordinator asks: the Paillier modulus, the batch size.
        let bits = t.keyBits == 0 ? 2048 : Int(t.keyBits)
        guard bits >= policy.minimumPaillierBits else {
            return .refused(reason: "a Paillier modulus of \(bits) bits is below this node's floor of \(policy.minimumPaillierBits) (min_paillier_bits)")
        }
        let width = own.count + (isGuest ? 1 : 0), floor = rule.minimumBatchRowsPerFeature * (width + (isGuest ? 0 : 1))
        guard Int(t.batchSize) >= floor else {
            return .refused(reason: "batch size \(t.batchSize) is below this dataset's floor of \(floor) rows (min_batch_rows_per_feature \(rule.minimumBatchRowsPerFeature) × \(own.count) features + 1): a smaller batch's gradient reveals the residuals, and with them the labels")
        }
        // The hold-out evaluation sends a host's partial margins of those rows to the guest in the clear.
        if t.holdout > 0 || !t.evalDataset.isEmpty {
            guard t.holdout <= rule.maximumHoldout else {
                return .refused(reason: "a hold-out share of \(t.holdout) exceeds this dataset's maximum of \(rule.maximumHoldout) (max_holdout)")
            }
            if !isGuest, let guest = spec.parties.first?.nodeID, !rule.resultRecipients.contains(guest) {
                return .refused(reason: "the evaluation sends partial scores of dataset '\(mine.dataset)' to \(guest), which is not among its result_recipients")
            }
        }
        return HorizontalTrainingKind.checkTrainingPolicy(spec, used: used, mine: mine, rule: rule, policy: policy,
                                                          modelRecipient: spec.training.aggregator)
    }

    func inputSize(_ spec: Mpcnode_V1_JobSpec, mine: Mpcnode_V1_PartyInput, catalog: DatasetCatalog) throws -> Int? {
        try? catalog.describe(mine.dataset).rowCount
    }

    func run(_ context: RoleContext) async throws -> RoleCompletion {
        context.spec.training.aggregator == context.nodeID ? try await runArbiter(context) : try await runParty(context)
    }

    private func validate(_ submission: JobSubmission, context: SubmissionContext) throws -> Mpcnode_V1_TrainingSpec {
        guard let t = submission.training else {
            throw JobError.invalidSubmission("train-lr needs --aggregator, --features and --label")
        }
        let parties = submission.parties.map(\.nodeID)
        guard parties.count >= 2 else {
            throw JobError.invalidSubmission("vertical training takes the guest (label holder) first, then one or more hosts (feature holders)")
        }
        guard !parties.contains(t.aggregator), t.aggregator != context.nodeID, context.peers[t.aggregator] != nil else {
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
            $0.mode = Self.mode
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

    /// The protocol's parameters at this node: the spec's, with this node's own floors (`rule` is its
    /// dataset's policy; the arbiter has none).
    static func parameters(_ spec: Mpcnode_V1_JobSpec, rows: Int, policy: NodePolicy, rule: DatasetPolicy?) -> VerticalLRParameters {
        let t = spec.training
        return VerticalLRParameters(jobID: spec.jobID, guest: spec.parties[0].nodeID, hosts: spec.parties.dropFirst().map(\.nodeID),
                                    arbiter: t.aggregator, rows: rows,
                                    training: TrainingParameters(rounds: Int(t.rounds), localEpochs: 1, learningRate: t.learningRate, l2: t.l2,
                                                                 batchSize: Int(t.batchSize), tolerance: t.tolerance),
                                    keyBits: t.keyBits == 0 ? 2048 : Int(t.keyBits),
                                    widths: Dictionary(t.partyFeatures.map { ($0.nodeID, $0.features.count) }, uniquingKeysWith: { a, _ in a }),
                                    minimumBatchRowsPerFeature: rule?.minimumBatchRowsPerFeature ?? DatasetPolicy.defaultMinimumBatchRowsPerFeature,
                                    minimumKeyBits: policy.minimumPaillierBits, residualNoise: rule?.residualNoise ?? 0)
    }

    private func runParty(_ context: RoleContext) async throws -> RoleCompletion {
        let spec = context.spec, jobID = context.jobID, t = spec.training, nodeID = context.nodeID
        let (index, mine) = try context.myInput()
        let isGuest = index == 0
        let guestID = spec.parties[0].nodeID
        let hosts = spec.parties.dropFirst().map(\.nodeID)
        let features = t.partyFeatures.first { $0.nodeID == nodeID }?.features ?? []
        let (order, alignment) = try await VerticalRows.align(context, index: index)
        let all = try TrainingData.loadAligned(store: context.store, catalog: context.catalog, dataset: mine.dataset, idColumn: mine.column, ids: order,
                                               features: features, label: isGuest ? t.label : nil)
        // The same rows are held out on every side: the split depends only on the job id and the agreed order.
        let (aligned, evaluation) = TrainingData.holdOut(all, share: t.holdout, jobID: jobID)
        guard aligned.count >= 2 else { throw TrainingError.noRows(dataset: mine.dataset) }
        context.logger.info("vertical training aligned", metadata: ["job": "\(jobID)", "rows": "\(aligned.count)", "role": "\(isGuest ? "guest" : "host")"])
        // 2. Training.
        let parameters = Self.parameters(spec, rows: aligned.count, policy: context.configuration.policy,
                                         rule: context.configuration.policy.datasets[mine.dataset])
        let traffic = SessionTraffic()
        let recorder = context.progressRecorder(unit: "epochs"), epochs = Int(t.rounds)
        let onEpoch: @Sendable (Int, Double) -> Void = { epoch, loss in recorder.record(done: epoch, total: epochs, loss: loss) }
        recorder.record(done: 0, total: epochs)
        let result: (weights: [Double], bias: Double, losses: [Double])
        if isGuest {
            result = try await context.withSessions(stream: "vlr", to: hosts) { toHosts in
                try await context.withSession(stream: "vlr", to: t.aggregator) { arbiter in
                    var guest = VerticalLRGuest(parameters: parameters, data: aligned, hosts: toHosts, arbiter: arbiter)
                    guest.onEpoch = onEpoch
                    let (model, losses) = try await guest.run()
                    for c in toHosts + [arbiter] { traffic.add(sent: c.bytesSent, received: c.bytesReceived) }
                    return (model.weights, model.bias, losses)
                }
            }
        } else {
            // The chain of hosts: the guest's session, the previous host's (not for the first host).
            var claims = [("vlr", guestID)]
            if index > 1 { claims.append(("vlr", spec.parties[index - 1].nodeID)) }
            let claimed = try await context.claimAll(claims)
            let guest = claimed["vlr/\(guestID)"]!, previous = index > 1 ? claimed["vlr/\(spec.parties[index - 1].nodeID)"] : nil
            let nextHost = index + 1 < spec.parties.count ? [spec.parties[index + 1].nodeID] : []
            result = try await context.sessions.using(Array(claimed.values)) {
                try await context.withSession(stream: "vlr", to: t.aggregator) { arbiter in
                    try await context.withSessions(stream: "vlr", to: nextHost) { next in
                        var host = VerticalLRHost(parameters: parameters, features: aligned, guest: guest, arbiter: arbiter,
                                                  previous: previous, next: next.first)
                        host.onEpoch = onEpoch
                        let (weights, losses) = try await host.run()
                        for c in [guest, arbiter] + next + (previous.map { [$0] } ?? []) { traffic.add(sent: c.bytesSent, received: c.bytesReceived) }
                        return (weights, 0, losses)
                    }
                }
            }
        }
        // 3. Evaluation on the held-out rows: each host sends its partial margins of those rows (as in predict);
        // the guest scores them with the labels it holds.
        var metrics: Metrics.Evaluation?
        if evaluation.count > 0 {
            let joint = LogisticModel(weights: result.weights, bias: result.bias)  // the bias is 0 at a host
            let margins = (0..<evaluation.count).map { i in joint.margin(evaluation.row(i)) }
            let scoring = try await VerticalScoring(guest: guestID, hosts: hosts, me: nodeID, stream: VerticalScoring.evaluateStream,
                                                    sessionWait: context.sessionWaitTimeout).run(ownMargins: margins, port: context.sessions)
            traffic.add(sent: scoring.bytesSent, received: scoring.bytesReceived)
            if let scores = scoring.scores {
                var e = Metrics.Evaluation(bins: 1000)
                for (i, p) in scores.enumerated() { e.add(probability: p, label: evaluation.labels[i]) }
                metrics = e
            }
        }
        let model = ModelView(
            id: "model-" + jobID.dropFirst(4) + "-" + nodeID, jobID: jobID, specHash: try context.specHash(), mode: Self.mode,
            role: isGuest ? "guest" : "host", createdAt: Date(), features: features, label: isGuest ? t.label : "",
            weights: Dictionary(uniqueKeysWithValues: zip(features, result.weights)), bias: result.bias,
            datasets: Dictionary(uniqueKeysWithValues: spec.parties.map { ($0.nodeID, $0.dataset) }), training: parameters.training,
            rounds: result.losses.enumerated().map { TrainingRound(round: $0.offset + 1, loss: $0.element, samples: aligned.count,
                                                                   contributors: spec.parties.map(\.nodeID)) },
            auc: metrics?.auc, loss: metrics?.loss ?? result.losses.last, accuracy: metrics?.accuracy, evaluatedRows: metrics.map { Int($0.count) })
        let models = ModelRepository(store: context.store)
        return RoleCompletion(inputRows: alignment.ownSetSize, bytesSent: alignment.bytesSent + traffic.sent,
                          bytesReceived: alignment.bytesReceived + traffic.received, resultRows: 1, receivedResult: true,
                          details: ["model": .string(model.id), "aligned_rows": .int(aligned.count), "epochs": .int(result.losses.count)],
                          store: { db in try models.insert(db, model) })
    }

    // MARK: - Arbiter

    private func runArbiter(_ context: RoleContext) async throws -> RoleCompletion {
        let spec = context.spec, jobID = context.jobID, t = spec.training
        try context.recordStarted([
            "role": .string("arbiter"),
            "guest": .string(spec.parties[0].nodeID), "hosts": .string(spec.parties.dropFirst().map(\.nodeID).joined(separator: ",")),
        ])
        let parameters = Self.parameters(spec, rows: 0, policy: context.configuration.policy, rule: nil)
        let claimed = try await context.claimAll(([parameters.guest] + parameters.hosts).map { ("vlr", $0) }, timeout: RoleContext.setPhaseTimeout)
        let guest = claimed["vlr/\(parameters.guest)"]!, hosts = parameters.hosts.map { claimed["vlr/\($0)"]! }
        var arbiter = VerticalLRArbiter(parameters: parameters, guest: guest, hosts: hosts)
        let recorder = context.progressRecorder(unit: "epochs"), epochs = Int(t.rounds)
        arbiter.onEpoch = { epoch, loss in recorder.record(done: epoch, total: epochs, loss: loss) }
        recorder.record(done: 0, total: epochs)
        let losses = try await context.sessions.using(Array(claimed.values)) { try await arbiter.run() }
        let sent = claimed.values.reduce(0) { $0 + $1.bytesSent }, received = claimed.values.reduce(0) { $0 + $1.bytesReceived }
        let model = ModelView(
            id: "model-" + jobID.dropFirst(4), jobID: jobID, specHash: try context.specHash(), mode: Self.mode, role: "arbiter",
            createdAt: Date(), features: [], label: "", weights: [:], bias: 0,
            datasets: Dictionary(uniqueKeysWithValues: spec.parties.map { ($0.nodeID, $0.dataset) }), training: parameters.training,
            rounds: losses.enumerated().map { TrainingRound(round: $0.offset + 1, loss: $0.element, samples: 0, contributors: spec.parties.map(\.nodeID)) },
            auc: nil, loss: losses.last, accuracy: nil, evaluatedRows: nil)
        let models = ModelRepository(store: context.store)
        return RoleCompletion(inputRows: 0, bytesSent: sent, bytesReceived: received, resultRows: 1, receivedResult: true,
                          details: ["model": .string(model.id), "epochs": .int(losses.count)], store: { db in try models.insert(db, model) })
    }
}
