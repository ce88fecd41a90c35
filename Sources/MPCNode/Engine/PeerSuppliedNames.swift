import MPCIdentity
import MPCWire

/// The rules for every name another node supplies: a coordinator's job id and spec, a session's job id
/// and stream. They are checked where a message enters the node, before the name is used for anything
/// (a file, a table, a lookup), so that only validated values ever reach a path or a query.
///
/// Job ids and streams are the strictest: a job id names the job's scratch file in `data_dir/jobs/`, so
/// it may never contain a path separator, a dot or anything else a file system interprets.
public enum PeerSuppliedName: String, Sendable {
    case jobID = "job id"
    case stream = "session stream"
    case nodeID = "node id"
    case dataset = "dataset"
    case column = "column"

    /// The longest column name a peer may send (a header of an imported CSV file is rarely longer).
    static let maxColumnLength = 128

    /// Throws `JobError.invalidName` unless `value` follows this kind of name's rule.
    public func validate(_ value: String, field: String? = nil) throws {
        guard isValid(value) else { throw JobError.invalidName(field: field ?? rawValue, value: value, rule: rule) }
    }

    public func isValid(_ value: String) -> Bool {
        switch self {
        case .jobID:
            // 1 to 64 of A–Z a–z 0–9 '-' '_', starting with a letter or digit ("job-" + 12 hex digits).
            let bytes = Array(value.utf8)
            guard (1...64).contains(bytes.count), Self.isAlphanumeric(bytes[0]) else { return false }
            return bytes.allSatisfy { Self.isAlphanumeric($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") }
        case .stream:
            // Empty (the job's only session between two nodes) or 1 to 64 of a–z 0–9 '-'.
            let bytes = Array(value.utf8)
            guard bytes.count <= 64 else { return false }
            return bytes.allSatisfy { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || $0 == UInt8(ascii: "-") }
        case .nodeID:
            return (try? NodeIdentity.validate(nodeID: value)) != nil
        case .dataset:
            return (try? DatasetCatalog.validate(datasetName: value)) != nil
        case .column:
            // Any header text an import accepts, bounded, without control characters (they would
            // reach logs and error messages).
            guard (1...Self.maxColumnLength).contains(value.count) else { return false }
            return value.unicodeScalars.allSatisfy { !$0.properties.generalCategory.isControlOrFormat }
        }
    }

    var rule: String {
        switch self {
        case .jobID: return "1 to 64 characters of A-Z, a-z, 0-9, '-' and '_', starting with a letter or digit"
        case .stream: return "at most 64 characters of a-z, 0-9 and '-'"
        case .nodeID: return "a DNS label: 1 to 63 characters of a-z, 0-9 and '-', starting with a letter"
        case .dataset: return "1 to 48 characters of a-z, 0-9 and '_', starting with a letter"
        case .column: return "1 to \(Self.maxColumnLength) characters without control characters"
        }
    }

    private static func isAlphanumeric(_ b: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(b) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(b)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b)
    }

    /// Checks every name of a proposed job: its id, every node it names, every dataset and column.
    /// Numbers and protocol-specific rules are the kinds' and the policy's; this is only about names.
    /// The names in a kind's own part are checked by the kind (`JobKind.validateNames`).
    public static func validate(spec: Mpcnode_V1_JobSpec) throws {
        try PeerSuppliedName.jobID.validate(spec.jobID)
        try PeerSuppliedName.nodeID.validate(spec.coordinator, field: "coordinator")
        for p in spec.parties {
            try PeerSuppliedName.nodeID.validate(p.nodeID, field: "party")
            try PeerSuppliedName.dataset.validate(p.dataset, field: "dataset of \(p.nodeID)")
            // Empty for a secure sum, whose columns are in its aggregate.
            if !p.column.isEmpty { try PeerSuppliedName.column.validate(p.column, field: "column of \(p.nodeID)") }
        }
        for r in spec.deliverTo { try PeerSuppliedName.nodeID.validate(r, field: "recipient") }
        // The kind's own part: only for a kind this node runs (any other is refused without reading it).
        if let kind = try? JobKinds.kind(of: spec) { try kind.validateNames(spec) }
    }

    /// The feature holders of a vertical spec (training or predict).
    static func validate(featureHolders: [Mpcnode_V1_PartyFeatures]) throws {
        for pf in featureHolders {
            try PeerSuppliedName.nodeID.validate(pf.nodeID, field: "feature holder")
            for f in pf.features { try PeerSuppliedName.column.validate(f, field: "feature column of \(pf.nodeID)") }
        }
    }
}

private extension Unicode.GeneralCategory {
    var isControlOrFormat: Bool {
        switch self {
        case .control, .format, .lineSeparator, .paragraphSeparator, .surrogate, .unassigned: return true
        default: return false
        }
    }
}
