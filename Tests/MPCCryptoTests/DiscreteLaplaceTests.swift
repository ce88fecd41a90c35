import MPCTestSupport
import XCTest
@testable import MPCCrypto

/// The exact discrete Laplace sampler against its distribution: P(0), the variance and the symmetry.
final class DiscreteLaplaceTests: XCTestCase {
    func testSamplesFollowTheDistribution() {
        for t: UInt64 in [1, 5, 40] {
            var random = SplitMix(state: 2024 + t)
            let n = 40_000
            let samples = (0..<n).map { _ in DiscreteLaplace.sample(scale: t, using: &random) }
            let q = exp(-1 / Double(t))
            // P(X = 0) = (1 − q)/(1 + q); Var X = 2q/(1 − q)².
            let zeros = Double(samples.filter { $0 == 0 }.count) / Double(n)
            XCTAssertEqual(zeros, (1 - q) / (1 + q), accuracy: 0.012, "t = \(t): P(0)")
            let mean = Double(samples.reduce(0, +)) / Double(n)
            let variance = samples.reduce(0.0) { $0 + pow(Double($1) - mean, 2) } / Double(n - 1)
            let expected = 2 * q / pow(1 - q, 2)
            XCTAssertEqual(variance / expected, 1, accuracy: 0.06, "t = \(t): variance \(variance), expected \(expected)")
            XCTAssertEqual(mean, 0, accuracy: 4 * (expected / Double(n)).squareRoot(), "t = \(t): mean")
            let positive = samples.filter { $0 > 0 }.count, negative = samples.filter { $0 < 0 }.count
            XCTAssertEqual(Double(positive) / Double(positive + negative), 0.5, accuracy: 0.015, "t = \(t): symmetry")
        }
    }

    func testBernoulliOfExpAboveOne() {
        var random = SplitMix(state: 9)
        let n = 40_000
        // exp(−2.5) ≈ 0.0821
        let hits = (0..<n).filter { _ in DiscreteLaplace.bernoulliExp(numerator: 5, denominator: 2, using: &random) }.count
        XCTAssertEqual(Double(hits) / Double(n), exp(-2.5), accuracy: 0.006)
    }
}
