import Foundation
import GRDB

/// Documents stored as JSON in a table with `id`, `job_id`, `created_at` and `body` columns (reports,
/// models): listed newest first, found by their id or their job's id.
struct JSONDocuments<Document: Codable>: Sendable {
    let store: NodeStore
    let table: String
    let missing: @Sendable (String) -> Error

    func list(limit: Int) throws -> [Document] {
        try store.read { db in
            try String.fetchAll(db, sql: "SELECT body FROM \(table) ORDER BY created_at DESC LIMIT ?", arguments: [limit])
                .map { try AdminCoding.decoder.decode(Document.self, from: Data($0.utf8)) }
        }
    }

    func get(_ id: String) throws -> Document {
        try store.read { db in
            guard let body = try String.fetchOne(db, sql: "SELECT body FROM \(table) WHERE id = ? OR job_id = ?", arguments: [id, id]) else {
                throw missing(id)
            }
            return try AdminCoding.decoder.decode(Document.self, from: Data(body.utf8))
        }
    }

    static func body(_ document: Document) throws -> String {
        String(decoding: try AdminCoding.encoder.encode(document), as: UTF8.self)
    }
}
