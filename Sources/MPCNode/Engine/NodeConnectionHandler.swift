import MPCIdentity
import MPCProtocols
import MPCTransport
import MPCWire

/// Routes inbound peer connections to the job engine, refusing nodes that are not in the configuration.
struct NodeConnectionHandler: InboundConnectionHandler {
    let engine: JobEngine
    let knownPeers: Set<String>
    let lookups: LookupHolderService
    let ledger: LedgerGossip
    let receipts: JobReceipts

    func handleControl(_ request: Mpcnode_V1_ControlRequest, from peer: NodeIdentity) async -> Mpcnode_V1_ControlResponse {
        guard knownPeers.contains(peer.nodeID) else {
            return .with { $0.error = .with { $0.message = "\(peer.nodeID) is not a peer of \(engine.nodeID)" } }
        }
        guard peer.role != .worker else {
            // A worker certificate carries its bank's id but speaks only to the peer's workers.
            return .with { $0.error = .with { $0.message = "a worker certificate of \(peer.nodeID) is refused at \(engine.nodeID)'s node: workers talk to workers only" } }
        }
        switch request.kind {
        case .proposal(let p):
            guard peer.role == .coordinator else {
                return await engine.refuseProposal(from: peer.nodeID, reason: "\(peer.nodeID) has role \(peer.role.rawValue) in its certificate, not coordinator")
            }
            return await engine.handleProposal(p.spec, from: peer.nodeID)
        case .start(let s): return await engine.handleStart(s.jobID, from: peer.nodeID)
        case .abort(let a): return await engine.handleAbort(a.jobID, reason: a.reason, from: peer.nodeID)
        case .outcome(let o): return await engine.recordOutcome(o, from: peer.nodeID)
        case .progress(let p): return await engine.recordProgress(p, from: peer.nodeID)
        case .treeHead(let request): return ledger.answer(request, from: peer.nodeID)
        case .inclusion(let request): return ledger.answer(request, from: peer.nodeID)
        case .receiptSign(let request): return receipts.answer(request, from: peer.nodeID)
        case .receiptDelivery(let delivery): return receipts.answer(delivery, from: peer.nodeID)
        case nil: return .with { $0.error = .with { $0.message = "empty control request" } }
        }
    }

    func handleSession(_ open: Mpcnode_V1_SessionOpen, from peer: NodeIdentity, channel: TLSMessageChannel) async {
        guard knownPeers.contains(peer.nodeID), peer.role != .worker else { return }
        switch open.service {
        case "": await engine.handleSession(open, from: peer.nodeID, channel: channel)
        case LookupServices.query: await lookups.serveQueries(channel, from: peer.nodeID)
        case LookupServices.sync: await lookups.serveSync(channel, from: peer.nodeID)
        default:
            var frame = Mpcnode_V1_SessionFrame()
            frame.abort = .with { $0.reason = "\(engine.nodeID) offers no service '\(PeerText.cut(open.service, limit: 40))'" }
            if let bytes: [UInt8] = try? frame.serializedBytes() { try? await channel.send(bytes) }
        }
    }
}
