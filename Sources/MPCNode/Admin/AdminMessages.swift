import Foundation

/// A request from the operator's CLI to its own daemon (JSON over the admin socket).
public struct AdminRequest: Codable, Sendable {
    public enum Command: String, Codable, Sendable {
        case status, submitJob, jobStatus, listJobs, jobResult, jobResultPage, abortJob, audit, listReports, showReport, listModels, showModel
        case lookup, lookupStatus, lookupSync, lookupRotate
        case ledgerVerify
    }
    public var command: Command
    public var submission: JobSubmission?
    public var jobID: String?
    public var limit: Int?
    /// `lookup`: the keys, and the lists to ask ("holder:list"; nil: every subscribed list).
    /// `lookupRotate`: `lists` names the holder's own list.
    public var keys: [String]?
    public var lists: [String]?
    /// `jobResultPage`: the identifier to continue after, and the columns of this node's dataset to join.
    public var after: String?
    public var columns: [String]?
    /// `abortJob`: why (recorded at every node).
    public var reason: String?

    public init(command: Command, submission: JobSubmission? = nil, jobID: String? = nil, limit: Int? = nil,
                keys: [String]? = nil, lists: [String]? = nil, after: String? = nil, columns: [String]? = nil) {
        self.after = after
        self.columns = columns
        self.keys = keys
        self.lists = lists
        self.command = command
        self.submission = submission
        self.jobID = jobID
        self.limit = limit
    }
}

/// The daemon's answer. `error` is set when the request failed; it says what to do next.
public struct AdminResponse: Codable, Sendable {
    public var error: String?
    public var jobID: String?
    public var job: JobView?
    public var jobs: [JobView]?
    public var result: JobResultView?
    public var resultPage: JobResultPage?
    public var node: NodeStatusView?
    public var audit: [AuditRecord]?
    public var reports: [ReportView]?
    public var report: ReportView?
    public var models: [ModelView]?
    public var model: ModelView?
    public var lookups: [LookupKeyResult]?
    public var lookupElapsedMicroseconds: Int?
    public var subscribedLists: [LookupListStatus]?
    public var offeredLists: [OfferedListStatus]?
    public var syncErrors: [String: String]?
    public var ledger: LedgerReport?
    /// `showReport`: the receipt of the report's job held here (its signatures verified again).
    public var receipt: JobReceipts.Check?

    public init(error: String? = nil) { self.error = error }
}

/// A list this node offers (the holder's view in `mpcnode lookup status`).
public struct OfferedListStatus: Codable, Sendable, Equatable {
    public var list: String
    public var keyID: String?
    public var version: UInt64?
    public var entries: Int?
    public var updatedAt: Date?
    public var queriers: [String]
    public var maximumPerSecond: Int
    public var maximumPerDay: Int
    /// Evaluations today per querier.
    public var usedToday: [String: Int]

    enum CodingKeys: String, CodingKey {
        case list, keyID = "key_id", version, entries, updatedAt = "updated_at", queriers
        case maximumPerSecond = "max_per_second", maximumPerDay = "max_per_day", usedToday = "used_today"
    }
}

public struct NodeStatusView: Codable, Sendable {
    public var nodeID: String
    public var role: String
    public var listen: String
    public var peers: [String: String]
    public var startedAt: Date
    public var datasets: Int
    public var runningJobs: Int
    public var auditChainIntact: Bool
    /// Days until this node's certificate and the consortium CA's expire (nil from an older daemon).
    public var certificateDaysLeft: Int?
    public var caDaysLeft: Int?
}

/// Whether a peer answers over mutual TLS (`GET /v1/peers`, the console's node view).
public struct PeerReachability: Codable, Sendable, Equatable {
    public var node: String
    public var address: String
    public var reachable: Bool
    public var milliseconds: Double?
    public var error: String?
    /// Until when the certificate the peer presented is valid, and the days left (nil when unreachable).
    public var certificateNotValidAfter: Date?
    public var certificateDaysLeft: Double?
}

enum AdminCoding {
    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.dateEncodingStrategy = .iso8601
        return e
    }()
    static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .iso8601
        return d
    }()
}
