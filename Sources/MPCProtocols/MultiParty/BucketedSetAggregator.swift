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
    var resume: SetResume = .never

    /// What the aggregator keeps from one attempt to the next (Protocols/multi-party-sets.md "Resume").
    final class Progress: SetAttemptProgress, @unchecked Sendable {
        var setSizes: [NodeID: Int]?
        var layout: SetBucketLayout?
        let keyPair = KeyAgreementKeyPair.generate()
        /// Bucket b's distinct pseudonyms, their counts and its dummies, at index b.
        var done: [(pseudonyms: [GroupElement], counts: [UInt16], dummies: Int)] = []
        var bytesSent: UInt64 = 0, bytesReceived: UInt64 = 0
        /// The release check began: whatever happens next ends the job (nothing is delivered twice).
        var releasing = false
        /// The aggregator accepts its sessions, it never dials them.
        var opened: Int { -1 }
        var endsJob: Bool { releasing }
        var bucketsDone: Int { done.count }
    }

    func run(port: any SessionPort, release: @escaping @Sendable (Multiplicities) throws -> Void) async throws -> SetAggregator.Outcome {
        let state = Progress()
        var (outcome, resumes) = try await resume.attempts(state, dials: false) { attempt in
            try await run(attempt: attempt, state: state, port: port, release: release)
        }
        outcome.resumes = resumes
        return outcome
    }

    /// One attempt: every owner's "results" session (and a data-less mixer's "mixer" session) of the attempt,
    /// the sizes and where to start, the buckets from there, and after the last one the release and deliveries.
    private func run(attempt: Int, state: Progress, port: any SessionPort,
                     release: @escaping @Sendable (Multiplicities) throws -> Void) async throws -> SetAggregator.Outcome {
        let config = configuration, me = config.aggregator, resume = resume
        let dataLessMixer = !config.owners.contains(config.mixer)
        let resultsStream = SetBucketLayout.stream(SetOperationStream.results, attempt: attempt)
        let mixerStream = SetBucketLayout.stream(SetBucketLayout.mixerStream, attempt: attempt)
        let accepted = try await port.acceptAll(config.owners.map { (resultsStream, $0) } + (dataLessMixer ? [(mixerStream, config.mixer)] : []),
                                                timeout: attempt == 0 ? waits.phase : resume.reconnectWait)
        let owners = config.owners.map { ProtocolSession(channel: accepted["\(resultsStream)/\($0)"]!) }
        let mixerControl = accepted["\(mixerStream)/\(config.mixer)"].map(ProtocolSession.init(channel:))
        let all = owners + (mixerControl.map { [$0] } ?? [])
        do {
            // 1. Every owner's set size, announced to all, with this attempt's first bucket; one sealing key for the job.
            var hellos: [NodeID: Mpcnode_V1_SetsHello] = [:]
            try await withThrowingTaskGroup(of: (NodeID, Mpcnode_V1_SetsHello).self) { group in
                for s in owners {
                    group.addTask {
                        guard case .hello(let hello) = try await s.receiveSets(expecting: "the set size") else {
                            throw ProtocolError.protocolViolation(peer: s.peer, detail: "expected the set size")
                        }
                        return (s.peer, hello)
                    }
                }
                for try await (peer, hello) in group { hellos[peer] = hello }
            }
            var setSizes: [NodeID: Int] = [:]
            for (peer, hello) in hellos {
                setSizes[peer] = try WireNumber.count(hello.setSize, limit: WireNumber.maximumSetSize, field: "set size", peer: peer)
                guard hello.keyCheck.isEmpty || hello.keyCheck.count == 32 else {
                    throw ProtocolError.protocolViolation(peer: peer, detail: "sent a key check of \(hello.keyCheck.count) bytes (32, or none)")
                }
            }
            if let known = state.setSizes, let owner = config.owners.first(where: { known[$0] != setSizes[$0] }) {
                throw ProtocolError.cannotResume(peer: owner, detail: "announces \(setSizes[owner]!) identifiers, \(known[owner]!) in the first attempt")
            }
            let layout = try state.layout ?? SetBucketLayout(bucketing: bucketing, owners: config.owners, sizes: setSizes, me: me)
            state.setSizes = setSizes
            state.layout = layout
            // The owners keep their key unless one holds none or they differ (only before any bucket was
            // opened: after, every honest owner holds the common key); they start at the first bucket not
            // done everywhere. An honest owner is at most one bucket behind the buckets opened here (it
            // completes a bucket before any box of the next reaches the mixer): an owner claiming more
            // would have completed buckets run again.
            let checks = Set(config.owners.map { hellos[$0]!.keyCheck })
            let rekey = checks.count != 1 || checks.first!.isEmpty
            if rekey, !state.done.isEmpty {
                let odd = config.owners.first { hellos[$0]!.keyCheck.isEmpty || checks.count != 1 } ?? config.owners[0]
                throw ProtocolError.cannotResume(peer: odd, detail: "the owners no longer hold one bucket key after \(state.done.count) buckets were opened")
            }
            var start = rekey ? 0 : state.done.count
            if !rekey {
                for (peer, hello) in hellos {
                    let next = try WireNumber.count(UInt64(hello.nextBucket), limit: layout.count, field: "next bucket", peer: peer)
                    guard next + 1 >= state.done.count else {
                        throw ProtocolError.protocolViolation(peer: peer, detail: "resumes at bucket \(next) where \(state.done.count) were opened (an owner is at most one behind)")
                    }
                    start = min(start, next)
                }
            }
            state.done.removeLast(state.done.count - start)
            let announced = Mpcnode_V1_SetsOwnerSizes.with {
                $0.owners = config.owners
                $0.sizes = config.owners.map { UInt64(setSizes[$0] ?? 0) }
                $0.startBucket = UInt32(start)
                $0.rekey = rekey
            }
            let publicKey = Data(state.keyPair.publicKey)
            for s in owners {
                try await s.sendSets { $0.ownerSizes = announced }
                try await s.sendSets { $0.sealingKey = .with { $0.publicKey = publicKey } }
            }
            let capacities = Mpcnode_V1_SetsOwnerSizes.with {
                $0.owners = config.owners
                $0.sizes = config.owners.map { UInt64(layout.capacities[$0]!) }
                $0.buckets = UInt32(layout.count)
                $0.startBucket = UInt32(start)
            }
            try await mixerControl?.sendSets { $0.ownerSizes = capacities }
            // 2. Bucket by bucket, stopped at once if an owner or the mixer ends the attempt.
            let first = start
            try await SessionWatch.untilOneEnds(all) {
                try await runBuckets(attempt: attempt, from: first, layout: layout, capacities: capacities, owners: owners, state: state, port: port)
            }
            // 3. The padding adds up: no owner sealed real pseudonyms in place of its dummies.
            let dummies = state.done.reduce(0) { $0 + $1.dummies }
            guard dummies == layout.dummies else {
                throw ProtocolError.protocolViolation(peer: me, detail: "\(dummies) dummies over the buckets where the owners' announced sizes leave \(layout.dummies): an owner holds more identifiers than it announced")
            }
            // One order over all buckets, so no list delivered (nor the sum's slots) tells which bucket a
            // pseudonym came from.
            let pseudonyms = state.done.flatMap(\.pseudonyms), counts = state.done.flatMap(\.counts)
            var order = Array(pseudonyms.indices)
            order.sort { pseudonyms[$0] < pseudonyms[$1] }
            let sorted = order.map { pseudonyms[$0] }
            guard zip(sorted, sorted.dropFirst()).allSatisfy({ $0 < $1 }) else {
                throw ProtocolError.protocolViolation(peer: config.mixer, detail: "a pseudonym arrived in two buckets")
            }
            let multiplicities = Multiplicities(pseudonyms: sorted, counts: order.map { counts[$0] }, setSizes: setSizes, owners: owners.count)
            // From here on a fault ends the job: an owner that had its delivery cannot have another, from
            // another set, by cutting its link.
            state.releasing = true
            try release(multiplicities)
            let aggregator = SetAggregator(configuration: config)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for s in owners {
                    let kind = config.deliveries[s.peer] ?? .none
                    group.addTask { try await aggregator.deliver(kind, to: s, multiplicities: multiplicities) }
                }
                try await group.waitForAll()
            }
            for s in all {
                try await s.sendSets { $0.commit = .init() }
                await s.channel.close()
            }
            state.bytesSent += all.reduce(0) { $0 + $1.bytesSent }
            state.bytesReceived += all.reduce(0) { $0 + $1.bytesReceived }
            return SetAggregator.Outcome(multiplicities: multiplicities, bytesSent: state.bytesSent, bytesReceived: state.bytesReceived, buckets: layout.count)
        } catch {
            state.bytesSent += all.reduce(0) { $0 + $1.bytesSent }
            state.bytesReceived += all.reduce(0) { $0 + $1.bytesReceived }
            if !state.releasing && resume.endsSilently(after: error, attempt: attempt) {
                for s in all { await s.channel.abort() }
            } else {
                await port.cancelAccepts(reason: "\(error)")
                await ProtocolSession.abortAll(all, because: error, by: me)
            }
            throw error
        }
    }

    /// Buckets `start`… of an attempt: the owners' digests, the mixer's boxes, the opening; each done bucket
    /// is kept in `state`.
    private func runBuckets(attempt: Int, from start: Int, layout: SetBucketLayout, capacities: Mpcnode_V1_SetsOwnerSizes,
                            owners: [ProtocolSession], state: Progress, port: any SessionPort) async throws {
        let config = configuration, me = config.aggregator, resume = resume
        let size = SealedPseudonym.size, total = layout.elementsPerBucket
        var claims = BucketSessionClaims(port: port, timeout: waits.phase, buckets: layout.count) { b in
            [(SetBucketLayout.stream(SetOperationStream.mixed, bucket: b, attempt: attempt), config.mixer)]
        }
        do {
            claims.claim(from: start)
            for b in start..<layout.count {
                var digests = MultisetHash(domain: config.boxDigestDomain(bucket: b))
                try await withThrowingTaskGroup(of: GroupElement.self) { group in
                    for s in owners {
                        group.addTask { try await Self.receiveDigest(s, bucket: b, capacities: layout.capacities, owners: config.owners) }
                    }
                    for try await digest in group { try digests.add(digest) }
                }
                for s in owners { try await s.sendSets { $0.digestsReceived = .init() } }
                let mixedStream = SetBucketLayout.stream(SetOperationStream.mixed, bucket: b, attempt: attempt)
                let mixer = ProtocolSession(channel: try await claims.take(bucket: b)["\(mixedStream)/\(config.mixer)"]!)
                let boxes: [UInt8]
                do {
                    try await mixer.sendSets { $0.ownerSizes = capacities }
                    boxes = try await mixer.receiveItems(itemSize: size, sealed: true, limit: total)
                    state.bytesSent += mixer.bytesSent
                    state.bytesReceived += mixer.bytesReceived
                } catch {
                    if resume.endsSilently(after: error, attempt: attempt) { await mixer.channel.abort() } else { await mixer.end(after: error, by: me) }
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
                let opened = try await SealedPseudonym.openAll(boxes, with: state.keyPair, from: config.mixer, which: " of bucket \(b)")
                let real = opened.filter { $0 != SetBucketLayout.dummyMarker }
                let (bucket, maximum) = Multiplicities.of(real, setSizes: layout.sizes, owners: owners.count)
                guard maximum <= owners.count else {
                    throw ProtocolError.protocolViolation(peer: config.mixer, detail: "a pseudonym arrived \(maximum) times from \(owners.count) owners in bucket \(b)")
                }
                state.done.append((bucket.pseudonyms, bucket.counts, opened.count - real.count))
            }
        } catch {
            await claims.cancel()
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
