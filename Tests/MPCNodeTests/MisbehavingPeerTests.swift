import MPCBench
import Foundation
import MPCCrypto
import Logging
import MPCIdentity
import MPCNode
import MPCTransport
import MPCWire
import NIOPosix
import XCTest

/// A peer with a valid certificate that accepts the job and then sends a tampered or truncated stream.
/// bank-a's job must end with an error naming the peer, and nothing bank-a stored may change.
final class MisbehavingPeerTests: XCTestCase {
    struct FakeBank: InboundConnectionHandler {
        let misbehave: @Sendable (TLSMessageChannel) async -> Void
        func handleControl(_ request: Mpcnode_V1_ControlRequest, from peer: NodeIdentity) async -> Mpcnode_V1_ControlResponse {
            switch request.kind {
            case .proposal(let p): return .with { $0.decision = .with { $0.jobID = p.spec.jobID; $0.accepted = true; $0.inputRows = 100 } }
            default: return .with { $0.ack = .init() }
            }
        }
        func handleSession(_ open: Mpcnode_V1_SessionOpen, from peer: NodeIdentity, channel: TLSMessageChannel) async {
            await misbehave(channel)
        }
    }

    static func frame(_ sequence: UInt64, _ fill: (inout Mpcnode_V1_PsiMessage) -> Void) -> [UInt8] {
        var f = Mpcnode_V1_SessionFrame()
        f.sequence = sequence
        var m = Mpcnode_V1_PsiMessage()
        fill(&m)
        f.psi = m
        return try! f.serializedBytes()
    }

    func testTamperedAndTruncatedStreamsFailTheJobAndChangeNothing() async throws {
        // A bucketed PSI opens with a hello and a readiness (Protocols/psi-buckets.md); one bucket here.
        let hello = Self.frame(0) { $0.bucketHello = .with { $0.setSize = 100; $0.bucketCount = 1; $0.share = Data(repeating: 3, count: 32) } }
        let ready = Self.frame(1) { $0.bucketsReady = .with { $0.overflow = false } }
        let header = Self.frame(2) { $0.header = .with { $0.setSize = 100; $0.group = "x25519" } }
        var tampered = Self.frame(3) { $0.blinded = .with { $0.offset = 0; $0.elements = Data(repeating: 7, count: 64) } }
        tampered[tampered.count - 40] ^= 0xff  // a flipped byte inside the element bytes keeps the frame decodable
        let flipped = tampered
        let scripts: [(String, @Sendable (TLSMessageChannel) async -> Void, String)] = [
            ("tampered protobuf", { ch in
                for f in [hello, ready, header] { try? await ch.send(f) }
                try? await ch.send([0x12, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01])  // length-delimited field running past the end
                try? await Task.sleep(for: .seconds(1))
            }, "malformed message from bank-b"),
            ("element batch of a wrong size", { ch in
                for f in [hello, ready, header] { try? await ch.send(f) }
                try? await ch.send(Self.frame(3) { $0.blinded = .with { $0.offset = 0; $0.elements = Data(repeating: 9, count: 33) } })
                try? await Task.sleep(for: .seconds(1))
            }, "not a multiple of 32"),
            ("truncated stream", { ch in
                for f in [hello, ready, header] { try? await ch.send(f) }
                try? await ch.send(flipped)
                await ch.abort()  // the connection ends before the stream does (each time bank-a resumes)
            }, "bank-b"),
            ("a bucket key share of 5 bytes", { ch in
                try? await ch.send(Self.frame(0) { $0.bucketHello = .with { $0.setSize = 100; $0.bucketCount = 1; $0.share = Data(repeating: 3, count: 5) } })
                try? await Task.sleep(for: .seconds(1))
            }, "share of 5 bytes"),
            ("a million buckets", { ch in
                try? await ch.send(Self.frame(0) { $0.bucketHello = .with { $0.setSize = 100; $0.bucketCount = 1_000_000; $0.share = Data(repeating: 3, count: 32) } })
                try? await Task.sleep(for: .seconds(1))
            }, "allows 1 to 4096"),
            ("a set size beyond any limit", { ch in
                try? await ch.send(Self.frame(0) { $0.bucketHello = .with { $0.setSize = .max; $0.bucketCount = 1; $0.share = Data(repeating: 3, count: 32) } })
                try? await Task.sleep(for: .seconds(1))
            }, "is refused"),
            ("a resume of a job bank-a never ran", { ch in
                try? await ch.send(Self.frame(0) { $0.bucketHello = .with { $0.setSize = 100; $0.bucketCount = 1; $0.resume = true; $0.keyCheck = Data(repeating: 1, count: 32) } })
                try? await Task.sleep(for: .seconds(1))
            }, "cannot resume"),
            ("a header of another bucket", { ch in
                for f in [hello, ready] { try? await ch.send(f) }
                try? await ch.send(Self.frame(2) { $0.header = .with { $0.setSize = 100; $0.group = "x25519"; $0.bucket = 7 } })
                try? await Task.sleep(for: .seconds(1))
            }, "expected bucket 0"),
        ]
        try await run(scripts, psiProtocol: nil)
    }

    /// The same for `--protocol kkrt` (Protocols/psi-oprf.md), bank-a the receiver: a hello naming
    /// another protocol, a short or identity base-OT choice, and more OPRF values than bank-b's set allows.
    func testCraftedKKRTMessagesFailTheJobAndChangeNothing() async throws {
        let hello = Self.frame(0) { $0.bucketHello = .with { $0.setSize = 100; $0.bucketCount = 1; $0.share = Data(repeating: 3, count: 32); $0.protocol = "kkrt" } }
        let ready = Self.frame(1) { $0.bucketsReady = .with { $0.overflow = false } }
        let validPoints = Data(GroupElement.pack((0..<512).map { _ in Ristretto255.random() }))
        let scripts: [(String, @Sendable (TLSMessageChannel) async -> Void, String)] = [
            ("a hello naming ecdh", { ch in
                try? await ch.send(Self.frame(0) { $0.bucketHello = .with { $0.setSize = 100; $0.bucketCount = 1; $0.share = Data(repeating: 3, count: 32); $0.protocol = "ecdh" } })
                try? await Task.sleep(for: .seconds(1))
            }, "PSI protocol"),
            ("a base-OT choice of two points", { ch in
                for f in [hello, ready] { try? await ch.send(f) }
                try? await ch.send(Self.frame(2) { $0.kkrtChoice = .with { $0.points = validPoints.prefix(64) } })
                try? await Task.sleep(for: .seconds(1))
            }, "bytes of base-OT points"),
            ("identity base-OT points", { ch in
                for f in [hello, ready] { try? await ch.send(f) }
                try? await ch.send(Self.frame(2) { $0.kkrtChoice = .with { $0.points = Data(count: 512 * 32) } })
                try? await Task.sleep(for: .seconds(1))
            }, "base-OT points"),
            ("more values than 3 a padded element", { ch in
                for f in [hello, ready] { try? await ch.send(f) }
                try? await ch.send(Self.frame(2) { $0.kkrtChoice = .with { $0.points = validPoints } })
                // 4,816 bytes: more than 300 values, or not whole values, for every value length 8…16.
                try? await ch.send(Self.frame(3) { $0.kkrtValues = .with { $0.values = Data(repeating: 5, count: 4816) } })
                try? await Task.sleep(for: .seconds(1))
            }, "bytes of values"),
        ]
        try await run(scripts, psiProtocol: "kkrt")
    }

    func run(_ scripts: [(String, @Sendable (TLSMessageChannel) async -> Void, String)], psiProtocol: String?) async throws {
        for (name, script, expected) in scripts {
            let fixture = try ConsortiumFixture()
            defer { fixture.remove() }
            try fixture.importCSV(into: "bank-a", dataset: "customers", phones: phoneNumbers(200, seed: 11))
            let coordinator = try await fixture.consortium.start("coordinator", logger: ConsortiumFixture.quietLogger)
            let bankA = try await fixture.consortium.start("bank-a", logger: ConsortiumFixture.quietLogger)
            // The fake bank-b listens where bank-b should, with bank-b's genuine certificate.
            let b = try fixture.consortium.configuration(of: "bank-b")
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            let transport = try PeerTransport(
                identity: NodeIdentity(nodeID: "bank-b", role: .bank),
                material: TLSMaterial(certificatePath: b.tls.certificate.path, privateKeyPath: b.tls.privateKey.path,
                                      caCertificatePath: b.tls.caCertificate.path),
                group: group, logger: ConsortiumFixture.quietLogger)
            let listener = try await transport.bind(host: "127.0.0.1", port: b.listen.port, handler: FakeBank(misbehave: script))
            let serving = Task { try await listener.run() }

            let before = try DatasetCatalog(store: bankA.store).describe("customers")
            let auditBefore = try AuditLog(store: bankA.store).records(limit: 10_000).count
            let submission = JobSubmission.phonePSI(psiProtocol: psiProtocol)
            let jobID = try await coordinator.engine.submit(submission)
            let job = try await ConsortiumFixture.waitForFinal(bankA, jobID: jobID, seconds: 30)
            XCTAssertEqual(job.state, .failed, name)
            XCTAssertTrue(job.reason?.contains(expected) == true, "\(name): \(job.reason ?? "")")
            let coordinatorView = try await ConsortiumFixture.waitForFinal(coordinator, jobID: jobID, seconds: 30)
            XCTAssertEqual(coordinatorView.state, .failed, name)

            // Nothing stored changed: same dataset, no result, audit records only appended and intact.
            let after = try DatasetCatalog(store: bankA.store).describe("customers")
            XCTAssertEqual(after.rowCount, before.rowCount, name)
            XCTAssertEqual(after.sourceSHA256, before.sourceSHA256, name)
            XCTAssertThrowsError(try JobRepository(store: bankA.store).result(jobID: jobID, limit: 1), name)
            XCTAssertGreaterThan(try AuditLog(store: bankA.store).records(limit: 10_000).count, auditBefore, name)
            XCTAssertNil(try AuditLog(store: bankA.store).verify(), name)
            XCTAssertFalse(FileManager.default.fileExists(atPath: bankA.configuration.jobsDirectory.appendingPathComponent("\(jobID).sqlite").path),
                           "\(name): the job's scratch snapshot is removed")

            serving.cancel()
            await listener.close()
            _ = try? await serving.value  // the accept loop has served what it accepted before the group stops
            await bankA.stop()
            await coordinator.stop()
            try await group.shutdownGracefully()
        }
    }
}
