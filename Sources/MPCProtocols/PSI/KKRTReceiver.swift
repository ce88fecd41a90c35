import Foundation
import MPCCrypto
import MPCWire

/// The receiver of one KKRT instance of a bucket (Protocols/psi-oprf.md): places its padded bucket in a
/// cuckoo table, acts as the base-OT sender, streams the columns of U, and marks which of its elements
/// have their OPRF value among the sender's values.
struct KKRTReceiver {
    let instance: KKRTInstance
    let elements: any IdentifierSource
    let session: ProtocolSession

    /// Positions (in `elements`) of the matched elements, ascending, and the digests of the sender's
    /// choice message and of its values (64 bytes: a redone bucket must see the same ones).
    func run() async throws -> (positions: [Int], peerDigest: [UInt8]) {
        let peer = session.peer
        let m = elements.count
        let codes = instance.code.codewords(try await elements.identifiers(in: 0..<m))
        let bins = KKRTParameters.bins(receiverElements: m)
        var table: CuckooTable?
        var attempt = 0
        while attempt < KKRTParameters.maximumAttempts {
            let coins = instance.seedWord("cuckoo-coins/\(attempt)")
            table = CuckooTable(codewords: codes, count: m, hash: CuckooHash(bins: bins, attempt: attempt), coins: coins)
            if table != nil { break }
            attempt += 1
        }
        guard let table else {
            throw ProtocolError.parameterMismatch(peer: peer, detail: "bucket \(instance.bucket): no cuckoo table in \(KKRTParameters.maximumAttempts) attempts")
        }
        let baseOT = try BaseOT.Sender(seed: instance.seed, label: instance.label, domain: instance.domain)
        try await instance.send(session) {
            $0.kkrtOpen = .with {
                $0.bucket = UInt64(instance.bucket)
                $0.instance = UInt32(instance.number)
                $0.setSize = UInt64(m)
                $0.bins = UInt64(bins)
                $0.attempt = UInt32(attempt)
                $0.baseOtPoint = Data(GroupElement.pack([baseOT.point]))
            }
        }
        let choice = try await instance.receive(session, "the sender's base-OT choice") { if case .kkrtChoice(let c) = $0 { c } else { nil } }
        try instance.check(bucket: choice.bucket, instance: choice.instance, peer: peer)
        guard choice.points.count == KKRTParameters.baseOTs * GroupElement.byteCount else {
            throw ProtocolError.malformedMessage(peer: peer, detail: "\(choice.points.count) bytes of base-OT points, expected \(KKRTParameters.baseOTs * GroupElement.byteCount)")
        }
        let digest = BucketKey.blake2b([UInt8](choice.points), length: 32, key: nil)
        if let expected = instance.peerStreamMustMatch, expected.prefix(32) != digest[...] {
            throw ProtocolError.protocolViolation(peer: peer, detail: "bucket \(instance.bucket) was completed before with other base OTs from this peer; a resumed job must send the same messages")
        }
        let keys: [(zero: [UInt8], one: [UInt8])]
        do {
            keys = try baseOT.keys(for: try GroupElement.unpack(choice.points))
        } catch {
            throw ProtocolError.malformedMessage(peer: peer, detail: "base-OT points: \(error)")
        }

        // Stream U chunk by chunk; keep each chunk's rows of T only long enough to compute its values.
        let length = KKRTParameters.valueLength(receiverElements: m, senderElements: instance.peerElements)
        var own = KKRTValueIndex(count: m, length: length)
        let k = KKRTParameters.baseOTs
        let ones = [UInt8](repeating: 0xFF, count: 64)
        var first = 0
        while first < bins {
            try Task.checkCancellation()
            let w = min(KKRTParameters.chunkBins, bins - first)
            let columnBytes = w / 8
            // Row j: the code word of the element in bin first + j (zero for an empty bin).
            var codeRows = [UInt8](repeating: 0, count: w * PseudorandomCode.bytes)
            codeRows.withUnsafeMutableBytes { dst in
                codes.withUnsafeBytes { src in
                    for j in 0..<w where table.element[first + j] >= 0 {
                        let e = Int(table.element[first + j])
                        (dst.baseAddress! + j * PseudorandomCode.bytes)
                            .copyMemory(from: src.baseAddress! + e * PseudorandomCode.bytes, byteCount: PseudorandomCode.bytes)
                    }
                }
            }
            // Column i of U: G(k_i^0) ⊕ G(k_i^1) ⊕ c^i; of T: G(k_i^0).
            var u = BitMatrix.transpose(codeRows, rows: w, cols: k)
            var t = [UInt8](repeating: 0, count: k * columnBytes)
            t.withUnsafeMutableBytes { tb in
                u.withUnsafeMutableBytes { ub in
                    ones.withUnsafeBytes { allOnes in
                        for i in 0..<k {
                            let tc = UnsafeMutableRawBufferPointer(rebasing: tb[(i * columnBytes)..<((i + 1) * columnBytes)])
                            let uc = UnsafeMutableRawBufferPointer(rebasing: ub[(i * columnBytes)..<((i + 1) * columnBytes)])
                            keys[i].zero.withUnsafeBytes { BitMatrix.xorStream(key: $0, firstByte: first / 8, into: tc) }
                            BitMatrix.xorAnd(uc.baseAddress!, tc.baseAddress!, mask: allOnes, into: uc.baseAddress!, length: columnBytes)
                            keys[i].one.withUnsafeBytes { BitMatrix.xorStream(key: $0, firstByte: first / 8, into: uc) }
                        }
                    }
                }
            }
            let start = first
            try await instance.send(session) {
                $0.kkrtColumns = .with {
                    $0.bucket = UInt64(instance.bucket)
                    $0.instance = UInt32(instance.number)
                    $0.firstBin = UInt64(start)
                    $0.columns = Data(u)
                }
            }
            let rows = BitMatrix.transpose(t, rows: k, cols: w)
            // The chunk's values on every core, then into the index.
            var values = [UInt8](repeating: 0, count: w * length)
            rows.withUnsafeBytes { r in
                values.withUnsafeMutableBytes { v in
                    let (rp, vp) = (SendableAddress(r.baseAddress!), SendableAddress(v.baseAddress!))
                    ParallelMap.forEachSlice(count: w) { range in
                        for j in range where table.element[start + j] >= 0 {
                            KKRTValues.value(t: Int(table.function[Int(table.element[start + j])]), bin: start + j, row: rp.pointer + j * PseudorandomCode.bytes,
                                             length: length, into: vp.pointer + j * length)
                        }
                    }
                }
            }
            values.withUnsafeBytes { v in
                for j in 0..<w where table.element[start + j] >= 0 {
                    own.insert(v.baseAddress! + j * length, element: table.element[start + j])
                }
            }
            first += w
        }

        // The sender's values: exactly 3 per element of its announced bucket, ℓ bytes each.
        let expected = 3 * instance.peerElements
        var received = 0
        var matched: [Int] = []
        var valuesDigest = StreamingDigest()
        while true {
            try Task.checkCancellation()
            let frame = try await session.receiveFrame()
            guard case .psi(let message)? = frame.body else {
                throw ProtocolError.malformedMessage(peer: peer, detail: "expected the sender's OPRF values")
            }
            if case .kkrtValuesEnd(let end)? = message.body {
                guard end.count == UInt64(expected), received == expected else {
                    throw ProtocolError.protocolViolation(peer: peer, detail: "values ended after \(received), end says \(end.count), expected \(expected)")
                }
                break
            }
            guard case .kkrtValues(let batch)? = message.body else {
                throw ProtocolError.malformedMessage(peer: peer, detail: "expected the sender's OPRF values")
            }
            try instance.check(bucket: batch.bucket, instance: batch.instance, peer: peer)
            guard !batch.values.isEmpty, batch.values.count % length == 0, received + batch.values.count / length <= expected else {
                throw ProtocolError.protocolViolation(peer: peer, detail: "\(batch.values.count) bytes of values (ℓ = \(length)) after \(received) of \(expected)")
            }
            valuesDigest.update([UInt8](batch.values))
            batch.values.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    if let e = own.find(raw.baseAddress! + offset) { matched.append(Int(e)) }
                    offset += length
                }
            }
            received += batch.values.count / length
        }
        let peerDigest = digest + valuesDigest.finalize()
        if let expected = instance.peerStreamMustMatch, expected != peerDigest {
            throw ProtocolError.protocolViolation(peer: peer, detail: "bucket \(instance.bucket) was completed before with another set from this peer; a resumed job must send the same elements")
        }
        try await instance.send(session) { $0.finished = .init() }
        return (Array(Set(matched)).sorted(), peerDigest)
    }
}
