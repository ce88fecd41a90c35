import Foundation
import MPCCrypto
import MPCWire

/// Why a holder answered nothing to a lookup request.
public enum ListLookupError: Error, CustomStringConvertible, Equatable {
    case refused(holder: NodeID, reason: String)

    public var description: String {
        switch self {
        case .refused(let h, let r): return "\(h) refused the lookup: \(PeerText.cut(r, limit: 500))"
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
        public init(keyID: String, key: SecretScalar) { self.keyID = keyID; self.key = key }
    }

    public let lists: [String: List]
    public let maximumBatch: Int
    /// (list, keys) before any evaluation; throws to refuse, with the reason the querier is told.
    public let admit: @Sendable (_ list: String, _ keys: Int) throws -> Void

    public init(lists: [String: List], maximumBatch: Int = 4096, admit: @escaping @Sendable (String, Int) throws -> Void) {
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
                var refusal: String?
                if let list = lists[request.list] {
                    if list.keyID != request.keyID {
                        refusal = "list '\(PeerText.cut(request.list, limit: 80))' is now under key \(list.keyID); fetch its table again"
                    } else {
                        do { try admit(request.list, count) } catch { refusal = "\(error)" }
                    }
                } else {
                    refusal = "no list '\(PeerText.cut(request.list, limit: 80))' is offered to \(querier)"
                }
                if let refusal {
                    try await session.sendLookup { $0.response = .with { $0.id = request.id; $0.refused = refusal } }
                    continue
                }
                let elements: [GroupElement]
                do { elements = try GroupElement.unpack(request.blinded) } catch {
                    throw ProtocolError.malformedMessage(peer: querier, detail: "\(error)")
                }
                let answers: [GroupElement]
                do { answers = try LabelledLookup.evaluate(elements, key: lists[request.list]!.key) } catch {
                    throw ProtocolError.protocolViolation(peer: querier, detail: "a blinded key is not a valid element: \(error)")
                }
                let packed = Data(GroupElement.pack(answers))
                try await session.sendLookup { $0.response = .with { $0.id = request.id; $0.evaluated = packed } }
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
        let id = nextID
        nextID += 1
        let holder = session.peer
        try await session.sendLookup {
            $0.request = .with { $0.id = id; $0.list = list; $0.keyID = keyID; $0.blinded = Data(GroupElement.pack(blinded)) }
        }
        guard case .response(let response) = try await session.receiveLookup(), response.id == id else {
            throw ProtocolError.protocolViolation(peer: holder, detail: "expected the answer to request \(id)")
        }
        if !response.refused.isEmpty { throw ListLookupError.refused(holder: holder, reason: response.refused) }
        guard response.evaluated.count == blinded.count * GroupElement.byteCount,
              let answers = try? GroupElement.unpack(response.evaluated), answers.allSatisfy(Ristretto255.isValid) else {
            throw ProtocolError.protocolViolation(peer: holder, detail: "the answer does not hold one valid element per blinded key")
        }
        return answers
    }

    public func close() async { await session.channel.close() }
}
