import Foundation
import MPCCrypto
import MPCWire

/// A holder list's table, or the delta between two of its versions, as shipped to a querier
/// (Protocols/list-lookup.md, "Offline" and "Updates"): a header, batches of added entries and removed
/// tags, and a trailer signed with the holder's node certificate key over the header and the digest of
/// the batches. The querier applies an update only once the trailer verifies.
public struct ListTableHeader: Sendable, Equatable {
    public var list: String
    public var keyID: String
    public var version: UInt64
    /// The version the delta starts from (0 for a full table).
    public var baseVersion: UInt64
    public var full: Bool
    public var added: UInt64
    public var removed: UInt64
    /// Entries of the list at `version`.
    public var entries: UInt64
    public var labelColumns: [String]
    /// "holders" or "count" (Protocols/list-lookup.md, "Multi-holder answers").
    public var disclosure: String
    public var riskColumn: String
    public var riskLevels: [String]
    public var normalization: String
    public var maximumPerSecond: UInt64
    public var maximumPerDay: UInt64

    public init(list: String, keyID: String, version: UInt64, baseVersion: UInt64, full: Bool, added: UInt64, removed: UInt64,
                entries: UInt64, labelColumns: [String], disclosure: String, riskColumn: String, riskLevels: [String],
                normalization: String, maximumPerSecond: UInt64, maximumPerDay: UInt64) {
        self.list = list; self.keyID = keyID; self.version = version; self.baseVersion = baseVersion; self.full = full
        self.added = added; self.removed = removed; self.entries = entries; self.labelColumns = labelColumns
        self.disclosure = disclosure; self.riskColumn = riskColumn; self.riskLevels = riskLevels
        self.normalization = normalization; self.maximumPerSecond = maximumPerSecond; self.maximumPerDay = maximumPerDay
    }

    var wire: Mpcnode_V1_LookupTableHeader {
        .with {
            $0.list = list; $0.keyID = keyID; $0.version = version; $0.baseVersion = baseVersion; $0.full = full
            $0.added = added; $0.removed = removed; $0.entries = entries; $0.labelColumns = labelColumns
            $0.disclosure = disclosure; $0.riskColumn = riskColumn; $0.riskLevels = riskLevels
            $0.normalization = normalization; $0.maxPerSecond = maximumPerSecond; $0.maxPerDay = maximumPerDay
        }
    }

    init(_ w: Mpcnode_V1_LookupTableHeader) {
        self.init(list: w.list, keyID: w.keyID, version: w.version, baseVersion: w.baseVersion, full: w.full,
                  added: w.added, removed: w.removed, entries: w.entries, labelColumns: w.labelColumns,
                  disclosure: w.disclosure, riskColumn: w.riskColumn, riskLevels: w.riskLevels,
                  normalization: w.normalization, maximumPerSecond: w.maxPerSecond, maximumPerDay: w.maxPerDay)
    }

    /// What the trailer's signature covers: every header field, the holder and the batches' digest.
    public func signedMessage(holder: NodeID, digest: [UInt8]) -> [UInt8] {
        var fields: [String] = ["MPCNode/list-table/v1", holder, list, keyID, "\(version)", "\(baseVersion)", full ? "full" : "delta",
                                "\(added)", "\(removed)", "\(entries)", disclosure, riskColumn, normalization,
                                "\(maximumPerSecond)", "\(maximumPerDay)", "\(labelColumns.count)"]
        fields += labelColumns
        fields.append("\(riskLevels.count)")
        fields += riskLevels
        // Each field is length-prefixed: no two different headers give one message.
        var message: [UInt8] = []
        for field in fields {
            let bytes = Array(field.utf8)
            message += withUnsafeBytes(of: UInt32(bytes.count).bigEndian, Array.init) + bytes
        }
        return message + digest
    }
}

/// One batch of an update: added entries (tag and sealed label) and removed tags.
public struct ListTableBatch: Sendable, Equatable {
    public var added: [LabelledLookup.Entry]
    public var removed: [UInt64]
    public init(added: [LabelledLookup.Entry] = [], removed: [UInt64] = []) { self.added = added; self.removed = removed }

    /// nonce ‖ ciphertext, as stored and shipped.
    public static func pack(_ sealed: ShareEncryption.Sealed) -> [UInt8] { sealed.nonce + sealed.ciphertext }

    public static func unpack(_ bytes: [UInt8]) -> ShareEncryption.Sealed? {
        guard bytes.count >= 24 + 16 else { return nil }
        return ShareEncryption.Sealed(nonce: Array(bytes.prefix(24)), ciphertext: Array(bytes.dropFirst(24)))
    }

    func digestInput() -> [UInt8] {
        var out: [UInt8] = []
        for entry in added {
            let label = Self.pack(entry.label)
            out += withUnsafeBytes(of: entry.tag.bigEndian, Array.init)
            out += withUnsafeBytes(of: UInt32(label.count).bigEndian, Array.init) + label
        }
        out.append(0xFF)
        for tag in removed { out += withUnsafeBytes(of: tag.bigEndian, Array.init) }
        return out
    }
}

/// The signature a holder puts on an update, and how a querier checks it.
public struct ListTableSignature: Sendable {
    public var signature: [UInt8]
    public var certificate: [UInt8]
    public init(signature: [UInt8], certificate: [UInt8]) { self.signature = signature; self.certificate = certificate }
}

public enum ListTableTransfer {
    /// Entries per batch frame (a batch of labels of a few hundred bytes each stays well under a frame's limit).
    public static let batchEntries = 2048
    /// The most labels' bytes one sealed label may have (nonce, JSON of the exposed columns, tag).
    public static let maximumLabelBytes = 4096

    // MARK: Querier

    /// Asks the holder for `list` given what the querier holds (`keyID` and `version`; "" and 0: nothing).
    public static func request(_ session: ProtocolSession, list: String, keyID: String, version: UInt64) async throws {
        try await session.sendLookup { $0.syncRequest = .with { $0.list = list; $0.keyID = keyID; $0.version = version } }
    }

    /// Receives the holder's update: the header first (`accept` checks it, e.g. its size against the
    /// querier's limit), each batch handed to `store` as it arrives (nothing is applied yet), then the
    /// trailer, whose signature `verify` checks over the header and the digest of the batches. Throws
    /// `ListLookupError.refused` when the holder refused, a protocol error when the stream does not match
    /// its header.
    public static func receive(_ session: ProtocolSession, list: String, maximumEntries: UInt64,
                               accept: (ListTableHeader) throws -> Void,
                               store: (ListTableBatch) throws -> Void,
                               verify: (_ message: [UInt8], ListTableSignature) throws -> Void) async throws -> ListTableHeader {
        let holder = session.peer
        guard case .tableHeader(let w) = try await session.receiveLookup() else {
            throw ProtocolError.protocolViolation(peer: holder, detail: "expected a table header")
        }
        if !w.refused.isEmpty { throw ListLookupError.refused(holder: holder, reason: w.refused) }
        let header = ListTableHeader(w)
        guard header.list == list else {
            throw ProtocolError.protocolViolation(peer: holder, detail: "asked for list '\(PeerText.cut(list, limit: 80))', got '\(PeerText.cut(header.list, limit: 80))'")
        }
        guard header.entries <= maximumEntries, header.added <= maximumEntries, header.removed <= maximumEntries,
              header.full ? (header.added == header.entries && header.removed == 0 && header.baseVersion == 0) : header.baseVersion <= header.version,
              header.version > 0, (1...64).contains(header.keyID.utf8.count), header.labelColumns.count <= 64, header.riskLevels.count <= 64 else {
            throw ProtocolError.protocolViolation(peer: holder, detail: "an inconsistent table header (\(header.added) added, \(header.removed) removed, \(header.entries) entries, at most \(maximumEntries))")
        }
        try accept(header)
        var digest = StreamingDigest()
        var added: UInt64 = 0, removed: UInt64 = 0
        while true {
            switch try await session.receiveLookup() {
            case .tableBatch(let b):
                guard b.addedTags.count == b.addedLabels.count, b.addedTags.count + b.removedTags.count <= batchEntries,
                      added + UInt64(b.addedTags.count) <= header.added, removed + UInt64(b.removedTags.count) <= header.removed else {
                    throw ProtocolError.protocolViolation(peer: holder, detail: "a table batch does not match its header")
                }
                var batch = ListTableBatch(removed: b.removedTags)
                batch.added.reserveCapacity(b.addedTags.count)
                for (tag, label) in zip(b.addedTags, b.addedLabels) {
                    guard label.count <= maximumLabelBytes + 40, let sealed = ListTableBatch.unpack(Array(label)) else {
                        throw ProtocolError.protocolViolation(peer: holder, detail: "a sealed label of \(label.count) bytes")
                    }
                    batch.added.append(LabelledLookup.Entry(tag: tag, label: sealed))
                }
                digest.update(batch.digestInput())
                added += UInt64(b.addedTags.count)
                removed += UInt64(b.removedTags.count)
                try store(batch)
            case .tableTrailer(let t):
                guard added == header.added, removed == header.removed else {
                    throw ProtocolError.protocolViolation(peer: holder, detail: "the table ended after \(added) of \(header.added) entries and \(removed) of \(header.removed) removals")
                }
                let computed = digest.finalize()
                guard Array(t.digest) == computed else {
                    throw ProtocolError.protocolViolation(peer: holder, detail: "the table's digest does not match its batches")
                }
                try verify(header.signedMessage(holder: holder, digest: computed),
                           ListTableSignature(signature: Array(t.signature), certificate: Array(t.certificate)))
                return header
            default:
                throw ProtocolError.protocolViolation(peer: holder, detail: "expected a table batch or trailer")
            }
        }
    }

    // MARK: Holder

    /// Reads the querier's sync request.
    public static func receiveRequest(_ session: ProtocolSession) async throws -> (list: String, keyID: String, version: UInt64) {
        guard case .syncRequest(let r) = try await session.receiveLookup() else {
            throw ProtocolError.protocolViolation(peer: session.peer, detail: "expected a list sync request")
        }
        guard r.list.utf8.count <= 200, r.keyID.utf8.count <= 64 else {
            throw ProtocolError.protocolViolation(peer: session.peer, detail: "a sync request with an oversized name")
        }
        return (r.list, r.keyID, r.version)
    }

    public static func refuse(_ session: ProtocolSession, reason: String) async throws {
        try await session.sendLookup { $0.tableHeader = .with { $0.refused = reason } }
    }

    /// Sends `header`, then the batches `next` yields until nil, then the trailer `sign` makes over the
    /// header and the batches' digest. The batches must add up to the header's counts.
    public static func send(_ session: ProtocolSession, holder: NodeID, header: ListTableHeader,
                            next: () throws -> ListTableBatch?, sign: ([UInt8]) throws -> ListTableSignature) async throws {
        try await session.sendLookup { $0.tableHeader = header.wire }
        var digest = StreamingDigest()
        while let batch = try next() {
            precondition(batch.added.count + batch.removed.count <= batchEntries)
            digest.update(batch.digestInput())
            try await session.sendLookup {
                $0.tableBatch = .with {
                    $0.addedTags = batch.added.map(\.tag)
                    $0.addedLabels = batch.added.map { Data(ListTableBatch.pack($0.label)) }
                    $0.removedTags = batch.removed
                }
            }
        }
        let computed = digest.finalize()
        let signature = try sign(header.signedMessage(holder: holder, digest: computed))
        try await session.sendLookup {
            $0.tableTrailer = .with { $0.digest = Data(computed); $0.signature = Data(signature.signature); $0.certificate = Data(signature.certificate) }
        }
    }
}
