import XCTest
@testable import MPCLearning

final class LearningTests: XCTestCase {
    func testAUCExactAndFromHistograms() {
        XCTAssertEqual(Metrics.auc(scores: [0.1, 0.4, 0.35, 0.8], labels: [0, 0, 1, 1]), 0.75)
        XCTAssertEqual(Metrics.auc(scores: [0.5, 0.5], labels: [0, 1]), 0.5)
        XCTAssertEqual(Metrics.auc(scores: [0.9, 0.1], labels: [1, 0]), 1)
        // With enough bins the histogram AUC equals the exact one on well-separated scores.
        let model = LogisticModel(weights: [1], bias: 0)
        let xs: [Double] = [-3, -1.5, -0.2, 0.3, 1.1, 2.5, -2.2, 0.9]
        let ys: [Double] = [0, 0, 1, 0, 1, 1, 0, 1]
        let data = LabeledRows(features: xs, labels: ys, width: 1)
        let e = Metrics.Evaluation(model: model, data: data, bins: 1000)
        XCTAssertEqual(e.auc, Metrics.auc(scores: xs.map { LogisticModel.sigmoid($0) }, labels: ys), accuracy: 1e-12)
        XCTAssertEqual(e.count, 8)
        XCTAssertEqual(e.accuracy, 6.0 / 8.0)  // -0.2 (y = 1) and 0.3 (y = 0) are on the wrong side
        XCTAssertEqual(e.loss, Metrics.logLoss(model: model, data: data), accuracy: 1e-12)
    }

    func testTrainingSeparatesASeparableSet() {
        var features: [Double] = [], labels: [Double] = []
        for i in 0..<200 {
            let x = Double(i % 20) / 10 - 1, y = Double((i * 7) % 13) / 6.5 - 1
            features += [x, y]
            labels.append(x + 0.5 * y > 0 ? 1 : 0)
        }
        let data = LabeledRows(features: features, labels: labels, width: 2)
        let (model, initialLoss) = LocalTrainer.train(.zero(features: 2), on: data, epochs: 50, parameters: TrainingParameters(learningRate: 0.5, l2: 0, batchSize: 16))
        XCTAssertEqual(initialLoss, log(2), accuracy: 1e-12)
        XCTAssertLessThan(Metrics.logLoss(model: model, data: data), 0.2)
        XCTAssertGreaterThan(Metrics.Evaluation(model: model, data: data, bins: 100).accuracy, 0.95)
    }

    func testFixedPointRoundTripsSignedValues() {
        for x in [0, 1.5, -1.5, 123_456.789, -0.000_001, 1e9] {
            XCTAssertEqual(FixedPoint.decode(FixedPoint.encode(x)), x, accuracy: 1e-7)
        }
        // Sums modulo 2^64 decode to the real sum.
        let values = [3.25, -10.5, 7.125]
        XCTAssertEqual(FixedPoint.decode(values.map(FixedPoint.encode).reduce(0, &+)), -0.125, accuracy: 1e-7)
        XCTAssertFalse(FixedPoint.fits(1e15, parties: 10))
        XCTAssertFalse(FixedPoint.fits(.nan, parties: 1))
    }
}
