import Foundation
import MPCCrypto
import MPCWire

/// The aggregator of a set operation run in buckets (Protocols/multi-party-sets.md "Buckets"): it
/// announces every owner's set size (the layout follows from them), gives one sealing key, and then, bucket
/// by bucket, collects the owners' box digests, checks the mixer's boxes against them, opens them, drops
/// the dummies and counts; one bucket's boxes are in memory at a time. Nothing is delivered before the
/// last bucket: the dummies must add up to the owners' padding, and `release` sees the whole job.
struct BucketedSetAggregator {
    let configuration: SetOperationConfiguration
    let bucketing: SetBucketing
    let waits: SetOperationParty.Waits

    func run(fromOwners: [NodeID: any MessageChannel], port: any SessionPort,
             release: @Sendable (Multiplicities) throws -> Void) async throws -> SetAggregator.Outcome {
        let config = configuration, me = config.aggregator
        let owners = config.owners.map { ProtocolSession(channel: fromOwners[$0]!) }
        var claims = BucketSessionClaims(port: port, timeout: waits.phase, buckets: 0) { _ in [] }
        var bytesSent: UInt64 = 0, bytesReceived: UInt64 = 0
        do {
            // 1. Every owner's set size, announced to all; one sealing key for the job.
            var setSizes: [NodeID: Int] = [:]
            try await withThrowingTaskGroup(of: (NodeID, Int).self) { group in
                for s in owners {
                    group.addTask {
                        guard case .hello(let hello) = try await s.receiveSets(expecting: "the set size") else {
                            throw ProtocolError.protocolViolation(peer: s.peer, detail: "expected the set size")
                        }
                        return (s.peer, try WireNumber.count(hello.setSize, limit: WireNumber.maximumSetSize, field: "set size", peer: s.peer))
                    }
                }
                for try await (peer, size) in group { setSizes[peer] = size }
            }
            let layout = try SetBucketLayout(bucketing: bucketing, owners: config.owners, sizes: setSizes, me: me)
            let keyPair = KeyAgreementKeyPair.generate()
            let announced = Mpcnode_V1_SetsOwnerSizes.with {
                $0.owners = config.owners
                $0.sizes = config.owners.map { UInt64(setSizes[$0] ?? 0) }
            }
            for s in owners {
                try await s.sendSets { $0.ownerSizes = announced }
                try await s.sendSets { $0.sealingKey = .with { $0.publicKey = Data(keyPair.publicKey) } }
            }
            let capacities = Mpcnode_V1_SetsOwnerSizes.with {
                $0.owners = config.owners
                $0.sizes = config.owners.map { UInt64(layout.capacities[$0]!) }
                $0.buckets = UInt32(layout.count)
            }
            claims = BucketSessionClaims(port: port, timeout: waits.phase, buckets: layout.count) { b in
                [(SetBucketLayout.stream(SetOperationStream.mixed, bucket: b), config.mixer)]
            }
            claims.claim(from: 0)
            // 2. Bucket by bucket: digests, the mixer's boxes, the opening.
            var pseudonyms: [GroupElement] = [], counts: [UInt16] = []
            var dummies = 0
            let size = SealedPseudonym.size, total = layout.elementsPerBucket
            for b in 0..<layout.count {
                var digests = MultisetHash(domain: config.boxDigestDomain(bucket: b))
                try await withThrowingTaskGroup(of: GroupElement.self) { group in
                    for s in owners {
                        group.addTask { try await Self.receiveDigest(s, bucket: b, capacities: layout.capacities, owners: config.owners) }
                    }
                    for try await digest in group { try digests.add(digest) }
                }
                for s in owners { try await s.sendSets { $0.digestsReceived = .init() } }
                let mixedStream = SetBucketLayout.stream(SetOperationStream.mixed, bucket: b)
                let mixer = ProtocolSession(channel: try await claims.take(bucket: b)["\(mixedStream)/\(config.mixer)"]!)
                let boxes: [UInt8]
                do {
                    try await mixer.sendSets { $0.ownerSizes = capacities }
                    boxes = try await mixer.receiveItems(itemSize: size, sealed: true, limit: total)
                    bytesSent += mixer.bytesSent
                    bytesReceived += mixer.bytesReceived
                } catch {
                    await mixer.end(after: error, by: me)
                    throw error
                }
                await mixer.channel.close()
                guard boxes.count == total * size else {
                    throw ProtocolError.protocolViolation(peer: config.mixer, detail: "forwarded \(boxes.count / size) sealed pseudonyms in bucket \(b), the owners sent \(total)")
                }
                guard try await MultisetHash.ofInChunks(boxes, memberSize: size, domain: config.boxDigestDomain(bucket: b)) == digests else {
                    throw ProtocolError.protocolViolation(peer: config.mixer,
                                                          detail: "the sealed pseudonyms it forwarded in bucket \(b) are not the ones the owners sealed (a box was substituted, added or dropped, or an owner's digest is false)")
                }
                let opened = try await SealedPseudonym.openAll(boxes, with: keyPair, from: config.mixer, which: " of bucket \(b)")
                let real = opened.filter { $0 != SetBucketLayout.dummyMarker }
                dummies += opened.count - real.count
                let (bucket, maximum) = Multiplicities.of(real, setSizes: setSizes, owners: owners.count)
                guard maximum <= owners.count else {
                    throw ProtocolError.protocolViolation(peer: config.mixer, detail: "a pseudonym arrived \(maximum) times from \(owners.count) owners in bucket \(b)")
                }
                pseudonyms.append(contentsOf: bucket.pseudonyms)
                counts.append(contentsOf: bucket.counts)
            }
            // 3. The padding adds up: no owner sealed real pseudonyms in place of its dummies.
            guard dummies == layout.dummies else {
                throw ProtocolError.protocolViolation(peer: me, detail: "\(dummies) dummies over the buckets where the owners' announced sizes leave \(layout.dummies): an owner holds more identifiers than it announced")
            }
            // One order over all buckets, so no list delivered (nor the sum's slots) tells which bucket a
            // pseudonym came from.
            var order = Array(pseudonyms.indices)
            order.sort { pseudonyms[$0] < pseudonyms[$1] }
            let sorted = order.map { pseudonyms[$0] }
            guard zip(sorted, sorted.dropFirst()).allSatisfy({ $0 < $1 }) else {
                throw ProtocolError.protocolViolation(peer: config.mixer, detail: "a pseudonym arrived in two buckets")
            }
            let multiplicities = Multiplicities(pseudonyms: sorted, counts: order.map { counts[$0] }, setSizes: setSizes, owners: owners.count)
            pseudonyms = []
            counts = []
            try release(multiplicities)
            let aggregator = SetAggregator(configuration: config)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for s in owners {
                    let kind = config.deliveries[s.peer] ?? .none
                    group.addTask { try await aggregator.deliver(kind, to: s, multiplicities: multiplicities) }
                }
                try await group.waitForAll()
            }
            for s in owners {
                try await s.sendSets { $0.commit = .init() }
                await s.channel.close()
            }
            return SetAggregator.Outcome(multiplicities: multiplicities, bytesSent: owners.reduce(bytesSent) { $0 + $1.bytesSent },
                                         bytesReceived: owners.reduce(bytesReceived) { $0 + $1.bytesReceived }, buckets: layout.count)
        } catch {
            await port.cancelAccepts(reason: "\(error)")
            await claims.cancel()
            await ProtocolSession.abortAll(owners, because: error, by: me)
            throw error
        }
    }

    /// An owner's masked digest of bucket b's boxes, with every owner's chain size as it passed that owner
    /// in the bucket's ring: each must be the owner's capacity.
    private static func receiveDigest(_ s: ProtocolSession, bucket b: Int, capacities: [NodeID: Int], owners: [NodeID]) async throws -> GroupElement {
        guard case .boxDigest(let d) = try await s.receiveSets(expecting: "the digest of its sealed pseudonyms of bucket \(b)"),
              d.digest.count == GroupElement.byteCount, let digest = try? GroupElement.unpack(d.digest).first, Ristretto255.isValid(digest) else {
            throw ProtocolError.protocolViolation(peer: s.peer, detail: "expected the digest of its sealed pseudonyms of bucket \(b) (a ristretto255 element)")
        }
        guard d.ringOwners.count == d.ringSizes.count, d.ringOwners.sorted() == owners.sorted() else {
            throw ProtocolError.protocolViolation(peer: s.peer, detail: "expected the ring's chain size of every owner in bucket \(b)")
        }
        for (owner, seen) in zip(d.ringOwners, d.ringSizes) where seen != UInt64(capacities[owner]!) {
            throw ProtocolError.protocolViolation(peer: owner, detail: "its chain carried \(seen) elements through \(s.peer) in bucket \(b), not its capacity \(capacities[owner]!)")
        }
        return digest
    }
}
