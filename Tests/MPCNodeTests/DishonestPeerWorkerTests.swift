import MPCBench
import Foundation
import GRDB
import MPCCrypto
import MPCIdentity
@testable import MPCNode
import MPCProtocols
import MPCTestSupport
import MPCTransport
import MPCWire
import NIOPosix
import XCTest

/// A dishonest member's worker against real nodes and real `mpcnode worker` processes: bank-b's node is
/// honest up to the agreement, then its workers are launched by a command that starts nothing, and this
/// test listens in their place with bank-b's own worker certificate. It knows everything bank-b knows
/// (it reads bank-b's sealed scratch state) and answers bank-a's worker 0 with messages an honest worker
/// never sends. Each time bank-a's worker refuses before sending anything of a bucket, the job fails on
/// every node with a reason, bank-a stores no result, its dataset and database are intact, the job
/// leaves nothing in its jobs folder, and bank-a's node goes on to run an honest job.
final class DishonestPeerWorkerTests: XCTestCase {
    /// What the crafted worker answers to bank-a's worker hello, given bank-b's saved agreement.
    struct Craft: Sendable {
        let name: String
        /// The frames sent, in order (sequence numbers from 0).
        let frames: @Sendable (_ state: BucketedPSIState, _ ownSetSize: Int, _ hello: Mpcnode_V1_BucketHello) -> [Mpcnode_V1_SessionFrame.OneOf_Body]
        /// What bank-a's reason must say.
        let reason: String
        /// Whether bank-a may have sent its first bucket before refusing (only after a valid agreement).
        let bucketMaySend: Bool
    }

    static func honestResume(_ state: BucketedPSIState, _ ownSetSize: Int, workerIndex: Int = 0, nextBucket: Int = 0) -> Mpcnode_V1_SessionFrame.OneOf_Body {
        .psi(.with { $0.bucketHello = .with {
            $0.setSize = UInt64(ownSetSize)
            $0.bucketCount = UInt32(state.bucketCount)
            $0.protocol = "ecdh"
            $0.workerCount = 2
            $0.workerIndex = UInt32(workerIndex)
            $0.resume = true
            $0.keyCheck = Data(state.key.check)
            $0.nextBucket = UInt32(nextBucket)
        } })
    }

    static let crafts: [Craft] = [
        Craft(name: "a fresh hello with a new key share", frames: { state, n, _ in
            [.psi(.with { $0.bucketHello = .with {
                $0.setSize = UInt64(n); $0.bucketCount = UInt32(state.bucketCount); $0.protocol = "ecdh"
                $0.workerCount = 2; $0.share = Data(repeating: 7, count: BucketKey.shareLength)
            } })]
        }, reason: "the peer no longer holds this job's state", bucketMaySend: false),
        Craft(name: "the right key from worker 1", frames: { state, n, _ in [honestResume(state, n, workerIndex: 1)] },
              reason: "pairs only with the worker of the same index", bucketMaySend: false),
        Craft(name: "a next bucket outside worker 0's range", frames: { state, n, _ in [honestResume(state, n, nextBucket: state.bucketCount)] },
              reason: "another bucket key, bucket count, set size or bucket range", bucketMaySend: false),
        Craft(name: "another key", frames: { state, n, _ in
            var s = state
            s.key = try! BucketKey(shares: [[UInt8](repeating: 1, count: BucketKey.shareLength), [UInt8](repeating: 2, count: BucketKey.shareLength)])
            return [honestResume(s, n)]
        }, reason: "another bucket key, bucket count, set size or bucket range", bucketMaySend: false),
        Craft(name: "a set of 10^12", frames: { state, _, _ in [honestResume(state, 1_000_000_000_000)] },
              reason: "1000000000000", bucketMaySend: false),
        Craft(name: "more blinded elements than its bucket holds, after a valid agreement", frames: { state, n, _ in
            let capacity = BucketSizing.capacity(setSize: n, buckets: state.bucketCount)
            var point = [UInt8](repeating: 0, count: 32)
            point[0] = 9
            return [honestResume(state, n), .psi(.with { $0.bucketsReady = .with { $0.overflow = false } }),
                    .psi(.with { $0.header = .with { $0.setSize = UInt64(capacity); $0.group = "x25519"; $0.bucket = 0 } }),
                    .psi(.with { $0.blinded = .with { $0.offset = 0; $0.elements = Data((0...capacity).flatMap { _ in point }) } })]
        }, reason: "more elements than the announced", bucketMaySend: true),
        Craft(name: "a batch that is not whole group elements, after a valid agreement", frames: { state, n, _ in
            let capacity = BucketSizing.capacity(setSize: n, buckets: state.bucketCount)
            return [honestResume(state, n), .psi(.with { $0.bucketsReady = .with { $0.overflow = false } }),
                    .psi(.with { $0.header = .with { $0.setSize = UInt64(capacity); $0.group = "x25519"; $0.bucket = 0 } }),
                    .psi(.with { $0.blinded = .with { $0.offset = 0; $0.elements = Data(repeating: 0xAB, count: 39) } })]
        }, reason: "not a multiple of 32", bucketMaySend: true),
    ]

    func testACraftedPeerWorkerGetsARefusalAndChangesNothingStored() async throws {
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: DaemonProcessTests.binary.path), "build mpcnode first (swift build --build-tests)")
        let fixture = try ConsortiumFixture(workerExecutable: DaemonProcessTests.binary)
        defer { fixture.remove() }
        // bank-b's node launches its workers with a command that starts nothing: this test is its worker.
        let bankBFile = try fixture.consortium.configurationFile(of: "bank-b")
        let text = try String(contentsOf: bankBFile, encoding: .utf8)
        let launch = try XCTUnwrap(text.range(of: "launch: local\n  executable: \(DaemonProcessTests.binary.path)"))
        try text.replacingCharacters(in: launch, with: "launch: command\n  command: [/bin/true]").write(to: bankBFile, atomically: true, encoding: .utf8)

        let a = phoneNumbers(1200, seed: 81, universe: 4000), b = phoneNumbers(1100, seed: 82, universe: 4000)
        try fixture.importCSV(into: "bank-a", dataset: "customers", phones: a)
        try fixture.importCSV(into: "bank-b", dataset: "customers", phones: b)
        let configA = try fixture.consortium.configuration(of: "bank-a"), configB = try fixture.consortium.configuration(of: "bank-b")
        let nodes = try await fixture.consortium.startAll(logger: ConsortiumFixture.quietLogger)
        var stopped = false
        defer { if !stopped { Task { for n in nodes.values { await n.stop() } } } }
        let coordinator = nodes["coordinator"]!, bankA = nodes["bank-a"]!

        let table = NodeStore.quote(NodeStore.tableName(forDataset: "customers"))
        func storedRows() throws -> [String] {
            try bankA.store.read { db in try Row.fetchAll(db, sql: "SELECT * FROM \(table) ORDER BY _row").map(\.description) }
        }
        let rowsBefore = try storedRows()
        XCTAssertEqual(rowsBefore.count, 1200)

        // bank-b's worker 0, as bank-b's certificate makes it.
        let pki = fixture.directory.appendingPathComponent("pki")
        let transport = try PeerTransport(identity: NodeIdentity(nodeID: "bank-b", role: .worker), material: TLSMaterial(
            certificatePath: pki.appendingPathComponent("bank-b-worker.pem").path, privateKeyPath: pki.appendingPathComponent("bank-b-worker-key.pem").path,
            caCertificatePath: pki.appendingPathComponent("ca.pem").path), group: MultiThreadedEventLoopGroup.singleton)
        let listen = try XCTUnwrap(configB.workers).listen.address(index: 0)

        for craft in Self.crafts {
            let s = JobSubmission.phonePSI(deliverTo: ["bank-a", "bank-b"], buckets: 4, psiProtocol: "ecdh", workers: 2)
            let rendezvous = SessionRendezvous()
            let jobID = try await coordinator.engine.submit(s)
            let listener = try await transport.bind(host: listen.host, port: listen.port, handler: PairedWorkerHandler(
                jobID: jobID, stream: "worker-0", peer: "bank-a", rendezvous: rendezvous, timeout: .seconds(60)))
            let serving = Task { try? await listener.run() }
            let channel = try await rendezvous.claim(jobID: jobID, stream: "worker-0", peer: "bank-a", timeout: .seconds(60))
            // bank-b's agreement, as its node sealed it in its scratch database.
            let source = try SQLiteIdentifierSource.reopen(jobID: jobID, scratchDirectory: configB.jobsDirectory)
            let checkpoints = try SQLiteBucketCheckpoints(source: source, sealKey: JobSealKey.load(dataDirectory: configB.dataDirectory))
            var saved: BucketedPSIState?
            for _ in 0..<100 where saved == nil {
                saved = try await checkpoints.load()
                if saved == nil { try await Task.sleep(for: .milliseconds(100)) }
            }
            let state = try XCTUnwrap(saved, craft.name)
            // bank-a's scratch copy exists while its worker runs (the check below that it is gone means something).
            XCTAssertTrue(FileManager.default.fileExists(atPath: configA.jobsDirectory.appendingPathComponent("\(jobID).sqlite").path), craft.name)

            // bank-a's worker speaks first: its resume hello, naming worker 0 of 2 and its range's start.
            let first = try Mpcnode_V1_SessionFrame(serializedBytes: try await channel.receive())
            guard case .psi(let m)? = first.body, case .bucketHello(let hello)? = m.body else { return XCTFail("\(craft.name): \(first)") }
            XCTAssertTrue(hello.resume && hello.workerIndex == 0 && hello.workerCount == 2 && hello.nextBucket == 0, "\(hello)")
            XCTAssertEqual([UInt8](hello.keyCheck), state.key.check)
            for (i, body) in craft.frames(state, source.count, hello).enumerated() {
                var frame = Mpcnode_V1_SessionFrame()
                frame.sequence = UInt64(i)
                frame.body = body
                try? await channel.send(try frame.serializedBytes())
            }
            // What bank-a's worker sends after that: nothing of a bucket unless the agreement was valid.
            var after: [String] = []
            while let bytes = try? await channel.receive() {
                let frame = try Mpcnode_V1_SessionFrame(serializedBytes: bytes)
                switch frame.body {
                case .abort: after.append("abort")
                case .psi(let p)?:
                    switch p.body {
                    case .bucketsReady?: after.append("ready")
                    default: after.append("bucket")
                    }
                default: after.append("other")
                }
            }
            if !craft.bucketMaySend {
                XCTAssertEqual(after, ["abort"], "\(craft.name): bank-a's worker sent \(after)")
            } else {
                XCTAssertEqual(after.last, "abort", "\(craft.name): \(after)")
            }
            await channel.close()
            serving.cancel()
            await listener.close()

            // The job fails on bank-a and at the coordinator with the worker's reason.
            let failed = try await ConsortiumFixture.waitForFinal(bankA, jobID: jobID, seconds: 60)
            XCTAssertEqual(failed.state, .failed, craft.name)
            XCTAssertTrue((failed.reason ?? "").contains(craft.reason), "\(craft.name): \(failed.reason ?? "")")
            let atCoordinator = try await ConsortiumFixture.waitForFinal(coordinator, jobID: jobID, seconds: 60)
            XCTAssertEqual(atCoordinator.state, .failed, craft.name)
            _ = try await ConsortiumFixture.waitForFinal(nodes["bank-b"]!, jobID: jobID, seconds: 60)
            // Nothing stored, nothing changed, nothing left behind.
            XCTAssertThrowsError(try JobRepository(store: bankA.store).result(jobID: jobID, limit: 10), craft.name) { error in
                XCTAssertTrue("\(error)".contains("has no result"), "\(error)")
            }
            XCTAssertEqual(try storedRows(), rowsBefore, craft.name)
            XCTAssertEqual(try bankA.store.read { db in try String.fetchOne(db, sql: "PRAGMA integrity_check") }, "ok")
            let events = try AuditLog(store: bankA.store).records(jobID: jobID).map(\.event)
            XCTAssertTrue(events.contains("job.failed"), "\(craft.name): \(events)")
            var left: [String] = []
            for _ in 0..<100 {
                left = try FileManager.default.contentsOfDirectory(atPath: configA.jobsDirectory.path).filter { $0.hasPrefix(jobID) }
                if left.isEmpty { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            XCTAssertEqual(left, [], "\(craft.name): bank-a kept \(left)")
        }

        // bank-a's node still runs jobs: the honest one-process job gives the plain intersection.
        let honest = JobSubmission.phonePSI(deliverTo: ["bank-a", "bank-b"], buckets: 2)
        let jobID = try await coordinator.engine.submit(honest)
        let job = try await ConsortiumFixture.waitForFinal(bankA, jobID: jobID, seconds: 60)
        XCTAssertEqual(job.state, .succeeded, job.reason ?? "")
        let result = try JobRepository(store: bankA.store).result(jobID: jobID, limit: 100_000).identifiers ?? []
        XCTAssertEqual(Set(result), Set(a.map(digits)).intersection(Set(b.map(digits))))
        for n in nodes.values { await n.stop() }
        stopped = true
    }
}
