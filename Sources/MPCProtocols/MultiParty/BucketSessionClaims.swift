/// The sessions a role of a bucketed set operation accepts for each bucket, claimed one bucket ahead:
/// a peer that is a bucket ahead opens its next session while this role still works on the current one,
/// and the session waits for its claim no longer than the transport allows (`SessionPort.accept`).
struct BucketSessionClaims {
    let port: any SessionPort
    let timeout: Duration
    /// Buckets of the job (known later to a mixer that holds no data).
    var buckets: Int
    /// The (stream, peer) pairs of bucket b.
    let sessions: @Sendable (Int) -> [(stream: String, peer: NodeID)]
    private var claims: [Int: Task<[String: any MessageChannel], Error>] = [:]

    init(port: any SessionPort, timeout: Duration, buckets: Int, sessions: @escaping @Sendable (Int) -> [(stream: String, peer: NodeID)]) {
        self.port = port
        self.timeout = timeout
        self.buckets = buckets
        self.sessions = sessions
    }

    /// Claims bucket b's sessions and bucket b + 1's now, so that they wait for this role however long it
    /// works before it takes them (a party that buckets 10^7 rows starts long after one that buckets 10^3).
    mutating func claim(from b: Int) {
        guard b < buckets else { return }
        for k in b...min(b + 1, buckets - 1) where claims[k] == nil {
            let port = port, timeout = timeout, wanted = sessions(k)
            claims[k] = Task { try await port.acceptAll(wanted, timeout: timeout) }
        }
    }

    /// Bucket b's sessions, keyed "stream/peer" (the caller closes them); claims bucket b + 1's.
    mutating func take(bucket b: Int) async throws -> [String: any MessageChannel] {
        guard b < buckets else {
            throw ProtocolError.parameterMismatch(peer: port.me, detail: "bucket \(b) of \(buckets) taken")
        }
        claim(from: b)
        let claim = claims.removeValue(forKey: b)!
        // The claim runs in a task of its own: the role's cancellation (its node stopping, its job
        // aborted) must reach it, or the role would wait for the whole phase.
        return try await withTaskCancellationHandler { try await claim.value } onCancel: { claim.cancel() }
    }

    /// Ends every claim still waiting and aborts the sessions already accepted for later buckets (after the
    /// port's accepts were cancelled, so no claim is left waiting).
    mutating func cancel() async {
        for claim in claims.values {
            claim.cancel()
            if let channels = try? await claim.value {
                for c in channels.values { await c.abort() }
            }
        }
        claims = [:]
    }
}
