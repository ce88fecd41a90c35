import Foundation
import Logging
import MPCIdentity
import MPCProtocols
import MPCWire
import NIOCore
import NIOPosix
import NIOSSL
import SwiftProtobuf
import Synchronization
import X509

/// A TLS connection wrapped for async use, and the identity its peer's certificate names (known once
/// the handshake completes). `channel` opens it for the one task that serves it; released unopened
/// (the listener closed as it was accepted), it closes itself.
struct PeerConnection: Sendable {
    let accepted: AcceptedConnection<ByteBuffer, ByteBuffer>
    let identity: EventLoopFuture<NodeIdentity>
    init(channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>, identity: EventLoopFuture<NodeIdentity>) {
        accepted = AcceptedConnection(channel)
        self.identity = identity
    }

    var channel: NIOAsyncChannel<ByteBuffer, ByteBuffer> { accepted.open() }
}

/// Where a peer listens.
public struct PeerAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public init(host: String, port: Int) { self.host = host; self.port = port }

    /// Parses "host:port".
    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
              (1...65535).contains(port) else { return nil }
        host = String(text[..<colon])
        guard !host.isEmpty else { return nil }
        self.port = port
    }

    public var description: String { "\(host):\(port)" }
}

/// What a node does with inbound connections. The peer's identity comes from its verified certificate.
public protocol InboundConnectionHandler: Sendable {
    /// Answers one control request.
    func handleControl(_ request: Mpcnode_V1_ControlRequest, from peer: NodeIdentity) async -> Mpcnode_V1_ControlResponse
    /// Serves one protocol session; the connection stays open until this returns.
    func handleSession(_ open: Mpcnode_V1_SessionOpen, from peer: NodeIdentity, channel: TLSMessageChannel) async
}

/// The node-to-node transport: TLS 1.3 with mutual authentication against the consortium CA, frames
/// of protobuf messages, one connection per control exchange or per job session.
public final class PeerTransport: Sendable {
    /// 2: identifiers hash onto X25519 with RFC 9380's hash_to_curve (Docs/decisions/0007), so blinded
    /// values differ from version 1's; nodes of the two versions refuse each other at the handshake
    /// instead of computing an empty intersection.
    /// 3: two-party PSI runs in buckets (Protocols/psi-buckets.md): it opens with `BucketHello`.
    /// 4: the bucket hellos name the round (`ecdh` or `kkrt`, Protocols/psi-oprf.md).
    /// 5: set operations in buckets open every attempt with the owners' sizes (before the key ring), and a
    /// data-less mixer has a "mixer" session (Protocols/multi-party-sets.md "Resume").
    public static let wireVersion: UInt32 = 5

    public let identity: NodeIdentity
    /// The TLS contexts new connections use; `reloadTLS` swaps them (connections already open keep theirs).
    private let contexts: Mutex<(server: NIOSSLContext, client: NIOSSLContext)>
    var serverContext: NIOSSLContext { contexts.withLock { $0.server } }
    var clientContext: NIOSSLContext { contexts.withLock { $0.client } }
    let group: EventLoopGroup
    public let options: TransportOptions
    let logger: Logger
    let admission: ConnectionAdmission

    public init(identity: NodeIdentity, material: TLSMaterial, group: EventLoopGroup,
                options: TransportOptions = TransportOptions(), logger: Logger = Logger(label: "mpcnode.transport")) throws {
        self.identity = identity
        self.contexts = Mutex((server: try material.makeServerContext(), client: try material.makeClientContext()))
        self.group = group
        self.options = options
        self.logger = logger
        self.admission = ConnectionAdmission(maximumPending: options.maximumPendingHandshakes,
                                             maximumPerPeer: options.maximumConnectionsPerPeer)
    }

    // MARK: Pipeline

    /// An accepted connection's pipeline, counted among those in their handshake until it completes.
    private func configureInbound(_ channel: Channel, tls: ChannelHandler, peerLabel: String) throws -> PeerConnection {
        let admission = self.admission
        let ticket = admission.beginHandshake(channel)
        let identity = try installHandlers(channel, tls: tls, peerLabel: peerLabel, inbound: true,
                                           handshakeSettled: { admission.endHandshake(ticket) })
        return PeerConnection(channel: try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel),
                              identity: identity)
    }

    /// The pipeline: TLS, handshake deadline, identity capture, (tap), idle limit and heartbeats,
    /// framing. Returns the peer's identity-to-be.
    private func installHandlers(_ channel: Channel, tls: ChannelHandler, peerLabel: String, inbound: Bool,
                                 handshakeSettled: @escaping @Sendable () -> Void = {}) throws -> EventLoopFuture<NodeIdentity> {
        let sync = channel.pipeline.syncOperations
        // Large frames are charged to the peer the handshake names (it completes before any frame).
        let peer = ConnectionPeerLabel()
        if let traffic = options.traffic {
            // First in the pipeline: the bytes on the wire (TLS records), once the peer is known.
            try sync.addHandler(TrafficCountingHandler(peer: peer, observer: traffic))
        }
        try sync.addHandler(tls)
        try sync.addHandler(HandshakeDeadlineHandler(timeout: options.handshakeTimeout, settled: handshakeSettled))
        let identity = PeerIdentityHandler(eventLoop: channel.eventLoop, revocations: revocations)
        try sync.addHandler(identity)
        if let tap = options.plaintextTap { try sync.addHandler(PlaintextTapHandler(peer: peerLabel, tap: tap)) }
        try sync.addHandler(IdleStateHandler(readTimeout: options.idleTimeout, writeTimeout: options.effectiveHeartbeatInterval))
        try sync.addHandler(ConnectionLivenessHandler(idleSeconds: Double(options.idleTimeout.nanoseconds) / 1e9))
        identity.identity.futureResult.whenSuccess { [traffic = options.traffic] in
            peer.set($0.nodeID)
            traffic?.connected($0.nodeID)
        }
        try sync.addHandler(ByteToMessageHandler(LengthPrefixedFrameDecoder(
            maximumFrameBytes: options.maximumFrameBytes, maximumFirstFrameBytes: inbound ? options.maximumHelloBytes : nil,
            budget: options.receiveBudget, peer: peer)))
        if inbound {
            let hello = FirstFrameDeadlineHandler(timeout: options.handshakeTimeout)
            try sync.addHandler(hello)
            identity.identity.futureResult.whenSuccess { _ in hello.start() }
        }
        try sync.addHandler(MessageToByteHandler(LengthPrefixedFrameEncoder()))
        return identity.identity.futureResult
    }

    static func identity(of certificate: NIOSSLCertificate?, revocations: Revocations? = nil) throws -> NodeIdentity {
        guard let certificate else { throw TransportError.noPeerCertificate }
        let parsed = try Certificate(derEncoded: certificate.toDERBytes())
        let identity = try NodeIdentity(certificate: parsed)
        if let entry = revocations?.entry(for: parsed) {
            throw IdentityError.revoked(nodeID: identity.nodeID, serial: entry.serial, reason: entry.reason)
        }
        return identity
    }

    /// The consortium's revoked certificates: a peer presenting one is refused once its handshake ends.
    let revocations = Revocations()

    public final class Revocations: Sendable {
        private let list = Mutex<RevocationList?>(nil)
        public func set(_ l: RevocationList?) { list.withLock { $0 = l } }
        /// The entry that revokes `certificate`, if any.
        func entry(for certificate: Certificate) -> RevocationList.Entry? {
            list.withLock { $0?.entry(for: certificate) }
        }
    }

    /// Puts a new revocation list in force for every connection from now on (nil: none).
    public func setRevocationList(_ list: RevocationList?) { revocations.set(list) }

    /// Loads the node's TLS files again (a renewed certificate, a new CA bundle): every connection made
    /// from now on uses them, those open finish with the old ones. Throws, changing nothing, when the
    /// files do not make a usable context.
    public func reloadTLS(_ material: TLSMaterial) throws {
        let server = try material.makeServerContext(), client = try material.makeClientContext()
        contexts.withLock { $0 = (server: server, client: client) }
    }

    // MARK: Server

    /// Binds the listener. Call `run()` on the result to accept connections until cancelled.
    public func bind(host: String, port: Int, handler: any InboundConnectionHandler) async throws -> PeerListener {
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try self.configureInbound(channel, tls: NIOSSLServerHandler(context: self.serverContext),
                                       peerLabel: "inbound \(channel.remoteAddress.map { "\($0)" } ?? "?")")
                }
            }
        return PeerListener(server: server, transport: self, handler: handler)
    }

    /// Serves one accepted connection: reads the peer's identity and `Hello`, then dispatches.
    func serve(_ peerConnection: PeerConnection, handler: any InboundConnectionHandler) async {
        let connection = peerConnection.channel
        do {
            try await connection.executeThenClose { inbound, _ in
                let channel = connection.channel
                // Known once the handshake (and the CA check of the client's certificate) completes; the
                // peer's connections are counted from then on, whether or not it ever sends its Hello.
                let peer = try await peerConnection.identity.get()
                guard admission.admit(peer.nodeID) else {
                    logger.warning("inbound connection closed: the peer has too many open",
                                   metadata: ["peer": "\(peer.nodeID)", "limit": "\(options.maximumConnectionsPerPeer)"])
                    return
                }
                defer { admission.release(peer.nodeID) }
                // The Hello must arrive in full within the handshake deadline (`FirstFrameDeadlineHandler`,
                // on the event loop: a member cannot park a connection with a trickled Hello).
                var iterator = inbound.makeAsyncIterator()
                guard let first = try await iterator.next() else { return }
                let hello = try Mpcnode_V1_Hello(serializedBytes: Array(first.readableBytesView))
                guard hello.wireVersion == Self.wireVersion else {
                    throw TransportError.unsupportedWireVersion(peer: peer.nodeID, version: hello.wireVersion)
                }
                switch hello.purpose {
                case .control(let request):
                    let response = await handler.handleControl(request, from: peer)
                    let bytes: [UInt8] = try response.serializedBytes()
                    try await channel.writeAndFlush(channel.allocator.buffer(bytes: bytes)).get()
                case .session(let open):
                    let session = TLSMessageChannel(peer: peer.nodeID, channel: channel, iterator: iterator)
                    await handler.handleSession(open, from: peer, channel: session)
                case nil:
                    throw TransportError.unexpectedFrame(peer: peer.nodeID, detail: "hello without a purpose")
                }
            }
        } catch {
            // A stranger's connection that never completed its handshake (cut at the deadline, evicted by a
            // flood, or closed by its sender) is routine noise at the port: debug only. Anything else, a
            // certificate refused included, is worth an operator's look.
            let unauthenticated = (try? await peerConnection.identity.get()) == nil
            let routine = unauthenticated && Self.isRoutineHandshakeEnd(error)
            if unauthenticated { options.inboundHandshakeFailed?(Self.handshakeFailureReason(error)) }
            logger.log(level: routine ? .debug : .warning, "inbound connection ended with an error",
                       metadata: ["error": "\(TLSMessageChannel.describe(error))"])
        }
    }

    /// Why a handshake failed, as one of: timeout, closed, unknown_ca, certificate_verify_failed,
    /// certificate_expired, not_a_member (a certificate of the CA naming no node), other.
    public static func handshakeFailureReason(_ error: Error) -> String {
        if case TransportError.handshakeTimedOut = error { return "timeout" }
        if isRoutineHandshakeEnd(error) { return "closed" }
        let text = "\(error)".uppercased()
        if text.contains("UNKNOWN_CA") { return "unknown_ca" }
        if text.contains("CERTIFICATE_EXPIRED") || text.contains("EXPIRED") { return "certificate_expired" }
        if text.contains("CERTIFICATE_VERIFY_FAILED") { return "certificate_verify_failed" }
        if error is IdentityError { return "not_a_member" }
        return "other"
    }

    /// A handshake that ended because the other side stopped (EOF) or was too slow: not a misconfiguration.
    static func isRoutineHandshakeEnd(_ error: Error) -> Bool {
        if case TransportError.handshakeTimedOut = error { return true }
        if case NIOCore.ChannelError.ioOnClosedChannel = error { return true }
        if let e = error as? NIOSSLError, case .uncleanShutdown = e { return true }
        return "\(error)".contains("EOF during handshake")
    }

    // MARK: Client

    func connect(to peer: NodeID, at address: PeerAddress) async throws -> PeerConnection {
        let clientContext = self.clientContext
        do {
            // The async wrapper is made only once the TCP connection exists: one made in the initializer of a
            // connection that is then refused would be released unused, which NIO treats as a bug (it traps).
            // Nothing is lost meanwhile: a server never speaks before the client's Hello.
            let bootstrap = ClientBootstrap(group: group)
                .connectTimeout(options.connectTimeout)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
            let initializer: @Sendable (Channel) -> EventLoopFuture<(Channel, EventLoopFuture<NodeIdentity>)> = { channel in
                channel.eventLoop.makeCompletedFuture {
                    (channel, try self.installHandlers(channel, tls: NIOSSLClientHandler(context: clientContext, serverHostname: nil),
                                                       peerLabel: peer, inbound: false))
                }
            }
            // An address given as an IP literal is dialled as it is. Given a host name, NIO resolves it with
            // two queries (A and AAAA) on a thread of its own; the one that loses the race may report after
            // the connection's event loops have shut down (a stopped node), which NIO reports as an error
            // and will make a crash in later versions.
            let (channel, identity) = if let literal = try? SocketAddress(ipAddress: address.host, port: address.port) {
                try await bootstrap.connect(to: literal, channelInitializer: initializer)
            } else {
                try await bootstrap.connect(host: address.host, port: address.port, channelInitializer: initializer)
            }
            let wrapped: NIOAsyncChannel<ByteBuffer, ByteBuffer>
            do {
                wrapped = try await channel.eventLoop.submit {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }.get()
            } catch {
                // Closed already: the TLS handshake was refused at once. Say why, not just "closed".
                do { _ = try await identity.get() } catch let e as TransportError { throw e.naming(peer) } catch {
                    throw TransportError.handshakeFailed(peer: peer, detail: TLSMessageChannel.describe(error))
                }
                throw error
            }
            return PeerConnection(channel: wrapped, identity: identity)
        } catch let error as TransportError {
            throw error
        } catch {
            throw TransportError.cannotConnect(peer: peer, address: address.description, detail: TLSMessageChannel.describe(error))
        }
    }

    /// Checks, after the handshake, that the server is the node we meant to reach.
    private func verifyServer(_ connection: PeerConnection, expected peer: NodeID, role: NodeRole? = nil) async throws {
        let identity: NodeIdentity
        do { identity = try await connection.identity.get() } catch let e as TransportError { throw e.naming(peer) } catch {
            throw TransportError.handshakeFailed(peer: peer, detail: TLSMessageChannel.describe(error))
        }
        guard identity.nodeID == peer else {
            throw TransportError.peerIdentityMismatch(expected: peer, presented: identity.nodeID)
        }
        if let role, identity.role != role {
            throw TransportError.handshakeFailed(peer: peer, detail: "the server's certificate says role \(identity.role.rawValue), not \(role.rawValue)")
        }
        if role == nil, identity.role == .worker {
            // A node is never a worker: a worker's key (in many pods) cannot stand in for its bank's node.
            throw TransportError.handshakeFailed(peer: peer, detail: "the server presented a worker certificate, not its node's")
        }
    }

    private func hello(_ fill: (inout Mpcnode_V1_Hello) -> Void) throws -> [UInt8] {
        var hello = Mpcnode_V1_Hello()
        hello.wireVersion = Self.wireVersion
        fill(&hello)
        return try hello.serializedBytes()
    }

    /// One control exchange: connect, send the request, read the response.
    public func control(_ request: Mpcnode_V1_ControlRequest, to peer: NodeID, at address: PeerAddress) async throws -> Mpcnode_V1_ControlResponse {
        try await controlExchange(request, to: peer, at: address).response
    }

    /// A control exchange that also says until when the certificate the peer presented is valid (what an
    /// operator's view of its peers shows, so that a peer's coming expiry is seen before it breaks jobs).
    public func probe(_ peer: NodeID, at address: PeerAddress) async throws -> (response: Mpcnode_V1_ControlResponse, certificateNotValidAfter: Date?) {
        try await controlExchange(Mpcnode_V1_ControlRequest(), to: peer, at: address)
    }

    private func controlExchange(_ request: Mpcnode_V1_ControlRequest, to peer: NodeID, at address: PeerAddress) async throws -> (response: Mpcnode_V1_ControlResponse, certificateNotValidAfter: Date?) {
        let opened = try await open(to: peer, at: address, role: nil, hello: try hello { $0.control = request })
        let connection = opened.connection.channel
        return try await connection.executeThenClose { inbound, _ in
            var iterator = inbound.makeAsyncIterator()
            let frame: ByteBuffer?
            do { frame = try await iterator.next() } catch {
                throw TransportError.handshakeFailed(peer: peer, detail: TLSMessageChannel.describe(error))
            }
            guard let frame else { throw TransportError.connectionClosed(peer: peer) }
            return (try Mpcnode_V1_ControlResponse(serializedBytes: Array(frame.readableBytesView)), opened.certificateNotValidAfter)
        }
    }

    /// Connects, checks who answered and writes the Hello, all on Swift's cooperative pool even when the
    /// caller is a job on `JobExecutor`-like threads that may all be busy: the server closes a connection
    /// whose Hello is late (`FirstFrameDeadlineHandler`), so nothing between the TCP connection and the
    /// Hello may wait for a busy thread. Who answered is checked before anything is written: an impostor
    /// never sees the Hello. Also returns until when the server's certificate is valid.
    private func open(to peer: NodeID, at address: PeerAddress, role: NodeRole?, hello helloBytes: [UInt8]) async throws
        -> (connection: PeerConnection, certificateNotValidAfter: Date?) {
        try await withTaskExecutorPreference(globalConcurrentExecutor) {
            let peerConnection = try await connect(to: peer, at: address)
            let channel = peerConnection.channel.channel
            do {
                do {
                    try await verifyServer(peerConnection, expected: peer, role: role)
                    let notValidAfter: Date? = try? await channel.eventLoop.submit {
                        let certificate = try channel.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self).peerCertificate
                        return try certificate.map { try Certificate(derEncoded: $0.toDERBytes()).notValidAfter }
                    }.get() ?? nil
                    try await channel.writeAndFlush(channel.allocator.buffer(bytes: helloBytes)).get()
                    return (peerConnection, notValidAfter)
                } catch let error as TransportError {
                    throw error
                } catch {
                    throw TransportError.handshakeFailed(peer: peer, detail: TLSMessageChannel.describe(error))
                }
            } catch {
                // The wrapped connection is closed through its owner (a wrapper dropped unused traps in NIO).
                try? await peerConnection.channel.executeThenClose { _, _ in }
                throw error
            }
        }
    }

    /// Opens a protocol session for `jobID` with `peer` and runs `body` over it; the connection closes
    /// when `body` returns or throws. `stream` tells apart several sessions of one job between the same
    /// two nodes (empty when a job has one).
    /// `service` names a standing service instead of a job ("lookup", "lookup-sync"; `jobID` then empty).
    /// `role`, when given, is the role the server's certificate must carry (a worker dials only a worker).
    public func withSession<R: Sendable>(jobID: String, stream: String = "", service: String = "", to peer: NodeID, at address: PeerAddress,
                                         role: NodeRole? = nil,
                                         _ body: (TLSMessageChannel) async throws -> R) async throws -> R {
        let helloBytes = try hello { $0.session = .with { $0.jobID = jobID; $0.stream = stream; $0.service = service } }
        let connection = try await open(to: peer, at: address, role: role, hello: helloBytes).connection.channel
        return try await connection.executeThenClose { inbound, _ in
            let channel = connection.channel
            let session = TLSMessageChannel(peer: peer, channel: channel, iterator: inbound.makeAsyncIterator())
            do {
                return try await body(session)
            } catch {
                await session.abort()
                throw error
            }
        }
    }
}

/// Accepts connections until the task running `run()` is cancelled.
public struct PeerListener: Sendable {
    let server: NIOAsyncChannel<PeerConnection, Never>
    let transport: PeerTransport
    let handler: any InboundConnectionHandler

    /// The port actually bound (useful when binding port 0).
    public var port: Int { server.channel.localAddress?.port ?? 0 }

    public func run() async throws {
        // Cancelling only closes the listening socket. The accept loop runs in a task of its own (not
        // cancelled with the caller), so connections already accepted are still served and closed:
        // abandoning them unopened would trap in NIO.
        let server = self.server
        let loop = Task {
            try await server.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await connection in inbound {
                        group.addTask { await transport.serve(connection, handler: handler) }
                    }
                }
            }
        }
        try await withTaskCancellationHandler {
            try await loop.value
        } onCancel: {
            server.channel.close(promise: nil)
        }
    }

    /// Stops accepting (sessions in progress continue until their jobs end).
    public func close() async {
        try? await server.channel.close()
    }
}
