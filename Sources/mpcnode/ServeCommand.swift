import ArgumentParser
import Foundation
import Logging
import MPCHTTPAPI
import MPCNode
import ServiceLifecycle
import UnixSignals

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the node daemon until SIGINT or SIGTERM.",
        discussion: "Refuses to start when the node's certificate is expired, not issued by the consortium CA, or for another node id.")

    @OptionGroup var options: ConfigOption
    @Option(help: "Log format: json or text.") var logFormat: String = "json"
    @Option(help: "Log level: trace, debug, info, notice, warning, error.") var logLevel: String = "info"

    func run() async throws {
        Self.bootstrapLogging(format: logFormat, level: logLevel)
        let logger = Logger(label: "mpcnode")
        let configuration: NodeConfiguration
        let runtime: NodeRuntime
        var api: HTTPAPIServer?
        do {
            configuration = try NodeConfiguration.load(path: options.path)
            runtime = try await NodeRuntime.start(configuration: configuration, logger: logger, faults: Self.faultHooks())
            if let http = configuration.http {
                do { api = try await HTTPAPIServer.start(node: runtime, settings: http, logger: logger) } catch {
                    await runtime.stop()
                    throw error
                }
            }
        } catch {
            logger.critical("cannot start", metadata: ["error": "\(error)"])
            throw CLIFailure("cannot start: \(error)")
        }
        let group = ServiceGroup(services: [NodeService(runtime: runtime, api: api), CertificateReloadService(runtime: runtime, logger: logger)],
                                 gracefulShutdownSignals: [.sigterm, .sigint], cancellationSignals: [], logger: logger)
        try await group.run()
    }
}

extension ServeCommand {
    /// Logs to standard error, as JSON lines (`json`) or text, from `level` up (a daemon's and a worker's).
    static func bootstrapLogging(format: String, level: String) {
        let level = Logger.Level(rawValue: level) ?? .info
        let json = format == "json"
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler = json ? JSONLogHandler(label: label) : StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }

    /// End-to-end tests of dropouts make a daemon exit after a secure-aggregation round with
    /// `MPCNODE_FAULT_EXIT_AFTER_SECAGG_ROUND`, or after recording a PSI bucket with
    /// `MPCNODE_FAULT_EXIT_AFTER_PSI_BUCKET`; only a debug build reads them.
    static func faultHooks() -> FaultHooks? {
        #if DEBUG
        let environment = ProcessInfo.processInfo.environment
        var hooks = environment["MPCNODE_FAULT_EXIT_AFTER_SECAGG_ROUND"].flatMap(FaultHooks.exitAfterSecureAggregationRound(named:))
        if let bucket = environment["MPCNODE_FAULT_EXIT_AFTER_PSI_BUCKET"].flatMap(Int.init) {
            hooks = hooks ?? FaultHooks()
            hooks?.exitAfterPSIBucket = bucket
        }
        return hooks
        #else
        nil
        #endif
    }
}

/// SIGHUP loads the node's certificate, key and CA files again without stopping (after a renewal:
/// `systemctl reload mpcnode`, `kill -HUP`), and so does a change of those files (`TLSFileWatch`, every
/// `tls.watch_seconds`); a file that does not verify is logged and nothing changes.
struct CertificateReloadService: Service {
    let runtime: NodeRuntime
    let logger: Logger
    func run() async throws {
        // Until the daemon stops (the signal sequence never ends by itself).
        let seconds = runtime.configuration.tls.watchSeconds
        let watch = seconds > 0 ? Task { await TLSFileWatch(runtime: runtime).run(every: .seconds(seconds)) } : nil
        defer { watch?.cancel() }
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            do { try runtime.reloadCertificates() } catch {
                logger.error("certificates not reloaded; the node keeps the ones it had", metadata: ["error": "\(error)"])
            }
        }
    }
}

/// Keeps the node running until a graceful shutdown is requested, then stops it.
struct NodeService: Service {
    let runtime: NodeRuntime
    let api: HTTPAPIServer?
    func run() async throws {
        try? await gracefulShutdown()
        await api?.stop()
        await runtime.stop()
    }
}
