import Foundation
import MPCCrypto
import MPCIdentity
import MPCProtocols
import MPCTestSupport
import MPCWire
import NIOCore
import NIOPosix
import NIOEmbedded
import XCTest
@testable import MPCTransport

/// A handler that answers control requests with an acknowledgement and runs the responder side of PSI
/// (or a scripted misbehaviour) on sessions.
struct TestHandler: InboundConnectionHandler {
    var session: @Sendable (TLSMessageChannel) async -> Void
    func handleControl(_ request: Mpcnode_V1_ControlRequest, from peer: NodeIdentity) async -> Mpcnode_V1_ControlResponse {
        .with { $0.error = .with { $0.message = "hello \(peer.nodeID) (\(peer.role.rawValue))" } }
    }
    func handleSession(_ open: Mpcnode_V1_SessionOpen, from peer: NodeIdentity, channel: TLSMessageChannel) async {
        await session(channel)
    }
}

final class TransportTests: XCTestCase {
    var pki: TestPKI!
    var group: MultiThreadedEventLoopGroup!

    override func setUp() async throws {
        pki = try TestPKI()
        group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    }

    /// Accept loops started by a test; awaited before the event loops stop.
    var listeners: [Task<Void, Error>] = []

    override func tearDown() async throws {
        for task in listeners { task.cancel(); _ = try? await task.value }
        try await group.shutdownGracefully()
        pki.remove()
    }

    func transport(_ id: String, role: NodeRole = .bank, pki: TestPKI? = nil, ca: URL? = nil,
                   options: TransportOptions = TransportOptions()) throws -> PeerTransport {
        let p = pki ?? self.pki!
        let (cert, key) = try p.issue(id, role: role)
        return try PeerTransport(identity: NodeIdentity(nodeID: id, role: role),
                                 material: TLSMaterial(certificatePath: cert.path, privateKeyPath: key.path,
                                                       caCertificatePath: (ca ?? self.pki.caPath).path),
                                 group: group, options: options)
    }

    func listen(_ t: PeerTransport, session: @escaping @Sendable (TLSMessageChannel) async -> Void = { _ in }) async throws -> (PeerAddress, Task<Void, Error>) {
        let listener = try await t.bind(host: "127.0.0.1", port: 0, handler: TestHandler(session: session))
        let task = Task { try await listener.run() }
        listeners.append(task)
        return (PeerAddress(host: "127.0.0.1", port: listener.port), task)
    }

    func testControlExchangeCarriesTheCertificateIdentity() async throws {
        let server = try transport("bank-b")
        let client = try transport("coordinator", role: .coordinator)
        let (address, task) = try await listen(server)
        defer { task.cancel() }
        let response = try await client.control(.with { $0.start = .with { $0.jobID = "j" } }, to: "bank-b", at: address)
        XCTAssertEqual(response.error.message, "hello coordinator (coordinator)")
    }

    func testPSIOverMutualTLSMatchesPlainIntersection() async throws {
        let a = (0..<3000).map { "acct-\($0 * 3)" }, b = (0..<2000).map { "acct-\($0 * 5)" }
        let expected = Set(a).intersection(Set(b))
        let sourceB = ArrayIdentifierSource(b)
        let bOutput = Locked<PSIParty.Output?>(nil)
        let tapped = Locked<[UInt8]>([])
        var options = TransportOptions()
        options.plaintextTap = { _, bytes in tapped.withValue { $0.append(contentsOf: bytes) } }
        let server = try transport("bank-b", options: options)
        let client = try transport("bank-a", options: options)
        let (address, task) = try await listen(server) { channel in
            let config = PSIParty.Configuration(jobID: "j1", group: .ristretto255, selfReceivesOutput: true,
                                                peerReceivesOutput: true, cardinalityOnly: false, batchSize: 512)
            let report = try? await PSIParty(configuration: config, source: sourceB, channel: channel).run()
            bOutput.withValue { $0 = report?.output }
        }
        defer { task.cancel() }
        let sourceA = ArrayIdentifierSource(a)
        let report = try await client.withSession(jobID: "j1", to: "bank-b", at: address) { channel in
            try await PSIParty(configuration: .init(jobID: "j1", group: .ristretto255, selfReceivesOutput: true,
                                                    peerReceivesOutput: true, cardinalityOnly: false, batchSize: 512),
                               source: sourceA, channel: channel).run()
        }
        guard case .intersection(let positions) = report.output else { return XCTFail("no intersection") }
        XCTAssertEqual(Set(positions.map { String(decoding: sourceA.values[$0], as: UTF8.self) }), expected)
        try await Task.sleep(for: .milliseconds(200))
        guard case .intersection(let bPositions)? = bOutput.value else { return XCTFail("B got no intersection") }
        XCTAssertEqual(Set(bPositions.map { String(decoding: sourceB.values[$0], as: UTF8.self) }), expected)
        // Every plaintext byte either node put into TLS: no identifier, no plain hash of one.
        let wire = WireIndex(tapped.value)
        XCTAssertGreaterThan(wire.bytes.count, (a.count + b.count) * 32)
        for id in a + b {
            XCTAssertFalse(wire.contains(Array(id.utf8)), id)
            for h in PlainHashes.of(Array(id.utf8)) { XCTAssertFalse(wire.contains(h)) }
        }
        XCTAssertTrue(WireIndex(tapped.value + Array(a[5].utf8)).contains(Array(a[5].utf8)), "the search finds a planted identifier")
    }

    func testCertificateFromAnotherCAIsRefused() async throws {
        let server = try transport("bank-b")
        let (address, task) = try await listen(server)
        defer { task.cancel() }
        let rogue = try TestPKI(name: "Rogue")
        defer { rogue.remove() }
        // A client whose certificate comes from another CA (it trusts our CA, so only its own cert is wrong).
        let client = try transport("bank-a", pki: rogue, ca: pki.caPath)
        do {
            _ = try await client.control(.with { $0.start = .with { $0.jobID = "j" } }, to: "bank-b", at: address)
            XCTFail("a certificate from another CA must be refused")
        } catch {
            XCTAssertTrue("\(error)".contains("bank-b"), "\(error)")
        }
        // And a server with a rogue certificate is refused by an honest client.
        let rogueServer = try transport("bank-c", pki: rogue, ca: pki.caPath)
        let (rogueAddress, rogueTask) = try await listen(rogueServer)
        defer { rogueTask.cancel() }
        let honest = try transport("bank-a")
        do {
            _ = try await honest.control(.with { $0.start = .with { $0.jobID = "j" } }, to: "bank-c", at: rogueAddress)
            XCTFail("a server certificate from another CA must be refused")
        } catch {
            XCTAssertTrue("\(error)".contains("TLS"), "\(error)")
        }
    }

    func testNodePresentingAnotherNodesNameIsRefused() async throws {
        // bank-b listens where the client expects bank-a: its certificate does not name bank-a.
        let impostor = try transport("bank-b")
        let (address, task) = try await listen(impostor)
        defer { task.cancel() }
        let client = try transport("coordinator", role: .coordinator)
        do {
            _ = try await client.control(.with { $0.start = .with { $0.jobID = "j" } }, to: "bank-a", at: address)
            XCTFail("a certificate for bank-b must not pass as bank-a")
        } catch {
            XCTAssertTrue("\(error)".contains("bank-a"), "\(error)")
        }
    }

    func testTruncatedTamperedAndOversizedFramesEndTheSessionWithAnError() async throws {
        let scripts: [(String, @Sendable (TLSMessageChannel) async -> Void, String)] = [
            ("garbage", { ch in try? await ch.send([0xff, 0xff, 0xff, 0x01, 0x02]); try? await Task.sleep(for: .milliseconds(300)) }, "malformed"),
            ("out of sequence", { ch in
                var f = Mpcnode_V1_SessionFrame(); f.sequence = 5
                f.psi = .with { $0.header = .with { $0.setSize = 1; $0.group = "ristretto255" } }
                try? await ch.send(try! f.serializedBytes()); try? await Task.sleep(for: .milliseconds(300))
            }, "sequence"),
            ("vanishes", { ch in await ch.abort() }, "disconnected"),
        ]
        let server = try transport("bank-b")
        for (name, script, expected) in scripts {
            let (address, task) = try await listen(server, session: script)
            defer { task.cancel() }
            let client = try transport("bank-a")
            do {
                _ = try await client.withSession(jobID: "j", to: "bank-b", at: address) { channel in
                    try await PSIParty(configuration: .init(jobID: "j", group: .ristretto255, selfReceivesOutput: true,
                                                            peerReceivesOutput: false, cardinalityOnly: false),
                                       source: ArrayIdentifierSource(["x", "y"]), channel: channel).run()
                }
                XCTFail("\(name): the session must fail")
            } catch {
                XCTAssertTrue("\(error)".contains(expected), "\(name): \(error)")
                XCTAssertTrue("\(error)".contains("bank-b"), "\(name): the error names the peer: \(error)")
            }
            task.cancel()
        }
    }

    /// Seeded random byte streams, cut into random chunks, into the frame decoder (finding 7): it only ever
    /// yields frames within its limits (the first one within the Hello limit), skips heartbeats, or throws
    /// a FramingError — never traps, never buffers a frame over the limit.
    func testFrameDecoderOnRandomStreams() throws {
        var rng = SplitMix(state: 77)
        var errors = 0, frames = 0
        for _ in 0..<400 {
            let channel = EmbeddedChannel(handler: ByteToMessageHandler(LengthPrefixedFrameDecoder(maximumFrameBytes: 512, maximumFirstFrameBytes: 64)))
            var stream: [UInt8] = []
            for _ in 0..<Int(rng.next() % 12) {
                switch rng.next() % 4 {
                case 0: stream += [0xFF, 0xFF, 0xFF, 0xFF]  // a heartbeat
                case 1:
                    let n = Int(rng.next() % 600)
                    stream += withUnsafeBytes(of: UInt32(n).bigEndian) { Array($0) } + (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                default: stream += (0..<Int(rng.next() % 16)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                }
            }
            var seen = 0
            do {
                var offset = 0
                while offset < stream.count {
                    let n = min(stream.count - offset, 1 + Int(rng.next() % 100))
                    try channel.writeInbound(channel.allocator.buffer(bytes: stream[offset..<(offset + n)]))
                    offset += n
                    while let frame: ByteBuffer = try channel.readInbound() {
                        XCTAssertLessThanOrEqual(frame.readableBytes, seen == 0 ? 64 : 512)
                        seen += 1
                    }
                }
                _ = try channel.finish()
            } catch is FramingError {
                errors += 1
            }
            frames += seen
        }
        XCTAssertGreaterThan(errors, 0)
        XCTAssertGreaterThan(frames, 0)
    }

    func testFrameDecoderRefusesOversizedAndTruncatedFrames() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(LengthPrefixedFrameDecoder(maximumFrameBytes: 16)))
        var big = channel.allocator.buffer(capacity: 8)
        big.writeInteger(UInt32(17))
        XCTAssertThrowsError(try channel.writeInbound(big)) { XCTAssertEqual($0 as? FramingError, .frameTooLarge(bytes: 17, limit: 16)) }
        let channel2 = EmbeddedChannel(handler: ByteToMessageHandler(LengthPrefixedFrameDecoder(maximumFrameBytes: 16)))
        var partial = channel2.allocator.buffer(capacity: 8)
        partial.writeInteger(UInt32(10)); partial.writeBytes([1, 2, 3])
        XCTAssertNoThrow(try channel2.writeInbound(partial))
        XCTAssertThrowsError(try channel2.finish()) { XCTAssertEqual($0 as? FramingError, .truncatedFrame(bufferedBytes: 7)) }
    }
}
