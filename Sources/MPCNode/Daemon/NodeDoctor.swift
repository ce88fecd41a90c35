import Foundation
import Logging
import MPCIdentity
import MPCTransport
import MPCWire
import NIOCore
import NIOPosix

/// `mpcnode doctor`: checks a node's configuration, files, permissions, certificate and the mutual-TLS
/// reachability of each peer, and says what to fix. It changes nothing (it does not create the data
/// folder nor open the database for writing).
public enum NodeDoctor {
    public struct Check: Sendable, Equatable {
        public enum Outcome: String, Sendable { case ok, warning, failed }
        public var name: String
        public var outcome: Outcome
        public var detail: String
        /// What to do about it (empty when all is well).
        public var fix: String
    }

    /// `offline`: only the files (no daemon nor peer check), e.g. before the node is deployed.
    public static func run(configurationPath: String, peerTimeout: TimeAmount = .seconds(5), offline: Bool = false) async -> [Check] {
        var checks: [Check] = []
        func add(_ name: String, _ outcome: Check.Outcome, _ detail: String, fix: String = "") {
            checks.append(Check(name: name, outcome: outcome, detail: detail, fix: fix))
        }
        let configuration: NodeConfiguration
        do {
            configuration = try NodeConfiguration.load(path: configurationPath)
            add("configuration", .ok, "\(configurationPath): node \(configuration.nodeID), \(configuration.peers.count) peers")
        } catch {
            add("configuration", .failed, "\(error)", fix: "correct the file (README, \"Running a node in production\", has an example)")
            return checks
        }

        // The private key: present, private.
        let keyPath = configuration.tls.privateKey.path
        if !FileManager.default.fileExists(atPath: keyPath) {
            add("private key", .failed, "\(keyPath) does not exist", fix: "make it with `mpcnode node init --node \(configuration.nodeID) --role <role>` and have the CA sign the request")
        } else {
            do {
                try PrivateFiles.checkKey(keyPath)
                add("private key", .ok, "\(keyPath) is readable by its owner only")
            } catch {
                add("private key", .failed, "\(error)", fix: "chmod 600 \(keyPath)")
            }
        }

        // The certificate: issued by the consortium CA, valid, for this node, matching the key.
        var identity: NodeIdentity?
        do {
            identity = try CertificateCheck.verifyOwn(
                certificatePath: configuration.tls.certificate.path, privateKeyPath: keyPath,
                caPath: configuration.tls.caCertificate.path, expectedNodeID: configuration.nodeID)
            let certificate = try CertificateCheck.loadCertificate(path: configuration.tls.certificate.path)
            let days = Int(certificate.notValidAfter.timeIntervalSinceNow / 86_400)
            if days < 30 {
                add("certificate", .warning, "\(identity!.nodeID) (\(identity!.role.rawValue)), expires in \(days) days",
                    fix: "have a new certificate signed before it expires (`mpcnode node init`, then the CA's `mpcnode ca sign`)")
            } else {
                add("certificate", .ok, "\(identity!.nodeID) (\(identity!.role.rawValue)), issued by the consortium CA, \(days) days left")
            }
        } catch {
            add("certificate", .failed, "\(error)", fix: "check tls.certificate, tls.private_key and tls.ca_certificate; the CA's `mpcnode ca sign` makes a certificate for this node's request")
        }

        // The revocation list, if one is configured.
        if let path = configuration.tls.revocationList, identity != nil {
            do {
                let ca = try CertificateCheck.loadCertificate(path: configuration.tls.caCertificate.path)
                let list = try RevocationList.load(path: path.path, ca: ca)
                add("revocation list", .ok, "\(path.path): signed by the CA on \(ISO8601DateFormatter().string(from: list.issuedAt)), \(list.entries.count) revoked")
            } catch {
                add("revocation list", .failed, "\(error)", fix: "get the current list from the CA operator (`mpcnode ca revoke` writes it)")
            }
        }

        // The data folder.
        let data = configuration.dataDirectory.path
        var isFolder: ObjCBool = false
        if !FileManager.default.fileExists(atPath: data, isDirectory: &isFolder) {
            add("data folder", .warning, "\(data) does not exist yet", fix: "it is made (0700) when the daemon starts; check that its parent is writable by the daemon's user")
        } else if !isFolder.boolValue {
            add("data folder", .failed, "\(data) is not a folder", fix: "point data_dir at a folder")
        } else {
            let mode = ((try? FileManager.default.attributesOfItem(atPath: data))?[.posixPermissions] as? NSNumber)?.intValue ?? 0
            if !FileManager.default.isWritableFile(atPath: data) {
                add("data folder", .failed, "\(data) is not writable by this user", fix: "run as the daemon's user, or chown the folder to it")
            } else if mode & 0o077 != 0 {
                add("data folder", .warning, "\(data) has mode \(String(mode, radix: 8)): others can look in", fix: "chmod 700 \(data) (the daemon does it at start)")
            } else {
                add("data folder", .ok, "\(data) (mode \(String(mode, radix: 8)))")
            }
        }

        if offline { return checks }
        // The daemon.
        if (try? await AdminClient(socketPath: configuration.adminSocketPath).send(AdminRequest(command: .status)))?.node != nil {
            add("daemon", .ok, "answers on \(configuration.adminSocketPath.path)")
        } else {
            add("daemon", .warning, "not running (no answer on \(configuration.adminSocketPath.path))", fix: "start it: `mpcnode serve --config \(configurationPath)` or `systemctl start mpcnode`")
        }

        // Each peer, over mutual TLS with this node's own certificate.
        guard let identity else { return checks }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var options = TransportOptions()
        options.connectTimeout = peerTimeout
        options.handshakeTimeout = peerTimeout
        guard let transport = try? PeerTransport(
            identity: identity,
            material: TLSMaterial(certificatePath: configuration.tls.certificate.path, privateKeyPath: keyPath,
                                  caCertificatePath: configuration.tls.caCertificate.path),
            group: group, options: options, logger: .init(label: "doctor", factory: { _ in SwiftLogNoOpLogHandler() })) else {
            add("peers", .failed, "the TLS files cannot be loaded", fix: "see the certificate check")
            try? await group.shutdownGracefully()
            return checks
        }
        for (peer, address) in configuration.peers.sorted(by: { $0.key < $1.key }) {
            let started = ContinuousClock.now
            do {
                // An empty control request: the peer answers "empty control request" and does nothing.
                let notValidAfter = try await transport.probe(peer, at: address).certificateNotValidAfter
                let ms = Double((ContinuousClock.now - started) / .microseconds(1)) / 1000
                let days = notValidAfter.map { Int(($0.timeIntervalSinceNow / 86_400).rounded(.down)) }
                let answered = "\(address): mutual TLS as \(peer), answered in \(String(format: "%.1f", ms)) ms"
                if let days, days < 30 {
                    add("peer \(peer)", .warning, "\(answered); its certificate expires in \(days) days",
                        fix: "ask \(peer)'s operator to renew it (a new key and request from mpcnode node init, signed with mpcnode ca sign, then a SIGHUP)")
                } else {
                    add("peer \(peer)", .ok, answered + (days.map { "; its certificate is valid \($0) more days" } ?? ""))
                }
            } catch {
                add("peer \(peer)", .failed, "\(address): \(error)",
                    fix: "check the address in peers:, that \(peer)'s daemon runs and its port is open to this host, and that both certificates come from the same consortium CA")
            }
        }
        try? await group.shutdownGracefully()
        return checks
    }
}
