import XCTest
@testable import MPCProtocols

final class CellSuppressionTests: XCTestCase {
    func testSmallCellsAreSuppressedWithoutValues() {
        // Three cells of [records, parties, sum, count]: released; too few records; too few parties.
        let cells: [[Int64]] = [[12, 3, -1500, 12], [4, 3, 99, 4], [30, 1, 7, 30]]
        let sum = cells.flatMap { $0 }.map { UInt64(bitPattern: $0) }
        let out = CellSuppression.apply(sum: sum, cells: 3, measures: 2, minRecords: 10, minParties: 2)
        XCTAssertEqual(out[0], .init(records: 12, parties: 3, values: [-1500, 12], suppressionReason: nil))
        XCTAssertEqual(out[1].suppressionReason, "fewer than 10 records")
        XCTAssertEqual(out[2].suppressionReason, "fewer than 2 parties")
        XCTAssertTrue(out[1].values.isEmpty && out[1].records == nil && out[2].values.isEmpty && out[2].parties == nil)
        // A sum of the wrong length releases nothing.
        XCTAssertTrue(CellSuppression.apply(sum: Array(sum.dropLast()), cells: 3, measures: 2, minRecords: 1, minParties: 1).allSatisfy(\.suppressed))
    }
}
