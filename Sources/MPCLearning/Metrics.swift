import Foundation

/// Quality of a binary classifier: log-loss, accuracy, and the area under the ROC curve — exact from
/// scores, or from per-label score histograms (which is what parties can sum securely).
public enum Metrics {
    public static func logLoss(model: LogisticModel, data: LabeledRows) -> Double {
        guard data.count > 0 else { return 0 }
        var total = 0.0
        for i in 0..<data.count { total += pointLoss(model.probability(data.row(i)), data.labels[i]) }
        return total / Double(data.count)
    }

    static func pointLoss(_ p: Double, _ y: Double) -> Double {
        let q = min(max(p, 1e-15), 1 - 1e-15)
        return -(y * log(q) + (1 - y) * log(1 - q))
    }

    /// Exact AUC: the probability that a random positive scores above a random negative (ties count ½).
    public static func auc(scores: [Double], labels: [Double]) -> Double {
        let order = scores.indices.sorted { scores[$0] < scores[$1] }
        var rankSum = 0.0, positives = 0.0
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && scores[order[j + 1]] == scores[order[i]] { j += 1 }
            let rank = Double(i + j) / 2 + 1
            for k in i...j where labels[order[k]] == 1 { rankSum += rank; positives += 1 }
            i = j + 1
        }
        let negatives = Double(scores.count) - positives
        guard positives > 0, negatives > 0 else { return .nan }
        return (rankSum - positives * (positives + 1) / 2) / (positives * negatives)
    }

    /// A party's contribution to the consortium's evaluation: counts of scores per bin and label, the
    /// summed log-loss and the number of correct predictions (at 0.5). Summed over parties, it gives the
    /// consortium's AUC (to the bins' resolution), loss and accuracy without pooling any row.
    public struct Evaluation: Sendable, Equatable {
        public var positives: [Int64]
        public var negatives: [Int64]
        public var lossSum: Double
        public var correct: Int64

        public init(bins: Int) {
            positives = Array(repeating: 0, count: bins)
            negatives = Array(repeating: 0, count: bins)
            lossSum = 0
            correct = 0
        }

        public init(model: LogisticModel, data: LabeledRows, bins: Int) {
            self.init(bins: bins)
            for i in 0..<data.count { add(probability: model.probability(data.row(i)), label: data.labels[i]) }
        }

        /// Counts one scored row.
        public mutating func add(probability p: Double, label y: Double) {
            let bin = p.isNaN ? 0 : min(positives.count - 1, max(0, Int(min(1, max(0, p)) * Double(positives.count))))
            if y == 1 { positives[bin] += 1 } else { negatives[bin] += 1 }
            lossSum += Metrics.pointLoss(p, y)
            if (p >= 0.5) == (y == 1) { correct += 1 }
        }

        public var count: Int64 { positives.reduce(0, +) + negatives.reduce(0, +) }
        public var loss: Double { count == 0 ? .nan : lossSum / Double(count) }
        public var accuracy: Double { count == 0 ? .nan : Double(correct) / Double(count) }

        /// AUC from the histograms: pairs in the same bin count ½.
        public var auc: Double {
            let p = Double(positives.reduce(0, +)), n = Double(negatives.reduce(0, +))
            guard p > 0, n > 0 else { return .nan }
            var negativesBelow = 0.0, pairs = 0.0
            for b in positives.indices {
                pairs += Double(positives[b]) * (negativesBelow + Double(negatives[b]) / 2)
                negativesBelow += Double(negatives[b])
            }
            return pairs / (p * n)
        }
    }
}
