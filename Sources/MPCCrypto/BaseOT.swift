import Foundation

/// Base oblivious transfers for OT extension (Protocols/psi-oprf.md step 2): Chou–Orlandi's "simplest
/// OT" (LATINCRYPT 2015) over ristretto255, semi-honest. The OT sender holds a scalar a and sends
/// A = a·G; for each transfer i the OT receiver, with choice bit s_i, sends B_i = b_i·G + s_i·A and keeps
/// k_i = H(i, A, B_i, b_i·A); the sender derives k_i^0 = H(i, A, B_i, a·B_i) and
/// k_i^1 = H(i, A, B_i, a·(B_i − A)). The receiver learns k_i^{s_i} only; the sender learns nothing of s.
/// Every scalar derives from the party's 32-byte seed and a label, so a redone bucket repeats its messages.
public enum BaseOT {
    /// The OT sender's side: its point A, and the key pairs once the receiver's points arrive.
    public struct Sender: Sendable {
        private let scalar: SecretScalar
        public let point: GroupElement
        private let domain: [UInt8]

        /// - Parameters: seed: the party's secret seed; label: what this instance is (bucket, instance);
        ///   domain: bytes both parties put into every key hash (the protocol, job, bucket and instance).
        public init(seed: [UInt8], label: String, domain: [UInt8]) throws {
            scalar = try SecretScalar.derived(for: .ristretto255, seed: seed, label: "mpcnode-base-ot-sender-v1/" + label)
            point = try Ristretto255.multiplyGenerator(by: scalar)
            self.domain = domain
        }

        /// (k_i^0, k_i^1) for each of the receiver's points; throws on an invalid point (a peer's fault).
        public func keys(for points: [GroupElement]) throws -> [(zero: [UInt8], one: [UInt8])] {
            let a = point
            return try ParallelMap.map(Array(points.enumerated())) { i, b in
                let zero = try Ristretto255.multiply(b, by: scalar)
                let one = try Ristretto255.multiply(Ristretto255.subtract(b, a), by: scalar)
                return (BaseOT.key(domain, i, a, b, zero), BaseOT.key(domain, i, a, b, one))
            }
        }
    }

    /// The OT receiver's side: its points B_i for choice bits s, and the keys k_i^{s_i}.
    public static func choose(_ choices: [Bool], senderPoint a: GroupElement, seed: [UInt8], label: String,
                              domain: [UInt8]) throws -> (points: [GroupElement], keys: [[UInt8]]) {
        guard Ristretto255.isValid(a), a != Ristretto255.identity else {
            throw CryptoError.invalidGroupElement(reason: "the base-OT point is not a valid non-identity ristretto255 element")
        }
        let pairs = try ParallelMap.map(Array(choices.enumerated())) { i, choice -> (GroupElement, [UInt8]) in
            let b = try SecretScalar.derived(for: .ristretto255, seed: seed, label: "mpcnode-base-ot-receiver-v1/\(label)/\(i)")
            let bG = try Ristretto255.multiplyGenerator(by: b)
            let point = choice ? try Ristretto255.add(bG, a) : bG
            return (point, key(domain, i, a, point, try Ristretto255.multiply(a, by: b)))
        }
        return (pairs.map(\.0), pairs.map(\.1))
    }

    static func key(_ domain: [UInt8], _ i: Int, _ a: GroupElement, _ b: GroupElement, _ shared: GroupElement) -> [UInt8] {
        var message = Array("mpcnode-base-ot-key-v1".utf8) + domain
        withUnsafeBytes(of: UInt32(i).littleEndian) { message.append(contentsOf: $0) }
        message += GroupElement.pack([a, b, shared])
        return BucketKey.blake2b(message, length: 32, key: nil)
    }
}
