import Foundation
import MPCCrypto

/// A node's signed statement of its Merkle log: how many leaves and their root, at a time
/// (Protocols/ledger.md, "Signed tree heads"). The certificate travels with the head, so anyone holding
/// the consortium CA can check who signed it.
public struct TreeHead: Codable, Sendable, Equatable {
    public var node: String
    public var size: Int
    public var root: [UInt8]
    public var timestampMs: UInt64
    /// ECDSA P-256 (DER) over SHA-256 of `message`, with the key of `certificate` (DER).
    public var signature: [UInt8]
    public var certificate: [UInt8]

    static let tag = Array("mpcnode-tree-head-v1".utf8) + [0]

    /// The bytes a head's signature covers.
    static func message(node: String, size: Int, timestampMs: UInt64, root: [UInt8]) -> [UInt8] {
        tag + LedgerEncoding.string(node) + LedgerEncoding.u64(UInt64(size)) + LedgerEncoding.u64(timestampMs) + root
    }

    var message: [UInt8] { Self.message(node: node, size: size, timestampMs: timestampMs, root: root) }

    /// Signs the head of `size` leaves with root `root` with this node's key.
    static func sign(node: String, size: Int, root: [UInt8], at date: Date, with signatures: NodeSignatures) throws -> TreeHead {
        let timestamp = UInt64(max(0, date.timeIntervalSince1970 * 1000).rounded(.down))
        let signed = try signatures.sign(message(node: node, size: size, timestampMs: timestamp, root: root))
        return TreeHead(node: node, size: size, root: root, timestampMs: timestamp, signature: signed.signature, certificate: signed.certificateDER)
    }

    /// Throws unless the head is well formed and signed by `node`'s certificate from the consortium CA.
    public func verify(with signatures: NodeSignatures) throws {
        guard root.count == 32, size >= 0 else { throw LedgerError.malformedHead(node: node, detail: "a root of \(root.count) bytes, size \(size)") }
        do {
            try signatures.verify(signature: signature, message: message, nodeID: node, certificateDER: certificate)
        } catch {
            throw LedgerError.badHeadSignature(node: node, detail: "\(error)")
        }
    }

    public var rootHex: String { root.map { String(format: "%02x", $0) }.joined() }
    public var date: Date { Date(timeIntervalSince1970: Double(timestampMs) / 1000) }
}

public enum LedgerError: Error, Equatable, CustomStringConvertible {
    case malformedHead(node: String, detail: String)
    case badHeadSignature(node: String, detail: String)
    case noSuchLeaf(index: Int, size: Int)

    public var description: String {
        switch self {
        case .malformedHead(let n, let d): return "a tree head of \(n) is malformed: \(d)"
        case .badHeadSignature(let n, let d): return "a tree head said to be \(n)'s is not signed by \(n)'s certificate from the consortium CA: \(d)"
        case .noSuchLeaf(let i, let n): return "the log has no leaf \(i) (it holds \(n))"
        }
    }
}
