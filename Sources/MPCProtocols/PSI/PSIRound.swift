import Foundation
import MPCCrypto
import MPCWire

/// One run of the PSI exchange over an open session (Protocols/psi.md): header, own blinded stream,
/// the peer's stream double-blinded and kept or returned, `finished` both ways. `PSIParty` runs one
/// round; a bucketed PSI runs one a bucket over the same session (Protocols/psi-buckets.md). The
/// session stays open afterwards.
struct PSIRound: Sendable {
    /// What one round produced.
    struct Result: Sendable {
        var output: PSIParty.Output
        var peerSetSize: Int
        /// BLAKE2b-256 of the peer's blinded stream, in order (a redone bucket must reproduce it).
        var peerStreamDigest: [UInt8]
    }

    let configuration: PSIParty.Configuration
    let source: any IdentifierSource
    let cipher: CommutativeCipher
    let session: ProtocolSession
    let progress: (@Sendable (PSIParty.Progress) -> Void)?

    func run() async throws -> Result {
        let outbox = Outbox(highWaterBytes: configuration.outboxHighWaterBytes)
        let state = PSIReceiveState(configuration: configuration, ownSetSize: source.count, peer: session.peer)
        let output = try await withThrowingTaskGroup(of: PSIParty.Output?.self) { tasks in
            tasks.addTask { try await PSIParty.pump(outbox: outbox, session: session); return nil }
            tasks.addTask {
                try await sendOwnStream(outbox: outbox, state: state)
                return nil
            }
            tasks.addTask {
                try await receiveLoop(outbox: outbox, state: state)
            }
            var output: PSIParty.Output?
            do {
                for try await result in tasks where result != nil { output = result }
            } catch {
                await outbox.fail()
                tasks.cancelAll()
                throw error
            }
            return output ?? .none
        }
        return Result(output: output, peerSetSize: state.peerSetSize ?? 0, peerStreamDigest: state.peerStreamDigest)
    }

    /// Header, then own identifiers blinded, batch by batch, then the end of that stream.
    private func sendOwnStream(outbox: Outbox, state: PSIReceiveState) async throws {
        let n = source.count
        let group = configuration.group.rawValue
        let bucket = UInt64(configuration.bucket)
        try await outbox.enqueueWhenRoom(PSIParty.message(session) {
            $0.header = .with { $0.setSize = UInt64(n); $0.group = group; $0.bucket = bucket }
        })
        var offset = 0
        while offset < n {
            try Task.checkCancellation()
            let ids = try await source.identifiers(in: offset..<min(n, offset + configuration.batchSize))
            guard !ids.isEmpty else { break }
            let blinded = try cipher.hashAndBlind(batch: ids)
            let start = offset
            try await outbox.enqueueWhenRoom(PSIParty.message(session) {
                $0.blinded = .with { $0.offset = UInt64(start); $0.elements = Data(GroupElement.pack(blinded)) }
            })
            offset += ids.count
            state.ownSent(offset)
            progress?(state.progress)
        }
        let sent = offset
        try await outbox.enqueueWhenRoom(PSIParty.message(session) { $0.blindedEnd = .with { $0.count = UInt64(sent) } })
        try await state.ownStreamDone(outbox: outbox, session: session)
    }

    /// Processes the peer's messages in order until its `finished`, and computes the output.
    private func receiveLoop(outbox: Outbox, state: PSIReceiveState) async throws -> PSIParty.Output {
        let peer = session.peer
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
                    await outbox.enqueue(try PSIParty.message(session) {
                        $0.doubleBlinded = .with { $0.offset = start; $0.elements = Data(GroupElement.pack(reply)) }
                    })
                }
                progress?(state.progress)
            case .blindedEnd(let end):
                if let sorted = try state.acceptPeerStreamEnd(end) {
                    // Held back: sorted for a cardinality-only peer (positions mean nothing), or in order
                    // once a redone bucket's stream proved to be the one seen before.
                    var offset = 0
                    while offset < sorted.count {
                        let slice = sorted[offset..<min(sorted.count, offset + batchSize)]
                        let start = offset
                        await outbox.enqueue(try PSIParty.message(session) {
                            $0.doubleBlinded = .with { $0.offset = UInt64(start); $0.elements = Data(GroupElement.pack(slice)) }
                        })
                        offset += slice.count
                    }
                }
                if configuration.peerReceivesOutput {
                    let count = UInt64(state.peerSetSize ?? 0)
                    await outbox.enqueue(try PSIParty.message(session) { $0.doubleBlindedEnd = .with { $0.count = count } })
                }
                try await state.peerStreamDone(outbox: outbox, session: session)
            case .doubleBlinded(let batch):
                try state.acceptOwnDoubleBlinded(batch)
            case .doubleBlindedEnd(let end):
                try state.acceptOwnDoubleBlindedEnd(end)
            case .finished:
                return try state.acceptFinished()
            case .bucketHello, .bucketsReady:
                throw ProtocolError.protocolViolation(peer: peer, detail: "a bucket opening in the middle of a PSI round")
            case .kkrtOpen, .kkrtChoice, .kkrtColumns, .kkrtValues, .kkrtValuesEnd:
                throw ProtocolError.protocolViolation(peer: peer, detail: "a KKRT message in an ECDH PSI round")
            }
        }
    }
}
