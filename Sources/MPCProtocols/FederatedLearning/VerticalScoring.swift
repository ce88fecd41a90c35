import Foundation
import MPCLearning

/// Joint scoring with a vertical model (a `predict` job, and a training job's held-out evaluation), after
/// `VerticalRowAlignment` and over a session port: each host sends the guest its partial margins x_H·w_H
/// of the aligned rows, in the agreed order (one session of `stream` per host, host → guest); the guest, which holds the intercept, adds its own
/// margins and returns σ(x_G·w_G + b + Σ x_H·w_H) per row. A host learns nothing; the guest learns each
/// host's partial margins of the common rows (Protocols/federated-lr-vertical.md, "Prediction").
/// Transport-free: the same code runs between daemons and with N parties in one test process.
public struct VerticalScoring: Sendable {
    public static let predictStream = "predict"
    public static let evaluateStream = "evaluate"

    public struct Outcome: Sendable {
        /// The scores of the aligned rows, in the agreed order: at the guest only (nil at a host).
        public var scores: [Double]?
        public var bytesSent: UInt64
        public var bytesReceived: UInt64
    }

    public let guest: NodeID
    public let hosts: [NodeID]
    public let me: NodeID
    public let stream: String
    /// How long the guest waits for a host's session.
    public let sessionWait: Duration

    public init(guest: NodeID, hosts: [NodeID], me: NodeID, stream: String = Self.predictStream, sessionWait: Duration) {
        self.stream = stream
        self.guest = guest
        self.hosts = hosts
        self.me = me
        self.sessionWait = sessionWait
    }

    /// `ownMargins`: this party's x·w of the aligned rows in the agreed order (the guest's include the intercept).
    public func run(ownMargins: [Double], port: any SessionPort) async throws -> Outcome {
        if me != guest {
            let sent = try await port.withSession(stream: stream, to: guest) { channel in
                try await VerticalPrediction.sendPartialScores(ownMargins, over: channel)
            }
            return Outcome(scores: nil, bytesSent: sent, bytesReceived: 0)
        }
        let count = ownMargins.count, stream = stream
        let claimed = try await port.acceptAll(hosts.map { (stream, $0) }, timeout: sessionWait)
        return try await port.using(Array(claimed.values)) {
            var sum = ownMargins
            var received: UInt64 = 0
            for host in hosts {
                let (margins, bytes) = try await VerticalPrediction.receivePartialScores(count: count, over: claimed["\(stream)/\(host)"]!)
                for i in 0..<count { sum[i] += margins[i] }
                received += bytes
            }
            return Outcome(scores: sum.map(LogisticModel.sigmoid), bytesSent: 0, bytesReceived: received)
        }
    }
}
