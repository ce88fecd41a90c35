import Foundation
import MPCWire
import SwiftProtobuf

/// Sequenced `SessionFrame`s over a `MessageChannel`, with byte counts.
///
/// Each direction numbers its frames from 0; a frame out of sequence (lost, repeated or reordered)
/// ends the session with `ProtocolError.outOfSequence`. A `SessionAbort` from the peer surfaces as
/// `ProtocolError.abortedByPeer`. Sending is done by one task at a time (the session's pump).
public final class ProtocolSession: @unchecked Sendable {
    public let channel: any MessageChannel
    public var peer: NodeID { channel.peer }
    private var nextOutbound: UInt64 = 0
    private var nextInbound: UInt64 = 0
    private let counters = TrafficCounters()
    /// The reason of the last `SessionAbort` received, if any.
    private(set) var lastAbortReason: String?

    public init(channel: any MessageChannel) { self.channel = channel }

    public var bytesSent: UInt64 { counters.sent }
    public var bytesReceived: UInt64 { counters.received }

    /// Frames and serialises `body`; the caller sends the result in order with `sendFramed`.
    func frame(_ fill: (inout Mpcnode_V1_SessionFrame) -> Void) throws -> [UInt8] {
        var frame = Mpcnode_V1_SessionFrame()
        fill(&frame)
        return try frame.serializedBytes()
    }

    /// Sends a serialised frame body, stamping its sequence number. Only the pump calls this.
    func sendFramed(_ serialized: [UInt8]) async throws {
        // The sequence number is field 1 (varint); it is prepended to the body (fields may come in any order).
        var stamped = Self.sequenceField(nextOutbound)
        stamped.append(contentsOf: serialized)
        nextOutbound += 1
        counters.addSent(stamped.count)
        try await channel.send(stamped)
    }

    /// Sends one message of a protocol: `fill` builds it, `field` is its place in the session frame.
    func send<M: SwiftProtobuf.Message>(_ field: WritableKeyPath<Mpcnode_V1_SessionFrame, M>, _ fill: (inout M) -> Void) async throws {
        var message = M()
        fill(&message)
        try await sendFramed(try frame { $0[keyPath: field] = message })
    }

    /// Receives the next frame and takes out the body `extract` expects (nil: a malformed message, "expected `what`").
    func receive<Body>(_ what: String, _ extract: (Mpcnode_V1_SessionFrame.OneOf_Body?) -> Body?) async throws -> Body {
        let frame = try await receiveFrame()
        guard let body = extract(frame.body) else {
            throw ProtocolError.malformedMessage(peer: peer, detail: "expected \(what)")
        }
        return body
    }

    /// Receives and checks the next frame.
    func receiveFrame() async throws -> Mpcnode_V1_SessionFrame {
        let bytes = try await channel.receive()
        counters.addReceived(bytes.count)
        let frame: Mpcnode_V1_SessionFrame
        do {
            frame = try Mpcnode_V1_SessionFrame(serializedBytes: bytes)
        } catch {
            throw ProtocolError.malformedMessage(peer: peer, detail: "undecodable session frame (\(bytes.count) bytes): \(error)")
        }
        guard frame.sequence == nextInbound else {
            throw ProtocolError.outOfSequence(peer: peer, expected: nextInbound, got: frame.sequence)
        }
        nextInbound += 1
        if case .abort(let abort)? = frame.body {
            lastAbortReason = PeerText.cut(abort.reason)
            throw ProtocolError.abortedByPeer(peer: peer, reason: abort.reason)
        }
        return frame
    }

    /// Best effort: tells the peer why this side stops. Errors are ignored (the peer may be gone).
    func sendAbort(reason: String) async {
        if let bytes = try? frame({ $0.abort = .with { $0.reason = reason } }) {
            try? await sendFramed(bytes)
        }
    }

    /// Why the peer ended this session, read after it ended: its abort if one is still to be read, else
    /// the end itself (frames before it are skipped; the channel has ended, so there are finitely many).
    func endReason() async -> Error {
        do {
            while true { _ = try await receiveFrame() }
        } catch {
            return error
        }
    }

    /// This side stops because of `error`: tells the peer why (prefixed with `me` when given), unless the
    /// peer's own abort caused it, and closes the channel.
    func end(after error: Error, by me: NodeID? = nil) async {
        if case ProtocolError.abortedByPeer = error {} else {
            let reason = Self.abortReason(error)
            await sendAbort(reason: me.map { "\($0): \(reason)" } ?? reason)
        }
        await channel.close()
    }

    /// What an abort message says of `error`: a local stop (the job aborted, its deadline, a shutdown)
    /// is not shown as a bare CancellationError to the peers.
    static func abortReason(_ error: Error) -> String {
        error is CancellationError ? "the job was stopped there" : "\(error)"
    }

    /// Ends every session of a role that failed with `error`: tells each peer why (except the peer whose
    /// own abort caused the failure) and closes the channel.
    static func abortAll(_ sessions: [ProtocolSession], because error: Error, by me: NodeID) async {
        for s in sessions {
            // The peer whose abort caused the failure is not told, but its session is closed like the
            // others': an accepted session left open holds its connection, and the node's stop, for ever.
            if case ProtocolError.abortedByPeer(let p, _) = error, p == s.peer {} else {
                await s.sendAbort(reason: "\(me): \(abortReason(error))")
            }
            await s.channel.close()
        }
    }

    static func sequenceField(_ value: UInt64) -> [UInt8] {
        var out: [UInt8] = [0x08]  // field 1, wire type 0
        var v = value
        while v >= 0x80 { out.append(UInt8(v & 0x7f) | 0x80); v >>= 7 }
        out.append(UInt8(v))
        return out
    }
}

/// Byte counters shared between a session's tasks.
final class TrafficCounters: @unchecked Sendable {
    private let lock = NSLock()
    private var _sent: UInt64 = 0
    private var _received: UInt64 = 0
    func addSent(_ n: Int) { lock.withLock { _sent += UInt64(n) } }
    func addReceived(_ n: Int) { lock.withLock { _received += UInt64(n) } }
    var sent: UInt64 { lock.withLock { _sent } }
    var received: UInt64 { lock.withLock { _received } }
}

