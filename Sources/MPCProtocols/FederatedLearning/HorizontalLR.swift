import Foundation
import MPCLearning
import MPCWire

/// What the aggregator and every party of a horizontal training agree on
/// (Protocols/federated-lr-horizontal.md).
public struct HorizontalLRParameters: Sendable {
    public var jobID: String
    public var clients: [NodeID]
    public var server: NodeID
    public var features: Int
    public var training: TrainingParameters
    /// Score bins of the evaluation histograms (AUC resolution).
    public var bins: Int
    public var threshold: Int?
    public var roundTimeout: Duration

    public init(jobID: String, clients: [NodeID], server: NodeID, features: Int, training: TrainingParameters,
                bins: Int = 1000, threshold: Int? = nil, roundTimeout: Duration = .seconds(300)) {
        self.jobID = jobID
        self.clients = clients
        self.server = server
        self.features = features
        self.training = training
        self.bins = bins
        self.threshold = threshold
        self.roundTimeout = roundTimeout
    }

    /// The secure sum of one round: weighted parameters, the sample count and the weighted loss.
    func roundSum(_ round: Int) -> SecureAggregationParameters {
        SecureAggregationParameters(jobID: "\(jobID)/round-\(round)", clients: clients, server: server, length: features + 3,
                                    threshold: threshold, roundTimeout: roundTimeout)
    }

    /// The secure sum of the evaluation: both histograms, the loss sum and the correct count.
    var evaluationSum: SecureAggregationParameters {
        SecureAggregationParameters(jobID: "\(jobID)/evaluate", clients: clients, server: server, length: 2 * bins + 2,
                                    threshold: threshold, roundTimeout: roundTimeout)
    }

    /// Model parameters a client accepts from the server: finite and of a plausible size (a NaN or huge
    /// model would otherwise poison the local training and the fixed-point encoding).
    static func plausible(_ parameters: [Double]) -> Bool { parameters.allSatisfy { $0.isFinite && abs($0) <= 1e9 } }
}

/// One round of training as the aggregator saw it: the consortium's loss before the round's update
/// and who contributed.
public struct TrainingRound: Sendable, Codable, Equatable {
    public var round: Int
    public var loss: Double
    public var samples: Int
    public var contributors: [String]

    public init(round: Int, loss: Double, samples: Int, contributors: [String]) {
        self.round = round
        self.loss = loss
        self.samples = samples
        self.contributors = contributors
    }
}

extension ProtocolSession {
    func sendLR(_ fill: (inout Mpcnode_V1_LRMessage) -> Void) async throws { try await send(\.lr, fill) }

    func receiveLR() async throws -> Mpcnode_V1_LRMessage.OneOf_Body {
        try await receive("a training message") { if case .lr(let m)? = $0 { return m.body } else { return nil } }
    }
}

/// The aggregator of a horizontal training: sends the global model each round, receives the parties'
/// sample-weighted updates only as a secure sum, averages them (FedAvg), and at the end has the
/// consortium's evaluation computed from securely summed score histograms.
public struct HorizontalLRServer: Sendable {
    public struct Outcome: Sendable {
        public var model: LogisticModel
        public var rounds: [TrainingRound]
        public var evaluation: Metrics.Evaluation
        public var evaluatedBy: [NodeID]
    }

    public let parameters: HorizontalLRParameters
    public let modelChannels: [NodeID: any MessageChannel]
    /// The parties' sessions of one secure sum ("round-N", "evaluate"): those that opened one.
    public let sumChannels: @Sendable (String) async -> [NodeID: any MessageChannel]
    public let progress: (@Sendable (TrainingRound) -> Void)?

    public init(parameters: HorizontalLRParameters, modelChannels: [NodeID: any MessageChannel],
                sumChannels: @escaping @Sendable (String) async -> [NodeID: any MessageChannel],
                progress: (@Sendable (TrainingRound) -> Void)? = nil) {
        self.parameters = parameters
        self.modelChannels = modelChannels
        self.sumChannels = sumChannels
        self.progress = progress
    }

    public func run() async throws -> Outcome {
        var sessions: [NodeID: ProtocolSession] = [:]
        for (node, channel) in modelChannels where parameters.clients.contains(node) { sessions[node] = ProtocolSession(channel: channel) }
        var model = LogisticModel.zero(features: parameters.features)
        var rounds: [TrainingRound] = []
        do {
            for r in 1...max(1, parameters.training.rounds) {
                let p = model.parameters
                sessions = await broadcast(sessions) { try await $0.sendLR { $0.round = .with { $0.round = UInt32(r); $0.parameters = p } } }
                let sum = try await SecureAggregationServer(parameters: parameters.roundSum(r), channels: sumChannels("round-\(r)")).run()
                let totals = sum.sum.map(FixedPoint.decode)
                let samples = totals[parameters.features + 1]
                guard samples > 0 else { throw ProtocolError.protocolViolation(peer: parameters.server, detail: "round \(r): no training rows in the sum") }
                model = LogisticModel(parameters: Array(totals[0...parameters.features]).map { $0 / samples })
                let record = TrainingRound(round: r, loss: totals[parameters.features + 2] / samples, samples: Int(samples.rounded()),
                                           contributors: sum.included.sorted())
                progress?(record)
                let previous = rounds.last?.loss
                rounds.append(record)
                if let previous, abs(previous - record.loss) < parameters.training.tolerance { break }
            }
            let p = model.parameters, bins = parameters.bins
            sessions = await broadcast(sessions) { try await $0.sendLR { $0.evaluate = .with { $0.parameters = p; $0.bins = UInt32(bins) } } }
            let sum = try await SecureAggregationServer(parameters: parameters.evaluationSum, channels: sumChannels("evaluate")).run()
            var evaluation = Metrics.Evaluation(bins: bins)
            evaluation.positives = sum.sum[0..<bins].map { Int64(bitPattern: $0) }
            evaluation.negatives = sum.sum[bins..<(2 * bins)].map { Int64(bitPattern: $0) }
            evaluation.lossSum = FixedPoint.decode(sum.sum[2 * bins])
            evaluation.correct = Int64(bitPattern: sum.sum[2 * bins + 1])
            let done = Mpcnode_V1_LRDone.with {
                $0.parameters = p
                $0.rounds = UInt32(rounds.count)
                $0.auc = evaluation.auc
                $0.loss = evaluation.loss
                $0.accuracy = evaluation.accuracy
                $0.evaluated = UInt64(evaluation.count)
            }
            _ = await broadcast(sessions) { try await $0.sendLR { $0.done = done } }
            for s in sessions.values { await s.channel.close() }
            return Outcome(model: model, rounds: rounds, evaluation: evaluation, evaluatedBy: sum.included.sorted())
        } catch {
            await ProtocolSession.abortAll(Array(sessions.values), because: error, by: parameters.server)
            throw error
        }
    }

    /// Sends to every party still reachable; a party that cannot be reached is left out from then on.
    private func broadcast(_ sessions: [NodeID: ProtocolSession], _ send: @escaping @Sendable (ProtocolSession) async throws -> Void) async -> [NodeID: ProtocolSession] {
        await withTaskGroup(of: (NodeID, ProtocolSession?).self) { group in
            for (node, s) in sessions {
                group.addTask { (try? await send(s)) == nil ? (node, nil) : (node, s) }
            }
            var live: [NodeID: ProtocolSession] = [:]
            for await (node, s) in group { if let s { live[node] = s } }
            return live
        }
    }
}

/// A party of a horizontal training: trains on its own rows from the global model each round and
/// contributes its sample-weighted update only through secure aggregation; at the end it scores its
/// evaluation rows and contributes the histograms the same way.
public struct HorizontalLRClient: Sendable {
    public struct Outcome: Sendable {
        public var model: LogisticModel
        public var roundsContributed: [Int]
        public var done: Mpcnode_V1_LRDone
    }

    public let parameters: HorizontalLRParameters
    public let me: NodeID
    public let training: LabeledRows
    public let evaluation: LabeledRows
    public let modelChannel: any MessageChannel
    /// Runs `body` over this party's session of one secure sum ("round-N", "evaluate") with the aggregator.
    public let withSum: @Sendable (String, @Sendable (any MessageChannel) async throws -> Void) async throws -> Void
    public let authentication: KeyAuthentication
    public let auditRecordHash: [UInt8]
    /// Called after each round this party contributed to.
    public var onRound: (@Sendable (Int) -> Void)?
    /// Passed to each secure aggregation client (fault injection in end-to-end tests).
    public var afterSecureAggregationRound: (@Sendable (SecureAggregationClient.Round) -> Void)?

    public init(parameters: HorizontalLRParameters, me: NodeID, training: LabeledRows, evaluation: LabeledRows,
                modelChannel: any MessageChannel,
                withSum: @escaping @Sendable (String, @Sendable (any MessageChannel) async throws -> Void) async throws -> Void,
                authentication: KeyAuthentication, auditRecordHash: [UInt8] = []) {
        self.parameters = parameters
        self.me = me
        self.training = training
        self.evaluation = evaluation
        self.modelChannel = modelChannel
        self.withSum = withSum
        self.authentication = authentication
        self.auditRecordHash = auditRecordHash
    }

    public func run() async throws -> Outcome {
        let session = ProtocolSession(channel: modelChannel)
        let server = parameters.server
        var contributed: [Int] = []
        do {
            while true {
                switch try await session.receiveLR() {
                case .round(let round):
                    guard round.parameters.count == parameters.features + 1, HorizontalLRParameters.plausible(round.parameters) else {
                        throw ProtocolError.malformedMessage(peer: server, detail: "round \(round.round): \(round.parameters.count) parameters for \(parameters.features) features")
                    }
                    let (model, loss) = LocalTrainer.train(LogisticModel(parameters: round.parameters), on: training,
                                                           epochs: parameters.training.localEpochs, parameters: parameters.training)
                    let n = Double(training.count)
                    let update = model.parameters.map { $0 * n } + [n, loss * n]
                    guard update.allSatisfy({ FixedPoint.fits($0, parties: parameters.clients.count) }) else {
                        throw ProtocolError.parameterMismatch(peer: me, detail: "round \(round.round): the update is too large for fixed point (lower the learning rate)")
                    }
                    let sum = parameters.roundSum(Int(round.round)), me = me, authentication = authentication, hash = auditRecordHash
                    let input = update.map(FixedPoint.encode), fault = afterSecureAggregationRound
                    try await withSum("round-\(round.round)") { channel in
                        _ = try await SecureAggregationClient(parameters: sum, me: me, input: input, channel: channel,
                                                              authentication: authentication, auditRecordHash: hash, afterRound: fault).run()
                    }
                    onRound?(Int(round.round))
                    contributed.append(Int(round.round))
                case .evaluate(let e):
                    guard e.parameters.count == parameters.features + 1, Int(e.bins) == parameters.bins, HorizontalLRParameters.plausible(e.parameters) else {
                        throw ProtocolError.malformedMessage(peer: server, detail: "evaluation parameters do not match the job")
                    }
                    let local = Metrics.Evaluation(model: LogisticModel(parameters: e.parameters), data: evaluation, bins: parameters.bins)
                    let vector = local.positives.map { UInt64(bitPattern: $0) } + local.negatives.map { UInt64(bitPattern: $0) }
                        + [FixedPoint.encode(local.lossSum), UInt64(bitPattern: local.correct)]
                    let sum = parameters.evaluationSum, me = me, authentication = authentication, hash = auditRecordHash
                    try await withSum("evaluate") { channel in
                        _ = try await SecureAggregationClient(parameters: sum, me: me, input: vector, channel: channel,
                                                              authentication: authentication, auditRecordHash: hash).run()
                    }
                case .done(let done):
                    guard done.parameters.count == parameters.features + 1, HorizontalLRParameters.plausible(done.parameters) else {
                        throw ProtocolError.malformedMessage(peer: server, detail: "the final model does not match the job or is not finite")
                    }
                    await modelChannel.close()
                    return Outcome(model: LogisticModel(parameters: done.parameters), roundsContributed: contributed, done: done)
                }
            }
        } catch {
            await ProtocolSession.abortAll([session], because: error, by: me)
            throw error
        }
    }
}
