import Crypto
import Foundation
import SwiftASN1
import X509

/// The consortium's certificate authority: a P-256 key and a self-signed certificate.
///
/// The CA operator keeps the key offline; nodes only ever hold the CA certificate (to verify peers)
/// and their own key and certificate. Every node certificate names the node id (CN and DNS SAN) and
/// its role (OU), and is valid for both TLS server and client authentication.
///
/// ```swift
/// let ca = try ConsortiumCA.create(name: "Example consortium")
/// let bank = try ca.issue(nodeID: "bank-a", role: .bank)
/// try bank.certificatePEM.write(to: ...)
/// ```
public struct ConsortiumCA: Sendable {
    public let certificate: Certificate
    let privateKey: P256.Signing.PrivateKey

    public static func create(name: String, validity: TimeInterval = 10 * 365 * 86_400, now: Date = Date()) throws -> ConsortiumCA {
        let key = P256.Signing.PrivateKey()
        let subject = try DistinguishedName {
            OrganizationName(name)
            CommonName("\(name) CA")
        }
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
            Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            SubjectKeyIdentifier(hash: Certificate.PublicKey(key.publicKey))
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(validity),
            issuer: subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: extensions, issuerPrivateKey: .init(key))
        return ConsortiumCA(certificate: certificate, privateKey: key)
    }

    /// Loads a CA from its PEM certificate and key.
    public init(certificatePEM: String, privateKeyPEM: String) throws {
        certificate = try Certificate(pemEncoded: certificatePEM)
        privateKey = try P256.Signing.PrivateKey(pemRepresentation: privateKeyPEM)
    }

    init(certificate: Certificate, privateKey: P256.Signing.PrivateKey) {
        self.certificate = certificate
        self.privateKey = privateKey
    }

    public var certificatePEM: String { get throws { try certificate.serializeAsPEM().pemString } }
    public var privateKeyPEM: String { privateKey.pemRepresentation }

    /// Issues a certificate with a fresh key made here: for throwaway test and benchmark consortia only
    /// (`LocalConsortium`, `TestPKI`). A real consortium's CA issues from the node's request instead.
    public func issue(nodeID: String, role: NodeRole, validity: TimeInterval = 365 * 86_400,
                      now: Date = Date()) throws -> IssuedNodeCertificate {
        try NodeIdentity.validate(nodeID: nodeID)
        let key = P256.Signing.PrivateKey()
        let cert = try certificate(for: key.publicKey, nodeID: nodeID, role: role, validity: validity, now: now)
        return IssuedNodeCertificate(certificate: cert, privateKey: key)
    }

    /// Issues a certificate for the key in a node's CSR (the node made the key; the CA never sees it).
    /// The request's signature must verify, its subject must name a valid node id (and `role`, if it
    /// names one), and `expectedNodeID`, if given, must be that id.
    public func issue(request: CertificateSigningRequest, path: String, role: NodeRole, expectedNodeID: String? = nil,
                      validity: TimeInterval = 365 * 86_400, now: Date = Date()) throws -> Certificate {
        guard request.publicKey.isValidSignature(request.signature, for: request) else {
            throw IdentityError.requestSignatureInvalid(path: path)
        }
        var commonNames: [String] = [], units: [String] = []
        for rdn in request.subject {
            for attribute in rdn {
                if attribute.type == .RDNAttributeType.commonName { commonNames.append(String(attribute.value) ?? "") }
                if attribute.type == .RDNAttributeType.organizationalUnitName { units.append(String(attribute.value) ?? "") }
            }
        }
        guard commonNames.count <= 1, units.count <= 1 else {
            throw IdentityError.requestMismatch(detail: "it names \(commonNames.count) node ids and \(units.count) roles; one of each at most")
        }
        let unit = units.first
        guard let nodeID = commonNames.first else { throw IdentityError.missingNodeID(subject: "\(request.subject)") }
        try NodeIdentity.validate(nodeID: nodeID)
        if let expectedNodeID, expectedNodeID != nodeID {
            throw IdentityError.requestMismatch(detail: "it is for node '\(nodeID)', not '\(expectedNodeID)'")
        }
        if let unit, unit != role.rawValue {
            throw IdentityError.requestMismatch(detail: "it asks for role '\(unit)', not '\(role.rawValue)'")
        }
        guard let p256 = P256.Signing.PublicKey(request.publicKey) else {
            throw IdentityError.requestMismatch(detail: "its key is not a P-256 key (make one with `mpcnode node init`)")
        }
        return try certificate(for: p256, nodeID: nodeID, role: role, validity: validity, now: now)
    }

    private func certificate(for key: P256.Signing.PublicKey, nodeID: String, role: NodeRole, validity: TimeInterval, now: Date) throws -> Certificate {
        let subject = try DistinguishedName {
            OrganizationName(organizationName)
            OrganizationalUnitName(role.rawValue)
            CommonName(nodeID)
        }
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true, keyAgreement: true))
            try ExtendedKeyUsage([.serverAuth, .clientAuth])
            SubjectAlternativeNames([.dnsName(nodeID)])
            SubjectKeyIdentifier(hash: Certificate.PublicKey(key))
            AuthorityKeyIdentifier(keyIdentifier: SubjectKeyIdentifier(hash: certificate.publicKey).keyIdentifier)
        }
        return try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key),
            notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(validity),
            issuer: certificate.subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: extensions, issuerPrivateKey: .init(privateKey))
    }

    private var organizationName: String {
        for rdn in certificate.subject {
            for attribute in rdn where attribute.type == .RDNAttributeType.organizationName {
                if let s = String(attribute.value) { return s }
            }
        }
        return "MPCNode consortium"
    }
}

/// A node's certificate and its private key, as the CA operator hands them over.
public struct IssuedNodeCertificate: Sendable {
    public let certificate: Certificate
    let privateKey: P256.Signing.PrivateKey

    public var certificatePEM: String { get throws { try certificate.serializeAsPEM().pemString } }
    public var privateKeyPEM: String { privateKey.pemRepresentation }
}
