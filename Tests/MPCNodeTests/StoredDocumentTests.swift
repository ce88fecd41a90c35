import Foundation
import GRDB
import XCTest
@testable import MPCNode

/// Reports and models are stored in the store's own versioned format, not the admin endpoint's coding:
/// rows written before the envelope still read, new rows carry their format, and a format this node does
/// not know is refused with what to do.
final class StoredDocumentTests: XCTestCase {
    func testFormatsOldAndNewAndUnknown() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mpcnode-docs-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try NodeStore(path: folder.appendingPathComponent("node.sqlite"))
        let reports = ReportRepository(store: store)
        let report = ReportView(id: "report-1", kind: nil, notes: nil, jobID: "job-1", specHash: "ab", coordinator: "coordinator",
                                createdAt: Date(timeIntervalSince1970: 1_700_000_000), startedAt: Date(timeIntervalSince1970: 1_699_999_990),
                                groupBy: "risk", measures: ["sum(balance)"], decimals: 2, minCellRecords: 10, minCellParties: 2,
                                included: ["bank-a", "bank-b"], dropped: [], participantAuditHashes: [:],
                                cells: [.init(group: "low", records: 12, parties: 2, values: ["sum(balance)": "10.50"], suppressed: false, suppressionReason: nil)])
        // A row as a node before the envelope wrote it (the bare document, ISO 8601 dates).
        let bare = JSONEncoder()
        bare.dateEncodingStrategy = .iso8601
        let old = String(decoding: try bare.encode(report), as: UTF8.self)
        try store.write { db in
            try db.execute(sql: "INSERT INTO report (id, job_id, spec_hash, coordinator, created_at, body) VALUES (?, ?, 'ab', 'coordinator', ?, ?)", arguments: ["report-1", "job-1", report.createdAt, old])
        }
        XCTAssertEqual(try reports.get("report-1").cells.first?.values["sum(balance)"], "10.50")
        // A new row carries its format.
        var second = report
        second.id = "report-2"; second.jobID = "job-2"
        try store.write { db in try reports.insert(db, second) }
        let body = try store.read { db in try String.fetchOne(db, sql: "SELECT body FROM report WHERE id = 'report-2'") } ?? ""
        XCTAssertTrue(body.hasPrefix("{\"document\":") && body.contains("\"format\":\(StoredDocumentCoding.format)"), body)
        XCTAssertEqual(try reports.get("job-2").included, ["bank-a", "bank-b"])
        XCTAssertEqual(try reports.list().count, 2)
        // A format from a newer node is refused, naming it.
        try store.write { db in
            try db.execute(sql: "INSERT INTO report (id, job_id, spec_hash, coordinator, created_at, body) VALUES ('report-3', 'job-3', 'ab', 'coordinator', ?, ?)",
                           arguments: [Date(), "{\"format\": 9, \"document\": {}}"])
        }
        XCTAssertThrowsError(try reports.get("report-3")) { XCTAssertTrue("\($0)".contains("format 9"), "\($0)") }
    }
}
