import Foundation
import MPCCrypto
import MPCLearning
import MPCWire

extension ProtocolSession {
    func sendVLR(_ fill: (inout Mpcnode_V1_VLRMessage) -> Void) async throws { try await send(\.vlr, fill) }

    func receiveVLR(_ what: String) async throws -> Mpcnode_V1_VLRMessage.OneOf_Body {
        try await receive(what) { if case .vlr(let m)? = $0 { return m.body } else { return nil } }
    }
}

extension PaillierPublicKey {
    func ciphertexts(_ values: [Data], peer: NodeID, count: Int) throws -> [PaillierCiphertext] {
        guard values.count == count else { throw ProtocolError.protocolViolation(peer: peer, detail: "\(values.count) ciphertexts, expected \(count)") }
        do { return try values.map { try ciphertext(bigEndian: [UInt8]($0)) } } catch {
            throw ProtocolError.malformedMessage(peer: peer, detail: "\(error)")
        }
    }
    func wire(_ c: [PaillierCiphertext]) -> [Data] { c.map { Data($0.bigEndianBytes(for: self)) } }
}

/// The arbiter: holds the Paillier key, decrypts only masked gradients and the loss, decides when to stop.
public struct VerticalLRArbiter: Sendable {
    public let parameters: VerticalLRParameters
    public let guest: any MessageChannel
    /// One channel per host, in the order of `parameters.hosts`.
    public let hosts: [any MessageChannel]
    /// Called at the end of each epoch with its loss.
    public var onEpoch: (@Sendable (Int, Double) -> Void)?

    public init(parameters: VerticalLRParameters, guest: any MessageChannel, hosts: [any MessageChannel]) {
        self.parameters = parameters
        self.guest = guest
        self.hosts = hosts
    }

    /// Returns the loss of every epoch.
    public func run() async throws -> [Double] {
        let g = ProtocolSession(channel: guest), hs = hosts.map { ProtocolSession(channel: $0) }
        let all = [g] + hs
        do {
            guard hosts.map(\.peer) == parameters.hosts, !hosts.isEmpty, guest.peer == parameters.guest,
                  !parameters.hosts.contains(parameters.guest) else {
                throw ProtocolError.parameterMismatch(peer: parameters.arbiter, detail: "channels to \(guest.peer) and \(hosts.map(\.peer)), guest \(parameters.guest), hosts \(parameters.hosts)")
            }
            // Exactly the expected shapes: the party's width (+1, the intercept, for the guest), once per batch.
            var expected: [NodeID: Int] = [:]
            for party in [parameters.guest] + parameters.hosts {
                guard let w = parameters.widths[party], (1...100_000).contains(w) else {
                    throw ProtocolError.parameterMismatch(peer: parameters.arbiter, detail: "no width for \(party): the arbiter decrypts only the shapes it expects")
                }
                expected[party] = w + (party == parameters.guest ? 1 : 0)
            }
            guard parameters.keyBits >= parameters.minimumKeyBits else {
                throw ProtocolError.parameterMismatch(peer: parameters.arbiter, detail: "a Paillier modulus of \(parameters.keyBits) bits is below this node's floor of \(parameters.minimumKeyBits)")
            }
            let key = try PaillierPrivateKey.generate(bits: parameters.keyBits)
            let pk = key.publicKey
            let n = Data(pk.n.bigEndianBytes(length: pk.modulusBytes)), base = Data(pk.randomnessBase.bigEndianBytes(length: pk.ciphertextBytes))
            for s in all { try await s.sendVLR { $0.publicKey = .with { $0.n = n; $0.randomnessBase = base } } }
            var losses: [Double] = []
            for epoch in 1...max(1, parameters.training.rounds) {
                // The arbiter does not know the number of aligned rows beforehand: the guest marks the last batch.
                // The loss is summed encrypted over the epoch's batches and decrypted once, at its end.
                var lossCipher: PaillierCiphertext?, rows = 0, b = 0, last = false
                while !last {
                    for s in all {
                        guard case .maskedGradient(let m) = try await s.receiveVLR("a masked gradient"), m.batch == UInt64(b) else {
                            throw ProtocolError.protocolViolation(peer: s.peer, detail: "expected the masked gradient of batch \(b)")
                        }
                        let plain = try pk.ciphertexts(m.values, peer: s.peer, count: expected[s.peer]!).map { Data(key.decryptBytes($0)) }
                        if s === g {
                            let batchLoss = try pk.ciphertexts([m.loss], peer: s.peer, count: 1)[0]
                            lossCipher = lossCipher.map { pk.add($0, batchLoss) } ?? batchLoss
                            rows += try WireNumber.count(m.rows, limit: WireNumber.maximumSetSize, field: "batch rows", peer: s.peer)
                            last = m.last
                        } else if !m.loss.isEmpty {
                            throw ProtocolError.protocolViolation(peer: s.peer, detail: "a host sent a loss: only the guest's is decrypted")
                        }
                        try await s.sendVLR { $0.gradient = .with { $0.batch = UInt64(b); $0.values = plain } }
                    }
                    b += 1
                    guard b <= WireNumber.maximumSetSize else { throw ProtocolError.protocolViolation(peer: g.peer, detail: "no last batch") }
                }
                let lossSum = lossCipher.map { key.decryptSigned($0) / (8 * VerticalLRParameters.scale * VerticalLRParameters.scale) } ?? 0
                let loss = lossSum / Double(max(1, rows))
                let stop = epoch == parameters.training.rounds || (losses.last.map { abs($0 - loss) < parameters.training.tolerance } ?? false)
                losses.append(loss)
                onEpoch?(epoch, loss)
                for s in all { try await s.sendVLR { $0.control = .with { $0.epoch = UInt32(epoch); $0.loss = loss; $0.stop = stop } } }
                if stop { break }
            }
            await guest.close()
            for h in hosts { await h.close() }
            return losses
        } catch {
            await ProtocolSession.abortAll(all, because: error, by: parameters.arbiter)
            throw error
        }
    }
}

/// A feature holder's common steps: receive the key, send a masked encrypted gradient, recover it.
struct VerticalLRParty {
    static func receiveKey(_ arbiter: ProtocolSession, parameters: VerticalLRParameters) async throws -> PaillierPublicKey {
        guard case .publicKey(let k) = try await arbiter.receiveVLR("the public key") else {
            throw ProtocolError.protocolViolation(peer: arbiter.peer, detail: "expected the public key")
        }
        guard k.n.count <= 1024, k.randomnessBase.count <= 2048 else {
            throw ProtocolError.malformedMessage(peer: arbiter.peer, detail: "a public key of \(k.n.count) bytes")
        }
        let key: PaillierPublicKey
        do { key = try PaillierPublicKey(n: BigNumber(bigEndian: [UInt8](k.n)), hs: BigNumber(bigEndian: [UInt8](k.randomnessBase))) } catch {
            throw ProtocolError.malformedMessage(peer: arbiter.peer, detail: "\(error)")
        }
        try parameters.checkKey(key, from: arbiter.peer)
        return key
    }

    /// ⟦4S²·Σᵢ dᵢ·x_ij⟧ for each column j (the intercept is a column of ones), masked, decrypted by the
    /// arbiter and unmasked: the batch's mean gradient.
    static func gradient(_ pk: PaillierPublicKey, residuals: [PaillierCiphertext], columns: [[Int64]], batch: Int, rows: Int,
                         arbiter: ProtocolSession, loss: PaillierCiphertext? = nil, last: Bool = false) async throws -> [Double] {
        let encrypted = try pk.linearCombinations(residuals, columns)
        let masks = columns.map { _ in pk.randomMask() }
        let masked = zip(encrypted, masks).map { pk.add($0, mask: $1) }
        try await arbiter.sendVLR {
            $0.maskedGradient = .with {
                $0.batch = UInt64(batch)
                $0.values = pk.wire(masked)
                if let loss { $0.loss = Data(loss.bigEndianBytes(for: pk)); $0.rows = UInt64(rows); $0.last = last }
            }
        }
        guard case .gradient(let g) = try await arbiter.receiveVLR("the gradient"), g.batch == UInt64(batch), g.values.count == columns.count else {
            throw ProtocolError.protocolViolation(peer: arbiter.peer, detail: "expected the gradient of batch \(batch)")
        }
        let s = VerticalLRParameters.scale
        let gradient = try zip(g.values, masks).map { try pk.unmask([UInt8]($0), $1) / (4 * s * s * Double(rows)) }
        guard gradient.allSatisfy({ $0.isFinite && abs($0) <= VerticalLRParameters.gradientBound }) else {
            throw ProtocolError.protocolViolation(peer: arbiter.peer, detail: "the gradient of batch \(batch) is implausibly large: a lying arbiter, or a diverged run (lower the learning rate)")
        }
        return gradient
    }

    static func control(_ arbiter: ProtocolSession) async throws -> Mpcnode_V1_VLRControl {
        guard case .control(let c) = try await arbiter.receiveVLR("the end of the epoch") else {
            throw ProtocolError.protocolViolation(peer: arbiter.peer, detail: "expected the end of the epoch")
        }
        return c
    }
}

/// A host: holds features only. The hosts sum their encrypted partial margins along a chain (host 1 →
/// host 2 → … → the guest); the last one's sum reaches the guest, which returns the encrypted residuals
/// to every host. Each host updates its own weights from its (masked) gradient.
public struct VerticalLRHost: Sendable {
    public let parameters: VerticalLRParameters
    /// Its features, in the aligned order (labels unused).
    public let features: LabeledRows
    public let guest: any MessageChannel
    public let arbiter: any MessageChannel
    /// The previous host of the chain (nil for the first host).
    public let previous: (any MessageChannel)?
    /// The next host of the chain (nil for the last host, which sends the sum to the guest).
    public let next: (any MessageChannel)?
    public var onEpoch: (@Sendable (Int, Double) -> Void)?

    public init(parameters: VerticalLRParameters, features: LabeledRows, guest: any MessageChannel, arbiter: any MessageChannel,
                previous: (any MessageChannel)? = nil, next: (any MessageChannel)? = nil) {
        self.parameters = parameters
        self.features = features
        self.guest = guest
        self.arbiter = arbiter
        self.previous = previous
        self.next = next
    }

    /// Returns the host's weights (no intercept: the guest holds it) and the losses the arbiter announced.
    public func run() async throws -> (weights: [Double], losses: [Double]) {
        let g = ProtocolSession(channel: guest), a = ProtocolSession(channel: arbiter)
        let before = previous.map { ProtocolSession(channel: $0) }, after = next.map { ProtocolSession(channel: $0) }
        let sessions = [g, a] + [before, after].compactMap { $0 }
        let p = parameters, width = features.width
        // Its place in the chain follows from its neighbours: the first host has no previous one.
        let index = previous.map { prev in (p.hosts.firstIndex(of: prev.peer) ?? p.hosts.count) + 1 } ?? 0
        let me = index < p.hosts.count ? p.hosts[index] : "a host"
        var w = [Double](repeating: 0, count: width)
        var losses: [Double] = []
        do {
            guard index < p.hosts.count, (index < p.hosts.count - 1) == (next != nil), next.map({ $0.peer == p.hosts[index + 1] }) ?? true,
                  guest.peer == p.guest, arbiter.peer == p.arbiter else {
                throw ProtocolError.parameterMismatch(peer: me, detail: "this host's place in the chain \(p.hosts) does not match its channels")
            }
            try p.checkBatches(width: width + 1, me: me)
            let pk = try await VerticalLRParty.receiveKey(a, parameters: p)
            let forwardTo = after ?? g
            while true {
                for b in 0..<p.batches {
                    let rows = p.batch(b)
                    let margins = rows.map { i in VerticalLRParameters.fixed(zip(w, features.row(i)).reduce(0) { $0 + $1.0 * $1.1 }) }
                    // ⟦P⟧ = ⟦S·Σ u⟧ and ⟦Q⟧ = ⟦(S·Σ u)²⟧ over the hosts so far; margins are bounded well below 2³¹ by
                    // the fixed-point range of the data, so squares fit in 63 bits.
                    let sums: [PaillierCiphertext], squares: [PaillierCiphertext]
                    if let before {
                        guard case .forward(let f) = try await before.receiveVLR("the previous host's margins"), f.batch == UInt64(b) else {
                            throw ProtocolError.protocolViolation(peer: before.peer, detail: "expected the margins of batch \(b)")
                        }
                        let priorSums = try pk.ciphertexts(f.margins, peer: before.peer, count: rows.count)
                        let priorSquares = try pk.ciphertexts(f.squares, peer: before.peer, count: rows.count)
                        // P' = P + m, Q' = Q + 2m·P + m², re-randomised so neither neighbour can take m out.
                        sums = try ParallelMap.map(Array(0..<rows.count)) { k in pk.rerandomize(pk.add(priorSums[k], plain: margins[k])) }
                        squares = try ParallelMap.map(Array(0..<rows.count)) { k in
                            let m = margins[k]
                            return pk.rerandomize(pk.add(pk.add(priorSquares[k], pk.multiply(priorSums[k], by: 2 * m)),
                                                         plain: m.multipliedReportingOverflow(by: m).partialValue))
                        }
                    } else {
                        sums = try ParallelMap.map(margins) { pk.encrypt($0) }
                        squares = try ParallelMap.map(margins) { (m: Int64) -> PaillierCiphertext in pk.encrypt(m.multipliedReportingOverflow(by: m).partialValue) }
                    }
                    try await forwardTo.sendVLR { $0.forward = .with { $0.batch = UInt64(b); $0.margins = pk.wire(sums); $0.squares = pk.wire(squares) } }
                    guard case .residuals(let r) = try await g.receiveVLR("the residuals"), r.batch == UInt64(b) else {
                        throw ProtocolError.protocolViolation(peer: g.peer, detail: "expected the residuals of batch \(b)")
                    }
                    let residuals = try pk.ciphertexts(r.values, peer: g.peer, count: rows.count)
                    let columns = VerticalLRParameters.columns(features, rows: rows)
                    let gradient = try await VerticalLRParty.gradient(pk, residuals: residuals, columns: columns, batch: b, rows: rows.count, arbiter: a)
                    for j in 0..<width { w[j] -= p.training.learningRate * (gradient[j] + p.training.l2 * w[j]) }
                }
                let c = try await VerticalLRParty.control(a)
                losses.append(c.loss)
                onEpoch?(Int(c.epoch), c.loss)
                if c.stop { break }
            }
            for s in sessions { await s.channel.close() }
            return (w, losses)
        } catch {
            await ProtocolSession.abortAll(sessions, because: error, by: me)
            throw error
        }
    }
}

/// The guest: holds the label and its own features; turns the hosts' summed encrypted margins into
/// encrypted residuals for every host, and holds its weights and the intercept.
public struct VerticalLRGuest: Sendable {
    public let parameters: VerticalLRParameters
    public let data: LabeledRows
    /// One channel per host, in the order of `parameters.hosts`.
    public let hosts: [any MessageChannel]
    public let arbiter: any MessageChannel
    public var onEpoch: (@Sendable (Int, Double) -> Void)?

    /// Fixed initial weights instead of random ones (tests that compare with a baseline).
    public var initialWeights: [Double]?

    public init(parameters: VerticalLRParameters, data: LabeledRows, hosts: [any MessageChannel], arbiter: any MessageChannel) {
        self.parameters = parameters
        self.data = data
        self.hosts = hosts
        self.arbiter = arbiter
    }

    /// Weights drawn uniformly from ±0.01 with the CSPRNG: enough that batch 0's residuals are not a
    /// function of the labels alone, small enough not to slow the first epoch (±0.5/√w cost a one-epoch
    /// synthetic run 0.15 of AUC). The batch floor and the residual noise do most of the protecting.
    static func randomStart(features: Int) -> LogisticModel {
        var rng = SystemRandomNumberGenerator()
        let scale = 0.01
        return LogisticModel(weights: (0..<features).map { _ in Double.random(in: -scale...scale, using: &rng) })
    }

    /// A standard normal draw (Box–Muller) from the CSPRNG.
    static func gaussian() -> Double {
        var rng = SystemRandomNumberGenerator()
        let u = Double.random(in: Double.ulpOfOne..<1, using: &rng), v = Double.random(in: 0..<1, using: &rng)
        return (-2 * log(u)).squareRoot() * cos(2 * .pi * v)
    }

    public func run() async throws -> (model: LogisticModel, losses: [Double]) {
        let hs = hosts.map { ProtocolSession(channel: $0) }, a = ProtocolSession(channel: arbiter)
        let p = parameters, width = data.width, s = VerticalLRParameters.scale
        // Random initial weights (the guest's, unknown to every host): batch 0's residuals are then not a
        // function of the labels alone. The hosts start at zero (a host knows its own margin anyway).
        var model = initialWeights.map { LogisticModel(weights: $0) } ?? Self.randomStart(features: width)
        var losses: [Double] = []
        do {
            guard let h = hs.last, hosts.map(\.peer) == p.hosts else {
                throw ProtocolError.parameterMismatch(peer: p.guest, detail: "channels to \(hosts.map(\.peer)), hosts \(p.hosts)")
            }
            try p.checkBatches(width: width + 1, me: p.guest)
            let pk = try await VerticalLRParty.receiveKey(a, parameters: p)
            while true {
                for b in 0..<p.batches {
                    let rows = p.batch(b)
                    // The last host's ⟦S·u_H⟧ and ⟦S²·u_H²⟧, u_H summed over all hosts.
                    guard case .forward(let f) = try await h.receiveVLR("the hosts' margins"), f.batch == UInt64(b) else {
                        throw ProtocolError.protocolViolation(peer: h.peer, detail: "expected the margins of batch \(b)")
                    }
                    let margins = try pk.ciphertexts(f.margins, peer: h.peer, count: rows.count)
                    let squares = try pk.ciphertexts(f.squares, peer: h.peer, count: rows.count)
                    let own = rows.map { model.margin(data.row($0)) }  // u_G + b
                    // ⟦4S·d⟧ = ⟦S·u_H⟧ · E(S·(u_G + 2 − 4y + 4ε)), re-randomised so no host can relate it to its margins;
                    // ε is the guest's zero-mean noise (none unless its policy sets it).
                    let noise = (0..<rows.count).map { _ in p.residualNoise > 0 ? 4 * p.residualNoise * Self.gaussian() : 0 }
                    let residuals = try ParallelMap.map(Array(0..<rows.count)) { k in
                        pk.rerandomize(pk.add(margins[k], plain: VerticalLRParameters.fixed(own[k] + 2 - 4 * data.labels[rows.lowerBound + k] + noise[k])))
                    }
                    let wired = pk.wire(residuals)
                    for host in hs { try await host.sendVLR { $0.residuals = .with { $0.batch = UInt64(b); $0.values = wired } } }
                    // Taylor loss: 8S²ℓ = 8S² log 2 − 4y'S²(u_G + u_H) + S²(u_G + u_H)².
                    var coefficients: [Int64] = [], constant = 0.0
                    for (k, i) in rows.enumerated() {
                        let y = 2 * data.labels[i] - 1, u = own[k]
                        coefficients.append(FixedPoint.saturating(s * (2 * u - 4 * y)))
                        constant += s * s * (8 * log(2.0) - 4 * y * u + u * u)
                    }
                    let loss = pk.add(pk.linearCombination(margins + squares, coefficients + rows.map { _ in 1 }), plain: FixedPoint.saturating(constant))
                    let columns = VerticalLRParameters.columns(data, rows: rows) + [rows.map { _ in Int64(s) }]  // the intercept: ones
                    let gradient = try await VerticalLRParty.gradient(pk, residuals: residuals, columns: columns, batch: b,
                                                                      rows: rows.count, arbiter: a, loss: loss, last: b == p.batches - 1)
                    for j in 0..<width { model.weights[j] -= p.training.learningRate * (gradient[j] + p.training.l2 * model.weights[j]) }
                    model.bias -= p.training.learningRate * gradient[width]
                }
                let c = try await VerticalLRParty.control(a)
                losses.append(c.loss)
                onEpoch?(Int(c.epoch), c.loss)
                if c.stop { break }
            }
            for host in hosts { await host.close() }
            await arbiter.close()
            return (model, losses)
        } catch {
            await ProtocolSession.abortAll(hs + [a], because: error, by: p.guest)
            throw error
        }
    }
}
