import Foundation
import MPCCrypto
import MPCTestSupport
import MPCWire
import XCTest
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
        var workerCount = 1
        var scope = BucketedPSIParty.Configuration.Scope.whole
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
            c.workerCount = me.workerCount
            c.scope = me.scope
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

    /// Rewrites bank-b's PSI messages in flight (a dishonest B with a valid certificate).
    static func rewriting(_ change: @escaping @Sendable (inout Mpcnode_V1_PsiMessage) -> Void) -> InMemoryChannel.Intercept {
        { sender, _, bytes in
            guard sender == "bank-b", var frame = try? Mpcnode_V1_SessionFrame(serializedBytes: bytes), case .psi(var m)? = frame.body else { return [bytes] }
            change(&m)
            frame.psi = m
            return [(try? frame.serializedBytes()) ?? bytes]
        }
    }

    /// Nothing on the wire is an identifier (as given, or without its "+86"), or a plain hash of one; and
    /// the search does find an identifier planted in the same bytes (so the check can fail).
    static func assertNothingIdentifying(_ log: WireLog, _ identifiers: [String], file: StaticString = #filePath, line: UInt = #line) {
        let everything = WireIndex(log.entries.flatMap(\.bytes))
        for id in identifiers {
            XCTAssertFalse(everything.contains(Array(id.utf8)), id, file: file, line: line)
            XCTAssertFalse(everything.contains(Array(id.dropFirst(3).utf8)), id, file: file, line: line)
            for h in PlainHashes.of(Array(id.utf8)) { XCTAssertFalse(everything.contains(h), "a hash of \(id)", file: file, line: line) }
        }
        if let planted = identifiers.first {
            XCTAssertTrue(WireIndex(everything.bytes + Array(planted.utf8)).contains(Array(planted.utf8)), "the search finds a planted identifier",
                          file: file, line: line)
        }
    }
}
