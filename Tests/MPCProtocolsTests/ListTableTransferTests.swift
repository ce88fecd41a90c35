import Foundation
import MPCCrypto
import MPCTestSupport
import MPCWire
import XCTest
@testable import MPCProtocols

/// A lying holder's table updates: a header whose counts do not add up, more entries than announced, an
/// oversized label, a digest or signature that does not match — each refused by the querier before
/// anything is handed over as an update, with the holder named.
final class ListTableTransferTests: XCTestCase {
    static let header = ListTableHeader(list: "blacklist", keyID: "k1", version: 2, baseVersion: 0, full: true, added: 2, removed: 0,
                                        entries: 2, labelColumns: ["risk"], disclosure: "holders", riskColumn: "", riskLevels: [],
                                        normalization: "trim,digits-only", maximumPerSecond: 10, maximumPerDay: 100)
    static let sealed = ShareEncryption.seal(Array("{\"risk\":\"high\"}".utf8), key: [UInt8](repeating: 7, count: 32), associatedData: [])

    /// The querier's receive against what `holder` sends; returns the error it ends with, and the batches it staged.
    func receive(verifyFails: Bool = false, _ holder: @escaping @Sendable (ProtocolSession) async throws -> Void) async -> (Error?, Int) {
        let (q, h) = InMemoryChannel.pair("bank-b", "bank-a")
        let task = Task { try? await holder(ProtocolSession(channel: h)); await h.close() }
        var staged = 0
        var failure: Error?
        do {
            _ = try await ListTableTransfer.receive(ProtocolSession(channel: q), list: "blacklist", maximumEntries: 1000, accept: { _ in },
                                                    store: { staged += $0.added.count + $0.removed.count },
                                                    verify: { _, _ in if verifyFails { throw SignatureErrorForTest.bad } })
        } catch { failure = error }
        _ = await task.value
        return (failure, staged)
    }

    enum SignatureErrorForTest: Error { case bad }

    static func batch(_ n: Int, labelBytes: Int? = nil) -> Mpcnode_V1_LookupTableBatch {
        .with {
            $0.addedTags = (0..<n).map { UInt64($0) }
            let label = labelBytes.map { Data(repeating: 1, count: $0) } ?? Data(ListTableBatch.pack(sealed))
            $0.addedLabels = Array(repeating: label, count: n)
        }
    }

    func testAHonestUpdateIsReceivedAndEveryLieIsRefused() async throws {
        // Honest: header, one batch, the trailer with the right digest.
        let honest = ListTableBatch(added: [LabelledLookup.Entry(tag: 0, label: Self.sealed), LabelledLookup.Entry(tag: 1, label: Self.sealed)])
        var (error, staged) = await receive { s in
            var pending = [honest]
            try await ListTableTransfer.send(s, holder: "bank-a", header: Self.header, next: { pending.popLast() },
                                             sign: { _ in ListTableSignature(signature: [1], certificate: [2]) })
        }
        XCTAssertNil(error)
        XCTAssertEqual(staged, 2)

        @Sendable func sendRaw(_ s: ProtocolSession, header: ListTableHeader, batches: [Mpcnode_V1_LookupTableBatch], digest: [UInt8]? = nil) async throws {
            try await s.sendLookup { $0.tableHeader = header.wire }
            var d = StreamingDigest()
            for b in batches {
                let parsed = ListTableBatch(added: zip(b.addedTags, b.addedLabels).map { LabelledLookup.Entry(tag: $0, label: ListTableBatch.unpack(Array($1)) ?? Self.sealed) },
                                            removed: b.removedTags)
                d.update(parsed.digestInput())
                try await s.sendLookup { $0.tableBatch = b }
            }
            let honestDigest = d.finalize()
            let computed = digest ?? honestDigest
            try await s.sendLookup { $0.tableTrailer = .with { $0.digest = Data(computed); $0.signature = Data([1]); $0.certificate = Data([2]) } }
        }

        // The honest stream through the raw sender is accepted (the checks below are not vacuous).
        (error, staged) = await receive { s in try await sendRaw(s, header: Self.header, batches: [Self.batch(2)]) }
        XCTAssertNil(error)
        XCTAssertEqual(staged, 2)

        // A full table whose counts do not add up.
        var lying = Self.header
        lying.entries = 5
        let uneven = lying
        (error, staged) = await receive { s in try await sendRaw(s, header: uneven, batches: [Self.batch(2)]) }
        XCTAssertTrue("\(error!)".contains("inconsistent table header"), "\(error!)")
        XCTAssertEqual(staged, 0)
        // More entries than the querier's limit.
        lying = Self.header
        lying.added = 5000; lying.entries = 5000
        let huge = lying
        (error, _) = await receive { s in try await sendRaw(s, header: huge, batches: []) }
        XCTAssertTrue("\(error!)".contains("at most 1000"), "\(error!)")
        // More entries than announced.
        (error, _) = await receive { s in try await sendRaw(s, header: Self.header, batches: [Self.batch(2), Self.batch(1)]) }
        XCTAssertTrue("\(error!)".contains("does not match its header"), "\(error!)")
        // Fewer entries than announced.
        (error, _) = await receive { s in try await sendRaw(s, header: Self.header, batches: [Self.batch(1)]) }
        XCTAssertTrue("\(error!)".contains("ended after 1 of 2"), "\(error!)")
        // An oversized label.
        (error, _) = await receive { s in try await sendRaw(s, header: Self.header, batches: [Self.batch(2, labelBytes: 10_000)]) }
        XCTAssertTrue("\(error!)".contains("sealed label of 10000 bytes"), "\(error!)")
        // A digest that does not match the batches.
        (error, _) = await receive { s in try await sendRaw(s, header: Self.header, batches: [Self.batch(2)], digest: [UInt8](repeating: 0, count: 32)) }
        XCTAssertTrue("\(error!)".contains("digest does not match"), "\(error!)")
        // A signature that does not verify.
        (error, _) = await receive(verifyFails: true) { s in try await sendRaw(s, header: Self.header, batches: [Self.batch(2)]) }
        XCTAssertTrue(error is SignatureErrorForTest, "\(String(describing: error))")
        // A table of another list.
        lying = Self.header
        lying.list = "greylist"
        let other = lying
        (error, _) = await receive { s in try await sendRaw(s, header: other, batches: [Self.batch(2)]) }
        XCTAssertTrue("\(error!)".contains("asked for list 'blacklist'"), "\(error!)")
    }
}
