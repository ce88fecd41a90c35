import Foundation
import MPCNode
import XCTest

/// Files as they come from other systems: a byte-order mark, an absurd identifier, a header line of
/// 50 MB. Each is read or refused quickly, with a short message, and nothing stored is touched.
final class CSVEdgeCaseTests: XCTestCase {
    var folder: URL!
    var store: NodeStore!
    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("mpcnode-csv-\(UUID().uuidString)")
        store = try NodeStore(path: folder.appendingPathComponent("node.sqlite"))
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let url = folder.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }

    func testAByteOrderMarkIsSkipped() throws {
        let path = try write("bom.csv", [0xEF, 0xBB, 0xBF] + Array("phone,name\n+44 7700 900001,Ann\n+44 7700 900002,Bo\n".utf8))
        let info = try DatasetCatalog(store: store).importCSV(DatasetImportRequest(dataset: "bom", csvPath: path, idColumn: "phone"))
        XCTAssertEqual(info.columns, ["phone", "name"], "no \\u{FEFF} in the first column's name")
        XCTAssertEqual(info.rowCount, 2)
    }

    func testOversizedIdentifiersAndHeadersAreRefusedQuicklyWithAShortMessage() throws {
        let catalog = DatasetCatalog(store: store)
        let good = try write("good.csv", Array("phone\n1\n2\n3\n".utf8))
        try catalog.importCSV(DatasetImportRequest(dataset: "kept", csvPath: good, idColumn: "phone"))

        let cases: [(String, [UInt8], String)] = [
            ("identifier", Array("phone\n".utf8) + [UInt8](repeating: UInt8(ascii: "7"), count: 5000) + Array("\n".utf8), "identifier of 5000 bytes"),
            ("field", Array("phone,note\n1,".utf8) + [UInt8](repeating: UInt8(ascii: "x"), count: 200_000) + Array("\n".utf8), "longer than 65536 bytes"),
            ("header", [UInt8](repeating: UInt8(ascii: "h"), count: 50 << 20) + Array("\n1\n".utf8), "longer than 65536 bytes"),
            ("hidden", [0xE2, 0x80, 0x8B] + Array("phone\n1\n".utf8), "\\u{200B}phone"),  // a zero-width space is shown, not hidden
        ]
        for (what, bytes, expected) in cases {
            let path = try write("\(what).csv", bytes)
            let started = Date()
            XCTAssertThrowsError(try catalog.importCSV(DatasetImportRequest(dataset: "bad_\(what)", csvPath: path, idColumn: "phone")), what) { error in
                let message = "\(error)"
                XCTAssertTrue(message.contains(expected), "\(what): \(message.prefix(300))")
                XCTAssertLessThan(message.utf8.count, 600, "\(what): the message is cut")
            }
            XCTAssertLessThan(Date().timeIntervalSince(started), 10, "\(what) is refused without reading it all")
        }
        XCTAssertEqual(try catalog.list().map(\.name), ["kept"], "nothing else was stored")
        XCTAssertEqual(try catalog.describe("kept").rowCount, 3)
    }
}
