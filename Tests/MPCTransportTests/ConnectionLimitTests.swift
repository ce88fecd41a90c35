import Foundation
import MPCIdentity
import MPCProtocols
import MPCTestSupport
import MPCWire
import NIOCore
import NIOPosix
import XCTest
@testable import MPCTransport

/// Connections that a stranger or a member holds open to tie up a node (finding 16), a link left
/// waiting on a slow phase of its job (finding 21), and an impostor at a peer's address (finding 20).
extension TransportTests {
    /// A plain TCP connection that never speaks TLS: the stranger's side of a flood.
    func rawConnection(to address: PeerAddress) async throws -> Channel {
        try await ClientBootstrap(group: group).connect(host: address.host, port: address.port).get()
    }

    /// Seconds until `channel` is closed by the other side, or nil if it is still open after `limit`.
    static func secondsUntilClosed(_ channel: Channel, limit: Double) async -> Double? {
        let start = Date()
        let closed = Locked(false)
        channel.closeFuture.whenComplete { _ in closed.withValue { $0 = true } }
        while Date().timeIntervalSince(start) < limit {
            if closed.value { return Date().timeIntervalSince(start) }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return nil
    }

    func testSilentAndTricklingConnectionsAreClosedAtTheHandshakeDeadline() async throws {
        var options = TransportOptions()
        options.handshakeTimeout = .seconds(1)
        let server = try transport("bank-b", options: options)
        let (address, task) = try await listen(server)
        defer { task.cancel() }
        let silent = try await rawConnection(to: address)
        let trickling = try await rawConnection(to: address)
        // A well-formed TLS record header announcing a 512-byte handshake record, then its body one byte
        // every 100 ms: never a complete ClientHello within the deadline.
        let trickle = Task {
            for byte in [0x16, 0x03, 0x01, 0x02, 0x00] + [UInt8](repeating: 0x01, count: 95) {
                if Task.isCancelled { break }
                var b = trickling.allocator.buffer(capacity: 1)
                b.writeInteger(byte)
                try? await trickling.writeAndFlush(b).get()
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
        defer { trickle.cancel() }
        async let silentClosed = Self.secondsUntilClosed(silent, limit: 10)
        async let tricklingClosed = Self.secondsUntilClosed(trickling, limit: 10)
        let (s, t) = await (silentClosed, tricklingClosed)
        XCTAssertNotNil(s, "a connection that never starts its handshake is closed")
        XCTAssertNotNil(t, "a connection that trickles its handshake is closed")
        XCTAssertGreaterThanOrEqual(s ?? 0, 0.5, "not before its deadline")
        XCTAssertGreaterThanOrEqual(t ?? 0, 0.5, "the trickle is not refused as garbage: it is cut at the deadline")
        XCTAssertEqual(server.admission.pendingHandshakes, 0)
        // The node still serves members.
        let client = try transport("bank-a")
        let response = try await client.control(.with { $0.start = .with { $0.jobID = "j" } }, to: "bank-b", at: address)
        XCTAssertEqual(response.error.message, "hello bank-a (bank)")
    }

    /// A member whose handshake completes but who never sends its Hello is closed at the deadline too;
    /// a member that sends it in time is served.
    func testAMemberThatNeverSendsItsHelloIsClosedAtTheDeadline() async throws {
        var options = TransportOptions()
        options.handshakeTimeout = .seconds(1)
        let server = try transport("bank-b", options: options)
        let (address, task) = try await listen(server)
        defer { task.cancel() }
        let client = try transport("bank-a")
        let silent = try await client.connect(to: "bank-b", at: address)
        let closed = await Self.secondsUntilClosed(silent.channel.channel, limit: 10)
        XCTAssertNotNil(closed, "a member's connection without a Hello is closed")
        XCTAssertGreaterThanOrEqual(closed ?? 0, 0.5, "not before its deadline")
        let response = try await client.control(.with { $0.start = .with { $0.jobID = "j" } }, to: "bank-b", at: address)
        XCTAssertEqual(response.error.message, "hello bank-a (bank)")
    }

    func testAFloodOfStrangersEvictsItselfAndAMemberStillGetsThrough() async throws {
        var options = TransportOptions()
        options.maximumPendingHandshakes = 16
        let server = try transport("bank-b", options: options)
        let (address, task) = try await listen(server)
        defer { task.cancel() }
        var flood: [Channel] = []
        for _ in 0..<64 { flood.append(try await rawConnection(to: address)) }
        defer { for c in flood { c.close(promise: nil) } }
        // Wait until the listener has seen them all.
        for _ in 0..<100 where server.admission.evictedHandshakes < 48 { try await Task.sleep(for: .milliseconds(20)) }
        XCTAssertLessThanOrEqual(server.admission.pendingHandshakes, 16, "never more than the limit in their handshake")
        XCTAssertGreaterThanOrEqual(server.admission.evictedHandshakes, 48, "the oldest strangers were closed to make room")
        // A member connecting in the middle of the flood is served (the flood goes on meanwhile).
        let more = Task { [group] in
            var extra: [Channel] = []
            for _ in 0..<32 { if let c = try? await ClientBootstrap(group: group!).connect(host: address.host, port: address.port).get() { extra.append(c) } }
            return extra
        }
        let client = try transport("bank-a")
        let response = try await client.control(.with { $0.start = .with { $0.jobID = "j" } }, to: "bank-b", at: address)
        XCTAssertEqual(response.error.message, "hello bank-a (bank)")
        for c in await more.value { c.close(promise: nil) }
    }

    /// A PSI session between two members while strangers keep 150 connections coming (bounded, loopback):
    /// the job finishes with the right result; both durations are printed for comparison.
    func testAPSIJobFinishesDuringAConnectionFlood() async throws {
        let a = (0..<2000).map { "acct-\($0 * 3)" }, b = (0..<1500).map { "acct-\($0 * 5)" }
        let expected = Set(a).intersection(Set(b))
        var options = TransportOptions()
        options.maximumPendingHandshakes = 32
        let server = try transport("bank-b", options: options)
        let (address, task) = try await listen(server) { channel in
            let config = PSIParty.Configuration(jobID: "j", group: .x25519, selfReceivesOutput: false, peerReceivesOutput: true,
                                                cardinalityOnly: false, batchSize: 256)
            _ = try? await PSIParty(configuration: config, source: ArrayIdentifierSource(b), channel: channel).run()
        }
        defer { task.cancel() }
        let client = try transport("bank-a")
        func run() async throws -> (Set<String>, Double) {
            let started = Date(), source = ArrayIdentifierSource(a)
            let report = try await client.withSession(jobID: "j", to: "bank-b", at: address) { channel in
                try await PSIParty(configuration: .init(jobID: "j", group: .x25519, selfReceivesOutput: true, peerReceivesOutput: false,
                                                        cardinalityOnly: false, batchSize: 256), source: source, channel: channel).run()
            }
            guard case .intersection(let positions) = report.output else { return ([], 0) }
            return (Set(positions.map { String(decoding: source.values[$0], as: UTF8.self) }), Date().timeIntervalSince(started))
        }
        let (quiet, quietSeconds) = try await run()
        XCTAssertEqual(quiet, expected)
        let flooding = Locked(true)
        let floods = (0..<4).map { _ in
            Task { [group] in
                var open: [Channel] = []
                while flooding.value {
                    if let c = try? await ClientBootstrap(group: group!).connect(host: address.host, port: address.port).get() { open.append(c) }
                    if open.count >= 40 { for c in open.prefix(20) { c.close(promise: nil) }; open.removeFirst(20) }
                }
                for c in open { c.close(promise: nil) }
            }
        }
        // The flood is under way (strangers already evicting each other) before the job starts.
        for _ in 0..<200 where server.admission.evictedHandshakes < 50 { try await Task.sleep(for: .milliseconds(20)) }
        let evictedBefore = server.admission.evictedHandshakes
        // A pending handshake can be evicted by the flood like any other (oldest first): on a loaded machine
        // the member's own may be, before its session starts; it then dials again, as a resubmitted job would.
        // Whatever happens, the flood stops before the test ends (its tasks would outlive the event loops).
        let outcome: Result<(Set<String>, Double), Error>
        do { outcome = .success(try await run()) } catch {
            do { outcome = .success(try await run()) } catch { outcome = .failure(error) }
        }
        XCTAssertGreaterThan(server.admission.evictedHandshakes, evictedBefore, "the flood went on during the job")
        flooding.withValue { $0 = false }
        for f in floods { await f.value }
        let (busy, busySeconds) = try outcome.get()
        XCTAssertEqual(busy, expected, "the job's result is unchanged by the flood")
        XCTAssertGreaterThan(server.admission.evictedHandshakes, 0, "the flood reached the limit")
        print("PSI 2000 × 1500 over TLS: \(String(format: "%.2f", quietSeconds)) s quiet, \(String(format: "%.2f", busySeconds)) s during a flood of strangers' connections (\(server.admission.evictedHandshakes) evicted)")
    }

    func testOneMembersConnectionsOverItsLimitAreClosed() async throws {
        var options = TransportOptions()
        options.maximumConnectionsPerPeer = 2
        let server = try transport("bank-b", options: options)
        let release = Locked(false)
        let (address, task) = try await listen(server) { channel in
            // Hold each session open until the test lets go.
            while !release.value { try? await Task.sleep(for: .milliseconds(20)) }
            try? await channel.send([1])
        }
        defer { task.cancel() }
        let client = try transport("bank-a")
        let outcomes = await withTaskGroup(of: Result<[UInt8], Error>.self) { group in
            for i in 0..<3 {
                group.addTask {
                    do {
                        return .success(try await client.withSession(jobID: "j", stream: "s\(i)", to: "bank-b", at: address) { try await $0.receive() })
                    } catch { return .failure(error) }
                }
            }
            // The third one is refused at once; then the first two are let go.
            var results: [Result<[UInt8], Error>] = []
            for await r in group {
                results.append(r)
                release.withValue { $0 = true }
            }
            return results
        }
        let refused = outcomes.filter { if case .failure = $0 { return true } else { return false } }
        XCTAssertEqual(refused.count, 1, "\(outcomes)")
        XCTAssertEqual(outcomes.count - refused.count, 2)
    }

    func testHeartbeatsKeepASessionWaitingOnASlowPhaseAlive() async throws {
        // Both sides take one second of silence for a dead peer; the job's own phase takes three.
        var options = TransportOptions()
        options.idleTimeout = .seconds(1)
        let server = try transport("bank-b", options: options)
        let (address, task) = try await listen(server) { channel in
            try? await Task.sleep(for: .seconds(3))
            try? await channel.send([42])
            _ = try? await channel.receive()
        }
        defer { task.cancel() }
        let client = try transport("bank-a", options: options)
        let received = try await client.withSession(jobID: "j", to: "bank-b", at: address) { channel in
            let m = try await channel.receive()
            try await channel.send([1])
            return m
        }
        XCTAssertEqual(received, [42])
    }

    func testAPeerThatSendsNoHeartbeatIsStillTakenForGone() async throws {
        // The same slow phase, from a peer whose heartbeats are slower than the client's idle limit:
        // the idle limit still ends the session (a frozen process is detected).
        var quiet = TransportOptions()
        quiet.heartbeatInterval = .seconds(30)
        let server = try transport("bank-b", options: quiet)
        let (address, task) = try await listen(server) { channel in
            try? await Task.sleep(for: .seconds(3))
            try? await channel.send([42])
        }
        defer { task.cancel() }
        var options = TransportOptions()
        options.idleTimeout = .seconds(1)
        let client = try transport("bank-a", options: options)
        do {
            _ = try await client.withSession(jobID: "j", to: "bank-b", at: address) { try await $0.receive() }
            XCTFail("a silent peer must time out")
        } catch {
            XCTAssertTrue("\(error)".contains("bank-b"), "\(error)")
            guard case MPCProtocols.ChannelError.timedOut? = error as? MPCProtocols.ChannelError else { return XCTFail("expected a time-out: \(error)") }
        }
    }

    func testImpostorAtAPeersAddressIsReportedAsAnIdentityMismatchAndSeesNoRequest() async throws {
        let sawRequest = Locked(false)
        let impostor = try transport("bank-b")
        let listener = try await impostor.bind(host: "127.0.0.1", port: 0, handler: RecordingHandler(saw: sawRequest))
        let task = Task { try await listener.run() }
        listeners.append(task)
        let address = PeerAddress(host: "127.0.0.1", port: listener.port)
        let client = try transport("coordinator", role: .coordinator)
        do {
            _ = try await client.control(.with { $0.proposal = .with { $0.spec.jobID = "secret-job" } }, to: "bank-a", at: address)
            XCTFail("bank-b's certificate must not pass as bank-a")
        } catch TransportError.peerIdentityMismatch(let expected, let presented) {
            XCTAssertEqual(expected, "bank-a")
            XCTAssertEqual(presented, "bank-b")
        }
        do {
            _ = try await client.withSession(jobID: "secret-job", to: "bank-a", at: address) { try await $0.receive() }
            XCTFail("bank-b's certificate must not pass as bank-a")
        } catch TransportError.peerIdentityMismatch(let expected, let presented) {
            XCTAssertEqual(expected, "bank-a")
            XCTAssertEqual(presented, "bank-b")
        }
        try await Task.sleep(for: .milliseconds(200))
        XCTAssertFalse(sawRequest.value, "the impostor never received the request")
    }
}

/// Records whether any request or session reached it.
struct RecordingHandler: InboundConnectionHandler {
    let saw: Locked<Bool>
    func handleControl(_ request: Mpcnode_V1_ControlRequest, from peer: NodeIdentity) async -> Mpcnode_V1_ControlResponse {
        saw.withValue { $0 = true }
        return .with { $0.ack = .init() }
    }
    func handleSession(_ open: Mpcnode_V1_SessionOpen, from peer: NodeIdentity, channel: TLSMessageChannel) async {
        saw.withValue { $0 = true }
    }
}
