import Foundation
import HTTPTypes
import Hummingbird
import MPCNode
import NIOCore

/// `POST /v1/lookups` and `GET /v1/lookups/lists` (Docs/api/openapi.yaml).
struct LookupRoutes {
    let querier: LookupQuerierService
    let holder: LookupHolderService
    let nodeID: String
    let settings: HTTPAPISettings
    let metrics: NodeMetrics

    /// The body, checked member by member (a null or a number where a string belongs is a 400, as the
    /// OpenAPI document says, not silently an absent member).
    struct LookupRequest {
        var key: String?
        var keys: [String]?
        var lists: [String]?

        init(json: Data) throws {
            let object: [String: Any]
            do {
                guard let o = try JSONSerialization.jsonObject(with: json) as? [String: Any] else { throw Malformed.notAnObject }
                object = o
            } catch {
                throw APIError(.badRequest, "malformed_json", "the body is not a JSON object {\"key\": \"…\"} or {\"keys\": [\"…\"]}: \(LookupRoutes.describe(error))")
            }
            func strings(_ name: String) throws -> [String]? {
                guard let value = object[name] else { return nil }
                guard let array = value as? [Any], let strings = array as? [String] else {
                    throw APIError(.badRequest, "malformed_json", "\"\(name)\" must be an array of strings")
                }
                return strings
            }
            if let value = object["key"] {
                guard let key = value as? String else { throw APIError(.badRequest, "malformed_json", "\"key\" must be a string") }
                self.key = key
            }
            keys = try strings("keys")
            lists = try strings("lists")
            if keys?.isEmpty == true { throw APIError(.badRequest, "no_key", "\"keys\" is empty: give at least one key") }
        }

        enum Malformed: Error, CustomStringConvertible {
            case notAnObject
            var description: String { "not an object" }
        }
    }

    struct LookupResponse: Encodable {
        var node: String
        var results: [LookupKeyResult]
        var elapsedMilliseconds: Double

        enum CodingKeys: String, CodingKey { case node, results, elapsedMilliseconds = "elapsed_ms" }
    }

    struct ListsResponse: Encodable {
        var node: String
        var subscribed: [LookupListStatus]
        var offered: [OfferedListStatus]
    }

    func add(to router: Router<APIRequestContext>) {
        router.post("/v1/lookups") { request, context in try await lookup(request, context: context) }
        router.get("/v1/lookups/lists") { _, context in
            try context.require(.read)
            return try Self.json(ListsResponse(node: nodeID, subscribed: await querier.status(), offered: await holder.offeredStatus()))
        }
        router.get("/v1/health") { _, _ in
            try Self.json(["status": "ok", "node": nodeID])
        }
    }

    func lookup(_ request: Request, context: APIRequestContext) async throws -> Response {
        try context.require(.lookup)
        let started = ContinuousClock.now
        guard let type = request.headers[.contentType], type.lowercased().hasPrefix("application/json") else {
            throw APIError(.unsupportedMediaType, "unsupported_media_type", "send the request as Content-Type: application/json")
        }
        if let length = request.headers[.contentLength].flatMap(Int.init), length > settings.maximumRequestBytes {
            throw APIError(.contentTooLarge, "request_too_large", "the request has \(length) bytes; this node takes at most \(settings.maximumRequestBytes)")
        }
        let body: ByteBuffer
        do { body = try await request.body.collect(upTo: settings.maximumRequestBytes) } catch {
            throw APIError(.contentTooLarge, "request_too_large", "the request is over \(settings.maximumRequestBytes) bytes")
        }
        let parsed = try LookupRequest(json: Data(body.readableBytesView))
        var keys = parsed.keys ?? []
        if let key = parsed.key { keys.insert(key, at: 0) }
        guard !keys.isEmpty else { throw APIError(.badRequest, "no_key", "give a key (\"key\") or a batch (\"keys\")") }
        guard keys.count <= settings.maximumBatchKeys else {
            throw APIError(.contentTooLarge, "too_many_keys", "\(keys.count) keys in one request; this node takes at most \(settings.maximumBatchKeys)")
        }
        let lists: [LookupSubscriptions.Subscription]?
        do { lists = try LookupRequestLists.parse(parsed.lists) } catch { throw APIError(.badRequest, "bad_list", "\(error)") }
        let results: [LookupKeyResult]
        do { results = try await querier.lookup(keys, lists: lists) } catch let error as LookupServiceError {
            switch error {
            case .badKey(let detail): throw APIError(.badRequest, "bad_key", detail)
            case .notSubscribed: throw APIError(.notFound, "unknown_list", "\(error)")
            case .noLists: throw APIError(.serviceUnavailable, "no_lists", "\(error)")
            case .notAList: throw APIError(.badRequest, "bad_list", "\(error)")
            }
        }
        let duration = ContinuousClock.now - started
        let listed = results.filter(\.listed).count
        let incomplete = results.filter { !$0.listed && !$0.notAsked.isEmpty }.count
        metrics.lookups(listed: listed, notListed: results.count - listed - incomplete, incomplete: incomplete, duration: duration)
        let elapsed = Double(duration / .microseconds(1)) / 1000
        return try Self.json(LookupResponse(node: nodeID, results: results, elapsedMilliseconds: elapsed))
    }

    static func json(_ value: some Encodable) throws -> Response {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(value)
        return Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
                        body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func describe(_ error: Error) -> String {
        switch error {
        case DecodingError.typeMismatch(_, let c), DecodingError.valueNotFound(_, let c), DecodingError.dataCorrupted(let c):
            let path = c.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? c.debugDescription : "\(path): \(c.debugDescription)"
        case DecodingError.keyNotFound(let k, _): return "missing \(k.stringValue)"
        default: return "\(error)"
        }
    }
}
