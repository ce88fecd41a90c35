import Foundation
import GRDB
import MPCLearning
import MPCProtocols

/// A trained model as a node keeps it: the coefficients it may see, how it was trained and how good it is.
public struct ModelView: Codable, Sendable {
    public var id: String
    public var jobID: String
    public var specHash: String
    public var mode: String
    /// "aggregator" or "party": which side of the training this node was.
    public var role: String
    public var createdAt: Date
    public var features: [String]
    public var label: String
    /// Feature name → weight, and the intercept.
    public var weights: [String: Double]
    public var bias: Double
    /// Node → dataset it trained on.
    public var datasets: [String: String]
    public var training: TrainingParameters
    /// Per round: the consortium's loss and who contributed (at the aggregator).
    public var rounds: [TrainingRound]
    public var auc: Double?
    public var loss: Double?
    public var accuracy: Double?
    public var evaluatedRows: Int?

    public var model: LogisticModel { LogisticModel(weights: features.map { weights[$0] ?? 0 }, bias: bias) }
}

public struct ModelRepository: Sendable {
    public let store: NodeStore
    public init(store: NodeStore) { self.store = store }

    public func insert(_ db: Database, _ model: ModelView) throws {
        let body = String(decoding: try AdminCoding.encoder.encode(model), as: UTF8.self)
        try db.execute(sql: "INSERT INTO model (id, job_id, created_at, body) VALUES (?, ?, ?, ?)",
                       arguments: [model.id, model.jobID, model.createdAt, body])
    }

    public func list(limit: Int = 100) throws -> [ModelView] {
        try store.read { db in
            try String.fetchAll(db, sql: "SELECT body FROM model ORDER BY created_at DESC LIMIT ?", arguments: [limit])
                .map { try AdminCoding.decoder.decode(ModelView.self, from: Data($0.utf8)) }
        }
    }

    public func get(_ id: String) throws -> ModelView {
        try store.read { db in
            guard let body = try String.fetchOne(db, sql: "SELECT body FROM model WHERE id = ? OR job_id = ?", arguments: [id, id]) else {
                throw JobError.noModel(id)
            }
            return try AdminCoding.decoder.decode(ModelView.self, from: Data(body.utf8))
        }
    }
}
