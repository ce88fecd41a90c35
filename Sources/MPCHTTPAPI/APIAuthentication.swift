import Foundation
import HTTPTypes
import Hummingbird
import MPCNode

/// The caller of a request once authenticated, and what it may do.
struct APICaller: Sendable {
    var name: String
    var roles: Set<HTTPAPISettings.Role>
}

/// The request context: the authenticated caller, and this API's body limit.
struct APIRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    var caller: APICaller?
    var maximumBodyBytes = 1 << 20

    init(source: Source) { coreContext = .init(source: source) }

    var maxUploadSize: Int { maximumBodyBytes }
}

/// No anonymous access: a bearer token configured on the node, or a connection whose TLS handshake
/// verified a client certificate of the bank's internal CA (`http.tls.client_ca`; the TLS layer refuses
/// a connection without one). A wrong or missing token is a 401 that says how to authenticate.
struct APIAuthentication: RouterMiddleware {
    typealias Context = APIRequestContext
    let settings: HTTPAPISettings

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.maximumBodyBytes = settings.maximumRequestBytes
        // Liveness and readiness probes say nothing but "up" and "ready": open to an orchestrator's probe.
        // So are the console's three static files (they hold no data; the page asks the API with a token).
        let path = request.uri.path
        if OperationsRoutes.openPaths.contains(path) || path == ConsoleRoutes.prefix || path.hasPrefix(ConsoleRoutes.prefix + "/") {
            return try await next(request, context)
        }
        if let authorization = request.headers[.authorization] {
            let parts = authorization.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "bearer", let token = settings.token(presented: String(parts[1])) else {
                throw APIError(.unauthorized, "unauthorized", "the bearer token is not one this node knows",
                               headers: [.wwwAuthenticate: "Bearer realm=\"mpcnode\", error=\"invalid_token\""])
            }
            context.caller = APICaller(name: token.name, roles: token.roles)
        } else if let tls = settings.tls, tls.clientCA != nil {
            context.caller = APICaller(name: "client-certificate", roles: tls.clientRoles)
        } else {
            throw APIError(.unauthorized, "unauthorized", "send Authorization: Bearer <token> (a token configured under http.tokens of this node)",
                           headers: [.wwwAuthenticate: "Bearer realm=\"mpcnode\""])
        }
        return try await next(request, context)
    }
}

extension APIRequestContext {
    func has(_ role: HTTPAPISettings.Role) -> Bool { caller?.roles.contains(role) ?? false }

    /// One of `roles` is enough.
    func requireAny(_ roles: HTTPAPISettings.Role...) throws {
        guard let caller, !caller.roles.isDisjoint(with: roles) else {
            throw APIError(.forbidden, "forbidden", "this caller (\(caller?.name ?? "anonymous")) has none of the roles \(roles.map(\.rawValue).joined(separator: ", "))")
        }
    }

    func require(_ role: HTTPAPISettings.Role) throws {
        guard let caller, caller.roles.contains(role) else {
            throw APIError(.forbidden, "forbidden", "this caller (\(caller?.name ?? "anonymous")) lacks the role '\(role.rawValue)'")
        }
    }
}
