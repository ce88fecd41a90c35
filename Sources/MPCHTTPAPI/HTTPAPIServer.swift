import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import MPCNode
import NIOCore
import NIOSSL
import ServiceLifecycle

/// The node's local HTTP API (`http:` in its configuration; Docs/api/openapi.yaml), on a listener apart
/// from the peer port, for the bank's own systems. Started beside a running node; stops with it.
public final class HTTPAPIServer: Sendable {
    public let port: Int
    let group: ServiceGroup
    let task: Task<Void, Error>

    private init(port: Int, group: ServiceGroup, task: Task<Void, Error>) { self.port = port; self.group = group; self.task = task }

    /// Binds and serves until `stop()`. Throws when the address cannot be bound or the TLS files are unusable.
    public static func start(node: NodeRuntime, settings: HTTPAPISettings, logger: Logger) async throws -> HTTPAPIServer {
        let router = Router(context: APIRequestContext.self)
        router.add(middleware: JSONErrorMiddleware())
        router.add(middleware: APIAuthentication(settings: settings))
        LookupRoutes(querier: node.lookupQuerier, holder: node.lookupHolder, nodeID: node.identity.nodeID, settings: settings,
                     metrics: node.metrics).add(to: router)
        OperationsRoutes(node: node).add(to: router)
        JobRoutes(node: node, settings: settings).add(to: router)
        RecordRoutes(node: node).add(to: router)
        ConsoleRoutes().add(to: router)

        var server: HTTPServerBuilder = .http1()
        if let tls = settings.tls {
            var configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(tls.certificate.path).map { .certificate($0) },
                privateKey: .file(tls.privateKey.path))
            configuration.minimumTLSVersion = .tlsv12
            if let ca = tls.clientCA {
                configuration.trustRoots = .file(ca.path)
                configuration.certificateVerification = .noHostnameVerification
            }
            server = try .tls(.http1(), tlsConfiguration: configuration)
        }
        let (stream, continuation) = AsyncStream<Int>.makeStream()
        var apiLogger = logger
        apiLogger[metadataKey: "component"] = "http-api"
        let app = Application(
            router: router, server: server,
            configuration: .init(address: .hostname(settings.listen.host, port: settings.listen.port), serverName: "mpcnode"),
            onServerRunning: { channel in
                continuation.yield(channel.localAddress?.port ?? 0)
                continuation.finish()
            },
            logger: apiLogger)
        // Its own service group, stopped by a graceful shutdown (requests in flight are answered).
        let group = ServiceGroup(services: [app], gracefulShutdownSignals: [], cancellationSignals: [], logger: apiLogger)
        let task = Task {
            defer { continuation.finish() }
            try await group.run()
        }
        var iterator = stream.makeAsyncIterator()
        guard let port = await iterator.next() else {
            let error: Error
            do { try await task.value; error = NodeError.cannotListen(address: settings.listen.description, detail: "the HTTP server stopped") } catch let e { error = e }
            throw NodeError.cannotListen(address: settings.listen.description, detail: "HTTP API: \(error)")
        }
        logger.info("HTTP API listening", metadata: ["address": "\(settings.listen.host):\(port)", "tls": "\(settings.tls != nil)",
                                                     "client_certificates": "\(settings.tls?.clientCA != nil)"])
        return HTTPAPIServer(port: port, group: group, task: task)
    }

    public func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
    }
}
