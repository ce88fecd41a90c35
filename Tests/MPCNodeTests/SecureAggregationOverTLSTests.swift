import MPCBench
import Foundation
import MPCNode
import XCTest

/// Secure aggregation between separate TLS 1.3 transports (one certificate each) over loopback,
/// with clients dropping out: the delivered sum is the plain sum of the survivors.
final class SecureAggregationOverTLSTests: XCTestCase {
    func testSumOverTLSWithDropoutsEqualsThePlainSumOfSurvivors() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mpcnode-sa-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let f = try await SecureSumBenchmark(parties: 8, length: 500, dropouts: 2, directory: folder).run { _ in }
        XCTAssertEqual(f.included, 6)
        XCTAssertTrue(f.sumCorrect)
    }
}
