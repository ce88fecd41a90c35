import Foundation
import MPCCrypto
import MPCWire

/// An owner's part in a set operation run in buckets (Protocols/multi-party-sets.md "Buckets"): the
/// announced set sizes fix the bucket count and every owner's bucket capacity; a one-element ring gives
/// the owners a bucket key nobody else learns; then, bucket by bucket, the ring over the bucket padded
/// with dummies to its capacity, the sealed boxes (a dummy's seals a marker only the aggregator sees)
/// through the mixer, and the digests; the delivery comes once, after the last bucket.
struct BucketedSetOwner {
    struct Outcome {
        var delivery: SetDelivery
        /// Ψ of the owner's identifiers, position by position in `source` order (each under its bucket's keys).
        var pseudonyms: [GroupElement]
        var buckets: Int
    }

    let configuration: SetOperationConfiguration
    let bucketing: SetBucketing
    let me: NodeID
    let waits: SetOperationParty.Waits

    /// Progress in per cent of the buckets done, 0…90.
    func run(source: any BucketedIdentifierSource, port: any SessionPort, progress: @escaping @Sendable (Int) -> Void) async throws -> Outcome {
        let config = configuration, me = me, waits = waits
        let owners = config.owners, n = owners.count
        guard let index = owners.firstIndex(of: me) else {
            throw ProtocolError.parameterMismatch(peer: me, detail: "\(me) is not an owner of the set operation")
        }
        let next = owners[(index + 1) % n], previous = owners[(index + n - 1) % n]
        let isMixer = config.mixer == me
        return try await port.withSession(stream: SetOperationStream.results, to: config.aggregator) { channel in
            let results = ProtocolSession(channel: channel)
            var claims: BucketSessionClaims?, mixClaims: BucketSessionClaims?
            do {
                // 1. The owners' bucket key (a ring of one element; no data of anyone's).
                let bucketKey = try await bucketKey(port: port, next: next, previous: previous)
                // 2. Every owner's set size, from the aggregator: the layout; then the sealing key.
                try await results.sendSets { $0.hello = .with { $0.setSize = UInt64(source.count) } }
                let layout = try await announcedLayout(results, ownSize: source.count)
                guard case .sealingKey(let key) = try await results.receiveSets(expecting: "the sealing key"), key.publicKey.count == 32 else {
                    throw ProtocolError.protocolViolation(peer: results.peer, detail: "expected a 32-byte sealing key")
                }
                let publicKey = [UInt8](key.publicKey)
                // 3. The sessions of the first buckets are claimed now: the others may start them long
                // before this owner has put its set into buckets.
                let others = owners.filter { $0 != me }
                claims = BucketSessionClaims(port: port, timeout: waits.phase, buckets: layout.count) { b in
                    [(SetBucketLayout.stream(SetOperationStream.ring, bucket: b), previous)]
                }
                mixClaims = BucketSessionClaims(port: port, timeout: waits.phase, buckets: isMixer ? layout.count : 0) { b in
                    others.map { (SetBucketLayout.stream(SetOperationStream.mix, bucket: b), $0) }
                }
                claims!.claim(from: 0)
                mixClaims!.claim(from: 0)
                // The buckets under the owners' key, each within this owner's capacity.
                let bucketSizes = try await source.assignBuckets(key: bucketKey, count: layout.count)
                let capacity = layout.capacities[me]!
                if let b = bucketSizes.indices.first(where: { bucketSizes[$0] > capacity }) {
                    throw SetBucketOverCapacity(bucket: b, size: bucketSizes[b], capacity: capacity)
                }
                let seed = BucketKey.randomShare()
                var pseudonyms = [GroupElement](repeating: SetBucketLayout.dummyMarker, count: source.count)
                // 4. Bucket by bucket.
                for b in 0..<layout.count {
                    let ringStream = SetBucketLayout.stream(SetOperationStream.ring, bucket: b)
                    let members = try await source.members(ofBucket: b)
                    guard members.count <= capacity else { throw SetBucketOverCapacity(bucket: b, size: members.count, capacity: capacity) }
                    let padded = PaddedBucket(members: members, bucket: b, capacity: capacity, seed: seed)
                    var ringConfig = config.ring
                    ringConfig.peerSetSizes = 0...WireNumber.maximumSetSize  // the announced sizes were checked against the policy
                    ringConfig.chainSizes = layout.capacities
                    // Open to the next owner first, then take the previous one's: every owner waiting for
                    // its previous before opening would wait around the ring for ever.
                    let ring = try await port.withSession(stream: ringStream, to: next) { toNext in
                        let fromPrevious = try await claims!.take(bucket: b)["\(ringStream)/\(previous)"]!
                        return try await port.using([fromPrevious]) {
                            try await PseudonymRingParty(configuration: ringConfig, me: me, source: padded, toNext: toNext, fromPrevious: fromPrevious).run()
                        }
                    }
                    let boxes = try await ParallelMap.mapInChunks(Array(0..<padded.count)) { i in
                        try SealedBox.seal(GroupElement.pack([padded.sourcePosition(i) == nil ? SetBucketLayout.dummyMarker : ring.pseudonyms[i]]), to: publicKey)
                    }.flatMap { $0 }
                    var digest = try await MultisetHash.ofInChunks(boxes, memberSize: SealedPseudonym.size, domain: config.boxDigestDomain(bucket: b))
                    try digest.add(ring.digestMask)
                    let digestBytes = Data(GroupElement.pack([digest.sum])), ringSizes = owners.map { UInt64(ring.setSizes[$0] ?? 0) }
                    try await results.sendSets { $0.boxDigest = .with { $0.digest = digestBytes; $0.ringOwners = owners; $0.ringSizes = ringSizes } }
                    // Nobody's boxes of this bucket go to the mixer before every digest of it is with the aggregator.
                    guard case .digestsReceived = try await results.receiveSets(expecting: "word that every box digest of bucket \(b) arrived") else {
                        throw ProtocolError.protocolViolation(peer: results.peer, detail: "expected word that every box digest of bucket \(b) arrived")
                    }
                    if isMixer {
                        let accepted = try await mixClaims!.take(bucket: b)
                        let fromOwners = others.compactMap { accepted["\(SetBucketLayout.stream(SetOperationStream.mix, bucket: b))/\($0)"] }
                        try await port.using(fromOwners) {
                            try await port.withSession(stream: SetBucketLayout.stream(SetOperationStream.mixed, bucket: b), to: config.aggregator) { mixed in
                                try await SealedMixer(configuration: config, me: me).mix(own: boxes, from: fromOwners.map(ProtocolSession.init(channel:)),
                                                                                         ringSizes: ring.setSizes, aggregator: ProtocolSession(channel: mixed))
                            }
                        }
                    } else {
                        try await port.withSession(stream: SetBucketLayout.stream(SetOperationStream.mix, bucket: b), to: config.mixer) { toMixer in
                            try await ProtocolSession(channel: toMixer).sendItems(boxes, itemSize: SealedPseudonym.size, batchSize: config.batchSize, sealed: true)
                        }
                    }
                    for i in 0..<padded.count {
                        if let position = padded.sourcePosition(i) { pseudonyms[position] = ring.pseudonyms[i] }
                    }
                    progress(90 * (b + 1) / layout.count)
                }
                // 5. The delivery, over every bucket, once.
                let delivery = try await SetOwner(configuration: config, me: me).receiveDelivery(results, pseudonyms: pseudonyms)
                try await results.sendSets { $0.ack = .init() }
                guard case .commit = try await results.receiveSets(expecting: "the commit") else {
                    throw ProtocolError.protocolViolation(peer: results.peer, detail: "expected the commit")
                }
                await channel.close()
                return Outcome(delivery: delivery, pseudonyms: pseudonyms, buckets: layout.count)
            } catch {
                await port.cancelAccepts(reason: "\(error)")
                await claims?.cancel()
                await mixClaims?.cancel()
                await results.end(after: error, by: me)
                throw error
            }
        }
    }

    /// Every owner's set size as the aggregator announces it: this owner's own must be what it said, and
    /// every other within this owner's policy limits (the ring's chains are padded, so this is where they apply).
    private func announcedLayout(_ results: ProtocolSession, ownSize: Int) async throws -> SetBucketLayout {
        let config = configuration
        let sizes = try await results.receiveOwnerSizes(owners: config.owners).sizes
        guard sizes[me] == ownSize else {
            throw ProtocolError.protocolViolation(peer: results.peer, detail: "announces \(sizes[me] ?? 0) identifiers for \(me), which has \(ownSize)")
        }
        for owner in config.owners where owner != me {
            let size = sizes[owner]!
            if size > config.peerSetSizes.upperBound {
                throw ProtocolError.peerSetSizeRefused(peer: owner, size: UInt64(size), limit: "at most \(config.peerSetSizes.upperBound)")
            }
            if size < config.peerSetSizes.lowerBound {
                throw ProtocolError.peerSetSizeRefused(peer: owner, size: UInt64(size), limit: "at least \(config.peerSetSizes.lowerBound)")
            }
        }
        return try SetBucketLayout(bucketing: bucketing, owners: config.owners, sizes: sizes, me: me)
    }

    /// The owners' bucket key: Ψ of one fixed value under this job's one-off keys (a ring of one element
    /// per chain, its own hash domain), hashed. Every owner ends with the same value and nobody else can
    /// compute it: the aggregator and a mixer that holds no data take no part, and no box ever seals it.
    private func bucketKey(port: any SessionPort, next: NodeID, previous: NodeID) async throws -> BucketKey {
        var ring = PseudonymRingParty.Configuration(jobID: "\(configuration.jobID)/bucket-key", group: configuration.group,
                                                    ring: configuration.owners, batchSize: 1)
        ring.peerSetSizes = 1...1
        let me = me, waits = waits
        let value = try await port.withSession(stream: SetBucketLayout.keyRingStream, to: next) { toNext in
            try await port.withAccepted(stream: SetBucketLayout.keyRingStream, from: previous, timeout: waits.session) { fromPrevious in
                try await PseudonymRingParty(configuration: ring, me: me, source: ArrayIdentifierSource(["mpcnode-set-bucket-key-v1"]),
                                             toNext: toNext, fromPrevious: fromPrevious).run()
            }
        }
        return try BucketKey(bytes: BucketKey.blake2b(Array("mpcnode-set-bucket-key-v1".utf8) + GroupElement.pack(value.pseudonyms), length: 32, key: nil))
    }
}

extension SetOperationConfiguration {
    /// The domain of bucket b's box digests: this job and bucket only, so no box of one bucket counts in another.
    func boxDigestDomain(bucket: Int) -> [UInt8] { Array("sealed-pseudonyms/\(jobID)/bucket-\(bucket)".utf8) }
}
