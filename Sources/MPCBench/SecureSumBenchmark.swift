import Foundation
import MPCNode
import Logging
import MPCCrypto
import MPCIdentity
import MPCProtocols
import MPCTransport
import MPCWire
import NIOCore
import NIOPosix

/// `mpcnode bench secure-sum`: N clients and a server, each with its own certificate and TLS 1.3
/// transport, over loopback in this process; some clients drop out after sharing their keys. Checks
/// the delivered sum against the plain sum of the survivors, and measures ChaCha20 mask expansion in
/// the same run.
public struct SecureSumBenchmark {
    public struct Figures: Sendable {
        public var parties: Int
        public var length: Int
        public var dropouts: Int
        public var wallSeconds: Double
        public var roundsSeconds: Double
        public var bytesPerClient: Double
        public var chachaValuesPerSecond: Double
        public var sumCorrect: Bool
        public var included: Int
    }

    public let parties: Int
    public let length: Int
    public let dropouts: Int
    public let directory: URL

    public init(parties: Int, length: Int, dropouts: Int, directory: URL) {
        self.parties = parties
        self.length = length
        self.dropouts = dropouts
        self.directory = directory
    }

    /// Collects the clients' inbound sessions at the server.
    actor SessionCollector {
        var channels: [NodeID: TLSMessageChannel] = [:]
        var waiter: CheckedContinuation<Void, Never>?
        let expected: Int
        init(expected: Int) { self.expected = expected }
        func add(_ peer: NodeID, _ channel: TLSMessageChannel) {
            channels[peer] = channel
            if channels.count == expected { waiter?.resume(); waiter = nil }
        }
        func waitForAll() async {
            if channels.count == expected { return }
            await withCheckedContinuation { waiter = $0 }
        }
        /// Closes and lets go of the sessions: a session released after its event loop shut down would
        /// schedule its clean-up on a loop that no longer runs.
        func closeAll() async {
            for channel in channels.values { await channel.close() }
            channels = [:]
        }
    }

    struct ServerHandler: InboundConnectionHandler {
        let collector: SessionCollector
        func handleControl(_ request: Mpcnode_V1_ControlRequest, from peer: NodeIdentity) async -> Mpcnode_V1_ControlResponse {
            .with { $0.ack = .init() }
        }
        func handleSession(_ open: Mpcnode_V1_SessionOpen, from peer: NodeIdentity, channel: TLSMessageChannel) async {
            await collector.add(peer.nodeID, channel)
            await channel.waitUntilClosed()
        }
    }

    public func run(log: (String) -> Void) async throws -> Figures {
        // ChaCha20 expansion rate on this machine, now.
        let probe = 4_000_000
        var started = Date()
        _ = MaskExpansion.expand(seed: MaskExpansion.randomSeed(), count: probe)
        let chachaRate = Double(probe) / Date().timeIntervalSince(started)
        log(String(format: "ChaCha20 mask expansion: %.0f M values/s (%.2f GB/s) on one core", chachaRate / 1e6, chachaRate * 8 / 1e9))

        log("issuing \(parties + 1) certificates…")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let ca = try ConsortiumCA.create(name: "Bench consortium")
        let caPath = directory.appendingPathComponent("ca.pem")
        try ca.certificatePEM.write(to: caPath, atomically: true, encoding: .utf8)
        func issue(_ id: String, _ role: NodeRole) throws -> TLSMaterial {
            let issued = try ca.issue(nodeID: id, role: role)
            let cert = directory.appendingPathComponent("\(id).pem"), key = directory.appendingPathComponent("\(id)-key.pem")
            try issued.certificatePEM.write(to: cert, atomically: true, encoding: .utf8)
            try issued.privateKeyPEM.write(to: key, atomically: true, encoding: .utf8)
            return TLSMaterial(certificatePath: cert.path, privateKeyPath: key.path, caCertificatePath: caPath.path)
        }
        let names = (0..<parties).map { String(format: "branch-%03d", $0) }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        var logger = Logger(label: "bench")
        logger.logLevel = .critical
        let serverMaterial = try issue("regulator", .regulator)
        let serverTransport = try PeerTransport(identity: NodeIdentity(nodeID: "regulator", role: .regulator), material: serverMaterial,
                                                group: group, logger: logger)
        let collector = SessionCollector(expected: parties)
        let listener = try await serverTransport.bind(host: "127.0.0.1", port: 0, handler: ServerHandler(collector: collector))
        let listening = Task { try await listener.run() }
        let address = PeerAddress(host: "127.0.0.1", port: listener.port)

        var clients: [(String, PeerTransport, KeyAuthentication, [UInt64])] = []
        var plain = [UInt64](repeating: 0, count: length)
        let dropping = Set(names.suffix(dropouts))
        for (i, name) in names.enumerated() {
            let material = try issue(name, .bank)
            let transport = try PeerTransport(identity: NodeIdentity(nodeID: name, role: .bank), material: material, group: group, logger: logger)
            let signatures = try CertificateSignatures(certificatePath: material.certificatePath, privateKeyPath: material.privateKeyPath,
                                                       caPath: caPath.path)
            let auth = KeyAuthentication(certificateDER: signatures.certificateDER, sign: { try signatures.sign($0) },
                                         verify: { try signatures.verify(signature: $0, message: $1, nodeID: $2, certificateDER: $3) })
            let input = (0..<length).map { UInt64(($0 &* 31 &+ i &* 7) % 1_000_003) }
            if !dropping.contains(name) { for j in 0..<length { plain[j] &+= input[j] } }
            clients.append((name, transport, auth, input))
        }
        let parameters = SecureAggregationParameters(jobID: "bench-secure-sum", clients: names, server: "regulator", length: length,
                                                     roundTimeout: .seconds(60))
        log("running: \(parties) parties × \(length) values, \(dropouts) dropping out after sharing their keys…")
        started = Date()
        let clientTasks = clients.map { (name, transport, auth, input) in
            Task { () -> UInt64 in
                try await transport.withSession(jobID: parameters.jobID, to: "regulator", at: address) { channel in
                    _ = try? await SecureAggregationClient(parameters: parameters, me: name, input: input, channel: channel,
                                                           authentication: auth, stopAfter: dropping.contains(name) ? .shareKeys : nil).run()
                    return channel.bytesSent + channel.bytesReceived
                }
            }
        }
        await collector.waitForAll()
        let roundsStarted = Date()
        let outcome = try await SecureAggregationServer(parameters: parameters, channels: await collector.channels).run()
        let roundsSeconds = Date().timeIntervalSince(roundsStarted)
        var clientBytes: UInt64 = 0
        for task in clientTasks { clientBytes += (try? await task.value) ?? 0 }
        let wall = Date().timeIntervalSince(started)
        await collector.closeAll()
        listening.cancel()
        await listener.close()
        _ = try? await listening.value
        try? await group.shutdownGracefully()
        return Figures(parties: parties, length: length, dropouts: dropouts, wallSeconds: wall, roundsSeconds: roundsSeconds,
                       bytesPerClient: Double(clientBytes) / Double(parties), chachaValuesPerSecond: chachaRate,
                       sumCorrect: outcome.sum == plain && outcome.included.count == parties - dropouts,
                       included: outcome.included.count)
    }
}
