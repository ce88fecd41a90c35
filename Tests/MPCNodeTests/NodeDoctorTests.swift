import MPCBench
import Foundation
import MPCIdentity
import MPCNode
import XCTest

/// `mpcnode doctor` on a real node: what is right says so; a peer that is down, a key others can read
/// and a certificate of another consortium each fail with what to fix.
final class NodeDoctorTests: XCTestCase {
    func testTheDoctorFindsADownPeerAReadableKeyAndAForeignCertificate() async throws {
        let fixture = try ConsortiumFixture()
        removeAtTearDown(fixture.directory)
        let coordinator = try await fixture.consortium.start("coordinator", logger: ConsortiumFixture.quietLogger)
        let bankA = try await fixture.consortium.start("bank-a", logger: ConsortiumFixture.quietLogger)
        stopAtTearDown([bankA, coordinator])
        let path = try fixture.consortium.configurationFile(of: "bank-a").path

        var checks = await NodeDoctor.run(configurationPath: path, peerTimeout: .seconds(2))
        func outcome(_ name: String) -> NodeDoctor.Check.Outcome? { checks.first { $0.name == name }?.outcome }
        XCTAssertEqual(outcome("configuration"), .ok)
        XCTAssertEqual(outcome("private key"), .ok)
        XCTAssertEqual(outcome("certificate"), .ok, "\(checks)")
        XCTAssertEqual(outcome("data folder"), .ok, "\(checks)")
        XCTAssertEqual(outcome("daemon"), .ok)
        XCTAssertEqual(outcome("peer coordinator"), .ok, "\(checks)")
        XCTAssertEqual(outcome("peer bank-b"), .failed, "bank-b's daemon is not running")
        XCTAssertTrue(checks.first { $0.name == "peer bank-b" }!.fix.contains("daemon runs"))

        // A key others can read.
        let key = try fixture.consortium.configuration(of: "bank-a").tls.privateKey.path
        chmod(key, 0o644)
        checks = await NodeDoctor.run(configurationPath: path, peerTimeout: .seconds(2))
        XCTAssertEqual(outcome("private key"), .failed)
        XCTAssertEqual(checks.first { $0.name == "private key" }?.fix, "chmod 600 \(key)")
        chmod(key, 0o600)

        // A CA file of another consortium: the certificate does not verify; no peer is tried with it.
        let configuration = try fixture.consortium.configuration(of: "bank-a")
        let original = try Data(contentsOf: configuration.tls.caCertificate)
        let other = try ConsortiumCA.create(name: "Another consortium")
        try other.certificatePEM.write(to: configuration.tls.caCertificate, atomically: true, encoding: .utf8)
        checks = await NodeDoctor.run(configurationPath: path, peerTimeout: .seconds(2))
        try original.write(to: configuration.tls.caCertificate)
        XCTAssertEqual(outcome("certificate"), .failed, "\(checks)")
        XCTAssertNil(outcome("peer coordinator"))

        // A configuration that does not load stops there.
        let broken = fixture.directory.appendingPathComponent("broken.yaml")
        try "node_id: [".write(to: broken, atomically: true, encoding: .utf8)
        checks = await NodeDoctor.run(configurationPath: broken.path)
        XCTAssertEqual(checks.map(\.outcome), [.failed])
    }
}
