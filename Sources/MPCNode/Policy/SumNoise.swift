import Foundation
import GRDB
import MPCCrypto
import MPCWire

/// The differential-privacy noise a data owner adds to its own contribution to secure sums on a dataset
/// (`sum_noise_epsilon`, `sum_value_bound`), and its privacy budget (`sum_epsilon_per_day`).
///
/// Each owner protects its own records, whatever the others do: it clamps each record's value of a `sum`
/// measure to ±`valueBound`, so one record moves its cell's measures by at most Δ = m_sum·bound + m_count
/// (in fixed point), and adds discrete Laplace noise of scale ⌈Δ/ε⌉ to every measure of every cell before
/// anything is masked. A record lies in one cell, so a job spends ε of this dataset's budget; the counts of
/// records and parties per cell are exact (the suppression rule needs them) and are not covered.
public struct SumNoise: Sendable, Equatable {
    public var epsilon: Double
    /// The largest magnitude one record may add to a `sum` measure, in the column's units.
    public var valueBound: Double
    /// The ε this dataset may spend on secure sums over the last 24 hours (nil: no budget).
    public var epsilonPerDay: Double?

    public init(epsilon: Double, valueBound: Double, epsilonPerDay: Double? = nil) {
        self.epsilon = epsilon
        self.valueBound = valueBound
        self.epsilonPerDay = epsilonPerDay
    }

    /// The bound in the job's fixed point (at least 1).
    public func clip(decimals: Int) -> Int64 {
        Int64(min(Double(Int64.max / 4), max(1, (valueBound * pow(10, Double(decimals))).rounded(.up))))
    }

    /// The largest scale the sampler draws from.
    static let maximumScale: Double = Double(1 << 39)

    /// The noise's integer scale ⌈Δ/ε⌉ for the job's measures, or nil when it is beyond the sampler's range
    /// (never clamped: a smaller scale would spend more ε than the policy says).
    public func scale(_ aggregate: Mpcnode_V1_AggregateSpec) -> UInt64? {
        let clip = Double(self.clip(decimals: Int(aggregate.decimals)))
        let sensitivity = aggregate.measures.reduce(0.0) { $0 + ($1.function == "sum" ? clip : 1) }
        let scale = max(1, (sensitivity / epsilon).rounded(.up))
        return scale <= Self.maximumScale ? UInt64(scale) : nil
    }

    /// Why this node cannot noise a sum of `aggregate` as its policy says, or nil.
    public func refusal(_ aggregate: Mpcnode_V1_AggregateSpec) -> String? {
        guard scale(aggregate) == nil else { return nil }
        return "the noise this dataset's policy asks for (sum_value_bound \(valueBound) at \(aggregate.decimals) decimals, ε \(epsilon)) is beyond the sampler's range: ask for fewer decimals"
    }

    /// Adds the noise to every measure slot of `vector` (cells of `records, present, measures…`), in place.
    public func apply(to vector: inout [UInt64], aggregate: Mpcnode_V1_AggregateSpec, using random: inout some RandomNumberGenerator) throws {
        let width = LocalAggregate.slotsPerCellBeforeMeasures + aggregate.measures.count
        // The proposal is refused when the scale is out of range (`refusal`); checked again here.
        guard let t = scale(aggregate) else { throw JobError.refusedDuringJob(refusal(aggregate) ?? "noise scale out of range") }
        for cell in 0..<(vector.count / width) {
            for k in 0..<aggregate.measures.count {
                let i = cell * width + LocalAggregate.slotsPerCellBeforeMeasures + k
                vector[i] = vector[i] &+ UInt64(bitPattern: DiscreteLaplace.sample(scale: t, using: &random))
            }
        }
    }

    /// Why a new secure sum on `dataset` would overspend the day's budget, or nil.
    public func budgetRefusal(dataset: String, nodeID: String, now: Date = Date(), _ db: Database) throws -> String? {
        guard let perDay = epsilonPerDay else { return nil }
        var jobs = 0
        let rows = try Row.fetchCursor(db, sql: "SELECT spec FROM job WHERE role = ? AND state != ? AND created_at >= ?",
                                       arguments: [JobRole.participant.rawValue, JobState.refused.rawValue, now.addingTimeInterval(-86_400)])
        while let row = try rows.next() {
            guard let spec = try? Mpcnode_V1_JobSpec(serializedBytes: [UInt8](row["spec"] as Data)), case .aggregate? = spec.kind,
                  spec.parties.contains(where: { $0.nodeID == nodeID && $0.dataset == dataset }) else { continue }
            jobs += 1
        }
        let spent = Double(jobs) * epsilon
        guard spent + epsilon > perDay + 1e-9 else { return nil }
        return "dataset '\(dataset)' spent ε = \(spent) on \(jobs) secure sums in the last 24 hours; another (ε = \(epsilon)) would exceed its privacy budget (sum_epsilon_per_day \(perDay)); try again later"
    }
}
