import MPCBench
import Foundation
import MPCIdentity
import MPCNode
import XCTest

/// The CA's signed revocation list: once bank-a loads a list naming bank-b's certificate (a reload,
/// no restart), their jobs fail naming the revocation; a tampered list is refused and the node keeps the
/// one it had; a node whose own certificate is listed does not start.
final class RevocationTests: XCTestCase {
    func testARevokedPeerIsRefusedAfterAReloadAndATamperedListIsNot() async throws {
        let fixture = try ConsortiumFixture()
        defer { fixture.remove() }
        try fixture.importCSV(into: "bank-a", dataset: "customers", phones: phoneNumbers(200, seed: 61))
        try fixture.importCSV(into: "bank-b", dataset: "customers", phones: phoneNumbers(200, seed: 62))
        let pki = fixture.directory.appendingPathComponent("pki")
        let ca = try ConsortiumCA(certificatePEM: String(contentsOf: pki.appendingPathComponent("ca.pem"), encoding: .utf8),
                                  privateKeyPEM: String(contentsOf: pki.appendingPathComponent("ca-key.pem"), encoding: .utf8))
        let listFile = pki.appendingPathComponent("revocations.json")
        try RevocationList(issuer: "\(ca.certificate.subject)").signed(by: ca).write(to: listFile, atomically: true, encoding: .utf8)
        for node in ["bank-a", "bank-b"] {
            let yaml = try fixture.consortium.configurationFile(of: node)
            let text = try String(contentsOf: yaml, encoding: .utf8)
                .replacingOccurrences(of: "  ca_certificate: pki/ca.pem\n", with: "  ca_certificate: pki/ca.pem\n  revocation_list: pki/revocations.json\n")
            XCTAssertTrue(text.contains("revocation_list"))
            try text.write(to: yaml, atomically: true, encoding: .utf8)
        }
        var nodes = try await fixture.consortium.startAll(logger: ConsortiumFixture.quietLogger)
        defer { let n = nodes; Task { for x in n.values { await x.stop() } } }
        func psi() async throws -> JobView {
            let id = try await nodes["coordinator"]!.engine.submit(JobSubmission.phonePSI(group: "ristretto255"))
            return try await ConsortiumFixture.waitForFinal(nodes["coordinator"]!, jobID: id, seconds: 60)
        }
        do { let state = try await psi().state; XCTAssertEqual(state, .succeeded) }

        // The CA revokes bank-b's certificate; bank-a reloads.
        let bankBCertificate = try CertificateCheck.loadCertificate(path: fixture.consortium.configuration(of: "bank-b").tls.certificate.path)
        let listed = try RevocationList.load(path: listFile.path, ca: ca.certificate).adding(bankBCertificate, reason: "key compromise")
        try listed.signed(by: ca).write(to: listFile, atomically: true, encoding: .utf8)
        try nodes["bank-a"]!.reloadCertificates()
        let refused = try await psi()
        XCTAssertEqual(refused.state, .failed)
        let reasons = ([refused.reason ?? ""] + refused.parties.map { $0.reason ?? "" }).joined(separator: " | ")
        XCTAssertTrue(reasons.contains("revoked"), reasons)

        // A list altered after signing is refused; the one in force stays (bank-b still refused).
        let signed = try String(contentsOf: listFile, encoding: .utf8)
        try signed.replacingOccurrences(of: "key compromise", with: "key compromisf").write(to: listFile, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try nodes["bank-a"]!.reloadCertificates()) { error in
            XCTAssertTrue("\(error)".contains("not the consortium CA's"), "\(error)")
        }
        do { let state = try await psi().state; XCTAssertEqual(state, .failed) }
        try signed.write(to: listFile, atomically: true, encoding: .utf8)

        // bank-b, whose own certificate is listed, does not start again.
        await nodes["bank-b"]!.stop()
        nodes["bank-b"] = nil
        do {
            let b = try await fixture.consortium.start("bank-b", logger: ConsortiumFixture.quietLogger)
            await b.stop()
            XCTFail("a node with a revoked certificate started")
        } catch {
            XCTAssertTrue("\(error)".contains("revoked"), "\(error)")
        }
    }
}
