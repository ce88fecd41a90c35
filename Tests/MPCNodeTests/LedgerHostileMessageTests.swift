import MPCBench
import Foundation
import GRDB
import MPCNode
import MPCWire
import XCTest

/// Ledger messages a real node never sends, from a member with a valid certificate: absurd sizes, an
/// oversized or garbage receipt, a delivery with thousands of signatures, a job id of 10 KB. The node
/// answers each with an error (or, for a size beyond its log, a head without a proof), keeps nothing,
/// and still answers honest requests.
final class LedgerHostileMessageTests: XCTestCase {
    func testCraftedLedgerMessagesAreRefusedAndNothingIsKept() async throws {
        let fixture = try ConsortiumFixture()
        removeAtTearDown(fixture.directory)
        let nodes = try await fixture.consortium.startAll(logger: ConsortiumFixture.quietLogger)
        stopAtTearDown(nodes)
        let bankA = try fixture.consortium.configuration(of: "bank-b").peers["bank-a"]!
        func ask(_ request: Mpcnode_V1_ControlRequest) async throws -> Mpcnode_V1_ControlResponse {
            try await nodes["bank-b"]!.transport.control(request, to: "bank-a", at: bankA)
        }
        func message(_ r: Mpcnode_V1_ControlResponse) -> String? { if case .error(let e)? = r.kind { return e.message } else { return nil } }

        // A size far beyond bank-a's log: its head, without a proof (the asker sees the rollback itself).
        let far = try await ask(.with { $0.treeHead = .with { $0.fromSize = UInt64.max } })
        guard case .treeHead(let head)? = far.kind else { return XCTFail("\(far)") }
        XCTAssertTrue(head.consistency.isEmpty)
        XCTAssertEqual(head.head.node, "bank-a")

        // A proof "to" a size beyond the log, or below its start, and a cursor that is 10 KB of garbage or the
        // largest number: a head without a proof, the seen heads from the start (or none), never a crash.
        for (from, to) in [(UInt64(1), UInt64.max), (UInt64(5), UInt64(2)), (UInt64.max, UInt64(1))] {
            let odd = try await ask(.with { $0.treeHead = .with { $0.fromSize = from; $0.toSize = to; $0.withSeen = true; $0.seenSince = String(repeating: "9", count: 10_000) } })
            guard case .treeHead(let answer)? = odd.kind else { return XCTFail("\(odd)") }
            XCTAssertTrue(answer.consistency.isEmpty, "\(from) → \(to)")
            XCTAssertLessThanOrEqual(answer.seen.count, 256)
        }
        let last = try await ask(.with { $0.treeHead = .with { $0.withSeen = true; $0.seenSince = String(Int64.max) } })
        guard case .treeHead(let none)? = last.kind else { return XCTFail("\(last)") }
        XCTAssertTrue(none.seen.isEmpty)

        // An inclusion proof for a 10 KB job id, for a job it never had, and with a 10 KB event.
        let long = try await ask(.with { $0.inclusion = .with { $0.jobID = String(repeating: "j", count: 10_000) } })
        XCTAssertNotNil(message(long))
        let unknown = try await ask(.with { $0.inclusion = .with { $0.jobID = "job-000000000000"; $0.event = "job.receipt" } })
        XCTAssertTrue(message(unknown)?.contains("holds no receipt") == true, "\(unknown)")
        let anyRecord = try await ask(.with { $0.inclusion = .with { $0.jobID = "job-000000000000" } })
        XCTAssertTrue(message(anyRecord)?.contains("only the proof of a job's receipt") == true, "\(anyRecord)")
        let event = try await ask(.with { $0.inclusion = .with { $0.jobID = "job-000000000000"; $0.event = String(repeating: "e", count: 10_000) } })
        XCTAssertNotNil(message(event))

        // Receipts: garbage, oversized, for no job of this node, and a delivery with 5,000 signatures.
        let garbage = try await ask(.with { $0.receiptSign = .with { $0.receipt = Data(repeating: 0xFF, count: 64) } })
        XCTAssertNotNil(message(garbage))
        let oversized = try await ask(.with { $0.receiptSign = .with { $0.receipt = Data(repeating: 0x0A, count: 600 << 10) } })
        XCTAssertTrue(message(oversized)?.contains("bytes") == true, "\(oversized)")
        let receipt = Mpcnode_V1_JobReceipt.with { $0.jobID = "job-000000000000"; $0.coordinator = "bank-b"; $0.parties = [.with { $0.node = "bank-a" }] }
        let notHers = try await ask(.with { $0.receiptSign = .with { $0.receipt = try! receipt.serializedData() } })
        XCTAssertTrue(message(notHers)?.contains("no job") == true, "\(notHers)")
        let flood = try await ask(.with {
            $0.receiptDelivery = .with {
                $0.receipt = try! receipt.serializedData()
                $0.signatures = (0..<5000).map { i in .with { $0.node = "node-\(i)"; $0.signature = Data(repeating: 1, count: 70) } }
            }
        })
        XCTAssertNotNil(message(flood))

        // Nothing kept, no alarm raised at bank-a, and it still answers an honest pull.
        let kept = try await nodes["bank-a"]!.store.pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM job_receipt") }
        XCTAssertEqual(kept, 0)
        XCTAssertTrue(try PeerHeads(store: nodes["bank-a"]!.store).alarms().isEmpty)
        let honest = await nodes["coordinator"]!.ledger.pull(from: "bank-a")
        switch honest {
        case .first, .advanced, .unchanged: break
        default: XCTFail("\(honest)")
        }
    }
}
