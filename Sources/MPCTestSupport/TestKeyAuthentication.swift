import Foundation
import MPCIdentity
import MPCProtocols

extension TestPKI {
    /// How `nodeID` signs its secure-aggregation keys in a test: a certificate issued by this PKI (as
    /// `signAs`, to play a node holding another's certificate), checked against this PKI's CA.
    public func keyAuthentication(_ nodeID: String, signAs: String? = nil) throws -> KeyAuthentication {
        let (cert, key) = try issue(signAs ?? nodeID)
        let signatures = try CertificateSignatures(certificatePath: cert.path, privateKeyPath: key.path, caPath: caPath.path)
        return KeyAuthentication(certificateDER: signatures.certificateDER, sign: { try signatures.sign($0) },
                                 verify: { try signatures.verify(signature: $0, message: $1, nodeID: $2, certificateDER: $3) })
    }
}
