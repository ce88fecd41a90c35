import Foundation
import MPCCrypto
import MPCWire

/// The bookkeeping of one PSI party: what has arrived, whether it is consistent, and what it adds up to.
///
/// Shared by the party's sending task and its receive loop, so every access takes the lock; no lock is
/// held across a suspension point.
final class PSIReceiveState: @unchecked Sendable {
    private let lock = NSLock()
    private let configuration: PSIParty.Configuration
    private let peer: NodeID
    let ownSetSize: Int

    private var header: Mpcnode_V1_PsiHeader?
    private var peerReceived = 0
    private var peerEnded = false
    private var ownSentCount = 0
    private var ownEnded = false
    private var finishedEnqueued = false
    /// k_self·k_peer·H(y) for the peer's y: kept when this party receives the output.
    private var peerDoubled = Set<GroupElement>()
    /// The same with each element's position in the peer's stream, instead of `peerDoubled`, when the
    /// configuration asks for the peer's positions of the matches.
    private var peerDoubledPositions: [GroupElement: Int] = [:]
    /// The same, kept to be returned sorted when the peer receives the cardinality only.
    private var peerDoubledForSortedReply: [GroupElement] = []
    /// k_peer·k_self·H(x) for own x, in own order (or sorted, for the cardinality).
    private var ownDoubled: [GroupElement] = []
    private var ownDoubledEnded = false
    /// Running BLAKE2b-256 of the peer's blinded batches, in order.
    private var peerDigest = PeerStreamDigest()
    /// Replies held back until the peer's stream is checked (`peerStreamMustMatch`).
    private var heldReplies: [GroupElement] = []

    init(configuration: PSIParty.Configuration, ownSetSize: Int, peer: NodeID) {
        self.configuration = configuration
        self.ownSetSize = ownSetSize
        self.peer = peer
    }

    var peerSetSize: Int? { lock.withLock { header.map { Int($0.setSize) } } }

    /// The digest of the peer's whole blinded stream (after its end).
    var peerStreamDigest: [UInt8] { lock.withLock { peerDigest.value ?? [] } }

    var progress: PSIParty.Progress {
        lock.withLock {
            PSIParty.Progress(ownBlindedSent: ownSentCount, ownSetSize: ownSetSize,
                              peerElementsProcessed: peerReceived, peerSetSize: header.map { Int($0.setSize) })
        }
    }

    func acceptHeader(_ h: Mpcnode_V1_PsiHeader) throws {
        try lock.withLock {
            guard header == nil else { throw ProtocolError.protocolViolation(peer: peer, detail: "second header") }
            guard h.bucket == UInt64(configuration.bucket) else {
                throw ProtocolError.protocolViolation(peer: peer, detail: "header of bucket \(h.bucket), expected bucket \(configuration.bucket)")
            }
            guard h.group == configuration.group.rawValue else {
                throw ProtocolError.parameterMismatch(peer: peer, detail: "group \(h.group) against ours \(configuration.group.rawValue)")
            }
            guard h.setSize <= UInt64(configuration.maximumPeerSetSize) else {
                throw ProtocolError.peerSetSizeRefused(peer: peer, size: h.setSize, limit: "at most \(configuration.maximumPeerSetSize)")
            }
            guard h.setSize >= UInt64(configuration.minimumPeerSetSize) else {
                throw ProtocolError.peerSetSizeRefused(peer: peer, size: h.setSize, limit: "at least \(configuration.minimumPeerSetSize)")
            }
            header = h
            if configuration.selfReceivesOutput {
                let capacity = WireNumber.reservation(Int(h.setSize))  // ≤ the maximum checked above
                if configuration.reportsPeerPositions { peerDoubledPositions.reserveCapacity(capacity) } else { peerDoubled.reserveCapacity(capacity) }
            }
        }
    }

    /// Checks a batch of the peer's blinded elements and decodes it.
    func acceptPeerBatch(_ batch: Mpcnode_V1_ElementBatch) throws -> [GroupElement] {
        try lock.withLock {
            guard let header else { throw ProtocolError.protocolViolation(peer: peer, detail: "elements before the header") }
            guard !peerEnded else { throw ProtocolError.protocolViolation(peer: peer, detail: "elements after the end of the stream") }
            guard batch.offset == UInt64(peerReceived) else {
                throw ProtocolError.protocolViolation(peer: peer, detail: "batch at offset \(batch.offset), expected \(peerReceived)")
            }
            let elements: [GroupElement]
            do { elements = try GroupElement.unpack(batch.elements) } catch {
                throw ProtocolError.malformedMessage(peer: peer, detail: "\(error)")
            }
            guard peerReceived + elements.count <= Int(header.setSize) else {
                throw ProtocolError.protocolViolation(peer: peer, detail: "more elements than the announced \(header.setSize)")
            }
            peerReceived += elements.count
            peerDigest.update(batch.elements)
            return elements
        }
    }

    /// Keeps the peer's double-blinded elements (if this party gets the output) and returns what to send
    /// back right away (the peer gets the intersection: same order), or nil.
    func keepOrReply(_ doubled: [GroupElement], offset: Int) -> [GroupElement]? {
        lock.withLock {
            if configuration.selfReceivesOutput {
                if configuration.reportsPeerPositions {
                    for (k, e) in doubled.enumerated() { peerDoubledPositions[e] = offset + k }
                } else {
                    peerDoubled.formUnion(doubled)
                }
            }
            guard configuration.peerReceivesOutput else { return nil }
            if configuration.cardinalityOnly {
                peerDoubledForSortedReply.append(contentsOf: doubled)
                return nil
            }
            if configuration.peerStreamMustMatch != nil {
                heldReplies.append(contentsOf: doubled)
                return nil
            }
            return doubled
        }
    }

    /// The end of the peer's blinded stream; returns the replies held back: sorted for a cardinality-only
    /// peer, in order for a redone bucket whose stream matched the one seen before.
    func acceptPeerStreamEnd(_ end: Mpcnode_V1_StreamEnd) throws -> [GroupElement]? {
        try lock.withLock {
            guard let header else { throw ProtocolError.protocolViolation(peer: peer, detail: "stream end before the header") }
            guard !peerEnded else { throw ProtocolError.protocolViolation(peer: peer, detail: "second end of stream") }
            guard end.count == UInt64(peerReceived), end.count == header.setSize else {
                throw ProtocolError.protocolViolation(peer: peer, detail: "stream ended after \(peerReceived) elements, announced \(header.setSize), end says \(end.count)")
            }
            let digest = peerDigest.finish()
            if let expected = configuration.peerStreamMustMatch, expected != digest {
                throw ProtocolError.protocolViolation(peer: peer, detail: "bucket \(configuration.bucket) was completed before with another set from this peer; a resumed job must send the same elements")
            }
            if configuration.peerStreamMustMatch != nil, configuration.peerReceivesOutput, !configuration.cardinalityOnly {
                defer { heldReplies = [] }
                return heldReplies
            }
            guard configuration.peerReceivesOutput && configuration.cardinalityOnly else { return nil }
            var sorted = peerDoubledForSortedReply
            peerDoubledForSortedReply = []
            sorted.sort()
            return sorted
        }
    }

    func acceptOwnDoubleBlinded(_ batch: Mpcnode_V1_ElementBatch) throws {
        try lock.withLock {
            guard configuration.selfReceivesOutput else {
                throw ProtocolError.protocolViolation(peer: peer, detail: "sent double-blinded elements to a party that receives no output")
            }
            guard !ownDoubledEnded, batch.offset == UInt64(ownDoubled.count) else {
                throw ProtocolError.protocolViolation(peer: peer, detail: "double-blinded batch at offset \(batch.offset), expected \(ownDoubled.count)")
            }
            let elements: [GroupElement]
            do { elements = try GroupElement.unpack(batch.elements) } catch {
                throw ProtocolError.malformedMessage(peer: peer, detail: "\(error)")
            }
            guard ownDoubled.count + elements.count <= ownSetSize else {
                throw ProtocolError.protocolViolation(peer: peer, detail: "returned more elements than were sent")
            }
            ownDoubled.append(contentsOf: elements)
        }
    }

    func acceptOwnDoubleBlindedEnd(_ end: Mpcnode_V1_StreamEnd) throws {
        try lock.withLock {
            guard configuration.selfReceivesOutput, !ownDoubledEnded else {
                throw ProtocolError.protocolViolation(peer: peer, detail: "unexpected end of the double-blinded stream")
            }
            guard end.count == UInt64(ownDoubled.count), ownDoubled.count == ownSetSize else {
                throw ProtocolError.protocolViolation(peer: peer, detail: "returned \(ownDoubled.count) of \(ownSetSize) elements")
            }
            ownDoubledEnded = true
        }
    }

    func ownSent(_ count: Int) { lock.withLock { ownSentCount = count } }

    func ownStreamDone(outbox: Outbox, session: ProtocolSession) async throws {
        let send = lock.withLock { ownEnded = true; return takeFinishedTurn() }
        if send { try await enqueueFinished(outbox: outbox, session: session) }
    }

    func peerStreamDone(outbox: Outbox, session: ProtocolSession) async throws {
        let send = lock.withLock { peerEnded = true; return takeFinishedTurn() }
        if send { try await enqueueFinished(outbox: outbox, session: session) }
    }

    /// Under the lock: whether this caller is the one to send `finished` (everything else is queued).
    private func takeFinishedTurn() -> Bool {
        guard ownEnded && peerEnded && !finishedEnqueued else { return false }
        finishedEnqueued = true
        return true
    }

    private func enqueueFinished(outbox: Outbox, session: ProtocolSession) async throws {
        await outbox.enqueue(try PSIParty.message(session) { $0.finished = .init() })
        await outbox.finish()
    }

    /// The peer has sent everything: compute this party's output.
    func acceptFinished() throws -> PSIParty.Output {
        try lock.withLock {
            guard header != nil, peerEnded else {
                throw ProtocolError.protocolViolation(peer: peer, detail: "finished before sending its whole set")
            }
            guard configuration.selfReceivesOutput else { return .none }
            guard ownDoubledEnded else {
                throw ProtocolError.protocolViolation(peer: peer, detail: "finished before returning our elements")
            }
            if configuration.cardinalityOnly {
                return .cardinality(ownDoubled.reduce(0) { $0 + (peerDoubled.contains($1) ? 1 : 0) })
            }
            var positions: [Int] = []
            if configuration.reportsPeerPositions {
                var peerPositions: [Int] = []
                for (i, e) in ownDoubled.enumerated() {
                    if let p = peerDoubledPositions[e] { positions.append(i); peerPositions.append(p) }
                }
                return .matches(positions: positions, peerPositions: peerPositions)
            }
            for (i, e) in ownDoubled.enumerated() where peerDoubled.contains(e) { positions.append(i) }
            return .intersection(positions: positions)
        }
    }
}

/// BLAKE2b-256 of a stream's batches in order, kept as a running value in a copyable holder.
struct PeerStreamDigest {
    private var chained: [UInt8] = Array(repeating: 0, count: 32)
    private(set) var value: [UInt8]?

    /// Chains each batch: d ← BLAKE2b-256(d ‖ batch). Equal streams in equal batches give equal digests.
    mutating func update(_ bytes: Data) {
        chained = BucketKey.blake2b(chained + Array(bytes), length: 32, key: nil)
    }

    mutating func finish() -> [UInt8] {
        value = chained
        return chained
    }
}
