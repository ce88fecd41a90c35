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

    public var description: String {
        switch self {
        case .unreadableFile(let p, let d): return "cannot read \(p): \(d)"
        case .malformedCertificate(let p, let d): return "\(p) is not a PEM certificate: \(d)"
        case .malformedKey(let p, let d): return "\(p) is not a PEM P-256 private key: \(d)"
        case .notIssuedByConsortiumCA(let s): return "certificate of \(s) was not issued by the consortium CA; ask the CA operator for a certificate (`mpcnode ca issue`)"
        case .expired(let n, let d): return "certificate of \(n) expired on \(d); ask the CA operator to issue a new one (`mpcnode ca issue --node \(n)`)"
        case .notYetValid(let n, let d): return "certificate of \(n) is not valid before \(d); check the machine's clock"
        case .nodeIDMismatch(let c, let n): return "the certificate is for node '\(c)' but this node is configured as '\(n)'; use this node's own certificate or fix node_id in the configuration"
        case .keyDoesNotMatchCertificate(let n): return "the private key does not belong to the certificate of \(n); use the key issued with that certificate"
        case .missingNodeID(let s): return "certificate \(s) names no node id (subject CN)"
        case .missingRole(let n): return "certificate of \(n) names no valid role (subject OU: bank, coordinator or regulator)"
        case .invalidNodeID(let id): return "'\(id)' is not a valid node id: use 1 to 63 characters of a-z, 0-9 and '-', starting with a letter"
        case .fileExists(let p): return "\(p) already exists; refusing to overwrite it"
        }
    }
}
