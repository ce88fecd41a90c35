import CSodium

/// HMAC-SHA-256 (RFC 2104) with a key of any length, through libsodium. Deterministic: the same key
/// and message give the same 32 bytes at every party, which is what an agreed order of rows needs.
public enum HMACSHA256 {
    public static func authenticate(_ message: some Collection<UInt8>, key: some Collection<UInt8>) -> [UInt8] {
        Sodium.ensureInitialized()
        var state = crypto_auth_hmacsha256_state()
        let k = Array(key), m = Array(message)
        crypto_auth_hmacsha256_init(&state, k, k.count)
        crypto_auth_hmacsha256_update(&state, m, UInt64(m.count))
        var out = [UInt8](repeating: 0, count: 32)
        crypto_auth_hmacsha256_final(&state, &out)
        return out
    }
}
