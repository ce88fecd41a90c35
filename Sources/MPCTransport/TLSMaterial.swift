import Foundation
import MPCIdentity
import NIOSSL

/// A node's TLS files: its certificate and key, and the consortium CA certificate that every peer's
/// certificate must chain to. TLS 1.3 only, mutual authentication always.
public struct TLSMaterial: Sendable {
    public var certificatePath: String
    public var privateKeyPath: String
    public var caCertificatePath: String

    public init(certificatePath: String, privateKeyPath: String, caCertificatePath: String) {
        self.certificatePath = certificatePath
        self.privateKeyPath = privateKeyPath
        self.caCertificatePath = caCertificatePath
    }

    func configuration() throws -> TLSConfiguration {
        let chain = try NIOSSLCertificate.fromPEMFile(certificatePath).map { NIOSSLCertificateSource.certificate($0) }
        let key = try NIOSSLPrivateKey(file: privateKeyPath, format: .pem)
        let ca = try NIOSSLCertificate.fromPEMFile(caCertificatePath)
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv13
        configuration.maximumTLSVersion = .tlsv13
        configuration.trustRoots = .certificates(ca)
        return configuration
    }

    /// Server side: requires a client certificate chaining to the CA (identity is read from it afterwards).
    func makeServerContext() throws -> NIOSSLContext {
        var configuration = try self.configuration()
        configuration.certificateVerification = .noHostnameVerification
        return try NIOSSLContext(configuration: configuration)
    }

    /// Client side: the server's certificate must chain to the CA. Which node it names is checked after
    /// the handshake against the node that was dialled (`PeerTransport.verifyServer`), so that an
    /// impostor with a valid certificate of another member is reported as exactly that, not as a TLS failure.
    func makeClientContext() throws -> NIOSSLContext {
        var configuration = try self.configuration()
        configuration.certificateVerification = .noHostnameVerification
        return try NIOSSLContext(configuration: configuration)
    }
}
