import Foundation
import GRDB

/// Documents stored as JSON in a table with `id`, `job_id`, `created_at` and `body` columns (reports,
/// models): listed newest first, found by their id or their job's id.
///
/// The store has its own coding (`StoredDocumentCoding`), independent of the admin endpoint's: each body
/// is `{"format": N, "document": …}`, so a later change of a document's shape can read the rows already
/// stored by their format. Bodies written before the envelope (format 1, bare) are read as they are.
struct JSONDocuments<Document: Codable>: Sendable {
    let store: NodeStore
    let table: String
    let missing: @Sendable (String) -> Error

    func list(limit: Int) throws -> [Document] {
        try store.read { db in
            try String.fetchAll(db, sql: "SELECT body FROM \(table) ORDER BY created_at DESC LIMIT ?", arguments: [limit])
                .map(StoredDocumentCoding.decode)
        }
    }

    func get(_ id: String) throws -> Document {
        try store.read { db in
            guard let body = try String.fetchOne(db, sql: "SELECT body FROM \(table) WHERE id = ? OR job_id = ?", arguments: [id, id]) else {
                throw missing(id)
            }
            return try StoredDocumentCoding.decode(body)
        }
    }

    static func body(_ document: Document) throws -> String { try StoredDocumentCoding.encode(document) }
}

/// How the store writes documents: ISO 8601 dates, sorted keys, in a versioned envelope.
enum StoredDocumentCoding {
    /// The format written now. 2: the envelope around the format-1 document.
    static let format = 2

    private struct Envelope<D: Codable>: Codable {
        var format: Int
        var document: D
    }

    private struct FormatOnly: Decodable { var format: Int? }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.dateEncodingStrategy = .iso8601
        e.outputFormatting = [.sortedKeys]
        return e
    }()

    static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .iso8601
        return d
    }()

    static func encode<D: Codable>(_ document: D) throws -> String {
        String(decoding: try encoder.encode(Envelope(format: format, document: document)), as: UTF8.self)
    }

    static func decode<D: Codable>(_ body: String) throws -> D {
        let data = Data(body.utf8)
        switch try decoder.decode(FormatOnly.self, from: data).format {
        case nil: return try decoder.decode(D.self, from: data)  // format 1: the bare document
        case 2?: return try decoder.decode(Envelope<D>.self, from: data).document
        case let other?: throw StoreError.unknownDocumentFormat(other, supported: format)
        }
    }
}
