import Crypto
import Foundation
import SwiftASN1
import X509

/// What a node makes for itself before it joins: its private key (which never leaves it) and a
/// certificate signing request naming its node id and role, for the CA operator (`mpcnode ca issue
/// --csr`). The CA never generates or sees a node's key.
public struct NodeKeyRequest: Sendable {
    public let nodeID: String
    public let role: NodeRole
    let privateKey: P256.Signing.PrivateKey
    public let request: CertificateSigningRequest

    /// A fresh key and a CSR signed with it: subject CN = node id, OU = role.
    public static func make(nodeID: String, role: NodeRole) throws -> NodeKeyRequest {
        try NodeIdentity.validate(nodeID: nodeID)
        let key = P256.Signing.PrivateKey()
        let subject = try DistinguishedName {
            OrganizationalUnitName(role.rawValue)
            CommonName(nodeID)
        }
        let request = try CertificateSigningRequest(version: .v1, subject: subject, privateKey: .init(key),
                                                    attributes: CertificateSigningRequest.Attributes(), signatureAlgorithm: .ecdsaWithSHA256)
        return NodeKeyRequest(nodeID: nodeID, role: role, privateKey: key, request: request)
    }

    public var privateKeyPEM: String { privateKey.pemRepresentation }
    public var requestPEM: String { get throws { try request.serializeAsPEM().pemString } }

    /// A CSR from its PEM text.
    public static func parse(pem: String, path: String) throws -> CertificateSigningRequest {
        do { return try CertificateSigningRequest(pemEncoded: pem) } catch {
            throw IdentityError.malformedRequest(path: path, detail: "\(error)")
        }
    }

    /// Writes `text` to a new file readable by its owner only, failing if the file exists (O_EXCL) or
    /// cannot be written in full.
    public static func writeNewPrivateFile(_ text: String, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else {
            if errno == EEXIST { throw IdentityError.fileExists(path: path) }
            throw IdentityError.unwritableFile(path: path, detail: String(cString: strerror(errno)))
        }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { throw IdentityError.unwritableFile(path: path, detail: String(cString: strerror(errno))) }
            written += n
        }
        guard fsync(fd) == 0 else { throw IdentityError.unwritableFile(path: path, detail: String(cString: strerror(errno))) }
    }
}
