import MPCBench
import Foundation
import MPCIdentity
import MPCNode
import XCTest

/// A renewed certificate is taken without a restart: after `reloadCertificates` (SIGHUP in a daemon) the
/// node presents the new one to the next peer, and jobs run; a certificate of another CA is refused
/// and the node keeps the one it had.
final class CertificateReloadTests: XCTestCase {
    func testARenewedCertificateIsPresentedWithoutARestartAndABadOneIsRefused() async throws {
        let fixture = try ConsortiumFixture()
        removeAtTearDown(fixture.directory)
        try fixture.importCSV(into: "bank-a", dataset: "customers", phones: phoneNumbers(200, seed: 51))
        try fixture.importCSV(into: "bank-b", dataset: "customers", phones: phoneNumbers(200, seed: 52))
        let nodes = try await fixture.consortium.startAll(logger: ConsortiumFixture.quietLogger)
        stopAtTearDown(nodes)
        let bankA = nodes["bank-a"]!
        let tls = bankA.configuration.tls
        let pki = tls.caCertificate.deletingLastPathComponent()
        let bankB = try fixture.consortium.configuration(of: "bank-b").tls

        /// The notAfter of the certificate bank-a's listener presents now, seen by an openssl client with bank-b's certificate.
        func presented() throws -> String {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["openssl", "s_client", "-connect", "127.0.0.1:\(bankA.peerPort)", "-tls1_3", "-cert", bankB.certificate.path,
                                 "-key", bankB.privateKey.path, "-CAfile", tls.caCertificate.path, "-showcerts"]
            let output = Pipe()
            process.standardOutput = output
            process.standardError = Pipe()
            process.standardInput = FileHandle.nullDevice
            try process.run()
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            guard let line = text.split(separator: "\n").first(where: { $0.contains("NotAfter") }) else { throw XCTSkip("openssl printed no validity: \(text.prefix(300))") }
            return String(line)
        }
        func psi() async throws -> JobState {
            let id = try await nodes["coordinator"]!.engine.submit(JobSubmission.phonePSI(group: "ristretto255"))
            return try await ConsortiumFixture.waitForFinal(nodes["coordinator"]!, jobID: id).state
        }
        let before = try presented()

        // Renewal: a new key and a 30-day certificate from the consortium's CA, written where the configuration points.
        let ca = try ConsortiumCA(certificatePEM: String(contentsOf: pki.appendingPathComponent("ca.pem"), encoding: .utf8),
                                  privateKeyPEM: String(contentsOf: pki.appendingPathComponent("ca-key.pem"), encoding: .utf8))
        let renewed = try ca.issue(nodeID: "bank-a", role: .bank, validity: 30 * 86_400)
        try renewed.certificatePEM.write(to: tls.certificate, atomically: true, encoding: .utf8)
        try renewed.privateKeyPEM.write(to: tls.privateKey, atomically: true, encoding: .utf8)
        chmod(tls.privateKey.path, 0o600)
        XCTAssertEqual(try presented(), before, "nothing changes until the reload")
        let days = try bankA.reloadCertificates()
        XCTAssertTrue((29...30).contains(days), "\(days)")
        let after = try presented()
        XCTAssertNotEqual(after, before, "the listener presents the renewed certificate")
        do { let state = try await psi(); XCTAssertEqual(state, .succeeded) }
        let status = try bankA.statusView()
        XCTAssertTrue((29...30).contains(status.certificateDaysLeft ?? 0))
        XCTAssertTrue(try AuditLog(store: bankA.store).records().contains { $0.event == "node.certificate.reloaded" })

        // A certificate of another CA: refused, the node keeps presenting the renewed one and still works.
        let other = try ConsortiumCA.create(name: "Another consortium").issue(nodeID: "bank-a", role: .bank)
        let good = (try Data(contentsOf: tls.certificate), try Data(contentsOf: tls.privateKey))
        try other.certificatePEM.write(to: tls.certificate, atomically: true, encoding: .utf8)
        try other.privateKeyPEM.write(to: tls.privateKey, atomically: true, encoding: .utf8)
        chmod(tls.privateKey.path, 0o600)
        XCTAssertThrowsError(try bankA.reloadCertificates())
        try good.0.write(to: tls.certificate)
        try good.1.write(to: tls.privateKey)
        chmod(tls.privateKey.path, 0o600)
        XCTAssertEqual(try presented(), after)
        do { let state = try await psi(); XCTAssertEqual(state, .succeeded) }
    }

    /// A renewal written in place is picked up without a signal once the files stop changing (certificate
    /// first, key a moment later is not loaded half-done); the node then warns that its 10-day certificate
    /// expires soon, its peers see the 10 days over mutual TLS, and files that do not verify are refused once.
    func testChangedFilesAreReloadedOnceSettledAndATenDayCertificateWarns() async throws {
        let fixture = try ConsortiumFixture()
        removeAtTearDown(fixture.directory)
        let nodes = try await fixture.consortium.startAll(logger: ConsortiumFixture.quietLogger)
        stopAtTearDown(nodes)
        let bankA = nodes["bank-a"]!, tls = bankA.configuration.tls
        let pki = tls.caCertificate.deletingLastPathComponent()
        XCTAssertNil(bankA.warnIfCertificateExpiresSoon(), "a fresh certificate does not warn")
        let watch = TLSFileWatch(runtime: bankA)
        XCTAssertEqual(watch.poll(), .unchanged)

        let ca = try ConsortiumCA(certificatePEM: String(contentsOf: pki.appendingPathComponent("ca.pem"), encoding: .utf8),
                                  privateKeyPEM: String(contentsOf: pki.appendingPathComponent("ca-key.pem"), encoding: .utf8))
        let renewed = try ca.issue(nodeID: "bank-a", role: .bank, validity: 10 * 86_400 + 3_600)
        try renewed.certificatePEM.write(to: tls.certificate, atomically: true, encoding: .utf8)
        XCTAssertEqual(watch.poll(), .changing, "the certificate alone: wait")
        try renewed.privateKeyPEM.write(to: tls.privateKey, atomically: true, encoding: .utf8)
        chmod(tls.privateKey.path, 0o600)
        XCTAssertEqual(watch.poll(), .changing, "the key changed since the last poll: wait again")
        XCTAssertEqual(watch.poll(), .reloaded(daysLeft: 10))
        XCTAssertEqual(watch.poll(), .unchanged)
        XCTAssertEqual(bankA.warnIfCertificateExpiresSoon(), 10)
        XCTAssertEqual(try bankA.statusView().certificateDaysLeft, 10)
        let metrics = String(decoding: bankA.metricsExposition(), as: UTF8.self)
        XCTAssertTrue(metrics.contains("mpcnode_certificate_expiry_days{certificate=\"node\"} 10."), metrics)

        // bank-b's operator sees bank-a's certificate expiry through the handshake.
        let peers = await nodes["bank-b"]!.peerReachability()
        let seen = try XCTUnwrap(peers.first { $0.node == "bank-a" })
        XCTAssertTrue(seen.reachable, "\(seen)")
        XCTAssertEqual(Int((seen.certificateDaysLeft ?? 0).rounded(.down)), 10, "\(seen)")
        XCTAssertGreaterThan(peers.first { $0.node == "coordinator" }?.certificateDaysLeft ?? 0, 300)

        // Another CA's files: refused once (the node keeps the 10-day certificate), not retried until they change again.
        let other = try ConsortiumCA.create(name: "Another consortium").issue(nodeID: "bank-a", role: .bank)
        try other.certificatePEM.write(to: tls.certificate, atomically: true, encoding: .utf8)
        try other.privateKeyPEM.write(to: tls.privateKey, atomically: true, encoding: .utf8)
        chmod(tls.privateKey.path, 0o600)
        XCTAssertEqual(watch.poll(), .changing)
        guard case .refused = watch.poll() else { return XCTFail("another CA's certificate was not refused") }
        XCTAssertEqual(watch.poll(), .unchanged)
        XCTAssertEqual(bankA.warnIfCertificateExpiresSoon(), 10)
    }
}
