import ArgumentParser
import Foundation
import MPCIdentity

struct CACommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ca",
        abstract: "Create the consortium CA and issue node certificates (run by the CA operator, not on the nodes).",
        subcommands: [Init.self, Issue.self, Revoke.self])

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a node's certificate: adds it to the CA's signed revocation list (<dir>/revocations.json).",
            discussion: "Give the file to every node (tls.revocation_list in its configuration) and have it reload (SIGHUP): it then refuses any connection presenting that certificate. With no --certificate, writes the current (possibly empty) list signed again.")
        @Option(help: "Folder holding ca.pem and ca-key.pem.") var dir: String = "pki"
        @Option(help: "The certificate to revoke (<node>.pem).") var certificate: String?
        @Option(help: "Why (written in the list and in every refusal).") var reason: String = "revoked by the CA operator"

        func run() throws {
            let folder = URL(fileURLWithPath: dir)
            let ca = try ConsortiumCA(certificatePEM: String(contentsOf: folder.appendingPathComponent("ca.pem"), encoding: .utf8),
                                      privateKeyPEM: String(contentsOf: folder.appendingPathComponent("ca-key.pem"), encoding: .utf8))
            let file = folder.appendingPathComponent("revocations.json")
            var list = FileManager.default.fileExists(atPath: file.path)
                ? try RevocationList.load(path: file.path, ca: ca.certificate)
                : RevocationList(issuer: "\(ca.certificate.subject)")
            if let certificate {
                let revoked = try CertificateCheck.loadCertificate(path: certificate)
                _ = try CertificateCheck.verify(revoked, issuedBy: ca.certificate, at: revoked.notValidBefore)
                list = try list.adding(revoked, reason: reason)
            }
            try list.signed(by: ca).write(to: file, atomically: true, encoding: .utf8)
            print("\(file.path): \(list.entries.count) revoked certificate(s); give it to every node (tls.revocation_list) and reload them (SIGHUP)")
            for e in list.entries { print("  \(e.node)  serial \(e.serial)  \(e.reason)") }
        }
    }

    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a consortium CA: ca.pem (give to every node) and ca-key.pem (keep offline).")
        @Option(help: "Folder for the CA files.") var dir: String = "pki"
        @Option(help: "The consortium's name, written in every certificate.") var name: String = "MPCNode consortium"
        @Option(help: "Validity in days.") var days: Int = 3650

        func run() throws {
            let folder = URL(fileURLWithPath: dir)
            let cert = folder.appendingPathComponent("ca.pem"), key = folder.appendingPathComponent("ca-key.pem")
            for f in [cert, key] where FileManager.default.fileExists(atPath: f.path) {
                throw CLIFailure(IdentityError.fileExists(path: f.path).description)
            }
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let ca = try ConsortiumCA.create(name: name, validity: TimeInterval(days) * 86_400)
            try writeSecret(ca.privateKeyPEM, to: key)
            try ca.certificatePEM.write(to: cert, atomically: true, encoding: .utf8)
            print("created CA '\(name)'\n  certificate: \(cert.path)  (distribute to every node)\n  private key: \(key.path)  (keep offline)")
        }
    }

    struct Issue: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "issue",
            abstract: "Issue a node's certificate (<node>.pem) for the key in its request (made by `mpcnode node init` on the node).",
            discussion: "The CA never makes or sees a node's private key. The request's signature must verify and its subject must name the node (and the role, if it names one).",
            aliases: ["sign"])
        @Option(help: "Folder holding ca.pem and ca-key.pem.") var dir: String = "pki"
        @Option(help: "The node's certificate signing request (<node>.csr).") var csr: String
        @Option(help: "The node's role: bank, coordinator, regulator, or worker (a bank's PSI worker processes, named <node>-worker.pem).") var role: String
        @Option(help: "The node id the request must name (checked against the request).") var node: String
        @Option(help: "Validity in days.") var days: Int = 365
        @Option(help: "Folder for the certificate (default: the CA folder).") var out: String?

        func run() throws {
            guard let role = NodeRole(rawValue: role) else {
                throw CLIFailure("unknown role '\(role)': use bank, coordinator, regulator or worker")
            }
            guard (1...3650).contains(days) else { throw CLIFailure("--days must lie in 1…3650") }
            let folder = URL(fileURLWithPath: dir)
            let outFolder = URL(fileURLWithPath: out ?? dir)
            let ca: ConsortiumCA
            do {
                ca = try ConsortiumCA(certificatePEM: String(contentsOf: folder.appendingPathComponent("ca.pem"), encoding: .utf8),
                                      privateKeyPEM: String(contentsOf: folder.appendingPathComponent("ca-key.pem"), encoding: .utf8))
            } catch {
                throw CLIFailure("cannot load the CA from \(folder.path) (ca.pem, ca-key.pem): \(error); create one with `mpcnode ca init`")
            }
            let certificate: String, nodeID: String
            do {
                let text: String
                do { text = try String(contentsOfFile: csr, encoding: .utf8) } catch {
                    throw IdentityError.unreadableFile(path: csr, detail: error.localizedDescription)
                }
                let request = try NodeKeyRequest.parse(pem: text, path: csr)
                let issued = try ca.issue(request: request, path: csr, role: role, expectedNodeID: node, validity: TimeInterval(days) * 86_400)
                nodeID = try NodeIdentity(certificate: issued).nodeID
                certificate = try issued.serializeAsPEM().pemString
            } catch let error as IdentityError {
                throw CLIFailure(error.description)
            }
            try FileManager.default.createDirectory(at: outFolder, withIntermediateDirectories: true)
            let cert = outFolder.appendingPathComponent("\(role.fileStem(nodeID: nodeID)).pem")
            guard !FileManager.default.fileExists(atPath: cert.path) else {
                throw CLIFailure(IdentityError.fileExists(path: cert.path).description + " (move the old certificate away to renew)")
            }
            try certificate.write(to: cert, atomically: true, encoding: .utf8)
            print("issued \(nodeID) (\(role.rawValue)), valid \(days) days\n  certificate: \(cert.path)  (send back to the node)")
        }
    }
}

/// Writes a private key readable by its owner only.
func writeSecret(_ text: String, to url: URL) throws {
    FileManager.default.createFile(atPath: url.path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600])
}
