import Foundation
import MPCCrypto
import MPCWire

/// A client (data owner) of secure aggregation: contributes one vector; learns only who was included.
///
/// Runs the four rounds of Protocols/secure-aggregation.md over one channel to the server. Its input
/// leaves it only masked (`y = x + PRG(b) + Σ ±PRG(s_uv)`); its secrets leave it only as Shamir shares
/// encrypted for one peer each, and in round 3 it reveals, per peer, either a share of the self-mask
/// seed (peer included) or of the mask key (peer dropped) — never both.
public struct SecureAggregationClient: Sendable {
    public struct Outcome: Sendable, Equatable {
        /// The clients whose inputs are in the sum.
        public var included: [NodeID]
    }

    /// For tests of dropouts: the client stops (closes its channel) after this round.
    public enum Round: Int, Sendable, Comparable {
        case advertise = 0, shareKeys, maskedInput, consistency, unmask
        public static func < (a: Round, b: Round) -> Bool { a.rawValue < b.rawValue }
    }

    public let parameters: SecureAggregationParameters
    public let me: NodeID
    public let input: [UInt64]
    public let channel: any MessageChannel
    public let authentication: KeyAuthentication
    /// The hash of this client's audit record of the job, signed with its keys and put in the report.
    public let auditRecordHash: [UInt8]
    let stopAfter: Round?
    /// Called after each round this client completes (fault injection in end-to-end tests).
    let afterRound: (@Sendable (Round) -> Void)?

    public init(parameters: SecureAggregationParameters, me: NodeID, input: [UInt64], channel: any MessageChannel,
                authentication: KeyAuthentication, auditRecordHash: [UInt8] = [], stopAfter: Round? = nil,
                afterRound: (@Sendable (Round) -> Void)? = nil) {
        self.parameters = parameters
        self.me = me
        self.input = input
        self.channel = channel
        self.authentication = authentication
        self.auditRecordHash = auditRecordHash
        self.stopAfter = stopAfter
        self.afterRound = afterRound
    }

    struct Dropped: Error {}

    public func run() async throws -> Outcome {
        let session = ProtocolSession(channel: channel)
        do {
            let outcome = try await rounds(session)
            await channel.close()
            return outcome
        } catch is Dropped {
            await channel.close()
            throw ChannelError.peerDisconnected(peer: me, detail: "stopped on purpose (test)")
        } catch let error as ChannelError {
            // The server may have said why it stopped before it closed the channel: prefer its reason.
            _ = try? await SecureAggregationServer.withTimeout(.milliseconds(500), peer: channel.peer) {
                try await session.receiveFrame()
            }
            await channel.close()
            if let reason = session.lastAbortReason { throw ProtocolError.abortedByPeer(peer: channel.peer, reason: reason) }
            throw error
        } catch {
            await session.end(after: error, by: me)
            throw error
        }
    }

    private func checkpoint(_ round: Round) throws {
        afterRound?(round)
        if let stopAfter, round >= stopAfter { throw Dropped() }
    }

    private func rounds(_ session: ProtocolSession) async throws -> Outcome {
        let p = parameters
        let server = channel.peer
        try p.validate()
        guard input.count == p.length else {
            throw SecureAggregationError.wrongVectorLength(peer: me, expected: p.length, got: input.count)
        }
        guard p.x(of: me) != nil else { throw SecureAggregationError.invalidParameters("\(me) is not a client of job \(p.jobID)") }

        // Round 0: advertise keys.
        let cipherKeys = KeyAgreementKeyPair.generate()
        let maskKeys = KeyAgreementKeyPair.generate()
        let signature = try authentication.sign(p.signedKeyMessage(node: me, cipherPublicKey: cipherKeys.publicKey,
                                                                   maskPublicKey: maskKeys.publicKey, auditRecordHash: auditRecordHash))
        try await session.sendSecAgg {
            $0.advertise = .with {
                $0.nodeID = me
                $0.cipherPublicKey = Data(cipherKeys.publicKey)
                $0.maskPublicKey = Data(maskKeys.publicKey)
                $0.signature = Data(signature)
                $0.certificateDer = Data(authentication.certificateDER)
                $0.auditRecordHash = Data(auditRecordHash)
            }
        }
        try checkpoint(.advertise)
        guard case .keyList(let list) = try await session.receiveSecAgg() else {
            throw ProtocolError.protocolViolation(peer: server, detail: "expected the key list")
        }
        var keys: [NodeID: (cipher: [UInt8], mask: [UInt8])] = [:]
        var certificates: [NodeID: [UInt8]] = [:]
        for entry in list.keys {
            guard p.index(of: entry.nodeID) != nil, keys[entry.nodeID] == nil else {
                throw SecureAggregationError.inconsistentRound(peer: server, detail: "key list names \(entry.nodeID) twice or as a non-client")
            }
            let c = [UInt8](entry.cipherPublicKey), m = [UInt8](entry.maskPublicKey)
            do {
                try authentication.verify([UInt8](entry.signature),
                                          p.signedKeyMessage(node: entry.nodeID, cipherPublicKey: c, maskPublicKey: m,
                                                             auditRecordHash: [UInt8](entry.auditRecordHash)),
                                          entry.nodeID, [UInt8](entry.certificateDer))
            } catch {
                throw SecureAggregationError.badSignature(peer: entry.nodeID, detail: "\(error)")
            }
            keys[entry.nodeID] = (c, m)
            certificates[entry.nodeID] = [UInt8](entry.certificateDer)
        }
        guard keys[me]?.cipher == cipherKeys.publicKey, keys[me]?.mask == maskKeys.publicKey else {
            throw SecureAggregationError.inconsistentRound(peer: server, detail: "the key list does not carry this client's own keys")
        }
        let allKeys = keys.values.flatMap { [$0.cipher, $0.mask] }
        guard Set(allKeys).count == allKeys.count else {
            throw SecureAggregationError.inconsistentRound(peer: server, detail: "two advertised public keys are equal")
        }
        let u1 = keys.keys.sorted()
        guard u1.count >= p.threshold else { throw SecureAggregationError.tooFewSurvivors(round: "advertise", survivors: u1.count, threshold: p.threshold) }

        // Round 1: share keys.
        let selfMaskSeed = MaskExpansion.randomSeed()
        let xs = u1.map { p.x(of: $0)! }
        let keyShares = try ShamirSecretSharing.split(maskKeys.secretKeyBytes, threshold: p.threshold, xs: xs)
        let seedShares = try ShamirSecretSharing.split(selfMaskSeed, threshold: p.threshold, xs: xs)
        var outgoing: [Mpcnode_V1_SecAggEncryptedShare] = []
        for (i, v) in u1.enumerated() where v != me {
            let plaintext: [UInt8] = try Mpcnode_V1_SecAggSharePlaintext.with {
                $0.from = me; $0.to = v
                $0.keyShare = Data(keyShares[i].y); $0.selfMaskShare = Data(seedShares[i].y)
            }.serializedBytes()
            let sealed = ShareEncryption.seal(plaintext, key: try cipherKeys.sharedKey(with: keys[v]!.cipher),
                                              associatedData: p.associatedData(from: me, to: v))
            outgoing.append(.with { $0.from = me; $0.to = v; $0.nonce = Data(sealed.nonce); $0.ciphertext = Data(sealed.ciphertext) })
        }
        let myIndexInU1 = u1.firstIndex(of: me)!
        // This client is in U3 whenever it unmasks, so only its own seed share is ever released, never its key share.
        let ownSeedShare = seedShares[myIndexInU1].y
        try await session.sendSecAgg { $0.shares = .with { $0.shares = outgoing } }
        try checkpoint(.shareKeys)
        guard case .sharesForYou(let incoming) = try await session.receiveSecAgg() else {
            throw ProtocolError.protocolViolation(peer: server, detail: "expected the shares for this client")
        }
        var received: [NodeID: Mpcnode_V1_SecAggEncryptedShare] = [:]
        for e in incoming.shares {
            guard e.to == me, keys[e.from] != nil, e.from != me, received[e.from] == nil else {
                throw SecureAggregationError.inconsistentRound(peer: server, detail: "share from \(e.from) to \(e.to) is not for this client")
            }
            received[e.from] = e
        }
        let u2 = (Array(received.keys) + [me]).sorted()
        guard u2.count >= p.threshold else { throw SecureAggregationError.tooFewSurvivors(round: "share keys", survivors: u2.count, threshold: p.threshold) }

        // Round 2: masked input.
        var masked = input
        MaskExpansion.apply(seed: selfMaskSeed, to: &masked)
        for v in u2 where v != me {
            let seed = try maskKeys.sharedKey(with: keys[v]!.mask)
            MaskExpansion.apply(seed: seed, to: &masked, subtract: me > v)
        }
        try await session.sendSecAgg { $0.maskedInput = .with { $0.length = UInt64(masked.count); $0.values = VectorCoding.pack(masked) } }
        try checkpoint(.maskedInput)
        guard case .survivors(let survivors) = try await session.receiveSecAgg() else {
            throw ProtocolError.protocolViolation(peer: server, detail: "expected the list of survivors")
        }
        let u3 = survivors.included.sorted()
        guard Set(u3).count == u3.count, Set(u3).isSubset(of: Set(u2)), u3.contains(me) else {
            throw SecureAggregationError.inconsistentRound(peer: server, detail: "survivors \(u3) are not a subset of \(u2) containing this client")
        }
        guard u3.count >= max(p.threshold, p.minimumSurvivors) else {
            throw SecureAggregationError.tooFewSurvivors(round: "masked input", survivors: u3.count, threshold: max(p.threshold, p.minimumSurvivors))
        }

        // Round 2½: consistency. Nothing more is released unless at least t clients signed this same U3:
        // a server telling some clients "v survived" and others "v dropped" would otherwise get both
        // v's self-mask and its mask key, and with them v's input.
        let survivorsMessage = p.signedSurvivorsMessage(u3)
        let mySignature = try authentication.sign(survivorsMessage)
        try await session.sendSecAgg { $0.consistency = .with { $0.signature = Data(mySignature) } }
        guard case .consistencyProofs(let proofs) = try await session.receiveSecAgg() else {
            throw ProtocolError.protocolViolation(peer: server, detail: "expected the survivors' signatures")
        }
        var confirmed = Set<NodeID>()
        for proof in proofs.signatures {
            guard u3.contains(proof.nodeID), !confirmed.contains(proof.nodeID), let certificate = certificates[proof.nodeID] else {
                throw SecureAggregationError.inconsistentRound(peer: server, detail: "a survivor signature names \(proof.nodeID), twice or not a survivor")
            }
            do {
                try authentication.verify([UInt8](proof.signature), survivorsMessage, proof.nodeID, certificate)
            } catch {
                throw SecureAggregationError.inconsistentSurvivors(peer: proof.nodeID, detail: "its signature is not on the survivor list \(u3) this client received")
            }
            confirmed.insert(proof.nodeID)
        }
        guard confirmed.count >= p.threshold else {
            throw SecureAggregationError.inconsistentSurvivors(
                peer: server, detail: "only \(confirmed.count) clients confirmed the survivor list \(u3), fewer than the threshold \(p.threshold)")
        }
        try checkpoint(.consistency)

        // Round 3: unmask. Per peer, a share of its self-mask seed (included) or of its mask key (dropped), never both.
        let included = Set(u3)
        var selfMaskShares: [Mpcnode_V1_SecAggShare] = [.with { $0.owner = me; $0.value = Data(ownSeedShare) }]
        var keySharesOut: [Mpcnode_V1_SecAggShare] = []
        for v in u2 where v != me {
            let e = received[v]!
            let opened: [UInt8]
            do {
                opened = try ShareEncryption.open(.init(nonce: [UInt8](e.nonce), ciphertext: [UInt8](e.ciphertext)),
                                                  key: try cipherKeys.sharedKey(with: keys[v]!.cipher),
                                                  associatedData: p.associatedData(from: v, to: me))
            } catch {
                throw SecureAggregationError.inconsistentRound(peer: v, detail: "its share for \(me) does not decrypt: \(error)")
            }
            let plaintext = try Mpcnode_V1_SecAggSharePlaintext(serializedBytes: opened)
            guard plaintext.from == v, plaintext.to == me else {
                throw SecureAggregationError.inconsistentRound(peer: v, detail: "share names \(plaintext.from)→\(plaintext.to)")
            }
            if included.contains(v) {
                selfMaskShares.append(.with { $0.owner = v; $0.value = plaintext.selfMaskShare })
            } else {
                keySharesOut.append(.with { $0.owner = v; $0.value = plaintext.keyShare })
            }
        }
        try await session.sendSecAgg { $0.unmasking = .with { $0.selfMaskShares = selfMaskShares; $0.keyShares = keySharesOut } }
        try checkpoint(.unmask)
        guard case .done(let done) = try await session.receiveSecAgg() else {
            throw ProtocolError.protocolViolation(peer: server, detail: "expected the end of the aggregation")
        }
        return Outcome(included: done.included)
    }
}
