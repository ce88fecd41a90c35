import Foundation
import GRDB
import MPCNode
import XCTest

/// Bad input gets a clear error with the line, and nothing already stored is lost or changed.
final class DatasetImportTests: XCTestCase {
    var directory: URL!
    var catalog: DatasetCatalog!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("mpcnode-import-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        catalog = DatasetCatalog(store: try NodeStore(path: directory.appendingPathComponent("node.sqlite")))
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    func file(_ name: String, _ text: String) throws -> String {
        let url = directory.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    func request(_ path: String, id: String = "phone", replace: Bool = false, normalization: IdentifierNormalization = .init()) -> DatasetImportRequest {
        DatasetImportRequest(dataset: "customers", csvPath: path, idColumn: id, normalization: normalization, replace: replace)
    }

    func testQuotedFieldsNormalisationAndDescribe() throws {
        let path = try file("ok.csv", "name,phone,note\n\"Smith, Jo\",\" +44 (0)20 7946-0001 \",\"said \"\"hi\"\"\"\r\nLee,+44 20 7946 0002,\"two\nlines\"\n\n")
        let info = try catalog.importCSV(request(path, normalization: IdentifierNormalization(trim: true, digitsOnly: true)))
        XCTAssertEqual(info.rowCount, 2)
        XCTAssertEqual(info.columns, ["name", "phone", "note"])
        let rows = try catalog.store.read { db in try Row.fetchAll(db, sql: "SELECT name, phone, note FROM ds_customers ORDER BY _row") }
        XCTAssertEqual(rows.map { $0["phone"] as String }, ["4402079460001", "442079460002"])
        XCTAssertEqual(rows.map { $0["name"] as String }, ["Smith, Jo", "Lee"])
        XCTAssertEqual(rows.map { $0["note"] as String }, ["said \"hi\"", "two\nlines"])
        XCTAssertEqual(try catalog.describe("customers").distinctIdentifiers, 2)
        XCTAssertEqual(try catalog.list().map(\.name), ["customers"])
    }

    func testMalformedFilesAreRejectedWithTheLineAndNothingIsStored() throws {
        let good = try file("good.csv", "phone,balance\n111,1\n222,2\n333,3\n")
        try catalog.importCSV(request(good))
        let before = try catalog.describe("customers")
        let auditBefore = try AuditLog(store: catalog.store).records(limit: 1000).count

        let cases: [(String, String, String)] = [
            ("short.csv", "phone,balance\n444,4\n555\n666,6\n", "line 3: 1 fields where the header has 2"),
            ("quote.csv", "phone,balance\n444,4\n5\"55,5\n", "line 3: quote inside an unquoted field 1"),
            ("open.csv", "phone,balance\n444,4\n\"555,5\n", "line 3: quoted field not closed"),
            ("emptyid.csv", "phone,balance\n444,4\n  ,5\n", "line 3: empty identifier in column 'phone'"),
            ("late.csv", "phone,balance\n" + (0..<5000).map { "\($0),1\n" }.joined() + "x,y,z\n", "line 5002: 3 fields"),
        ]
        for (name, text, expected) in cases {
            let path = try file(name, text)
            XCTAssertThrowsError(try catalog.importCSV(request(path, replace: true)), name) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(name): \(error)")
                XCTAssertTrue("\(error)".contains("nothing was imported"), "\(name): \(error)")
            }
            // The dataset that was there is untouched: same rows, same source.
            let after = try catalog.describe("customers")
            XCTAssertEqual(after.rowCount, before.rowCount, name)
            XCTAssertEqual(after.sourceSHA256, before.sourceSHA256, name)
            XCTAssertEqual(try catalog.store.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM ds_customers") }, 3, name)
        }
        XCTAssertEqual(try AuditLog(store: catalog.store).records(limit: 1000).count, auditBefore, "failed imports leave no audit record")
    }

    func testWrongColumnExistingDatasetAndBadNames() throws {
        let path = try file("a.csv", "phone,balance\n1,2\n")
        XCTAssertThrowsError(try catalog.importCSV(request(path, id: "msisdn"))) {
            XCTAssertEqual($0 as? StoreError, .missingColumn(column: "msisdn", header: ["phone", "balance"]))
        }
        try catalog.importCSV(request(path))
        XCTAssertThrowsError(try catalog.importCSV(request(path))) { XCTAssertEqual($0 as? StoreError, .datasetExists("customers")) }
        XCTAssertThrowsError(try catalog.importCSV(DatasetImportRequest(dataset: "Bad-Name", csvPath: path, idColumn: "phone"))) {
            XCTAssertEqual($0 as? StoreError, .invalidDatasetName("Bad-Name"))
        }
        XCTAssertThrowsError(try catalog.importCSV(request(try file("dup.csv", "phone,phone\n1,2\n"), replace: true))) {
            XCTAssertEqual($0 as? StoreError, .duplicateColumn("phone"))
        }
        XCTAssertThrowsError(try catalog.importCSV(request(try file("empty.csv", ""), replace: true)))
        XCTAssertThrowsError(try catalog.importCSV(request(directory.appendingPathComponent("missing.csv").path, replace: true)))
        XCTAssertEqual(try catalog.describe("customers").rowCount, 1)
    }

    func testAuditChainDetectsTampering() throws {
        try catalog.importCSV(request(try file("a.csv", "phone\n1\n2\n")))
        let audit = AuditLog(store: catalog.store)
        try audit.append(event: "test.event", jobID: "job-x", details: ["k": .int(1)])
        XCTAssertNil(try audit.verify())
        try catalog.store.write { db in try db.execute(sql: "UPDATE audit_log SET details = '{\"rows\":999}' WHERE seq = 1") }
        XCTAssertEqual(try audit.verify(), 1)
    }
}
