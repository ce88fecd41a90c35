import Foundation
import MPCNode
import XCTest

/// Real `mpcnode serve` processes: one is killed (SIGKILL) in the middle of a job, and either comes back
/// in time (the job resumes where it stopped) or does not (the job fails with a clear reason everywhere).
final class DaemonProcessTests: XCTestCase {
    /// The `mpcnode` binary built beside the test bundle (`swift build --build-tests` builds it).
    static var binary: URL {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/mpcnode")
    }

    final class Daemon {
        let id: String
        let process = Process()
        init(id: String, configuration: URL, log: URL, environment: [String: String] = [:]) throws {
            self.id = id
            process.executableURL = DaemonProcessTests.binary
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            process.arguments = ["serve", "--config", configuration.path, "--log-format", "text"]
            FileManager.default.createFile(atPath: log.path, contents: nil)
            let handle = try FileHandle(forWritingTo: log)
            process.standardOutput = handle
            process.standardError = handle
            try process.run()
        }
    }

    static func waitForSocket(_ url: URL, seconds: Double = 30) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if FileManager.default.fileExists(atPath: url.path),
               (try? await AdminClient(socketPath: url).send(AdminRequest(command: .status)))?.node != nil { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        XCTFail("no daemon answered at \(url.path)")
    }

    /// Starts the fixture's coordinator, bank-a and bank-b as `mpcnode serve` processes (with extra
    /// environment variables per node) and waits until each answers on its admin socket.
    static func startDaemons(_ fixture: ConsortiumFixture, environment: [String: [String: String]] = [:])
        async throws -> (daemons: [String: Daemon], sockets: [String: URL], logs: URL) {
        let logs = fixture.directory.appendingPathComponent("logs")
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        var daemons: [String: Daemon] = [:]
        var sockets: [String: URL] = [:]
        for id in ["coordinator", "bank-a", "bank-b"] {
            let member = fixture.consortium.members.first { $0.id == id }!
            daemons[id] = try Daemon(id: id, configuration: member.configurationPath, log: logs.appendingPathComponent("\(id).log"),
                                     environment: environment[id] ?? [:])
            sockets[id] = try fixture.consortium.configuration(of: id).adminSocketPath
        }
        for id in daemons.keys { try await waitForSocket(sockets[id]!) }
        return (daemons, sockets, logs)
    }

    static func job(_ socket: URL, _ id: String) async throws -> JobView? {
        try await AdminClient(socketPath: socket).send(AdminRequest(command: .jobStatus, jobID: id)).job
    }

    /// Polls the job on the node behind `socket` until it is final (or `seconds` pass).
    static func finalJob(_ socket: URL, _ id: String, seconds: Double) async throws -> JobView? {
        let deadline = Date().addingTimeInterval(seconds)
        var j: JobView?
        while Date() < deadline {
            j = try await Self.job(socket, id)
            if j?.state.isFinal == true { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        return j
    }

    /// bank-b is killed once half of the job is done (its process exits as if killed right after recording
    /// bucket 9 of 20: `MPCNODE_FAULT_EXIT_AFTER_PSI_BUCKET`, read by debug builds only) and restarted at
    /// once: the job resumes at the first bucket either side lacks, ends with the plain intersection, and
    /// bank-b's last attempt processes less than 60 % of what a fresh run processes.
    func testAPeerKilledHalfwayResumesAfterItsRestartAndRedoesLessThanSixtyPerCent() async throws {
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: Self.binary.path),
                      "\(Self.binary.path) is missing: build with `swift build --build-tests` first")
        let fixture = try ConsortiumFixture(peerIdleTimeoutSeconds: 30)
        defer { fixture.remove() }
        try fixture.importCSV(into: "bank-a", dataset: "customers", phones: (0..<20_000).map { "+44 7700 \($0)" })
        try fixture.importCSV(into: "bank-b", dataset: "customers", phones: (10_000..<30_000).map { "+44 7700 \($0)" })
        let started = try await Self.startDaemons(fixture, environment: ["bank-b": ["MPCNODE_FAULT_EXIT_AFTER_PSI_BUCKET": "9"]])
        var daemons = started.daemons
        let sockets = started.sockets, logs = started.logs
        defer { for d in daemons.values where d.process.isRunning { d.process.terminate(); d.process.waitUntilExit() } }

        let submission = JobSubmission.phonePSI(buckets: 20)
        let submitted = try await AdminClient(socketPath: sockets["coordinator"]!).send(AdminRequest(command: .submitJob, submission: submission))
        let jobID = try XCTUnwrap(submitted.jobID, submitted.error ?? "")

        // bank-b exits after its bucket 9 (half of the job); it is started again at once, without the fault.
        // bank-a may or may not have recorded bucket 9 (the exit can cut bank-b's last frames): 10 or 11
        // buckets of 20 are left.
        daemons["bank-b"]!.process.waitUntilExit()
        XCTAssertEqual(daemons["bank-b"]!.process.terminationStatus, 137)
        let member = fixture.consortium.members.first { $0.id == "bank-b" }!
        daemons["bank-b"] = try Daemon(id: "bank-b", configuration: member.configurationPath, log: logs.appendingPathComponent("bank-b-restart.log"))
        try await Self.waitForSocket(sockets["bank-b"]!)

        let c = try await Self.finalJob(sockets["coordinator"]!, jobID, seconds: 180)
        XCTAssertEqual(c?.state, .succeeded, c?.reason ?? "")
        let result = try await AdminClient(socketPath: sockets["bank-a"]!).send(AdminRequest(command: .jobResult, jobID: jobID, limit: 100_000))
        XCTAssertEqual(result.result?.cardinality, 10_000)
        XCTAssertEqual(Set(result.result?.identifiers ?? []), Set((10_000..<20_000).map { "447700\($0)" }))

        // bank-b's audit: resumed after its restart; what its last attempt processed against a fresh run.
        for d in daemons.values where d.process.isRunning { d.process.terminate(); d.process.waitUntilExit() }
        let audit = AuditLog(store: try NodeStore(path: try fixture.consortium.configuration(of: "bank-b").databasePath))
        let records = try audit.records(jobID: jobID)
        let resumed = try XCTUnwrap(records.first { $0.event == "job.resumed" }, "\(records.map(\.event))")
        XCTAssertTrue(resumed.details.contains("\"after\":\"restart\""), resumed.details)
        let succeeded = try XCTUnwrap(records.first { $0.event == "job.succeeded" })
        let d = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(succeeded.details.utf8)) as? [String: Any])
        let buckets = try XCTUnwrap(d["buckets"] as? Int), capacity = try XCTUnwrap(d["bucket_capacity"] as? Int)
        let last = try XCTUnwrap(d["elements_processed_last_attempt"] as? Int)
        let fresh = buckets * 2 * capacity  // both capacities are equal: both sets hold 20,000
        XCTAssertEqual(buckets, 20)
        XCTAssertLessThan(Double(last), 0.6 * Double(fresh))
        XCTAssertTrue(resumed.details.contains("\"from_bucket\":10"), resumed.details)
        XCTAssertGreaterThan(last, 0)
        XCTAssertNil(try audit.verify())
    }

    /// bank-b is killed and stays away longer than the idle limit: bank-a gives up with a reason naming
    /// bank-b, and bank-b, started later, ends the job instead of resuming it.
    func testPeerKilledMidJobLeavesTheJobFailedWithAClearReasonEverywhere() async throws {
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: Self.binary.path),
                      "\(Self.binary.path) is missing: build with `swift build --build-tests` first")
        let fixture = try ConsortiumFixture(peerIdleTimeoutSeconds: 8)
        defer { fixture.remove() }
        // Large enough that the job runs for several seconds in a debug build.
        try fixture.importCSV(into: "bank-a", dataset: "customers", phones: (0..<30_000).map { "+44 7700 \($0)" })
        try fixture.importCSV(into: "bank-b", dataset: "customers", phones: (15_000..<45_000).map { "+44 7700 \($0)" })
        let started = try await Self.startDaemons(fixture)
        var daemons = started.daemons
        let sockets = started.sockets, logs = started.logs
        defer { for d in daemons.values where d.process.isRunning { d.process.terminate(); d.process.waitUntilExit() } }

        let submitted = try await AdminClient(socketPath: sockets["coordinator"]!).send(AdminRequest(command: .submitJob, submission: JobSubmission.phonePSI()))
        let jobID = try XCTUnwrap(submitted.jobID, submitted.error ?? "")

        // Kill bank-b once it is visibly in the middle of the job.
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if let j = try await Self.job(sockets["bank-b"]!, jobID), j.state == .running, (j.progressDone ?? 0) > 0 { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        let midJob = try await Self.job(sockets["bank-b"]!, jobID)
        XCTAssertEqual(midJob?.state, .running, "bank-b should be running the job when it is killed")
        kill(daemons["bank-b"]!.process.processIdentifier, SIGKILL)
        daemons["bank-b"]!.process.waitUntilExit()

        // bank-a notices at once, tries to resume for the idle limit (8 s), then ends the job with a reason
        // that names bank-b; so does the coordinator.
        let a = try await Self.finalJob(sockets["bank-a"]!, jobID, seconds: 60)
        XCTAssertEqual(a?.state, .failed)
        XCTAssertTrue(a?.reason?.contains("bank-b") == true, a?.reason ?? "no reason")
        let c = try await Self.finalJob(sockets["coordinator"]!, jobID, seconds: 30)
        XCTAssertEqual(c?.state, .failed)
        XCTAssertTrue(c?.reason?.hasPrefix("bank-a: ") == true && c?.reason?.contains("bank-b") == true, c?.reason ?? "no reason")

        // No partial result at bank-a, and its data is intact.
        let result = try await AdminClient(socketPath: sockets["bank-a"]!).send(AdminRequest(command: .jobResult, jobID: jobID))
        XCTAssertNil(result.result)
        XCTAssertTrue(result.error?.contains("has no result") == true, result.error ?? "")

        // bank-b restarts after the idle limit: the job it was running ends as failed with the reason, not
        // hanging as running nor resuming with a peer that gave up.
        try await Task.sleep(for: .seconds(3))
        let member = fixture.consortium.members.first { $0.id == "bank-b" }!
        daemons["bank-b"] = try Daemon(id: "bank-b", configuration: member.configurationPath, log: logs.appendingPathComponent("bank-b-restart.log"))
        try await Self.waitForSocket(sockets["bank-b"]!)
        let b = try await Self.job(sockets["bank-b"]!, jobID)
        XCTAssertEqual(b?.state, .failed)
        XCTAssertTrue(b?.reason?.contains("stopped while the job was running") == true, b?.reason ?? "")

        // Graceful stop: SIGTERM, exit status 0.
        for d in daemons.values where d.process.isRunning {
            d.process.terminate()
            d.process.waitUntilExit()
            XCTAssertEqual(d.process.terminationStatus, 0, "\(d.id) did not stop cleanly")
        }
        let data = DatasetCatalog(store: try NodeStore(path: try fixture.consortium.configuration(of: "bank-a").databasePath))
        XCTAssertEqual(try data.describe("customers").rowCount, 30_000)
    }
}
