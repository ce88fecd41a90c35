import Foundation
import MPCCrypto
import MPCWire

/// The server of secure aggregation: relays the clients' keys and encrypted shares, collects masked
/// inputs, and unmasks the sum of the clients that stayed (Protocols/secure-aggregation.md).
///
/// A client that disconnects or stays silent past the round's time limit is dropped, and the protocol
/// goes on while at least `threshold` clients remain; fewer aborts the run for everyone. A client that
/// sends something invalid (a vector of the wrong length, a message out of sequence, inconsistent
/// shares) aborts the run with an error naming it: nothing partial is ever returned.
public struct SecureAggregationServer: Sendable {
    public struct Outcome: Sendable {
        /// Σ x_u over `included`, in Z_{2^64}.
        public var sum: [UInt64]
        public var included: [NodeID]
        /// Clients that dropped, with the reason, by round.
        public var dropped: [Dropout]
        public var bytesSent: UInt64
        public var bytesReceived: UInt64
        /// Each client's audit record hash (hex), as signed with its keys in round 0.
        public var auditRecordHashes: [NodeID: String]
    }

    public struct Dropout: Sendable, Equatable {
        public var client: NodeID
        public var round: String
        public var reason: String
    }

    public let parameters: SecureAggregationParameters
    public let channels: [NodeID: any MessageChannel]
    /// Checks a client's signature against its certificate (`KeyAuthentication.verify`). With it, the
    /// server checks each survivor signature before relaying it and leaves a client whose signature does
    /// not verify out of the relayed proofs, so one dishonest client cannot make every other client abort.
    public let verify: (@Sendable (_ signature: [UInt8], _ message: [UInt8], _ nodeID: NodeID, _ certificateDER: [UInt8]) throws -> Void)?
    /// Called after each round the server completed (its answer sent); fault injection in tests.
    public let afterRound: (@Sendable (SecureAggregationClient.Round) -> Void)?

    public init(parameters: SecureAggregationParameters, channels: [NodeID: any MessageChannel],
                verify: (@Sendable ([UInt8], [UInt8], NodeID, [UInt8]) throws -> Void)? = nil,
                afterRound: (@Sendable (SecureAggregationClient.Round) -> Void)? = nil) {
        self.parameters = parameters
        self.channels = channels
        self.verify = verify
        self.afterRound = afterRound
    }

    public func run() async throws -> Outcome {
        try parameters.validate()
        var sessions: [NodeID: ProtocolSession] = [:]
        for (node, channel) in channels where parameters.clients.contains(node) { sessions[node] = ProtocolSession(channel: channel) }
        var dropouts: [Dropout] = parameters.clients.filter { sessions[$0] == nil }
            .map { Dropout(client: $0, round: "connect", reason: "never connected") }
        do {
            let outcome = try await rounds(sessions, &dropouts)
            for channel in channels.values { await channel.close() }
            return outcome
        } catch {
            for session in sessions.values { await session.sendAbort(reason: "\(parameters.server): \(ProtocolSession.abortReason(error))") }
            for channel in channels.values { await channel.close() }
            throw error
        }
    }

    private func rounds(_ sessions: [NodeID: ProtocolSession], _ dropouts: inout [Dropout]) async throws -> Outcome {
        let p = parameters
        var live = Set(sessions.keys)
        var lastFailure: [NodeID: String] = [:]
        func survive(_ round: String, _ answered: [NodeID: some Any]) throws {
            for node in live.subtracting(answered.keys).sorted() {
                dropouts.append(Dropout(client: node, round: round, reason: lastFailure[node] ?? "no answer"))
            }
            live = Set(answered.keys)
            guard live.count >= p.threshold else {
                throw SecureAggregationError.tooFewSurvivors(round: round, survivors: live.count, threshold: p.threshold)
            }
        }

        // Round 0: keys.
        let (adverts, f0) = try await collect(live, sessions) { body, peer -> Mpcnode_V1_SecAggKeys in
            guard case .advertise(let k) = body, k.nodeID == peer, k.cipherPublicKey.count == 32, k.maskPublicKey.count == 32 else {
                throw SecureAggregationError.inconsistentRound(peer: peer, detail: "expected its own keys")
            }
            return k
        }
        lastFailure.merge(f0) { $1 }
        try survive("advertise", adverts)
        let keyList = Mpcnode_V1_SecAggKeyList.with { $0.keys = adverts.keys.sorted().map { adverts[$0]! } }
        await broadcast(live, sessions) { $0.keyList = keyList }
        afterRound?(.advertise)

        // Round 1: encrypted shares, relayed.
        let u1 = live
        let (shares, f1) = try await collect(live, sessions) { body, peer -> [Mpcnode_V1_SecAggEncryptedShare] in
            guard case .shares(let s) = body else { throw SecureAggregationError.inconsistentRound(peer: peer, detail: "expected its encrypted shares") }
            let recipients = s.shares.map(\.to)
            guard s.shares.allSatisfy({ $0.from == peer }), Set(recipients) == u1.subtracting([peer]), recipients.count == u1.count - 1 else {
                throw SecureAggregationError.inconsistentRound(peer: peer, detail: "expected one share for each other client")
            }
            return s.shares
        }
        lastFailure.merge(f1) { $1 }
        try survive("share keys", shares)
        for v in live {
            let mine = live.filter { $0 != v }.sorted().compactMap { u in shares[u]!.first { $0.to == v } }
            try? await sessions[v]!.sendSecAgg { $0.sharesForYou = .with { $0.shares = mine } }
        }
        afterRound?(.shareKeys)

        // Round 2: masked inputs.
        let u2 = live
        let length = p.length
        let (inputs, f2) = try await collect(live, sessions) { body, peer -> [UInt64] in
            guard case .maskedInput(let m) = body else { throw SecureAggregationError.inconsistentRound(peer: peer, detail: "expected its masked input") }
            guard m.length == UInt64(length), let values = VectorCoding.unpack(m.values, count: length) else {
                throw SecureAggregationError.wrongVectorLength(peer: peer, expected: length, got: m.values.count / 8)
            }
            return values
        }
        lastFailure.merge(f2) { $1 }
        try survive("masked input", inputs)
        let u3 = live.sorted()
        await broadcast(live, sessions) { $0.survivors = .with { $0.included = u3 } }
        afterRound?(.maskedInput)

        // Round 2½: consistency. Each survivor signs U3; at least t signatures go back to every survivor,
        // which checks them before releasing any share. A client silent here is still summed (its
        // self-mask is rebuilt), as after its masked input.
        let (answered, f25) = try await collect(live, sessions) { body, peer -> [UInt8] in
            guard case .consistency(let c) = body, (1...512).contains(c.signature.count) else {
                throw SecureAggregationError.inconsistentRound(peer: peer, detail: "expected its signature on the survivors")
            }
            return [UInt8](c.signature)
        }
        lastFailure.merge(f25) { $1 }
        var signatures = answered
        if let verify {
            let message = p.signedSurvivorsMessage(u3)
            for (node, signature) in answered {
                do { try verify(signature, message, node, [UInt8](adverts[node]!.certificateDer)) } catch {
                    // Not relayed: the others would abort on it. Still summed (its masked input is in).
                    signatures[node] = nil
                    lastFailure[node] = "its signature on the survivors does not verify"
                    await sessions[node]!.sendAbort(reason: "\(p.server): your signature on the survivor list does not verify")
                }
            }
        }
        for node in live.subtracting(signatures.keys).sorted() {
            dropouts.append(Dropout(client: node, round: "consistency", reason: lastFailure[node] ?? "no answer"))
        }
        live = Set(signatures.keys)
        guard live.count >= p.threshold else {
            throw SecureAggregationError.tooFewSurvivors(round: "consistency", survivors: live.count, threshold: p.threshold)
        }
        let proofs = signatures.keys.sorted().map { node in Mpcnode_V1_SecAggSurvivorSignature.with { $0.nodeID = node; $0.signature = Data(signatures[node]!) } }
        await broadcast(live, sessions) { $0.consistencyProofs = .with { $0.signatures = proofs } }
        afterRound?(.consistency)

        // Round 3: unmasking shares.
        let included = Set(u3), droppedAfterSharing = u2.subtracting(included)
        let (unmasking, f3) = try await collect(live, sessions) { body, peer -> Mpcnode_V1_SecAggUnmasking in
            guard case .unmasking(let m) = body else { throw SecureAggregationError.inconsistentRound(peer: peer, detail: "expected its unmasking shares") }
            guard Set(m.selfMaskShares.map(\.owner)) == included, m.selfMaskShares.count == included.count,
                  Set(m.keyShares.map(\.owner)) == droppedAfterSharing, m.keyShares.count == droppedAfterSharing.count else {
                throw SecureAggregationError.inconsistentRound(peer: peer, detail: "unmasking shares do not match the survivors")
            }
            return m
        }
        lastFailure.merge(f3) { $1 }
        for node in live.subtracting(unmasking.keys).sorted() {
            // Still summed: its self-mask is rebuilt from the others' shares.
            dropouts.append(Dropout(client: node, round: "unmask", reason: lastFailure[node] ?? "no answer"))
        }
        guard unmasking.count >= p.threshold else {
            throw SecureAggregationError.tooFewSurvivors(round: "unmask", survivors: unmasking.count, threshold: p.threshold)
        }
        let helpers = unmasking.keys.sorted()

        var sum = [UInt64](repeating: 0, count: p.length)
        for u in u3 {
            let y = inputs[u]!
            sum.withUnsafeMutableBufferPointer { s in for i in 0..<y.count { s[i] &+= y[i] } }
        }
        for u in u3 {
            let pieces = helpers.map { h in
                ShamirSecretSharing.Share(x: p.x(of: h)!, y: [UInt8](unmasking[h]!.selfMaskShares.first { $0.owner == u }!.value))
            }
            let seed = try ShamirSecretSharing.combine(pieces, threshold: p.threshold)
            MaskExpansion.apply(seed: seed, to: &sum, subtract: true)
        }
        for v in droppedAfterSharing.sorted() {
            let pieces = helpers.map { h in
                ShamirSecretSharing.Share(x: p.x(of: h)!, y: [UInt8](unmasking[h]!.keyShares.first { $0.owner == v }!.value))
            }
            let keys = try KeyAgreementKeyPair(secretKey: ShamirSecretSharing.combine(pieces, threshold: p.threshold))
            guard keys.publicKey == [UInt8](adverts[v]!.maskPublicKey) else {
                throw SecureAggregationError.inconsistentRound(peer: v, detail: "its reconstructed mask key does not match its advertised key")
            }
            for u in u3 {
                // u added +PRG(s_uv) if u < v and −PRG(s_uv) if u > v; take it back out.
                MaskExpansion.apply(seed: try keys.sharedKey(with: [UInt8](adverts[u]!.maskPublicKey)), to: &sum, subtract: u < v)
            }
        }
        await broadcast(Set(helpers), sessions) { $0.done = .with { $0.included = u3 } }
        let sent = sessions.values.reduce(UInt64(0)) { $0 + $1.bytesSent }
        let received = sessions.values.reduce(UInt64(0)) { $0 + $1.bytesReceived }
        let hashes = adverts.mapValues { $0.auditRecordHash.map { String(format: "%02x", $0) }.joined() }
        return Outcome(sum: sum, included: u3, dropped: dropouts, bytesSent: sent, bytesReceived: received, auditRecordHashes: hashes)
    }

    /// Receives one message from each live client, concurrently, within the round's time limit.
    /// Returns the parsed messages and, for clients that disconnected or were silent, why. A client
    /// whose message is invalid ends the run (the error names it).
    private func collect<T: Sendable>(_ live: Set<NodeID>, _ sessions: [NodeID: ProtocolSession],
                                      _ parse: @escaping @Sendable (Mpcnode_V1_SecAggMessage.OneOf_Body, NodeID) throws -> T)
        async throws -> ([NodeID: T], [NodeID: String]) {
        let timeout = parameters.roundTimeout
        return try await withThrowingTaskGroup(of: (NodeID, Result<T, Error>).self) { group in
            for peer in live {
                let session = sessions[peer]!
                group.addTask {
                    do {
                        let body = try await Self.withTimeout(timeout, peer: peer) { try await session.receiveSecAgg() }
                        return (peer, .success(try parse(body, peer)))
                    } catch {
                        return (peer, .failure(error))
                    }
                }
            }
            var answers: [NodeID: T] = [:]
            var failures: [NodeID: String] = [:]
            for try await (peer, result) in group {
                switch result {
                case .success(let value): answers[peer] = value
                case .failure(let error as ChannelError): failures[peer] = error.description
                case .failure(let error): throw error
                }
            }
            return (answers, failures)
        }
    }

    static func withTimeout<T: Sendable>(_ duration: Duration, peer: NodeID, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T.self) { group in
            group.addTask { try await operation() }
            group.addTask {
                try await Task.sleep(for: duration)
                throw ChannelError.timedOut(peer: peer, seconds: Double(duration.components.seconds))
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }

    private func broadcast(_ live: Set<NodeID>, _ sessions: [NodeID: ProtocolSession], _ fill: @escaping (inout Mpcnode_V1_SecAggMessage) -> Void) async {
        for node in live.sorted() { try? await sessions[node]!.sendSecAgg(fill) }
    }
}
