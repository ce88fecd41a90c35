import Foundation
import XCTest
@testable import MPCNode

/// Progress as a node records and forwards it: the remaining-time estimate, the wire round trip, the text.
final class ProgressSnapshotTests: XCTestCase {
    func testRemainingTimeIsTheMeanTimePerUnitTimesTheUnitsLeft() {
        XCTAssertNil(ProgressSnapshot.estimate(done: 0, total: 10, unit: "epochs", loss: nil, elapsedMs: 5_000).remainingMs, "no basis yet")
        XCTAssertEqual(ProgressSnapshot.estimate(done: 3, total: 10, unit: "epochs", loss: 0.5, elapsedMs: 3_000).remainingMs, 7_000)
        XCTAssertEqual(ProgressSnapshot.estimate(done: 1, total: 4, unit: "rounds", loss: nil, elapsedMs: 250).remainingMs, 750)
        XCTAssertEqual(ProgressSnapshot.estimate(done: 10, total: 10, unit: "epochs", loss: 0.3, elapsedMs: 9_000).remainingMs, 0)
    }

    func testASnapshotSurvivesTheWire() {
        for snapshot in [ProgressSnapshot(done: 3, total: 10, unit: "epochs", loss: 0.4123, elapsedMs: 12_345, remainingMs: 28_000),
                         ProgressSnapshot(done: 0, total: 30, unit: "rounds", loss: nil, elapsedMs: 10, remainingMs: nil),
                         ProgressSnapshot(done: 30, total: 30, unit: "rounds", loss: 0, elapsedMs: 10, remainingMs: 0),
                         ProgressSnapshot(done: 500, total: 2_000, unit: "elements", loss: nil, elapsedMs: 1_000, remainingMs: 3_000)] {
            XCTAssertEqual(ProgressSnapshot(snapshot.message(jobID: "job-1")), snapshot)
        }
        // A message from a node that sends neither unit nor times (done/total only) reads as elements, no estimate.
        let bare = ProgressSnapshot(.with { $0.jobID = "job-1"; $0.done = 5; $0.total = 10 })
        XCTAssertEqual(bare, ProgressSnapshot(done: 5, total: 10, unit: "elements", loss: nil, elapsedMs: 0, remainingMs: nil))
    }

    func testTheSummarySaysRoundLossElapsedAndRemaining() {
        let text = ProgressSnapshot(done: 3, total: 10, unit: "epochs", loss: 0.41234, elapsedMs: 12_345, remainingMs: 88_000).summary
        XCTAssertEqual(text, "3/10 epochs (30%), loss 0.4123, elapsed 12 s, ≈ 1 min 28 s left")
        XCTAssertEqual(ProgressSnapshot(done: 10, total: 10, unit: "epochs", elapsedMs: 4_200, remainingMs: 0).summary,
                       "10/10 epochs (100%), elapsed 4.2 s")
        XCTAssertEqual(ProgressSnapshot.duration(3 * 3_600_000 + 5 * 60_000), "3 h 5 min")
    }
}
