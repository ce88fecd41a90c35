import Crypto
import Foundation
import SwiftASN1
import X509

/// The checks a node makes on its own certificate before it serves, and that the transport makes on
/// a peer's: issued (signed) by the consortium CA, within its validity period, naming a node id and a
/// role, and (for its own) matching the configured node id and private key.
public enum CertificateCheck {
    /// Reads a PEM certificate file.
    public static func loadCertificate(path: String) throws -> Certificate {
        let pem: String
        do { pem = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw IdentityError.unreadableFile(path: path, detail: "\(error.localizedDescription)")
        }
        do { return try Certificate(pemEncoded: pem) } catch {
            throw IdentityError.malformedCertificate(path: path, detail: "\(error)")
        }
    }

    /// Reads a PEM P-256 private key file.
    public static func loadPrivateKey(path: String) throws -> P256.Signing.PrivateKey {
        let pem: String
        do { pem = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw IdentityError.unreadableFile(path: path, detail: "\(error.localizedDescription)")
        }
        do { return try P256.Signing.PrivateKey(pemRepresentation: pem) } catch {
            throw IdentityError.malformedKey(path: path, detail: "\(error)")
        }
    }

    /// Verifies `certificate` against the CA certificate and the clock, and returns its identity.
    public static func verify(_ certificate: Certificate, issuedBy ca: Certificate, at now: Date = Date()) throws -> NodeIdentity {
        let subject = "\(certificate.subject)"
        guard certificate.issuer == ca.subject, ca.publicKey.isValidSignature(certificate.signature, for: certificate) else {
            throw IdentityError.notIssuedByConsortiumCA(subject: subject)
        }
        let identity = try NodeIdentity(certificate: certificate)
        let formatter = ISO8601DateFormatter()
        guard now >= certificate.notValidBefore else {
            throw IdentityError.notYetValid(nodeID: identity.nodeID, notValidBefore: formatter.string(from: certificate.notValidBefore))
        }
        guard now <= certificate.notValidAfter else {
            throw IdentityError.expired(nodeID: identity.nodeID, notValidAfter: formatter.string(from: certificate.notValidAfter))
        }
        return identity
    }

    /// The start-up check of a node's own files.
    public static func verifyOwn(certificatePath: String, privateKeyPath: String, caPath: String,
                                 expectedNodeID: String, at now: Date = Date()) throws -> NodeIdentity {
        let certificate = try loadCertificate(path: certificatePath)
        let ca = try loadCertificate(path: caPath)
        let key = try loadPrivateKey(path: privateKeyPath)
        let identity = try verify(certificate, issuedBy: ca, at: now)
        guard identity.nodeID == expectedNodeID else {
            throw IdentityError.nodeIDMismatch(certificate: identity.nodeID, configured: expectedNodeID)
        }
        guard certificate.publicKey == Certificate.PublicKey(key.publicKey) else {
            throw IdentityError.keyDoesNotMatchCertificate(nodeID: identity.nodeID)
        }
        return identity
    }
}
