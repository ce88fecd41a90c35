import CSodium

/// XChaCha20-Poly1305 authenticated encryption (libsodium), with a random 24-byte nonce per message.
/// Decryption fails (throws) if the ciphertext, nonce or associated data was changed.
public enum ShareEncryption {
    public struct Sealed: Sendable, Equatable {
        public var nonce: [UInt8]
        public var ciphertext: [UInt8]
        public init(nonce: [UInt8], ciphertext: [UInt8]) { self.nonce = nonce; self.ciphertext = ciphertext }
    }

    public static func seal(_ plaintext: [UInt8], key: [UInt8], associatedData: [UInt8]) -> Sealed {
        precondition(key.count == 32)
        Sodium.ensureInitialized()
        var nonce = [UInt8](repeating: 0, count: 24)
        randombytes_buf(&nonce, 24)
        var out = [UInt8](repeating: 0, count: plaintext.count + 16)
        var length: UInt64 = 0
        crypto_aead_xchacha20poly1305_ietf_encrypt(&out, &length, plaintext, UInt64(plaintext.count),
                                                   associatedData, UInt64(associatedData.count), nil, nonce, key)
        return Sealed(nonce: nonce, ciphertext: Array(out.prefix(Int(length))))
    }

    public static func open(_ sealed: Sealed, key: [UInt8], associatedData: [UInt8]) throws -> [UInt8] {
        guard key.count == 32, sealed.nonce.count == 24, sealed.ciphertext.count >= 16 else {
            throw CryptoError.invalidScalar(reason: "malformed sealed message")
        }
        var out = [UInt8](repeating: 0, count: sealed.ciphertext.count - 16)
        var length: UInt64 = 0
        guard crypto_aead_xchacha20poly1305_ietf_decrypt(&out, &length, nil, sealed.ciphertext, UInt64(sealed.ciphertext.count),
                                                         associatedData, UInt64(associatedData.count), sealed.nonce, key) == 0 else {
            throw CryptoError.decryptionFailed
        }
        return Array(out.prefix(Int(length)))
    }
}
