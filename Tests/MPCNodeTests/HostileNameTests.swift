import MPCBench
import Foundation
import MPCIdentity
import MPCNode
import MPCTransport
import MPCWire
import NIOPosix
import XCTest

/// A coordinator (or a party) with a valid certificate sends names no honest node would: job ids that
/// are paths, datasets and columns with separators or control characters, streams that are paths. The
/// node refuses each where the message enters, and nothing inside or outside its data folder changes.
final class HostileNameTests: XCTestCase {
    static let hostileJobIDs = [
        "../node", "../../outside", "/tmp/mpcnode-hostile", "..", ".", "", "a/b", "a\\b", "node.sqlite",
        "job\u{0}x", "job id", String(repeating: "a", count: 65), "job-\u{202e}x", "jobs/../../node",
    ]

    /// The coordinator's genuine identity and certificate, used to craft what a real coordinator never sends.
    struct HostileCoordinator {
        let transport: PeerTransport
        let group: MultiThreadedEventLoopGroup
        let bankA: PeerAddress

        init(_ fixture: ConsortiumFixture, identity: String = "coordinator", role: NodeRole = .coordinator) throws {
            let c = try fixture.consortium.configuration(of: identity)
            group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            transport = try PeerTransport(
                identity: NodeIdentity(nodeID: identity, role: role),
                material: TLSMaterial(certificatePath: c.tls.certificate.path, privateKeyPath: c.tls.privateKey.path,
                                      caCertificatePath: c.tls.caCertificate.path),
                group: group, logger: ConsortiumFixture.quietLogger)
            bankA = try fixture.consortium.configuration(of: "bank-a").listen
        }

        func propose(_ spec: Mpcnode_V1_JobSpec) async throws -> Mpcnode_V1_JobDecision {
            let response = try await transport.control(.with { $0.proposal = .with { $0.spec = spec } }, to: "bank-a", at: bankA)
            guard case .decision(let d)? = response.kind else { XCTFail("no decision: \(response)"); return .init() }
            return d
        }

        func start(_ jobID: String) async throws -> Mpcnode_V1_ControlResponse {
            try await transport.control(.with { $0.start = .with { $0.jobID = jobID } }, to: "bank-a", at: bankA)
        }
    }

    static func psiSpec(jobID: String) -> Mpcnode_V1_JobSpec {
        .with {
            $0.jobID = jobID
            $0.coordinator = "coordinator"
            $0.protocol = "psi"
            $0.parties = [.with { $0.nodeID = "bank-a"; $0.dataset = "customers"; $0.column = "phone" },
                          .with { $0.nodeID = "bank-b"; $0.dataset = "customers"; $0.column = "phone" }]
            $0.deliverTo = ["bank-a"]
            $0.group = "x25519"
        }
    }

    /// Every file below `folder` with its size and modification time.
    static func listing(_ folder: URL) -> [String: String] {
        var out: [String: String] = [:]
        guard let e = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: [.fileSizeKey, .contentModificationDateKey]) else { return out }
        for case let url as URL in e {
            let v = try? url.resourceValues(forKeys: [.fileSizeKey, .contentModificationDateKey])
            out[url.path] = "\(v?.fileSize ?? -1) \(v?.contentModificationDate?.timeIntervalSince1970 ?? 0)"
        }
        return out
    }

    func testHostileNamesInAProposalAreRefusedAndTouchNoFile() async throws {
        let fixture = try ConsortiumFixture()
        defer { fixture.remove() }
        try fixture.importCSV(into: "bank-a", dataset: "customers", phones: phoneNumbers(200, seed: 5))
        let bankA = try await fixture.consortium.start("bank-a", logger: ConsortiumFixture.quietLogger)
        let coordinator = try HostileCoordinator(fixture)
        let dataDirectory = bankA.configuration.dataDirectory
        let outside = dataDirectory.deletingLastPathComponent().deletingLastPathComponent()  // the consortium's folder
        let rowsBefore = try DatasetCatalog(store: bankA.store).describe("customers").rowCount

        // Hostile job ids: refused, then a start for the same id is refused too.
        for id in Self.hostileJobIDs {
            let outsideBefore = Self.listing(outside).filter { !$0.key.hasPrefix(dataDirectory.path) }
            let decision = try await coordinator.propose(Self.psiSpec(jobID: id))
            XCTAssertFalse(decision.accepted, id.debugDescription)
            XCTAssertTrue(decision.reason.contains("job id") && decision.reason.contains("not valid"), "\(id.debugDescription): \(decision.reason)")
            let start = try await coordinator.start(id)
            guard case .error(let e)? = start.kind else { XCTFail("start of \(id.debugDescription) was not refused: \(start)"); continue }
            XCTAssertTrue(e.message.contains("not valid"), e.message)
            XCTAssertEqual(Self.listing(outside).filter { !$0.key.hasPrefix(dataDirectory.path) }, outsideBefore, "\(id.debugDescription) touched a file outside the data folder")
            XCTAssertTrue(FileManager.default.fileExists(atPath: bankA.configuration.databasePath.path), id.debugDescription)
        }

        // Hostile names elsewhere in the spec: a dataset, a column, a node, a model job.
        let mutations: [(String, (inout Mpcnode_V1_JobSpec) -> Void)] = [
            ("dataset", { $0.parties[0].dataset = "../node" }),
            ("column", { $0.parties[0].column = "phone\n\"; DROP TABLE audit_log; --" }),
            ("party", { $0.parties[1].nodeID = "../bank-b" }),
            ("recipient", { $0.deliverTo = ["bank-a/../x"] }),
            ("coordinator", { $0.coordinator = "" }),
            ("value column", { $0.protocol = "union-sum"; $0.sets.aggregator = "regulator"; $0.sets.valueColumn = String(repeating: "v", count: 4000) }),
            ("group-by column", { $0.protocol = "secure-sum"; $0.aggregate.groupBy = "region\u{0}" }),
            ("mixer", { $0.protocol = "watchlist"; $0.sets.aggregator = "regulator"; $0.sets.mixer = "../bank-b" }),
            ("model job", { $0.protocol = "predict"; $0.predict.modelJob = "../../node" }),
            ("evaluation dataset", { $0.protocol = "train-lr"; $0.training.evalDataset = "x/y" }),
        ]
        for (field, mutate) in mutations {
            var spec = Self.psiSpec(jobID: "job-\(field.replacingOccurrences(of: " ", with: "-"))")
            mutate(&spec)
            let decision = try await coordinator.propose(spec)
            XCTAssertFalse(decision.accepted, field)
            XCTAssertTrue(decision.reason.contains(field) && decision.reason.contains("not valid"), "\(field): \(decision.reason)")
            XCTAssertLessThan(decision.reason.utf8.count, 400, "\(field): a long hostile value is cut in the message")
        }

        // Every refusal is in the audit log, the chain verifies, the data is intact, no job was recorded.
        let audit = AuditLog(store: bankA.store)
        let invalid = try audit.records(limit: 10_000).filter { $0.event == "job.proposal.invalid" }
        XCTAssertEqual(invalid.count, Self.hostileJobIDs.count + mutations.count)
        XCTAssertNil(try audit.verify())
        XCTAssertEqual(try DatasetCatalog(store: bankA.store).describe("customers").rowCount, rowsBefore)
        XCTAssertEqual(try JobRepository(store: bankA.store).list(limit: 100).count, 0)

        // The node keeps serving: an honest proposal is accepted.
        let honest = try await coordinator.propose(Self.psiSpec(jobID: "job-0123456789ab"))
        XCTAssertTrue(honest.accepted, honest.reason)

        await bankA.stop()
        try await coordinator.group.shutdownGracefully()
    }

    func testAHostileSessionNameIsAnsweredWithAnAbort() async throws {
        let fixture = try ConsortiumFixture()
        defer { fixture.remove() }
        let bankA = try await fixture.consortium.start("bank-a", logger: ConsortiumFixture.quietLogger)
        // bank-b, genuine certificate, opens sessions no honest node would.
        let peer = try HostileCoordinator(fixture, identity: "bank-b", role: .bank)
        for (jobID, stream) in [("../node", ""), ("job-0123456789ab", "../../node"), (String(repeating: "j", count: 5000), "ring")] {
            let frame = try await peer.transport.withSession(jobID: jobID, stream: stream, to: "bank-a", at: peer.bankA) { channel in
                try await Mpcnode_V1_SessionFrame(serializedBytes: channel.receive())
            }
            guard case .abort(let a)? = frame.body else { XCTFail("no abort for \(jobID.prefix(20)) / \(stream): \(frame)"); continue }
            XCTAssertLessThan(a.reason.utf8.count, 400, "the hostile id is cut in the reason")
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: bankA.configuration.databasePath.path))
        XCTAssertNil(try AuditLog(store: bankA.store).verify())
        await bankA.stop()
        try await peer.group.shutdownGracefully()
    }
}
