/// Fixed-point encoding of reals as integers modulo 2⁶⁴ (two's complement), for secure sums:
/// x ↦ round(x · 2^fractionBits). With 24 fraction bits the precision is 6·10⁻⁸ and sums stay exact
/// while |Σ x| < 2³⁹ (5·10¹¹).
public enum FixedPoint {
    public static let fractionBits = 24
    static let scale = Double(1 << fractionBits)

    public static func encode(_ x: Double) -> UInt64 {
        UInt64(bitPattern: Int64((x * scale).rounded()))
    }

    public static func decode(_ v: UInt64) -> Double {
        Double(Int64(bitPattern: v)) / scale
    }

    /// Whether `x` can be encoded and summed `parties` times without overflow.
    public static func fits(_ x: Double, parties: Int) -> Bool {
        x.isFinite && abs(x * scale) < Double(Int64.max) / Double(max(1, parties))
    }
}
