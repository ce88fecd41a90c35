import Foundation
import MPCCrypto
import MPCLearning
import MPCTestSupport
import XCTest
@testable import MPCProtocols

/// Vertical federated LR in memory (real Paillier) on FATE's breast_hetero split: the guest holds the
/// label and 10 features, the host 20 features of the same 569 patients; compared with a centralised
/// baseline on the joined features with the same hyper-parameters.
final class VerticalLRTests: XCTestCase {
    static func load(_ name: String, labelled: Bool) throws -> LabeledRows { try HorizontalLRTests.load(name, labelled: labelled) }

    func testBreastHeteroMatchesTheCentralisedBaseline() async throws {
        let guest = try Self.load("breast_hetero_guest.csv", labelled: true)
        let host = try Self.load("breast_hetero_host.csv", labelled: false)
        XCTAssertEqual([guest.count, host.count, guest.width, host.width], [569, 569, 10, 20])
        let training = TrainingParameters(rounds: 8, localEpochs: 1, learningRate: 0.15, l2: 0.001, batchSize: 64, tolerance: 0)
        let parameters = VerticalLRParameters(jobID: "job-vlr", guest: "guest", host: "host", arbiter: "arbiter", rows: 569,
                                              training: training, keyBits: 1024)
        let wire = WireLog()
        let tap: @Sendable (String, [UInt8]) -> Void = { wire.append($0, $1) }
        let (gh, hg) = InMemoryChannel.pair("guest", "host", tap: tap)
        let (ga, ag) = InMemoryChannel.pair("guest", "arbiter", tap: tap)
        let (ha, ah) = InMemoryChannel.pair("host", "arbiter", tap: tap)
        async let arbiter = VerticalLRArbiter(parameters: parameters, guest: ag, host: ah).run()
        async let hostRun = VerticalLRHost(parameters: parameters, features: host, guest: hg, arbiter: ha).run()
        let (guestModel, guestLosses) = try await VerticalLRGuest(parameters: parameters, data: guest, host: gh, arbiter: ga).run()
        let (hostWeights, hostLosses) = try await hostRun
        let losses = try await arbiter
        XCTAssertEqual(losses.count, 8)
        XCTAssertEqual(guestLosses, losses)
        XCTAssertEqual(hostLosses, losses)
        XCTAssertLessThan(losses.last!, losses.first!)

        // The joint model: the guest's block, the host's block, the guest's intercept.
        var joined: [Double] = []
        for i in 0..<569 { joined += Array(guest.row(i)) + Array(host.row(i)) }
        let pooled = LabeledRows(features: joined, labels: guest.labels, width: 30)
        let federated = LogisticModel(weights: guestModel.weights + hostWeights, bias: guestModel.bias)
        let federatedAUC = Metrics.auc(scores: (0..<569).map { federated.probability(pooled.row($0)) }, labels: pooled.labels)
        let (baseline, _) = LocalTrainer.train(.zero(features: 30), on: pooled, epochs: training.rounds, parameters: training)
        let baselineAUC = Metrics.auc(scores: (0..<569).map { baseline.probability(pooled.row($0)) }, labels: pooled.labels)
        XCTAssertEqual(federatedAUC, baselineAUC, accuracy: 0.01)
        XCTAssertGreaterThan(federatedAUC, 0.95)

        // Nothing raw on the wire: no label vector, no feature value as an 8-byte double, from guest or host.
        for (sender, rows) in [("guest", guest), ("host", host)] {
            let sent = WireIndex(wire.entries.filter { $0.sender == sender }.flatMap(\.bytes))
            for v in rows.features.prefix(300) where v != 0 {
                XCTAssertFalse(sent.contains(withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) }), "\(sender): \(v)")
            }
        }
    }
}
