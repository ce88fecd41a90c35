import Foundation
import MPCWire

/// A secure sum of cells released in two phases (Protocols/secure-aggregation.md, "Cells released in two
/// phases"), so that the server never computes the measures of a cell it must suppress.
///
/// Each client's vector holds, per cell, `[records, contributing (0 or 1), measure 1, …, measure m]`
/// (`CellSuppression`). Phase 1 sums only the two counts of every cell. The server keeps the cells whose
/// counts pass the minimums and tells every client of phase 1 which they are; phase 2 sums the measures of
/// those cells only, among exactly the clients of phase 1, with every one of them needed: a client lost
/// between the phases ends the job, since the counts of one set of clients and the sums of another would
/// single out the missing one. The release is bound into phase 2's signatures (its spec hash), so clients
/// told different releases abort before any masked input.
public enum TwoPhaseCellSum {
    /// The sessions each client opens to the server, in order.
    public enum Stream {
        public static let counts = "cell-counts"
        public static let release = "cell-release"
        public static let measures = "cell-measures"
    }

    /// The cells of one sum and the minimums a released cell must meet.
    public struct Layout: Sendable, Equatable {
        public var cells: Int
        public var measures: Int
        public var minRecords: UInt64
        public var minParties: UInt32

        public init(cells: Int, measures: Int, minRecords: UInt64, minParties: UInt32) {
            self.cells = cells
            self.measures = measures
            self.minRecords = minRecords
            self.minParties = minParties
        }

        var width: Int { CellSuppression.slotsBeforeMeasures + measures }

        /// The two counts of every cell, from a full vector.
        func counts(of vector: [UInt64]) -> [UInt64] {
            (0..<cells).flatMap { vector[($0 * width)..<($0 * width + CellSuppression.slotsBeforeMeasures)] }
        }

        /// The measures of `released` cells, in order, from a full vector.
        func measures(of vector: [UInt64], released: [Int]) -> [UInt64] {
            released.flatMap { vector[($0 * width + CellSuppression.slotsBeforeMeasures)..<(($0 + 1) * width)] }
        }

        /// The cells whose summed counts meet both minimums.
        public func passing(counts: [UInt64]) -> [Int] {
            (0..<cells).filter { i in
                let records = Int64(bitPattern: counts[2 * i]), parties = Int64(bitPattern: counts[2 * i + 1])
                return records >= Int64(clamping: minRecords) && parties >= Int64(minParties)
            }
        }
    }

    /// What the second phase's signatures bind: the job's spec hash, the released cells and the clients.
    static func releaseHash(specHash: [UInt8], cells: [Int], clients: [NodeID]) -> [UInt8] {
        var m = Array("MPCNode/cell-release/v1".utf8)
        func put(_ part: [UInt8]) {
            withUnsafeBytes(of: UInt32(part.count).littleEndian) { m.append(contentsOf: $0) }
            m.append(contentsOf: part)
        }
        put(specHash)
        put(cells.flatMap { c in withUnsafeBytes(of: UInt32(c).littleEndian) { Array($0) } })
        for c in clients { put(Array(c.utf8)) }
        return m
    }

    static func measuresParameters(_ base: SecureAggregationParameters, layout: Layout, cells: [Int], clients: [NodeID]) -> SecureAggregationParameters {
        var p = base
        p.specHash = releaseHash(specHash: base.specHash, cells: cells, clients: clients)
        p.clients = clients.sorted()
        p.threshold = clients.count
        p.length = cells.count * layout.measures
        return p
    }

    static func countsParameters(_ base: SecureAggregationParameters, layout: Layout) -> SecureAggregationParameters {
        var p = base
        p.length = layout.cells * CellSuppression.slotsBeforeMeasures
        return p
    }

    /// A client: contributes its vector's counts, then the measures of the released cells.
    public struct Client: Sendable {
        public struct Outcome: Sendable, Equatable {
            /// The clients in both sums.
            public var included: [NodeID]
            /// The cells whose measures were summed (increasing).
            public var released: [Int]
        }

        public let parameters: SecureAggregationParameters
        public let layout: Layout
        public let me: NodeID
        public let vector: [UInt64]
        public let authentication: KeyAuthentication
        public let auditRecordHash: [UInt8]
        public let afterRound: (@Sendable (SecureAggregationClient.Round) -> Void)?
        /// This client's own check of the release (the cells and the clients), before any measure is sent;
        /// throws to send nothing (e.g. the release would differ from an earlier one by one client).
        public var approveRelease: (@Sendable (_ cells: [Int], _ clients: [NodeID]) throws -> Void)?

        /// - Parameters:
        ///   - parameters: the sum's clients, server, threshold and spec hash (the lengths follow from `layout`);
        ///     its `minimumSurvivors` is this client's own floor of contributing clients, in both phases.
        ///   - vector: `layout.cells` cells of `layout.width` values.
        public init(parameters: SecureAggregationParameters, layout: Layout, me: NodeID, vector: [UInt64], authentication: KeyAuthentication,
                    auditRecordHash: [UInt8] = [], afterRound: (@Sendable (SecureAggregationClient.Round) -> Void)? = nil) {
            self.parameters = parameters
            self.layout = layout
            self.me = me
            self.vector = vector
            self.authentication = authentication
            self.auditRecordHash = auditRecordHash
            self.afterRound = afterRound
        }

        public func run(port: any SessionPort) async throws -> Outcome {
            guard vector.count == layout.cells * layout.width else {
                throw SecureAggregationError.wrongVectorLength(peer: me, expected: layout.cells * layout.width, got: vector.count)
            }
            let server = parameters.server
            let counts = layout.counts(of: vector)
            // All three sessions open at the start: the server sees at once, by its closed sessions, a
            // client that is gone, instead of waiting for one it would open later.
            return try await port.withSession(stream: Stream.release, to: server) { releaseChannel in
                try await port.withSession(stream: Stream.measures, to: server) { measuresChannel in
                    let first = try await port.withSession(stream: Stream.counts, to: server) { channel in
                        try await SecureAggregationClient(parameters: countsParameters(parameters, layout: layout), me: me, input: counts, channel: channel,
                                                          authentication: authentication, auditRecordHash: auditRecordHash, afterRound: afterRound).run()
                    }
                    guard case .cellRelease(let release) = try await ProtocolSession(channel: releaseChannel).receiveSecAgg() else {
                        throw ProtocolError.protocolViolation(peer: server, detail: "expected the released cells")
                    }
                    let cells = try check(release, countsIncluded: first.included)
                    guard !cells.isEmpty else { return Outcome(included: first.included, released: []) }
                    try approveRelease?(cells, release.clients)
                    let p = measuresParameters(parameters, layout: layout, cells: cells, clients: release.clients)
                    let second = try await SecureAggregationClient(parameters: p, me: me, input: layout.measures(of: vector, released: cells),
                                                                   channel: measuresChannel, authentication: authentication,
                                                                   auditRecordHash: auditRecordHash, afterRound: afterRound).run()
                    guard second.included.sorted() == first.included.sorted() else {
                        throw SecureAggregationError.inconsistentRound(peer: server, detail: "the measures' sum names other clients than the counts' sum")
                    }
                    return Outcome(included: first.included, released: cells)
                }
            }
        }

        /// The release must name cells of this sum, increasing, and exactly the clients of the counts' sum
        /// (this one among them, at least this client's floor of them).
        private func check(_ r: Mpcnode_V1_SecAggCellRelease, countsIncluded: [NodeID]) throws -> [Int] {
            let server = parameters.server
            guard r.cells.count <= layout.cells, zip(r.cells, r.cells.dropFirst()).allSatisfy({ $0 < $1 }),
                  r.cells.allSatisfy({ Int($0) < layout.cells }) else {
                throw ProtocolError.protocolViolation(peer: server, detail: "released cells that are not increasing cells of this sum")
            }
            guard r.clients == countsIncluded.sorted() else {
                throw ProtocolError.protocolViolation(peer: server, detail: "the release names other clients than the counts' sum")
            }
            guard r.clients.count >= parameters.minimumSurvivors else {
                throw SecureAggregationError.tooFewSurvivors(round: "cell release", survivors: r.clients.count, threshold: parameters.minimumSurvivors)
            }
            return r.cells.map { Int($0) }
        }
    }

    /// The server: sums the counts, releases the passing cells, sums their measures.
    public struct Server: Sendable {
        public struct Outcome: Sendable {
            /// Per cell, `[records, contributing clients]`, over `included`.
            public var counts: [UInt64]
            /// The released cells, increasing, and their measures in that order.
            public var released: [Int]
            public var measures: [UInt64]
            public var included: [NodeID]
            public var dropped: [SecureAggregationServer.Dropout]
            public var auditRecordHashes: [NodeID: String]
            public var bytesSent: UInt64
            public var bytesReceived: UInt64

            /// The full vector of every cell: counts, and the measures of released cells (zero elsewhere).
            public func cells(layout: Layout) -> [CellSuppression.Cell] {
                var sum = [UInt64](repeating: 0, count: layout.cells * layout.width)
                for c in 0..<layout.cells {
                    sum[c * layout.width] = counts[2 * c]
                    sum[c * layout.width + 1] = counts[2 * c + 1]
                }
                for (k, c) in released.enumerated() {
                    for j in 0..<layout.measures { sum[c * layout.width + 2 + j] = measures[k * layout.measures + j] }
                }
                let protected = CellSuppression.apply(sum: sum, cells: layout.cells, measures: layout.measures,
                                                      minRecords: layout.minRecords, minParties: layout.minParties)
                // A cell outside the release has no measures here, whatever its counts say.
                let releasedCells = Set(released)
                return protected.enumerated().map { i, cell in
                    releasedCells.contains(i) || cell.suppressed ? cell
                        : CellSuppression.Cell(records: nil, parties: nil, values: [], suppressionReason: "not released")
                }
            }
        }

        public let parameters: SecureAggregationParameters
        public let layout: Layout
        /// Checks the clients' survivor signatures before relaying them (`SecureAggregationServer.verify`).
        public let verify: (@Sendable ([UInt8], [UInt8], NodeID, [UInt8]) throws -> Void)?
        public let afterRound: (@Sendable (SecureAggregationClient.Round) -> Void)?

        public init(parameters: SecureAggregationParameters, layout: Layout, verify: (@Sendable ([UInt8], [UInt8], NodeID, [UInt8]) throws -> Void)? = nil,
                    afterRound: (@Sendable (SecureAggregationClient.Round) -> Void)? = nil) {
            self.parameters = parameters
            self.layout = layout
            self.verify = verify
            self.afterRound = afterRound
        }

        /// - Parameter acceptTimeout: how long to wait for each client's sessions.
        public func run(port: any SessionPort, acceptTimeout: Duration) async throws -> Outcome {
            // Each client opens its three sessions at the start (`Client.run`).
            async let releaseAccepted = port.acceptEach(stream: Stream.release, from: parameters.clients, timeout: acceptTimeout)
            async let measuresAccepted = port.acceptEach(stream: Stream.measures, from: parameters.clients, timeout: acceptTimeout)
            let countsChannels = await port.acceptEach(stream: Stream.counts, from: parameters.clients, timeout: acceptTimeout)
            let (releaseChannels, measuresChannels) = await (releaseAccepted, measuresAccepted)
            return try await port.using(Array(releaseChannels.values) + Array(measuresChannels.values)) {
                try await phases(countsChannels: countsChannels, releaseChannels: releaseChannels, measuresChannels: measuresChannels)
            }
        }

        private func phases(countsChannels: [NodeID: any MessageChannel], releaseChannels: [NodeID: any MessageChannel],
                            measuresChannels: [NodeID: any MessageChannel]) async throws -> Outcome {
            let first = try await SecureAggregationServer(parameters: countsParameters(parameters, layout: layout), channels: countsChannels,
                                                          verify: verify, afterRound: afterRound).run()
            let included = first.included.sorted()
            // A client lost after its masked counts is in the counts' sum, but its own run failed: it will
            // not take part in the measures.
            if let lost = first.dropped.first(where: { included.contains($0.client) }) {
                throw SecureAggregationError.lostBetweenPhases(client: lost.client, detail: "\(lost.round): \(lost.reason)")
            }
            if let missing = included.first(where: { releaseChannels[$0] == nil || measuresChannels[$0] == nil }) {
                throw SecureAggregationError.lostBetweenPhases(client: missing, detail: "it did not open its sessions for the release and the measures")
            }
            let released = layout.passing(counts: first.sum)
            var sent = first.bytesSent, received = first.bytesReceived
            let release = Mpcnode_V1_SecAggCellRelease.with { $0.cells = released.map { UInt32($0) }; $0.clients = included }
            for client in included {
                let session = ProtocolSession(channel: releaseChannels[client]!)
                do { try await session.sendSecAgg { $0.cellRelease = release } } catch {
                    throw SecureAggregationError.lostBetweenPhases(client: client, detail: "\(error)")
                }
                sent += session.bytesSent
            }
            guard !released.isEmpty else {
                return Outcome(counts: first.sum, released: [], measures: [], included: included, dropped: first.dropped,
                               auditRecordHashes: first.auditRecordHashes, bytesSent: sent, bytesReceived: received)
            }
            let second: SecureAggregationServer.Outcome
            do {
                second = try await SecureAggregationServer(parameters: measuresParameters(parameters, layout: layout, cells: released, clients: included),
                                                           channels: measuresChannels.filter { included.contains($0.key) }, verify: verify,
                                                           afterRound: afterRound).run()
            } catch let error as SecureAggregationError {
                guard case .tooFewSurvivors = error else { throw error }
                throw SecureAggregationError.lostBetweenPhases(client: "a client of the counts' sum", detail: "\(error)")
            }
            guard second.included.sorted() == included else {
                throw ProtocolError.protocolViolation(peer: parameters.server, detail: "the measures' sum lost a client of the counts' sum")
            }
            sent += second.bytesSent
            received += second.bytesReceived
            return Outcome(counts: first.sum, released: released, measures: second.sum, included: included, dropped: first.dropped,
                           auditRecordHashes: first.auditRecordHashes, bytesSent: sent, bytesReceived: received)
        }
    }
}
