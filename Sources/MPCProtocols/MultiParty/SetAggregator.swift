import Foundation
import MPCCrypto
import MPCWire

/// How many owners hold each pseudonym: the aggregator's whole view of a set operation (it never
/// learns which owner holds which pseudonym).
public struct Multiplicities: Sendable {
    /// Distinct pseudonyms, sorted.
    public let pseudonyms: [GroupElement]
    /// `counts[i]`: how many owners hold `pseudonyms[i]` (1…owners).
    public let counts: [UInt16]
    /// Distinct identifiers each owner holds.
    public let setSizes: [NodeID: Int]
    public let owners: Int

    public init(pseudonyms: [GroupElement], counts: [UInt16], setSizes: [NodeID: Int], owners: Int) {
        self.pseudonyms = pseudonyms
        self.counts = counts
        self.setSizes = setSizes
        self.owners = owners
    }

    /// Counts the multiset: sorts it and measures runs.
    static func of(_ all: [GroupElement], setSizes: [NodeID: Int], owners: Int) -> (Multiplicities, maximum: Int) {
        let sorted = all.sorted()
        var distinct: [GroupElement] = []
        var counts: [UInt16] = []
        var maximum = 0
        var i = 0
        while i < sorted.count {
            var j = i + 1
            while j < sorted.count && sorted[j] == sorted[i] { j += 1 }
            distinct.append(sorted[i])
            counts.append(UInt16(clamping: j - i))
            maximum = max(maximum, j - i)
            i = j
        }
        return (Multiplicities(pseudonyms: distinct, counts: counts, setSizes: setSizes, owners: owners), maximum)
    }

    public var unionSize: Int { pseudonyms.count }
    public var intersectionSize: Int { counts.reduce(0) { $0 + ($1 == owners ? 1 : 0) } }
    /// Identifiers held by at least `k` owners.
    public func heldByAtLeast(_ k: Int) -> Int { counts.reduce(0) { $0 + (Int($1) >= k ? 1 : 0) } }
    /// `histogram[c]`: identifiers held by exactly c owners (index 0 unused).
    public var histogram: [Int] {
        var h = Array(repeating: 0, count: owners + 1)
        for c in counts { h[Int(c)] += 1 }
        return h
    }
    /// Index of a pseudonym in `pseudonyms`, or nil.
    public func index(of p: GroupElement) -> Int? {
        var lo = 0, hi = pseudonyms.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if pseudonyms[mid] < p { lo = mid + 1 } else { hi = mid }
        }
        return lo < pseudonyms.count && pseudonyms[lo] == p ? lo : nil
    }
}

/// The aggregator of a set operation (Protocols/multi-party-sets.md, step 3): gives each owner a
/// sealing key, opens the mixer's shuffled boxes, counts multiplicities, and delivers to each owner
/// what the job says; owners store their result only after the commit, which follows every owner's
/// acknowledgement.
public struct SetAggregator: Sendable {
    public struct Outcome: Sendable {
        public var multiplicities: Multiplicities
        public var bytesSent: UInt64
        public var bytesReceived: UInt64
        /// In buckets: how many (nil: one pass).
        public var buckets: Int? = nil
        /// In buckets: attempts after the first (dropped links mended).
        public var resumes: Int = 0
    }

    public let configuration: SetOperationConfiguration
    public init(configuration: SetOperationConfiguration) { self.configuration = configuration }

    /// - Parameters:
    ///   - fromOwners: the "results" session of every owner.
    ///   - fromMixer: the mixer's "mixed" session.
    ///   - release: called once the multiplicities are known and before anything is delivered; throws
    ///     (with the reason) to release nothing, e.g. when the intersection is below a policy minimum.
    public func run(fromOwners: [NodeID: any MessageChannel], fromMixer: any MessageChannel,
                    release: @Sendable (Multiplicities) throws -> Void = { _ in }) async throws -> Outcome {
        let me = configuration.aggregator
        try configuration.validate(as: me)
        guard Set(fromOwners.keys) == Set(configuration.owners), fromMixer.peer == configuration.mixer else {
            throw ProtocolError.parameterMismatch(peer: me, detail: "sessions do not match the owners and the mixer")
        }
        let owners = configuration.owners.map { ProtocolSession(channel: fromOwners[$0]!) }
        let mixer = ProtocolSession(channel: fromMixer)
        let all = owners + [mixer]
        do {
            let keyPair = KeyAgreementKeyPair.generate()
            // Sizes, keys and every owner's box digest; only then may boxes go to the mixer.
            var setSizes: [NodeID: Int] = [:]
            var digests = MultisetHash(domain: configuration.boxDigestDomain)
            var ringViews: [NodeID: [NodeID: UInt64]] = [:]
            try await withThrowingTaskGroup(of: (NodeID, Int, GroupElement, [NodeID: UInt64]).self) { group in
                for s in owners {
                    group.addTask {
                        guard case .hello(let hello) = try await s.receiveSets(expecting: "the set size") else {
                            throw ProtocolError.protocolViolation(peer: s.peer, detail: "expected the set size")
                        }
                        let size = try WireNumber.count(hello.setSize, limit: WireNumber.maximumSetSize, field: "set size", peer: s.peer)
                        try await s.sendSets { $0.sealingKey = .with { $0.publicKey = Data(keyPair.publicKey) } }
                        guard case .boxDigest(let d) = try await s.receiveSets(expecting: "the digest of its sealed pseudonyms"),
                              d.digest.count == GroupElement.byteCount, let digest = try? GroupElement.unpack(d.digest).first,
                              Ristretto255.isValid(digest) else {
                            throw ProtocolError.protocolViolation(peer: s.peer, detail: "expected the digest of its sealed pseudonyms (a ristretto255 element)")
                        }
                        guard d.ringOwners.count == d.ringSizes.count, d.ringOwners.sorted() == configuration.owners.sorted() else {
                            throw ProtocolError.protocolViolation(peer: s.peer, detail: "expected the ring's set size of every owner")
                        }
                        return (s.peer, size, digest, Dictionary(zip(d.ringOwners, d.ringSizes)) { a, _ in a })
                    }
                }
                for try await (peer, size, digest, view) in group {
                    setSizes[peer] = size
                    ringViews[peer] = view
                    try digests.add(digest)
                }
            }
            // Every owner's announced size is what every other owner saw of its chain in the ring.
            for (reporter, view) in ringViews.sorted(by: { $0.key < $1.key }) {
                for owner in configuration.owners.sorted() where view[owner] != UInt64(setSizes[owner] ?? 0) {
                    throw ProtocolError.protocolViolation(peer: owner, detail: "announced \(setSizes[owner] ?? 0) identifiers, but its chain carried \(view[owner] ?? 0) through \(reporter) in the ring")
                }
            }
            for s in owners { try await s.sendSets { $0.digestsReceived = .init() } }
            let announced = Mpcnode_V1_SetsOwnerSizes.with {
                $0.owners = configuration.owners
                $0.sizes = configuration.owners.map { UInt64(setSizes[$0] ?? 0) }
            }
            try await mixer.sendSets { $0.ownerSizes = announced }
            let total = setSizes.values.reduce(0, +)
            let size = SealedPseudonym.size
            let boxes = try await mixer.receiveItems(itemSize: size, sealed: true, limit: total)
            guard boxes.count == total * size else {
                throw ProtocolError.protocolViolation(peer: mixer.peer, detail: "forwarded \(boxes.count / size) sealed pseudonyms, the owners sent \(total)")
            }
            // The owners' masks cancel in the sum: what the mixer forwarded must hash to the owners' total.
            guard try await MultisetHash.ofInChunks(boxes, memberSize: size, domain: configuration.boxDigestDomain) == digests else {
                throw ProtocolError.protocolViolation(peer: mixer.peer,
                                                      detail: "the sealed pseudonyms it forwarded are not the ones the owners sealed (a box was substituted, added or dropped, or an owner's digest is false)")
            }
            let opened = try await SealedPseudonym.openAll(boxes, with: keyPair, from: mixer.peer)
            let (multiplicities, maximum) = Multiplicities.of(opened, setSizes: setSizes, owners: owners.count)
            guard maximum <= owners.count else {
                throw ProtocolError.protocolViolation(peer: mixer.peer, detail: "a pseudonym arrived \(maximum) times from \(owners.count) owners")
            }
            try release(multiplicities)
            // Deliveries, then acknowledgements, then the commit.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for s in owners {
                    let kind = configuration.deliveries[s.peer] ?? .none
                    group.addTask { try await deliver(kind, to: s, multiplicities: multiplicities) }
                }
                try await group.waitForAll()
            }
            for s in owners {
                try await s.sendSets { $0.commit = .init() }
                await s.channel.close()
            }
            await mixer.channel.close()
            return Outcome(multiplicities: multiplicities, bytesSent: all.reduce(0) { $0 + $1.bytesSent },
                           bytesReceived: all.reduce(0) { $0 + $1.bytesReceived })
        } catch {
            await ProtocolSession.abortAll(all, because: error, by: me)
            throw error
        }
    }

    func deliver(_ kind: SetDeliveryKind, to s: ProtocolSession, multiplicities m: Multiplicities) async throws {
        var list: [GroupElement] = []
        switch kind {
        case .none, .cardinality: break
        case .intersection: list = m.pseudonyms.indices.filter { Int(m.counts[$0]) == m.owners }.map { m.pseudonyms[$0] }
        case .onOthersLists: list = m.pseudonyms.indices.filter { m.counts[$0] >= 2 }.map { m.pseudonyms[$0] }
        case .union: list = m.pseudonyms
        }
        let cardinality = kind == .cardinality ? m.intersectionSize : 0
        let count = list.count
        try await s.sendSets {
            $0.delivery = .with { $0.kind = kind.rawValue; $0.cardinality = UInt64(cardinality); $0.count = UInt64(count) }
        }
        if !list.isEmpty || kind == .intersection || kind == .onOthersLists || kind == .union {
            try await s.sendItems(GroupElement.pack(list), itemSize: 32, batchSize: configuration.batchSize, sealed: false)
        }
        guard case .ack = try await s.receiveSets(expecting: "the acknowledgement") else {
            throw ProtocolError.protocolViolation(peer: s.peer, detail: "expected the acknowledgement")
        }
    }
}
