import Crypto
import Foundation
import GRDB
@testable import MPCNode
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

    /// The import's byte path (ASCII identifiers normalised on bytes) and the string path (others) store what
    /// `IdentifierNormalization.apply` gives, for every normalisation; quoted fields with doubled quotes, line
    /// breaks and CRLF ends survive records that straddle the reader's 1 MiB chunks; the file's digest is the
    /// one of its bytes; a field that is not UTF-8 in a column not kept is still refused.
    func testBytePathAgreesWithStringPathAcrossChunksAndNormalisations() throws {
        let samples = ["  Bob@Example.COM ", "\u{3000}ÉRIC@exemple.fr\u{00A0}", "+44 (0)20 7946-0000", "\t12 34\r", "ǅungla\u{2003}", "x\"y", "a,b"]
        var text = "id,note\r\n"
        var expected: [[String]] = []
        for i in 0..<40_000 {
            let raw = samples[i % samples.count] + "\(i)"
            // Quoted when it must be and on every other row: plain records (the reader's fast path) and quoted
            // ones (its full parser) interleave across chunk boundaries.
            let mustQuote = raw.contains(where: { $0 == "\"" || $0 == "," || $0 == "\r" || $0 == "\n" })
            let quoted = mustQuote || i % 2 == 0 ? "\"" + raw.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : raw
            let note = i % 3 == 0 ? "\"line one\nline \"\"two\"\"\"" : "plain \(i)"
            text += "\(quoted),\(note)" + (i % 5 == 0 ? "\n" : "\r\n")
            expected.append([raw, i % 3 == 0 ? "line one\nline \"two\"" : "plain \(i)"])
        }
        let path = try write("mixed.csv", Array(text.utf8))
        XCTAssertGreaterThan(text.utf8.count, 1 << 20, "the file spans more than one of the reader's chunks")
        let catalog = DatasetCatalog(store: store)
        let normalisations = [IdentifierNormalization(), IdentifierNormalization(trim: true, caseFold: true),
                              IdentifierNormalization(trim: true, digitsOnly: true), IdentifierNormalization(trim: false)]
        for (k, normalisation) in normalisations.enumerated() {
            let info = try catalog.importCSV(DatasetImportRequest(dataset: "mixed\(k)", csvPath: path, idColumn: "id", normalization: normalisation))
            XCTAssertEqual(info.rowCount, expected.count)
            let stored = try store.pool.read { db in
                try Row.fetchAll(db, sql: "SELECT id, note FROM \(NodeStore.quote(NodeStore.tableName(forDataset: "mixed\(k)"))) ORDER BY _row").map { [$0[0] as String, $0[1] as String] }
            }
            XCTAssertEqual(stored.count, expected.count)
            for (row, want) in zip(stored, expected).prefix(2000) {
                XCTAssertEqual(row, [normalisation.apply(want[0]), want[1]], "\(normalisation)")
            }
            XCTAssertEqual(stored.last, [normalisation.apply(expected.last![0]), expected.last![1]])
            XCTAssertEqual(info.sourceSHA256, SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined())
        }
        let bad = try write("bad.csv", Array("id,other\n1,ok\n2,".utf8) + [0xC3, 0x28] + Array("\n".utf8))
        XCTAssertThrowsError(try catalog.importCSV(DatasetImportRequest(dataset: "bad", csvPath: bad, idColumn: "id", columns: ["id"]))) {
            XCTAssertTrue("\($0)".contains("line 3") && "\($0)".contains("not valid UTF-8"), "\($0)")
        }
    }
}
