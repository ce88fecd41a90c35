import Foundation
import GRDB

/// The progress columns that `job` and `job_party` share.
protocol StoredProgress {
    var progressDone: Int? { get }
    var progressTotal: Int? { get }
    var progressUnit: String? { get }
    var progressLoss: Double? { get }
    var progressElapsedMs: Int? { get }
    var progressRemainingMs: Int? { get }
}

extension StoredProgress {
    /// The last recorded progress in full, if any was recorded.
    var progress: ProgressSnapshot? {
        guard let progressDone, let progressTotal else { return nil }
        return ProgressSnapshot(done: progressDone, total: progressTotal, unit: progressUnit ?? "elements", loss: progressLoss,
                                elapsedMs: progressElapsedMs ?? 0, remainingMs: progressRemainingMs)
    }
}

/// A row of `job`: one job as this node knows it (its spec is the serialised `Mpcnode_V1_JobSpec`).
struct JobRecord: Decodable, FetchableRecord, TableRecord, StoredProgress {
    static let databaseTableName = "job"
    static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase

    var id: String
    var spec: Data
    var specHash: String
    var role: String
    var state: String
    var reason: String?
    var createdAt: Date
    var updatedAt: Date
    var inputRows: Int?
    var bytesSent: Int?
    var bytesReceived: Int?
    var elapsedMs: Int?
    var progressDone: Int?
    var progressTotal: Int?
    var progressUnit: String?
    var progressLoss: Double?
    var progressElapsedMs: Int?
    var progressRemainingMs: Int?
}

/// A row of `job_party`: a participant of a job this node coordinates, as it reported.
struct JobPartyRecord: Decodable, FetchableRecord, TableRecord, StoredProgress {
    static let databaseTableName = "job_party"
    static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase

    var jobId: String
    var nodeId: String
    var state: String
    var reason: String?
    var inputRows: Int?
    var bytesSent: Int?
    var bytesReceived: Int?
    var elapsedMs: Int?
    var resultRows: Int?
    var receivedResult: Bool?
    var auditHash: String?
    var progressDone: Int?
    var progressTotal: Int?
    var progressUnit: String?
    var progressLoss: Double?
    var progressElapsedMs: Int?
    var progressRemainingMs: Int?
}

/// A row of `job_result`: what a recipient received (its items are in `job_result_item`).
struct JobResultRecord: Decodable, FetchableRecord, TableRecord {
    static let databaseTableName = "job_result"
    static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase

    var jobId: String
    var kind: String
    var cardinality: Int
    var createdAt: Date
}
