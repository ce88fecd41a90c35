import Foundation
import Logging
import MPCCrypto
import MPCProtocols
import MPCTransport

/// The querier's long-lived "lookup" session to one holder: lookups from many callers are queued and sent
/// together while a request is in flight (batching under load, one round trip per batch), answered in
/// order. The session is opened on first use and again after it ends; after a failed connection the link
/// fails lookups at once for a second instead of dialling for each.
actor HolderLink {
    struct Answer: Sendable { var answers: [GroupElement]; var version: UInt64 }
    fileprivate struct Pending: Sendable {
        var list: String
        var keyID: String
        var blinded: [GroupElement]
        var continuation: CheckedContinuation<Answer, Error>
        var retried = false
    }

    let holder: String
    let address: PeerAddress
    let transport: PeerTransport
    let logger: Logger
    private var queue: [Pending] = []
    private var waiter: CheckedContinuation<Void, Never>?
    private var running = false
    private var runner: Task<Void, Never>?
    private var lastFailure: (at: ContinuousClock.Instant, error: String)?
    /// Keys sent per request at most (the holder's own limit is 4096; its per-second rate may be lower).
    var maximumBatch = 4096

    init(holder: String, address: PeerAddress, transport: PeerTransport, logger: Logger) {
        self.holder = holder
        self.address = address
        self.transport = transport
        self.logger = logger
    }

    func setMaximumBatch(_ n: Int) { maximumBatch = max(1, min(4096, n)) }

    /// The holder's k·B for `blinded` (at most `maximumBatch`), and its list's version.
    func evaluate(list: String, keyID: String, blinded: [GroupElement]) async throws -> Answer {
        if closing { throw LookupLinkError.unreachable(holder: holder, detail: "this node is stopping") }
        if let failure = lastFailure, ContinuousClock.now - failure.at < .seconds(1) {
            throw LookupLinkError.unreachable(holder: holder, detail: failure.error)
        }
        return try await withCheckedThrowingContinuation { continuation in
            queue.append(Pending(list: list, keyID: keyID, blinded: blinded, continuation: continuation))
            if let w = waiter { waiter = nil; w.resume() }
            if !running {
                running = true
                runner = Task { await self.run() }
            }
        }
    }

    /// Requests queued for the same list and key, up to `maximumBatch` keys, in arrival order.
    fileprivate func nextBatch() async -> [Pending]? {
        while queue.isEmpty {
            if closing { return nil }
            await withCheckedContinuation { waiter = $0 }
        }
        if closing { return nil }
        let first = queue[0]
        var batch: [Pending] = [], rest: [Pending] = [], keys = 0
        for p in queue {
            if p.list == first.list, p.keyID == first.keyID, batch.isEmpty || keys + p.blinded.count <= maximumBatch {
                batch.append(p); keys += p.blinded.count
            } else { rest.append(p) }
        }
        queue = rest
        return batch
    }

    private var channel: TLSMessageChannel?
    private var closing = false

    private func connected(_ c: TLSMessageChannel) -> Bool {
        lastFailure = nil
        channel = c
        return !closing
    }

    /// Ends the session (the node is stopping); queued lookups fail.
    func close() async {
        closing = true
        await channel?.abort()
        channel = nil
        if let w = waiter { waiter = nil; w.resume() }
        // The session's connection closes on this node's event loops: wait for it before they stop.
        while let r = runner, running {
            await r.value
            if runner == r { break }
        }
    }

    /// One session: batches until it ends (an error).
    private nonisolated func serveSession(_ inFlight: InFlight) async throws {
        try await transport.withSession(jobID: "", service: LookupServices.query, to: holder, at: address) { channel in
            let querier = ListLookupQuerier(channel: channel)
            guard await self.connected(channel) else { throw LookupLinkError.unreachable(holder: holder, detail: "this node is stopping") }
            while true {
                guard let batch = await self.nextBatch() else { throw LookupLinkError.unreachable(holder: holder, detail: "this node is stopping") }
                inFlight.set(batch)
                do {
                    let (answers, version) = try await querier.evaluateWithVersion(list: batch[0].list, keyID: batch[0].keyID,
                                                                                   blinded: batch.flatMap(\.blinded))
                    var start = 0
                    for p in batch {
                        p.continuation.resume(returning: Answer(answers: Array(answers[start..<start + p.blinded.count]), version: version))
                        start += p.blinded.count
                    }
                } catch let refusal as ListLookupError {
                    for p in batch { p.continuation.resume(throwing: refusal) }
                }
                inFlight.set([])
                inFlight.answered += 1
            }
        }
    }

    private func run() async {
        let inFlight = InFlight()
        do {
            try await serveSession(inFlight)
        } catch {
            let detail = "\(error)"
            var failed = inFlight.take()
            if inFlight.answered > 0 {
                // A session that had answered before ended (the holder restarted, an idle connection was
                // cut): its batch is tried once more on a new session.
                logger.info("lookup link to a holder ended; reconnecting", metadata: ["holder": "\(holder)", "error": "\(detail)"])
                let again = failed.filter { !$0.retried }
                failed = failed.filter(\.retried)
                queue.insert(contentsOf: again.map { var p = $0; p.retried = true; return p }, at: 0)
            } else {
                lastFailure = (ContinuousClock.now, detail)
                logger.warning("lookup link to a holder failed", metadata: ["holder": "\(holder)", "error": "\(detail)"])
                failed += queue
                queue = []
            }
            for p in failed { p.continuation.resume(throwing: LookupLinkError.unreachable(holder: holder, detail: detail)) }
        }
        running = false
        channel = nil
        if !queue.isEmpty, !closing {
            running = true
            runner = Task { await self.run() }
        }
    }

    /// The batch on the wire, for the error path.
    fileprivate final class InFlight: @unchecked Sendable {
        private let lock = NSLock()
        private var batch: [Pending] = []
        private var _answered = 0
        var answered: Int {
            get { lock.withLock { _answered } }
            set { lock.withLock { _answered = newValue } }
        }
        func set(_ b: [Pending]) { lock.withLock { batch = b } }
        func take() -> [Pending] { lock.withLock { defer { batch = [] }; return batch } }
    }
}

public enum LookupServices {
    public static let query = "lookup"
    public static let sync = "lookup-sync"
}

public enum LookupLinkError: Error, CustomStringConvertible {
    case unreachable(holder: String, detail: String)
    case timedOut(holder: String, milliseconds: Int)

    public var description: String {
        switch self {
        case .unreachable(let h, let d): return "\(h) is unreachable: \(d)"
        case .timedOut(let h, let ms): return "\(h) did not answer within \(ms) ms"
        }
    }
}
