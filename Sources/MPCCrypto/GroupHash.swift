import CSodium

/// Hashing identifiers onto a blinding group: `H(x) = map(BLAKE2b(tag ‖ len(domain) ‖ domain ‖ x))`.
///
/// The tag and the length-prefixed domain make the encoding injective, so no two (domain, identifier)
/// pairs share a hash input. The output is a group element, not a digest: it is only ever sent after
/// being multiplied by a secret scalar.
public enum GroupHash {
    static let tag: [UInt8] = Array("MPCNode/hash-to-group/v1".utf8)

    public static func hash(_ identifier: some Collection<UInt8>, domain: [UInt8], group: BlindingGroup) -> GroupElement {
        Sodium.ensureInitialized()
        let outputLength = group == .ristretto255 ? 64 : 32
        var message = tag
        message.reserveCapacity(tag.count + 4 + domain.count + identifier.count)
        withUnsafeBytes(of: UInt32(domain.count).littleEndian) { message.append(contentsOf: $0) }
        message.append(contentsOf: domain)
        message.append(contentsOf: identifier)
        var digest = [UInt8](repeating: 0, count: outputLength)
        crypto_generichash(&digest, outputLength, message, UInt64(message.count), nil, 0)
        // The maps below never fail on digests of the right length.
        switch group {
        case .ristretto255: return try! Ristretto255.fromUniformBytes(digest)
        case .x25519: return try! X25519.fromUniformBytes(digest)
        }
    }
}
