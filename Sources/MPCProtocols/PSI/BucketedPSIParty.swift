import Foundation
import MPCCrypto
import MPCWire

/// One party of a bucketed two-party PSI (Protocols/psi-buckets.md): the parties agree on a bucket key
/// from both their shares, put their identifiers into buckets with it, pad every bucket to one capacity
/// with dummies, and run the PSI exchange of Protocols/psi.md once a bucket over one session. Memory is
/// one bucket's, not the set's; every completed bucket is checkpointed, so a job that stopped (a dropped
/// link, a restarted daemon) resumes at the first bucket either side has not completed.
///
/// The blinding key, the dummies and each bucket's order derive from a secret seed kept in the
/// checkpoints, so a redone bucket sends exactly what it sent before; a party that completed a bucket
/// checks the peer's redone stream against the digest it kept before returning anything.
public struct BucketedPSIParty: Sendable {
    public struct Configuration: Sendable {
        /// The PSI's parameters (job id, group, who receives the output, batch size, the peer's set size limits).
        public var psi: PSIParty.Configuration
        /// The party that dialled: its share comes first in the bucket key.
        public var isFirstParty: Bool
        /// The bucket count this party proposes (nil: `BucketSizing.proposedCount`); the larger proposal wins.
        public var requestedBuckets: Int?
        /// The largest bucket count this party accepts (its own policy's).
        public var maximumBuckets: Int
        /// Fresh shares drawn when a bucket overflows its capacity before the job fails.
        public var maximumKeyAttempts = 3
        /// The round run per bucket; both parties must name the same (checked on the hellos).
        public var psiProtocol = PSIProtocol.ecdh
        /// Worker pairs that run the buckets (1: the parties run them themselves); both must name the same,
        /// and a job has at least this many buckets.
        public var workerCount = 1
        /// What this run does (Protocols/psi-buckets.md "Workers").
        public var scope = Scope.whole

        public enum Scope: Sendable, Equatable {
            /// Agree on the key and run every bucket.
            case whole
            /// Agree on the key and bucket both sets, then stop: the workers run the buckets.
            case agreementOnly
            /// Worker `index` of `workerCount`: run the buckets of its range under the key its node agreed
            /// (kept in the checkpoints), with the peer's worker of the same index.
            case worker(index: Int)
        }

        public init(psi: PSIParty.Configuration, isFirstParty: Bool, requestedBuckets: Int? = nil, maximumBuckets: Int = 4096) {
            self.psi = psi
            self.isFirstParty = isFirstParty
            self.requestedBuckets = requestedBuckets
            self.maximumBuckets = maximumBuckets
        }
    }

    /// What happened in this run (an attempt of the job).
    public struct Report: Sendable {
        public var ownSetSize: Int
        public var peerSetSize: Int
        public var bucketCount: Int
        /// Every bucket is padded to this many of this party's elements.
        public var capacity: Int
        public var peerCapacity: Int
        /// The first bucket this run computed (0 unless it resumed).
        public var firstBucket: Int
        public var resumed: Bool
        public var bytesSent: UInt64
        public var bytesReceived: UInt64
        /// Scalar multiplications this run performed (padded buckets, both streams).
        public var scalarMultiplications: Int

        /// What a job agreed in `state` amounts to, before any bucket of this run (a node whose workers
        /// resume the buckets after the node restarted).
        public static func agreed(_ state: BucketedPSIState, ownSetSize: Int) -> Report {
            Report(ownSetSize: ownSetSize, peerSetSize: state.peerSetSize, bucketCount: state.bucketCount,
                   capacity: BucketSizing.capacity(setSize: ownSetSize, buckets: state.bucketCount),
                   peerCapacity: BucketSizing.capacity(setSize: state.peerSetSize, buckets: state.bucketCount),
                   firstBucket: state.firstIncomplete, resumed: true, bytesSent: 0, bytesReceived: 0, scalarMultiplications: 0)
        }
    }

    /// Progress over the whole job: elements of both streams (padded) in completed buckets and the
    /// current one, of all buckets; `processedThisRun` counts only what this run (attempt) processed.
    public struct Progress: Sendable {
        public var done: Int
        public var total: Int
        public var processedThisRun: Int
        public var bucket: Int
        public var bucketCount: Int
    }

    public let configuration: Configuration
    public let source: any BucketedIdentifierSource
    public let checkpoints: any BucketCheckpoints
    public let channel: any MessageChannel
    public let progress: (@Sendable (Progress) -> Void)?

    public init(configuration: Configuration, source: any BucketedIdentifierSource, checkpoints: any BucketCheckpoints,
                channel: any MessageChannel, progress: (@Sendable (Progress) -> Void)? = nil) {
        self.configuration = configuration
        self.source = source
        self.checkpoints = checkpoints
        self.channel = channel
        self.progress = progress
    }

    public func run() async throws -> Report {
        let session = ProtocolSession(channel: channel)
        do {
            let report = try await run(session)
            await channel.close()
            return report
        } catch is CancellationError {
            // Stopped here (the job aborted, its deadline, or the daemon stopping, after which the job
            // resumes): no abort is sent, so the peer takes the cut link for a fault and tries to resume;
            // a job that ended here refuses it with its reason, and the coordinator tells the peer too.
            await channel.abort()
            throw CancellationError()
        } catch {
            await session.end(after: error)
            throw error
        }
    }

    /// The buckets worker `index` of `count` runs when a job has `buckets` (every worker has at least one,
    /// as a job with workers has at least as many buckets as workers).
    public static func workerRange(index: Int, count: Int, buckets: Int) -> Range<Int> {
        (index * buckets / count)..<((index + 1) * buckets / count)
    }

    /// The buckets this run computes, of a job with `buckets`.
    private func range(buckets: Int) -> Range<Int> {
        switch configuration.scope {
        case .whole: return 0..<buckets
        case .agreementOnly: return buckets..<buckets
        case .worker(let index): return Self.workerRange(index: index, count: configuration.workerCount, buckets: buckets)
        }
    }

    private func run(_ session: ProtocolSession) async throws -> Report {
        let n = source.count
        let saved = try await checkpoints.load()
        if case .worker = configuration.scope, saved == nil {
            throw ProtocolError.cannotResume(peer: channel.peer, detail: "a worker runs only buckets its node agreed on, and this job's scratch database holds no agreement")
        }
        let (state, peerNext) = try await agree(session, saved: saved)
        if saved == nil { try await checkpoints.begin(state) }
        let b = state.bucketCount
        let mine = range(buckets: b)
        // A fresh job's hello names no next bucket (0): the range's own start bounds it.
        let start = max(mine.lowerBound, min(state.firstIncomplete(in: mine), peerNext))
        let capacity = BucketSizing.capacity(setSize: n, buckets: b)
        let peerCapacity = BucketSizing.capacity(setSize: state.peerSetSize, buckets: b)
        let cipher = try CommutativeCipher.derived(group: configuration.psi.group, domain: configuration.psi.jobID, seed: state.seed)
        let perBucket = capacity + peerCapacity
        for bucket in start..<mine.upperBound {
            try Task.checkCancellation()
            let padded = try await paddedBucket(bucket, capacity: capacity, seed: state.seed)
            var round = configuration.psi
            round.bucket = bucket
            round.minimumPeerSetSize = peerCapacity
            round.maximumPeerSetSize = peerCapacity
            round.peerStreamMustMatch = state.completed[bucket]
            let onProgress: @Sendable (PSIParty.Progress) -> Void = { [progress] p in
                let inBucket = p.ownBlindedSent + p.peerElementsProcessed
                progress?(Progress(done: (bucket - mine.lowerBound) * perBucket + inBucket, total: mine.count * perBucket,
                                   processedThisRun: (bucket - start) * perBucket + inBucket, bucket: bucket, bucketCount: b))
            }
            let result: PSIRound.Result
            switch configuration.psiProtocol {
            case .ecdh:
                result = try await PSIRound(configuration: round, source: padded,
                                            cipher: cipher, session: session, progress: onProgress).run()
            case .kkrt:
                result = try await KKRTRound(configuration: round, isFirstParty: configuration.isFirstParty, source: padded,
                                             seed: state.seed, peerElements: peerCapacity, checkpoints: checkpoints, session: session).run()
                onProgress(PSIParty.Progress(ownBlindedSent: capacity, ownSetSize: capacity,
                                             peerElementsProcessed: peerCapacity, peerSetSize: peerCapacity))
            }
            let output: BucketOutput
            switch result.output {
            case .none: output = .none
            case .cardinality(let c): output = .cardinality(c)
            case .intersection(let positions), .matches(let positions, _):
                // Own positions in the padded bucket → positions in the source; a dummy never matches
                // (the peer holds no dummy), and is dropped if it somehow did.
                output = .positions(positions.compactMap { padded.sourcePosition($0) }.sorted())
            }
            try await checkpoints.complete(bucket: bucket, output: output, peerStreamDigest: result.peerStreamDigest)
        }
        return Report(ownSetSize: n, peerSetSize: state.peerSetSize, bucketCount: b, capacity: capacity, peerCapacity: peerCapacity,
                      firstBucket: start, resumed: saved != nil, bytesSent: session.bytesSent, bytesReceived: session.bytesReceived,
                      scalarMultiplications: configuration.psiProtocol == .ecdh ? (mine.upperBound - start) * perBucket : 0)
    }

    /// The hellos and readiness: a fresh job agrees on a key (new shares while a bucket overflows); a
    /// resumed one checks both sides hold the same key. Returns the state and the peer's first bucket to run.
    private func agree(_ session: ProtocolSession, saved: BucketedPSIState?) async throws -> (BucketedPSIState, Int) {
        let peer = channel.peer
        let n = source.count
        let psi = configuration.psi
        if configuration.psiProtocol == .kkrt {
            guard !psi.cardinalityOnly, !psi.reportsPeerPositions else {
                throw ProtocolError.parameterMismatch(peer: peer, detail: "a cardinality-only PSI (or one reporting the peer's positions) runs with ecdh, not kkrt: the KKRT receiver learns which elements match")
            }
        }
        let workers = max(1, configuration.workerCount)
        guard !(psi.cardinalityOnly && workers > 1) else {
            throw ProtocolError.parameterMismatch(peer: peer, detail: "a cardinality-only PSI runs in one bucket, so with no workers")
        }
        for _ in 0..<max(1, configuration.maximumKeyAttempts) {
            let share = BucketKey.randomShare()
            // Never more than this party itself accepts (a large set then gets larger buckets).
            let proposed = saved?.bucketCount ?? (psi.cardinalityOnly ? 1 : min(configuration.maximumBuckets,
                                                                               configuration.requestedBuckets ?? BucketSizing.proposedCount(setSize: n)))
            try await send(session) {
                $0.bucketHello = .with {
                    $0.setSize = UInt64(n)
                    $0.bucketCount = UInt32(clamping: proposed)
                    $0.protocol = configuration.psiProtocol.rawValue
                    $0.workerCount = UInt32(clamping: workers)
                    if case .worker(let index) = configuration.scope { $0.workerIndex = UInt32(clamping: index) }
                    if let saved {
                        $0.resume = true
                        $0.keyCheck = Data(saved.key.check)
                        $0.nextBucket = UInt32(clamping: saved.firstIncomplete(in: range(buckets: saved.bucketCount)))
                    } else {
                        $0.share = Data(share)
                    }
                }
            }
            let hello = try await receive(session, "the peer's bucket hello") { if case .bucketHello(let h) = $0 { h } else { nil } }
            guard PSIProtocol(wireName: hello.protocol) == configuration.psiProtocol else {
                throw ProtocolError.parameterMismatch(peer: peer, detail: "the peer runs PSI protocol '\(PeerText.cut(hello.protocol, limit: 40))'; this node runs \(configuration.psiProtocol.rawValue)")
            }
            guard max(1, Int(hello.workerCount)) == workers else {
                throw ProtocolError.parameterMismatch(peer: peer, detail: "the peer runs the buckets with \(hello.workerCount) workers; this node with \(workers)")
            }
            if case .worker(let index) = configuration.scope, Int(hello.workerIndex) != index {
                throw ProtocolError.parameterMismatch(peer: peer, detail: "the peer's worker \(hello.workerIndex) answered; this is worker \(index), which pairs only with the worker of the same index")
            }
            guard hello.setSize <= UInt64(psi.maximumPeerSetSize) else {
                throw ProtocolError.peerSetSizeRefused(peer: peer, size: hello.setSize, limit: "at most \(psi.maximumPeerSetSize)")
            }
            guard hello.setSize >= UInt64(psi.minimumPeerSetSize) else {
                throw ProtocolError.peerSetSizeRefused(peer: peer, size: hello.setSize, limit: "at least \(psi.minimumPeerSetSize)")
            }
            guard hello.bucketCount >= 1, Int(hello.bucketCount) <= configuration.maximumBuckets else {
                throw ProtocolError.parameterMismatch(peer: peer, detail: "\(hello.bucketCount) buckets proposed; this node's policy allows 1 to \(configuration.maximumBuckets)")
            }
            guard !(psi.cardinalityOnly && hello.bucketCount != 1) else {
                // Per-bucket counts would tell the receiver more than the cardinality.
                throw ProtocolError.parameterMismatch(peer: peer, detail: "\(hello.bucketCount) buckets proposed for a cardinality-only PSI, which runs in one bucket")
            }
            let state: BucketedPSIState
            if let saved {
                guard hello.resume else {
                    throw ProtocolError.cannotResume(peer: peer, detail: "the peer no longer holds this job's state")
                }
                let mine = range(buckets: saved.bucketCount)
                guard [UInt8](hello.keyCheck) == saved.key.check, Int(hello.bucketCount) == saved.bucketCount,
                      Int(hello.setSize) == saved.peerSetSize,
                      (mine.lowerBound...mine.upperBound).contains(Int(hello.nextBucket)) else {
                    throw ProtocolError.cannotResume(peer: peer, detail: "the peer resumes with another bucket key, bucket count, set size or bucket range")
                }
                state = saved
            } else {
                guard !hello.resume else {
                    throw ProtocolError.cannotResume(peer: peer, detail: "this node no longer holds the job's state (the peer does)")
                }
                guard hello.share.count == BucketKey.shareLength else {
                    throw ProtocolError.malformedMessage(peer: peer, detail: "a bucket key share of \(hello.share.count) bytes, expected \(BucketKey.shareLength)")
                }
                let peerShare = [UInt8](hello.share)
                let key = try BucketKey(shares: configuration.isFirstParty ? [share, peerShare] : [peerShare, share])
                // Every worker pair has at least one bucket.
                var count = max(proposed, Int(hello.bucketCount), workers)
                guard count <= configuration.maximumBuckets else {
                    throw ProtocolError.parameterMismatch(peer: peer, detail: "\(workers) workers need \(count) buckets; this node's policy allows \(configuration.maximumBuckets) (max_buckets)")
                }
                if configuration.psiProtocol == .kkrt {
                    // A KKRT sender holds its peer's whole bucket of rows (64 bytes a bin): never more than
                    // about 2^20 elements a bucket, whatever either side proposed (both compute the same).
                    count = max(count, BucketSizing.proposedCount(setSize: max(n, Int(hello.setSize))))
                    guard count <= configuration.maximumBuckets else {
                        throw ProtocolError.parameterMismatch(peer: peer, detail: "a KKRT PSI of \(max(n, Int(hello.setSize))) identifiers needs \(count) buckets; this node's policy allows \(configuration.maximumBuckets) (max_buckets)")
                    }
                }
                state = BucketedPSIState(seed: BucketKey.randomBytes(32), key: key, bucketCount: count, peerSetSize: Int(hello.setSize))
            }
            let sizes = try await source.assignBuckets(key: state.key, count: state.bucketCount)
            let overflow = (sizes.max() ?? 0) > BucketSizing.capacity(setSize: n, buckets: state.bucketCount)
            try await send(session) { $0.bucketsReady = .with { $0.overflow = overflow } }
            let ready = try await receive(session, "the peer's bucket readiness") { if case .bucketsReady(let r) = $0 { r } else { nil } }
            if !overflow && !ready.overflow { return (state, Int(hello.nextBucket)) }
            guard saved == nil else {
                throw ProtocolError.cannotResume(peer: peer, detail: "a bucket overflows its capacity under the job's key")
            }
        }
        throw ProtocolError.parameterMismatch(peer: peer, detail: "a bucket overflowed its capacity under \(configuration.maximumKeyAttempts) keys in a row")
    }

    /// Bucket `bucket` read from the source (only it is in memory) and padded.
    private func paddedBucket(_ bucket: Int, capacity: Int, seed: [UInt8]) async throws -> PaddedBucket {
        let members = try await source.members(ofBucket: bucket)
        guard members.count <= capacity else {
            throw ProtocolError.cannotResume(peer: channel.peer, detail: "bucket \(bucket) now holds \(members.count) identifiers, more than its capacity \(capacity)")
        }
        return PaddedBucket(members: members, bucket: bucket, capacity: capacity, seed: seed)
    }

    private func send(_ session: ProtocolSession, _ fill: (inout Mpcnode_V1_PsiMessage) -> Void) async throws {
        try await session.sendFramed(try PSIParty.message(session, fill))
    }

    private func receive<T>(_ session: ProtocolSession, _ what: String, _ extract: (Mpcnode_V1_PsiMessage.OneOf_Body?) -> T?) async throws -> T {
        try await session.receive(what) { body in
            guard case .psi(let m)? = body else { return nil }
            return extract(m.body)
        }
    }
}
