import Crypto
import Foundation
import X509

/// The consortium's list of revoked node certificates, signed by the CA (`mpcnode ca revoke`), which the CA
/// operator distributes and every node loads (`tls.revocation_list`, at start and on SIGHUP). A node
/// refuses any connection whose peer presents a listed certificate, and refuses to start with its own
/// certificate listed. The file is JSON: `{"list": "<the list as JSON text>", "signature": "<base64 DER
/// ECDSA P-256 by the CA over the list's bytes>"}`; the list holds the CA's subject, when it was made,
/// and each revoked certificate's serial (hex), node id, reason and time.
public struct RevocationList: Sendable, Equatable {
    public struct Entry: Codable, Sendable, Equatable {
        public var serial: String
        public var node: String
        public var reason: String
        public var revokedAt: Date
        enum CodingKeys: String, CodingKey { case serial, node, reason, revokedAt = "revoked_at" }
    }

    public var issuer: String
    public var issuedAt: Date
    public var entries: [Entry]

    public func contains(_ certificate: Certificate) -> Bool { entry(for: certificate) != nil }

    /// The entry that revokes `certificate`, if any.
    public func entry(for certificate: Certificate) -> Entry? {
        let serial = Self.hex(Array(certificate.serialNumber.bytes))
        return entries.first { $0.serial == serial }
    }

    /// An empty list of this CA.
    public init(issuer: String, issuedAt: Date = Date(), entries: [Entry] = []) {
        self.issuer = issuer
        self.issuedAt = issuedAt
        self.entries = entries
    }

    /// The list with `certificate` added (unless listed already).
    public func adding(_ certificate: Certificate, reason: String, at now: Date = Date()) throws -> RevocationList {
        var out = self
        let serial = Self.hex(Array(certificate.serialNumber.bytes))
        guard !entries.contains(where: { $0.serial == serial }) else { return out }
        out.entries.append(Entry(serial: serial, node: try NodeIdentity(certificate: certificate).nodeID, reason: String(reason.prefix(200)), revokedAt: now))
        out.issuedAt = now
        return out
    }

    /// The signed file's text.
    public func signed(by ca: ConsortiumCA) throws -> String {
        let body = try Self.encoder.encode(Body(issuer: issuer, issuedAt: issuedAt, revoked: entries))
        let signature = try ca.privateKey.signature(for: body).derRepresentation
        let file = try JSONSerialization.data(withJSONObject: ["list": String(decoding: body, as: UTF8.self), "signature": signature.base64EncodedString()],
                                              options: [.prettyPrinted, .sortedKeys])
        return String(decoding: file, as: UTF8.self) + "\n"
    }

    /// Reads and verifies a signed list against the CA certificate; throws (naming the file) if it is
    /// malformed, not signed by this CA, or of another CA.
    public static func load(path: String, ca: Certificate) throws -> RevocationList {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw IdentityError.unreadableFile(path: path, detail: error.localizedDescription)
        }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let list = object["list"] as? String, let signatureText = object["signature"] as? String,
              let signatureBytes = Data(base64Encoded: signatureText),
              let signature = try? P256.Signing.ECDSASignature(derRepresentation: signatureBytes),
              let key = P256.Signing.PublicKey(ca.publicKey) else {
            throw IdentityError.malformedRevocationList(path: path, detail: "not a signed revocation list ({\"list\": …, \"signature\": …})")
        }
        guard key.isValidSignature(signature, for: Data(list.utf8)) else {
            throw IdentityError.malformedRevocationList(path: path, detail: "its signature is not the consortium CA's")
        }
        let body: Body
        do { body = try decoder.decode(Body.self, from: Data(list.utf8)) } catch {
            throw IdentityError.malformedRevocationList(path: path, detail: "\(error)")
        }
        guard body.issuer == "\(ca.subject)" else {
            throw IdentityError.malformedRevocationList(path: path, detail: "it is the list of \(body.issuer), not of \(ca.subject)")
        }
        for entry in body.revoked where bytes(hex: entry.serial) == nil {
            throw IdentityError.malformedRevocationList(path: path, detail: "serial \(entry.serial) is not hexadecimal")
        }
        return RevocationList(issuer: body.issuer, issuedAt: body.issuedAt, entries: body.revoked)
    }

    struct Body: Codable {
        var issuer: String
        var issuedAt: Date
        var revoked: [Entry]
        enum CodingKeys: String, CodingKey { case issuer, issuedAt = "issued_at", revoked }
    }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.dateEncodingStrategy = .iso8601
        e.outputFormatting = [.sortedKeys]
        return e
    }()
    static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .iso8601
        return d
    }()

    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    static func bytes(hex: String) -> [UInt8]? {
        guard hex.count % 2 == 0, !hex.isEmpty, hex.count <= 64 else { return nil }
        var out: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            guard let b = UInt8(hex[index..<next], radix: 16) else { return nil }
            out.append(b)
            index = next
        }
        return out
    }
}
