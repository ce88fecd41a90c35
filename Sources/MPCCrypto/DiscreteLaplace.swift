import CSodium

/// The discrete Laplace distribution with integer scale t: P(X = x) ∝ exp(−|x|/t), sampled exactly with
/// integer arithmetic (Canonne, Kamath and Steinke, "The Discrete Gaussian for Differential Privacy",
/// NeurIPS 2020, Algorithms 1–2), so no floating-point rounding leaks through the noise (Mironov 2012).
/// Adding DLap(⌈Δ/ε⌉) to a value whose sensitivity is Δ makes it ε-differentially private.
public enum DiscreteLaplace {
    /// One sample of DLap(`scale`), `scale` ≥ 1.
    public static func sample(scale t: UInt64, using random: inout some RandomNumberGenerator) -> Int64 {
        precondition(t >= 1 && t < 1 << 40, "scale out of range")
        while true {
            let u = UInt64.random(in: 0..<t, using: &random)
            guard bernoulliExp(numerator: u, denominator: t, using: &random) else { continue }
            var v: UInt64 = 0
            while bernoulliExp(numerator: 1, denominator: 1, using: &random) { v += 1 }
            let x = u &+ t &* v
            let negative = Bool.random(using: &random)
            if negative && x == 0 { continue }
            let magnitude = Int64(clamping: x)
            return negative ? -magnitude : magnitude
        }
    }

    /// One sample from the CSPRNG.
    public static func sample(scale t: UInt64) -> Int64 {
        var random = SodiumRandom()
        return sample(scale: t, using: &random)
    }

    /// Bernoulli(exp(−n/d)), for n/d ≥ 0.
    static func bernoulliExp(numerator n: UInt64, denominator d: UInt64, using random: inout some RandomNumberGenerator) -> Bool {
        var n = n
        // exp(−γ) = exp(−1)^⌊γ⌋ · exp(−(γ − ⌊γ⌋)).
        while n > d {
            guard bernoulliExpAtMostOne(numerator: 1, denominator: 1, using: &random) else { return false }
            n -= d
        }
        return bernoulliExpAtMostOne(numerator: n, denominator: d, using: &random)
    }

    /// Bernoulli(exp(−γ)) for γ = n/d in [0, 1]: the parity of the first K with Bernoulli(γ/K) = 0.
    private static func bernoulliExpAtMostOne(numerator n: UInt64, denominator d: UInt64, using random: inout some RandomNumberGenerator) -> Bool {
        var k: UInt64 = 1
        while UInt64.random(in: 0..<(d * k), using: &random) < n { k += 1 }
        return k % 2 == 1
    }
}

/// libsodium's CSPRNG as a `RandomNumberGenerator`.
public struct SodiumRandom: RandomNumberGenerator {
    public init() { Sodium.ensureInitialized() }
    public mutating func next() -> UInt64 {
        var value: UInt64 = 0
        withUnsafeMutableBytes(of: &value) { randombytes_buf($0.baseAddress!, 8) }
        return value
    }
}
