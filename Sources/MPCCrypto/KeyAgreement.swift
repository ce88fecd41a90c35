import CSodium

/// An X25519 key pair for agreeing on a shared key with one peer (one job only).
///
/// `sharedKey(with:)` gives both sides the same 32 bytes: BLAKE2b-256 of the X25519 output and both
/// public keys in byte order (binding the key to the pair, as libsodium's `crypto_kx` does).
public struct KeyAgreementKeyPair: Sendable {
    public let publicKey: [UInt8]
    let secretKey: [UInt8]

    public static func generate() -> KeyAgreementKeyPair {
        Sodium.ensureInitialized()
        var sk = [UInt8](repeating: 0, count: 32)
        randombytes_buf(&sk, 32)
        var pk = [UInt8](repeating: 0, count: 32)
        crypto_scalarmult_base(&pk, sk)
        return KeyAgreementKeyPair(publicKey: pk, secretKey: sk)
    }

    /// A key pair from a known secret key (when a dropped party's key is reconstructed).
    public init(secretKey: [UInt8]) throws {
        guard secretKey.count == 32 else { throw CryptoError.invalidScalar(reason: "X25519 secret keys are 32 bytes") }
        Sodium.ensureInitialized()
        var pk = [UInt8](repeating: 0, count: 32)
        crypto_scalarmult_base(&pk, secretKey)
        self.publicKey = pk
        self.secretKey = secretKey
    }

    private init(publicKey: [UInt8], secretKey: [UInt8]) {
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    /// The secret key's bytes, for secret sharing only.
    public var secretKeyBytes: [UInt8] { secretKey }

    public func sharedKey(with peerPublicKey: [UInt8]) throws -> [UInt8] {
        guard peerPublicKey.count == 32 else { throw CryptoError.invalidGroupElement(reason: "X25519 public keys are 32 bytes") }
        var shared = [UInt8](repeating: 0, count: 32)
        guard crypto_scalarmult(&shared, secretKey, peerPublicKey) == 0 else { throw CryptoError.identityResult }
        let (low, high) = publicKey.lexicographicallyPrecedes(peerPublicKey) ? (publicKey, peerPublicKey) : (peerPublicKey, publicKey)
        let input = shared + low + high
        var key = [UInt8](repeating: 0, count: 32)
        crypto_generichash(&key, 32, input, UInt64(input.count), nil, 0)
        return key
    }
}
