import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// An error the API answers with: a status and a JSON body `{"error": {"code", "message"}}` whose
/// message says what to do next.
struct APIError: Error, HTTPResponseError {
    var status: HTTPResponse.Status
    var code: String
    var message: String
    var headers: HTTPFields = [:]

    init(_ status: HTTPResponse.Status, _ code: String, _ message: String, headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers = self.headers
        headers[.contentType] = "application/json"
        headers[.cacheControl] = "no-store"
        let body = try JSONSerialization.data(withJSONObject: ["error": ["code": code, "message": message]], options: [.sortedKeys])
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

/// Turns every error into the API's JSON error shape (Hummingbird's own ones included: an unknown
/// route, a body over the limit).
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The API's paths and their methods: another method on one of them is a 405 with `Allow`, not a 404.
    static var methods: [String: [HTTPRequest.Method]] {
        ["/v1/lookups": [.post], "/v1/lookups/lists": [.get], "/v1/health": [.get]]
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch let error as HTTPError where error.status == .notFound {
            if let allowed = Self.methods[request.uri.path], !allowed.contains(request.method) {
                let list = allowed.map(\.rawValue).joined(separator: ", ")
                throw APIError(.methodNotAllowed, "method_not_allowed", "\(request.uri.path) takes \(list)", headers: [.allow: list])
            }
            throw APIError(.notFound, "not_found", "no such path: see Docs/api/openapi.yaml")
        } catch let error as HTTPError {
            let code: String
            switch error.status {
            case .notFound: code = "not_found"
            case .methodNotAllowed: code = "method_not_allowed"
            case .contentTooLarge: code = "request_too_large"
            default: code = "http_\(error.status.code)"
            }
            throw APIError(error.status, code, error.body ?? error.status.reasonPhrase, headers: error.headers)
        } catch {
            context.logger.error("API request failed", metadata: ["error": "\(error)"])
            throw APIError(.internalServerError, "internal", "the node could not answer: \(error)")
        }
    }
}
