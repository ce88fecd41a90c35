import Foundation
import GRDB
import MPCNode
import MPCWire
import XCTest

final class LocalAggregateTests: XCTestCase {
    func testFixedPointParsingIsExact() {
        XCTAssertEqual(LocalAggregate.parseFixedPoint("15411.87", decimals: 2), 1_541_187)
        XCTAssertEqual(LocalAggregate.parseFixedPoint("-0.5", decimals: 2), -50)
        XCTAssertEqual(LocalAggregate.parseFixedPoint("7", decimals: 3), 7000)
        XCTAssertEqual(LocalAggregate.parseFixedPoint(".25", decimals: 2), 25)
        XCTAssertEqual(LocalAggregate.parseFixedPoint("0.1", decimals: 1), 1, "no floating-point error")
        XCTAssertNil(LocalAggregate.parseFixedPoint("1.234", decimals: 2), "too many decimals")
        XCTAssertNil(LocalAggregate.parseFixedPoint("1e5", decimals: 2))
        XCTAssertNil(LocalAggregate.parseFixedPoint("", decimals: 2))
        XCTAssertNil(LocalAggregate.parseFixedPoint("99999999999999999999", decimals: 0), "overflow")
    }

    func testVectorFromSQLiteMatchesAHandComputedAggregate() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mpcnode-agg-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let csv = folder.appendingPathComponent("a.csv")
        try "id,risk,balance\n1,high,100.50\n2,low,20\n3,high,-0.25\n4,medium,\n5,unknown,999\n".write(to: csv, atomically: true, encoding: .utf8)
        let store = try NodeStore(path: folder.appendingPathComponent("node.sqlite"))
        try DatasetCatalog(store: store).importCSV(DatasetImportRequest(dataset: "accounts", csvPath: csv.path, idColumn: "id"))
        let spec = Mpcnode_V1_AggregateSpec.with {
            $0.groupBy = "risk"; $0.groups = ["high", "medium", "low"]; $0.decimals = 2
            $0.measures = [.with { $0.function = "sum"; $0.column = "balance" }, .with { $0.function = "count"; $0.column = "balance" }]
        }
        let aggregate = LocalAggregate(spec: spec, parties: 10)
        let v = LocalAggregate.signed(try store.read { try aggregate.compute($0, table: "ds_accounts") })
        // cells high, medium, low: records, present, sum(balance) in cents, count(balance)
        XCTAssertEqual(v, [2, 1, 10025, 2,   1, 1, 0, 0,   1, 1, 2000, 1])
        XCTAssertEqual(aggregate.length, 12)

        try store.write { try $0.execute(sql: "UPDATE ds_accounts SET balance = '1.005' WHERE id = '2'") }
        XCTAssertThrowsError(try store.read { try aggregate.compute($0, table: "ds_accounts") }) {
            XCTAssertTrue("\($0)".contains("'1.005' is not a decimal number with at most 2 decimals"), "\($0)")
        }
    }
}
