import MPCCrypto

/// An audit record as a leaf of the node's Merkle log (Protocols/ledger.md, "Leaves"): a canonical,
/// length-prefixed encoding of its sequence number, time, job, event and details, never the JSON text
/// alone, so that no two records share a leaf.
enum LedgerLeaf {
    static let tag = Array("mpcnode-audit-v1".utf8) + [0]

    static func data(seq: Int64, at: String, jobID: String?, event: String, details: String) -> [UInt8] {
        var out = tag
        out += LedgerEncoding.u64(UInt64(seq))
        for field in [at, jobID ?? "", event, details] { out += LedgerEncoding.string(field) }
        return out
    }

    static func hash(seq: Int64, at: String, jobID: String?, event: String, details: String) -> [UInt8] {
        MerkleTree.leafHash(data(seq: seq, at: at, jobID: jobID, event: event, details: details))
    }

    /// The record a leaf's data encodes, or nil when it is not one.
    static func record(_ data: [UInt8]) -> (seq: Int64, at: String, jobID: String, event: String, details: String)? {
        guard data.count >= tag.count + 8, Array(data.prefix(tag.count)) == tag else { return nil }
        var i = tag.count
        let seq = data[i..<i + 8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        i += 8
        var fields: [String] = []
        for _ in 0..<4 {
            guard i + 4 <= data.count else { return nil }
            let n = Int(data[i..<i + 4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
            i += 4
            guard n <= data.count - i, let s = String(validating: data[i..<i + n], as: UTF8.self) else { return nil }
            fields.append(s)
            i += n
        }
        guard i == data.count, seq <= UInt64(Int64.max) else { return nil }
        return (Int64(seq), fields[0], fields[1], fields[2], fields[3])
    }
}

/// The big-endian, length-prefixed encodings the ledger signs and hashes.
enum LedgerEncoding {
    static func u64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (56 - 8 * $0)) } }
    static func string(_ s: String) -> [UInt8] {
        let bytes = Array(s.utf8)
        return (0..<4).map { UInt8(truncatingIfNeeded: UInt32(bytes.count) >> (24 - 8 * $0)) } + bytes
    }
}
