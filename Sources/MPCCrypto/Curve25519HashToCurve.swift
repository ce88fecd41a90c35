import CCurve25519
import CSodium

/// RFC 9380's `hash_to_curve` for the suite curve25519_XMD:SHA-512_ELL2_RO_: `expand_message_xmd` with
/// SHA-512 to 96 bytes, two field elements, two Elligator 2 maps onto Curve25519 and their sum — a random
/// oracle onto the curve — computed in a small C target (`CCurve25519`: GF(2^255 − 19) in 51-bit limbs,
/// one exponentiation per map and one inversion). The result is the sum's u-coordinate *before* the
/// RFC's final multiplication by the cofactor 8: X25519's clamped scalars are multiples of 8 and do it
/// (`X25519(k, H'(x)) = X25519(k/8, 8·H'(x))`), so blinding gives the same values as with the RFC's point.
/// Checked against the RFC's test vectors (appendix J.7.1) with the cofactor applied by three doublings
/// (`Curve25519HashToCurveTests`). Docs/decisions/0007-hash-to-curve25519.md says why.
public enum Curve25519HashToCurve {
    /// The longest DST used as is (RFC 9380 §5.3.3: longer ones are hashed first).
    static let maximumDSTBytes = 255
    static let uniformBytes = 96

    /// The DST as used: `dst`, or SHA-512("H2C-OVERSIZE-DST-" ‖ dst) when longer than 255 bytes.
    public static func effectiveDST(_ dst: [UInt8]) -> [UInt8] {
        guard dst.count > maximumDSTBytes else { return dst }
        Sodium.ensureInitialized()
        let input = Array("H2C-OVERSIZE-DST-".utf8) + dst
        var out = [UInt8](repeating: 0, count: 64)
        crypto_hash_sha512(&out, input, UInt64(input.count))
        return out
    }

    /// `expand_message_xmd(msg, DST, length)` with SHA-512 (RFC 9380 §5.3.1), for length ≤ 255·64.
    public static func expandMessageXMD(_ message: some Collection<UInt8>, dst: [UInt8], length: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: length)
        out.withUnsafeMutableBufferPointer { Hasher(dst: dst).expand(Array(message), length: length, into: $0.baseAddress!) }
        return out
    }

    /// The u-coordinate (32 bytes, little-endian) of `hash_to_curve(message)` before the cofactor
    /// multiplication; nil when the two maps' points cancel (probability about 2^-252).
    public static func hashToCurveU(_ message: some Collection<UInt8>, dst: [UInt8]) -> [UInt8]? {
        Hasher(dst: dst).hashToCurveU(Array(message))
    }

    /// Hashing with one DST: its `DST_prime` computed once.
    public struct Hasher: Sendable {
        let dstPrime: [UInt8]

        public init(dst: [UInt8]) {
            let effective = Curve25519HashToCurve.effectiveDST(dst)
            dstPrime = effective + [UInt8(effective.count)]
        }

        /// `expand_message_xmd` of `message` to `length` bytes at `out` (in C, as for a batch).
        func expand(_ message: [UInt8], length: Int, into out: UnsafeMutablePointer<UInt8>) {
            precondition(length > 0 && length <= 255 * 64)
            mpc_curve25519_expand_xmd(out, message, [0, message.count], 1, dstPrime, dstPrime.count, length)
        }

        /// See `Curve25519HashToCurve.hashToCurveU`.
        public func hashToCurveU(_ message: [UInt8]) -> [UInt8]? {
            var uniform = [UInt8](repeating: 0, count: Curve25519HashToCurve.uniformBytes)
            uniform.withUnsafeMutableBufferPointer { expand(message, length: Curve25519HashToCurve.uniformBytes, into: $0.baseAddress!) }
            var out = [UInt8](repeating: 0, count: 32)
            guard mpc_curve25519_hash_to_curve_u(&out, uniform) == 0 else { return nil }
            return out
        }

        /// `hashToCurveU` of each message, sharing one field inversion among them; a message whose two
        /// points cancel gets the all-zero u-coordinate (which X25519 refuses). `expand_message_xmd` runs in
        /// C over the messages laid end to end (no array a message).
        public func hashToCurveU(batch messages: [[UInt8]]) -> [[UInt8]] {
            let out = uCoordinates(batch: messages)
            return (0..<messages.count).map { Array(out[$0 * 32 ..< $0 * 32 + 32]) }
        }

        /// The points of `hashToCurveU(batch:)` as group elements (no array a point).
        public func elements(batch messages: [[UInt8]]) -> [GroupElement] {
            let out = uCoordinates(batch: messages)
            return out.withUnsafeBytes { raw in (0..<messages.count).map { GroupElement(loadingFrom: raw.baseAddress! + 32 * $0) } }
        }

        /// The u-coordinates of a batch, laid end to end.
        private func uCoordinates(batch messages: [[UInt8]]) -> [UInt8] {
            let n = messages.count, width = Curve25519HashToCurve.uniformBytes
            guard n > 0 else { return [] }
            var flat: [UInt8] = [], offsets = [Int](repeating: 0, count: n + 1)
            flat.reserveCapacity(messages.reduce(0) { $0 + $1.count })
            for (k, message) in messages.enumerated() { flat += message; offsets[k + 1] = flat.count }
            var uniform = [UInt8](repeating: 0, count: n * width)
            mpc_curve25519_expand_xmd(&uniform, flat, offsets, n, dstPrime, dstPrime.count, width)
            var out = [UInt8](repeating: 0, count: n * 32)
            // -2: no memory for the shared inversion; each message alone then (-1, a cancelled sum, is zeros).
            guard mpc_curve25519_hash_to_curve_u_batch(&out, uniform, n) != -2 else {
                return messages.flatMap { hashToCurveU($0) ?? [UInt8](repeating: 0, count: 32) }
            }
            return out
        }
    }

    /// The field element `hash_to_field` derives from 48 uniform bytes, big-endian (as the RFC prints it).
    static func fieldElement(fromUniform bytes: [UInt8]) -> [UInt8] {
        precondition(bytes.count == 48)
        var out = [UInt8](repeating: 0, count: 32)
        mpc_curve25519_field_from_uniform_be(&out, bytes)
        return out
    }

    /// Elligator 2 of a field element (big-endian in and out): the point (u, v).
    static func map(fieldElement: [UInt8]) -> (u: [UInt8], v: [UInt8]) {
        var u = [UInt8](repeating: 0, count: 32), v = [UInt8](repeating: 0, count: 32)
        mpc_curve25519_map_be(&u, &v, fieldElement)
        return (u, v)
    }

    /// The u-coordinate of 2P from that of P (little-endian).
    static func double(u: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        mpc_curve25519_double_u(&out, u)
        return out
    }
}
