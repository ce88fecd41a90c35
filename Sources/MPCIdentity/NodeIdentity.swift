import Foundation
import X509
import SwiftASN1

/// The identity a certificate asserts: node id (subject CN, also a DNS SAN) and role (subject OU).
public struct NodeIdentity: Sendable, Equatable, CustomStringConvertible {
    public let nodeID: String
    public let role: NodeRole

    public init(nodeID: String, role: NodeRole) {
        self.nodeID = nodeID
        self.role = role
    }

    /// Reads the identity from a certificate issued by `ConsortiumCA`.
    public init(certificate: Certificate) throws {
        var cn: String?
        var ou: String?
        for rdn in certificate.subject {
            for attribute in rdn {
                if attribute.type == .RDNAttributeType.commonName { cn = String(attribute.value) }
                if attribute.type == .RDNAttributeType.organizationalUnitName { ou = String(attribute.value) }
            }
        }
        guard let cn else { throw IdentityError.missingNodeID(subject: "\(certificate.subject)") }
        guard let ou, let role = NodeRole(rawValue: ou) else { throw IdentityError.missingRole(nodeID: cn) }
        self.init(nodeID: cn, role: role)
    }

    public var description: String { "\(nodeID) (\(role.rawValue))" }

    /// Node ids are DNS labels, so they can also serve as the name TLS checks.
    public static func validate(nodeID: String) throws {
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789-")
        guard (1...63).contains(nodeID.count), nodeID.allSatisfy(allowed.contains),
              nodeID.first!.isLetter, nodeID.last != "-" else {
            throw IdentityError.invalidNodeID(nodeID)
        }
    }
}
