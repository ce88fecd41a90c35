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
        /// The bucket this round computes (bucketed PSI; 0 otherwise): the peer's header must name it.
        public var bucket = 0
        /// Bucketed PSI, a bucket redone after a resume that this party had completed before: the
        /// digest of the peer's blinded stream then. Replies are held back until the peer's stream
        /// proves to be the same, so a peer cannot rerun a finished bucket with another set.
        public var peerStreamMustMatch: [UInt8]?

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
        let cipher = CommutativeCipher.random(group: configuration.group, domain: configuration.jobID)
        do {
            let round = try await PSIRound(configuration: configuration, source: source, cipher: cipher,
                                           session: session, progress: progress).run()
            await channel.close()
            return Report(output: round.output, ownSetSize: source.count, peerSetSize: round.peerSetSize,
                          bytesSent: session.bytesSent, bytesReceived: session.bytesReceived,
                          scalarMultiplications: source.count + round.peerSetSize)
        } catch {
            await session.end(after: error)
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
}
