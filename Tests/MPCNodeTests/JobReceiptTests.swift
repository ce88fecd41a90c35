import MPCBench
import Foundation
import GRDB
import MPCIdentity
import MPCNode
import MPCWire
import XCTest

/// Job receipts between real nodes (Protocols/ledger.md, "Receipts"): after a PSI, the coordinator and both
/// banks hold the same receipt signed by all three, with each bank's input commitment; each bank's log
/// proves it logged the receipt. A receipt with a forged signature, one signed in another node's name, one
/// that misstates a bank's input commitment, or one from a node that is not the job's coordinator is
/// refused and nothing is kept.
final class JobReceiptTests: XCTestCase {
    func testReceiptsAreCoSignedKeptInEveryLogAndForgeriesAreRefused() async throws {
        let fixture = try ConsortiumFixture()
        removeAtTearDown(fixture.directory)
        try fixture.importCSV(into: "bank-a", dataset: "customers", phones: phoneNumbers(200, seed: 71))
        try fixture.importCSV(into: "bank-b", dataset: "customers", phones: phoneNumbers(200, seed: 72))
        let nodes = try await fixture.consortium.startAll(logger: ConsortiumFixture.quietLogger)
        stopAtTearDown(nodes)
        let coordinator = nodes["coordinator"]!
        let jobID = try await coordinator.engine.submit(JobSubmission.phonePSI(group: "ristretto255"))
        let final = try await ConsortiumFixture.waitForFinal(coordinator, jobID: jobID)
        XCTAssertEqual(final.state, .succeeded)

        // Every node ends up with the same receipt, signed by the three.
        var checks: [String: JobReceipts.Check] = [:]
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            for (id, node) in nodes { if let c = try node.receipts.check(jobID: jobID) { checks[id] = c } }
            if checks.count == 3 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        XCTAssertEqual(Set(checks.keys), ["coordinator", "bank-a", "bank-b"])
        XCTAssertEqual(Set(checks.values.map(\.sha256)).count, 1, "one receipt everywhere")
        for (id, c) in checks {
            XCTAssertEqual(c.signedBy, ["bank-a", "bank-b", "coordinator"], id)
            XCTAssertEqual(c.unsigned, [], id)
            XCTAssertNil(c.invalid, id)
            XCTAssertEqual(c.outcome, "succeeded")
        }
        // The receipt carries each bank's commitment, which is the one the bank made (32 bytes, not the data).
        let stored = try await coordinator.store.pool.read { db in try Data.fetchOne(db, sql: "SELECT receipt FROM job_receipt WHERE job_id = ?", arguments: [jobID]) }
        let receipt = try Mpcnode_V1_JobReceipt(serializedBytes: try XCTUnwrap(stored))
        XCTAssertEqual(receipt.parties.map(\.node), ["bank-a", "bank-b"])
        XCTAssertTrue(receipt.parties.allSatisfy { $0.accepted && $0.inputCommitment.count == 32 })
        let bankACommitment = try await nodes["bank-a"]!.store.pool.read { db in try Data.fetchOne(db, sql: "SELECT commitment FROM job_input_commitment WHERE job_id = ?", arguments: [jobID]) }
        XCTAssertEqual(receipt.parties[0].inputCommitment, bankACommitment)
        // bank-a received the intersection: its result commitment is in the receipt; bank-b stored no result.
        let bankAResult = try await nodes["bank-a"]!.store.pool.read { db in try Data.fetchOne(db, sql: "SELECT commitment FROM job_result_commitment WHERE job_id = ?", arguments: [jobID]) }
        XCTAssertEqual(receipt.parties[0].resultCommitment.count, 32)
        XCTAssertEqual(receipt.parties[0].resultCommitment, bankAResult)
        XCTAssertTrue(receipt.parties[1].resultCommitment.isEmpty)

        // The coordinator's check: the receipt, and each bank's proof that its log holds it.
        let report = try await coordinator.ledger.verify(jobID: jobID, parties: ["bank-a", "bank-b"], receipt: checks["coordinator"])
        XCTAssertTrue(report.verified, "\(report)")
        XCTAssertEqual(report.records.filter(\.proven).count, 3, "\(report.records)")
        XCTAssertTrue(report.records.allSatisfy { $0.node == "coordinator" || $0.detail.hasPrefix("job.receipt") }, "\(report.records)")

        // Forgeries, sent to bank-a over mutual TLS as a dishonest coordinator would.
        let original = try await coordinator.store.pool.read { db in try Data.fetchOne(db, sql: "SELECT delivery FROM job_receipt WHERE job_id = ?", arguments: [jobID]) }
        let delivery = try Mpcnode_V1_ReceiptDelivery(serializedBytes: try XCTUnwrap(original))
        let bankA = try fixture.consortium.configuration(of: "coordinator").peers["bank-a"]!
        func send(_ d: Mpcnode_V1_ReceiptDelivery, from sender: String = "coordinator") async throws -> String? {
            let response = try await nodes[sender]!.transport.control(.with { $0.receiptDelivery = d }, to: "bank-a", at: bankA)
            if case .error(let e)? = response.kind { return e.message }
            return nil
        }
        func ask(_ request: Mpcnode_V1_ControlRequest) async throws -> String? {
            let response = try await coordinator.transport.control(request, to: "bank-a", at: bankA)
            if case .error(let e)? = response.kind { return e.message }
            return nil
        }
        func receiptsAtBankA() throws -> Int {
            try nodes["bank-a"]!.store.pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM job_receipt") } ?? 0
        }
        var forged = delivery
        forged.signatures[0].signature[10] ^= 1
        let forgedAnswer = try await send(forged)
        XCTAssertTrue(forgedAnswer?.contains("does not verify") == true, "\(String(describing: forgedAnswer))")
        var misattributed = delivery
        misattributed.signatures[1].node = "bank-a"; misattributed.signatures[0].node = "bank-b"
        let misattributedAnswer = try await send(misattributed)
        XCTAssertNotNil(misattributedAnswer)
        var altered = try Mpcnode_V1_JobReceipt(serializedBytes: delivery.receipt)
        altered.parties[0].inputCommitment = Data(repeating: 7, count: 32)
        var lying = delivery
        lying.receipt = try altered.serializedBytes()
        let lyingAnswer = try await send(lying)
        XCTAssertTrue(lyingAnswer?.contains("input commitment") == true, "\(String(describing: lyingAnswer))")
        var otherResult = try Mpcnode_V1_JobReceipt(serializedBytes: delivery.receipt)
        otherResult.parties[0].resultCommitment = Data(repeating: 9, count: 32)
        let resultAnswer = try await ask(.with { $0.receiptSign = .with { $0.receipt = try! otherResult.serializedData() } })
        XCTAssertTrue(resultAnswer?.contains("result commitment") == true, "\(String(describing: resultAnswer))")
        // bank-a signs one receipt per job: the same with another end time is refused; so is one without bank-b.
        var later = try Mpcnode_V1_JobReceipt(serializedBytes: delivery.receipt)
        later.endedMs += 1000
        let laterAnswer = try await ask(.with { $0.receiptSign = .with { $0.receipt = try! later.serializedData() } })
        XCTAssertTrue(laterAnswer?.contains("already signed another receipt") == true, "\(String(describing: laterAnswer))")
        var withoutB = try Mpcnode_V1_JobReceipt(serializedBytes: delivery.receipt)
        withoutB.parties.removeAll { $0.node == "bank-b" }
        let withoutBAnswer = try await ask(.with { $0.receiptSign = .with { $0.receipt = try! withoutB.serializedData() } })
        XCTAssertTrue(withoutBAnswer?.contains("parties are not the job's") == true, "\(String(describing: withoutBAnswer))")
        // Only the receipt's record is ever proven to a peer, and only to a node the receipt names.
        let otherRecord = try await ask(.with { $0.inclusion = .with { $0.jobID = jobID; $0.event = "job.succeeded" } })
        XCTAssertTrue(otherRecord?.contains("only the proof of a job's receipt") == true, "\(String(describing: otherRecord))")
        let fromBankB = try await send(delivery, from: "bank-b")
        XCTAssertTrue(fromBankB?.contains("coordinated by bank-b") == true, "\(String(describing: fromBankB))")
        XCTAssertEqual(try receiptsAtBankA(), 1, "only the genuine receipt is kept")

        // A receipt missing a party's signature verifies for the others but the check does not pass.
        var partial = delivery
        partial.signatures.removeAll { $0.node == "bank-b" }
        let signers = try JobReceipts.verifySignatures(partial, receipt: try Mpcnode_V1_JobReceipt(serializedBytes: partial.receipt),
                                                       with: NodeSignatures(CertificateSignatures(
                                                           certificatePath: coordinator.configuration.tls.certificate.path,
                                                           privateKeyPath: coordinator.configuration.tls.privateKey.path,
                                                           caPath: coordinator.configuration.tls.caCertificate.path)))
        XCTAssertEqual(signers, ["bank-a", "coordinator"])
        var incomplete = try XCTUnwrap(checks["coordinator"])
        incomplete.signedBy = signers; incomplete.unsigned = ["bank-b"]
        let unverified = try await coordinator.ledger.verify(jobID: jobID, parties: ["bank-a", "bank-b"], receipt: incomplete)
        XCTAssertFalse(unverified.verified, "a receipt bank-b did not sign does not verify the job")
        let unchanged = try nodes["bank-a"]!.receipts.check(jobID: jobID)
        XCTAssertEqual(unchanged?.sha256, checks["bank-a"]?.sha256)

        // A kept receipt is checked with the certificates as of when it was received, not now: it stays
        // verifiable after they expire. Signatures checked in twenty years fail (the certificates expired);
        // a receipt said to be received before they were issued does not verify.
        let coordinatorSignatures = NodeSignatures(try CertificateSignatures(
            certificatePath: coordinator.configuration.tls.certificate.path, privateKeyPath: coordinator.configuration.tls.privateKey.path,
            caPath: coordinator.configuration.tls.caCertificate.path))
        let genuine = try Mpcnode_V1_JobReceipt(serializedBytes: delivery.receipt)
        XCTAssertEqual(try JobReceipts.verifySignatures(delivery, receipt: genuine, with: coordinatorSignatures).count, 3)
        XCTAssertThrowsError(try JobReceipts.verifySignatures(delivery, receipt: genuine, with: coordinatorSignatures, at: Date().addingTimeInterval(20 * 365 * 86_400)))
        try await coordinator.store.pool.write { try $0.execute(sql: "UPDATE job_receipt SET received_at = '2000-01-01T00:00:00.000Z' WHERE job_id = ?", arguments: [jobID]) }
        let asOf2000 = try XCTUnwrap(try coordinator.receipts.check(jobID: jobID))
        XCTAssertEqual(asOf2000.signedBy, [])
        XCTAssertTrue(asOf2000.invalid?.contains("valid") == true, "\(String(describing: asOf2000.invalid))")
    }

    /// A refused job has a receipt too, with each party's reason; a party signs and keeps only a receipt that
    /// gives its own reason: a coordinator cannot put words in a refusing bank's mouth.
    func testARefusedJobsReceiptCarriesEachPartysOwnReason() async throws {
        let fixture = try ConsortiumFixture()
        removeAtTearDown(fixture.directory)
        try fixture.importCSV(into: "bank-a", dataset: "counts_only", phones: phoneNumbers(200, seed: 73))
        try fixture.importCSV(into: "bank-b", dataset: "counts_only", phones: phoneNumbers(200, seed: 74))
        let nodes = try await fixture.consortium.startAll(logger: ConsortiumFixture.quietLogger)
        stopAtTearDown(nodes)
        let coordinator = nodes["coordinator"]!
        let jobID = try await coordinator.engine.submit(JobSubmission.phonePSI(dataset: "counts_only", group: "ristretto255"))
        let final = try await ConsortiumFixture.waitForFinal(coordinator, jobID: jobID)
        XCTAssertEqual(final.state, .refused)
        var held: Data?
        for _ in 0..<200 {
            held = try await nodes["bank-a"]!.store.pool.read { db in try Data.fetchOne(db, sql: "SELECT delivery FROM job_receipt WHERE job_id = ?", arguments: [jobID]) }
            if held != nil { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        let delivery = try Mpcnode_V1_ReceiptDelivery(serializedBytes: try XCTUnwrap(held, "bank-a keeps the refused job's receipt"))
        let receipt = try Mpcnode_V1_JobReceipt(serializedBytes: delivery.receipt)
        let ownReason = try await nodes["bank-a"]!.store.pool.read { db in try String.fetchOne(db, sql: "SELECT reason FROM job WHERE id = ?", arguments: [jobID]) }
        let entry = try XCTUnwrap(receipt.parties.first { $0.node == "bank-a" })
        XCTAssertFalse(entry.accepted)
        XCTAssertFalse(entry.reason.isEmpty)
        XCTAssertEqual(entry.reason, ownReason)

        var altered = receipt
        altered.parties = altered.parties.map { p in var p = p; if p.node == "bank-a" { p.reason = "bank-a has no such dataset" }; return p }
        var lying = delivery
        lying.receipt = try altered.serializedBytes()
        let bankA = try fixture.consortium.configuration(of: "coordinator").peers["bank-a"]!
        let response = try await coordinator.transport.control(.with { $0.receiptDelivery = lying }, to: "bank-a", at: bankA)
        guard case .error(let e)? = response.kind else { return XCTFail("a receipt with another reason was kept: \(response)") }
        XCTAssertTrue(e.message.contains("reason"), e.message)
        let signResponse = try await coordinator.transport.control(.with { $0.receiptSign = .with { $0.receipt = lying.receipt } }, to: "bank-a", at: bankA)
        guard case .error(let e2)? = signResponse.kind else { return XCTFail("bank-a signed a receipt with another reason: \(signResponse)") }
        XCTAssertTrue(e2.message.contains("reason"), e2.message)
    }
}
