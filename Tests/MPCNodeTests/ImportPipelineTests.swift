import Crypto
import Foundation
import GRDB
@testable import MPCNode
import XCTest

/// The import runs on two threads — one parses and checks the CSV into batches, the other inserts them
/// into SQLite, several rows a statement. These tests hold it to what one thread did: every row stored,
/// in file order, with its values; errors raised in file order with the line of the record, from either
/// thread, and nothing stored after one; progress as the file is read.
final class ImportPipelineTests: XCTestCase {
    var folder: URL!
    var catalog: DatasetCatalog!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("mpcnode-pipeline-\(UUID().uuidString)")
        catalog = DatasetCatalog(store: try NodeStore(path: folder.appendingPathComponent("node.sqlite")))
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    func write(_ name: String, _ text: String) throws -> String {
        let url = folder.appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url.path
    }

    func rows(_ dataset: String, _ columns: String) throws -> [[String]] {
        try catalog.store.read { db in
            try Row.fetchAll(db, sql: "SELECT \(columns) FROM \(NodeStore.quote(NodeStore.tableName(forDataset: dataset))) ORDER BY _row")
                .map { row in (0 ..< row.count).map { row[$0] as String } }
        }
    }

    /// A file of many batches (more rows than a batch holds, a count that is no multiple of the rows a
    /// statement takes): every row stored once, in order, with every value; the digest of the file's
    /// bytes; progress rising with the rows and the bytes, as far as the file's size.
    func testAFileOfManyBatchesIsStoredWholeInOrderWithProgress() throws {
        let count = 3 * CSVRowBatch.rowLimit * 10 + 37  // 245,797 rows: 30 full batches and a part
        var text = "customer,phone,note\n"
        var expected: [[String]] = []
        expected.reserveCapacity(count)
        for i in 0 ..< count {
            // Every 1,000th record takes the full parser (a quoted field over two lines, a doubled quote).
            let note = i % 1000 == 0 ? "\"a \"\"quoted\"\"\nnote \(i)\"" : "n\(i % 97)"
            text += "C\(i),+86 1\(i % 100)-\(String(format: "%07d", i)),\(note)\n"
            expected.append(["C\(i)", "861\(i % 100)\(String(format: "%07d", i))", i % 1000 == 0 ? "a \"quoted\"\nnote \(i)" : "n\(i % 97)"])
        }
        let path = try write("many.csv", text)
        var reports: [(rows: Int, bytes: Int)] = []
        var steps: [DatasetImportProgress] = []
        let info = try catalog.importCSV(DatasetImportRequest(dataset: "many", csvPath: path, idColumn: "phone",
                                                              normalization: IdentifierNormalization(trim: true, digitsOnly: true))) {
            if case .rows(let rows, let bytes) = $0 { reports.append((rows, bytes)) } else { steps.append($0) }
        }
        // After the last row, each step once, in order.
        XCTAssertEqual(steps, [.indexing(rows: count), .countingDistinct, .committing])
        XCTAssertEqual(info.rowCount, count)
        XCTAssertEqual(info.distinctIdentifiers, count)
        XCTAssertEqual(info.sourceSHA256, SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined())
        let stored = try rows("many", "customer, phone, note")
        XCTAssertEqual(stored.count, count)
        if let mismatch = zip(stored, expected).enumerated().first(where: { $0.element.0 != $0.element.1 }) {
            XCTFail("row \(mismatch.offset + 1): stored \(mismatch.element.0), expected \(mismatch.element.1)")
        }
        // Reported once past each 100,000 rows, rising, within the file.
        XCTAssertEqual(reports.count, count / 100_000)
        XCTAssertEqual(reports.map(\.rows), reports.map(\.rows).sorted())
        XCTAssertEqual(reports.map(\.bytes), reports.map(\.bytes).sorted())
        for (k, report) in reports.enumerated() {
            XCTAssertGreaterThanOrEqual(report.rows, (k + 1) * 100_000)
            XCTAssertLessThan(report.rows, (k + 1) * 100_000 + CSVRowBatch.rowLimit)
            XCTAssertLessThanOrEqual(report.bytes, text.utf8.count)
        }
    }

    /// Batches that end before their row limit — by their values (a file of 600 columns: fewer rows a
    /// statement, and single-row inserts between groups) and by their bytes (30 KB notes) — store every
    /// value of every row, in order.
    func testWideAndLongRecordsEndBatchesEarlyAndEveryValueIsStored() throws {
        let columns = (0 ..< 600).map { "c\($0)" }
        var wide = columns.joined(separator: ",") + "\n"
        var wideRows: [[String]] = []
        for r in 0 ..< 500 {
            let row = columns.indices.map { c in c == 0 ? "id\(r)" : "r\(r)c\(c)" }
            wide += row.joined(separator: ",") + "\n"
            wideRows.append(row)
        }
        let info = try catalog.importCSV(DatasetImportRequest(dataset: "wide", csvPath: try write("wide.csv", wide), idColumn: "c0"))
        XCTAssertEqual(info.rowCount, 500)
        XCTAssertEqual(try rows("wide", columns.map(NodeStore.quote).joined(separator: ", ")), wideRows)

        var long = "id,note\n"
        var longRows: [[String]] = []
        for r in 0 ..< 300 {
            let note = String(repeating: Character(UnicodeScalar(UInt8(97 + r % 26))), count: 30_000 + r)
            long += "\(r),\(note)\n"
            longRows.append(["\(r)", note])
        }
        XCTAssertEqual(try catalog.importCSV(DatasetImportRequest(dataset: "long", csvPath: try write("long.csv", long), idColumn: "id")).rowCount, 300)
        XCTAssertEqual(try rows("long", "id, note"), longRows)
    }

    /// A malformed record many batches into the file is reported with the line it starts on — lines
    /// counted through quoted fields that span lines before it — and the import stores nothing; the
    /// dataset of that name stays as it was.
    func testAMalformedRecordManyBatchesInNamesItsLineAndStoresNothing() throws {
        try catalog.importCSV(DatasetImportRequest(dataset: "people", csvPath: try write("first.csv", "phone,note\n1,a\n2,b\n"), idColumn: "phone"))
        let before = try catalog.describe("people")
        var text = "phone,note\n"
        var line = 2
        for i in 0 ..< 50_000 {
            if i % 10_000 == 5 { text += "\(i),\"two\nlines\"\n"; line += 2 } else { text += "\(i),x\n"; line += 1 }
        }
        let cases = [
            ("short.csv", text + "50000\n" + "50001,y\n", "line \(line): 1 fields where the header has 2"),
            ("empty-id.csv", text + " ,y\n", "line \(line): empty identifier in column 'phone'"),
            ("open-quote.csv", text + "\"50000,y\n50001,z\n", "line \(line): quoted field not closed"),
        ]
        for (name, body, reason) in cases {
            let path = try write(name, body)
            XCTAssertThrowsError(try catalog.importCSV(DatasetImportRequest(dataset: "people", csvPath: path, idColumn: "phone", replace: true)), name) {
                XCTAssertTrue("\($0)".contains(reason), "\(name): \($0)")
                XCTAssertTrue("\($0)".contains("nothing was imported"), "\(name): \($0)")
            }
            XCTAssertEqual(try catalog.describe("people"), before, name)
            XCTAssertEqual(try rows("people", "phone, note"), [["1", "a"], ["2", "b"]], name)
        }
    }

    /// An error on the inserting side (here a trigger that refuses one row, standing in for a full disk)
    /// while the reading side is batches ahead: the append fails with SQLite's error, appends nothing, the
    /// reading thread is stopped (the call returns), and the next append on the same node works.
    func testAnInsertErrorStopsTheReaderAndAppendsNothing() throws {
        try catalog.importCSV(DatasetImportRequest(dataset: "list", csvPath: try write("list.csv", "phone\n1\n2\n"), idColumn: "phone"))
        try catalog.store.write { db in
            try db.execute(sql: """
                CREATE TRIGGER refuse BEFORE INSERT ON \(NodeStore.quote(NodeStore.tableName(forDataset: "list")))
                WHEN NEW.phone = '30000' BEGIN SELECT RAISE(ABORT, 'row refused by the test'); END
                """)
        }
        let body = "phone\n" + (3 ..< 60_000).map { "\($0)\n" }.joined()
        let before = try catalog.describe("list")
        XCTAssertThrowsError(try catalog.append(dataset: "list", csvPath: try write("more.csv", body))) {
            XCTAssertTrue("\($0)".contains("row refused by the test"), "\($0)")
        }
        XCTAssertEqual(try catalog.describe("list"), before)
        XCTAssertEqual(try rows("list", "phone"), [["1"], ["2"]])

        let after = try catalog.append(dataset: "list", csvPath: try write("fine.csv", "phone\n" + (3 ..< 20_000).map { "\($0)\n" }.joined()))
        XCTAssertEqual(after.rowCount, 19_999)
        XCTAssertEqual(try rows("list", "phone").map { $0[0] }, (1 ..< 20_000).map(String.init))
    }

    /// The hand-over itself, one side at a time: batches come out in the order they went in, the reader's
    /// outcome only after the last of them, at most the batches it was made with exist, and once the
    /// writer abandons the load the reader gets no batch to fill.
    func testTheHandOverKeepsFileOrderAndEndsAfterTheLastBatch() throws {
        let queue = CSVRowBatchQueue(batches: 3, parametersPerRow: 1)
        var handed: [CSVRowBatch] = []
        for k in 0 ..< 3 {
            let batch = try XCTUnwrap(queue.takeEmpty())
            batch.fileBytesRead = k + 1
            queue.putFilled(batch)
            handed.append(batch)
        }
        queue.finish(.success("digest"))
        var order: [Int] = []
        while case .batch(let batch) = queue.takeFilled() {
            order.append(batch.fileBytesRead)
            queue.putEmpty(batch)
        }
        XCTAssertEqual(order, [1, 2, 3])
        guard case .end(let outcome) = queue.takeFilled() else { return XCTFail("the outcome after the batches") }
        XCTAssertEqual(try outcome.get(), "digest")
        // Three batches went back: three can be taken again, and they are the same three (no new memory).
        let again = try (0 ..< 3).map { _ in try XCTUnwrap(queue.takeEmpty()) }
        XCTAssertEqual(Set(again.map(ObjectIdentifier.init)), Set(handed.map(ObjectIdentifier.init)))
        XCTAssertTrue(again.allSatisfy { $0.rowCount == 0 && $0.fileBytesRead == 0 }, "returned batches are emptied")
        queue.abandon()
        XCTAssertNil(queue.takeEmpty(), "an abandoned load gives the reader nothing more to fill")
    }
}
