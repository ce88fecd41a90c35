import Crypto
import Foundation
import SwiftASN1
import X509

/// Signatures by a node's certificate key, and their verification against a peer's certificate.
///
/// Used where a message is relayed by a third node (secure aggregation's server relays the clients'
/// public keys): the relay cannot substitute a key without breaking the signature, and the recipient
/// checks the signer's certificate chains to the consortium CA and names the claimed node.
public struct CertificateSignatures: Sendable {
    public let certificateDER: [UInt8]
    /// Until when this certificate, and the consortium CA's, are valid.
    public let notValidAfter: Date
    public let caNotValidAfter: Date
    let privateKey: P256.Signing.PrivateKey
    let ca: Certificate

    public init(certificatePath: String, privateKeyPath: String, caPath: String) throws {
        let certificate = try CertificateCheck.loadCertificate(path: certificatePath)
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        self.certificateDER = serializer.serializedBytes
        self.privateKey = try CertificateCheck.loadPrivateKey(path: privateKeyPath)
        self.ca = try CertificateCheck.loadCertificate(path: caPath)
        notValidAfter = certificate.notValidAfter
        caNotValidAfter = ca.notValidAfter
    }

    /// An ECDSA P-256 signature (DER) over SHA-256 of `message`.
    public func sign(_ message: [UInt8]) throws -> [UInt8] {
        Array(try privateKey.signature(for: message).derRepresentation)
    }

    /// Throws unless `certificateDER` was issued by the consortium CA, is valid at `at` (now, unless a
    /// signature kept earlier is checked again as of when it was received), names `nodeID`, and `signature`
    /// is its key's signature of `message`.
    public func verify(signature: [UInt8], message: [UInt8], nodeID: String, certificateDER: [UInt8], at: Date = Date()) throws {
        let certificate: Certificate
        do { certificate = try Certificate(derEncoded: certificateDER) } catch {
            throw SignatureError.malformedCertificate("\(error)")
        }
        let identity = try CertificateCheck.verify(certificate, issuedBy: ca, at: at)
        guard identity.nodeID == nodeID else { throw SignatureError.wrongSigner(expected: nodeID, certificate: identity.nodeID) }
        guard let key = P256.Signing.PublicKey(certificate.publicKey),
              let ecdsa = try? P256.Signing.ECDSASignature(derRepresentation: signature),
              key.isValidSignature(ecdsa, for: message) else {
            throw SignatureError.invalidSignature(nodeID)
        }
    }
}

public enum SignatureError: Error, CustomStringConvertible, Equatable {
    case malformedCertificate(String)
    case wrongSigner(expected: String, certificate: String)
    case invalidSignature(String)

    public var description: String {
        switch self {
        case .malformedCertificate(let d): return "the relayed certificate does not parse: \(d)"
        case .wrongSigner(let e, let c): return "signed with the certificate of \(c), not \(e)"
        case .invalidSignature(let n): return "the signature of \(n) does not verify"
        }
    }
}
