import Foundation
import Synchronization
@testable import MPCNode
import XCTest

/// The node's timestamps keep the text earlier records were written with (they are stored, hashed into
/// the audit chain and compared as text), and are written and read safely from many threads at once.
final class AuditTimeTests: XCTestCase {
    func testTheTimestampsHaveTheFormatOfEarlierRecordsAndReadBack() throws {
        let earlier = ISO8601DateFormatter()
        earlier.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for _ in 0..<2000 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            // A quarter of a millisecond past a whole one, 2001 to 2099 (the width never changes in that
            // span). The earlier formatter rounded to the millisecond, this one truncates: they agree
            // away from the half.
            let ms = Double(state % 3_100_000_000_000) + 1_000_000_000_000
            let date = Date(timeIntervalSince1970: (ms + 0.25) / 1000)
            let text = AuditTime.string(date)
            XCTAssertEqual(text, earlier.string(from: date))
            XCTAssertEqual(text.utf8.count, 24, text)
            let back = try XCTUnwrap(AuditTime.date(text), text)
            XCTAssertEqual(back.timeIntervalSince1970 * 1000, ms, accuracy: 0.01, text)
            XCTAssertEqual(AuditTime.date(earlier.string(from: date)), back)
        }
        XCTAssertNil(AuditTime.date("yesterday"))
        XCTAssertNil(AuditTime.date(""))
    }

    func testManyThreadsWriteTimestampsAtOnce() {
        let date = Date(timeIntervalSince1970: 1_796_000_000.25)
        let expected = AuditTime.string(date)
        let mismatches = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for _ in 0..<2000 where AuditTime.string(date) != expected || AuditTime.date(expected) != date {
                mismatches.withLock { $0 += 1 }
            }
        }
        XCTAssertEqual(mismatches.withLock { $0 }, 0)
        XCTAssertEqual(expected, "2026-11-30T00:53:20.250Z")
    }
}
