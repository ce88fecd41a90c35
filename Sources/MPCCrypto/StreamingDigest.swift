import CSodium

/// BLAKE2b-256 over data given in pieces (libsodium's generichash): the digest of a stream of batches
/// that never has to be held whole.
public struct StreamingDigest: ~Copyable {
    // libsodium's state is a 64-byte-aligned struct Swift imports as opaque: kept in raw memory.
    private let state: UnsafeMutableRawPointer

    public init() {
        Sodium.ensureInitialized()
        state = UnsafeMutableRawPointer.allocate(byteCount: crypto_generichash_statebytes(), alignment: 64)
        crypto_generichash_init(OpaquePointer(state), nil, 0, 32)
    }

    deinit { state.deallocate() }

    public mutating func update(_ bytes: [UInt8]) {
        crypto_generichash_update(OpaquePointer(state), bytes, UInt64(bytes.count))
    }

    /// The 32-byte digest; the state is spent.
    public consuming func finalize() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        crypto_generichash_final(OpaquePointer(state), &out, 32)
        return out
    }
}
