import Foundation
import MPCCrypto
import MPCWire

/// What both roles of one KKRT instance share (Protocols/psi-oprf.md): which bucket and instance it is,
/// the party's seed, the code, the peer's padded bucket size, and the digest a redone bucket must match.
struct KKRTInstance: Sendable {
    let jobID: String
    let bucket: Int
    /// 0: the dialling party receives; 1: the other (a bucket runs 0 then 1 when both receive).
    let number: Int
    let seed: [UInt8]
    let code: PseudorandomCode
    /// The peer's padded bucket size (its capacity, from the hellos).
    let peerElements: Int
    /// A bucket this party completed before: the digests of the peer's messages then.
    let peerStreamMustMatch: [UInt8]?
    /// Where the sender records, before its first value leaves, which receiver stream it answered.
    let checkpoints: any BucketCheckpoints

    var label: String { "\(bucket)/\(number)" }

    /// What both parties put into the base-OT key hashes.
    var domain: [UInt8] {
        var d = Array("kkrt/\(jobID)/".utf8)
        withUnsafeBytes(of: UInt64(bucket).littleEndian) { d.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt32(number).littleEndian) { d.append(contentsOf: $0) }
        return d
    }

    /// 64 bits derived from the party's seed for `purpose` in this instance.
    func seedWord(_ purpose: String) -> UInt64 {
        let bytes = BucketKey.blake2b(Array("mpcnode-kkrt-\(purpose)/\(label)".utf8), length: 8, key: seed)
        return bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
    }

    /// The peer's message names this bucket and instance.
    func check(bucket: UInt64, instance: UInt32, peer: NodeID) throws {
        guard bucket == UInt64(self.bucket), instance == UInt32(number) else {
            throw ProtocolError.protocolViolation(peer: peer, detail: "a message of bucket \(bucket) instance \(instance) during bucket \(self.bucket) instance \(number)")
        }
    }

    func send(_ session: ProtocolSession, _ fill: (inout Mpcnode_V1_PsiMessage) -> Void) async throws {
        try await session.sendFramed(try PSIParty.message(session, fill))
    }

    func receive<T>(_ session: ProtocolSession, _ what: String, _ extract: (Mpcnode_V1_PsiMessage.OneOf_Body?) -> T?) async throws -> T {
        try await session.receive(what) { body in
            guard case .psi(let m)? = body else { return nil }
            return extract(m.body)
        }
    }
}
