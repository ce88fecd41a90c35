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
    private var documents: JSONDocuments<ModelView> { JSONDocuments(store: store, table: "model", missing: { JobError.noModel($0) }) }

    public func insert(_ db: Database, _ model: ModelView) throws {
        let body = try JSONDocuments.body(model)
        try db.execute(sql: "INSERT INTO model (id, job_id, created_at, body) VALUES (?, ?, ?, ?)",
                       arguments: [model.id, model.jobID, model.createdAt, body])
    }

    public func list(limit: Int = 100) throws -> [ModelView] { try documents.list(limit: limit) }

    /// A model by its id, or by its training job's id. At a party, the job's model is the party's own block.
    public func get(_ id: String) throws -> ModelView { try documents.get(id) }
}
