import Foundation
import Logging
import MPCTransport
import NIOCore
import NIOPosix
import Synchronization

/// The daemon's local admin endpoint: a Unix domain socket in the data directory, readable and
/// writable by the daemon's own user only (mode 0600 in a 0700 folder) — the operating system
/// authenticates the operator. One JSON request, one JSON response per connection, length-prefixed.
public struct AdminServer: Sendable {
    let server: NIOAsyncChannel<AcceptedConnection<ByteBuffer, ByteBuffer>, Never>
    let handler: @Sendable (AdminRequest) async -> AdminResponse
    let logger: Logger
    let access: AdminAccess
    /// Accepted connections, closed by `close()` (one waiting for a client to read its response must not
    /// hold the daemon's stop).
    let connections = OpenConnections()

    final class OpenConnections: Sendable {
        private let channels = Mutex<[ObjectIdentifier: any Channel]>([:])
        func add(_ c: any Channel) { channels.withLock { $0[ObjectIdentifier(c)] = c } }
        func remove(_ c: any Channel) { _ = channels.withLock { $0.removeValue(forKey: ObjectIdentifier(c)) } }
        func closeAll() { for c in channels.withLock({ Array($0.values) }) { c.close(promise: nil) } }
    }

    public static func bind(path: URL, group: EventLoopGroup, logger: Logger, access: AdminAccess = AdminAccess(),
                            handler: @escaping @Sendable (AdminRequest) async -> AdminResponse) async throws -> AdminServer {
        if FileManager.default.fileExists(atPath: path.path) {
            // A live daemon answers on it; a stale socket from a crash does not.
            if (try? await AdminClient(socketPath: path, group: group).send(AdminRequest(command: .status))) != nil {
                throw NodeError.alreadyRunning(socket: path.path)
            }
            try FileManager.default.removeItem(at: path)
        }
        let server = try await ServerBootstrap(group: group)
            .bind(unixDomainSocketPath: path.path) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LengthPrefixedFrameDecoder(maximumFrameBytes: 16 << 20)))
                    try channel.pipeline.syncOperations.addHandler(MessageToByteHandler(LengthPrefixedFrameEncoder()))
                    return AcceptedConnection(try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel))
                }
            }
        if let group = access.group {
            // Members of admin_group reach the socket: group-owned 0660, and the data folder traversable
            // (0710: no listing) by the group. Every other file stays 0600.
            _ = chown(path.path, UInt32.max, group.gid)
            chmod(path.path, 0o660)
            let folder = path.deletingLastPathComponent().path
            _ = chown(folder, UInt32.max, group.gid)
            chmod(folder, 0o710)
        } else {
            chmod(path.path, 0o600)
        }
        return AdminServer(server: server, handler: handler, logger: logger, access: access)
    }

    public func run() async throws {
        // Cancelling only closes the listening socket. The accept loop runs in a task of its own (not
        // cancelled with the caller), so connections already accepted are still served and closed:
        // abandoning them unopened would trap in NIO.
        let server = self.server
        let loop = Task {
            try await server.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await connection in inbound {
                        group.addTask { await serve(connection.open()) }
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

    public func close() async {
        try? await server.channel.close()
        connections.closeAll()
    }

    /// Waits for the client to close the connection (it sends nothing after its request), at most a
    /// minute (or until the daemon stops); then the daemon closes it.
    private static func untilClosed(_ channel: Channel) async {
        let timeout = channel.eventLoop.scheduleTask(in: .seconds(60)) { channel.close(promise: nil) }
        try? await channel.closeFuture.get()
        timeout.cancel()
    }

    /// Linux's `struct ucred` (pid_t, uid_t, gid_t), which Glibc's module map leaves out without _GNU_SOURCE.
    struct PeerCredentials: Sendable { var pid: Int32; var uid: UInt32; var gid: UInt32 }
    /// SO_PEERCRED on Linux.
    static let peerCredentialsOption: SocketOptionName = 17

    /// The peer's credentials, from the kernel (nil if the socket cannot say).
    private func peerCredentials(_ channel: Channel) async -> PeerCredentials? {
        guard let provider = channel as? SocketOptionProvider else { return nil }
        return try? await provider.unsafeGetSocketOption(level: SocketOptionLevel(SOL_SOCKET), name: Self.peerCredentialsOption).get()
    }

    private func serve(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async {
        connections.add(connection.channel)
        defer { connections.remove(connection.channel) }
        let credentials = await peerCredentials(connection.channel)
        let allowed = credentials.map { access.allows(uid: $0.uid, gid: $0.gid, userName: AdminAccess.userName(of: $0.uid)) } ?? false
        if !allowed {
            logger.warning("admin request refused: the peer is neither root, the daemon's user nor in admin_group",
                           metadata: ["uid": "\(credentials.map { "\($0.uid)" } ?? "unknown")"])
        }
        do {
            try await connection.executeThenClose { inbound, outbound in
                guard allowed else {
                    let refusal = try AdminCoding.encoder.encode(AdminResponse(error: "refused: this user may not administer the node (root, the daemon's user, or admin_group)"))
                    try await outbound.write(ByteBuffer(bytes: refusal))
                    await Self.untilClosed(connection.channel)
                    return
                }
                var iterator = inbound.makeAsyncIterator()
                guard let frame = try await iterator.next() else { return }
                let response: AdminResponse
                do {
                    let request = try AdminCoding.decoder.decode(AdminRequest.self, from: Data(frame.readableBytesView))
                    response = await handler(request)
                } catch {
                    response = AdminResponse(error: "malformed admin request: \(error)")
                }
                let data = try AdminCoding.encoder.encode(response)
                try await outbound.write(ByteBuffer(bytes: data))
                // The write above only hands the frame to the channel: closing now would drop whatever the
                // socket has not taken yet (a response larger than its buffer arrived cut). The client
                // closes once it has read the response.
                await Self.untilClosed(connection.channel)
            }
        } catch {
            logger.debug("admin connection ended with an error", metadata: ["error": "\(error)"])
        }
    }
}

/// The CLI's side of the admin endpoint.
public struct AdminClient: Sendable {
    public let socketPath: URL
    let group: EventLoopGroup

    public init(socketPath: URL, group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.socketPath = socketPath
        self.group = group
    }

    public func send(_ request: AdminRequest) async throws -> AdminResponse {
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            // As in PeerTransport: wrap only a connected channel (a refused one would trap when released).
            let connected = try await ClientBootstrap(group: group)
                .connect(unixDomainSocketPath: socketPath.path) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LengthPrefixedFrameDecoder(maximumFrameBytes: 256 << 20)))
                        try channel.pipeline.syncOperations.addHandler(MessageToByteHandler(LengthPrefixedFrameEncoder()))
                        return channel
                    }
                }
            channel = try await connected.eventLoop.submit {
                try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: connected)
            }.get()
        } catch {
            throw NodeError.daemonNotRunning(socket: socketPath.path, detail: "\(error)")
        }
        let body = try AdminCoding.encoder.encode(request)
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(bytes: body))
            var iterator = inbound.makeAsyncIterator()
            guard let frame = try await iterator.next() else {
                throw NodeError.daemonNotRunning(socket: socketPath.path, detail: "the daemon closed the connection without answering")
            }
            return try AdminCoding.decoder.decode(AdminResponse.self, from: Data(frame.readableBytesView))
        }
    }
}
