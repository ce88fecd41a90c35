import CSodium
import Foundation

/// Plain (unkeyed) hashes of an identifier, as a naive implementation might send them. Tests check
/// that none of them, nor an 8-byte prefix of one (a truncated hash), appears on the wire.
public enum PlainHashes {
    public static func of(_ identifier: [UInt8]) -> [[UInt8]] {
        _ = sodium_init()
        var sha256 = [UInt8](repeating: 0, count: 32)
        crypto_hash_sha256(&sha256, identifier, UInt64(identifier.count))
        var sha512 = [UInt8](repeating: 0, count: 64)
        crypto_hash_sha512(&sha512, identifier, UInt64(identifier.count))
        var blake32 = [UInt8](repeating: 0, count: 32)
        crypto_generichash(&blake32, 32, identifier, UInt64(identifier.count), nil, 0)
        var blake64 = [UInt8](repeating: 0, count: 64)
        crypto_generichash(&blake64, 64, identifier, UInt64(identifier.count), nil, 0)
        let full = [sha256, sha512, blake32, blake64]
        return full + full.map { Array($0.prefix(8)) }
    }
}

/// Substring search over bytes.
public enum ByteSearch {
    public static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty else { return true }
        guard haystack.count >= needle.count else { return false }
        let first = needle[0], last = haystack.count - needle.count
        return haystack.withUnsafeBufferPointer { h in
            needle.withUnsafeBufferPointer { n in
                var i = 0
                while i <= last {
                    if h[i] == first && memcmp(h.baseAddress! + i, n.baseAddress!, n.count) == 0 { return true }
                    i += 1
                }
                return false
            }
        }
    }
}
