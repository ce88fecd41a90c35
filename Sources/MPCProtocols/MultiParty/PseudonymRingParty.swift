import Foundation
import MPCCrypto
import MPCWire

/// One owner in the blinding ring that computes joint pseudonyms Ψ(x) = (k₁·…·kₙ)·H(x)
/// (Protocols/multi-party-sets.md, step 1).
///
/// The owner sends its identifiers, blinded with its key, to the next owner; every owner applies its key to
/// the chains that pass through and forwards them in the order received; after n − 1 hops a chain returns
/// to its origin, which finishes it. The origin starts its chain with a one-time mask r instead of its key
/// and finishes with s = k·r⁻¹ (`RingMask`), so the owner just before it in the ring handles values it
/// cannot relate to the final pseudonyms; the result is Ψ of the origin's identifiers, in the origin's
/// own order, known to the origin alone. Forwarded batches go through
/// an unbounded queue (a ring of blocking senders would deadlock); the own chain respects back-pressure.
///
/// The ring also carries each owner's digest mask R to the next owner (never further): an owner's box
/// digest is masked with R_own − R_previous, so the masks cancel in the sum over the ring and the
/// aggregator learns only the total (`SetOwner`, `SetAggregator`).
public struct PseudonymRingParty: Sendable {
    /// What an owner ends the ring with.
    public struct Result: Sendable {
        /// Ψ of the owner's identifiers, position by position in `source` order.
        public var pseudonyms: [GroupElement]
        /// R_own − R_previous, to add to the owner's box digest.
        public var digestMask: GroupElement
        /// How many identifiers each owner's chain carried as it passed here (this owner's own included):
        /// what each owner may later send the mixer.
        public var setSizes: [NodeID: Int]
    }

    public struct Configuration: Sendable {
        public var jobID: String
        public var group: BlindingGroup
        /// The owners in ring order.
        public var ring: [NodeID]
        public var batchSize: Int
        /// The sizes of the other owners' sets this owner accepts (every chain passes through it).
        public var peerSetSizes: ClosedRange<Int> = 0...WireNumber.maximumSetSize
        /// In a bucket of a bucketed set operation: exactly how many elements each chain carries (every
        /// owner's bucket capacity); a chain that carries more or fewer ends the ring.
        public var chainSizes: [NodeID: Int]?
        public init(jobID: String, group: BlindingGroup, ring: [NodeID], batchSize: Int = 4096) {
            self.jobID = jobID
            self.group = group
            self.ring = ring
            self.batchSize = batchSize
        }
    }

    public let configuration: Configuration
    public let me: NodeID
    public let source: any IdentifierSource
    public let toNext: any MessageChannel
    public let fromPrevious: any MessageChannel
    /// Called as the own chain comes back: (elements returned, own set size).
    public let progress: (@Sendable (Int, Int) -> Void)?
    /// Errors after which the next owner is not sent an abort, only a cut link (a bucketed set operation
    /// resumes after a dropped link; a peer that read an abort would fail the job).
    public var endsSilently: @Sendable (Error) -> Bool = { _ in false }

    public init(configuration: Configuration, me: NodeID, source: any IdentifierSource,
                toNext: any MessageChannel, fromPrevious: any MessageChannel, progress: (@Sendable (Int, Int) -> Void)? = nil) {
        self.configuration = configuration
        self.me = me
        self.source = source
        self.toNext = toNext
        self.fromPrevious = fromPrevious
        self.progress = progress
    }

    /// Returns Ψ of this owner's identifiers, position by position in `source` order, and its digest mask.
    public func run() async throws -> Result {
        let n = configuration.ring.count
        guard n >= 2, configuration.ring.contains(me), Set(configuration.ring).count == n else {
            throw ProtocolError.parameterMismatch(peer: me, detail: "the ring must list distinct owners including this one")
        }
        let cipher = CommutativeCipher.random(group: configuration.group, domain: configuration.jobID)
        let mask = cipher.ringMask()
        let outbound = ProtocolSession(channel: toNext)
        let inbound = ProtocolSession(channel: fromPrevious)
        let outbox = Outbox(highWaterBytes: 4 << 20)
        let ownDigestMask = Ristretto255.random()
        do {
            let result = try await withThrowingTaskGroup(of: Result?.self) { tasks in
                tasks.addTask { try await PSIParty.pump(outbox: outbox, session: outbound); return nil }
                tasks.addTask { try await sendOwnChain(cipher: mask.start, digestMask: ownDigestMask, outbox: outbox, session: outbound); return nil }
                tasks.addTask {
                    let (own, previousMask, setSizes) = try await receiveAndForward(cipher: cipher, finish: mask.finish, outbox: outbox,
                                                                                    outbound: outbound, inbound: inbound)
                    return Result(pseudonyms: own, digestMask: try Ristretto255.subtract(ownDigestMask, previousMask), setSizes: setSizes)
                }
                var own: Result?
                do {
                    for try await r in tasks where r != nil { own = r }
                } catch {
                    await outbox.fail()
                    tasks.cancelAll()
                    throw error
                }
                return own!
            }
            await toNext.close()
            return result
        } catch {
            if endsSilently(error) { await toNext.abort() } else { await outbound.end(after: error, by: me) }
            await fromPrevious.close()
            throw error
        }
    }

    private func message(_ session: ProtocolSession, chain: NodeID, hop: UInt32,
                         _ fill: (inout Mpcnode_V1_PseudonymRingMessage) -> Void) throws -> [UInt8] {
        try session.frame { f in
            var m = Mpcnode_V1_PseudonymRingMessage()
            m.chain = chain
            m.hop = hop
            fill(&m)
            f.ring = m
        }
    }

    private func sendOwnChain(cipher: CommutativeCipher, digestMask: GroupElement, outbox: Outbox, session: ProtocolSession) async throws {
        try await outbox.enqueueWhenRoom(message(session, chain: me, hop: 0) { $0.digestMask = Data(GroupElement.pack([digestMask])) })
        var offset = 0
        while offset < source.count {
            let ids = try await source.identifiers(in: offset..<min(source.count, offset + configuration.batchSize))
            guard !ids.isEmpty else { break }
            let blinded = try cipher.hashAndBlind(batch: ids)
            let start = offset
            try await outbox.enqueueWhenRoom(message(session, chain: me, hop: 0) {
                $0.batch = .with { $0.offset = UInt64(start); $0.elements = Data(GroupElement.pack(blinded)) }
            })
            offset += ids.count
        }
        let count = offset
        try await outbox.enqueueWhenRoom(message(session, chain: me, hop: 0) { $0.end = .with { $0.count = UInt64(count) } })
    }

    /// Applies this owner's key to passing chains and forwards them; collects the own chain when it returns,
    /// the previous owner's digest mask, and every chain's size.
    private func receiveAndForward(cipher: CommutativeCipher, finish: CommutativeCipher, outbox: Outbox, outbound: ProtocolSession,
                                   inbound: ProtocolSession) async throws -> ([GroupElement], GroupElement, [NodeID: Int]) {
        let n = configuration.ring.count
        let peer = fromPrevious.peer
        var previousMask: GroupElement?
        var received: [NodeID: Int] = [:]
        var ended = Set<NodeID>()
        var own: [GroupElement] = []
        own.reserveCapacity(source.count)
        while ended.count < n {
            let frame = try await inbound.receiveFrame()
            guard case .ring(let m)? = frame.body, let body = m.body else {
                throw ProtocolError.malformedMessage(peer: peer, detail: "expected a pseudonym ring message")
            }
            guard configuration.ring.contains(m.chain), !ended.contains(m.chain) else {
                throw ProtocolError.protocolViolation(peer: peer, detail: "message for unknown or finished chain \(m.chain)")
            }
            // Chain c arrives here after passing the owners between c and this one.
            let distance = (configuration.ring.firstIndex(of: me)! - configuration.ring.firstIndex(of: m.chain)! + n) % n
            let expectedHop = UInt32(distance == 0 ? n - 1 : distance - 1)
            guard m.hop == expectedHop else {
                throw ProtocolError.protocolViolation(peer: peer, detail: "chain \(m.chain) at hop \(m.hop), expected \(expectedHop)")
            }
            switch body {
            case .digestMask(let bytes):
                // Only the previous owner's own chain carries one, first, once.
                guard m.hop == 0, m.chain == peer, previousMask == nil, received[m.chain] == nil, bytes.count == GroupElement.byteCount,
                      let element = try? GroupElement.unpack(bytes).first, Ristretto255.isValid(element) else {
                    throw ProtocolError.protocolViolation(peer: peer, detail: "a digest mask out of place or not a ristretto255 element")
                }
                previousMask = element
            case .batch(let batch):
                guard batch.offset == UInt64(received[m.chain, default: 0]) else {
                    throw ProtocolError.protocolViolation(peer: peer, detail: "chain \(m.chain) batch at offset \(batch.offset)")
                }
                let elements: [GroupElement]
                do { elements = try GroupElement.unpack(batch.elements) } catch {
                    throw ProtocolError.malformedMessage(peer: peer, detail: "\(error)")
                }
                received[m.chain, default: 0] += elements.count
                if let exact = configuration.chainSizes?[m.chain], received[m.chain, default: 0] > exact {
                    throw ProtocolError.protocolViolation(peer: m.chain, detail: "its chain carries more than \(exact) elements in a bucket, the capacity its announced set size allows")
                }
                if m.chain != me, received[m.chain, default: 0] > configuration.peerSetSizes.upperBound {
                    throw ProtocolError.peerSetSizeRefused(peer: m.chain, size: UInt64(received[m.chain, default: 0]),
                                                           limit: "at most \(configuration.peerSetSizes.upperBound)")
                }
                if m.chain == me {
                    do { own.append(contentsOf: try finish.blind(batch: elements)) } catch {
                        throw ProtocolError.malformedMessage(peer: peer, detail: "own chain: \(error)")
                    }
                    progress?(own.count, source.count)
                } else {
                    let next: [GroupElement]
                    do { next = try cipher.blind(batch: elements) } catch {
                        throw ProtocolError.malformedMessage(peer: peer, detail: "chain \(m.chain): \(error)")
                    }
                    let offset = batch.offset, chain = m.chain, hop = m.hop + 1
                    await outbox.enqueue(try message(outbound, chain: chain, hop: hop) {
                        $0.batch = .with { $0.offset = offset; $0.elements = Data(GroupElement.pack(next)) }
                    })
                }
            case .end(let end):
                guard end.count == UInt64(received[m.chain, default: 0]) else {
                    throw ProtocolError.protocolViolation(peer: peer, detail: "chain \(m.chain) ended after \(received[m.chain, default: 0]) of \(end.count)")
                }
                ended.insert(m.chain)
                if let exact = configuration.chainSizes?[m.chain], end.count != UInt64(exact) {
                    throw ProtocolError.protocolViolation(peer: m.chain, detail: "its chain carried \(end.count) elements in a bucket, not the \(exact) its announced set size gives")
                }
                if m.chain == peer, previousMask == nil {
                    throw ProtocolError.protocolViolation(peer: peer, detail: "chain \(m.chain) ended without its digest mask")
                }
                if m.chain != me, end.count < UInt64(configuration.peerSetSizes.lowerBound) {
                    throw ProtocolError.peerSetSizeRefused(peer: m.chain, size: end.count, limit: "at least \(configuration.peerSetSizes.lowerBound)")
                }
                if m.chain == me {
                    guard own.count == source.count else {
                        throw ProtocolError.protocolViolation(peer: peer, detail: "own chain returned \(own.count) of \(source.count) elements")
                    }
                } else {
                    let chain = m.chain, hop = m.hop + 1
                    await outbox.enqueue(try message(outbound, chain: chain, hop: hop) { $0.end = end })
                }
            }
        }
        await outbox.finish()
        let setSizes = Dictionary(uniqueKeysWithValues: configuration.ring.map { ($0, $0 == me ? source.count : received[$0, default: 0]) })
        return (own, previousMask!, setSizes)
    }
}
