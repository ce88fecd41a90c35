/// Why a certificate, key or CA file is not acceptable. The text says what to do about it.
public enum IdentityError: Error, Equatable, CustomStringConvertible {
    case unreadableFile(path: String, detail: String)
    case malformedCertificate(path: String, detail: String)
    case malformedKey(path: String, detail: String)
    case notIssuedByConsortiumCA(subject: String)
    case expired(nodeID: String, notValidAfter: String)
    case notYetValid(nodeID: String, notValidBefore: String)
    case nodeIDMismatch(certificate: String, configured: String)
    case keyDoesNotMatchCertificate(nodeID: String)
    case missingNodeID(subject: String)
    case missingRole(nodeID: String)
    case invalidNodeID(String)
    case fileExists(path: String)
    case unwritableFile(path: String, detail: String)
    case malformedRequest(path: String, detail: String)
    case requestSignatureInvalid(path: String)
    case requestMismatch(detail: String)
    case malformedRevocationList(path: String, detail: String)
    case revoked(nodeID: String, serial: String, reason: String)

    public var description: String {
        switch self {
        case .unreadableFile(let p, let d): return "cannot read \(p): \(d)"
        case .malformedCertificate(let p, let d): return "\(p) is not a PEM certificate: \(d)"
        case .malformedKey(let p, let d): return "\(p) is not a PEM P-256 private key: \(d)"
        case .notIssuedByConsortiumCA(let s): return "certificate of \(s) was not issued by the consortium CA; ask the CA operator to sign this node's request (`mpcnode node init`, then `mpcnode ca issue --csr`)"
        case .expired(let n, let d): return "certificate of \(n) expired on \(d); make a new key and request (`mpcnode node init`) and ask the CA operator to sign it (`mpcnode ca issue --csr`)"
        case .notYetValid(let n, let d): return "certificate of \(n) is not valid before \(d); check the machine's clock"
        case .nodeIDMismatch(let c, let n): return "the certificate is for node '\(c)' but this node is configured as '\(n)'; use this node's own certificate or fix node_id in the configuration"
        case .keyDoesNotMatchCertificate(let n): return "the private key does not belong to the certificate of \(n); use the key issued with that certificate"
        case .missingNodeID(let s): return "certificate \(s) names no node id (subject CN)"
        case .missingRole(let n): return "certificate of \(n) names no valid role (subject OU: bank, coordinator or regulator)"
        case .invalidNodeID(let id): return "'\(id)' is not a valid node id: use 1 to 63 characters of a-z, 0-9 and '-', starting with a letter"
        case .fileExists(let p): return "\(p) already exists; refusing to overwrite it"
        case .unwritableFile(let p, let d): return "cannot write \(p): \(d); nothing was left half-written on purpose, check the folder and remove the partial file"
        case .malformedRequest(let p, let d): return "\(p) is not a PEM certificate signing request: \(d); make one with `mpcnode node init`"
        case .requestSignatureInvalid(let p): return "the request \(p) is not signed by the key it names; ask the node to run `mpcnode node init` again"
        case .requestMismatch(let d): return "the request does not match: \(d)"
        case .malformedRevocationList(let p, let d): return "the revocation list \(p) is not usable: \(d); get the current one from the CA operator (`mpcnode ca revoke` writes it)"
        case .revoked(let n, let s, let r): return "the certificate of \(n) (serial \(s)) is revoked by the consortium CA (\(r)); \(n) needs a new certificate"
        }
    }
}
