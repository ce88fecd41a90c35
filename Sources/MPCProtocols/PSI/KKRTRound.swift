import Foundation
import MPCCrypto

/// One bucket of a bucketed PSI run with the KKRT OPRF (Protocols/psi-oprf.md) instead of commutative
/// blinding: an instance in which the dialling party receives (if it receives the output), then one in
/// which the other does, over the open session. The counterpart of `PSIRound` for `--protocol kkrt`.
struct KKRTRound: Sendable {
    let configuration: PSIParty.Configuration
    let isFirstParty: Bool
    let source: any IdentifierSource
    let seed: [UInt8]
    /// The peer's padded bucket size.
    let peerElements: Int
    let checkpoints: any BucketCheckpoints
    let session: ProtocolSession

    func run() async throws -> PSIRound.Result {
        let firstReceives = isFirstParty ? configuration.selfReceivesOutput : configuration.peerReceivesOutput
        let secondReceives = isFirstParty ? configuration.peerReceivesOutput : configuration.selfReceivesOutput
        let instances = [firstReceives ? 0 : nil, secondReceives ? 1 : nil].compactMap { $0 }
        let code = PseudorandomCode(jobID: configuration.jobID)
        var digests: [UInt8] = []
        var positions: [Int]?
        for (index, number) in instances.enumerated() {
            let must = configuration.peerStreamMustMatch.flatMap { digest -> [UInt8]? in
                digest.count == 64 * instances.count ? Array(digest[(64 * index)..<(64 * index + 64)]) : digest
            }
            let instance = KKRTInstance(jobID: configuration.jobID, bucket: configuration.bucket, number: number, seed: seed,
                                        code: code, peerElements: peerElements, peerStreamMustMatch: must, checkpoints: checkpoints)
            let selfReceives = (number == 0) == isFirstParty
            if selfReceives {
                let result = try await KKRTReceiver(instance: instance, elements: source, session: session).run()
                positions = result.positions
                digests += result.peerDigest
            } else {
                digests += try await KKRTSender(instance: instance, elements: source, session: session).run()
            }
        }
        return PSIRound.Result(output: positions.map { .intersection(positions: $0) } ?? .none,
                               peerSetSize: peerElements, peerStreamDigest: digests)
    }
}
