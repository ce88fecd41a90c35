import Foundation
import MPCCrypto
import MPCWire

/// Sending and receiving the `SetsMessage`s of a set operation's sessions after the ring.
extension ProtocolSession {
    func sendSets(_ fill: (inout Mpcnode_V1_SetsMessage) -> Void) async throws { try await send(\.sets, fill) }

    func receiveSets(expecting what: String) async throws -> Mpcnode_V1_SetsMessage.OneOf_Body {
        try await receive(what) { if case .sets(let m)? = $0 { return m.body } else { return nil } }
    }

    /// Every owner's set size as the aggregator announces it (`owner_sizes`): each owner once, each within
    /// bounds; with the bucket count it announces (0 in one pass).
    func receiveOwnerSizes(owners: [NodeID]) async throws -> (sizes: [NodeID: Int], buckets: UInt32, startBucket: UInt32, rekey: Bool) {
        guard case .ownerSizes(let m) = try await receiveSets(expecting: "the owners' set sizes"),
              m.owners.count == m.sizes.count, m.owners.sorted() == owners.sorted() else {
            throw ProtocolError.protocolViolation(peer: peer, detail: "expected one set size for each owner")
        }
        var sizes: [NodeID: Int] = [:]
        for (owner, announced) in zip(m.owners, m.sizes) {
            sizes[owner] = try WireNumber.count(announced, limit: WireNumber.maximumSetSize, field: "set size of \(owner)", peer: peer)
        }
        return (sizes, m.buckets, m.startBucket, m.rekey)
    }

    /// Sends `count` fixed-size items (concatenated in `items`) as batches, then the end of the stream.
    func sendItems(_ items: [UInt8], itemSize: Int, batchSize: Int, sealed: Bool) async throws {
        let count = items.count / itemSize
        var offset = 0
        while offset < count {
            let end = min(count, offset + batchSize)
            let batch = Mpcnode_V1_ElementBatch.with {
                $0.offset = UInt64(offset)
                $0.elements = Data(items[(offset * itemSize)..<(end * itemSize)])
            }
            try await sendSets { if sealed { $0.sealed = batch } else { $0.pseudonyms = batch } }
            offset = end
        }
        try await sendSets {
            if sealed { $0.sealedEnd = .with { $0.count = UInt64(count) } } else { $0.pseudonymsEnd = .with { $0.count = UInt64(count) } }
        }
    }

    /// Receives a stream sent by `sendItems`: checks offsets, sizes and the final count. `limit` bounds
    /// how many items the peer may send (a protocol violation beyond it, before anything is allocated).
    func receiveItems(itemSize: Int, sealed: Bool, limit: Int, onBatch: ([UInt8]) throws -> Void = { _ in }) async throws -> [UInt8] {
        var items: [UInt8] = []
        var count = 0
        let what = sealed ? "sealed pseudonyms" : "pseudonyms"
        while true {
            switch try await receiveSets(expecting: what) {
            case .sealed(let b) where sealed, .pseudonyms(let b) where !sealed:
                guard b.offset == UInt64(count), b.elements.count % itemSize == 0 else {
                    throw ProtocolError.protocolViolation(peer: peer, detail: "\(what) batch at offset \(b.offset) of \(b.elements.count) bytes after \(count) items")
                }
                count += b.elements.count / itemSize
                guard count <= limit else {
                    throw ProtocolError.protocolViolation(peer: peer, detail: "more than \(limit) \(what)")
                }
                let bytes = [UInt8](b.elements)
                try onBatch(bytes)
                items.append(contentsOf: bytes)
            case .sealedEnd(let e) where sealed, .pseudonymsEnd(let e) where !sealed:
                guard e.count == UInt64(count) else {
                    throw ProtocolError.protocolViolation(peer: peer, detail: "\(what) ended at \(e.count) after \(count) items")
                }
                return items
            default:
                throw ProtocolError.protocolViolation(peer: peer, detail: "expected \(what)")
            }
        }
    }
}
