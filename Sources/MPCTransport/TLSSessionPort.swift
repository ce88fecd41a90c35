import Foundation
import MPCProtocols

/// The session port of one job at one node between daemons: sessions it opens are dialled over mutually
/// authenticated TLS (`PeerTransport.withSession`); sessions it accepts are the inbound connections the
/// node's listener hands to the `SessionRendezvous`.
public struct TLSSessionPort: SessionPort {
    public let me: NodeID
    let jobID: String
    let transport: PeerTransport
    let rendezvous: SessionRendezvous
    let addresses: [NodeID: PeerAddress]
    public let traffic = SessionTraffic()

    public init(me: NodeID, jobID: String, transport: PeerTransport, rendezvous: SessionRendezvous, addresses: [NodeID: PeerAddress]) {
        self.me = me
        self.jobID = jobID
        self.transport = transport
        self.rendezvous = rendezvous
        self.addresses = addresses
    }

    public func withSession<R: Sendable>(stream: String, to peer: NodeID, _ body: (any MessageChannel) async throws -> R) async throws -> R {
        guard let address = addresses[peer] else { throw TransportError.unknownPeer(peer) }
        let traffic = traffic
        return try await transport.withSession(jobID: jobID, stream: stream, to: peer, at: address) { channel in
            traffic.track(channel)
            return try await body(channel)
        }
    }

    public func accept(stream: String, from peer: NodeID, timeout: Duration) async throws -> any MessageChannel {
        let channel = try await rendezvous.claim(jobID: jobID, stream: stream, peer: peer, timeout: timeout)
        traffic.track(channel)
        return channel
    }

    public func cancelAccepts(reason: String) async { await rendezvous.cancelClaims(jobID: jobID, reason: reason) }
}
