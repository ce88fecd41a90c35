import MPCCrypto

/// The receiver's cuckoo table of a KKRT instance (Protocols/psi-oprf.md): every element in one of
/// the three bins its code word names, at most one element a bin, no stash. Built by a random walk whose
/// coin flips come from the party's seed, so a redone bucket places every element where it did before.
struct CuckooTable: Sendable {
    let hash: CuckooHash
    /// The element in each bin, or -1.
    private(set) var element: [Int32]
    /// For each element, the hash function (0, 1, 2) that placed it.
    private(set) var function: [UInt8]

    /// The table for `count` code words (64 bytes each, end to end), or nil when the walk exceeds
    /// `maximumEvictions` for some element (the caller tries the next attempt).
    init?(codewords: [UInt8], count: Int, hash: CuckooHash, coins: UInt64, maximumEvictions: Int = KKRTParameters.maximumEvictions) {
        self.hash = hash
        element = [Int32](repeating: -1, count: hash.bins)
        function = [UInt8](repeating: 0, count: count)
        var rng = coins
        let placed: Bool = codewords.withUnsafeBytes { codes in
            for e in 0..<count {
                var current = e
                var lastBin = -1
                var evictions = 0
                while true {
                    let word = codes.baseAddress! + current * PseudorandomCode.bytes
                    var free = -1
                    for t in 0..<3 where element[hash.bin(t, codeword: word)] < 0 { free = t; break }
                    if free >= 0 {
                        element[hash.bin(free, codeword: word)] = Int32(current)
                        function[current] = UInt8(free)
                        break
                    }
                    guard evictions < maximumEvictions else { return false }
                    evictions += 1
                    rng = rng &+ 0x9E37_79B9_7F4A_7C15
                    var t = Int(Self.next(rng) % 3)
                    if hash.bin(t, codeword: word) == lastBin { t = (t + 1) % 3 }
                    let bin = hash.bin(t, codeword: word)
                    let evicted = Int(element[bin])
                    element[bin] = Int32(current)
                    function[current] = UInt8(t)
                    lastBin = bin
                    current = evicted
                }
            }
            return true
        }
        guard placed else { return nil }
    }

    private static func next(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
