import Foundation
import MPCNode
import MPCLearning
import MPCProtocols

/// `mpcnode bench vertical-lr`: guest, hosts and arbiter of a vertical training in this process (in-memory
/// channels: the cost measured is the cryptography and the protocol, not the network), on synthetic rows
/// or on FATE's breast_hetero split, the host features optionally split over several hosts; time per epoch.
public enum VerticalLRBenchmark {
    public struct Figures: Sendable {
        public var rows: Int
        public var guestFeatures: Int
        public var hostFeatures: Int
        public var hosts: Int
        public var epochs: Int
        public var keyBits: Int
        public var seconds: Double
        public var losses: [Double]
        public var auc: Double
        public var bytes: Int
    }

    /// Synthetic rows: features uniform in [−1, 1], a label from a fixed linear rule with noise.
    public static func synthetic(rows: Int, guest: Int, host: Int) -> (LabeledRows, LabeledRows) {
        var state: UInt64 = 0x9E3779B97F4A7C15
        func next() -> Double {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Double(state >> 11) / Double(1 << 53) * 2 - 1
        }
        var g: [Double] = [], h: [Double] = [], labels: [Double] = []
        g.reserveCapacity(rows * guest); h.reserveCapacity(rows * host)
        for _ in 0..<rows {
            var z = 0.0
            for j in 0..<guest { let v = next(); g.append(v); z += v * (j % 3 == 0 ? 1 : -0.5) }
            for j in 0..<host { let v = next(); h.append(v); z += v * (j % 5 == 0 ? 0.3 : 0) }
            labels.append(z + 0.5 * next() > 0 ? 1 : 0)
        }
        return (LabeledRows(features: g, labels: labels, width: guest), LabeledRows(features: h, labels: labels, width: host))
    }

    public static func run(guest: LabeledRows, host: LabeledRows, hosts: Int = 1, training: TrainingParameters, keyBits: Int) async throws -> Figures {
        let names = (1...hosts).map { hosts == 1 ? "host" : "host-\($0)" }
        // The cost is measured whatever the batch: a node's policy floor (8 rows per feature by default) is
        // the operator's choice, and the command says when a configuration is below it.
        let parameters = VerticalLRParameters(jobID: "bench-vlr", guest: "guest", hosts: names, arbiter: "arbiter", rows: guest.count,
                                              training: training, keyBits: keyBits, minimumBatchRowsPerFeature: 0, minimumKeyBits: min(2048, keyBits))
        let counter = ByteCounter()
        let started = Date()
        let outcome = try await VerticalLRInMemory.run(parameters, guest: guest, hosts: host.splitColumns(into: hosts)) { _, b in counter.add(b.count) }
        let seconds = Date().timeIntervalSince(started)
        let model = outcome.jointModel, losses = outcome.losses
        let scores = (0..<guest.count).map { i in model.probability((Array(guest.row(i)) + Array(host.row(i)))[...]) }
        return Figures(rows: guest.count, guestFeatures: guest.width, hostFeatures: host.width, hosts: hosts, epochs: losses.count, keyBits: keyBits,
                       seconds: seconds, losses: losses, auc: Metrics.auc(scores: scores, labels: guest.labels), bytes: counter.total)
    }
}

final class ByteCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add(_ n: Int) { lock.withLock { count += n } }
    var total: Int { lock.withLock { count } }
}
