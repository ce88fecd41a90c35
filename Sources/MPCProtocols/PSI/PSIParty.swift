import Foundation
import MPCCrypto
import MPCWire
import SwiftProtobuf

/// One party of two-party PSI by commutative blinding (Protocols/psi.md).
///
/// Both parties run the same code. Each blinds its own identifiers with a fresh key and streams them
/// to the other in its secret shuffled order; each applies its key to the other's stream and either
/// keeps the result (if it receives the output) or returns it (if the other party does): in the
/// other's order for the intersection, sorted for the cardinality only. Messages are processed as they
/// arrive, so sending and receiving overlap, and the group operations of each batch use every core.
///
/// ```swift
/// let (ca, cb) = InMemoryChannel.pair("bank-a", "bank-b")
/// let config = PSIParty.Configuration(jobID: "j", group: .ristretto255, selfReceivesOutput: true,
///                                     peerReceivesOutput: false, cardinalityOnly: false)
/// let report = try await PSIParty(configuration: config, source: ArrayIdentifierSource(["x"]), channel: ca).run()
/// ```
public struct PSIParty: Sendable {
    public struct Configuration: Sendable {
        /// Domain separation for hashing identifiers onto the group (the job id).
        public var jobID: String
        public var group: BlindingGroup
        public var selfReceivesOutput: Bool
        public var peerReceivesOutput: Bool
        public var cardinalityOnly: Bool
        /// Elements per message (32 bytes each).
        public var batchSize: Int
        /// Largest peer set this party will process (a guard against a peer announcing absurd sizes).
        public var maximumPeerSetSize: Int
        /// Smallest peer set this party will process: its own policy's minimum applied to the peer's input
        /// too, so a peer cannot probe single identifiers with a one-element set. Checked on the peer's
        /// header, before any of the peer's elements is blinded or compared.
        public var minimumPeerSetSize = 0
        /// Bytes of own messages that may wait to be sent before producing more.
        public var outboxHighWaterBytes: Int
        /// The recipient of the intersection also learns where each match sits in the peer's stream
        /// (`Output.matches`): what a guest needs to tell a host which of its rows a joint alignment
        /// keeps (Protocols/federated-lr-vertical.md). The positions say nothing the intersection does not.
        public var reportsPeerPositions = false

        public init(jobID: String, group: BlindingGroup, selfReceivesOutput: Bool, peerReceivesOutput: Bool,
                    cardinalityOnly: Bool, batchSize: Int = 4096, maximumPeerSetSize: Int = 1 << 28,
                    outboxHighWaterBytes: Int = 4 << 20) {
            self.jobID = jobID
            self.group = group
            self.selfReceivesOutput = selfReceivesOutput
            self.peerReceivesOutput = peerReceivesOutput
            self.cardinalityOnly = cardinalityOnly
            self.batchSize = batchSize
            self.maximumPeerSetSize = maximumPeerSetSize
            self.outboxHighWaterBytes = outboxHighWaterBytes
        }
    }

    /// What this party learns.
    public enum Output: Equatable, Sendable {
        /// This party receives no output.
        case none
        /// The size of the intersection.
        case cardinality(Int)
        /// Positions, in this party's `IdentifierSource` order, of its identifiers in the intersection (ascending).
        case intersection(positions: [Int])
        /// The intersection as above, with the position of each match in the peer's stream (the peer's
        /// `IdentifierSource` order): peerPositions[k] is the peer's position of own positions[k].
        case matches(positions: [Int], peerPositions: [Int])
    }

    /// What happened, for the audit record.
    public struct Report: Sendable {
        public var output: Output
        public var ownSetSize: Int
        public var peerSetSize: Int
        public var bytesSent: UInt64
        public var bytesReceived: UInt64
        /// Scalar multiplications this party performed (own set + peer's set).
        public var scalarMultiplications: Int
    }

    /// Progress: elements of each stream processed so far.
    public struct Progress: Sendable {
        public var ownBlindedSent: Int
        public var ownSetSize: Int
        public var peerElementsProcessed: Int
        public var peerSetSize: Int?
    }

    public let configuration: Configuration
    public let source: any IdentifierSource
    public let channel: any MessageChannel
    public let progress: (@Sendable (Progress) -> Void)?

    public init(configuration: Configuration, source: any IdentifierSource, channel: any MessageChannel,
                progress: (@Sendable (Progress) -> Void)? = nil) {
        self.configuration = configuration
        self.source = source
        self.channel = channel
        self.progress = progress
    }

    /// Runs the protocol to the end. On an error of its own, the peer is sent a `SessionAbort` with the reason.
    public func run() async throws -> Report {
        let session = ProtocolSession(channel: channel)
        let outbox = Outbox(highWaterBytes: configuration.outboxHighWaterBytes)
        let cipher = CommutativeCipher.random(group: configuration.group, domain: configuration.jobID)
        let state = PSIReceiveState(configuration: configuration, ownSetSize: source.count, peer: channel.peer)
        do {
            let output = try await withThrowingTaskGroup(of: Output?.self) { tasks in
                tasks.addTask { try await Self.pump(outbox: outbox, session: session); return nil }
                tasks.addTask {
                    try await sendOwnStream(cipher: cipher, outbox: outbox, session: session, state: state)
                    return nil
                }
                tasks.addTask {
                    try await receiveLoop(cipher: cipher, outbox: outbox, session: session, state: state)
                }
                var output: Output?
                do {
                    for try await result in tasks where result != nil { output = result }
                } catch {
                    await outbox.fail()
                    tasks.cancelAll()
                    throw error
                }
                return output ?? .none
            }
            await channel.close()
            let peerSize = state.peerSetSize ?? 0
            return Report(output: output, ownSetSize: source.count, peerSetSize: peerSize,
                          bytesSent: session.bytesSent, bytesReceived: session.bytesReceived,
                          scalarMultiplications: source.count + peerSize)
        } catch {
            if case ProtocolError.abortedByPeer = error {} else {
                await session.sendAbort(reason: ProtocolSession.abortReason(error))
            }
            await channel.close()
            throw error
        }
    }

    static func pump(outbox: Outbox, session: ProtocolSession) async throws {
        while let message = await outbox.next() {
            try await session.sendFramed(message)
        }
    }

    static func message(_ session: ProtocolSession, _ fill: (inout Mpcnode_V1_PsiMessage) -> Void) throws -> [UInt8] {
        try session.frame { frame in
            var psi = Mpcnode_V1_PsiMessage()
            fill(&psi)
            frame.psi = psi
        }
    }

    /// Header, then own identifiers blinded, batch by batch, then the end of that stream.
    private func sendOwnStream(cipher: CommutativeCipher, outbox: Outbox, session: ProtocolSession,
                               state: PSIReceiveState) async throws {
        let n = source.count
        let group = configuration.group.rawValue
        try await outbox.enqueueWhenRoom(Self.message(session) {
            $0.header = .with { $0.setSize = UInt64(n); $0.group = group }
        })
        var offset = 0
        while offset < n {
            try Task.checkCancellation()
            let ids = try await source.identifiers(in: offset..<min(n, offset + configuration.batchSize))
            guard !ids.isEmpty else { break }
            let blinded = try cipher.hashAndBlind(batch: ids)
            let start = offset
            try await outbox.enqueueWhenRoom(Self.message(session) {
                $0.blinded = .with { $0.offset = UInt64(start); $0.elements = Data(GroupElement.pack(blinded)) }
            })
            offset += ids.count
            state.ownSent(offset)
            progress?(state.progress)
        }
        let sent = offset
        try await outbox.enqueueWhenRoom(Self.message(session) { $0.blindedEnd = .with { $0.count = UInt64(sent) } })
        try await state.ownStreamDone(outbox: outbox, session: session)
    }

    /// Processes the peer's messages in order until its `finished`, and computes the output.
    private func receiveLoop(cipher: CommutativeCipher, outbox: Outbox, session: ProtocolSession,
                             state: PSIReceiveState) async throws -> Output {
        let peer = channel.peer
        let batchSize = configuration.batchSize
        while true {
            try Task.checkCancellation()
            let frame = try await session.receiveFrame()
            guard case .psi(let message)? = frame.body, let body = message.body else {
                throw ProtocolError.malformedMessage(peer: peer, detail: "expected a PSI message")
            }
            switch body {
            case .header(let header):
                try state.acceptHeader(header)
            case .blinded(let batch):
                let elements = try state.acceptPeerBatch(batch)
                let doubled: [GroupElement]
                do {
                    doubled = try cipher.blind(batch: elements)
                } catch {
                    throw ProtocolError.malformedMessage(peer: peer, detail: "blinded batch at offset \(batch.offset): \(error)")
                }
                if let reply = state.keepOrReply(doubled, offset: Int(batch.offset)) {
                    let start = batch.offset
                    await outbox.enqueue(try Self.message(session) {
                        $0.doubleBlinded = .with { $0.offset = start; $0.elements = Data(GroupElement.pack(reply)) }
                    })
                }
                progress?(state.progress)
            case .blindedEnd(let end):
                if let sorted = try state.acceptPeerStreamEnd(end) {
                    // Cardinality only: the peer's elements go back sorted, so positions mean nothing.
                    var offset = 0
                    while offset < sorted.count {
                        let slice = sorted[offset..<min(sorted.count, offset + batchSize)]
                        let start = offset
                        await outbox.enqueue(try Self.message(session) {
                            $0.doubleBlinded = .with { $0.offset = UInt64(start); $0.elements = Data(GroupElement.pack(slice)) }
                        })
                        offset += slice.count
                    }
                }
                if configuration.peerReceivesOutput {
                    let count = UInt64(state.peerSetSize ?? 0)
                    await outbox.enqueue(try Self.message(session) { $0.doubleBlindedEnd = .with { $0.count = count } })
                }
                try await state.peerStreamDone(outbox: outbox, session: session)
            case .doubleBlinded(let batch):
                try state.acceptOwnDoubleBlinded(batch)
            case .doubleBlindedEnd(let end):
                try state.acceptOwnDoubleBlindedEnd(end)
            case .finished:
                return try state.acceptFinished()
            }
        }
    }
}
