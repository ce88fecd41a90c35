import Foundation
import MPCCrypto
import MPCTestSupport
import MPCWire
import XCTest
@testable import MPCProtocols

/// The online lookup between a querier and a holder over a channel: answers with labels, the holder's
/// quota refusing with its reason, a stale key id, and crafted requests ending the session.
final class ListLookupSessionTests: XCTestCase {
    static let key = try! OPRF.deriveKey(seed: [UInt8](repeating: 3, count: 32), info: [])
    static let context = LabelledLookup.context(holder: "bank-a", list: "blacklist", keyID: "k1")

    final class Quota: @unchecked Sendable {
        let lock = NSLock()
        var left: Int
        init(_ n: Int) { left = n }
        func take(_ n: Int) throws {
            try lock.withLock {
                guard left >= n else { throw ListLookupError.refused(holder: "bank-a", reason: "bank-b's daily quota of lookups on 'blacklist' is used up") }
                left -= n
            }
        }
    }

    func testLookupsOverASessionAnswerWithLabelsUntilTheQuotaRefuses() async throws {
        let list = (0..<300).map { (identifier: Array("4477\(String(format: "%06d", $0 * 3))".utf8), label: Array("risk-\($0 % 3)".utf8)) }
        let table = try LabelledLookup.table(list, key: Self.key, context: Self.context)
        let index = LabelledLookup.Index(table)
        let wire = WireLog()
        let (q, h) = InMemoryChannel.pair("bank-b", "bank-a", tap: { wire.append($0, $1) })
        let quota = Quota(6)
        let holder = ListLookupHolder(lists: ["blacklist": .init(keyID: "k1", key: Self.key)], maximumBatch: 8) { _, n in try quota.take(n) }
        async let served = holder.serve(h)
        let querier = ListLookupQuerier(channel: q)
        let keys = [list[0].identifier, list[1].identifier, Array("447799999999".utf8), list[7].identifier]
        let queries = try keys.map { try LabelledLookup.Query(key: $0) }
        let answers = try await querier.evaluate(list: "blacklist", keyID: "k1", blinded: queries.map(\.blinded.element))
        let labels = try zip(queries, answers).map { try $0.label(evaluated: $1, index: index, table: table, context: Self.context) }
        XCTAssertEqual(labels, [list[0].label, list[1].label, nil, list[7].label])
        // A stale key id is refused without touching the quota; then 2 + 4 > 6 keys: the quota refuses.
        do {
            _ = try await querier.evaluate(list: "blacklist", keyID: "k0", blinded: [queries[0].blinded.element])
            XCTFail("a stale key id was answered")
        } catch let e as ListLookupError { XCTAssertTrue("\(e)".contains("now under key k1"), "\(e)") }
        _ = try await querier.evaluate(list: "blacklist", keyID: "k1", blinded: queries.prefix(2).map(\.blinded.element))
        do {
            _ = try await querier.evaluate(list: "blacklist", keyID: "k1", blinded: queries.map(\.blinded.element))
            XCTFail("the quota did not refuse")
        } catch let e as ListLookupError { XCTAssertTrue("\(e)".contains("quota"), "\(e)") }
        await querier.close()
        let total = try await served
        XCTAssertEqual(total, 6)
        // No key, nor a plain hash of one, crossed the channel.
        let all = WireIndex(wire.entries.flatMap(\.bytes))
        for k in keys {
            XCTAssertFalse(all.contains(k))
            for hash in PlainHashes.of(k) { XCTAssertFalse(all.contains(hash)) }
        }
    }

    func testCraftedRequestsEndTheSessionWithAnError() async throws {
        for blinded in [Data(repeating: 1, count: 33), Data(repeating: 0, count: 32), Data(repeating: 0xAB, count: 32 * 9)] {
            let (q, h) = InMemoryChannel.pair("bank-b", "bank-a")
            let holder = ListLookupHolder(lists: ["blacklist": .init(keyID: "k1", key: Self.key)], maximumBatch: 8) { _, _ in }
            async let served = holder.serve(h)
            let session = ProtocolSession(channel: q)
            try await session.sendLookup { $0.request = .with { $0.id = 1; $0.list = "blacklist"; $0.keyID = "k1"; $0.blinded = blinded } }
            do {
                _ = try await served
                XCTFail("a crafted request of \(blinded.count) bytes was served")
            } catch {
                XCTAssertTrue("\(error)".contains("bank-b"), "\(error)")
            }
            await q.close()
        }
    }
}
