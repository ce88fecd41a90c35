import CSodium
import Dispatch
import Foundation

/// Hashing identifiers onto a blinding group. The output is a group element, not a digest: it is only
/// ever sent after being multiplied by a secret scalar.
///
/// - ristretto255: `from_hash(BLAKE2b-512(tag ‖ len(domain) ‖ domain ‖ x))` — the tag and the
///   length-prefixed domain make the encoding injective, so no two (domain, identifier) pairs share a
///   hash input.
/// - X25519: RFC 9380's `hash_to_curve` (curve25519_XMD:SHA-512_ELL2_RO_, a random oracle onto the curve;
///   `Curve25519HashToCurve`) with the DST `x25519DSTPrefix ‖ domain` (the DST's length is part of the
///   hash, so the pair is unambiguous).
public enum GroupHash {
    static let tag: [UInt8] = Array("MPCNode/hash-to-group/v1".utf8)
    public static let x25519DSTPrefix: [UInt8] = Array("MPCNode-V02-CS02-with-curve25519_XMD:SHA-512_ELL2_RO_:".utf8)

    public static func hash(_ identifier: some Collection<UInt8>, domain: [UInt8], group: BlindingGroup) -> GroupElement {
        Sodium.ensureInitialized()
        if group == .x25519 {
            // nil only when the two maps' points cancel (about 2^-252): the zero u-coordinate, which
            // X25519 refuses, so the identifier fails loudly instead of meeting another.
            let u = Curve25519HashToCurve.Hasher(dst: x25519DSTPrefix + domain).hashToCurveU(Array(identifier)) ?? [UInt8](repeating: 0, count: 32)
            return u.withUnsafeBytes { GroupElement(loadingFrom: $0.baseAddress!) }
        }
        let outputLength = 64
        var message = tag
        message.reserveCapacity(tag.count + 4 + domain.count + identifier.count)
        withUnsafeBytes(of: UInt32(domain.count).littleEndian) { message.append(contentsOf: $0) }
        message.append(contentsOf: domain)
        message.append(contentsOf: identifier)
        var digest = [UInt8](repeating: 0, count: outputLength)
        crypto_generichash(&digest, outputLength, message, UInt64(message.count), nil, 0)
        // The map never fails on 64 bytes.
        return try! Ristretto255.fromUniformBytes(digest)
    }

    /// `hash` of each identifier, in order, spread over the machine's cores. X25519 hashes slices of 64
    /// together (one field inversion a slice: about a third less work a hash).
    public static func hash(batch identifiers: [[UInt8]], domain: [UInt8], group: BlindingGroup) throws -> [GroupElement] {
        guard group == .x25519 else { return try ParallelMap.map(identifiers) { hash($0, domain: domain, group: group) } }
        let hasher = Curve25519HashToCurve.Hasher(dst: x25519DSTPrefix + domain)
        let slice = 64
        let slices = stride(from: 0, to: identifiers.count, by: slice).map { Array(identifiers[$0 ..< min($0 + slice, identifiers.count)]) }
        // ParallelMap runs a batch of fewer than 64 items on this thread: spread slices directly.
        let results = SliceResults(count: slices.count)
        DispatchQueue.concurrentPerform(iterations: slices.count) { k in
            results.set(k, hasher.elements(batch: slices[k]))
        }
        return results.all.flatMap { $0 }
    }
}

/// The results of slices computed on several threads, each written once.
private final class SliceResults: @unchecked Sendable {
    private var values: [[GroupElement]]
    private let lock = NSLock()
    init(count: Int) { values = Array(repeating: [], count: count) }
    func set(_ k: Int, _ v: [GroupElement]) { lock.lock(); values[k] = v; lock.unlock() }
    var all: [[GroupElement]] { lock.lock(); defer { lock.unlock() }; return values }
}
