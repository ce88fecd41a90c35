import Foundation
import MPCProtocols
import MPCTransport
import MPCWire

/// What vertical training and prediction share at a node: the party's own features in the spec, and
/// aligning the parties' rows on their identifier columns from the node's data.
enum VerticalRows {
    /// A vertical party's own feature columns in the spec.
    static func ownFeatures(_ spec: Mpcnode_V1_JobSpec, nodeID: String) -> [String] {
        let all = if case .predict(let p)? = spec.kind { p.partyFeatures } else { spec.training.partyFeatures }
        return all.first { $0.nodeID == nodeID }?.features ?? []
    }

    /// Aligns the parties' rows (`VerticalRowAlignment`) and returns the identifiers every party holds, in
    /// the agreed order, with the alignment's traffic.
    static func align(_ context: RoleContext, index: Int) async throws -> ([String], VerticalRowAlignment.Outcome) {
        let spec = context.spec, jobID = context.jobID, mine = spec.parties[index], isGuest = index == 0
        let guestID = spec.parties[0].nodeID, hosts = spec.parties.dropFirst().map(\.nodeID)
        let source = try context.snapshot(dataset: mine.dataset, column: mine.column)
        try context.recordStarted([
            "role": .string(isGuest ? "guest" : "host"),
            "peers": .string((isGuest ? hosts : [guestID]).joined(separator: ",")), "input_rows": .int(source.count),
        ])
        var aligner = VerticalRowAlignment(jobID: jobID, guest: guestID, hosts: Array(hosts), me: context.nodeID,
                                           waits: .init(session: context.sessionWaitTimeout, phase: RoleContext.setPhaseTimeout))
        aligner.peerSetSizes = try context.peerSetSizes(dataset: mine.dataset, ownSize: source.count)
        let alignment = try await aligner.run(source: source, port: context.sessions)
        var ids: [String] = []
        try source.forEachIdentifier(atPositions: alignment.positions) { ids.append($0) }
        return (VerticalRowAlignment.agreedOrder(ids, jobID: jobID), alignment)
    }
}
