import Foundation
import MPCCrypto
import MPCProtocols
import MPCWire

/// Split views (Protocols/ledger.md, "Split views"): a node could keep two logs and show one to some peers
/// and the other to the rest; each peer alone sees a log that only grows. Peers catch it by comparing the
/// heads they hold of third nodes: with each periodic pull a peer sends the heads it pulled of others, and
/// the puller checks each against its own — a head of the same size with another root is a fork at once
/// (both are signed by the node); a head of another size waits (pending) until the node itself proves it
/// consistent with the heads held, and a node that answers pulls but not that proof, round after round,
/// is withholding it: an alarm too.
extension LedgerGossip {
    /// Rounds a node may leave a pending head unproven while answering pulls, before the alarm.
    static let confirmRoundsBeforeAlarm = 3
    /// Pending heads of one node checked a round (one per peer that showed them, oldest first): within
    /// the node's request budget, and a peer that shows many heads takes one turn like any other.
    static let confirmsPerNodeAndRound = 4

    /// Checks heads of other nodes that peers sent (`from`: the peer that held it) against those held here,
    /// then asks nodes that answered this round's pull (`answered`) to prove their pending heads. A head not
    /// signed by its node (checked with the certificate held of it) is the peer's garbage, not the node's,
    /// and is ignored; so is a node never pulled here. Returns the alarms raised, by node.
    func crossCheck(_ seen: [(from: String, head: TreeHead)], answered: Set<String>) async -> [String: PullOutcome] {
        var out: [String: PullOutcome] = [:]
        let byNode = Dictionary(grouping: seen, by: { $0.head.node })
        let nodes = Set(byNode.keys).union(answered.filter { peers[$0] != nil }).sorted()
        for node in nodes {
            guard let held = try? heads.latest(of: node) else { continue }
            for (from, var head) in byNode[node] ?? [] {
                head.certificate = held.certificate
                guard head.timestampMs <= Self.latestTimestamp(), (try? head.verify(with: signatures)) != nil else { continue }
                let sameSize = (try? heads.held(of: node, size: head.size)) ?? []
                if sameSize.isEmpty { try? heads.keepShown(head, by: from, pending: true); continue }
                guard let other = sameSize.first, !sameSize.contains(where: { $0.root == head.root }) else { continue }
                try? heads.keepShown(head, by: from, pending: false)
                out[node] = try? alarm(node, "fork", "a split view: \(from) holds its head of \(head.size) leaves with root \(head.rootHex.prefix(16))…, this node holds one of the same size with root \(other.rootHex.prefix(16))…, both signed by \(node): it shows different logs to different nodes")
                break
            }
            // A node that did not answer this round's pull may be down: its pending heads wait, uncounted.
            guard out[node] == nil, answered.contains(node), peers[node] != nil else { continue }
            var turns = Set<String>()
            let picks = ((try? heads.pending(of: node)) ?? []).filter { turns.insert($0.shownBy).inserted }.prefix(Self.confirmsPerNodeAndRound)
            for pick in picks {
                switch await confirm(pick.head, shownBy: pick.shownBy, against: held) {
                case .proven:
                    try? heads.confirmShown(pick.head)
                case .alarm(let outcome):
                    try? heads.refute(pick.head)
                    out[node] = outcome
                case .noAnswer(let why):
                    let rounds = (try? heads.failedConfirm(pick.head)) ?? 0
                    if rounds == Self.confirmRoundsBeforeAlarm {
                        out[node] = try? alarm(node, "withheld", "for \(rounds) rounds it answered pulls but did not prove that its head of \(pick.head.size) leaves, held by \(pick.shownBy), extends its head of \(held.size) leaves this node holds (\(PeerText.cut(why, limit: 120))): it may show different logs to different nodes")
                    }
                }
                if out[node] != nil { break }
            }
        }
        return out
    }

    enum Confirmation {
        case proven
        case alarm(PullOutcome)
        case noAnswer(String)
    }

    /// Asks `head`'s node for the consistency proof between its size and that of `held` (both signed by
    /// it). The proof makes the shown head proven; no proof is a fork; a log now smaller than the larger of
    /// the two is a rollback; no answer (or a refusal) is counted by the caller.
    func confirm(_ head: TreeHead, shownBy from: String, against held: TreeHead) async -> Confirmation {
        let node = head.node
        if head.size == held.size {
            guard head.root != held.root else { return .proven }
            try? heads.keepShown(head, by: from, pending: false)
            return (try? alarm(node, "fork", "a split view: \(from) holds its head of \(head.size) leaves with another root than the one this node holds, both signed by \(node)")).map { .alarm($0) } ?? .noAnswer("the alarm could not be kept")
        }
        guard let address = peers[node] else { return .noAnswer("not a peer") }
        let (small, large) = head.size < held.size ? (head, held) : (held, head)
        let response: Mpcnode_V1_ControlResponse
        do {
            response = try await transport.control(.with {
                $0.treeHead = .with { $0.fromSize = UInt64(small.size); $0.toSize = UInt64(large.size) }
            }, to: node, at: address)
        } catch {
            return .noAnswer("\(error)")
        }
        guard case .treeHead(let answer)? = response.kind else {
            if case .error(let e)? = response.kind { return .noAnswer(e.message) }
            return .noAnswer("no tree head in its answer")
        }
        let latest = TreeHead(answer.head)
        guard latest.node == node, (try? latest.verify(with: signatures)) != nil, answer.consistency.count <= Self.maximumProofNodes else {
            return .noAnswer("its answer was not a head it signed")
        }
        if latest.size < large.size {
            return (try? alarm(node, "rollback", "its log has \(latest.size) leaves, but it signed a head of \(large.size) leaves (\(head.size > held.size ? "held by \(from)" : "held by this node"))")).map { .alarm($0) } ?? .noAnswer("the alarm could not be kept")
        }
        let proof = answer.consistency.map { Array($0) }
        guard MerkleTree.verifyConsistency(oldSize: small.size, newSize: large.size, oldRoot: small.root, newRoot: large.root, proof: proof) else {
            return (try? alarm(node, "fork", "a split view: \(from) holds its head of \(head.size) leaves, this node holds one of \(held.size) leaves, both signed by \(node), and no consistency proof joins them: it shows different logs to different nodes")).map { .alarm($0) } ?? .noAnswer("the alarm could not be kept")
        }
        return .proven
    }
}
