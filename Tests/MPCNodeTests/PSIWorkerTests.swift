import MPCBench
import Foundation
import MPCIdentity
import MPCNode
import MPCTestSupport
import MPCTransport
import MPCWire
import NIOPosix
import XCTest

/// Sharded PSI workers (Docs/decisions/0009-sharded-psi-workers.md): real nodes in this process hand
/// their buckets to real `mpcnode worker` processes (the binary `swift build --build-tests` builds),
/// which pair by index over mutual TLS with worker certificates and write the buckets into the job's
/// scratch database; the stored result equals the one-process job's. A worker certificate gets nothing
/// from a node, and a node without workers refuses a job that asks for them.
final class PSIWorkerTests: XCTestCase {
    func submission(workers: Int?, buckets: Int, psiProtocol: String) -> JobSubmission {
        var s = JobSubmission(
            protocolName: "psi",
            parties: [.init(nodeID: "bank-a", dataset: "customers", column: "phone"), .init(nodeID: "bank-b", dataset: "customers", column: "phone")],
            deliverTo: ["bank-a", "bank-b"], cardinalityOnly: false, group: "x25519")
        s.buckets = buckets
        s.psiProtocol = psiProtocol
        s.workers = workers
        return s
    }

    func testTwoAndFourLocalWorkersPerSideGiveTheOneProcessResult() async throws {
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: DaemonProcessTests.binary.path), "build mpcnode first (swift build --build-tests)")
        let fixture = try ConsortiumFixture(workerExecutable: DaemonProcessTests.binary)
        defer { fixture.remove() }
        let a = phoneNumbers(3000, seed: 71, universe: 8000), b = phoneNumbers(2600, seed: 72, universe: 8000)
        try fixture.importCSV(into: "bank-a", dataset: "customers", phones: a)
        try fixture.importCSV(into: "bank-b", dataset: "customers", phones: b)
        let expected = Set(a.map(digits)).intersection(Set(b.map(digits)))
        XCTAssertGreaterThan(expected.count, 500)
        let nodes = try await fixture.consortium.startAll(logger: ConsortiumFixture.quietLogger)
        defer { Task { for n in nodes.values { await n.stop() } } }
        let coordinator = nodes["coordinator"]!

        func run(_ s: JobSubmission) async throws -> (id: String, results: [String: [String]]) {
            let jobID = try await coordinator.engine.submit(s)
            let job = try await ConsortiumFixture.waitForFinal(coordinator, jobID: jobID, seconds: 180)
            XCTAssertEqual(job.state, .succeeded, "\(s.workers ?? 1) workers, \(s.psiProtocol ?? ""): \(job.reason ?? "")")
            var results: [String: [String]] = [:]
            for bank in ["bank-a", "bank-b"] {
                results[bank] = try JobRepository(store: nodes[bank]!.store).result(jobID: jobID, limit: 100_000).identifiers ?? []
            }
            return (jobID, results)
        }

        for psiProtocol in ["ecdh", "kkrt"] {
            let single = try await run(submission(workers: nil, buckets: 4, psiProtocol: psiProtocol))
            XCTAssertEqual(Set(single.results["bank-a"] ?? []), expected, "\(psiProtocol), one process")
            for workers in psiProtocol == "ecdh" ? [2] : [2, 4] {
                let sharded = try await run(submission(workers: workers, buckets: 4, psiProtocol: psiProtocol))
                for bank in ["bank-a", "bank-b"] {
                    // The same identifiers in the same (stored) order as the one-process job's.
                    XCTAssertEqual(sharded.results[bank], single.results[bank], "\(bank), \(psiProtocol), \(workers) workers")
                    let records = try AuditLog(store: nodes[bank]!.store).records(jobID: sharded.id)
                    let handed = records.first { $0.event == "job.workers" }
                    XCTAssertTrue(handed?.details.contains("\"workers\":\(workers)") ?? false, "\(bank): \(handed?.details ?? "no job.workers record")")
                    let succeeded = records.first { $0.event == "job.succeeded" }
                    XCTAssertTrue(succeeded?.details.contains("\"workers\":\(workers)") ?? false, "\(bank): \(succeeded?.details ?? "no record")")
                    // Every worker's traffic and work count in the job's: far more than the node's own hellos.
                    let d = (try? JSONSerialization.jsonObject(with: Data((succeeded?.details ?? "{}").utf8))) as? [String: Any] ?? [:]
                    let number = { (key: String) in (d[key] as? NSNumber)?.intValue ?? 0 }
                    XCTAssertGreaterThan(number("bytes_sent"), 32 * 2600, "\(bank): \(succeeded?.details ?? "")")
                    XCTAssertGreaterThanOrEqual(number("elements_processed"), number("buckets") * number("bucket_capacity"), "\(bank): \(succeeded?.details ?? "")")
                    XCTAssertGreaterThan(number("bucket_capacity"), 0)
                    // Nothing of the job is left in the jobs folder: scratch database, plan, summaries, logs.
                    let jobs = try fixture.consortium.configuration(of: bank).jobsDirectory
                    let left = (try? FileManager.default.contentsOfDirectory(atPath: jobs.path))?.filter { $0.hasPrefix(sharded.id) } ?? []
                    XCTAssertEqual(left, [], "\(bank) kept \(left)")
                }
            }
        }
    }

    /// bank-a's worker 0 cuts its link right after bucket 0 (of its buckets 0 and 1): both nodes start
    /// their worker 0 again, which resumes at bucket 1; the job succeeds with the plain intersection and
    /// each node's audit shows the worker's resume.
    func testAWorkerWhoseLinkDropsIsStartedAgainAndResumesAtItsNextBucket() async throws {
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: DaemonProcessTests.binary.path), "build mpcnode first (swift build --build-tests)")
        setenv("MPCNODE_FAULT_WORKER_DROP_LINK", "bank-a:0", 1)
        defer { unsetenv("MPCNODE_FAULT_WORKER_DROP_LINK") }
        let fixture = try ConsortiumFixture(workerExecutable: DaemonProcessTests.binary)
        defer { fixture.remove() }
        let a = phoneNumbers(2000, seed: 75, universe: 6000), b = phoneNumbers(2000, seed: 76, universe: 6000)
        try fixture.importCSV(into: "bank-a", dataset: "customers", phones: a)
        try fixture.importCSV(into: "bank-b", dataset: "customers", phones: b)
        let expected = Set(a.map(digits)).intersection(Set(b.map(digits)))
        let nodes = try await fixture.consortium.startAll(logger: ConsortiumFixture.quietLogger)
        defer { Task { for n in nodes.values { await n.stop() } } }
        let jobID = try await nodes["coordinator"]!.engine.submit(submission(workers: 2, buckets: 4, psiProtocol: "kkrt"))
        let job = try await ConsortiumFixture.waitForFinal(nodes["coordinator"]!, jobID: jobID, seconds: 120)
        XCTAssertEqual(job.state, .succeeded, job.reason ?? "")
        for bank in ["bank-a", "bank-b"] {
            let result = try JobRepository(store: nodes[bank]!.store).result(jobID: jobID, limit: 100_000)
            XCTAssertEqual(Set(result.identifiers ?? []), expected, bank)
            let resumed = try AuditLog(store: nodes[bank]!.store).records(jobID: jobID).filter { $0.event == "job.resumed" }
            XCTAssertEqual(resumed.count, 1, "\(bank): \(resumed.map(\.details))")
            XCTAssertTrue(resumed.first?.details.contains("\"worker\":0") ?? false, "\(bank): \(resumed.map(\.details))")
        }
    }

    func testANodeWithoutWorkersRefusesAJobThatAsksForThem() async throws {
        let fixture = try ConsortiumFixture()
        defer { fixture.remove() }
        try fixture.importCSV(into: "bank-a", dataset: "customers", phones: phoneNumbers(200, seed: 73))
        try fixture.importCSV(into: "bank-b", dataset: "customers", phones: phoneNumbers(200, seed: 74))
        let nodes = try await fixture.consortium.startAll(logger: ConsortiumFixture.quietLogger)
        defer { Task { for n in nodes.values { await n.stop() } } }
        let jobID = try await nodes["coordinator"]!.engine.submit(submission(workers: 2, buckets: 2, psiProtocol: "ecdh"))
        let job = try await ConsortiumFixture.waitForFinal(nodes["coordinator"]!, jobID: jobID)
        XCTAssertEqual(job.state, .refused)
        XCTAssertTrue((job.reason ?? "").contains("no workers configured"), job.reason ?? "")
        // Before any data: neither bank made a scratch copy.
        for bank in ["bank-a", "bank-b"] {
            let jobs = try fixture.consortium.configuration(of: bank).jobsDirectory
            XCTAssertEqual((try? FileManager.default.contentsOfDirectory(atPath: jobs.path))?.filter { $0.hasPrefix(jobID) } ?? [], [])
        }
        do {
            _ = try await nodes["coordinator"]!.engine.submit(submission(workers: 4, buckets: 2, psiProtocol: "ecdh"))
            XCTFail("4 workers for 2 buckets accepted")
        } catch {
            XCTAssertTrue("\(error)".contains("at least as many buckets"), "\(error)")
        }
    }

    /// bank-b's worker certificate (its own id, role worker, from the consortium CA) asks bank-a's node to
    /// start a job and opens a job session: both refused. A node will not start with a worker certificate.
    func testAWorkerCertificateGetsNothingFromANode() async throws {
        let fixture = try ConsortiumFixture(workerExecutable: DaemonProcessTests.binary)
        defer { fixture.remove() }
        let nodes = try await fixture.consortium.startAll(logger: ConsortiumFixture.quietLogger)
        defer { Task { for n in nodes.values { await n.stop() } } }
        let pki = fixture.directory.appendingPathComponent("pki")
        let material = TLSMaterial(certificatePath: pki.appendingPathComponent("bank-b-worker.pem").path,
                                   privateKeyPath: pki.appendingPathComponent("bank-b-worker-key.pem").path,
                                   caCertificatePath: pki.appendingPathComponent("ca.pem").path)
        let transport = try PeerTransport(identity: NodeIdentity(nodeID: "bank-b", role: .worker), material: material,
                                          group: MultiThreadedEventLoopGroup.singleton)
        let bankA = try fixture.consortium.configuration(of: "bank-a").listen
        let response = try await transport.control(.with { $0.start = .with { $0.jobID = "job-1" } }, to: "bank-a", at: bankA)
        XCTAssertTrue(response.error.message.contains("worker certificate"), "\(response)")
        // A session: the node closes it without a word.
        let closed: Bool = try await transport.withSession(jobID: "job-1", to: "bank-a", at: bankA) { channel in
            do { _ = try await channel.receive(); return false } catch { return true }
        }
        XCTAssertTrue(closed)
        // A node configured with its worker certificate does not start.
        var configuration = try fixture.consortium.configuration(of: "bank-b")
        configuration.tls.certificate = pki.appendingPathComponent("bank-b-worker.pem")
        configuration.tls.privateKey = pki.appendingPathComponent("bank-b-worker-key.pem")
        configuration.listen = PeerAddress(host: "127.0.0.1", port: try FreePorts.reserve(1)[0])
        do {
            _ = try await NodeRuntime.start(configuration: configuration, logger: ConsortiumFixture.quietLogger)
            XCTFail("a node started with a worker certificate")
        } catch {
            XCTAssertTrue("\(error)".contains("worker certificate"), "\(error)")
        }
    }
}
