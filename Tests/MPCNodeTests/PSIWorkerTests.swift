import MPCBench
import Foundation
import MPCIdentity
@testable import MPCNode
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
        JobSubmission.phonePSI(deliverTo: ["bank-a", "bank-b"], buckets: buckets, psiProtocol: psiProtocol, workers: workers)
    }

    func testTwoAndFourLocalWorkersPerSideGiveTheOneProcessResult() async throws {
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: DaemonProcessTests.binary.path), "build mpcnode first (swift build --build-tests)")
        let fixture = try ConsortiumFixture(workerExecutable: DaemonProcessTests.binary)
        removeAtTearDown(fixture.directory)
        let a = phoneNumbers(3000, seed: 71, universe: 8000), b = phoneNumbers(2600, seed: 72, universe: 8000)
        try fixture.importCSV(into: "bank-a", dataset: "customers", phones: a)
        try fixture.importCSV(into: "bank-b", dataset: "customers", phones: b)
        let expected = Set(a.map(digits)).intersection(Set(b.map(digits)))
        XCTAssertGreaterThan(expected.count, 500)
        let nodes = try await fixture.consortium.startAll(logger: ConsortiumFixture.quietLogger)
        stopAtTearDown(nodes)
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
        removeAtTearDown(fixture.directory)
        let a = phoneNumbers(2000, seed: 75, universe: 6000), b = phoneNumbers(2000, seed: 76, universe: 6000)
        try fixture.importCSV(into: "bank-a", dataset: "customers", phones: a)
        try fixture.importCSV(into: "bank-b", dataset: "customers", phones: b)
        let expected = Set(a.map(digits)).intersection(Set(b.map(digits)))
        let nodes = try await fixture.consortium.startAll(logger: ConsortiumFixture.quietLogger)
        stopAtTearDown(nodes)
        let jobID = try await nodes["coordinator"]!.engine.submit(submission(workers: 2, buckets: 4, psiProtocol: "kkrt"))
        let job = try await ConsortiumFixture.waitForFinal(nodes["coordinator"]!, jobID: jobID, seconds: 120)
        XCTAssertEqual(job.state, .succeeded, job.reason ?? "")
        for bank in ["bank-a", "bank-b"] {
            let result = try JobRepository(store: nodes[bank]!.store).result(jobID: jobID, limit: 100_000)
            XCTAssertEqual(Set(result.identifiers ?? []), expected, bank)
            let records = try AuditLog(store: nodes[bank]!.store).records(jobID: jobID)
            let resumed = records.filter { $0.event == "job.resumed" }
            XCTAssertEqual(resumed.count, 1, "\(bank): \(resumed.map(\.details))")
            XCTAssertTrue(resumed.first?.details.contains("\"worker\":0") ?? false, "\(bank): \(resumed.map(\.details))")
        }
        // Worker 0 started again at bucket 1, not at its range's start: bank-a processed far less than one
        // bucket more than a fresh run (which processes 4 × both capacities).
        func record(_ bank: String) throws -> [String: Any] {
            let d = try AuditLog(store: nodes[bank]!.store).records(jobID: jobID).first { $0.event == "job.succeeded" }?.details ?? "{}"
            return (try JSONSerialization.jsonObject(with: Data(d.utf8))) as? [String: Any] ?? [:]
        }
        let recordA = try record("bank-a"), recordB = try record("bank-b")
        let perBucket = ((recordA["bucket_capacity"] as? NSNumber)?.intValue ?? 0) + ((recordB["bucket_capacity"] as? NSNumber)?.intValue ?? 0)
        let processed = (recordA["elements_processed"] as? NSNumber)?.intValue ?? 0
        XCTAssertGreaterThanOrEqual(processed, 4 * perBucket, "\(recordA)")
        XCTAssertLessThan(processed, 4 * perBucket + perBucket / 2, "a bucket redone: \(recordA)")
    }

    /// A listening worker takes the one session of its job and index from its peer's worker: not its peer's
    /// node certificate, not another stream or job, not another member's worker.
    func testAListeningWorkerTakesOnlyItsPeersWorkerOfItsIndex() async throws {
        let fixture = try ConsortiumFixture(workerExecutable: DaemonProcessTests.binary)
        removeAtTearDown(fixture.directory)
        let pki = fixture.directory.appendingPathComponent("pki")
        func transport(_ id: String, _ role: NodeRole) throws -> PeerTransport {
            let stem = role.fileStem(nodeID: id)
            return try PeerTransport(identity: NodeIdentity(nodeID: id, role: role), material: TLSMaterial(
                certificatePath: pki.appendingPathComponent("\(stem).pem").path, privateKeyPath: pki.appendingPathComponent("\(stem)-key.pem").path,
                caCertificatePath: pki.appendingPathComponent("ca.pem").path), group: MultiThreadedEventLoopGroup.singleton)
        }
        let worker = try transport("bank-a", .worker)
        let rendezvous = SessionRendezvous()
        let listener = try await worker.bind(host: "127.0.0.1", port: 0, handler: PairedWorkerHandler(
            jobID: "job-7", stream: "worker-1", peer: "bank-b", rendezvous: rendezvous, timeout: .seconds(10)))
        let serving = Task { try? await listener.run() }
        defer { serving.cancel() }
        let address = PeerAddress(host: "127.0.0.1", port: listener.port)
        let peerWorker = try transport("bank-b", .worker), peerNode = try transport("bank-b", .bank)
        // Refused: each gets an abort frame and nothing reaches the job.
        for (t, job, stream) in [(peerNode, "job-7", "worker-1"), (peerWorker, "job-7", "worker-0"), (peerWorker, "job-8", "worker-1")] {
            let answer: [UInt8] = try await t.withSession(jobID: job, stream: stream, to: "bank-a", at: address, role: .worker) { channel in
                try await channel.receive()
            }
            let frame = try Mpcnode_V1_SessionFrame(serializedBytes: answer)
            guard case .abort(let abort)? = frame.body else { return XCTFail("\(t.identity) \(job) \(stream): \(frame)") }
            XCTAssertTrue(abort.reason.contains("worker-1 of job job-7 with bank-b's worker only"), abort.reason)
        }
        do {
            _ = try await rendezvous.claim(jobID: "job-7", stream: "worker-1", peer: "bank-b", timeout: .milliseconds(300))
            XCTFail("a refused session reached the worker")
        } catch {}
        // bank-b's worker 1 for job-7: taken.
        let taken = Task { try await rendezvous.claim(jobID: "job-7", stream: "worker-1", peer: "bank-b", timeout: .seconds(10)) }
        try await peerWorker.withSession(jobID: "job-7", stream: "worker-1", to: "bank-a", at: address, role: .worker) { channel in
            try await channel.send(Array("hello".utf8))
            let mine = try await taken.value
            let received = try await mine.receive()
            XCTAssertEqual(received, Array("hello".utf8))
            await mine.close()
        }
    }

    /// The claims in a job's scratch database, as two processes see them: a range held by a live worker is
    /// refused to a second, free again once released (or stale), and starts beyond max_resumes refused.
    func testAWorkerRangeHasOneLiveProcessAndStartsAreBounded() async throws {
        let fixture = try ConsortiumFixture()
        removeAtTearDown(fixture.directory)
        try fixture.importCSV(into: "bank-a", dataset: "customers", phones: phoneNumbers(100, seed: 77))
        let configuration = try fixture.consortium.configuration(of: "bank-a")
        let source = try SQLiteIdentifierSource.prepare(jobID: "job-0123456789ab", dataset: "customers", column: "phone",
                                                        store: NodeStore(path: configuration.databasePath), scratchDirectory: configuration.jobsDirectory)
        let key = try JobSealKey.load(dataDirectory: configuration.dataDirectory)
        // Two processes: two connections to the one file.
        let first = try SQLiteBucketCheckpoints(source: source, sealKey: key)
        let second = try SQLiteBucketCheckpoints(source: SQLiteIdentifierSource.reopen(jobID: "job-0123456789ab", scratchDirectory: configuration.jobsDirectory), sealKey: key)
        // Owners as workers name themselves: host/pid/…; p1 is this (live) process.
        let host = ProcessInfo.processInfo.hostName, me = getpid()
        let p1 = "\(host)/\(me)/a"
        try first.claimWorkerRange(index: 0, owner: p1, maximumRestarts: 2)
        try second.claimWorkerRange(index: 1, owner: "p2", maximumRestarts: 2)
        XCTAssertThrowsError(try second.claimWorkerRange(index: 0, owner: "p3", maximumRestarts: 2)) { error in
            XCTAssertTrue("\(error)".contains("held by another live process"), "\(error)")
        }
        first.releaseWorkerClaim(index: 0, owner: p1)
        try second.claimWorkerRange(index: 0, owner: "p3", maximumRestarts: 2)  // restart 1
        // A claim not renewed for 30 s belongs to a dead process (a worker killed without releasing).
        try await second.queue.write { db in try db.execute(sql: "UPDATE worker_claim SET at = at - 31 WHERE idx = 0") }
        try first.claimWorkerRange(index: 0, owner: "p4", maximumRestarts: 2)  // restart 2
        first.releaseWorkerClaim(index: 0, owner: "p4")
        XCTAssertThrowsError(try first.claimWorkerRange(index: 0, owner: "p5", maximumRestarts: 2)) { error in
            XCTAssertTrue("\(error)".contains("started again 3 times"), "\(error)")
        }
        // A holder on this host whose process is gone (stopped with SIGTERM: nothing released) holds nothing,
        // at once; one whose process lives does.
        let gone = Process()
        gone.executableURL = URL(fileURLWithPath: "/bin/true")
        try gone.run()
        gone.waitUntilExit()
        try second.claimWorkerRange(index: 2, owner: "\(host)/\(me)/b", maximumRestarts: 9)
        XCTAssertThrowsError(try first.claimWorkerRange(index: 2, owner: "\(host)/\(gone.processIdentifier)/c", maximumRestarts: 9))
        try await second.queue.write { db in try db.execute(sql: "UPDATE worker_claim SET owner = ? WHERE idx = 2", arguments: ["\(host)/\(gone.processIdentifier)/d"]) }
        try first.claimWorkerRange(index: 2, owner: "\(host)/\(me)/e", maximumRestarts: 9)
        // The KKRT release record: the second process to record a stream gets the first's back (its
        // sender then answers nothing: KKRTSender compares).
        let recorded1 = try await first.recordRelease(bucket: 3, instance: 0, digests: [1, 2, 3])
        let recorded2 = try await second.recordRelease(bucket: 3, instance: 0, digests: [9, 9, 9])
        XCTAssertEqual(recorded1, [1, 2, 3])
        XCTAssertEqual(recorded2, [1, 2, 3])
        source.remove()
    }

    func testANodeWithoutWorkersRefusesAJobThatAsksForThem() async throws {
        let fixture = try ConsortiumFixture()
        removeAtTearDown(fixture.directory)
        try fixture.importCSV(into: "bank-a", dataset: "customers", phones: phoneNumbers(200, seed: 73))
        try fixture.importCSV(into: "bank-b", dataset: "customers", phones: phoneNumbers(200, seed: 74))
        let nodes = try await fixture.consortium.startAll(logger: ConsortiumFixture.quietLogger)
        stopAtTearDown(nodes)
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
        removeAtTearDown(fixture.directory)
        let nodes = try await fixture.consortium.startAll(logger: ConsortiumFixture.quietLogger)
        stopAtTearDown(nodes)
        let pki = fixture.directory.appendingPathComponent("pki")
        let material = TLSMaterial(certificatePath: pki.appendingPathComponent("bank-b-worker.pem").path,
                                   privateKeyPath: pki.appendingPathComponent("bank-b-worker-key.pem").path,
                                   caCertificatePath: pki.appendingPathComponent("ca.pem").path)
        let transport = try PeerTransport(identity: NodeIdentity(nodeID: "bank-b", role: .worker), material: material,
                                          group: MultiThreadedEventLoopGroup.singleton)
        let bankA = try fixture.consortium.configuration(of: "bank-a").listen
        let response = try await transport.control(.with { $0.start = .with { $0.jobID = "job-1" } }, to: "bank-a", at: bankA)
        XCTAssertTrue(response.error.message.contains("worker certificate"), "\(response)")
        // A session: the node closes it without a word, where bank-b's node certificate gets the engine's
        // answer (an abort naming the unknown job): the refusal is the role's.
        let nodeTransport = try PeerTransport(identity: NodeIdentity(nodeID: "bank-b", role: .bank), material: TLSMaterial(
            certificatePath: pki.appendingPathComponent("bank-b.pem").path, privateKeyPath: pki.appendingPathComponent("bank-b-key.pem").path,
            caCertificatePath: pki.appendingPathComponent("ca.pem").path), group: MultiThreadedEventLoopGroup.singleton)
        for (t, answered) in [(transport, false), (nodeTransport, true)] {
            let got: Bool = try await t.withSession(jobID: "job-1", to: "bank-a", at: bankA) { channel in
                do { _ = try await channel.receive(); return true } catch { return false }
            }
            XCTAssertEqual(got, answered, "\(t.identity)")
        }
        // A worker dials only a worker: bank-a's node is refused as one.
        do {
            _ = try await transport.withSession(jobID: "job-1", to: "bank-a", at: bankA, role: .worker) { _ in true }
            XCTFail("a worker took bank-a's node for a worker")
        } catch {
            XCTAssertTrue("\(error)".contains("role bank, not worker"), "\(error)")
        }
        // And a node takes no worker for a node: bank-b's node dialling a worker's listener is refused.
        let rendezvous = SessionRendezvous()
        let workerListener = try await transport.bind(host: "127.0.0.1", port: 0, handler: PairedWorkerHandler(
            jobID: "job-2", stream: "worker-0", peer: "bank-a", rendezvous: rendezvous, timeout: .seconds(5)))
        let serving = Task { try? await workerListener.run() }
        defer { serving.cancel() }
        let workerAddress = PeerAddress(host: "127.0.0.1", port: workerListener.port)
        do {
            _ = try await nodeTransport.control(Mpcnode_V1_ControlRequest(), to: "bank-b", at: workerAddress)
            XCTFail("a node took a worker certificate for a node")
        } catch {
            XCTAssertTrue("\(error)".contains("worker certificate"), "\(error)")
        }
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
