import Foundation
import MPCCrypto

/// A party failed during the secure sum that ends a set operation: the sum goes on without it.
public struct SecureSumDropout: Error, CustomStringConvertible {
    public let underlying: Error
    public init(underlying: Error) { self.underlying = underlying }
    public var description: String { "dropped out of the secure sum: \(underlying)" }
}

/// The stream names of a set operation's sessions.
public enum SetOperationStream {
    /// Party → next party in the ring.
    public static let ring = "ring"
    /// Party → mixer (sealed pseudonyms).
    public static let mix = "mix"
    /// Mixer → aggregator (the shuffled boxes).
    public static let mixed = "mixed"
    /// Party → aggregator (the sealing key, set sizes and the delivery).
    public static let results = "results"
    /// Party → aggregator (the secure sum over the union).
    public static let sum = "sum"
}

/// The final secure sum of union-sum and intersection-stats, as a party takes part in it.
public struct SetOperationSum: Sendable {
    public var authentication: KeyAuthentication
    /// The party's `job.started` audit hash, bound into its signed keys.
    public var auditRecordHash: [UInt8]
    /// The job's spec hash, bound into the sum's signatures.
    public var specHash: [UInt8]
    public var roundTimeout: Duration
    public var afterRound: (@Sendable (SecureAggregationClient.Round) -> Void)?
    /// The party's per-identifier totals of the value column, position by position (read when needed).
    public var totals: @Sendable () throws -> [Int64]

    public init(authentication: KeyAuthentication, auditRecordHash: [UInt8], specHash: [UInt8] = [], roundTimeout: Duration,
                afterRound: (@Sendable (SecureAggregationClient.Round) -> Void)? = nil, totals: @escaping @Sendable () throws -> [Int64]) {
        self.authentication = authentication
        self.auditRecordHash = auditRecordHash
        self.specHash = specHash
        self.roundTimeout = roundTimeout
        self.afterRound = afterRound
        self.totals = totals
    }
}

/// One data owner's whole part in a multi-party set operation (Protocols/multi-party-sets.md), over a
/// session port: the blinding ring (from the previous owner, to the next), the sealed pseudonyms
/// through the mixer (the mixer also shuffles the others'), the delivery from the aggregator, and —
/// with `sum` — the secure sum over the union. Transport-free: the same code runs between daemons and
/// with N parties in one test process.
public struct SetOperationParty: Sendable {
    public struct Outcome: Sendable {
        public var delivery: SetDelivery
        /// The size of the union, when the aggregator delivered it.
        public var unionSize: Int?
        /// Whether this party's values are in the final secure sum (nil without one).
        public var includedInSum: Bool?
        /// In buckets: how many (nil: one pass).
        public var buckets: Int? = nil
        /// In buckets: attempts after the first (dropped links mended).
        public var resumes: Int = 0
        public var bytesSent: UInt64
        public var bytesReceived: UInt64
    }

    /// How long an owner waits for a session that follows a long phase of the others (the ring of a
    /// large job takes minutes); an abort ends the wait at once.
    public struct Waits: Sendable {
        public var session: Duration
        public var phase: Duration
        public init(session: Duration, phase: Duration) { self.session = session; self.phase = phase }
    }

    public let configuration: SetOperationConfiguration
    public let me: NodeID
    public let waits: Waits
    /// In buckets: how this role mends a dropped link (Protocols/multi-party-sets.md "Resume").
    public var resume: SetResume

    public init(configuration: SetOperationConfiguration, me: NodeID, waits: Waits, resume: SetResume = .never) {
        self.configuration = configuration
        self.me = me
        self.waits = waits
        self.resume = resume
    }

    /// Progress in per cent: the ring to 80 (as the own chain comes back), mix and delivery to 90, the sum to 100.
    public func run(source: any IdentifierSource, port: any SessionPort, sum: SetOperationSum?,
                    progress: @escaping @Sendable (Int) -> Void = { _ in }) async throws -> Outcome {
        let config = configuration, me = me, waits = waits
        try config.validate(as: me)
        let owners = config.owners
        guard let index = owners.firstIndex(of: me) else {
            throw ProtocolError.parameterMismatch(peer: me, detail: "\(me) is not an owner of the set operation")
        }
        let next = owners[(index + 1) % owners.count], previous = owners[(index + owners.count - 1) % owners.count]
        progress(0)
        if let bucketing = config.bucketing {
            guard let bucketed = source as? any BucketedIdentifierSource else {
                throw ProtocolError.parameterMismatch(peer: me, detail: "a set operation in buckets needs an input that can be put into buckets")
            }
            let o = try await BucketedSetOwner(configuration: config, bucketing: bucketing, me: me, waits: waits, resume: resume)
                .run(source: bucketed, port: port, progress: progress)
            var outcome = try await finish(delivery: o.delivery, pseudonyms: o.pseudonyms, port: port, sum: sum, progress: progress)
            outcome.buckets = o.buckets
            outcome.resumes = o.resumes
            return outcome
        }
        // The mixer waits for the other parties' sealed pseudonyms from the start (they arrive after the ring).
        let isMixer = config.mixer == me
        let mixAccepts = Task { () throws -> [any MessageChannel] in
            guard isMixer else { return [] }
            let accepted = try await port.acceptAll(owners.filter { $0 != me }.map { (SetOperationStream.mix, $0) }, timeout: waits.phase)
            return owners.compactMap { accepted["\(SetOperationStream.mix)/\($0)"] }
        }
        do {
            // 1. The ring.
            let ring = try await port.withSession(stream: SetOperationStream.ring, to: next) { toNext in
                try await port.withAccepted(stream: SetOperationStream.ring, from: previous, timeout: waits.session) { fromPrevious in
                    try await PseudonymRingParty(configuration: config.ring, me: me, source: source, toNext: toNext, fromPrevious: fromPrevious,
                                                 progress: { done, total in progress(total == 0 ? 80 : 80 * done / total) }).run()
                }
            }
            let pseudonyms = ring.pseudonyms
            progress(80)
            // 2. Sealed pseudonyms through the mixer; the delivery from the aggregator.
            let aggregator = config.aggregator
            let owner = SetOwner(configuration: config, me: me)
            let outcome: SetOwner.Outcome = try await port.withSession(stream: SetOperationStream.results, to: aggregator) { toAggregator in
                if isMixer {
                    let fromOwners = try await withTaskCancellationHandler { try await mixAccepts.value } onCancel: { mixAccepts.cancel() }
                    return try await port.using(fromOwners) {
                        try await port.withSession(stream: SetOperationStream.mixed, to: aggregator) { mixed in
                            try await owner.finish(ring: ring, toAggregator: toAggregator, mixing: .mix(fromOwners: fromOwners, toAggregator: mixed))
                        }
                    }
                }
                return try await port.withSession(stream: SetOperationStream.mix, to: config.mixer) { toMixer in
                    try await owner.finish(ring: ring, toAggregator: toAggregator, mixing: .sendTo(toMixer))
                }
            }
            progress(90)
            return try await finish(delivery: outcome.delivery, pseudonyms: pseudonyms, port: port, sum: sum, progress: progress)
        } catch {
            await port.cancelAccepts(reason: "\(error)")
            mixAccepts.cancel()
            if let channels = try? await mixAccepts.value {
                for c in channels { await c.abort() }
            }
            throw error
        }
    }

    /// After the set phase: the secure sum over the union (with `sum`), and the outcome.
    private func finish(delivery: SetDelivery, pseudonyms: [GroupElement], port: any SessionPort, sum: SetOperationSum?,
                        progress: @escaping @Sendable (Int) -> Void) async throws -> Outcome {
        let config = configuration, me = me, owners = config.owners, aggregator = config.aggregator
        do {
            var result = Outcome(delivery: delivery, unionSize: nil, includedInSum: nil, bytesSent: 0, bytesReceived: 0)
            // 3. The secure sum over the union.
            if let sum, case .union(let union) = delivery {
                result.unionSize = union.count
                let vector = try Self.unionVector(union: union, pseudonyms: pseudonyms, totals: sum.totals(), parties: owners.count)
                if !union.isEmpty {
                    let parameters = SecureAggregationParameters(jobID: config.jobID, specHash: sum.specHash, clients: owners, server: aggregator, length: vector.count,
                                                                 roundTimeout: sum.roundTimeout)
                    do {
                        let o = try await port.withSession(stream: SetOperationStream.sum, to: aggregator) { channel in
                            try await SecureAggregationClient(parameters: parameters, me: me, input: vector, channel: channel,
                                                              authentication: sum.authentication, auditRecordHash: sum.auditRecordHash,
                                                              afterRound: sum.afterRound).run()
                        }
                        result.includedInSum = o.included.contains(me)
                    } catch {
                        throw SecureSumDropout(underlying: error)
                    }
                }
            }
            progress(100)
            result.bytesSent = port.traffic.sent
            result.bytesReceived = port.traffic.received
            return result
        } catch {
            await port.cancelAccepts(reason: "\(error)")
            throw error
        }
    }

    /// The party's input to the secure sum over the union: for each pseudonym of the union, two slots —
    /// 1 if the party holds it, and its total of the value column there.
    public static func unionVector(union: [GroupElement], pseudonyms: [GroupElement], totals: [Int64], parties: Int) throws -> [UInt64] {
        var slot: [GroupElement: Int] = [:]
        slot.reserveCapacity(union.count)
        for (i, p) in union.enumerated() { slot[p] = i }
        let bound = Int64.max / Int64(max(1, parties))
        guard totals.count == pseudonyms.count else { throw SetOperationInputError.totals(totals.count, identifiers: pseudonyms.count) }
        var vector = [UInt64](repeating: 0, count: 2 * union.count)
        for (position, p) in pseudonyms.enumerated() {
            guard let i = slot[p] else { throw SetOperationInputError.unionLacksOwnPseudonym }
            guard totals[position].magnitude <= UInt64(bound) else { throw SetOperationInputError.totalOutOfRange(slot: 2 * i + 1, bound: bound) }
            vector[2 * i] = 1
            vector[2 * i + 1] = UInt64(bitPattern: totals[position])
        }
        return vector
    }
}

/// Why a party cannot build its input to the secure sum over the union.
public enum SetOperationInputError: Error, CustomStringConvertible, Equatable {
    case unionLacksOwnPseudonym
    case totalOutOfRange(slot: Int, bound: Int64)
    case totals(Int, identifiers: Int)

    public var description: String {
        switch self {
        case .unionLacksOwnPseudonym: return "the aggregator's union lacks one of this node's pseudonyms"
        case .totalOutOfRange(let s, let b):
            return "local total in slot \(s) exceeds ±\(b), the bound that keeps the consortium's sum exact; aggregate in larger units (fewer decimals)"
        case .totals(let t, let n): return "\(t) totals for \(n) identifiers"
        }
    }
}

/// The aggregator's whole part in a multi-party set operation, over a session port: it accepts every
/// owner's "results" session and the mixer's "mixed" one, counts multiplicities, lets `release` refuse
/// (an intersection below the policies' minimum) before anything is delivered, delivers, and — for
/// kinds that sum values — runs the server of the secure sum over the union, without owners that drop out.
public struct SetOperationAggregatorRole: Sendable {
    public struct Outcome: Sendable {
        public var multiplicities: Multiplicities
        public var sums: SecureAggregationServer.Outcome?
        /// In buckets: how many (nil: one pass).
        public var buckets: Int? = nil
        /// In buckets: attempts after the first (dropped links mended).
        public var resumes: Int = 0
        public var bytesSent: UInt64
        public var bytesReceived: UInt64
    }

    public let configuration: SetOperationConfiguration
    public let waits: SetOperationParty.Waits
    /// In buckets: how this role mends a dropped link (Protocols/multi-party-sets.md "Resume").
    public var resume: SetResume

    public init(configuration: SetOperationConfiguration, waits: SetOperationParty.Waits, resume: SetResume = .never) {
        self.configuration = configuration
        self.waits = waits
        self.resume = resume
    }

    /// - Parameter sumRoundTimeout: with a value, the secure sum over the union follows (union-sum, intersection-stats).
    public func run(port: any SessionPort, sumRoundTimeout: Duration?,
                    release: @escaping @Sendable (Multiplicities) throws -> Void = { _ in }) async throws -> Outcome {
        let config = configuration, waits = waits
        let accepts = Task { () throws -> ([NodeID: any MessageChannel], any MessageChannel)? in
            guard config.bucketing == nil else { return nil }
            let accepted = try await port.acceptAll(config.owners.map { (SetOperationStream.results, $0) } + [(SetOperationStream.mixed, config.mixer)],
                                                    timeout: waits.phase)
            var owners: [NodeID: any MessageChannel] = [:]
            for o in config.owners { owners[o] = accepted["\(SetOperationStream.results)/\(o)"] }
            return (owners, accepted["\(SetOperationStream.mixed)/\(config.mixer)"]!)
        }
        do {
            let outcome: SetAggregator.Outcome
            if let bucketing = config.bucketing {
                outcome = try await BucketedSetAggregator(configuration: config, bucketing: bucketing, waits: waits, resume: resume).run(port: port, release: release)
            } else {
                let (owners, mixed) = try await withTaskCancellationHandler { try await accepts.value } onCancel: { accepts.cancel() }!
                outcome = try await SetAggregator(configuration: config).run(fromOwners: owners, fromMixer: mixed, release: release)
                for c in owners.values { await c.close() }
                await mixed.close()
            }
            var sums: SecureAggregationServer.Outcome?
            let m = outcome.multiplicities
            if let sumRoundTimeout, m.unionSize > 0 {
                let parameters = SecureAggregationParameters(jobID: config.jobID, clients: config.owners, server: config.aggregator,
                                                             length: 2 * m.unionSize, roundTimeout: sumRoundTimeout)
                let channels = await port.acceptEach(stream: SetOperationStream.sum, from: config.owners, timeout: waits.session)
                sums = try await SecureAggregationServer(parameters: parameters, channels: channels).run()
            }
            return Outcome(multiplicities: m, sums: sums, buckets: outcome.buckets, resumes: outcome.resumes, bytesSent: port.traffic.sent, bytesReceived: port.traffic.received)
        } catch {
            await port.cancelAccepts(reason: "\(error)")
            accepts.cancel()
            if let (owners, mixed) = (try? await accepts.value) ?? nil {
                for c in owners.values { await c.close() }
                await mixed.abort()
            }
            throw error
        }
    }
}
