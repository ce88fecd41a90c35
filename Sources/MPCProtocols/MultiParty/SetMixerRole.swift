import Foundation

/// A mixer that holds no data: a node the consortium runs to shuffle set operations' sealed pseudonyms
/// (Protocols/multi-party-sets.md), so that no owner sees the others' boxes at all. It accepts every
/// owner's "mix" session, learns from the aggregator how many boxes each owner announced, shuffles them and
/// forwards them on its "mixed" session. It cannot open a box, and having no digest of its own it cannot
/// make the owners' digests cover a box it substitutes.
public struct SetMixerRole: Sendable {
    public let configuration: SetOperationConfiguration
    public let me: NodeID
    public let waits: SetOperationParty.Waits
    /// In buckets: how this role mends a dropped link.
    public var resume: SetResume

    public init(configuration: SetOperationConfiguration, me: NodeID, waits: SetOperationParty.Waits, resume: SetResume = .never) {
        self.configuration = configuration
        self.me = me
        self.waits = waits
        self.resume = resume
    }

    /// Returns the bytes sent and received.
    public func run(port: any SessionPort) async throws -> (sent: UInt64, received: UInt64) {
        let config = configuration
        try config.validate(as: me)
        guard config.mixer == me, !config.owners.contains(me) else {
            throw ProtocolError.parameterMismatch(peer: me, detail: "\(me) is not the set operation's data-less mixer")
        }
        if let bucketing = config.bucketing { return try await runBuckets(port: port, bucketing: bucketing) }
        // The owners' boxes come after the whole ring.
        let accepted = try await port.acceptAll(config.owners.map { (stream: SetOperationStream.mix, peer: $0) }, timeout: waits.phase)
        let fromOwners = config.owners.map { accepted["\(SetOperationStream.mix)/\($0)"]! }
        do {
            try await port.using(fromOwners) {
                try await port.withSession(stream: SetOperationStream.mixed, to: config.aggregator) { mixed in
                    try await SealedMixer(configuration: config, me: me)
                        .mix(own: [], from: fromOwners.map(ProtocolSession.init(channel:)), ringSizes: nil, aggregator: ProtocolSession(channel: mixed))
                }
            }
        } catch {
            await port.cancelAccepts(reason: "\(error)")
            throw error
        }
        return (port.traffic.sent, port.traffic.received)
    }

    /// In buckets: each bucket's boxes from every owner, shuffled and forwarded on the bucket's own
    /// sessions. The mixer learns neither the bucket key nor the layout beyond what the aggregator tells
    /// it on its "mixer" session each attempt: the bucket count, where the attempt starts, and how many
    /// boxes each owner sends per bucket. After a dropped link it meets the others on the next attempt's
    /// sessions (Protocols/multi-party-sets.md "Resume").
    private func runBuckets(port: any SessionPort, bucketing: SetBucketing) async throws -> (sent: UInt64, received: UInt64) {
        let buckets = AnnouncedBuckets()
        _ = try await resume.attempts(buckets, dials: true) { attempt in
            try await runBuckets(attempt: attempt, port: port, bucketing: bucketing, buckets: buckets)
        }
        return (port.traffic.sent, port.traffic.received)
    }

    private func runBuckets(attempt: Int, port: any SessionPort, bucketing: SetBucketing, buckets: AnnouncedBuckets) async throws {
        let config = configuration, me = me, waits = waits, resume = resume
        try await port.withSession(stream: SetBucketLayout.stream(SetBucketLayout.mixerStream, attempt: attempt), to: config.aggregator) { channel in
            let control = ProtocolSession(channel: channel)
            buckets.opened = attempt
            do {
                let announced = try await control.receiveOwnerSizes(owners: config.owners)
                let count = Int(announced.buckets), start = Int(announced.startBucket)
                // The job's count (when it names one) within this node's policy, the same in every attempt.
                guard (1...min(bucketing.maximum, SetBucketLayout.maximumCount)).contains(count),
                      bucketing.requested == nil || bucketing.requested == count, buckets.count == nil || buckets.count == count, start <= count else {
                    throw ProtocolError.parameterMismatch(peer: config.aggregator, detail: "announced \(count) buckets from bucket \(start); this node allows at most \(bucketing.maximum) (max_buckets)\(bucketing.requested.map { ", the job has \($0)" } ?? "")")
                }
                buckets.count = count
                try await SessionWatch.untilOneEnds([control]) {
                    var claims = BucketSessionClaims(port: port, timeout: waits.phase, buckets: count) { b in
                        config.owners.map { (SetBucketLayout.stream(SetOperationStream.mix, bucket: b, attempt: attempt), $0) }
                    }
                    do {
                        claims.claim(from: start)
                        for b in start..<count {
                            let mixStream = SetBucketLayout.stream(SetOperationStream.mix, bucket: b, attempt: attempt)
                            let accepted = try await claims.take(bucket: b)
                            let fromOwners = config.owners.map { accepted["\(mixStream)/\($0)"]! }
                            let again = try await port.using(fromOwners) {
                                try await port.withSession(stream: SetBucketLayout.stream(SetOperationStream.mixed, bucket: b, attempt: attempt), to: config.aggregator) { mixed in
                                    try await SealedMixer(configuration: config, me: me)
                                        .mix(own: [], from: fromOwners.map(ProtocolSession.init(channel:)), ringSizes: nil, aggregator: ProtocolSession(channel: mixed))
                                }
                            }
                            guard again == count else {
                                throw ProtocolError.protocolViolation(peer: config.aggregator, detail: "announced \(again) buckets in bucket \(b), \(count) before")
                            }
                            buckets.done = b + 1
                        }
                    } catch {
                        await claims.cancel()
                        throw error
                    }
                }
                // The aggregator's last word: the job is delivered. Every bucket went through; a fault from
                // here on ends the job (the aggregator does not run the buckets again once it releases).
                buckets.finished = true
                guard case .commit = try await control.receiveSets(expecting: "the commit") else {
                    throw ProtocolError.protocolViolation(peer: config.aggregator, detail: "expected the commit")
                }
                await channel.close()
            } catch {
                if !buckets.finished && resume.endsSilently(after: error, attempt: attempt) {
                    await channel.abort()
                } else {
                    await port.cancelAccepts(reason: "\(error)")
                    await control.end(after: error, by: me)
                }
                throw error
            }
        }
    }
}

/// The bucket count the aggregator announced to a data-less mixer in the first attempt (later ones must repeat it).
final class AnnouncedBuckets: SetAttemptProgress, @unchecked Sendable {
    var count: Int?
    /// Buckets mixed in the current attempt (for the audit of a resume).
    var done = 0
    /// The last attempt whose "mixer" session opened (-1: none yet).
    var opened = -1
    /// Every bucket went through: what follows is the aggregator's commit.
    var finished = false
    var endsJob: Bool { finished }
    var bucketsDone: Int { done }
}
