import Foundation
import MPCCrypto
import MPCLearning

/// What the guest, the hosts and the arbiter of a vertical training agree on
/// (Protocols/federated-lr-vertical.md).
public struct VerticalLRParameters: Sendable {
    public var jobID: String
    public var guest: NodeID
    /// The feature holders, in the job's order: the order of the chain that sums their margins.
    public var hosts: [NodeID]
    public var arbiter: NodeID
    /// Aligned rows (the same at the guest and every host; the arbiter does not need it).
    public var rows: Int
    public var training: TrainingParameters
    public var keyBits: Int
    /// Each party's number of features (the guest's without the intercept): the arbiter decrypts exactly
    /// that many values per party and batch (one more for the guest), never what a party chooses to send.
    public var widths: [NodeID: Int]
    /// The least batch size each party accepts, per feature of its own (plus one): a batch gradient
    /// of B rows gives the party width equations in B residuals, so a batch not well above the width
    /// lets it solve for the residuals, and with them the labels (Protocols/federated-lr-vertical.md).
    public var minimumBatchRowsPerFeature: Int
    /// The smallest Paillier modulus any role accepts, whatever the spec says.
    public var minimumKeyBits: Int
    /// The standard deviation of zero-mean noise the guest adds to each residual it sends (labels'
    /// protection against a host's gradient; 0 = none). The guest's own choice.
    public var residualNoise: Double

    public static let defaultMinimumBatchRowsPerFeature = 8

    public init(jobID: String, guest: NodeID, hosts: [NodeID], arbiter: NodeID, rows: Int, training: TrainingParameters, keyBits: Int = 2048,
                widths: [NodeID: Int] = [:], minimumBatchRowsPerFeature: Int = VerticalLRParameters.defaultMinimumBatchRowsPerFeature,
                minimumKeyBits: Int = 2048, residualNoise: Double = 0) {
        self.jobID = jobID
        self.guest = guest
        self.hosts = hosts
        self.arbiter = arbiter
        self.rows = rows
        self.training = training
        self.keyBits = keyBits
        self.widths = widths
        self.minimumBatchRowsPerFeature = minimumBatchRowsPerFeature
        self.minimumKeyBits = minimumKeyBits
        self.residualNoise = residualNoise
    }

    /// Fixed-point scale of features, weights and margins.
    static let scale = 65_536.0

    var batchSize: Int { max(1, training.batchSize) }
    /// Full batches only: the rows left over join the last batch, so no batch is ever smaller than the
    /// batch size (a small last batch would undo the batch-size floor).
    var batches: Int { max(1, rows / batchSize) }
    func batch(_ b: Int) -> Range<Int> { (b * batchSize)..<(b == batches - 1 ? rows : (b + 1) * batchSize) }

    /// The same parameters with every party's width.
    public func withWidths(guest g: Int, hosts h: [Int]) -> VerticalLRParameters {
        var p = self
        p.widths = Dictionary(uniqueKeysWithValues: [(guest, g)] + Array(zip(hosts, h)))
        return p
    }

    /// The least batch a party with `width` features (intercept included) accepts.
    func minimumBatch(width: Int) -> Int { minimumBatchRowsPerFeature * width }

    /// Each party's own checks before it sends anything: its batch floor and the rows to fill a batch.
    func checkBatches(width: Int, me: NodeID) throws {
        let floor = minimumBatch(width: width)
        guard batchSize >= floor else {
            throw ProtocolError.parameterMismatch(peer: me, detail: "batch size \(batchSize) is below this party's floor of \(floor) rows (\(minimumBatchRowsPerFeature) per feature for \(width)): a batch gradient would reveal the residuals")
        }
        guard rows >= batchSize else {
            throw ProtocolError.parameterMismatch(peer: me, detail: "\(rows) aligned rows cannot fill one batch of \(batchSize)")
        }
    }

    /// The key a party received, checked against its own floor (never the spec's number alone).
    func checkKey(_ key: PaillierPublicKey, from arbiter: NodeID) throws {
        guard key.bits >= minimumKeyBits else {
            throw ProtocolError.protocolViolation(peer: arbiter, detail: "a Paillier modulus of \(key.bits) bits, below this party's floor of \(minimumKeyBits)")
        }
    }

    static func fixed(_ x: Double) -> Int64 { FixedPoint.saturating(x * scale) }

    /// The largest plausible magnitude of a mean gradient component (features and residuals are bounded
    /// in fixed point); anything beyond is a lying arbiter or a diverged run, and ends the training.
    static let gradientBound = 1e9

    /// The batch's feature columns in fixed point: columns[j][k] = S·x_(row k, feature j).
    static func columns(_ data: LabeledRows, rows: Range<Int>) -> [[Int64]] {
        (0..<data.width).map { j -> [Int64] in rows.map { i -> Int64 in fixed(data.features[i * data.width + j]) } }
    }
}
