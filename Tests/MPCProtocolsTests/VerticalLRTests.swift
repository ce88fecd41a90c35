import Foundation
import MPCCrypto
import MPCLearning
import MPCTestSupport
import XCTest
@testable import MPCProtocols

/// Vertical federated LR in memory (real Paillier) on FATE's breast_hetero split: the guest holds the
/// label and 10 features, the host 20 features of the same 569 patients; compared with a centralised
/// baseline on the joined features with the same hyper-parameters. Then the host's 20 features split
/// among three hosts (a chain that sums their encrypted margins): the same model.
final class VerticalLRTests: XCTestCase {
    static func load(_ name: String, labelled: Bool) throws -> LabeledRows { try HorizontalLRTests.load(name, labelled: labelled) }

    static let training = TrainingParameters(rounds: 8, localEpochs: 1, learningRate: 0.15, l2: 0.001, batchSize: 192, tolerance: 0)

    static func parameters(hosts: [String]) -> VerticalLRParameters {
        VerticalLRParameters(jobID: "job-vlr", guest: "guest", hosts: hosts, arbiter: "arbiter", rows: 569, training: training, keyBits: 1024,
                             minimumKeyBits: 1024)
    }

    func testBreastHeteroMatchesTheCentralisedBaseline() async throws {
        let guest = try Self.load("breast_hetero_guest.csv", labelled: true)
        let host = try Self.load("breast_hetero_host.csv", labelled: false)
        XCTAssertEqual([guest.count, host.count, guest.width, host.width], [569, 569, 10, 20])
        let wire = WireLog()
        let outcome = try await VerticalLRInMemory.run(Self.parameters(hosts: ["host"]), guest: guest, hosts: [host]) { wire.append($0, $1) }
        let losses = outcome.losses
        XCTAssertEqual(losses.count, 8)
        XCTAssertEqual(outcome.guestLosses, losses)
        XCTAssertEqual(outcome.hostLosses, [losses])
        XCTAssertLessThan(losses.last!, losses.first!)

        // The joint model: the guest's block, the host's block, the guest's intercept.
        var joined: [Double] = []
        for i in 0..<569 { joined += Array(guest.row(i)) + Array(host.row(i)) }
        let pooled = LabeledRows(features: joined, labels: guest.labels, width: 30)
        let federated = outcome.jointModel
        let federatedAUC = Metrics.auc(scores: (0..<569).map { federated.probability(pooled.row($0)) }, labels: pooled.labels)
        let (baseline, _) = LocalTrainer.train(.zero(features: 30), on: pooled, epochs: Self.training.rounds, parameters: Self.training)
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

    /// Three hosts holding 7, 7 and 6 of the 20 host features train the same model as one host holding all
    /// 20: the chain's encrypted sums ⟦S·Σu⟧ and ⟦(S·Σu)²⟧ are what one host would send, up to the rounding
    /// of each host's margin to S⁻¹. Each host ends with its own block only.
    func testThreeHostsTrainTheSameModelAsOne() async throws {
        let guest = try Self.load("breast_hetero_guest.csv", labelled: true)
        let host = try Self.load("breast_hetero_host.csv", labelled: false)
        let split = host.splitColumns(into: 3)
        let wire = WireLog()
        // The same (zero) start for both runs: the guest otherwise draws random initial weights.
        let start = [Double](repeating: 0, count: guest.width)
        let one = try await VerticalLRInMemory.run(Self.parameters(hosts: ["host"]), guest: guest, hosts: [host], guestInitialWeights: start)
        let three = try await VerticalLRInMemory.run(Self.parameters(hosts: ["host-1", "host-2", "host-3"]), guest: guest, hosts: split,
                                                     tap: { wire.append($0, $1) }, guestInitialWeights: start)
        XCTAssertEqual(three.hostWeights.map(\.count), [7, 7, 6])
        XCTAssertEqual(three.hostLosses, [three.losses, three.losses, three.losses])
        XCTAssertEqual(three.guestLosses, three.losses)
        // The loss (which needs the cross terms 2·u₁·u₂ … of the hosts' margins) and every weight agree.
        for (a, b) in zip(one.losses, three.losses) { XCTAssertEqual(a, b, accuracy: 1e-4) }
        for (a, b) in zip(one.jointModel.weights, three.jointModel.weights) { XCTAssertEqual(a, b, accuracy: 1e-3) }
        XCTAssertEqual(one.jointModel.bias, three.jointModel.bias, accuracy: 1e-3)
        // Against the centralised baseline on all 30 features.
        var joined: [Double] = []
        for i in 0..<569 { joined += Array(guest.row(i)) + Array(host.row(i)) }
        let pooled = LabeledRows(features: joined, labels: guest.labels, width: 30)
        let (baseline, _) = LocalTrainer.train(.zero(features: 30), on: pooled, epochs: Self.training.rounds, parameters: Self.training)
        let auc = { (m: LogisticModel) in Metrics.auc(scores: (0..<569).map { m.probability(pooled.row($0)) }, labels: pooled.labels) }
        XCTAssertEqual(auc(three.jointModel), auc(baseline), accuracy: 0.01)

        // Nothing raw on the wire from any host, and the hosts' messages to each other are ciphertexts only
        // (no feature value, no plain margin as a double).
        for (k, rows) in split.enumerated() {
            let sent = WireIndex(wire.entries.filter { $0.sender == "host-\(k + 1)" }.flatMap(\.bytes))
            for v in rows.features.prefix(300) where v != 0 {
                XCTAssertFalse(sent.contains(withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) }), "host-\(k + 1): \(v)")
            }
            let model = LogisticModel(weights: three.hostWeights[k], bias: 0)
            for i in 0..<20 {
                let margin = model.margin(rows.row(i))
                XCTAssertFalse(sent.contains(withUnsafeBytes(of: margin.bitPattern.littleEndian) { Array($0) }), "host-\(k + 1) margin \(i)")
            }
        }
    }

    /// The middle host of three disappears after receiving the key: every other role ends with an error
    /// (none waits forever), and the guest's error names a peer.
    func testAHostThatDisappearsEndsTheTrainingEverywhere() async throws {
        let guest = try Self.load("breast_hetero_guest.csv", labelled: true)
        let split = try Self.load("breast_hetero_host.csv", labelled: false).splitColumns(into: 3)
        let p = Self.parameters(hosts: ["host-1", "host-2", "host-3"])
        let toHosts = p.hosts.map { InMemoryChannel.pair("guest", $0) }
        let (ga, ag) = InMemoryChannel.pair("guest", "arbiter")
        let toArbiter = p.hosts.map { InMemoryChannel.pair($0, "arbiter") }
        let (h12, h21) = InMemoryChannel.pair("host-1", "host-2"), (h23, h32) = InMemoryChannel.pair("host-2", "host-3")
        let arbiter = Task { try await VerticalLRArbiter(parameters: p, guest: ag, hosts: toArbiter.map(\.1)).run() }
        let host1 = Task { try await VerticalLRHost(parameters: p, features: split[0], guest: toHosts[0].1, arbiter: toArbiter[0].0, next: h12).run() }
        let host3 = Task { try await VerticalLRHost(parameters: p, features: split[2], guest: toHosts[2].1, arbiter: toArbiter[2].0, previous: h32).run() }
        // host-2 takes the key, then is gone.
        _ = try await toArbiter[1].0.receive()
        for c in [toHosts[1].1, toArbiter[1].0, h21, h23] { await c.close() }
        let guestRun = Task { try await VerticalLRGuest(parameters: p, data: guest, hosts: toHosts.map(\.0), arbiter: ga).run() }
        let watchdog = Task {
            try await Task.sleep(for: .seconds(60))
            for c in [ga, ag, h12, h32] + toHosts.map(\.0) + toHosts.map(\.1) + toArbiter.map(\.0) + toArbiter.map(\.1) { await c.close() }
            XCTFail("a role was still waiting after 60 s")
        }
        defer { watchdog.cancel() }
        for (name, outcome) in [("guest", await guestRun.result.map { _ in () }), ("host-1", await host1.result.map { _ in () }),
                                ("host-3", await host3.result.map { _ in () }), ("arbiter", await arbiter.result.map { _ in () })] {
            guard case .failure(let error) = outcome else { XCTFail("\(name) finished without host-2"); continue }
            XCTAssertTrue(error is ProtocolError || error is ChannelError, "\(name): \(error)")
        }
    }

    /// A host whose channels do not match its place in the chain stops with a clear error.
    func testAHostOutOfPlaceInTheChainIsRefused() async throws {
        let rows = LabeledRows(features: [0, 1], labels: [0, 1], width: 1)
        let p = VerticalLRParameters(jobID: "job-vlr", guest: "guest", hosts: ["host-1", "host-2"], arbiter: "arbiter", rows: 2,
                                     training: Self.training, keyBits: 1024)
        let (_, hg) = InMemoryChannel.pair("guest", "host-2")
        let (ha, _) = InMemoryChannel.pair("host-2", "arbiter")
        // host-2 without its previous host (host-1): it would think it is the first.
        do {
            _ = try await VerticalLRHost(parameters: p, features: rows, guest: hg, arbiter: ha).run()
            XCTFail("a host out of place ran")
        } catch ProtocolError.parameterMismatch(_, let detail) {
            XCTAssertTrue(detail.contains("place in the chain"), detail)
        }
    }
}
