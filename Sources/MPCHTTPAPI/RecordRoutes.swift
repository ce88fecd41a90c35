import Foundation
import Hummingbird
import MPCNode

/// What a node keeps, over HTTP (Docs/api/openapi.yaml): its status, datasets (metadata only, never
/// a row), policy in force (read-only) and audit trail for its operator; reports and models for a regulator's viewer (or the operator).
struct RecordRoutes {
    let node: NodeRuntime

    struct AuditResponse: Encodable {
        var records: [AuditRecord]
        /// nil when the hash chain verifies; otherwise the first record whose hash does not.
        var brokenAt: Int64?
        var chainIntact: Bool
        enum CodingKeys: String, CodingKey { case records, brokenAt = "broken_at", chainIntact = "chain_intact" }
    }

    func add(to router: Router<APIRequestContext>) {
        router.get("/v1/node") { _, context in
            try context.requireAny(.operations, .coordinator, .regulator)
            return try APIJSON.response(try node.statusView())
        }
        router.get("/v1/peers") { _, context in
            try context.requireAny(.operations, .coordinator)
            return try APIJSON.response(["peers": await node.peerReachability()])
        }
        router.get("/v1/datasets") { _, context in
            try context.require(.operations)
            return try APIJSON.response(["datasets": try DatasetCatalog(store: node.store).list()])
        }
        router.get("/v1/policy") { _, context in
            try context.require(.operations)
            return try APIJSON.response(PolicyInForce(node.configuration.policy))
        }
        router.get("/v1/ledger") { _, context in
            try context.requireAny(.operations, .regulator)
            return try APIJSON.response(try node.ledger.status())
        }
        router.get("/v1/audit") { request, context in
            try context.require(.operations)
            let limit = try APIQuery.integer(request, "limit", default: 100, range: 1...10_000)
            let job = request.uri.queryParameters.get("job")
            if let job, job.utf8.count > 64 { throw APIError(.badRequest, "bad_parameter", "job is at most 64 characters") }
            let audit = AuditLog(store: node.store)
            let broken = try audit.verify()
            return try APIJSON.response(AuditResponse(records: try audit.records(jobID: job, limit: limit), brokenAt: broken, chainIntact: broken == nil))
        }
        router.get("/v1/reports") { request, context in
            try context.requireAny(.regulator, .operations)
            let limit = try APIQuery.integer(request, "limit", default: 100, range: 1...1000)
            return try APIJSON.response(["reports": try ReportRepository(store: node.store).list(limit: limit)])
        }
        router.get("/v1/reports/:id") { _, context in
            try context.requireAny(.regulator, .operations)
            do {
                var report = try ReportRepository(store: node.store).get(try APIQuery.jobID(context))
                report.receipt = try node.receipts.check(jobID: report.jobID)
                return try APIJSON.response(report)
            } catch { throw APIErrors.map(error) }
        }
        router.get("/v1/models") { request, context in
            try context.requireAny(.regulator, .operations)
            let limit = try APIQuery.integer(request, "limit", default: 100, range: 1...1000)
            return try APIJSON.response(["models": try ModelRepository(store: node.store).list(limit: limit)])
        }
        router.get("/v1/models/:id") { _, context in
            try context.requireAny(.regulator, .operations)
            do { return try APIJSON.response(try ModelRepository(store: node.store).get(try APIQuery.jobID(context))) } catch { throw APIErrors.map(error) }
        }
    }
}
