import Foundation
import MPCWire

/// Joint scoring with a vertical model (a `predict` job): after the alignment, each host sends its partial
/// margins x_H·w_H of the aligned rows to the guest, which adds its own and the intercept.
public enum VerticalPrediction {
    public static func sendPartialScores(_ margins: [Double], over channel: any MessageChannel) async throws -> UInt64 {
        let session = ProtocolSession(channel: channel)
        try await session.sendVLR { $0.partialScores = .with { $0.margins = margins } }
        await channel.close()
        return session.bytesSent
    }

    public static func receivePartialScores(count: Int, over channel: any MessageChannel) async throws -> ([Double], UInt64) {
        let session = ProtocolSession(channel: channel)
        guard case .partialScores(let p) = try await session.receiveVLR("the host's partial scores"), p.margins.count == count,
              p.margins.allSatisfy({ $0.isFinite }) else {
            throw ProtocolError.protocolViolation(peer: channel.peer, detail: "expected \(count) partial scores")
        }
        await channel.close()
        return (p.margins, session.bytesReceived)
    }
}
