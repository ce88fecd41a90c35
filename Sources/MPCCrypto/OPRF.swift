import CSodium

/// The oblivious pseudorandom function of RFC 9497 in its base mode (0x00) with the ristretto255-SHA512
/// suite: F(k, x) = SHA-512(len(x) ‖ x ‖ len(Z) ‖ Z ‖ "Finalize") with Z = k·HashToGroup(x).
///
/// A client that wants F(k, x) sends Blind(x) = r·HashToGroup(x) for a fresh random r, the key holder
/// answers k·(r·HashToGroup(x)) (`evaluate`), and the client removes r (`finalize`). The holder learns
/// nothing of x (r·H(x) is a uniformly random element); the client learns F(k, x) for its own x and
/// nothing of k. The holder computes F(k, x) for its own entries directly (`output`). Known-answer tests:
/// RFC 9497, Appendix A.1.1.
///
/// Thread-safe (no state); the key and blinds are `SecretScalar`s, never printed.
public enum OPRF {
    /// "OPRFV1-" ‖ I2OSP(mode, 1) ‖ "-" ‖ "ristretto255-SHA512".
    static let contextString: [UInt8] = Array("OPRFV1-".utf8) + [0x00] + Array("-ristretto255-SHA512".utf8)

    /// A blinded input and the blind that made it (the client keeps the blind until `finalize`).
    public struct Blinded: Sendable {
        public let blind: SecretScalar
        public let element: GroupElement
    }

    /// HashToGroup: expand_message_xmd(SHA-512) to 64 bytes, then the RFC 9496 one-way map.
    public static func hashToGroup(_ input: [UInt8]) -> GroupElement {
        let uniform = expandMessageXMD(input, dst: Array("HashToGroup-".utf8) + contextString, length: 64)
        return try! Ristretto255.fromUniformBytes(uniform)
    }

    /// The key derived from a 32-byte seed and public info (RFC 9497, Section 3.2.1).
    public static func deriveKey(seed: [UInt8], info: [UInt8]) throws -> SecretScalar {
        guard seed.count == 32, info.count < 1 << 16 else { throw CryptoError.invalidScalar(reason: "a 32-byte seed and info under 64 KiB") }
        let deriveInput = seed + i2osp2(info.count) + info
        for counter in 0...255 {
            let scalar = hashToScalar(deriveInput + [UInt8(counter)], dst: Array("DeriveKeyPair".utf8) + contextString)
            if !scalar.allSatisfy({ $0 == 0 }) { return try SecretScalar(littleEndianBytes: scalar) }
        }
        throw CryptoError.invalidScalar(reason: "no key could be derived from this seed")
    }

    /// Blind(x) with a fresh random blind, or with `blind` (known-answer tests).
    public static func blind(_ input: [UInt8], with blind: SecretScalar? = nil) throws -> Blinded {
        let r = blind ?? SecretScalar.random(for: .ristretto255)
        return Blinded(blind: r, element: try Ristretto255.multiply(hashToGroup(input), by: r))
    }

    /// Blind(x) from x's HashToGroup computed once (a key blinded for several holders: a fresh blind each).
    public static func blind(hashed: GroupElement, with blind: SecretScalar? = nil) throws -> Blinded {
        let r = blind ?? SecretScalar.random(for: .ristretto255)
        return Blinded(blind: r, element: try Ristretto255.multiply(hashed, by: r))
    }

    /// The key holder's answer to a blinded element; throws if it is not a valid, non-identity element.
    public static func evaluate(_ blinded: GroupElement, key: SecretScalar) throws -> GroupElement {
        try Ristretto255.multiply(blinded, by: key)
    }

    /// The client's output from the holder's answer: 64 bytes.
    public static func finalize(_ input: [UInt8], blind: SecretScalar, evaluated: GroupElement) throws -> [UInt8] {
        let inverse = try invert(blind)
        return finalHash(input, try Ristretto255.multiply(evaluated, by: inverse))
    }

    /// Finalize with the blind's inverse computed once (one blinded key answered by several holders).
    public static func finalize(_ input: [UInt8], inverseBlind: SecretScalar, evaluated: GroupElement) throws -> [UInt8] {
        finalHash(input, try Ristretto255.multiply(evaluated, by: inverseBlind))
    }

    /// The inverse of a blind (mod the group order).
    public static func inverse(of blind: SecretScalar) throws -> SecretScalar { try invert(blind) }

    /// The inverses of many blinds with one inversion (Montgomery's trick: three scalar products a blind,
    /// where an inversion costs half a scalar multiplication).
    public static func inverses(of blinds: [SecretScalar]) throws -> [SecretScalar] {
        guard blinds.count > 1 else { return try blinds.map(invert) }
        Sodium.ensureInitialized()
        var values = blinds.map { $0.bytes.bytes }
        defer { for i in values.indices { sodium_memzero(&values[i], 32) } }
        var prefix = [[UInt8]](repeating: [], count: values.count)  // prefix[i] = values[0] ⋯ values[i]
        prefix[0] = values[0]
        for i in 1..<values.count {
            var product = [UInt8](repeating: 0, count: 32)
            crypto_core_ristretto255_scalar_mul(&product, prefix[i - 1], values[i])
            prefix[i] = product
        }
        var running = [UInt8](repeating: 0, count: 32)  // (values[0] ⋯ values[i])⁻¹
        guard crypto_core_ristretto255_scalar_invert(&running, prefix[values.count - 1]) == 0 else {
            throw CryptoError.invalidScalar(reason: "a zero blind")
        }
        var out = [SecretScalar?](repeating: nil, count: values.count)
        var product = [UInt8](repeating: 0, count: 32)
        for i in stride(from: values.count - 1, through: 1, by: -1) {
            crypto_core_ristretto255_scalar_mul(&product, running, prefix[i - 1])
            out[i] = try SecretScalar(littleEndianBytes: product)
            crypto_core_ristretto255_scalar_mul(&product, running, values[i])
            running = product
        }
        out[0] = try SecretScalar(littleEndianBytes: running)
        // The blinds and their products are secrets (with a blinded element, a blind gives the key away).
        for i in prefix.indices { sodium_memzero(&prefix[i], 32) }
        sodium_memzero(&running, 32)
        sodium_memzero(&product, 32)
        return out.map { $0! }
    }

    /// F(k, x) computed by the key holder itself (for the entries of its own list).
    public static func output(_ input: [UInt8], key: SecretScalar) throws -> [UInt8] {
        finalHash(input, try Ristretto255.multiply(hashToGroup(input), by: key))
    }

    private static func finalHash(_ input: [UInt8], _ z: GroupElement) -> [UInt8] {
        let element = z.bytes
        return sha512(i2osp2(input.count) + input + i2osp2(element.count) + element + Array("Finalize".utf8))
    }

    static func hashToScalar(_ input: [UInt8], dst: [UInt8]) -> [UInt8] {
        let uniform = expandMessageXMD(input, dst: dst, length: 64)
        var scalar = [UInt8](repeating: 0, count: 32)
        crypto_core_ristretto255_scalar_reduce(&scalar, uniform)
        return scalar
    }

    private static func invert(_ s: SecretScalar) throws -> SecretScalar {
        Sodium.ensureInitialized()
        let bytes = s.bytes.bytes
        var inverse = [UInt8](repeating: 0, count: 32)
        guard crypto_core_ristretto255_scalar_invert(&inverse, bytes) == 0 else { throw CryptoError.invalidScalar(reason: "a zero blind") }
        return try SecretScalar(littleEndianBytes: inverse)
    }

    /// expand_message_xmd with SHA-512 (RFC 9380, Section 5.3.1).
    static func expandMessageXMD(_ message: [UInt8], dst: [UInt8], length: Int) -> [UInt8] {
        precondition(dst.count <= 255 && length <= 255 * 64 && length > 0)
        let blocks = (length + 63) / 64
        let dstPrime = dst + [UInt8(dst.count)]
        let b0 = sha512([UInt8](repeating: 0, count: 128) + message + i2osp2(length) + [0] + dstPrime)
        var b = sha512(b0 + [1] + dstPrime)
        var uniform = b
        if blocks > 1 {
            for i in 2...blocks {
                b = sha512(zip(b0, b).map { $0 ^ $1 } + [UInt8(i)] + dstPrime)
                uniform += b
            }
        }
        return Array(uniform.prefix(length))
    }

    static func sha512(_ message: [UInt8]) -> [UInt8] {
        Sodium.ensureInitialized()
        var digest = [UInt8](repeating: 0, count: 64)
        crypto_hash_sha512(&digest, message, UInt64(message.count))
        return digest
    }

    private static func i2osp2(_ n: Int) -> [UInt8] { [UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n)] }
}
