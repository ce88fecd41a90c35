import Foundation
import MPCProtocols
import MPCWire
import SwiftProtobuf

/// Plays one dishonest (or broken) message against an honest role, for the seeded mutation tests: of
/// the messages `sender` sends to `receiver`, the `index`-th is replaced by a mutation drawn from `seed`.
///
/// Mutations are byte-level (a flipped bit, a random byte, a truncation, garbage appended, an empty
/// message, the message dropped or sent twice) or field-level: the message is decoded as a
/// `SessionFrame`, one number in it is set to an extreme (2⁶⁴−1, 2⁶³, 2³²−1, 2²⁸+1, 0, −1, ±10³⁰⁸, NaN),
/// one string to a hostile name or a very long one, one byte string emptied or lengthened, or one list
/// doubled, and the frame encoded again — a message no honest node sends but that parses.
public final class MessageMutator: @unchecked Sendable {
    public let sender: NodeID
    public let receiver: NodeID
    public let index: Int
    private var rng: SplitMix
    private let lock = NSLock()
    private var seen = 0
    private var _applied: String?

    public init(sender: NodeID, receiver: NodeID, index: Int, seed: UInt64) {
        self.sender = sender
        self.receiver = receiver
        self.index = index
        self.rng = SplitMix(state: seed)
    }

    /// What was done, once the message went by (nil if it never did).
    public var applied: String? { lock.withLock { _applied } }

    public var intercept: InMemoryChannel.Intercept {
        { [self] from, to, message in
            guard from == sender, to == receiver else { return [message] }
            return lock.withLock {
                defer { seen += 1 }
                guard seen == index else { return [message] }
                let (out, what) = mutate(message)
                _applied = "\(from)→\(to) message \(index): \(what)"
                return out
            }
        }
    }

    private func pick(_ n: Int) -> Int { Int(rng.next() % UInt64(max(1, n))) }

    private func mutate(_ message: [UInt8]) -> ([[UInt8]], String) {
        switch pick(12) {
        case 0 where !message.isEmpty:
            var m = message
            let i = pick(m.count)
            m[i] ^= UInt8(1 << pick(8))
            return ([m], "bit flipped at byte \(i)")
        case 1 where !message.isEmpty:
            var m = message
            let i = pick(m.count)
            m[i] = UInt8(truncatingIfNeeded: rng.next())
            return ([m], "byte \(i) replaced")
        case 2 where message.count > 1:
            let n = pick(message.count)
            return ([Array(message.prefix(n))], "truncated to \(n) of \(message.count) bytes")
        case 3:
            return ([message + (0..<(1 + pick(64))).map { _ in UInt8(truncatingIfNeeded: rng.next()) }], "garbage appended")
        case 4:
            return ([[]], "empty message")
        case 5:
            return ([], "dropped")
        case 6:
            return ([message, message], "sent twice")
        default:
            if let changed = mutateField(message) { return ([changed.0], changed.1) }
            var m = message
            if !m.isEmpty { m[pick(m.count)] ^= 0xFF }
            return ([m], "byte inverted (no field to change)")
        }
    }

    /// One field of the decoded frame changed through its JSON form, which names every field.
    private func mutateField(_ message: [UInt8]) -> ([UInt8], String)? {
        guard let frame = try? Mpcnode_V1_SessionFrame(serializedBytes: message),
              let (changed, what) = Self.mutated(frame, rng: &rng, keep: ["sequence"]),
              let bytes: [UInt8] = try? changed.serializedBytes() else { return nil }
        return (bytes, what)
    }

    /// `message` with one field changed (numbers to extremes, strings hostile or huge, bytes emptied or
    /// lengthened, lists doubled), drawn from `seed`; nil if it has no field to change. For crafted
    /// proposals and specs as much as for frames.
    public static func mutated<M: SwiftProtobuf.Message>(_ message: M, seed: UInt64) -> (M, String)? {
        var rng = SplitMix(state: seed)
        return mutated(message, rng: &rng, keep: [])
    }

    private static func mutated<M: SwiftProtobuf.Message>(_ message: M, rng: inout SplitMix, keep: Set<String>) -> (M, String)? {
        func pick(_ n: Int) -> Int { Int(rng.next() % UInt64(max(1, n))) }
        guard let json = try? message.jsonString(), var object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) else { return nil }
        var paths: [[PathStep]] = []
        Self.collect(object, [], &paths)
        // A frame's sequence number is checked first by every session: change the payload, not it.
        paths.removeAll { $0.count == 1 && keep.contains($0.first!.description) }
        guard !paths.isEmpty else { return nil }
        let path = paths[pick(paths.count)]
        guard let leaf = Self.value(object, path) else { return nil }
        let replacement: Any
        let what: String
        switch leaf {
        case let s as String where Int64(s) != nil || UInt64(s) != nil:
            let extremes = ["18446744073709551615", "9223372036854775808", "4294967295", "268435457", "0", "-1", "9223372036854775807"]
            replacement = extremes[pick(extremes.count)]
            what = "number set to \(replacement)"
        case is NSNumber:
            let extremes: [Any] = [1e308, -1e308, "NaN", "Infinity", 4294967295, 0, -1, 268435457]
            replacement = extremes[pick(extremes.count)]
            what = "number set to \(replacement)"
        case let s as String where Data(base64Encoded: s) != nil:
            let choices = ["", Data((0..<(1 + pick(4096))).map { _ in UInt8(truncatingIfNeeded: rng.next()) }).base64EncodedString(), s + s]
            let c = pick(choices.count)
            replacement = choices[c]
            what = ["bytes emptied", "bytes replaced by random bytes", "bytes doubled"][c]
        case is String:
            let choices = ["../../node", String(repeating: "x", count: 100_000), "", "\u{FEFF}\u{202E}name"]
            let c = pick(choices.count)
            replacement = choices[c]
            what = "string set to \(["a path", "100,000 characters", "empty", "invisible characters"][c])"
        case let a as [Any]:
            replacement = a + a
            what = "list doubled"
        default:
            return nil
        }
        object = Self.setting(object, path, replacement)
        guard let data = try? JSONSerialization.data(withJSONObject: object), let changed = try? M(jsonUTF8Data: data) else { return nil }
        return (changed, "\(path.map(\.description).joined(separator: ".")): \(what)")
    }

    enum PathStep: Equatable, CustomStringConvertible {
        case key(String), index(Int)
        var description: String { switch self { case .key(let k): return k; case .index(let i): return "[\(i)]" } }
    }

    private static func collect(_ value: Any, _ path: [PathStep], _ out: inout [[PathStep]]) {
        if let d = value as? [String: Any] {
            for (k, v) in d.sorted(by: { $0.key < $1.key }) { collect(v, path + [.key(k)], &out) }
        } else if let a = value as? [Any] {
            out.append(path)
            for (i, v) in a.prefix(4).enumerated() { collect(v, path + [.index(i)], &out) }
        } else {
            out.append(path)
        }
    }

    private static func value(_ root: Any, _ path: [PathStep]) -> Any? {
        var v: Any? = root
        for step in path {
            switch step {
            case .key(let k): v = (v as? [String: Any])?[k]
            case .index(let i): v = (v as? [Any]).flatMap { i < $0.count ? $0[i] : nil }
            }
        }
        return v
    }

    private static func setting(_ root: Any, _ path: [PathStep], _ new: Any) -> Any {
        guard let step = path.first else { return new }
        let rest = Array(path.dropFirst())
        switch step {
        case .key(let k):
            var d = root as? [String: Any] ?? [:]
            d[k] = setting(d[k] as Any, rest, new)
            return d
        case .index(let i):
            var a = root as? [Any] ?? []
            if i < a.count { a[i] = setting(a[i], rest, new) }
            return a
        }
    }
}
