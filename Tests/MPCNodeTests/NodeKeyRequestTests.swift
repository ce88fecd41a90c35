import Foundation
import MPCIdentity
import MPCNode
import X509
import XCTest

/// Finding 12: the CA never makes or holds a node's key. A node makes its key (O_EXCL, 0600) and a CSR;
/// the CA issues from the CSR and checks it; the admin socket checks its peer's credentials.
final class NodeKeyRequestTests: XCTestCase {
    func testANodesOwnKeyAndRequestGetACertificateThatTheNodeCanUse() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mpcnode-csr-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let ca = try ConsortiumCA.create(name: "Test consortium")
        let caPath = folder.appendingPathComponent("ca.pem").path
        try ca.certificatePEM.write(toFile: caPath, atomically: true, encoding: .utf8)

        let made = try NodeKeyRequest.make(nodeID: "bank-a", role: .bank)
        let keyPath = folder.appendingPathComponent("bank-a-key.pem").path
        try NodeKeyRequest.writeNewPrivateFile(made.privateKeyPEM, to: keyPath)
        let mode = (try FileManager.default.attributesOfItem(atPath: keyPath)[.posixPermissions] as? NSNumber)?.intValue
        XCTAssertEqual(mode, 0o600)
        XCTAssertThrowsError(try NodeKeyRequest.writeNewPrivateFile("other", to: keyPath)) {
            XCTAssertEqual($0 as? IdentityError, .fileExists(path: keyPath), "a key is never overwritten")
        }
        XCTAssertEqual(try String(contentsOfFile: keyPath, encoding: .utf8), made.privateKeyPEM)

        let request = try NodeKeyRequest.parse(pem: try made.requestPEM, path: "bank-a.csr")
        let certificate = try ca.issue(request: request, path: "bank-a.csr", role: .bank, expectedNodeID: "bank-a")
        let certPath = folder.appendingPathComponent("bank-a.pem").path
        try certificate.serializeAsPEM().pemString.write(toFile: certPath, atomically: true, encoding: .utf8)
        // The node's own key matches the certificate, which chains to the CA and names the node.
        let identity = try CertificateCheck.verifyOwn(certificatePath: certPath, privateKeyPath: keyPath, caPath: caPath, expectedNodeID: "bank-a")
        XCTAssertEqual(identity.nodeID, "bank-a")
        XCTAssertEqual(identity.role, .bank)

        // Requests the CA refuses: for another node or role than asked, or tampered with.
        XCTAssertThrowsError(try ca.issue(request: request, path: "bank-a.csr", role: .bank, expectedNodeID: "bank-b"))
        XCTAssertThrowsError(try ca.issue(request: request, path: "bank-a.csr", role: .coordinator)) {
            XCTAssertTrue("\($0)".contains("role 'bank'"), "\($0)")
        }
        let other = try NodeKeyRequest.make(nodeID: "bank-b", role: .bank)
        let forged = try CertificateSigningRequest(version: request.version, subject: request.subject, publicKey: other.request.publicKey,
                                                   attributes: request.attributes, signatureAlgorithm: request.signatureAlgorithm,
                                                   signature: request.signature)
        XCTAssertThrowsError(try ca.issue(request: forged, path: "forged.csr", role: .bank)) {
            XCTAssertEqual($0 as? IdentityError, .requestSignatureInvalid(path: "forged.csr"))
        }
    }

    func testTheAdminSocketAdmitsRootTheDaemonsUserAndItsGroupOnly() {
        let access = AdminAccess(daemonUID: 1000, group: (gid: 2000, members: ["alice"]))
        XCTAssertTrue(access.allows(uid: 0, gid: 0))
        XCTAssertTrue(access.allows(uid: 1000, gid: 1000))
        XCTAssertTrue(access.allows(uid: 1500, gid: 2000), "primary group")
        XCTAssertTrue(access.allows(uid: 1501, gid: 1501, userName: "alice"), "a listed member")
        XCTAssertFalse(access.allows(uid: 1502, gid: 1502, userName: "mallory"))
        XCTAssertFalse(AdminAccess(daemonUID: 1000).allows(uid: 1500, gid: 2000), "no group configured")
    }
}
