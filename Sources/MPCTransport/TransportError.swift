/// Failures of the peer transport. Each names the peer (where known) and what to check.
public enum TransportError: Error, CustomStringConvertible {
    case cannotConnect(peer: String, address: String, detail: String)
    case handshakeFailed(peer: String, detail: String)
    case peerIdentityMismatch(expected: String, presented: String)
    case noPeerCertificate
    case idleTimeout(seconds: Double)
    case handshakeTimedOut(seconds: Double)
    case unexpectedFrame(peer: String, detail: String)
    case connectionClosed(peer: String)
    case unsupportedWireVersion(peer: String, version: UInt32)
    case unknownPeer(String)

    public var description: String {
        switch self {
        case .cannotConnect(let p, let a, let d): return "cannot connect to \(p) at \(a): \(d); check that its daemon runs and the address in the configuration"
        case .handshakeFailed(let p, let d): return "TLS handshake with \(p) failed: \(d); check that both nodes use certificates from the same consortium CA"
        case .peerIdentityMismatch(let e, let p): return "expected node \(e) but its certificate says \(p)"
        case .noPeerCertificate: return "the peer presented no certificate"
        case .idleTimeout(let s): return "nothing received for \(Int(s)) s"
        case .handshakeTimedOut(let s): return "the TLS handshake did not complete within \(s) s; check that the address is an MPCNode peer port"
        case .unexpectedFrame(let p, let d): return "unexpected frame from \(p): \(d)"
        case .connectionClosed(let p): return "\(p) closed the connection"
        case .unknownPeer(let p): return "\(p) is not a peer in this node's configuration (peers:)"
        case .unsupportedWireVersion(let p, let v): return "\(p) speaks wire version \(v); this node speaks \(PeerTransport.wireVersion)"
        }
    }
}

extension TransportError {
    /// The same error with the peer named, where the pipeline did not know it.
    func naming(_ peer: String) -> TransportError {
        if case .handshakeFailed("?", let detail) = self { return .handshakeFailed(peer: peer, detail: detail) }
        return self
    }
}
