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
        /// Attempts after the first (dropped links mended).
        var resumes: Int
    }

    let configuration: SetOperationConfiguration
    let bucketing: SetBucketing
    let me: NodeID
    let waits: SetOperationParty.Waits
    var resume: SetResume = .never

    /// What an owner keeps from one attempt to the next (Protocols/multi-party-sets.md "Resume").
    final class Progress: SetAttemptProgress, @unchecked Sendable {
        /// The owners' bucket key, once the key ring ran; the buckets the source holds are under `assigned`.
        var key: BucketKey?
        var assigned: BucketKey?
        /// The first announcement of every owner's size (a resumed attempt must announce the same).
        var layout: SetBucketLayout?
        /// Buckets 0..<done are complete here: their boxes went to the mixer (or, at the mixer, on to the aggregator).
        var done = 0
        var pseudonyms: [GroupElement]
        /// The padding's secret order and dummies, the same in every attempt.
        let seed = BucketKey.randomShare()
        /// The last attempt whose "results" session opened (-1: none yet).
        var opened = -1
        /// The delivery began: whatever happens next ends the job (no second delivery, from another set).
        var delivering = false
        init(count: Int) { pseudonyms = [GroupElement](repeating: SetBucketLayout.dummyMarker, count: count) }
        var endsJob: Bool { delivering }
        var bucketsDone: Int { done }
    }

    /// Progress in per cent of the buckets done, 0…90.
    func run(source: any BucketedIdentifierSource, port: any SessionPort, progress: @escaping @Sendable (Int) -> Void) async throws -> Outcome {
        guard config.owners.contains(me) else {
            throw ProtocolError.parameterMismatch(peer: me, detail: "\(me) is not an owner of the set operation")
        }
        let state = Progress(count: source.count)
        var (outcome, resumes) = try await resume.attempts(state, dials: true) { attempt in
            try await run(attempt: attempt, state: state, source: source, port: port, progress: progress)
        }
        outcome.resumes = resumes
        return outcome
    }

    private var config: SetOperationConfiguration { configuration }

    /// One attempt: sizes and the start from the aggregator, the key ring if the owners hold no common key,
    /// the buckets from the start, the delivery.
    private func run(attempt: Int, state: Progress, source: any BucketedIdentifierSource, port: any SessionPort,
                     progress: @escaping @Sendable (Int) -> Void) async throws -> Outcome {
        let config = configuration, me = me, resume = resume
        return try await port.withSession(stream: SetBucketLayout.stream(SetOperationStream.results, attempt: attempt), to: config.aggregator) { channel in
            let results = ProtocolSession(channel: channel)
            state.opened = attempt
            do {
                // 1. This owner's size, first bucket not done and key check; every owner's size and this
                // attempt's first bucket from the aggregator; the sealing key.
                try await results.sendSets { $0.hello = .with {
                    $0.setSize = UInt64(source.count)
                    $0.nextBucket = UInt32(state.key == nil ? 0 : state.done)
                    $0.keyCheck = Data(state.key?.check ?? [])
                } }
                let (layout, start, rekey) = try await announcedLayout(results, ownSize: source.count, state: state)
                guard case .sealingKey(let key) = try await results.receiveSets(expecting: "the sealing key"), key.publicKey.count == 32 else {
                    throw ProtocolError.protocolViolation(peer: results.peer, detail: "expected a 32-byte sealing key")
                }
                if rekey {
                    state.key = nil
                    state.done = 0
                } else {
                    state.done = start
                }
                // 2. The buckets, stopped at once if the aggregator ends the attempt (a link dropped elsewhere).
                let publicKey = [UInt8](key.publicKey)
                try await SessionWatch.untilOneEnds([results]) {
                    try await runBuckets(attempt: attempt, layout: layout, publicKey: publicKey, results: results, state: state,
                                         source: source, port: port, progress: progress)
                }
                // 3. The delivery, over every bucket, once: from here on a fault ends the job.
                state.delivering = true
                let delivery = try await SetOwner(configuration: config, me: me).receiveDelivery(results, pseudonyms: state.pseudonyms)
                try await results.sendSets { $0.ack = .init() }
                guard case .commit = try await results.receiveSets(expecting: "the commit") else {
                    throw ProtocolError.protocolViolation(peer: results.peer, detail: "expected the commit")
                }
                await channel.close()
                return Outcome(delivery: delivery, pseudonyms: state.pseudonyms, buckets: layout.count, resumes: 0)
            } catch {
                if !state.delivering && resume.endsSilently(after: error, attempt: attempt) {
                    await channel.abort()
                } else {
                    await port.cancelAccepts(reason: "\(error)")
                    await results.end(after: error, by: me)
                }
                throw error
            }
        }
    }

    /// The key ring if needed, then buckets `state.done`… of the attempt.
    private func runBuckets(attempt: Int, layout: SetBucketLayout, publicKey: [UInt8], results: ProtocolSession, state: Progress,
                            source: any BucketedIdentifierSource, port: any SessionPort, progress: @escaping @Sendable (Int) -> Void) async throws {
        let config = configuration, me = me, waits = waits, resume = resume
        let owners = config.owners, n = owners.count, index = owners.firstIndex(of: me)!
        let next = owners[(index + 1) % n], previous = owners[(index + n - 1) % n]
        let isMixer = config.mixer == me, others = owners.filter { $0 != me }
        let silently: @Sendable (Error) -> Bool = { resume.endsSilently(after: $0, attempt: attempt) }
        // The owners' bucket key (a ring of one element; no data of anyone's), when they hold none in common.
        if state.key == nil {
            state.key = try await bucketKey(port: port, next: next, previous: previous, attempt: attempt, silently: silently)
        }
        let bucketKey = state.key!
        // The sessions of the first buckets are claimed now: the others may start them long before this
        // owner has put its set into buckets.
        var claims = BucketSessionClaims(port: port, timeout: waits.phase, buckets: layout.count) { b in
            [(SetBucketLayout.stream(SetOperationStream.ring, bucket: b, attempt: attempt), previous)]
        }
        var mixClaims = BucketSessionClaims(port: port, timeout: waits.phase, buckets: isMixer ? layout.count : 0) { b in
            others.map { (SetBucketLayout.stream(SetOperationStream.mix, bucket: b, attempt: attempt), $0) }
        }
        do {
            claims.claim(from: state.done)
            mixClaims.claim(from: state.done)
            // The buckets under the owners' key, each within this owner's capacity.
            let capacity = layout.capacities[me]!
            if state.assigned != bucketKey {
                let bucketSizes = try await source.assignBuckets(key: bucketKey, count: layout.count)
                if let b = bucketSizes.indices.first(where: { bucketSizes[$0] > capacity }) {
                    throw SetBucketOverCapacity(bucket: b, size: bucketSizes[b], capacity: capacity)
                }
                state.assigned = bucketKey
            }
            for b in state.done..<layout.count {
                let ringStream = SetBucketLayout.stream(SetOperationStream.ring, bucket: b, attempt: attempt)
                let members = try await source.members(ofBucket: b)
                guard members.count <= capacity else { throw SetBucketOverCapacity(bucket: b, size: members.count, capacity: capacity) }
                let padded = PaddedBucket(members: members, bucket: b, capacity: capacity, seed: state.seed)
                var ringConfig = config.ring
                ringConfig.peerSetSizes = 0...WireNumber.maximumSetSize  // the announced sizes were checked against the policy
                ringConfig.chainSizes = layout.capacities
                // Open to the next owner first, then take the previous one's: every owner waiting for
                // its previous before opening would wait around the ring for ever.
                let ring = try await port.withSession(stream: ringStream, to: next) { toNext in
                    let fromPrevious = try await claims.take(bucket: b)["\(ringStream)/\(previous)"]!
                    return try await port.using([fromPrevious]) {
                        var party = PseudonymRingParty(configuration: ringConfig, me: me, source: padded, toNext: toNext, fromPrevious: fromPrevious)
                        party.endsSilently = silently
                        return try await party.run()
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
                    let accepted = try await mixClaims.take(bucket: b)
                    let mixStream = SetBucketLayout.stream(SetOperationStream.mix, bucket: b, attempt: attempt)
                    let fromOwners = others.compactMap { accepted["\(mixStream)/\($0)"] }
                    try await port.using(fromOwners) {
                        try await port.withSession(stream: SetBucketLayout.stream(SetOperationStream.mixed, bucket: b, attempt: attempt), to: config.aggregator) { mixed in
                            try await SealedMixer(configuration: config, me: me).mix(own: boxes, from: fromOwners.map(ProtocolSession.init(channel:)),
                                                                                     ringSizes: ring.setSizes, aggregator: ProtocolSession(channel: mixed))
                        }
                    }
                } else {
                    try await port.withSession(stream: SetBucketLayout.stream(SetOperationStream.mix, bucket: b, attempt: attempt), to: config.mixer) { toMixer in
                        try await ProtocolSession(channel: toMixer).sendItems(boxes, itemSize: SealedPseudonym.size, batchSize: config.batchSize, sealed: true)
                    }
                }
                for i in 0..<padded.count {
                    if let position = padded.sourcePosition(i) { state.pseudonyms[position] = ring.pseudonyms[i] }
                }
                state.done = b + 1
                progress(90 * (b + 1) / layout.count)
            }
        } catch {
            await claims.cancel()
            await mixClaims.cancel()
            throw error
        }
    }

    /// Every owner's set size as the aggregator announces it: this owner's own must be what it said, and
    /// every other within this owner's policy limits (the ring's chains are padded, so this is where they apply).
    private func announcedLayout(_ results: ProtocolSession, ownSize: Int, state: Progress) async throws -> (SetBucketLayout, start: Int, rekey: Bool) {
        let config = configuration
        let announced = try await results.receiveOwnerSizes(owners: config.owners)
        let sizes = announced.sizes, start = Int(announced.startBucket)
        // A resumed attempt starts at a bucket this owner completed or the next (all of them again with a new key).
        if let known = state.layout {
            guard known.sizes == sizes else {
                throw ProtocolError.cannotResume(peer: results.peer, detail: "the aggregator announces other set sizes than in the first attempt")
            }
        }
        guard announced.rekey ? start == 0 : (state.key != nil && start <= state.done) else {
            throw ProtocolError.protocolViolation(peer: results.peer, detail: "announces bucket \(start) as the first to run\(announced.rekey ? " with a new key" : ""); this owner completed \(state.key == nil ? 0 : state.done) under the key it holds")
        }
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
        let layout = try state.layout ?? SetBucketLayout(bucketing: bucketing, owners: config.owners, sizes: sizes, me: me)
        state.layout = layout
        return (layout, start, announced.rekey)
    }

    /// The owners' bucket key: Ψ of one fixed value under this job's one-off keys (a ring of one element
    /// per chain, its own hash domain), hashed. Every owner ends with the same value and nobody else can
    /// compute it: the aggregator and a mixer that holds no data take no part, and no box ever seals it.
    private func bucketKey(port: any SessionPort, next: NodeID, previous: NodeID, attempt: Int, silently: @escaping @Sendable (Error) -> Bool) async throws -> BucketKey {
        var ring = PseudonymRingParty.Configuration(jobID: "\(configuration.jobID)/bucket-key", group: configuration.group,
                                                    ring: configuration.owners, batchSize: 1)
        ring.peerSetSizes = 1...1
        let me = me, waits = waits
        let stream = SetBucketLayout.stream(SetBucketLayout.keyRingStream, attempt: attempt)
        let value = try await port.withSession(stream: stream, to: next) { toNext in
            try await port.withAccepted(stream: stream, from: previous, timeout: waits.session) { fromPrevious in
                var party = PseudonymRingParty(configuration: ring, me: me, source: ArrayIdentifierSource(["mpcnode-set-bucket-key-v1"]),
                                               toNext: toNext, fromPrevious: fromPrevious)
                party.endsSilently = silently
                return try await party.run()
            }
        }
        return try BucketKey(bytes: BucketKey.blake2b(Array("mpcnode-set-bucket-key-v1".utf8) + GroupElement.pack(value.pseudonyms), length: 32, key: nil))
    }
}

extension SetOperationConfiguration {
    /// The domain of bucket b's box digests: this job and bucket only, so no box of one bucket counts in another.
    func boxDigestDomain(bucket: Int) -> [UInt8] { Array("sealed-pseudonyms/\(jobID)/bucket-\(bucket)".utf8) }
}
