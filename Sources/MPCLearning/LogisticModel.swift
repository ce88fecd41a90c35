import Foundation

/// A logistic regression model: P(y = 1 | x) = σ(w·x + b).
public struct LogisticModel: Sendable, Equatable, Codable {
    public var weights: [Double]
    public var bias: Double

    public init(weights: [Double], bias: Double = 0) {
        self.weights = weights
        self.bias = bias
    }

    public static func zero(features: Int) -> LogisticModel { LogisticModel(weights: Array(repeating: 0, count: features)) }

    /// The parameters as one vector (weights, then the bias), as secure aggregation sums them.
    public var parameters: [Double] { weights + [bias] }
    public init(parameters: [Double]) {
        weights = Array(parameters.dropLast())
        bias = parameters.last ?? 0
    }

    public func margin(_ x: ArraySlice<Double>) -> Double {
        var z = bias
        for (w, v) in zip(weights, x) { z += w * v }
        return z
    }

    public func probability(_ x: ArraySlice<Double>) -> Double { Self.sigmoid(margin(x)) }

    public static func sigmoid(_ z: Double) -> Double {
        z >= 0 ? 1 / (1 + exp(-z)) : exp(z) / (1 + exp(z))
    }
}

/// Rows of features (row-major) with 0/1 labels.
public struct LabeledRows: Sendable {
    public var features: [Double]
    public var labels: [Double]
    public let width: Int

    public init(features: [Double], labels: [Double], width: Int) {
        precondition(width > 0 && features.count == labels.count * width, "features must be labels × width")
        self.features = features
        self.labels = labels
        self.width = width
    }

    public var count: Int { labels.count }
    public func row(_ i: Int) -> ArraySlice<Double> { features[(i * width)..<((i + 1) * width)] }

    /// Rows `indices`, in that order.
    public func subset(_ indices: [Int]) -> LabeledRows {
        var f: [Double] = []
        f.reserveCapacity(indices.count * width)
        for i in indices { f.append(contentsOf: row(i)) }
        return LabeledRows(features: f, labels: indices.map { labels[$0] }, width: width)
    }

    /// Feature columns `range` of every row (the labels kept): one party's block of a vertical split.
    public func columns(_ range: Range<Int>) -> LabeledRows {
        var f: [Double] = []
        f.reserveCapacity(count * range.count)
        for i in 0..<count { f.append(contentsOf: features[(i * width + range.lowerBound)..<(i * width + range.upperBound)]) }
        return LabeledRows(features: f, labels: labels, width: range.count)
    }

    /// Feature columns split into `parts` consecutive blocks of near-equal width (the first ones wider).
    public func splitColumns(into parts: Int) -> [LabeledRows] {
        precondition(parts >= 1 && parts <= width, "1 … width parts")
        var start = 0
        return (0..<parts).map { k in
            let w = width / parts + (k < width % parts ? 1 : 0)
            defer { start += w }
            return columns(start..<(start + w))
        }
    }

    /// Rows from CSV text laid out as FATE's example data: a header line, then per line an id, the 0/1
    /// label when `labelled` (else labels are 0), and numeric features.
    public init(csv text: String, labelled: Bool) throws {
        var features: [Double] = [], labels: [Double] = []
        var width = 0
        for (n, line) in text.split(separator: "\n").dropFirst().enumerated() {
            let fields = try line.split(separator: ",").map { field -> Double in
                guard let v = Double(field) else { throw CSVRowsError.notANumber(line: n + 2, field: String(field)) }
                return v
            }
            let first = labelled ? 2 : 1
            guard fields.count > first else { throw CSVRowsError.notANumber(line: n + 2, field: String(line)) }
            labels.append(labelled ? fields[1] : 0)
            width = fields.count - first
            features.append(contentsOf: fields[first...])
        }
        self.init(features: features, labels: labels, width: max(1, width))
    }

    public static func + (a: LabeledRows, b: LabeledRows) -> LabeledRows {
        LabeledRows(features: a.features + b.features, labels: a.labels + b.labels, width: a.width)
    }
}

/// Training hyper-parameters (the same at every party; part of the job).
public struct TrainingParameters: Sendable, Equatable, Codable {
    public var rounds: Int
    public var localEpochs: Int
    public var learningRate: Double
    public var l2: Double
    public var batchSize: Int
    /// Training stops early when the loss changes by less than this between rounds.
    public var tolerance: Double

    public init(rounds: Int = 20, localEpochs: Int = 1, learningRate: Double = 0.1, l2: Double = 0.001, batchSize: Int = 32, tolerance: Double = 1e-5) {
        self.rounds = rounds
        self.localEpochs = localEpochs
        self.learningRate = learningRate
        self.l2 = l2
        self.batchSize = batchSize
        self.tolerance = tolerance
    }
}

/// Mini-batch gradient descent on the log-loss with L2, in the rows' order (deterministic).
public enum LocalTrainer {
    /// Trains `epochs` passes from `model`; returns the model and the mean log-loss over the rows
    /// at the start (the model the round began with), which is what the consortium's loss reports.
    public static func train(_ model: LogisticModel, on data: LabeledRows, epochs: Int, parameters p: TrainingParameters) -> (LogisticModel, Double) {
        let loss = Metrics.logLoss(model: model, data: data)
        var m = model
        guard data.count > 0 else { return (m, loss) }
        var gradient = [Double](repeating: 0, count: data.width)
        for _ in 0..<epochs {
            var start = 0
            while start < data.count {
                let end = min(data.count, start + max(1, p.batchSize))
                for j in gradient.indices { gradient[j] = 0 }
                var biasGradient = 0.0
                for i in start..<end {
                    let x = data.row(i)
                    let error = m.probability(x) - data.labels[i]
                    for (j, v) in x.enumerated() { gradient[j] += error * v }
                    biasGradient += error
                }
                let size = Double(end - start)
                for j in m.weights.indices { m.weights[j] -= p.learningRate * (gradient[j] / size + p.l2 * m.weights[j]) }
                m.bias -= p.learningRate * biasGradient / size
                start = end
            }
        }
        return (m, loss)
    }
}

public enum CSVRowsError: Error, CustomStringConvertible {
    case notANumber(line: Int, field: String)
    public var description: String {
        switch self { case .notANumber(let line, let field): return "line \(line): '\(field)' is not a number" }
    }
}
