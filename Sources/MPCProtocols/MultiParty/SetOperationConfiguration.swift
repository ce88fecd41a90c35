import MPCCrypto

/// What every role of a multi-party set operation agrees on (Protocols/multi-party-sets.md).
public struct SetOperationConfiguration: Sendable {
    public var jobID: String
    public var group: BlindingGroup
    /// The data owners, in ring order.
    public var owners: [NodeID]
    /// The node that shuffles the sealed pseudonyms: an owner, or a node that holds no data (`SetMixerRole`).
    public var mixer: NodeID
    /// The node that sees the multiset of pseudonyms; never an owner.
    public var aggregator: NodeID
    /// What each owner receives from the aggregator (owners not listed receive `.none`).
    public var deliveries: [NodeID: SetDeliveryKind]
    public var batchSize: Int
    /// This owner's limits on every other owner's set (its own policy's), checked as their chains pass
    /// through its ring step: an owner that offers a whole number range is refused before any delivery.
    public var peerSetSizes: ClosedRange<Int> = 0...WireNumber.maximumSetSize
    /// Run in buckets (Protocols/multi-party-sets.md "Buckets"); nil: the whole sets in one pass.
    public var bucketing: SetBucketing?

    public init(jobID: String, group: BlindingGroup, owners: [NodeID], mixer: NodeID, aggregator: NodeID,
                deliveries: [NodeID: SetDeliveryKind] = [:], batchSize: Int = 4096) {
        self.jobID = jobID
        self.group = group
        self.owners = owners
        self.mixer = mixer
        self.aggregator = aggregator
        self.deliveries = deliveries
        self.batchSize = batchSize
    }

    public var ring: PseudonymRingParty.Configuration {
        var c = PseudonymRingParty.Configuration(jobID: jobID, group: group, ring: owners, batchSize: batchSize)
        c.peerSetSizes = peerSetSizes
        return c
    }

    func validate(as me: NodeID) throws {
        guard owners.count >= 2, Set(owners).count == owners.count else {
            throw ProtocolError.parameterMismatch(peer: me, detail: "a set operation needs at least two distinct owners")
        }
        guard mixer != aggregator, !mixer.isEmpty else {
            throw ProtocolError.parameterMismatch(peer: me, detail: "the mixer must be named and must not be the aggregator")
        }
        guard !owners.contains(aggregator) else {
            throw ProtocolError.parameterMismatch(peer: me, detail: "the aggregator \(aggregator) must not be an owner")
        }
    }
}

/// What the aggregator sends an owner at the end.
public enum SetDeliveryKind: String, Sendable, CaseIterable {
    case none
    /// The size of the intersection of all owners' sets.
    case cardinality
    /// The pseudonyms every owner holds: the receiver learns which of its identifiers are in the intersection.
    case intersection
    /// The pseudonyms at least two owners hold: the receiver learns which of its identifiers some other owner holds.
    case onOthersLists = "on-others-lists"
    /// Every distinct pseudonym, sorted: the slots of a following secure sum.
    case union
}

/// What an owner ends with.
public enum SetDelivery: Equatable, Sendable {
    case none
    case cardinality(Int)
    /// Positions (ascending) in the owner's own identifier order.
    case members(positions: [Int])
    /// Every distinct pseudonym, sorted.
    case union([GroupElement])
}

extension SetOperationConfiguration {
    /// The domain of the owners' box digests (`MultisetHash`): this job only.
    var boxDigestDomain: [UInt8] { Array("sealed-pseudonyms/\(jobID)".utf8) }
}

/// Sealed boxes of 32-byte pseudonyms.
enum SealedPseudonym {
    static let size = 32 + SealedBox.sealedOverhead

    /// Opens `boxes` (whole boxes, concatenated) with the aggregator's key; a box that does not open is
    /// `peer`'s fault (`which` names the box in the error, e.g. "of bucket 3").
    static func openAll(_ boxes: [UInt8], with keyPair: KeyAgreementKeyPair, from peer: NodeID, which: String = "") async throws -> [GroupElement] {
        try await ParallelMap.mapInChunks(Array(0..<(boxes.count / size))) { i -> GroupElement in
            do {
                return try GroupElement.unpack(try SealedBox.open(boxes[(i * size)..<((i + 1) * size)], with: keyPair))[0]
            } catch {
                throw ProtocolError.malformedMessage(peer: peer, detail: "sealed pseudonym \(i)\(which) does not open: \(error)")
            }
        }
    }
}
