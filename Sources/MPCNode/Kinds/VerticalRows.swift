import Crypto
import Foundation
import MPCProtocols
import MPCTransport
import MPCWire

/// What vertical training and prediction share: aligning the parties' rows on their identifier
/// columns, and collecting the hosts' partial margins at the guest.
enum VerticalRows {
    /// A vertical party's own feature columns in the spec.
    static func ownFeatures(_ spec: Mpcnode_V1_JobSpec, nodeID: String) -> [String] {
        spec.training.partyFeatures.first { $0.nodeID == nodeID }?.features ?? []
    }

    /// At the guest: every host's partial margins of the same rows (sessions of `stream` from each host), summed.
    static func receivePartialScores(_ context: RoleContext, stream: String, from hosts: [String], count: Int,
                                     traffic: TrafficTally) async throws -> [Double] {
        let claimed = try await context.claimAll(hosts.map { (stream, $0) })
        return try await TLSMessageChannel.using(Array(claimed.values)) {
            var sum = [Double](repeating: 0, count: count)
            for host in hosts {
                let (margins, bytes) = try await VerticalPrediction.receivePartialScores(count: count, over: claimed["\(stream)/\(host)"]!)
                for i in 0..<count { sum[i] += margins[i] }
                traffic.add(sent: 0, received: bytes)
            }
            return sum
        }
    }

    /// What the alignment gives a party: the identifiers every party holds, in the agreed order, and its
    /// PSI traffic.
    struct Alignment {
        var ownSetSize: Int
        var bytesSent: UInt64
        var bytesReceived: UInt64
    }

    /// Aligns the parties' rows on their identifier columns. The guest runs a PSI with each host in which
    /// only the guest learns the intersection, with the host's positions of the matches; it keeps the
    /// identifiers all hosts hold and tells each host which of its rows (positions in its PSI stream) those
    /// are. Both sides order the common identifiers by HMAC-SHA-256 keyed with the job id, so all end with the
    /// same list, and a host learns nothing of the guest's identifiers beyond the joint intersection.
    static func align(_ context: RoleContext, index: Int) async throws -> ([String], Alignment) {
        let spec = context.spec, jobID = context.jobID, mine = spec.parties[index], isGuest = index == 0
        let guestID = spec.parties[0].nodeID, hosts = spec.parties.dropFirst().map(\.nodeID)
        let source = try context.snapshot(dataset: mine.dataset, column: mine.column)
        try context.recordStarted([
            "role": .string(isGuest ? "guest" : "host"),
            "peers": .string((isGuest ? hosts : [guestID]).joined(separator: ",")), "input_rows": .int(source.count),
        ])
        var alignment = Alignment(ownSetSize: source.count, bytesSent: 0, bytesReceived: 0)
        var positions: [Int]
        if isGuest {
            var psi = PSIParty.Configuration(jobID: jobID, group: .x25519, selfReceivesOutput: true, peerReceivesOutput: false, cardinalityOnly: false)
            psi.reportsPeerPositions = true
            let withPeerPositions = psi
            let reports = try await withThrowingTaskGroup(of: (Int, PSIParty.Report).self) { group in
                for (i, host) in hosts.enumerated() {
                    group.addTask {
                        let report = try await context.withSession(stream: "align", to: host) { channel in
                            try await PSIParty(configuration: withPeerPositions, source: source, channel: channel).run()
                        }
                        return (i, report)
                    }
                }
                var out = [PSIParty.Report?](repeating: nil, count: hosts.count)
                for try await (i, r) in group { out[i] = r }
                return out.map { $0! }
            }
            // Own position → the host's position, per host; the joint intersection is what every host matched.
            var matches: [[Int: Int]] = []
            for (i, r) in reports.enumerated() {
                guard case .matches(let own, let theirs) = r.output else {
                    throw JobError.invalidSubmission("the alignment with \(hosts[i]) delivered no intersection")
                }
                matches.append(Dictionary(uniqueKeysWithValues: zip(own, theirs)))
                alignment.bytesSent += r.bytesSent
                alignment.bytesReceived += r.bytesReceived
            }
            positions = matches[0].keys.filter { p in matches.allSatisfy { $0[p] != nil } }.sorted()
            for (i, host) in hosts.enumerated() {
                let theirs = positions.map { matches[i][$0]! }
                alignment.bytesSent += try await context.withSession(stream: "aligned", to: host) { channel in
                    try await VerticalAlignment.sendAlignedRows(theirs, over: channel)
                }
            }
        } else {
            let psi = PSIParty.Configuration(jobID: jobID, group: .x25519, selfReceivesOutput: false, peerReceivesOutput: true, cardinalityOnly: false)
            let channel = try await context.claim(stream: "align", from: guestID)
            let report = try await TLSMessageChannel.using([channel]) {
                try await PSIParty(configuration: psi, source: source, channel: channel).run()
            }
            alignment.bytesSent += report.bytesSent
            alignment.bytesReceived += report.bytesReceived
            // The guest runs a PSI with every host before it answers: wait as long as a set phase may take.
            let rows = try await context.claim(stream: "aligned", from: guestID, timeout: RoleContext.setPhaseTimeout)
            let (received, bytes) = try await TLSMessageChannel.using([rows]) {
                try await VerticalAlignment.receiveAlignedRows(setSize: source.count, over: rows)
            }
            positions = received
            alignment.bytesReceived += bytes
        }
        var ids: [String] = []
        try source.forEachIdentifier(atPositions: positions) { ids.append($0) }
        let key = SymmetricKey(data: Data(jobID.utf8))
        let order = ids.map { (Data(HMAC<SHA256>.authenticationCode(for: Data($0.utf8), using: key)), $0) }
            .sorted { $0.0.lexicographicallyPrecedes($1.0) }.map(\.1)
        return (order, alignment)
    }
}
