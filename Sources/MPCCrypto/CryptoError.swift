/// Errors raised by the crypto primitives. Each case says what went wrong with the input;
/// none of them carries secret material.
public enum CryptoError: Error, Equatable, CustomStringConvertible {
    /// Bytes that should encode a group element do not (wrong length, non-canonical or off-curve).
    case invalidGroupElement(reason: String)
    /// Bytes that should encode a scalar do not.
    case invalidScalar(reason: String)
    /// A scalar multiplication produced the identity element: the input was the identity or of small order.
    case identityResult
    /// Authenticated decryption failed: wrong key, or the message was altered.
    case decryptionFailed
    /// Too few, duplicate or inconsistent shares to reconstruct a secret.
    case cannotReconstruct(reason: String)
    /// A symmetric key or key share of the wrong length.
    case invalidKey(reason: String)

    public var description: String {
        switch self {
        case .invalidGroupElement(let reason): return "invalid group element: \(reason)"
        case .invalidScalar(let reason): return "invalid scalar: \(reason)"
        case .identityResult: return "scalar multiplication gave the identity element (degenerate input)"
        case .decryptionFailed: return "authenticated decryption failed (wrong key or altered message)"
        case .cannotReconstruct(let reason): return "cannot reconstruct the secret: \(reason)"
        case .invalidKey(let reason): return "invalid key: \(reason)"
        }
    }
}
