import Crypto
import Foundation
import MPCTransport

/// The node's local HTTP API (`http:` in its configuration): where it listens (apart from the peer port)
/// and who may call it. No anonymous access: every request carries a bearer token configured here (the
/// file holds its SHA-256, never the token), or comes over TLS with a client certificate of the bank's
/// internal CA (`tls.client_ca`).
///
/// ```yaml
/// http:
///   listen: 127.0.0.1:8401
///   tokens:
///     - name: fraud-engine
///       sha256: 5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8
///       roles: [lookup]
///   max_request_bytes: 1048576
///   max_batch_keys: 1000
///   tls:                                # optional: HTTPS, and client certificates when client_ca is set
///     certificate: pki/bank-b-http.pem
///     private_key: pki/bank-b-http-key.pem
///     client_ca: pki/bank-b-internal-ca.pem
///     client_roles: [lookup, read]      # what a client certificate may do (this is the default)
/// ```
public struct HTTPAPISettings: Sendable, Equatable {
    public struct Token: Sendable, Equatable {
        public var name: String
        public var sha256: [UInt8]
        public var roles: Set<Role>
    }

    /// What a caller may do: `lookup` (POST /v1/lookups), `read` (the lists' status).
    public enum Role: String, Sendable, CaseIterable {
        /// `POST /v1/lookups`; `read`: the lists' status; `metrics`: `GET /metrics` (for Prometheus).
        case lookup, read, metrics
        /// The node's operator: node, datasets (metadata), jobs, results, audit.
        case operations = "operator"
        /// Submits jobs (on a coordinator's node) and follows them.
        case coordinator
        /// Reads reports and models (a regulator's viewer).
        case regulator
    }

    public struct TLSFiles: Sendable, Equatable {
        public var certificate: URL
        public var privateKey: URL
        public var clientCA: URL?
        /// The roles of a caller authenticated by a client certificate (default lookup and read).
        public var clientRoles: Set<Role> = [.lookup, .read]
    }

    public var listen: PeerAddress
    public var tokens: [Token]
    public var maximumRequestBytes: Int
    public var maximumBatchKeys: Int
    public var tls: TLSFiles?

    /// The token whose SHA-256 is that of `presented` (compared in constant time), if any.
    public func token(presented: String) -> Token? {
        let digest = Array(SHA256.hash(data: Data(presented.utf8)))
        var found: Token?
        for t in tokens {
            var difference: UInt8 = 0
            for (a, b) in zip(t.sha256, digest) { difference |= a ^ b }
            if difference == 0 && t.sha256.count == digest.count { found = t }
        }
        return found
    }

    /// A new random token and its configuration entry.
    public static func newToken() -> (token: String, sha256: String) {
        var bytes = [UInt8](repeating: 0, count: 32)
        var generator = SystemRandomNumberGenerator()
        for i in bytes.indices { bytes[i] = generator.next() }
        let token = "mpcn_" + bytes.map { String(format: "%02x", $0) }.joined()
        return (token, SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined())
    }

    init(_ raw: RawHTTP, path: String, resolve: (String) -> URL) throws {
        // Port 0: any free port (tests; the running port is logged).
        let zero = raw.listen.hasSuffix(":0") ? PeerAddress(String(raw.listen.dropLast(2)) + ":1").map { PeerAddress(host: $0.host, port: 0) } : nil
        guard let listen = zero ?? PeerAddress(raw.listen) else {
            throw ConfigurationError.invalid(path: path, detail: "http.listen: '\(raw.listen)' is not host:port")
        }
        self.listen = listen
        var tokens: [Token] = []
        for (i, t) in (raw.tokens ?? []).enumerated() {
            let hex = t.sha256.lowercased()
            guard hex.count == 64, let bytes = Self.bytes(hex: hex) else {
                throw ConfigurationError.invalid(path: path, detail: "http.tokens[\(i)].sha256 must be 64 hex digits (the SHA-256 of the token; `mpcnode node token` makes one)")
            }
            var roles = Set<Role>()
            for r in t.roles ?? ["lookup", "read"] {
                guard let role = Role(rawValue: r) else {
                    throw ConfigurationError.invalid(path: path, detail: "http.tokens[\(i)].roles: unknown role '\(r)' (known: \(Role.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                roles.insert(role)
            }
            tokens.append(Token(name: t.name, sha256: bytes, roles: roles))
        }
        self.tokens = tokens
        maximumRequestBytes = raw.max_request_bytes ?? 1 << 20
        maximumBatchKeys = raw.max_batch_keys ?? 1000
        guard (1024...(64 << 20)).contains(maximumRequestBytes) else {
            throw ConfigurationError.invalid(path: path, detail: "http.max_request_bytes must lie in 1024…67108864")
        }
        guard (1...100_000).contains(maximumBatchKeys) else {
            throw ConfigurationError.invalid(path: path, detail: "http.max_batch_keys must lie in 1…100000")
        }
        if let t = raw.tls {
            var files = TLSFiles(certificate: resolve(t.certificate), privateKey: resolve(t.private_key), clientCA: t.client_ca.map(resolve))
            if let names = t.client_roles {
                files.clientRoles = []
                for r in names {
                    guard let role = Role(rawValue: r) else {
                        throw ConfigurationError.invalid(path: path, detail: "http.tls.client_roles: unknown role '\(r)' (known: \(Role.allCases.map(\.rawValue).joined(separator: ", ")))")
                    }
                    files.clientRoles.insert(role)
                }
            }
            tls = files
        } else {
            tls = nil
        }
        guard !tokens.isEmpty || tls?.clientCA != nil else {
            throw ConfigurationError.invalid(path: path, detail: "http: configure tokens or tls.client_ca; the API never takes anonymous requests")
        }
    }

    static func bytes(hex: String) -> [UInt8]? {
        var out: [UInt8] = []
        var chars = Array(hex.utf8)[...]
        while chars.count >= 2 {
            guard let b = UInt8(String(decoding: chars.prefix(2), as: UTF8.self), radix: 16) else { return nil }
            out.append(b)
            chars = chars.dropFirst(2)
        }
        return chars.isEmpty ? out : nil
    }
}

struct RawHTTP: Codable {
    struct RawToken: Codable { var name: String; var sha256: String; var roles: [String]? }
    struct RawHTTPTLS: Codable { var certificate: String; var private_key: String; var client_ca: String?; var client_roles: [String]? }
    var listen: String
    var tokens: [RawToken]?
    var max_request_bytes: Int?
    var max_batch_keys: Int?
    var tls: RawHTTPTLS?
}
