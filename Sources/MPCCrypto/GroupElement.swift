import Foundation

/// A 32-byte encoded group element (a ristretto255 encoding or an X25519 u-coordinate).
///
/// Stored as four machine words so that millions of them sit densely in arrays and hash sets
/// (a `[UInt8]` would cost a heap allocation each). Equality is equality of encodings, which for
/// both groups used here is equality of elements (ristretto255 encodings are canonical; X25519
/// u-coordinates identify a point up to sign, and P and −P never both arise from distinct inputs
/// except with negligible probability).
public struct GroupElement: Hashable, Comparable, Sendable {
    public static let byteCount = 32

    public var w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64

    @inlinable
    public init(w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64) {
        self.w0 = w0; self.w1 = w1; self.w2 = w2; self.w3 = w3
    }

    /// Reads 32 bytes from `pointer` (no alignment required).
    @inlinable
    public init(loadingFrom pointer: UnsafeRawPointer) {
        w0 = pointer.loadUnaligned(fromByteOffset: 0, as: UInt64.self)
        w1 = pointer.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
        w2 = pointer.loadUnaligned(fromByteOffset: 16, as: UInt64.self)
        w3 = pointer.loadUnaligned(fromByteOffset: 24, as: UInt64.self)
    }

    /// Decodes 32 bytes; throws if `bytes` has another length. It does not check group membership:
    /// the group's operations do that when the element is used.
    public init<C: Collection>(bytes: C) throws where C.Element == UInt8 {
        guard bytes.count == Self.byteCount else {
            throw CryptoError.invalidGroupElement(reason: "expected 32 bytes, got \(bytes.count)")
        }
        var tmp = [UInt8](bytes)
        self = tmp.withUnsafeMutableBytes { GroupElement(loadingFrom: $0.baseAddress!) }
    }

    /// Writes the 32 bytes to `pointer`.
    @inlinable
    public func store(to pointer: UnsafeMutableRawPointer) {
        pointer.storeBytes(of: w0, toByteOffset: 0, as: UInt64.self)
        pointer.storeBytes(of: w1, toByteOffset: 8, as: UInt64.self)
        pointer.storeBytes(of: w2, toByteOffset: 16, as: UInt64.self)
        pointer.storeBytes(of: w3, toByteOffset: 24, as: UInt64.self)
    }

    /// The 32 encoded bytes.
    public var bytes: [UInt8] {
        [UInt8](unsafeUninitializedCapacity: 32) { buffer, count in
            store(to: UnsafeMutableRawPointer(buffer.baseAddress!))
            count = 32
        }
    }

    /// Lower-case hex of the encoding (for tests and diagnostics).
    public var hex: String { bytes.map { String(format: "%02x", $0) }.joined() }

    /// An arbitrary but fixed total order (by machine words), used to put pseudorandom elements
    /// into a canonical order before they are sent: sorting by value is a shuffle that needs no
    /// randomness and reveals nothing, since the values themselves are pseudorandom.
    @inlinable
    public static func < (a: GroupElement, b: GroupElement) -> Bool {
        if a.w0 != b.w0 { return a.w0 < b.w0 }
        if a.w1 != b.w1 { return a.w1 < b.w1 }
        if a.w2 != b.w2 { return a.w2 < b.w2 }
        return a.w3 < b.w3
    }
}

extension GroupElement {
    /// Packs elements into a contiguous byte string of 32 bytes each (the wire form of a batch).
    public static func pack(_ elements: some Collection<GroupElement>) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: elements.count * 32) { buffer, count in
            var offset = 0
            for e in elements {
                e.store(to: UnsafeMutableRawPointer(buffer.baseAddress! + offset))
                offset += 32
            }
            count = offset
        }
    }

    /// Unpacks a byte string made by `pack`; throws if its length is not a multiple of 32.
    public static func unpack<D: ContiguousBytes>(_ data: D) throws -> [GroupElement] {
        try data.withUnsafeBytes { raw in
            guard raw.count % 32 == 0 else {
                throw CryptoError.invalidGroupElement(reason: "batch of \(raw.count) bytes is not a multiple of 32")
            }
            let n = raw.count / 32
            return [GroupElement](unsafeUninitializedCapacity: n) { buffer, count in
                for i in 0..<n { buffer[i] = GroupElement(loadingFrom: raw.baseAddress! + i * 32) }
                count = n
            }
        }
    }
}

