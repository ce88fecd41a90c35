import Foundation
import MPCCrypto
import MPCLearning
import MPCTestSupport
import MPCWire
import XCTest
@testable import MPCProtocols

/// Finding 4: a dishonest host against the guest's labels, in memory with real Paillier.
final class VerticalLRLabelLeakageTests: XCTestCase {
    /// The arbiter as a decryption oracle: the host sends, as its "masked gradient", the encrypted residuals
    /// the guest gave it (one per row), hoping to read them decrypted. The arbiter decrypts exactly the
    /// host's width per batch, so it refuses, and the host gets nothing back.
    func testTheArbiterRefusesToDecryptAnythingButTheExpectedShapes() async throws {
        var rng = SplitMix(state: 11)
        let rows = 64
        let guest = LabeledRows(features: (0..<(rows * 3)).map { _ in Double.random(in: -1...1, using: &rng) },
                                labels: (0..<rows).map { _ in Double(rng.next() % 2) }, width: 3)
        let host = LabeledRows(features: (0..<(rows * 4)).map { _ in Double.random(in: -1...1, using: &rng) },
                               labels: [Double](repeating: 0, count: rows), width: 4)
        let parameters = VerticalLRParameters(jobID: "job-oracle", guest: "guest", hosts: ["host"], arbiter: "arbiter", rows: rows,
                                              training: .init(rounds: 1, localEpochs: 1, learningRate: 0.1, l2: 0, batchSize: 64, tolerance: 0),
                                              keyBits: 1024, minimumKeyBits: 1024)
        let replay = ResidualReplay()
        do {
            _ = try await VerticalLRInMemory.run(parameters, guest: guest, hosts: [host], intercept: replay.intercept)
            XCTFail("the arbiter decrypted the residuals")
        } catch {
            XCTAssertTrue("\(error)".contains("64 ciphertexts, expected 4"), "\(error)")
        }
        XCTAssertTrue(replay.substituted, "the attack was played")
        XCTAssertFalse(replay.hostGotPlaintexts, "nothing decrypted reached the host")
    }

    /// The batch-0 attack: a host knows its own features X (B × w) and, from its weights after the first
    /// batch, its gradient g = Xᵀd / B, where d = (u + 2)/4 − y (+ the guest's noise) are the residuals.
    /// With a batch no larger than its width the host solves for d and reads every label; above the floor
    /// (8 rows per feature + 1), with the guest's random start and residual noise, its best linear guess
    /// (the least-norm d) is close to chance. The labels here are independent of every feature, so chance
    /// is one half.
    func testTheBatchZeroResidueAttackFailsAboveTheBatchFloor() async throws {
        let width = 6
        func attack(rows: Int, floor: Int, noise: Double, zeroStart: Bool, seed: UInt64) async throws -> (right: Int, total: Int) {
            var rng = SplitMix(state: seed)
            let guest = LabeledRows(features: (0..<(rows * 3)).map { _ in Double.random(in: -1...1, using: &rng) },
                                    labels: (0..<rows).map { _ in Double(rng.next() % 2) }, width: 3)
            let x = (0..<(rows * width)).map { _ in Double.random(in: -1...1, using: &rng) }
            let host = LabeledRows(features: x, labels: [Double](repeating: 0, count: rows), width: width)
            let eta = 0.5
            let parameters = VerticalLRParameters(jobID: "job-residue", guest: "guest", hosts: ["host"], arbiter: "arbiter", rows: rows,
                                                  training: .init(rounds: 1, localEpochs: 1, learningRate: eta, l2: 0, batchSize: rows, tolerance: 0),
                                                  keyBits: 1024, minimumBatchRowsPerFeature: floor, minimumKeyBits: 1024, residualNoise: noise)
            let outcome = try await VerticalLRInMemory.run(parameters, guest: guest, hosts: [host],
                                                           guestInitialWeights: zeroStart ? [0, 0, 0] : nil)
            // The host started at zero: its weights are −η·g.
            let g = outcome.hostWeights[0].map { -$0 / eta * Double(rows) }  // Xᵀd
            let d = Self.leastNorm(x: x, rows: rows, width: width, xtd: g)
            let right = (0..<rows).filter { (d[$0] < 0 ? 1.0 : 0.0) == guest.labels[$0] }.count
            return (right, rows)
        }
        // Undefended: a batch of 6 rows for 6 features, zero start, no noise (a node's floor refuses this).
        var right = 0, total = 0
        for seed in 0..<UInt64(6) {
            let r = try await attack(rows: width, floor: 0, noise: 0, zeroStart: true, seed: 100 + seed)
            right += r.right; total += r.total
        }
        let undefended = Double(right) / Double(total)
        XCTAssertGreaterThanOrEqual(undefended, 0.95, "the attack works on a batch no larger than the width")
        // Defended: the default floor (8 × 7 = 56 rows), the guest's random start and a residual noise of 1.
        right = 0; total = 0
        for seed in 0..<UInt64(8) {
            let r = try await attack(rows: 56, floor: VerticalLRParameters.defaultMinimumBatchRowsPerFeature, noise: 1, zeroStart: false, seed: 200 + seed)
            right += r.right; total += r.total
        }
        let defended = Double(right) / Double(total)
        print("batch-0 residue attack: \(String(format: "%.3f", undefended)) of labels right on 6 rows × 6 features; \(String(format: "%.3f", defended)) on 56 rows with a random start and noise 1 (chance 0.5, \(total) labels)")
        // The guest's start and noise come from the CSPRNG: the figure varies (0.56–0.58 measured; the
        // NumPy sweep's mean is 0.555, σ ≈ 0.023 over 448 labels), so the bound sits four σ above it.
        XCTAssertLessThanOrEqual(defended, 0.65, "near chance above the floor")
        // And a node's policy check refuses the undefended batch before any data is read.
        XCTAssertThrowsError(try VerticalLRParameters(jobID: "j", guest: "guest", hosts: ["host"], arbiter: "arbiter", rows: 6,
                                                      training: .init(rounds: 1, localEpochs: 1, learningRate: 0.5, l2: 0, batchSize: 6, tolerance: 0))
            .checkBatches(width: width + 1, me: "host"))
    }

    /// The least-norm d with Xᵀd = b (B > w: d = X(XᵀX)⁻¹b), or the least-squares one (B ≤ w: d = (XXᵀ)⁻¹Xb).
    static func leastNorm(x: [Double], rows: Int, width: Int, xtd b: [Double]) -> [Double] {
        func at(_ i: Int, _ j: Int) -> Double { x[i * width + j] }
        if rows > width {
            let gram = (0..<width).map { j in (0..<width).map { k in (0..<rows).reduce(0) { $0 + at($1, j) * at($1, k) } } }
            let c = solve(gram, b)
            return (0..<rows).map { i in (0..<width).reduce(0) { $0 + at(i, $1) * c[$1] } }
        }
        let gram = (0..<rows).map { i in (0..<rows).map { k in (0..<width).reduce(0) { $0 + at(i, $1) * at(k, $1) } } }
        let xb = (0..<rows).map { i in (0..<width).reduce(0) { $0 + at(i, $1) * b[$1] } }
        return solve(gram, xb)
    }

    /// Gaussian elimination with partial pivoting.
    static func solve(_ a: [[Double]], _ b: [Double]) -> [Double] {
        var m = a, v = b
        let n = v.count
        for c in 0..<n {
            let p = (c..<n).max { abs(m[$0][c]) < abs(m[$1][c]) }!
            m.swapAt(c, p); v.swapAt(c, p)
            for r in (c + 1)..<n where m[c][c] != 0 {
                let f = m[r][c] / m[c][c]
                for k in c..<n { m[r][k] -= f * m[c][k] }
                v[r] -= f * v[c]
            }
        }
        var out = [Double](repeating: 0, count: n)
        for r in stride(from: n - 1, through: 0, by: -1) {
            out[r] = (v[r] - ((r + 1)..<n).reduce(0) { $0 + m[r][$1] * out[$1] }) / m[r][r]
        }
        return out
    }
}

/// A host that keeps the residuals the guest sent and submits them to the arbiter as its gradient.
final class ResidualReplay: @unchecked Sendable {
    private let lock = NSLock()
    private var residuals: [Data] = []
    private(set) var substituted = false
    private(set) var hostGotPlaintexts = false

    var intercept: InMemoryChannel.Intercept {
        { [self] from, to, message in
            guard var frame = try? Mpcnode_V1_SessionFrame(serializedBytes: message), case .vlr(var m)? = frame.body else { return [message] }
            return lock.withLock {
                switch (from, to, m.body) {
                case ("guest", "host", .residuals(let r)?):
                    residuals = r.values
                case ("host", "arbiter", .maskedGradient(var g)?) where !residuals.isEmpty:
                    g.values = residuals
                    m.maskedGradient = g
                    frame.vlr = m
                    substituted = true
                    return [(try? frame.serializedBytes()) ?? message]
                case ("arbiter", "host", .gradient?):
                    hostGotPlaintexts = true
                default:
                    break
                }
                return [message]
            }
        }
    }
}
