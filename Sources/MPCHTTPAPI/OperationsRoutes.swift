import Foundation
import HTTPTypes
import Hummingbird
import MPCNode
import NIOCore

/// What an operator's monitoring reads: `GET /metrics` (Prometheus text format; a token with the
/// `metrics` role) and the probes `GET /healthz` (the process answers) and `GET /readyz` (its database
/// answers: it can take work), which need no token and say nothing else.
struct OperationsRoutes {
    let node: NodeRuntime

    static let openPaths: Set<String> = ["/healthz", "/readyz"]

    func add(to router: Router<APIRequestContext>) {
        router.get("/metrics") { _, context in
            try context.require(.metrics)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8", .cacheControl: "no-store"],
                            body: .init(byteBuffer: ByteBuffer(bytes: node.metricsExposition())))
        }
        router.get("/healthz") { _, _ in Self.text(.ok, "ok\n") }
        router.get("/readyz") { _, _ in
            node.databaseAnswers() ? Self.text(.ok, "ready\n") : Self.text(.serviceUnavailable, "not ready: the database does not answer\n")
        }
    }

    static func text(_ status: HTTPResponse.Status, _ body: String) -> Response {
        Response(status: status, headers: [.contentType: "text/plain; charset=utf-8", .cacheControl: "no-store"],
                 body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}
