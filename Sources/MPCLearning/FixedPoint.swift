/// Fixed-point encoding of reals as integers modulo 2⁶⁴ (two's complement), for secure sums:
/// x ↦ round(x · 2^fractionBits). With 24 fraction bits the precision is 6·10⁻⁸ and sums stay exact
/// while |Σ x| < 2³⁹ (5·10¹¹).
public enum FixedPoint {
    public static let fractionBits = 24
    static let scale = Double(1 << fractionBits)

    public static func encode(_ x: Double) -> UInt64 {
        UInt64(bitPattern: saturating(x * scale))
    }

    /// `x` rounded to an Int64, saturated at the type's range and 0 for NaN: a value from a peer (a
    /// model, a gradient) that has blown up must never trap the conversion. Callers that must not
    /// compute with such values check them (`fits`, or their protocol's plausibility checks).
    public static func saturating(_ x: Double) -> Int64 {
        guard !x.isNaN else { return 0 }
        if x >= 9.2e18 { return Int64.max }
        if x <= -9.2e18 { return Int64.min }
        return Int64(x.rounded())
    }

    public static func decode(_ v: UInt64) -> Double {
        Double(Int64(bitPattern: v)) / scale
    }

    /// Whether `x` can be encoded and summed `parties` times without overflow.
    public static func fits(_ x: Double, parties: Int) -> Bool {
        x.isFinite && abs(x * scale) < Double(Int64.max) / Double(max(1, parties))
    }
}
