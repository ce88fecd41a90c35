import CSodium

/// Authenticated symmetric encryption with a node-local key (libsodium's `crypto_secretbox`,
/// XSalsa20-Poly1305): what keeps a job's secrets on disk only readable by the node that wrote them.
public enum SecretBox {
    public static let keyLength = 32

    /// A fresh random key.
    public static func randomKey() -> [UInt8] { BucketKey.randomBytes(keyLength) }

    /// nonce ‖ ciphertext ‖ tag.
    public static func seal(_ message: [UInt8], key: [UInt8]) throws -> [UInt8] {
        guard key.count == keyLength else { throw CryptoError.invalidKey(reason: "a secret-box key is 32 bytes") }
        let nonceLength = Int(crypto_secretbox_noncebytes())
        let nonce = BucketKey.randomBytes(nonceLength)
        var box = [UInt8](repeating: 0, count: message.count + Int(crypto_secretbox_macbytes()))
        guard crypto_secretbox_easy(&box, message, UInt64(message.count), nonce, key) == 0 else {
            throw CryptoError.invalidKey(reason: "secret-box sealing failed")
        }
        return nonce + box
    }

    /// The message, or an error if the box was altered or sealed with another key.
    public static func open(_ sealed: [UInt8], key: [UInt8]) throws -> [UInt8] {
        let nonceLength = Int(crypto_secretbox_noncebytes()), mac = Int(crypto_secretbox_macbytes())
        guard key.count == keyLength, sealed.count >= nonceLength + mac else {
            throw CryptoError.decryptionFailed
        }
        let nonce = Array(sealed[..<nonceLength]), box = Array(sealed[nonceLength...])
        var message = [UInt8](repeating: 0, count: box.count - mac)
        guard crypto_secretbox_open_easy(&message, box, UInt64(box.count), nonce, key) == 0 else {
            throw CryptoError.decryptionFailed
        }
        return message
    }
}
