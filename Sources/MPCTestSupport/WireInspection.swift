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
        WireIndex(haystack).contains(needle)
    }
}

/// Everything a node sent, indexed for many substring searches: a set of every 4-byte window, so
/// that most needles are ruled out by one look-up and only candidates are scanned.
public struct WireIndex {
    public let bytes: [UInt8]
    private let windows: Set<UInt32>

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
        var windows = Set<UInt32>(minimumCapacity: bytes.count)
        if bytes.count >= 4 {
            for i in 0...(bytes.count - 4) { windows.insert(Self.word(bytes, i)) }
        }
        self.windows = windows
    }

    private static func word(_ b: [UInt8], _ i: Int) -> UInt32 {
        UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3])
    }

    public func contains(_ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty else { return true }
        guard bytes.count >= needle.count else { return false }
        if needle.count >= 4 && !windows.contains(Self.word(needle, 0)) { return false }
        let first = needle[0], last = bytes.count - needle.count
        return bytes.withUnsafeBufferPointer { h in
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
