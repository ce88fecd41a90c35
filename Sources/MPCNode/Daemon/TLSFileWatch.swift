import Crypto
import Foundation
import Logging
import Synchronization

/// Reloads the node's certificates when their files change (a renewal dropped in place by an operator, a
/// Kubernetes Secret update, cert-manager), as SIGHUP does. It polls the certificate, key, CA bundle and
/// revocation list files' contents (`tls.watch_seconds`, default 30; 0 turns it off) and reloads once a
/// change has stayed the same for one whole interval, so that a renewal written file by file (certificate
/// first, key after) is not loaded half-done. A change that does not verify is logged once and the node
/// keeps what it had; it is tried again when the files change again.
public final class TLSFileWatch: Sendable {
    private let runtime: NodeRuntime
    private let paths: [String]
    private let state: Mutex<State>

    private struct State {
        /// What was last loaded (or last refused); a different fingerprint is a change.
        var settled: [UInt8]
        /// A change seen at the previous poll, waiting to stay the same.
        var pending: [UInt8]?
    }

    public enum Outcome: Equatable, Sendable {
        case unchanged
        /// Changed since the last poll: checked again at the next one.
        case changing
        case reloaded(daysLeft: Int)
        case refused(String)
    }

    public init(runtime: NodeRuntime) {
        self.runtime = runtime
        let tls = runtime.configuration.tls
        paths = [tls.certificate.path, tls.privateKey.path, tls.caCertificate.path] + (tls.revocationList.map { [$0.path] } ?? [])
        state = Mutex(State(settled: Self.fingerprint(paths), pending: nil))
    }

    /// One poll: compares the files with the last poll and reloads a change that has settled.
    @discardableResult
    public func poll() -> Outcome {
        let now = Self.fingerprint(paths)
        let decision: Outcome? = state.withLock { s in
            if now == s.settled { s.pending = nil; return .unchanged }
            if s.pending != now { s.pending = now; return .changing }
            s.settled = now
            s.pending = nil
            return nil
        }
        if let decision { return decision }
        do {
            return .reloaded(daysLeft: try runtime.reloadCertificates())
        } catch {
            runtime.logger.error("the TLS files changed but do not verify; the node keeps the certificates it had",
                                 metadata: ["error": "\(error)", "files": "\(paths.joined(separator: ", "))"])
            return .refused("\(error)")
        }
    }

    /// Polls every `interval` until the task is cancelled, and repeats the expiry warning once a day.
    public func run(every interval: Duration) async {
        var warned = ContinuousClock.now
        while !Task.isCancelled {
            do { try await Task.sleep(for: interval) } catch { return }
            poll()
            if ContinuousClock.now - warned >= .seconds(86_400) {
                warned = .now
                runtime.warnIfCertificateExpiresSoon()
            }
        }
    }

    /// SHA-256 over each file's length and bytes (an unreadable or missing file counts as empty).
    static func fingerprint(_ paths: [String]) -> [UInt8] {
        var hash = SHA256()
        for path in paths {
            let data = FileManager.default.contents(atPath: path) ?? Data()
            withUnsafeBytes(of: UInt64(data.count).littleEndian) { hash.update(bufferPointer: $0) }
            hash.update(data: data)
        }
        return Array(hash.finalize())
    }
}
