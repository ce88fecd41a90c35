import Foundation
import MPCCrypto
import MPCWire

/// An owner's part of a set operation after the blinding ring (Protocols/multi-party-sets.md, steps 2–3):
/// seal its pseudonyms to the aggregator's key for this job, hand them to the mixer (or, as the mixer,
/// shuffle everyone's), then receive what the aggregator delivers to it.
public struct SetOwner: Sendable {
    public enum Mixing: Sendable {
        /// Send the sealed pseudonyms to the mixer.
        case sendTo(any MessageChannel)
        /// This owner is the mixer: collect the other owners' sealed pseudonyms, shuffle them with its
        /// own, and forward them to the aggregator.
        case mix(fromOwners: [any MessageChannel], toAggregator: any MessageChannel)
    }

    public struct Outcome: Sendable {
        public var delivery: SetDelivery
        public var bytesSent: UInt64
        public var bytesReceived: UInt64
    }

    public let configuration: SetOperationConfiguration
    public let me: NodeID

    public init(configuration: SetOperationConfiguration, me: NodeID) {
        self.configuration = configuration
        self.me = me
    }

    /// - Parameter ring: what the ring gave this owner: Ψ of its identifiers in its own order, the mask of
    ///   its box digest, and every owner's set size (what the mixer accepts from each).
    public func finish(ring: PseudonymRingParty.Result, toAggregator: any MessageChannel, mixing: Mixing) async throws -> Outcome {
        try configuration.validate(as: me)
        let pseudonyms = ring.pseudonyms
        let results = ProtocolSession(channel: toAggregator)
        var others: [ProtocolSession] = []
        var mixed: ProtocolSession?
        var toMixer: ProtocolSession?
        switch mixing {
        case .sendTo(let c): toMixer = ProtocolSession(channel: c)
        case .mix(let from, let to):
            others = from.map(ProtocolSession.init(channel:))
            mixed = ProtocolSession(channel: to)
        }
        let all = [results] + others + [mixed, toMixer].compactMap { $0 }
        do {
            // 1. The aggregator's sealing key, in exchange for this owner's set size.
            try await results.sendSets { $0.hello = .with { $0.setSize = UInt64(pseudonyms.count) } }
            guard case .sealingKey(let key) = try await results.receiveSets(expecting: "the sealing key"), key.publicKey.count == 32 else {
                throw ProtocolError.protocolViolation(peer: results.peer, detail: "expected a 32-byte sealing key")
            }
            let publicKey = [UInt8](key.publicKey)
            // 2. Sealed pseudonyms to the mixer, or the mix itself.
            let boxes = try await ParallelMap.mapInChunks(pseudonyms) { p in try SealedBox.seal(GroupElement.pack([p]), to: publicKey) }.flatMap { $0 }
            // The multiset hash of the own boxes, masked, tells the aggregator whether the mixer forwards
            // exactly the boxes the owners sealed; alone it says nothing about which box is whose.
            var digest = try await MultisetHash.ofInChunks(boxes, memberSize: SealedPseudonym.size, domain: configuration.boxDigestDomain)
            try digest.add(ring.digestMask)
            let digestBytes = Data(GroupElement.pack([digest.sum]))
            let ringOwners = configuration.owners, ringSizes = configuration.owners.map { UInt64(ring.setSizes[$0] ?? 0) }
            try await results.sendSets { $0.boxDigest = .with { $0.digest = digestBytes; $0.ringOwners = ringOwners; $0.ringSizes = ringSizes } }
            // Nobody's boxes go to the mixer before every digest, the mixer's included, is with the aggregator.
            guard case .digestsReceived = try await results.receiveSets(expecting: "word that every box digest arrived") else {
                throw ProtocolError.protocolViolation(peer: results.peer, detail: "expected word that every box digest arrived")
            }
            if let toMixer {
                try await toMixer.sendItems(boxes, itemSize: SealedPseudonym.size, batchSize: configuration.batchSize, sealed: true)
                await toMixer.channel.close()
            } else if let mixed {
                try await SealedMixer(configuration: configuration, me: me).mix(own: boxes, from: others, ringSizes: ring.setSizes, aggregator: mixed)
            }
            // 3. The delivery.
            let delivery = try await receiveDelivery(results, pseudonyms: pseudonyms)
            try await results.sendSets { $0.ack = .init() }
            guard case .commit = try await results.receiveSets(expecting: "the commit") else {
                throw ProtocolError.protocolViolation(peer: results.peer, detail: "expected the commit")
            }
            await results.channel.close()
            return Outcome(delivery: delivery, bytesSent: all.reduce(0) { $0 + $1.bytesSent },
                           bytesReceived: all.reduce(0) { $0 + $1.bytesReceived })
        } catch {
            await ProtocolSession.abortAll(all, because: error, by: me)
            throw error
        }
    }

    /// Every list arrives sorted and distinct (in buckets too, over all buckets): its order tells nothing,
    /// such as which bucket a pseudonym the owner does not hold came from.
    func receiveDelivery(_ results: ProtocolSession, pseudonyms: [GroupElement]) async throws -> SetDelivery {
        guard case .delivery(let header) = try await results.receiveSets(expecting: "the delivery"),
              let kind = SetDeliveryKind(rawValue: header.kind) else {
            throw ProtocolError.protocolViolation(peer: results.peer, detail: "expected a delivery of a known kind")
        }
        let expected = configuration.deliveries[me] ?? .none
        guard kind == expected else {
            throw ProtocolError.protocolViolation(peer: results.peer, detail: "delivered \(kind.rawValue), the job says \(expected.rawValue)")
        }
        switch kind {
        case .none:
            return .none
        case .cardinality:
            // Identifiers held by at least k owners: at most every owner's every pseudonym.
            return .cardinality(try WireNumber.count(header.cardinality, limit: configuration.owners.count * WireNumber.maximumSetSize,
                                                     field: "cardinality", peer: results.peer))
        case .intersection, .onOthersLists, .union:
            // A list can hold at most every owner's every pseudonym (those held by at least k of them, k
            // possibly 1); the aggregator said how many follow, and no more are read.
            let announced = try WireNumber.count(header.count, limit: configuration.owners.count * WireNumber.maximumSetSize,
                                                 field: "delivery size", peer: results.peer)
            let list = try GroupElement.unpack(try await results.receiveItems(itemSize: 32, sealed: false, limit: announced))
            guard list.count == announced else {
                throw ProtocolError.protocolViolation(peer: results.peer, detail: "announced \(header.count) pseudonyms, sent \(list.count)")
            }
            guard zip(list, list.dropFirst()).allSatisfy({ $0 < $1 }) else {
                throw ProtocolError.protocolViolation(peer: results.peer, detail: "the delivered pseudonyms are not sorted and distinct")
            }
            if kind == .union {
                let mine = Set(pseudonyms)
                guard mine.isSubset(of: list) else {
                    throw ProtocolError.protocolViolation(peer: results.peer, detail: "the union lacks pseudonyms of \(me)")
                }
                return .union(list)
            }
            let delivered = Set(list)
            return .members(positions: pseudonyms.indices.filter { delivered.contains(pseudonyms[$0]) })
        }
    }
}

/// The mixer's shuffle: every owner's sealed pseudonyms, merged and permuted with the CSPRNG, so the
/// aggregator cannot tell which owner sent which box. The mixer cannot open the boxes. It is an owner
/// (`SetOwner`, with its own boxes) or a node that holds no data (`SetMixerRole`).
struct SealedMixer {
    let configuration: SetOperationConfiguration
    let me: NodeID

    /// - Parameters:
    ///   - ringSizes: each owner's set size as its chain passed this owner in the ring (an owner-mixer);
    ///     the aggregator's announced sizes must equal them.
    ///   - aggregator: the "mixed" session: the announced sizes arrive on it, the shuffled boxes leave on it.
    /// - Returns: in buckets, the job's bucket count as the aggregator announced it (0 otherwise).
    @discardableResult
    func mix(own: [UInt8], from others: [ProtocolSession], ringSizes: [NodeID: Int]?, aggregator: ProtocolSession) async throws -> Int {
        let size = SealedPseudonym.size
        // No owner may send more boxes than the set size it announced to the aggregator.
        let (limits, buckets) = try await ownerSizes(from: aggregator, ringSizes: ringSizes)
        guard own.count == (limits[me] ?? 0) * size else {
            throw ProtocolError.protocolViolation(peer: aggregator.peer, detail: "announced \(limits[me] ?? 0) pseudonyms for this mixer, which sealed \(own.count / size)")
        }
        let received = try await withThrowingTaskGroup(of: [UInt8].self) { group in
            for s in others {
                let limit = limits[s.peer] ?? 0
                group.addTask {
                    let boxes = try await s.receiveItems(itemSize: size, sealed: true, limit: limit)
                    guard boxes.count == limit * size else {
                        throw ProtocolError.protocolViolation(peer: s.peer, detail: "sent \(boxes.count / size) sealed pseudonyms, announced \(limit)")
                    }
                    return boxes
                }
            }
            var all: [[UInt8]] = []
            for try await r in group { all.append(r) }
            return all
        }
        var boxes = own
        for r in received { boxes.append(contentsOf: r) }
        let count = boxes.count / size
        var order = Array(0..<count)
        SecureShuffle.shuffle(&order)
        var shuffled = [UInt8](repeating: 0, count: boxes.count)
        for (to, from) in order.enumerated() {
            shuffled.replaceSubrange((to * size)..<((to + 1) * size), with: boxes[(from * size)..<((from + 1) * size)])
        }
        boxes = []
        try await aggregator.sendItems(shuffled, itemSize: size, batchSize: configuration.batchSize, sealed: true)
        await aggregator.channel.close()
        for s in others { await s.channel.close() }
        return buckets
    }

    /// The owners' set sizes the aggregator announces (every owner once, each within bounds).
    private func ownerSizes(from aggregator: ProtocolSession, ringSizes: [NodeID: Int]?) async throws -> ([NodeID: Int], buckets: Int) {
        let announced = try await aggregator.receiveOwnerSizes(owners: configuration.owners)
        let limits = announced.sizes, announcedBuckets = announced.buckets
        if let ringSizes, let owner = configuration.owners.first(where: { ringSizes[$0] != limits[$0] }) {
            throw ProtocolError.protocolViolation(peer: aggregator.peer,
                                                  detail: "announces \(limits[owner]!) pseudonyms for \(owner), whose chain carried \(ringSizes[owner] ?? 0) in the ring")
        }
        let buckets = Int(announcedBuckets)
        if let bucketing = configuration.bucketing {
            guard buckets >= 1, buckets <= bucketing.maximum, bucketing.requested.map({ $0 == buckets }) ?? true else {
                throw ProtocolError.protocolViolation(peer: aggregator.peer, detail: "announces \(announcedBuckets) buckets; the job asks \(bucketing.requested.map(String.init) ?? "a count from the sizes") and this node takes part in at most \(bucketing.maximum) (max_buckets)")
            }
        } else if buckets != 0 {
            throw ProtocolError.protocolViolation(peer: aggregator.peer, detail: "announces buckets for a set operation in one pass")
        }
        return (limits, buckets)
    }
}
