import Foundation
import HTTPTypes
import Hummingbird
import MPCNode
import NIOCore

/// Jobs over HTTP (Docs/api/openapi.yaml): list and follow them (`operator` or `coordinator`), submit
/// one on a coordinator's node (`coordinator`), read a result page by page (`operator`), and follow a
/// job's progress as server-sent events.
struct JobRoutes {
    let node: NodeRuntime
    let settings: HTTPAPISettings

    func add(to router: Router<APIRequestContext>) {
        router.get("/v1/jobs") { request, context in
            try context.requireAny(.operations, .coordinator)
            let limit = try APIQuery.integer(request, "limit", default: 50, range: 1...1000)
            var jobs = try JobRepository(store: node.store).list(limit: limit)
            if !context.has(.operations) { jobs = jobs.filter { $0.role == .coordinator } }
            return try APIJSON.response(["jobs": jobs])
        }
        router.post("/v1/jobs") { request, context in try await submit(request, context: context) }
        router.get("/v1/jobs/:id") { _, context in
            try context.requireAny(.operations, .coordinator)
            return try APIJSON.response(try visibleJob(context))
        }
        router.get("/v1/jobs/:id/result") { request, context in
            try context.require(.operations)
            let id = try APIQuery.jobID(context)
            let limit = try APIQuery.integer(request, "limit", default: 10_000, range: 1...JobRepository.maximumPageRows)
            let after = request.uri.queryParameters.get("after")
            let columns = (request.uri.queryParameters.get("columns") ?? "").split(separator: ",").map(String.init).filter { !$0.isEmpty }
            do {
                return try APIJSON.response(try JobRepository(store: node.store).resultPage(
                    jobID: id, after: after, limit: limit, columns: columns, localNode: node.identity.nodeID))
            } catch { throw APIErrors.map(error) }
        }
        router.get("/v1/jobs/:id/events") { _, context in try events(context) }
        router.post("/v1/jobs/:id/abort") { request, context in
            try context.require(.coordinator)
            let job = try visibleJob(context)
            guard job.role == .coordinator else { throw APIError(.notFound, "not_found", "no job '\(job.id)' coordinated by this node") }
            var reason = ""
            if request.headers[.contentType] != nil {
                let body = try await APIJSON.body(request, limit: 16_384)
                if !body.isEmpty {
                    guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any], object.keys.allSatisfy({ $0 == "reason" }),
                          object["reason"] == nil || object["reason"] is String else {
                        throw APIError(.badRequest, "malformed_json", "the body is {\"reason\": \"…\"} or empty")
                    }
                    reason = object["reason"] as? String ?? ""
                }
            }
            do {
                try await node.engine.abort(jobID: job.id, reason: reason, by: "\(context.caller?.name ?? "a caller") (HTTP API)")
            } catch JobError.notRunning(let detail) {
                throw APIError(.conflict, "not_running", detail)
            } catch { throw APIErrors.map(error) }
            return try APIJSON.response(try JobRepository(store: node.store).view(jobID: job.id))
        }
    }

    /// The job of the path, if this caller may see it: the operator every job of this node, a
    /// coordinator's caller only the jobs this node coordinates (not those it merely takes part in).
    func visibleJob(_ context: APIRequestContext) throws -> JobView {
        try context.requireAny(.operations, .coordinator)
        let id = try APIQuery.jobID(context)
        let job: JobView
        do { job = try JobRepository(store: node.store).view(jobID: id) } catch { throw APIErrors.map(error) }
        guard context.has(.operations) || job.role == .coordinator else {
            throw APIError(.notFound, "not_found", "no job '\(id)' coordinated by this node")
        }
        return job
    }

    func submit(_ request: Request, context: APIRequestContext) async throws -> Response {
        try context.require(.coordinator)
        guard node.identity.role == .coordinator else {
            throw APIError(.conflict, "not_a_coordinator", "this node's certificate says role \(node.identity.role.rawValue); submit jobs on a coordinator's node")
        }
        let body = try await APIJSON.body(request, limit: settings.maximumRequestBytes)
        let submission: JobSubmission
        do { submission = try JSONDecoder().decode(JobSubmission.self, from: body) } catch {
            throw APIError(.badRequest, "malformed_json", "the body is not a job submission (Docs/api/openapi.yaml, JobSubmission): \(LookupRoutes.describe(error))")
        }
        let id: String
        do { id = try await node.engine.submit(submission) } catch { throw APIErrors.map(error) }
        var response = try APIJSON.response(["job_id": id])
        response.status = .accepted
        response.headers[.location] = "/v1/jobs/\(id)"
        return response
    }

    /// `text/event-stream`: an event `job` with the job's view each time it changes (state or progress),
    /// then `end` once it is final. The stream also ends after an hour (the client reconnects).
    func events(_ context: APIRequestContext) throws -> Response {
        let id = try visibleJob(context).id
        let repository = JobRepository(store: node.store)
        let body = ResponseBody { writer in
            var last: Data?
            let deadline = ContinuousClock.now + .seconds(3600)
            while ContinuousClock.now < deadline {
                let view = try repository.view(jobID: id)
                let data = try APIJSON.encoder.encode(view)
                if data != last {
                    try await writer.write(ByteBuffer(string: "event: job\ndata: \(String(decoding: data, as: UTF8.self))\n\n"))
                    last = data
                }
                if view.state.isFinal {
                    try await writer.write(ByteBuffer(string: "event: end\ndata: {\"state\":\"\(view.state.rawValue)\"}\n\n"))
                    break
                }
                try await Task.sleep(for: .milliseconds(500))
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-store"], body: body)
    }
}

/// Query parameters, checked at the boundary.
enum APIQuery {
    static func integer(_ request: Request, _ name: String, default value: Int, range: ClosedRange<Int>) throws -> Int {
        guard let text = request.uri.queryParameters.get(name) else { return value }
        guard let n = Int(text), range.contains(n) else {
            throw APIError(.badRequest, "bad_parameter", "\(name) must be an integer in \(range.lowerBound)…\(range.upperBound)")
        }
        return n
    }

    /// A job id from the path: at most 64 characters of letters, digits and dashes.
    static func jobID(_ context: APIRequestContext) throws -> String {
        let id = context.parameters.get("id") ?? ""
        guard (1...64).contains(id.utf8.count), id.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || $0 == 45 }) else {
            throw APIError(.badRequest, "bad_parameter", "a job id is 1 to 64 letters, digits and dashes")
        }
        return id
    }
}

/// JSON bodies and responses.
enum APIJSON {
    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.dateEncodingStrategy = .iso8601
        e.outputFormatting = [.sortedKeys]
        return e
    }()

    static func response(_ value: some Encodable) throws -> Response {
        Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
                 body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
    }

    static func body(_ request: Request, limit: Int) async throws -> Data {
        guard let type = request.headers[.contentType], type.lowercased().hasPrefix("application/json") else {
            throw APIError(.unsupportedMediaType, "unsupported_media_type", "send the request as Content-Type: application/json")
        }
        do { return Data(try await request.body.collect(upTo: limit).readableBytesView) } catch {
            throw APIError(.contentTooLarge, "request_too_large", "the request is over \(limit) bytes")
        }
    }
}

/// The node's typed errors as HTTP answers.
enum APIErrors {
    static func map(_ error: Error) -> Error {
        if error is APIError { return error }
        switch error {
        case JobError.unknownJob, JobError.noReport, JobError.noModel, JobError.notCoordinator:
            return APIError(.notFound, "not_found", "\(error)")
        case JobError.invalidSubmission, JobError.malformedSpec, JobError.invalidName, JobError.unknownKind,
             JobError.cannotJoinColumns, JobError.unknownPeer, StoreError.unknownColumn:
            return APIError(.badRequest, "invalid_request", "\(error)")
        default:
            return APIError(.internalServerError, "internal", "\(error)")
        }
    }
}
