import Foundation
import MPCIdentity
import Synchronization

/// This node's signing key and certificate as the long-lived services use them (lookup tables), shared
/// so that a certificate reloaded while the daemon runs (`NodeRuntime.reloadCertificates`) signs the next
/// table. Jobs read theirs from the files when they start.
public final class NodeSignatures: Sendable {
    private let current: Mutex<CertificateSignatures>

    public init(_ signatures: CertificateSignatures) { current = Mutex(signatures) }

    func replace(with signatures: CertificateSignatures) { current.withLock { $0 = signatures } }

    /// Until when the certificate in force (and its CA) are valid: what was loaded at start or by the last
    /// reload that verified, whatever the files say now.
    var notValidAfter: (certificate: Date, ca: Date) { current.withLock { ($0.notValidAfter, $0.caNotValidAfter) } }

    /// A signature and the certificate that verifies it, from one key (never a new key with an old certificate).
    func sign(_ message: [UInt8]) throws -> (signature: [UInt8], certificateDER: [UInt8]) {
        let s = current.withLock { $0 }
        return (try s.sign(message), s.certificateDER)
    }

    func verify(signature: [UInt8], message: [UInt8], nodeID: String, certificateDER: [UInt8], at: Date = Date()) throws {
        try current.withLock { $0 }.verify(signature: signature, message: message, nodeID: nodeID, certificateDER: certificateDER, at: at)
    }
}
