import Foundation
import MPCCrypto
import MPCWire

/// Split views (Protocols/ledger.md, "Split views"): a node could keep two logs and show one to some peers
/// and the other to the rest; each peer alone sees a log that only grows. Peers catch it by comparing the
/// heads they hold of third nodes: with each periodic pull a peer sends the heads it holds of others, and
/// the puller checks each against its own — a head of the same size with another root is a fork at once
/// (both are signed by the node); a head of another size is joined to the one held by a consistency proof
/// that the node itself must give between the two sizes, or it is a fork.
extension LedgerGossip {
    /// Checks heads of other nodes that peers sent (`from`: the peer that held it) against those held here.
    /// A head not signed by its node (checked with the certificate held of it) is the peer's garbage, not
    /// the node's, and is ignored; so is a node never seen here. Of the heads whose size matches none held,
    /// one per node is checked (at random) by asking that node for a proof, since a node's request budget
    /// is small: a split view kept up is met within a few rounds. Returns the alarms raised, by node.
    func crossCheck(_ seen: [(from: String, head: TreeHead)]) async -> [String: PullOutcome] {
        var out: [String: PullOutcome] = [:]
        for (node, shown) in Dictionary(grouping: seen, by: { $0.head.node }).sorted(by: { $0.key < $1.key }) {
            guard let held = try? heads.latest(of: node) else { continue }
            var unmatched: [(from: String, head: TreeHead)] = []
            for (from, var head) in shown {
                head.certificate = held.certificate
                guard head.timestampMs <= Self.latestTimestamp(), (try? head.verify(with: signatures)) != nil else { continue }
                let sameSize = (try? heads.held(of: node, size: head.size)) ?? []
                if sameSize.isEmpty { unmatched.append((from, head)); continue }
                guard let other = sameSize.first, !sameSize.contains(where: { $0.root == head.root }) else { continue }
                try? heads.keep(head, shownBy: from)
                out[node] = try? alarm(node, "fork", "a split view: \(from) holds its head of \(head.size) leaves with root \(head.rootHex.prefix(16))…, this node holds one of the same size with root \(other.rootHex.prefix(16))…, both signed by \(node): it shows different logs to different nodes")
                break
            }
            guard out[node] == nil, peers[node] != nil, let pick = unmatched.randomElement() else { continue }
            if let outcome = await confirm(pick.head, shownBy: pick.from, against: held) { out[node] = outcome }
        }
        return out
    }

    /// Asks `head`'s node for the consistency proof between its size and that of `held` (both signed by
    /// it). The proof keeps the shown head (it is a head of the same log); no proof is a fork; a log now
    /// smaller than the larger head is a rollback; no answer is left for the next round (nil).
    func confirm(_ head: TreeHead, shownBy from: String, against held: TreeHead) async -> PullOutcome? {
        guard head.size != held.size, let address = peers[head.node] else { return nil }
        let node = head.node
        let (small, large) = head.size < held.size ? (head, held) : (held, head)
        guard let response = try? await transport.control(.with {
            $0.treeHead = .with { $0.fromSize = UInt64(small.size); $0.toSize = UInt64(large.size) }
        }, to: node, at: address), case .treeHead(let answer)? = response.kind else { return nil }
        let latest = TreeHead(answer.head)
        guard latest.node == node, (try? latest.verify(with: signatures)) != nil, answer.consistency.count <= Self.maximumProofNodes else { return nil }
        if latest.size < large.size {
            return try? alarm(node, "rollback", "its log has \(latest.size) leaves, but it signed a head of \(large.size) leaves (\(head.size > held.size ? "held by \(from)" : "held by this node"))")
        }
        let proof = answer.consistency.map { Array($0) }
        guard MerkleTree.verifyConsistency(oldSize: small.size, newSize: large.size, oldRoot: small.root, newRoot: large.root, proof: proof) else {
            try? heads.keep(head, shownBy: from)
            return try? alarm(node, "fork", "a split view: \(from) holds its head of \(head.size) leaves, this node holds one of \(held.size) leaves, both signed by \(node), and no consistency proof joins them: it shows different logs to different nodes")
        }
        try? heads.keep(head, shownBy: from)
        return nil
    }
}
