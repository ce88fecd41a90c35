import Foundation
import MPCIdentity

/// A throwaway consortium PKI in a temporary folder: a CA and node certificates, as PEM files.
public struct TestPKI {
    public let directory: URL
    public let ca: ConsortiumCA

    public init(name: String = "Test consortium") throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("mpcnode-pki-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        ca = try ConsortiumCA.create(name: name)
        try ca.certificatePEM.write(to: caPath, atomically: true, encoding: .utf8)
    }

    public var caPath: URL { directory.appendingPathComponent("ca.pem") }

    /// Issues a certificate and key for `nodeID`, written as `<nodeID>.pem` and `<nodeID>-key.pem`.
    @discardableResult
    public func issue(_ nodeID: String, role: NodeRole = .bank, validity: TimeInterval = 86_400,
                      now: Date = Date()) throws -> (certificate: URL, key: URL) {
        let issued = try ca.issue(nodeID: nodeID, role: role, validity: validity, now: now)
        let cert = directory.appendingPathComponent("\(nodeID).pem")
        let key = directory.appendingPathComponent("\(nodeID)-key.pem")
        try issued.certificatePEM.write(to: cert, atomically: true, encoding: .utf8)
        FileManager.default.createFile(atPath: key.path, contents: Data(issued.privateKeyPEM.utf8), attributes: [.posixPermissions: 0o600])
        return (cert, key)
    }

    public func remove() { try? FileManager.default.removeItem(at: directory) }
}
