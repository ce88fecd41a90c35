import CSodium

/// Anonymous public-key encryption of short messages to one recipient (libsodium's sealed boxes:
/// an ephemeral X25519 key per message, XSalsa20-Poly1305). Sealing the same message twice gives
/// unrelated ciphertexts, and nothing in a box says who sealed it: a mixer can shuffle boxes from
/// several senders without learning their contents, and the recipient opens them without learning
/// their origin. A box is `sealedOverhead` (48) bytes longer than its message.
public enum SealedBox {
    public static let sealedOverhead = Int(crypto_box_sealbytes())

    public static func seal(_ message: [UInt8], to publicKey: [UInt8]) throws -> [UInt8] {
        Sodium.ensureInitialized()
        guard publicKey.count == 32 else { throw CryptoError.invalidGroupElement(reason: "sealing keys are 32-byte X25519 public keys") }
        var box = [UInt8](repeating: 0, count: message.count + sealedOverhead)
        guard crypto_box_seal(&box, message, UInt64(message.count), publicKey) == 0 else {
            throw CryptoError.invalidGroupElement(reason: "cannot seal to this public key")
        }
        return box
    }

    /// Opens a box sealed to `keyPair`; throws `decryptionFailed` for a tampered, truncated or foreign box.
    public static func open(_ box: some Collection<UInt8>, with keyPair: KeyAgreementKeyPair) throws -> [UInt8] {
        Sodium.ensureInitialized()
        let b = Array(box)
        guard b.count >= sealedOverhead else { throw CryptoError.decryptionFailed }
        var message = [UInt8](repeating: 0, count: b.count - sealedOverhead)
        guard crypto_box_seal_open(&message, b, UInt64(b.count), keyPair.publicKey, keyPair.secretKeyBytes) == 0 else {
            throw CryptoError.decryptionFailed
        }
        return message
    }
}
