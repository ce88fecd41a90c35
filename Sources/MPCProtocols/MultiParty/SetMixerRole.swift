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

    public init(configuration: SetOperationConfiguration, me: NodeID, waits: SetOperationParty.Waits) {
        self.configuration = configuration
        self.me = me
        self.waits = waits
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
    /// it: how many boxes each owner sends per bucket.
    private func runBuckets(port: any SessionPort, bucketing: SetBucketing) async throws -> (sent: UInt64, received: UInt64) {
        let config = configuration, me = me
        // The bucket count arrives with the first bucket's capacities; sessions are claimed a bucket ahead from then on.
        var claims = BucketSessionClaims(port: port, timeout: waits.phase, buckets: 1) { b in
            config.owners.map { (SetBucketLayout.stream(SetOperationStream.mix, bucket: b), $0) }
        }
        do {
            var b = 0
            while b < claims.buckets {
                let mixStream = SetBucketLayout.stream(SetOperationStream.mix, bucket: b)
                let accepted = try await claims.take(bucket: b)
                let fromOwners = config.owners.map { accepted["\(mixStream)/\($0)"]! }
                let announced = try await port.using(fromOwners) {
                    try await port.withSession(stream: SetBucketLayout.stream(SetOperationStream.mixed, bucket: b), to: config.aggregator) { mixed in
                        try await SealedMixer(configuration: config, me: me)
                            .mix(own: [], from: fromOwners.map(ProtocolSession.init(channel:)), ringSizes: nil, aggregator: ProtocolSession(channel: mixed))
                    }
                }
                if b == 0 {
                    claims.buckets = announced
                } else if announced != claims.buckets {
                    throw ProtocolError.protocolViolation(peer: config.aggregator, detail: "announced \(announced) buckets in bucket \(b), \(claims.buckets) before")
                }
                b += 1
            }
        } catch {
            await port.cancelAccepts(reason: "\(error)")
            await claims.cancel()
            throw error
        }
        return (port.traffic.sent, port.traffic.received)
    }
}
