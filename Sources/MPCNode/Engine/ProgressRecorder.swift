import MPCProtocols
import Foundation
import MPCWire

/// Where a running job stands on one node: units done of a total, the latest loss of a training, the time
/// since the phase started and an estimate of the time left (linear in the units done so far).
public struct ProgressSnapshot: Codable, Sendable, Equatable {
    public var done: Int
    public var total: Int
    /// What `done` and `total` count: "elements", "per cent", "rounds", "epochs".
    public var unit: String
    public var loss: Double?
    public var elapsedMs: Int
    /// nil until something is done (no basis for an estimate).
    public var remainingMs: Int?

    public init(done: Int, total: Int, unit: String, loss: Double? = nil, elapsedMs: Int = 0, remainingMs: Int? = nil) {
        self.done = done
        self.total = total
        self.unit = unit
        self.loss = loss
        self.elapsedMs = elapsedMs
        self.remainingMs = remainingMs
    }

    /// The estimate after `elapsedMs` for `done` of `total`: the mean time per unit so far times the units left.
    public static func estimate(done: Int, total: Int, unit: String, loss: Double?, elapsedMs: Int) -> ProgressSnapshot {
        let remaining: Int? = done >= total ? 0 : done > 0 ? Int(Double(elapsedMs) / Double(done) * Double(total - done)) : nil
        return ProgressSnapshot(done: done, total: total, unit: unit, loss: loss, elapsedMs: elapsedMs, remainingMs: remaining)
    }

    init(_ m: Mpcnode_V1_JobProgress) {
        self.init(done: Int(clamping: m.done), total: Int(clamping: m.total), unit: m.unit.isEmpty ? "elements" : PeerText.cut(m.unit, limit: 32),
                  loss: m.hasLoss_p ? m.loss : nil, elapsedMs: Int(clamping: m.elapsedMs),
                  remainingMs: m.remainingMs == 0 && m.done < m.total ? nil : Int(clamping: m.remainingMs))
    }

    func message(jobID: String) -> Mpcnode_V1_JobProgress {
        .with {
            $0.jobID = jobID
            $0.done = UInt64(max(0, done))
            $0.total = UInt64(max(0, total))
            $0.unit = unit
            if let loss { $0.hasLoss_p = true; $0.loss = loss }
            $0.elapsedMs = UInt64(max(0, elapsedMs))
            $0.remainingMs = UInt64(max(0, remainingMs ?? 0))
        }
    }

    /// "3/10 epochs (30%), loss 0.4123, elapsed 12 s, ≈ 28 s left".
    public var summary: String {
        var text = "\(done)/\(total) \(unit)"
        if total > 0 && unit != "per cent" { text += " (\(Int(100 * Double(done) / Double(total)))%)" }
        return text + lossText + ", elapsed " + Self.duration(elapsedMs) + leftText
    }

    /// A party's progress in a few words: "42%, ≈ 5 s left", or for a training "epoch 3/10, loss 0.4123, 12 s, ≈ 28 s left".
    public var brief: String {
        guard unit == "rounds" || unit == "epochs" else { return "\(Int(100 * Double(done) / Double(max(1, total))))%" + leftText }
        return "\(unit == "rounds" ? "round" : "epoch") \(done)/\(total)" + lossText + (elapsedMs > 0 ? ", " + Self.duration(elapsedMs) : "") + leftText
    }

    private var lossText: String { loss.map { String(format: ", loss %.4f", $0) } ?? "" }
    private var leftText: String { remainingMs.map { done < total && done > 0 ? ", ≈ " + Self.duration($0) + " left" : "" } ?? "" }

    public static func duration(_ ms: Int) -> String {
        let s = ms / 1000
        if s < 60 { return ms < 10_000 ? String(format: "%.1f s", Double(ms) / 1000) : "\(s) s" }
        if s < 3600 { return "\(s / 60) min \(s % 60) s" }
        return "\(s / 3600) h \(s / 60 % 60) min"
    }
}

/// Writes a job's progress to the store at most once a second, and forwards it (to the coordinator)
/// at most every two seconds; the first and the last record always go through. Time runs from the
/// recorder's creation (the start of the phase it follows).
final class ProgressRecorder: @unchecked Sendable {
    private let repository: JobRepository
    private let jobID: String
    private let unit: String
    private let started = Date()
    private let forward: @Sendable (ProgressSnapshot) -> Void
    private let lock = NSLock()
    private var lastStored = Date.distantPast
    private var lastForwarded = Date.distantPast
    private var lastDone: Int?

    init(repository: JobRepository, jobID: String, unit: String, forward: @escaping @Sendable (ProgressSnapshot) -> Void) {
        self.repository = repository
        self.jobID = jobID
        self.unit = unit
        self.forward = forward
    }

    func record(done: Int, total: Int, loss: Double? = nil) {
        let now = Date()
        let snapshot = ProgressSnapshot.estimate(done: done, total: total, unit: unit, loss: loss,
                                                 elapsedMs: Int(now.timeIntervalSince(started) * 1000))
        let (store, send) = lock.withLock { () -> (Bool, Bool) in
            // The start and the end go through at once, but only once each.
            let edge = (done == total || done == 0) && lastDone != done
            lastDone = done
            let store = edge || now.timeIntervalSince(lastStored) >= 1
            let send = edge || now.timeIntervalSince(lastForwarded) >= 2
            if store { lastStored = now }
            if send { lastForwarded = now }
            return (store, send)
        }
        if store { try? repository.setProgress(jobID: jobID, snapshot) }
        if send { forward(snapshot) }
    }
}
