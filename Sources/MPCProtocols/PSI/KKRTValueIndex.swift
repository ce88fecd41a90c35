/// The receiver's own OPRF values of a KKRT instance, for looking up the sender's (Protocols/psi-oprf.md
/// step 5): open addressing with linear probing, indexed by the value's first word (the values are
/// pseudorandom, so they need no further hashing). About 3·m lookups against m values.
struct KKRTValueIndex {
    private var first: [UInt64]
    private var second: [UInt64]
    /// Element + 1 in each slot (0: empty).
    private var element: [Int32]
    private let mask: Int
    private let length: Int

    /// Room for `count` values of `length` bytes (at most 16), the table at most half full.
    init(count: Int, length: Int) {
        var size = 16
        while size < 2 * count { size <<= 1 }
        first = [UInt64](repeating: 0, count: size)
        second = [UInt64](repeating: 0, count: size)
        element = [Int32](repeating: 0, count: size)
        mask = size - 1
        self.length = length
    }

    /// The value's two words, zero-padded beyond `length` bytes.
    @inline(__always)
    private func words(_ value: UnsafeRawPointer) -> (UInt64, UInt64) {
        var w = (UInt64(0), UInt64(0))
        withUnsafeMutableBytes(of: &w) { $0.baseAddress!.copyMemory(from: value, byteCount: length) }
        return w
    }

    mutating func insert(_ value: UnsafeRawPointer, element e: Int32) {
        let (a, b) = words(value)
        var slot = Int(truncatingIfNeeded: a) & mask
        while element[slot] != 0 {
            if first[slot] == a && second[slot] == b { return }  // an equal value (probability ~2^-40): keep the first
            slot = (slot + 1) & mask
        }
        first[slot] = a
        second[slot] = b
        element[slot] = e + 1
    }

    func find(_ value: UnsafeRawPointer) -> Int32? {
        let (a, b) = words(value)
        var slot = Int(truncatingIfNeeded: a) & mask
        while element[slot] != 0 {
            if first[slot] == a && second[slot] == b { return element[slot] - 1 }
            slot = (slot + 1) & mask
        }
        return nil
    }
}
