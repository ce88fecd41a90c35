import Crypto
import Foundation
import GRDB
import MPCCrypto
import MPCLearning
import MPCProtocols
import MPCTransport
import MPCWire

/// The roles of a `train-lr --mode vertical` job (Protocols/federated-lr-vertical.md): the guest (first
/// party: label and its features) and one or more hosts (the other parties: their features) align their
/// rows by PSI on their identifier columns (the guest with each host; the guest tells each host which of
/// its rows all parties hold), order the common identifiers by a keyed hash, and train with the arbiter's
/// Paillier key. Sessions: "align" and "aligned" (guest → each host), "vlr" (guest → each host, guest →
/// arbiter, host → arbiter, host i → host i+1), "evaluate" (each host → guest).
extension JobEngine {
    func validateVerticalSubmission(_ submission: JobSubmission, _ t: JobSubmission.TrainingOptions) throws -> Mpcnode_V1_TrainingSpec {
        let parties = submission.parties.map(\.nodeID)
        guard parties.count >= 2 else {
            throw JobError.invalidSubmission("vertical training takes the guest (label holder) first, then one or more hosts (feature holders)")
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
        return VerticalLRParameters(jobID: spec.jobID, guest: spec.parties[0].nodeID, hosts: spec.parties.dropFirst().map(\.nodeID),
                                    arbiter: t.aggregator, rows: rows,
                                    training: TrainingParameters(rounds: Int(t.rounds), localEpochs: 1, learningRate: t.learningRate, l2: t.l2,
                                                                 batchSize: Int(t.batchSize), tolerance: t.tolerance),
                                    keyBits: t.keyBits == 0 ? 2048 : Int(t.keyBits))
    }

    func runVerticalParty(_ spec: Mpcnode_V1_JobSpec, scratch: JobScratch) async throws -> Completion {
        let jobID = spec.jobID, t = spec.training
        guard let index = spec.parties.firstIndex(where: { $0.nodeID == nodeID }) else {
            throw JobError.invalidSubmission("this node is not a party of \(jobID)")
        }
        let isGuest = index == 0
        let mine = spec.parties[index], guestID = spec.parties[0].nodeID
        let hosts = spec.parties.dropFirst().map(\.nodeID)
        let features = t.partyFeatures.first { $0.nodeID == nodeID }?.features ?? []
        let (order, alignment) = try await alignVertically(spec, index: index, scratch: scratch)
        let all = try TrainingData.loadAligned(store: store, catalog: catalog, dataset: mine.dataset, idColumn: mine.column, ids: order,
                                               features: features, label: isGuest ? t.label : nil)
        // The same rows are held out on every side: the split depends only on the job id and the agreed order.
        let (aligned, evaluation) = TrainingData.holdOut(all, share: t.holdout, jobID: jobID)
        guard aligned.count >= 2 else { throw TrainingError.noRows(dataset: mine.dataset) }
        logger.info("vertical training aligned", metadata: ["job": "\(jobID)", "rows": "\(aligned.count)", "role": "\(isGuest ? "guest" : "host")"])
        // 2. Training.
        let transport = self.transport, rendezvous = self.rendezvous, wait = sessionWaitTimeout
        let arbiterAddress = try address(of: t.aggregator)
        let parameters = Self.verticalParameters(spec, rows: aligned.count)
        let traffic = TrafficTally()
        let recorder = progressRecorder(spec, unit: "epochs"), epochs = Int(t.rounds)
        let onEpoch: @Sendable (Int, Double) -> Void = { epoch, loss in recorder.record(done: epoch, total: epochs, loss: loss) }
        recorder.record(done: 0, total: epochs)
        let result: (weights: [Double], bias: Double, losses: [Double])
        if isGuest {
            let hostAddresses = try hosts.map { ($0, try address(of: $0)) }
            result = try await Self.withSessions(transport, jobID: jobID, stream: "vlr", to: hostAddresses) { toHosts in
                try await transport.withSession(jobID: jobID, stream: "vlr", to: t.aggregator, at: arbiterAddress) { arbiter in
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
            let claimed = try await Self.claimAll(rendezvous, jobID: jobID, sessions: claims, timeout: wait)
            let guest = claimed["vlr/\(guestID)"]!, previous = index > 1 ? claimed["vlr/\(spec.parties[index - 1].nodeID)"] : nil
            let nextHost = try (index + 1 < spec.parties.count ? [spec.parties[index + 1].nodeID] : []).map { ($0, try address(of: $0)) }
            result = try await TLSMessageChannel.using(Array(claimed.values)) {
                try await transport.withSession(jobID: jobID, stream: "vlr", to: t.aggregator, at: arbiterAddress) { arbiter in
                    try await Self.withSessions(transport, jobID: jobID, stream: "vlr", to: nextHost) { next in
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
            if isGuest {
                let hostMargins = try await receivePartialScores(jobID: jobID, stream: "evaluate", from: hosts, count: evaluation.count, traffic: traffic)
                let joint = LogisticModel(weights: result.weights, bias: result.bias)
                var e = Metrics.Evaluation(bins: 1000)
                for i in 0..<evaluation.count {
                    e.add(probability: LogisticModel.sigmoid(joint.margin(evaluation.row(i)) + hostMargins[i]), label: evaluation.labels[i])
                }
                metrics = e
            } else {
                let margins = (0..<evaluation.count).map { i in zip(result.weights, evaluation.row(i)).reduce(0) { $0 + $1.0 * $1.1 } }
                let bytes = try await transport.withSession(jobID: jobID, stream: "evaluate", to: guestID, at: try address(of: guestID)) { channel in
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
        return Completion(inputRows: alignment.ownSetSize, bytesSent: alignment.bytesSent + traffic.sent,
                          bytesReceived: alignment.bytesReceived + traffic.received, resultRows: 1, receivedResult: true,
                          details: ["model": .string(model.id), "aligned_rows": .int(aligned.count), "epochs": .int(result.losses.count)],
                          store: { db in try models.insert(db, model) })
    }

    /// Opens one session of `stream` to each of `peers` (in order) and runs `body` with them.
    static func withSessions<R: Sendable>(_ transport: PeerTransport, jobID: String, stream: String, to peers: [(String, PeerAddress)],
                                          _ body: ([TLSMessageChannel]) async throws -> R) async throws -> R {
        guard let (first, address) = peers.first else { return try await body([]) }
        return try await transport.withSession(jobID: jobID, stream: stream, to: first, at: address) { channel in
            try await withSessions(transport, jobID: jobID, stream: stream, to: Array(peers.dropFirst())) { rest in try await body([channel] + rest) }
        }
    }

    /// At the guest: every host's partial margins of the same rows (sessions of `stream` from each host), summed.
    func receivePartialScores(jobID: String, stream: String, from hosts: [String], count: Int, traffic: TrafficTally) async throws -> [Double] {
        let claimed = try await Self.claimAll(rendezvous, jobID: jobID, sessions: hosts.map { (stream, $0) }, timeout: sessionWaitTimeout)
        return try await TLSMessageChannel.using(Array(claimed.values)) {
            var sum = [Double](repeating: 0, count: count)
            for host in hosts {
                let (margins, bytes) = try await VerticalPrediction.receivePartialScores(count: count, over: claimed["\(stream)/\(host)"]!)
                for i in 0..<count { sum[i] += margins[i] }
                traffic.add(sent: 0, received: bytes)
            }
            return sum
        }
    }

    /// What the alignment gives a party: the identifiers every party holds, in the agreed order, and its
    /// PSI traffic.
    struct Alignment {
        var ownSetSize: Int
        var bytesSent: UInt64
        var bytesReceived: UInt64
    }

    /// Aligns the parties' rows on their identifier columns. The guest runs a PSI with each host in which
    /// only the guest learns the intersection, with the host's positions of the matches; it keeps the
    /// identifiers all hosts hold and tells each host which of its rows (positions in its PSI stream) those
    /// are. Both sides order the common identifiers by HMAC-SHA-256 keyed with the job id, so all end with the
    /// same list, and a host learns nothing of the guest's identifiers beyond the joint intersection.
    func alignVertically(_ spec: Mpcnode_V1_JobSpec, index: Int, scratch: JobScratch) async throws -> ([String], Alignment) {
        let jobID = spec.jobID, mine = spec.parties[index], isGuest = index == 0
        let guestID = spec.parties[0].nodeID, hosts = spec.parties.dropFirst().map(\.nodeID)
        let source = try SQLiteIdentifierSource.prepare(jobID: jobID, dataset: mine.dataset, column: mine.column, store: store,
                                                        scratchDirectory: configuration.jobsDirectory)
        scratch.add { source.remove() }
        try audit.append(event: "job.started", jobID: jobID, details: [
            "spec_hash": .string(try JobRepository.specHash(spec)), "role": .string(isGuest ? "guest" : "host"),
            "peers": .string((isGuest ? hosts : [guestID]).joined(separator: ",")), "input_rows": .int(source.count),
        ])
        let transport = self.transport, rendezvous = self.rendezvous
        var alignment = Alignment(ownSetSize: source.count, bytesSent: 0, bytesReceived: 0)
        var positions: [Int]
        if isGuest {
            var psi = PSIParty.Configuration(jobID: jobID, group: .x25519, selfReceivesOutput: true, peerReceivesOutput: false, cardinalityOnly: false)
            psi.reportsPeerPositions = true
            let withPeerPositions = psi
            let addresses = try hosts.map { try address(of: $0) }
            let reports = try await withThrowingTaskGroup(of: (Int, PSIParty.Report).self) { group in
                for (i, host) in hosts.enumerated() {
                    group.addTask {
                        let report = try await transport.withSession(jobID: jobID, stream: "align", to: host, at: addresses[i]) { channel in
                            try await PSIParty(configuration: withPeerPositions, source: source, channel: channel).run()
                        }
                        return (i, report)
                    }
                }
                var out = [PSIParty.Report?](repeating: nil, count: hosts.count)
                for try await (i, r) in group { out[i] = r }
                return out.map { $0! }
            }
            // Own position → the host's position, per host; the joint intersection is what every host matched.
            var matches: [[Int: Int]] = []
            for (i, r) in reports.enumerated() {
                guard case .matches(let own, let theirs) = r.output else {
                    throw JobError.invalidSubmission("the alignment with \(hosts[i]) delivered no intersection")
                }
                matches.append(Dictionary(uniqueKeysWithValues: zip(own, theirs)))
                alignment.bytesSent += r.bytesSent
                alignment.bytesReceived += r.bytesReceived
            }
            positions = matches[0].keys.filter { p in matches.allSatisfy { $0[p] != nil } }.sorted()
            for (i, host) in hosts.enumerated() {
                let theirs = positions.map { matches[i][$0]! }
                alignment.bytesSent += try await transport.withSession(jobID: jobID, stream: "aligned", to: host, at: addresses[i]) { channel in
                    try await VerticalAlignment.sendAlignedRows(theirs, over: channel)
                }
            }
        } else {
            let psi = PSIParty.Configuration(jobID: jobID, group: .x25519, selfReceivesOutput: false, peerReceivesOutput: true, cardinalityOnly: false)
            let channel = try await rendezvous.claim(jobID: jobID, stream: "align", peer: guestID, timeout: sessionWaitTimeout)
            let report = try await TLSMessageChannel.using([channel]) {
                try await PSIParty(configuration: psi, source: source, channel: channel).run()
            }
            alignment.bytesSent += report.bytesSent
            alignment.bytesReceived += report.bytesReceived
            // The guest runs a PSI with every host before it answers: wait as long as a set phase may take.
            let rows = try await rendezvous.claim(jobID: jobID, stream: "aligned", peer: guestID, timeout: Self.setPhaseTimeout)
            let (received, bytes) = try await TLSMessageChannel.using([rows]) {
                try await VerticalAlignment.receiveAlignedRows(setSize: source.count, over: rows)
            }
            positions = received
            alignment.bytesReceived += bytes
        }
        var ids: [String] = []
        try source.forEachIdentifier(atPositions: positions) { ids.append($0) }
        let key = SymmetricKey(data: Data(jobID.utf8))
        let order = ids.map { (Data(HMAC<SHA256>.authenticationCode(for: Data($0.utf8), using: key)), $0) }
            .sorted { $0.0.lexicographicallyPrecedes($1.0) }.map(\.1)
        return (order, alignment)
    }

    func runVerticalArbiter(_ spec: Mpcnode_V1_JobSpec) async throws -> Completion {
        let jobID = spec.jobID, t = spec.training
        try audit.append(event: "job.started", jobID: jobID, details: [
            "spec_hash": .string(try JobRepository.specHash(spec)), "role": .string("arbiter"),
            "guest": .string(spec.parties[0].nodeID), "hosts": .string(spec.parties.dropFirst().map(\.nodeID).joined(separator: ",")),
        ])
        let parameters = Self.verticalParameters(spec, rows: 0)
        let claimed = try await Self.claimAll(rendezvous, jobID: jobID, sessions: ([parameters.guest] + parameters.hosts).map { ("vlr", $0) },
                                              timeout: Self.setPhaseTimeout)
        let guest = claimed["vlr/\(parameters.guest)"]!, hosts = parameters.hosts.map { claimed["vlr/\($0)"]! }
        var arbiter = VerticalLRArbiter(parameters: parameters, guest: guest, hosts: hosts)
        let recorder = progressRecorder(spec, unit: "epochs"), epochs = Int(t.rounds)
        arbiter.onEpoch = { epoch, loss in recorder.record(done: epoch, total: epochs, loss: loss) }
        recorder.record(done: 0, total: epochs)
        let losses = try await TLSMessageChannel.using(Array(claimed.values)) { try await arbiter.run() }
        let sent = claimed.values.reduce(0) { $0 + $1.bytesSent }, received = claimed.values.reduce(0) { $0 + $1.bytesReceived }
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
