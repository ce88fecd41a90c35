import Foundation
import MPCCrypto
import MPCWire

/// The sender of one KKRT instance of a bucket (Protocols/psi-oprf.md): base-OT receiver with secret
/// choice bits s, turns the receiver's columns U into Q (q_j = t_j ⊕ (C(x_j) ∧ s)), then sends the
/// OPRF value of each of its elements under each of the three hash functions, in its bucket's secret order.
struct KKRTSender {
    let instance: KKRTInstance
    let elements: any IdentifierSource
    let session: ProtocolSession

    /// Returns the digests of the receiver's messages: its opening, then its opening and columns (64 bytes).
    ///
    /// A sender must never answer two different receiver streams of one instance: its choice bits s are
    /// fixed for the instance, so values for columns U and U′ (or for two openings) would tell the receiver
    /// s, and with it every value of the sender's set. So the base-OT scalars also depend on the opening,
    /// the digests are recorded durably before the first value leaves, and a rerun whose opening or
    /// columns differ from a recorded (or completed) one is refused before anything depends on them.
    func run() async throws -> [UInt8] {
        let peer = session.peer
        let k = KKRTParameters.baseOTs
        let open = try await instance.receive(session, "the receiver's KKRT opening") { if case .kkrtOpen(let o) = $0 { o } else { nil } }
        try instance.check(bucket: open.bucket, instance: open.instance, peer: peer)
        let mR = instance.peerElements
        let bins = KKRTParameters.bins(receiverElements: mR)
        guard open.setSize == UInt64(mR), open.bins == UInt64(bins), open.attempt < UInt32(KKRTParameters.maximumAttempts) else {
            throw ProtocolError.parameterMismatch(peer: peer, detail: "bucket \(instance.bucket): \(open.setSize) elements in \(open.bins) bins (attempt \(open.attempt)); expected \(mR) in \(bins), attempt below \(KKRTParameters.maximumAttempts)")
        }
        let point: GroupElement
        do {
            point = try GroupElement(bytes: open.baseOtPoint)
        } catch {
            throw ProtocolError.malformedMessage(peer: peer, detail: "base-OT point: \(error)")
        }
        var opening = Array("mpcnode-kkrt-open-v1".utf8) + [UInt8](open.baseOtPoint)
        withUnsafeBytes(of: (open.setSize, open.bins, UInt64(open.attempt))) { opening.append(contentsOf: $0) }
        let openDigest = BucketKey.blake2b(opening, length: 32, key: nil)
        let answered = try await instance.checkpoints.release(bucket: instance.bucket, instance: instance.number) ?? instance.peerStreamMustMatch
        if let answered, answered.prefix(32) != openDigest[...] {
            throw ProtocolError.protocolViolation(peer: peer, detail: "bucket \(instance.bucket) was answered before for another opening from this peer; a resumed job must send the same messages")
        }
        var digest = StreamingDigest()
        digest.update(opening)

        // Choice bits s from the seed; B_i and k_i.
        let s = BucketKey.blake2b(Array("mpcnode-kkrt-choices/\(instance.label)".utf8), length: PseudorandomCode.bytes, key: instance.seed)
        var choices = [Bool](repeating: false, count: k)
        for i in 0..<k { choices[i] = (s[i / 8] >> UInt8(i % 8)) & 1 == 1 }
        let points: [GroupElement], keys: [[UInt8]]
        do {
            // b_i depend on the opening too: another point A′ gets unrelated B′_i, never B_i − s_i·(A − A′).
            let label = instance.label + "/" + openDigest.prefix(16).map { String(format: "%02x", $0) }.joined()
            (points, keys) = try BaseOT.choose(choices, senderPoint: point, seed: instance.seed, label: label, domain: instance.domain)
        } catch {
            throw ProtocolError.malformedMessage(peer: peer, detail: "base-OT point: \(error)")
        }
        try await instance.send(session) {
            $0.kkrtChoice = .with {
                $0.bucket = UInt64(instance.bucket)
                $0.instance = UInt32(instance.number)
                $0.points = Data(GroupElement.pack(points))
            }
        }

        // Q, row by row (bins × 64 bytes), from U's chunks in order.
        var q = [UInt8](repeating: 0, count: bins * PseudorandomCode.bytes)
        var first = 0
        while first < bins {
            try Task.checkCancellation()
            let chunk = try await instance.receive(session, "the receiver's columns") { if case .kkrtColumns(let c) = $0 { c } else { nil } }
            try instance.check(bucket: chunk.bucket, instance: chunk.instance, peer: peer)
            let w = min(KKRTParameters.chunkBins, bins - first)
            let columnBytes = w / 8
            guard chunk.firstBin == UInt64(first), chunk.columns.count == k * columnBytes else {
                throw ProtocolError.protocolViolation(peer: peer, detail: "columns from bin \(chunk.firstBin), \(chunk.columns.count) bytes; expected bin \(first), \(k * columnBytes) bytes")
            }
            var columns = [UInt8](chunk.columns)
            digest.update(columns)
            columns.withUnsafeMutableBytes { cb in
                for i in 0..<k {
                    let column = UnsafeMutableRawBufferPointer(rebasing: cb[(i * columnBytes)..<((i + 1) * columnBytes)])
                    if !choices[i] { column.initializeMemory(as: UInt8.self, repeating: 0) }
                    keys[i].withUnsafeBytes { BitMatrix.xorStream(key: $0, firstByte: first / 8, into: column) }
                }
            }
            let rows = BitMatrix.transpose(columns, rows: k, cols: w)
            q.replaceSubrange((first * PseudorandomCode.bytes)..<((first + w) * PseudorandomCode.bytes), with: rows)
            first += w
        }
        let peerDigest = openDigest + digest.finalize()
        if let answered, answered != peerDigest {
            throw ProtocolError.protocolViolation(peer: peer, detail: "bucket \(instance.bucket) was completed before with another set from this peer; a resumed job must send the same elements")
        }
        if answered == nil {
            // Read back in the recording transaction: a second process of this party that answered this
            // instance first (another worker of the same range) wins, and this one answers nothing.
            let recorded = try await instance.checkpoints.recordRelease(bucket: instance.bucket, instance: instance.number, digests: peerDigest)
            guard recorded == peerDigest else {
                throw ProtocolError.protocolViolation(peer: peer, detail: "bucket \(instance.bucket) was answered meanwhile, by another process of this party, for another stream; a bucket is answered once")
            }
        }

        // The values: 3 an element, in the bucket's order, batch by batch.
        let mS = elements.count
        let length = KKRTParameters.valueLength(receiverElements: mR, senderElements: mS)
        let hash = CuckooHash(bins: bins, attempt: Int(open.attempt))
        let perMessage = KKRTParameters.valuesPerMessage / 3
        var offset = 0
        while offset < mS {
            try Task.checkCancellation()
            let ids = try await elements.identifiers(in: offset..<min(mS, offset + perMessage))
            let codes = instance.code.codewords(ids)
            var values = [UInt8](repeating: 0, count: 3 * ids.count * length)
            values.withUnsafeMutableBytes { out in
                let base = SendableAddress(out.baseAddress!)
                q.withUnsafeBytes { qb in
                    codes.withUnsafeBytes { cb in
                        s.withUnsafeBytes { sb in
                            let (qp, cp, sp) = (SendableAddress(qb.baseAddress!),
                                                SendableAddress(cb.baseAddress!),
                                                SendableAddress(sb.baseAddress!))
                            ParallelMap.forEachSlice(count: ids.count) { range in
                                var row = [UInt8](repeating: 0, count: PseudorandomCode.bytes)
                                let mask = UnsafeRawBufferPointer(start: sp.pointer, count: PseudorandomCode.bytes)
                                row.withUnsafeMutableBytes { r in
                                    for e in range {
                                        let code = cp.pointer + e * PseudorandomCode.bytes
                                        for t in 0..<3 {
                                            let bin = hash.bin(t, codeword: code)
                                            BitMatrix.xorAnd(qp.pointer + bin * PseudorandomCode.bytes, code, mask: mask,
                                                             into: r.baseAddress!, length: PseudorandomCode.bytes)
                                            KKRTValues.value(t: t, bin: bin, row: r.baseAddress!, length: length,
                                                             into: base.pointer + (3 * e + t) * length)
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            try await instance.send(session) {
                $0.kkrtValues = .with {
                    $0.bucket = UInt64(instance.bucket)
                    $0.instance = UInt32(instance.number)
                    $0.values = Data(values)
                }
            }
            offset += ids.count
        }
        let total = UInt64(3 * mS)
        try await instance.send(session) { $0.kkrtValuesEnd = .with { $0.count = total } }
        // The bucket is complete here only once the receiver has all the values.
        _ = try await instance.receive(session, "the receiver's finished") { if case .finished = $0 { true } else { nil } }
        return peerDigest
    }
}
