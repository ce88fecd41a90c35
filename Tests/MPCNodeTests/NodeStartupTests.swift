import MPCBench
import Foundation
import GRDB
import MPCIdentity
import MPCNode
import MPCTestSupport
import XCTest

/// A node refuses to start with a certificate that is expired, from another CA, or for another node;
/// and jobs interrupted by a stop end as failed, with the reason, when it starts again.
final class NodeStartupTests: XCTestCase {
    func testNodeRefusesBadCertificatesWithAClearMessage() async throws {
        let fixture = try ConsortiumFixture()
        defer { fixture.remove() }
        let configuration = try fixture.consortium.configuration(of: "bank-a")
        let pki = fixture.directory.appendingPathComponent("pki")
        func expectRefusal(_ containing: String, file: StaticString = #filePath, line: UInt = #line) async {
            do {
                let node = try await NodeRuntime.start(configuration: configuration, logger: ConsortiumFixture.quietLogger)
                await node.stop()
                XCTFail("the node started", file: file, line: line)
            } catch {
                XCTAssertTrue("\(error)".contains(containing), "\(error)", file: file, line: line)
            }
        }
        let rogue = try TestPKI(name: "Rogue")
        defer { rogue.remove() }
        let certPath = pki.appendingPathComponent("bank-a.pem"), keyPath = pki.appendingPathComponent("bank-a-key.pem")
        let original = (try Data(contentsOf: certPath), try Data(contentsOf: keyPath))

        // Another CA's certificate for the same node id.
        let (rc, rk) = try rogue.issue("bank-a")
        try Data(contentsOf: rc).write(to: certPath); try Data(contentsOf: rk).write(to: keyPath)
        await expectRefusal("was not issued by the consortium CA")

        // Our CA, but for another node.
        try Data(contentsOf: pki.appendingPathComponent("bank-b.pem")).write(to: certPath)
        try Data(contentsOf: pki.appendingPathComponent("bank-b-key.pem")).write(to: keyPath)
        await expectRefusal("the certificate is for node 'bank-b' but this node is configured as 'bank-a'")

        // Our CA, our node, expired.
        let ca = fixture.directory.appendingPathComponent("pki")
        let consortiumCA = try LocalConsortiumCA.load(ca)
        let expired = try consortiumCA.issue(nodeID: "bank-a", role: .bank, validity: 3600, now: Date().addingTimeInterval(-7200))
        try expired.certificatePEM.write(to: certPath, atomically: true, encoding: .utf8)
        try expired.privateKeyPEM.write(to: keyPath, atomically: true, encoding: .utf8)
        await expectRefusal("expired on")

        // A key that is not the certificate's.
        try original.0.write(to: certPath)
        try Data(contentsOf: pki.appendingPathComponent("bank-b-key.pem")).write(to: keyPath)
        await expectRefusal("does not belong to the certificate")

        // The right files start.
        try original.1.write(to: keyPath)
        chmod(keyPath.path, 0o600)  // the expired key's atomic write above made the file 0644, which a daemon refuses
        let node = try await NodeRuntime.start(configuration: configuration, logger: ConsortiumFixture.quietLogger)
        await node.stop()
    }

    func testJobsInterruptedByAStopEndAsFailedWithTheReason() async throws {
        let fixture = try ConsortiumFixture()
        defer { fixture.remove() }
        let configuration = try fixture.consortium.configuration(of: "bank-a")
        // A job left running in the store, as a crash would leave it.
        let store = try NodeStore(path: configuration.databasePath)
        try store.write { db in
            try JobRepository(store: store).insert(db, spec: MPCNodeTestSpec.psi(dataset: "customers", column: "phone", deliverTo: ["bank-a"]).build(),
                                                   role: .participant, state: .running)
        }
        let node = try await NodeRuntime.start(configuration: configuration, logger: ConsortiumFixture.quietLogger)
        let job = try JobRepository(store: node.store).view(jobID: "job-test")
        XCTAssertEqual(job.state, .failed)
        XCTAssertTrue(job.reason?.contains("the daemon stopped while the job was running") == true, job.reason ?? "")
        XCTAssertTrue(try AuditLog(store: node.store).records(jobID: "job-test").contains { $0.event == "job.failed" })
        await node.stop()
    }
}

/// Loads the fixture's CA (a throwaway consortium keeps its key beside the certificate).
enum LocalConsortiumCA {
    static func load(_ pki: URL) throws -> ConsortiumCA {
        try ConsortiumCA(certificatePEM: String(contentsOf: pki.appendingPathComponent("ca.pem"), encoding: .utf8),
                         privateKeyPEM: String(contentsOf: pki.appendingPathComponent("ca-key.pem"), encoding: .utf8))
    }
}
