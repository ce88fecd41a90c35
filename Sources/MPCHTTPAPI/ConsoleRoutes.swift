import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The web console (`/console`): three static files compiled into the binary (`ConsoleAssets`), no build
/// step, no CDN. They hold no data: the page asks the API with the token its user types in (kept in the
/// tab's sessionStorage and sent as a bearer header, never as a cookie, so another site cannot make the
/// browser act with it). A strict Content-Security-Policy allows only these files.
struct ConsoleRoutes {
    static let prefix = "/console"

    func add(to router: Router<APIRequestContext>) {
        router.get("/console") { _, _ in Self.asset(ConsoleAssets.html, type: "text/html; charset=utf-8") }
        router.get("/console/app.js") { _, _ in Self.asset(ConsoleAssets.script, type: "text/javascript; charset=utf-8") }
        router.get("/console/app.css") { _, _ in Self.asset(ConsoleAssets.style, type: "text/css; charset=utf-8") }
    }

    static func asset(_ text: String, type: String) -> Response {
        Response(status: .ok, headers: [
            .contentType: type, .cacheControl: "no-cache",
            HTTPField.Name("Content-Security-Policy")!: "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
            HTTPField.Name("X-Content-Type-Options")!: "nosniff", HTTPField.Name("Referrer-Policy")!: "no-referrer",
        ], body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
