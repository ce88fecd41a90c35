/// Numbers a peer sends, checked before they are used as counts, sizes or positions: a value beyond
/// its limit is a protocol violation naming the peer and the field, never a trapping conversion or an
/// allocation the peer chose.
public enum WireNumber {
    /// The most elements any set protocol accepts in one input, delivery or stream (2^28).
    public static let maximumSetSize = 1 << 28

    /// `value` as an Int, if it is at most `limit`.
    public static func count(_ value: UInt64, limit: Int, field: String, peer: NodeID) throws -> Int {
        guard value <= UInt64(max(0, limit)) else {
            throw ProtocolError.protocolViolation(peer: peer, detail: "\(field) \(value) exceeds \(limit)")
        }
        return Int(value)
    }

    /// Capacity to reserve for `announced` elements: never more than `cap` up front (the rest grows
    /// as elements actually arrive, so an announced size alone cannot make a node allocate gigabytes).
    public static func reservation(_ announced: Int, cap: Int = 1 << 20) -> Int { min(max(0, announced), cap) }
}
