import Foundation
import MPCCrypto

/// Labelled list lookups by an oblivious PRF (Protocols/list-lookup.md), the parts that need no
/// transport: the holder's table of tags and sealed labels, the querier's index, and one lookup's
/// blind → evaluate → finalize. With F(x) = OPRF(k, x) (64 bytes), an entry x is stored as its tag
/// F(x)[0..<8] and its label sealed (XChaCha20-Poly1305) under F(x)[32..<64]: a querier without k cannot
/// compute a tag, and a tag that collides with another key's is told apart because its label does not open.
public enum LabelledLookup {
    /// One entry of a holder's table as the querier stores it.
    public struct Entry: Sendable, Equatable {
        public var tag: UInt64
        public var label: ShareEncryption.Sealed
        public init(tag: UInt64, label: ShareEncryption.Sealed) { self.tag = tag; self.label = label }
    }

    /// What every entry's label is bound to: the holder, the list and the key id (a label cannot be moved
    /// to another list or key).
    public static func context(holder: NodeID, list: String, keyID: String) -> [UInt8] {
        Array("MPCNode/list-lookup/v1\u{0}\(holder)\u{0}\(list)\u{0}\(keyID)".utf8)
    }

    static func split(_ output: [UInt8]) -> (tag: UInt64, labelKey: [UInt8]) {
        let tag = output.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return (tag, Array(output[32..<64]))
    }

    /// The holder's table of its list: one entry per (identifier, label), in a random order.
    public static func table(_ entries: [(identifier: [UInt8], label: [UInt8])], key: SecretScalar, context: [UInt8], shuffle: Bool = true) throws -> [Entry] {
        var table = try ParallelMap.map(entries) { e -> Entry in
            let (tag, labelKey) = split(try OPRF.output(e.identifier, key: key))
            return Entry(tag: tag, label: ShareEncryption.seal(e.label, key: labelKey, associatedData: context))
        }
        guard shuffle else { return table }
        var order = Array(table.indices)
        SecureShuffle.shuffle(&order)
        table = order.map { table[$0] }
        return table
    }

    /// The holder's answer to a querier's blinded keys; an invalid or identity element is refused.
    public static func evaluate(_ blinded: [GroupElement], key: SecretScalar) throws -> [GroupElement] {
        // A batch under load spreads over the cores; a single key is not worth a thread hop.
        blinded.count >= 32 ? try ParallelMap.map(blinded) { try OPRF.evaluate($0, key: key) } : try blinded.map { try OPRF.evaluate($0, key: key) }
    }

    /// One key's lookup against one holder's list, at the querier.
    public struct Query: Sendable {
        public let key: [UInt8]
        public let blinded: OPRF.Blinded
        /// The blind's inverse, when computed ahead (a key asked of several holders with one blind).
        public let inverseBlind: SecretScalar?

        /// Blinds `key` (already normalised like the list's identifiers) with a fresh blind.
        public init(key: [UInt8]) throws {
            self.key = key
            blinded = try OPRF.blind(key)
            inverseBlind = nil
        }

        /// Blinds `key` once for every holder it is asked of, with the blind's inverse computed ahead.
        public init(sharedFor key: [UInt8]) throws {
            self.key = key
            blinded = try OPRF.blind(key)
            inverseBlind = try OPRF.inverse(of: blinded.blind)
        }

        private init(key: [UInt8], blinded: OPRF.Blinded, inverseBlind: SecretScalar) {
            self.key = key
            self.blinded = blinded
            self.inverseBlind = inverseBlind
        }

        /// `Query(sharedFor:)` for many keys: blinded over the cores, the blinds inverted together.
        public static func shared(for keys: [[UInt8]]) throws -> [Query] {
            let blinded = keys.count >= 32 ? try ParallelMap.map(keys) { try OPRF.blind($0) } : try keys.map { try OPRF.blind($0) }
            let inverses = try OPRF.inverses(of: blinded.map(\.blind))
            return keys.indices.map { Query(key: keys[$0], blinded: blinded[$0], inverseBlind: inverses[$0]) }
        }

        /// The key's tag and label key from the holder's answer.
        public func output(evaluated: GroupElement) throws -> (tag: UInt64, labelKey: [UInt8]) {
            if let inverseBlind { return split(try OPRF.finalize(key, inverseBlind: inverseBlind, evaluated: evaluated)) }
            return split(try OPRF.finalize(key, blind: blinded.blind, evaluated: evaluated))
        }

        /// The label of `key` in the table, or nil when it is not listed.
        public func label(evaluated: GroupElement, index: Index, table: [Entry], context: [UInt8]) throws -> [UInt8]? {
            let (tag, labelKey) = split(try OPRF.finalize(key, blind: blinded.blind, evaluated: evaluated))
            for row in index.rows(for: tag) {
                if let label = try? ShareEncryption.open(table[row].label, key: labelKey, associatedData: context) { return label }
            }
            return nil
        }
    }

    /// The querier's in-memory index of a table: its tags sorted, with their rows (12 bytes an entry).
    public struct Index: Sendable {
        private let tags: [UInt64]
        private let rows: [UInt32]

        public init(_ table: [Entry]) {
            let order = table.indices.sorted { table[$0].tag < table[$1].tag }
            tags = order.map { table[$0].tag }
            rows = order.map { UInt32($0) }
        }

        public var count: Int { tags.count }

        /// The rows whose tag is `tag` (usually none or one).
        public func rows(for tag: UInt64) -> [Int] {
            var lo = 0, hi = tags.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if tags[mid] < tag { lo = mid + 1 } else { hi = mid }
            }
            var out: [Int] = []
            while lo < tags.count && tags[lo] == tag {
                out.append(Int(rows[lo]))
                lo += 1
            }
            return out
        }
    }
}
