import Foundation
import MPCNode
import MPCTestSupport
import NIOPosix
import XCTest

/// A result of any size gets out: the admin socket delivers a response larger than the socket's buffer
/// whole, and `mpcnode job result --output` writes every row of a real PSI, page by page, with the
/// recipient's own columns joined.
final class ResultExportTests: XCTestCase {
    /// Before the daemon waited for the client to close, a response above a few hundred KB arrived cut
    /// ("connection ended inside a frame").
    func testAnAdminResponseLargerThanTheSocketBufferArrivesWhole() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mpcnode-admin-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        removeAtTearDown(directory)
        let identifiers = (0..<400_000).map { "4477\(String(format: "%08d", $0))" }  // about 7 MB of JSON
        let socket = directory.appendingPathComponent("admin.sock")
        let server = try await AdminServer.bind(path: socket, group: MultiThreadedEventLoopGroup.singleton, logger: ConsortiumFixture.quietLogger) { _ in
            var response = AdminResponse()
            response.result = JobResultView(jobID: "j", kind: "intersection", cardinality: identifiers.count, identifiers: identifiers,
                                            values: nil, truncated: false, createdAt: Date())
            return response
        }
        let running = Task { try await server.run() }
        defer { running.cancel() }
        for _ in 0..<3 {
            let response = try await AdminClient(socketPath: socket).send(AdminRequest(command: .jobResult, jobID: "j"))
            XCTAssertEqual(response.result?.identifiers?.count, identifiers.count)
            XCTAssertEqual(response.result?.identifiers?.last, identifiers.last)
        }
    }

    func testAPSIResultIsWrittenWholeWithTheRecipientsOwnColumns() async throws {
        let fixture = try ConsortiumFixture()
        removeAtTearDown(fixture.directory)
        let a = phoneNumbers(1500, seed: 21, universe: 3000), b = phoneNumbers(1500, seed: 22, universe: 3000)
        try fixture.importCSV(into: "bank-a", dataset: "customers", phones: a)
        try fixture.importCSV(into: "bank-b", dataset: "customers", phones: b)
        let nodes = try await fixture.consortium.startAll(logger: ConsortiumFixture.quietLogger)
        stopAtTearDown(nodes)
        let submitted = try await AdminClient(socketPath: try fixture.consortium.configuration(of: "coordinator").adminSocketPath)
            .send(AdminRequest(command: .submitJob, submission: JobSubmission.phonePSI(group: "ristretto255")))
        let jobID = try XCTUnwrap(submitted.jobID, submitted.error ?? "")
        let job = try await ConsortiumFixture.waitForFinal(nodes["coordinator"]!, jobID: jobID)
        XCTAssertEqual(job.state, .succeeded, job.reason ?? "")

        // What bank-a should get: each common number with every row of bank-a's own that has it.
        let common = Set(a.map(digits)).intersection(Set(b.map(digits)))
        XCTAssertGreaterThan(common.count, 300)
        var expected: [[String]] = []
        for (i, phone) in a.enumerated() where common.contains(digits(phone)) { expected.append([digits(phone), "C\(i)", "\(i * 10).50"]) }
        XCTAssertGreaterThan(expected.count, common.count, "some numbers are on two of bank-a's rows (the join must give both)")
        expected.sort { $0.lexicographicallyPrecedes($1) }

        let config = try fixture.consortium.configurationFile(of: "bank-a").path
        let csv = fixture.directory.appendingPathComponent("hits.csv")
        // Pages of 97 identifiers: many pages, one page boundary inside nothing.
        let written = try Self.mpcnode(["job", "result", jobID, "--config", config, "--output", csv.path, "--with-columns", "customer_id,balance", "--page-rows", "97"])
        XCTAssertEqual(written.status, 0, written.output)
        XCTAssertTrue(written.output.contains("wrote \(expected.count) rows"), written.output)
        let lines = try String(contentsOf: csv, encoding: .utf8).split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first, "identifier,customer_id,balance")
        let rows = lines.dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        XCTAssertEqual(rows.sorted { $0.lexicographicallyPrecedes($1) }, expected)
        XCTAssertEqual(rows.map { $0[0] }, rows.map { $0[0] }.sorted(), "in identifier order")
        XCTAssertEqual((try FileManager.default.attributesOfItem(atPath: csv.path)[.posixPermissions] as? Int), 0o600)
        XCTAssertFalse(FileManager.default.fileExists(atPath: csv.path + ".partial"))

        // JSON: the identifiers alone, one object each.
        let json = fixture.directory.appendingPathComponent("hits.json")
        let asJSON = try Self.mpcnode(["job", "result", jobID, "--config", config, "--output", json.path, "--page-rows", "250"])
        XCTAssertEqual(asJSON.status, 0, asJSON.output)
        let objects = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [[String: String]])
        XCTAssertEqual(Set(objects.compactMap { $0["identifier"] }), common)
        XCTAssertEqual(objects.count, common.count)

        // Clear errors, and no file left behind: a column bank-a's dataset lacks, bank-b (not a recipient).
        let bad = fixture.directory.appendingPathComponent("bad.csv")
        let unknown = try Self.mpcnode(["job", "result", jobID, "--config", config, "--output", bad.path, "--with-columns", "salary"])
        XCTAssertNotEqual(unknown.status, 0)
        XCTAssertTrue(unknown.output.contains("no column 'salary'"), unknown.output)
        let notRecipient = try Self.mpcnode(["job", "result", jobID, "--config", try fixture.consortium.configurationFile(of: "bank-b").path, "--output", bad.path])
        XCTAssertNotEqual(notRecipient.status, 0)
        XCTAssertTrue(notRecipient.output.contains("no result on this node"), notRecipient.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: bad.path))
        XCTAssertFalse(FileManager.default.fileExists(atPath: bad.path + ".partial"))
    }

    /// Runs the `mpcnode` binary built beside the tests; its exit status and everything it printed.
    static func mpcnode(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = DaemonProcessTests.binary
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
