import Foundation

/// A request from the operator's CLI to its own daemon (JSON over the admin socket).
public struct AdminRequest: Codable, Sendable {
    public enum Command: String, Codable, Sendable {
        case status, submitJob, jobStatus, listJobs, jobResult, audit, listReports, showReport, listModels, showModel
    }
    public var command: Command
    public var submission: JobSubmission?
    public var jobID: String?
    public var limit: Int?

    public init(command: Command, submission: JobSubmission? = nil, jobID: String? = nil, limit: Int? = nil) {
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
    public var node: NodeStatusView?
    public var audit: [AuditRecord]?
    public var reports: [ReportView]?
    public var report: ReportView?
    public var models: [ModelView]?
    public var model: ModelView?

    public init(error: String? = nil) { self.error = error }
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
