import CSodium

/// A one-time mask for an owner's chain in the blinding ring (Protocols/multi-party-sets.md, step 1).
///
/// The owner starts its chain with a random scalar r instead of its key k, and finishes it with a
/// scalar s such that s·(r·e) = k·e for every element e of the prime-order group: the last owner
/// before it in the ring then handles values masked by r, which it cannot relate to the final
/// pseudonyms. In ristretto255 s = k·r⁻¹ (mod ℓ). In X25519 every scalar is clamped first (bit 254
/// set, low three bits clear), so s must be a clamped value congruent to clamp(k)·clamp(r)⁻¹: only
/// about half of the residues have one, so r is drawn again until it exists (two draws on average).
public struct RingMask: Sendable {
    /// Applied first, when the chain leaves its origin.
    public let start: SecretScalar
    /// Applied last, when the chain has come back (after every other owner's key).
    public let finish: SecretScalar

    public static func random(for key: SecretScalar, group: BlindingGroup) -> RingMask {
        Sodium.ensureInitialized()
        let k = key.littleEndianBytes
        switch group {
        case .ristretto255:
            while true {
                let r = SecretScalar.random(for: .ristretto255).littleEndianBytes
                var inverse = [UInt8](repeating: 0, count: 32)
                guard crypto_core_ristretto255_scalar_invert(&inverse, r) == 0 else { continue }
                var s = [UInt8](repeating: 0, count: 32)
                crypto_core_ristretto255_scalar_mul(&s, k, inverse)
                guard !s.allSatisfy({ $0 == 0 }) else { continue }
                return RingMask(start: SecretScalar(raw: r), finish: SecretScalar(raw: s))
            }
        case .x25519:
            let kEffective = Self.reduced(Self.clamped(k))
            let eighthInverse = Self.inverse(Self.reduced([8] + [UInt8](repeating: 0, count: 31)))
            var top = [UInt8](repeating: 0, count: 32)
            top[31] = 0x40  // 2^254
            let topReduced = Self.reduced(top)
            while true {
                let r = SecretScalar.random(for: .x25519).littleEndianBytes
                let t = Self.multiply(kEffective, Self.inverse(Self.reduced(Self.clamped(r))))
                var difference = [UInt8](repeating: 0, count: 32)
                crypto_core_ed25519_scalar_sub(&difference, t, topReduced)
                let m = Self.multiply(difference, eighthInverse)
                guard m[31] < 0x08 else { continue }  // m < 2^251, so 2^254 + 8m is a clamped value
                var s = [UInt8](repeating: 0, count: 32)
                var carry: UInt8 = 0
                for i in 0..<32 {
                    s[i] = (m[i] << 3) | carry
                    carry = m[i] >> 5
                }
                s[31] |= 0x40
                return RingMask(start: SecretScalar(raw: r), finish: SecretScalar(raw: s))
            }
        }
    }

    static func clamped(_ b: [UInt8]) -> [UInt8] {
        var c = b
        c[0] &= 248
        c[31] &= 127
        c[31] |= 64
        return c
    }

    static func reduced(_ b: [UInt8]) -> [UInt8] {
        var wide = b + [UInt8](repeating: 0, count: 64 - b.count)
        var out = [UInt8](repeating: 0, count: 32)
        crypto_core_ed25519_scalar_reduce(&out, &wide)
        return out
    }

    static func inverse(_ b: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        _ = crypto_core_ed25519_scalar_invert(&out, b)
        return out
    }

    static func multiply(_ a: [UInt8], _ b: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        crypto_core_ed25519_scalar_mul(&out, a, b)
        return out
    }
}

extension SecretScalar {
    var littleEndianBytes: [UInt8] {
        var b = bytes
        return withUnsafeBytes(of: &b) { Array($0) }
    }

    init(raw: [UInt8]) {
        bytes = raw.withUnsafeBytes { GroupElement(loadingFrom: $0.baseAddress!) }
    }
}

extension CommutativeCipher {
    /// The two ciphers of this cipher's ring mask: `finish.blind(start.hashAndBlind(x)) == hashAndBlind(x)`.
    public func ringMask() -> (start: CommutativeCipher, finish: CommutativeCipher) {
        let mask = RingMask.random(for: key, group: group)
        return (CommutativeCipher(group: group, domain: domain, key: mask.start),
                CommutativeCipher(group: group, domain: domain, key: mask.finish))
    }
}
