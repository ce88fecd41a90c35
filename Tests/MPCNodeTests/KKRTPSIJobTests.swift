import Foundation
import MPCNode
import MPCTestSupport
import MPCTransport
import XCTest

/// `psi --protocol kkrt` between real nodes (mutual TLS 1.3, SQLite): the plain intersection at both
/// recipients in several buckets, audited with its protocol, nothing identifying on the wire; a node
/// whose policy keeps ECDH only refuses it; `vole` and a cardinality-only KKRT are refused at submission.
final class KKRTPSIJobTests: XCTestCase {
    func submission(buckets: Int? = nil, psiProtocol: String?, deliverTo: [String] = ["bank-a", "bank-b"], cardinalityOnly: Bool = false) -> JobSubmission {
        JobSubmission.phonePSI(deliverTo: deliverTo, cardinalityOnly: cardinalityOnly, buckets: buckets, psiProtocol: psiProtocol)
    }

    func testKKRTDeliversThePlainIntersectionToBothAndSendsNothingIdentifying() async throws {
        let fixture = try ConsortiumFixture()
        removeAtTearDown(fixture.directory)
        let a = phoneNumbers(1500, seed: 41), b = phoneNumbers(1200, seed: 42)
        try fixture.importCSV(into: "bank-a", dataset: "customers", phones: a)
        try fixture.importCSV(into: "bank-b", dataset: "customers", phones: b)
        let expected = Set(a.map(digits)).intersection(Set(b.map(digits)))
        XCTAssertGreaterThan(expected.count, 100)
        let taps = WireTaps()
        let nodes = try await fixture.consortium.startAll(logger: ConsortiumFixture.quietLogger, transportOptions: taps.options(for:))
        stopAtTearDown(nodes)

        let jobID = try await nodes["coordinator"]!.engine.submit(submission(buckets: 3, psiProtocol: "kkrt"))
        let job = try await ConsortiumFixture.waitForFinal(nodes["coordinator"]!, jobID: jobID)
        XCTAssertEqual(job.state, .succeeded, job.reason ?? "")
        for bank in ["bank-a", "bank-b"] {
            let result = try JobRepository(store: nodes[bank]!.store).result(jobID: jobID, limit: 100_000)
            XCTAssertEqual(Set(result.identifiers ?? []), expected, bank)
            let succeeded = try AuditLog(store: nodes[bank]!.store).records(jobID: jobID).first { $0.event == "job.succeeded" }
            XCTAssertTrue(succeeded?.details.contains("\"psi_protocol\":\"kkrt\"") ?? false, "\(bank): \(succeeded?.details ?? "no record")")
            XCTAssertTrue(succeeded?.details.contains("\"buckets\":3") ?? false, "\(bank): \(succeeded?.details ?? "")")
        }
        for id in ["bank-a", "bank-b"] {
            let wire = WireIndex(taps.sent(by: id))
            XCTAssertGreaterThan(wire.bytes.count, 100_000, "\(id) sent the columns and values")
            for phone in a + b {
                for form in [phone, digits(phone)] {
                    XCTAssertFalse(wire.contains(Array(form.utf8)), "\(id) sent identifier \(form)")
                    for h in PlainHashes.of(Array(form.utf8)) { XCTAssertFalse(wire.contains(h), "\(id) sent a plain hash of \(form)") }
                }
            }
        }
    }

    func testANodeThatKeepsECDHOnlyRefusesKKRT() async throws {
        let fixture = try ConsortiumFixture(policy: { bank in
            let base = ConsortiumFixture.defaultPolicy(bank)
            return bank == "bank-b" ? base.replacingOccurrences(of: "  coordinators: [coordinator]", with: "  coordinators: [coordinator]\n  psi_protocols: [ecdh]") : base
        })
        removeAtTearDown(fixture.directory)
        try fixture.importCSV(into: "bank-a", dataset: "customers", phones: phoneNumbers(100, seed: 43))
        try fixture.importCSV(into: "bank-b", dataset: "customers", phones: phoneNumbers(100, seed: 44))
        let nodes = try await fixture.consortium.startAll(logger: ConsortiumFixture.quietLogger)
        stopAtTearDown(nodes)
        let jobID = try await nodes["coordinator"]!.engine.submit(submission(psiProtocol: "kkrt", deliverTo: ["bank-a"]))
        let job = try await ConsortiumFixture.waitForFinal(nodes["coordinator"]!, jobID: jobID)
        XCTAssertEqual(job.state, .refused)
        XCTAssertTrue((job.reason ?? "").contains("psi_protocols"), job.reason ?? "")
        // ECDH still runs between the same nodes.
        let ecdh = try await nodes["coordinator"]!.engine.submit(submission(psiProtocol: nil, deliverTo: ["bank-a"]))
        let done = try await ConsortiumFixture.waitForFinal(nodes["coordinator"]!, jobID: ecdh)
        XCTAssertEqual(done.state, .succeeded, done.reason ?? "")
    }

    func testVOLEAndCardinalityOnlyKKRTAreRefusedAtSubmission() async throws {
        let fixture = try ConsortiumFixture()
        removeAtTearDown(fixture.directory)
        let nodes = try await fixture.consortium.startAll(logger: ConsortiumFixture.quietLogger)
        stopAtTearDown(nodes)
        let engine = nodes["coordinator"]!.engine
        for (s, words) in [(submission(psiProtocol: "vole"), "not built yet"),
                           (submission(psiProtocol: "kkrt", cardinalityOnly: true), "--protocol ecdh"),
                           (submission(psiProtocol: "ot-magic"), "unknown PSI protocol")] {
            do {
                _ = try await engine.submit(s)
                XCTFail("\(s.psiProtocol ?? "") accepted")
            } catch {
                XCTAssertTrue("\(error)".contains(words), "\(error)")
            }
        }
    }
}
