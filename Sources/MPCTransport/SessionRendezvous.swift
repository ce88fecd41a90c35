import Foundation
import MPCProtocols

/// Where an inbound protocol session (a connection a peer opened for a job) meets the job that uses it.
///
/// The dialling party connects as soon as it starts; this node's job may start a moment later (the
/// coordinator's start messages race). Whichever comes first waits for the other, up to a time limit.
public actor SessionRendezvous {
    private struct Key: Hashable { let jobID: String; let stream: String; let peer: String }
    private var offered: [Key: TLSMessageChannel] = [:]
    private var claims: [Key: CheckedContinuation<TLSMessageChannel, Error>] = [:]
    /// Jobs whose claims were cancelled (aborted or failed here): later claims fail at once.
    private var ended: [String: String] = [:]

    public init() {}

    /// Called by the inbound connection handler. Returns when the job has finished with the channel
    /// (or nobody claimed it in time).
    public func offer(jobID: String, stream: String = "", peer: String, channel: TLSMessageChannel, timeout: Duration) async {
        let key = Key(jobID: jobID, stream: stream, peer: peer)
        if let claim = claims.removeValue(forKey: key) {
            claim.resume(returning: channel)
        } else {
            offered[key] = channel
            Task { [weak self] in
                try? await Task.sleep(for: timeout)
                if let unclaimed = await self?.withdraw(key) { await unclaimed.close() }
            }
        }
        await channel.waitUntilClosed()
    }

    /// Called by the job. Returns the peer's session, or throws if it does not arrive in time.
    public func claim(jobID: String, stream: String = "", peer: String, timeout: Duration) async throws -> TLSMessageChannel {
        let key = Key(jobID: jobID, stream: stream, peer: peer)
        if let channel = offered.removeValue(forKey: key) { return channel }
        if let reason = ended[jobID] { throw SessionError.aborted(reason: reason) }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                if Task.isCancelled { return continuation.resume(throwing: CancellationError()) }
                claims[key] = continuation
                Task { [weak self] in
                    try? await Task.sleep(for: timeout)
                    await self?.expire(key, after: timeout)
                }
            }
        } onCancel: {
            Task { await self.cancel(key) }
        }
    }

    private func cancel(_ key: Key) {
        claims.removeValue(forKey: key)?.resume(throwing: CancellationError())
    }

    private func withdraw(_ key: Key) -> TLSMessageChannel? { offered.removeValue(forKey: key) }

    private func expire(_ key: Key, after timeout: Duration) {
        claims.removeValue(forKey: key)?.resume(throwing: SessionError.peerDidNotConnect(peer: key.peer, seconds: Int(timeout.components.seconds)))
    }

    /// Lets go of every session still offered and fails every claim (the node stops, its jobs have ended):
    /// a session whose connection closed before anyone claimed it is kept for a late claim (its frames can
    /// still be read), and must not outlive the node's event loops.
    public func dropAll() {
        offered.removeAll()
        for (_, claim) in claims { claim.resume(throwing: SessionError.aborted(reason: "the node is stopping")) }
        claims.removeAll()
    }

    /// Fails a waiting claim at once (the job was aborted).
    public func cancelClaims(jobID: String, reason: String) {
        ended[jobID] = reason
        for key in claims.keys where key.jobID == jobID {
            claims.removeValue(forKey: key)?.resume(throwing: SessionError.aborted(reason: reason))
        }
    }
}
