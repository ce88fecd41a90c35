import Foundation
import MPCCrypto
import MPCTestSupport
@testable import MPCProtocols

/// Two bucketed PSI parties over an in-memory channel (BucketedPSITests, KKRTPSITests).
enum BucketedPSIHarness {
    struct Side {
        var source: ArrayIdentifierSource
        var checkpoints: any BucketCheckpoints
        var buckets: Int?
        var maximumBuckets = 4096
        var receives = true
        var cardinalityOnly = false
        var psiProtocol = PSIProtocol.ecdh
    }

    static func run(_ a: Side, _ b: Side, group: BlindingGroup = .x25519, tap: WireLog? = nil, intercept: InMemoryChannel.Intercept? = nil)
        async -> (a: Result<BucketedPSIParty.Report, Error>, b: Result<BucketedPSIParty.Report, Error>) {
        let log = tap ?? WireLog()
        let (ca, cb) = InMemoryChannel.pair("bank-a", "bank-b", tap: { log.append($0, $1) }, intercept: intercept)
        func party(_ me: Side, _ other: Side, first: Bool, channel: InMemoryChannel) -> BucketedPSIParty {
            let psi = PSIParty.Configuration(jobID: "bucket-job", group: group, selfReceivesOutput: me.receives,
                                             peerReceivesOutput: other.receives, cardinalityOnly: me.cardinalityOnly, batchSize: 16)
            var c = BucketedPSIParty.Configuration(psi: psi, isFirstParty: first, requestedBuckets: me.buckets)
            c.maximumBuckets = me.maximumBuckets
            c.psiProtocol = me.psiProtocol
            return BucketedPSIParty(configuration: c, source: me.source, checkpoints: me.checkpoints, channel: channel)
        }
        let pa = party(a, b, first: true, channel: ca), pb = party(b, a, first: false, channel: cb)
        async let ra = outcome { try await pa.run() }
        async let rb = outcome { try await pb.run() }
        return await (ra, rb)
    }

    static func outcome<T>(_ body: () async throws -> T) async -> Result<T, Error> {
        do { return .success(try await body()) } catch { return .failure(error) }
    }

    static func identifiers(_ checkpoints: InMemoryBucketCheckpoints, _ source: ArrayIdentifierSource) -> Set<String> {
        Set(checkpoints.positions.map { String(decoding: source.values[$0], as: UTF8.self) })
    }

    static func randomSets(seed: UInt64, sizeA: Int, sizeB: Int, universe: Int) -> ([String], [String]) {
        var rng = SplitMix(state: seed)
        let a = (0..<sizeA).map { _ in "+86" + String(Int.random(in: 0..<universe, using: &rng)) }
        let b = (0..<sizeB).map { _ in "+86" + String(Int.random(in: 0..<universe, using: &rng)) }
        return (a, b)
    }
}
