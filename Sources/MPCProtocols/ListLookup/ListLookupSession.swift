import Foundation
import MPCCrypto
import MPCWire

/// Why a holder answered nothing to a lookup request.
public enum ListLookupError: Error, CustomStringConvertible, Equatable {
    /// The holder answered nothing, saying why (`version`: its list's version then, 0 when unknown).
    case refused(holder: NodeID, reason: String, version: UInt64 = 0)

    public var description: String {
        switch self {
        case .refused(let h, let r, _): return "\(h) refused: \(PeerText.cut(r, limit: 500))"
        }
    }
}

extension ProtocolSession {
    func sendLookup(_ fill: (inout Mpcnode_V1_LookupMessage) -> Void) async throws { try await send(\.lookup, fill) }

    func receiveLookup() async throws -> Mpcnode_V1_LookupMessage.OneOf_Body {
        try await receive("a lookup message") { if case .lookup(let m)? = $0 { return m.body } else { return nil } }
    }
}

/// The holder's side of a querier's "lookup" session (Protocols/list-lookup.md): answers each request with
/// k·B for its blinded keys, once `admit` (the holder's policy: which querier, which list, its quota) has
/// allowed them. It never sees a key. A malformed request (not whole elements, an invalid or identity
/// element, more keys than `maximumBatch`) ends the session with an error naming the querier.
public struct ListLookupHolder: Sendable {
    public struct List: Sendable {
        public var keyID: String
        public var key: SecretScalar
        /// The list's current version (each answer names it).
        public var version: UInt64
        public init(keyID: String, key: SecretScalar, version: UInt64 = 1) { self.keyID = keyID; self.key = key; self.version = version }
    }

    /// The lists offered to this querier, looked up per request (a key rotation or a new version takes
    /// effect on the next request).
    public let lists: @Sendable (String) async -> List?
    public let maximumBatch: Int
    /// (list, keys) before any evaluation; throws to refuse, with the reason the querier is told.
    public let admit: @Sendable (_ list: String, _ keys: Int) async throws -> Void

    public init(lists: [String: List], maximumBatch: Int = 4096, admit: @escaping @Sendable (String, Int) async throws -> Void) {
        self.init(maximumBatch: maximumBatch, lists: { lists[$0] }, admit: admit)
    }

    public init(maximumBatch: Int = 4096, lists: @escaping @Sendable (String) async -> List?, admit: @escaping @Sendable (String, Int) async throws -> Void) {
        self.lists = lists
        self.maximumBatch = maximumBatch
        self.admit = admit
    }

    /// Serves requests until the querier closes the session; returns the keys evaluated.
    public func serve(_ channel: any MessageChannel) async throws -> Int {
        let session = ProtocolSession(channel: channel)
        let querier = channel.peer
        var evaluated = 0
        do {
            while true {
                let body: Mpcnode_V1_LookupMessage.OneOf_Body
                do { body = try await session.receiveLookup() } catch ChannelError.peerDisconnected { break }
                guard case .request(let request) = body else {
                    throw ProtocolError.protocolViolation(peer: querier, detail: "expected a lookup request")
                }
                guard request.blinded.count % GroupElement.byteCount == 0,
                      request.blinded.count / GroupElement.byteCount <= maximumBatch else {
                    throw ProtocolError.protocolViolation(peer: querier, detail: "a request of \(request.blinded.count) bytes is not 1 … \(maximumBatch) elements")
                }
                let count = request.blinded.count / GroupElement.byteCount
                // Every element is checked before the quota is charged: a crafted request costs the
                // querier its session, never an evaluation counted as made.
                let elements: [GroupElement]
                do { elements = try GroupElement.unpack(request.blinded) } catch {
                    throw ProtocolError.malformedMessage(peer: querier, detail: "\(error)")
                }
                guard elements.allSatisfy({ Ristretto255.isValid($0) && $0 != Ristretto255.identity }) else {
                    throw ProtocolError.protocolViolation(peer: querier, detail: "a blinded key is not a valid element (an invalid encoding or the identity)")
                }
                var refusal: String?
                let list = await lists(request.list)
                if let list {
                    if list.keyID != request.keyID {
                        refusal = "list '\(PeerText.cut(request.list, limit: 80))' is now under key \(list.keyID); fetch its table again"
                    } else {
                        do { try await admit(request.list, count) } catch { refusal = "\(error)" }
                    }
                } else {
                    refusal = "no list '\(PeerText.cut(request.list, limit: 80))' is offered to \(querier)"
                }
                guard let list, refusal == nil else {
                    let version = list?.version ?? 0
                    try await session.sendLookup { $0.response = .with { $0.id = request.id; $0.refused = refusal ?? ""; $0.version = version } }
                    continue
                }
                let answers: [GroupElement]
                do { answers = try LabelledLookup.evaluate(elements, key: list.key) } catch {
                    throw ProtocolError.protocolViolation(peer: querier, detail: "a blinded key is not a valid element: \(error)")
                }
                let packed = Data(GroupElement.pack(answers))
                try await session.sendLookup { $0.response = .with { $0.id = request.id; $0.evaluated = packed; $0.version = list.version } }
                evaluated += count
            }
        } catch {
            await session.sendAbort(reason: ProtocolSession.abortReason(error))
            await channel.close()
            throw error
        }
        await channel.close()
        return evaluated
    }
}

/// The querier's side of a "lookup" session: one request at a time, each answered in order.
public final class ListLookupQuerier: @unchecked Sendable {
    private let session: ProtocolSession
    private var nextID: UInt64 = 1

    public init(channel: any MessageChannel) { session = ProtocolSession(channel: channel) }

    /// The holder's k·B for each of `blinded`, or `ListLookupError.refused` with its reason.
    public func evaluate(list: String, keyID: String, blinded: [GroupElement]) async throws -> [GroupElement] {
        try await evaluateWithVersion(list: list, keyID: keyID, blinded: blinded).answers
    }

    /// The holder's answers and the list version it answered at.
    public func evaluateWithVersion(list: String, keyID: String, blinded: [GroupElement]) async throws -> (answers: [GroupElement], version: UInt64) {
        let id = nextID
        nextID += 1
        let holder = session.peer
        try await session.sendLookup {
            $0.request = .with { $0.id = id; $0.list = list; $0.keyID = keyID; $0.blinded = Data(GroupElement.pack(blinded)) }
        }
        guard case .response(let response) = try await session.receiveLookup(), response.id == id else {
            throw ProtocolError.protocolViolation(peer: holder, detail: "expected the answer to request \(id)")
        }
        if !response.refused.isEmpty { throw ListLookupError.refused(holder: holder, reason: response.refused, version: response.version) }
        guard response.evaluated.count == blinded.count * GroupElement.byteCount,
              let answers = try? GroupElement.unpack(response.evaluated) else {
            // Each element is decoded, and refused if invalid, when it is unblinded (`Query.output`).
            throw ProtocolError.protocolViolation(peer: holder, detail: "the answer does not hold one element per blinded key")
        }
        return (answers, response.version)
    }

    public func close() async { await session.channel.close() }
}
