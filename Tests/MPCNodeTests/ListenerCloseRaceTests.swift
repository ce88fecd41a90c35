import MPCBench
import Foundation
import MPCNode
import MPCWire
import XCTest

/// A node stopping while peers connect: connections accepted as the listener closes are closed, never
/// dropped unopened (NIO traps on that, so one peer timed right could crash the node).
final class ListenerCloseRaceTests: XCTestCase {
    func testStoppingWhilePeersConnectNeitherCrashesNorHangs() async throws {
        let fixture = try ConsortiumFixture()
        defer { fixture.remove() }
        let coordinator = try HostileNameTests.HostileCoordinator(fixture)
        var answered = 0
        for round in 0..<12 {
            let node = try await fixture.consortium.start("bank-a", logger: ConsortiumFixture.quietLogger)
            let proposals = Task {
                await withTaskGroup(of: Bool.self) { group in
                    for i in 0..<48 {
                        group.addTask {
                            let spec = HostileNameTests.psiSpec(jobID: "job-race-\(round)-\(i)")
                            return (try? await coordinator.propose(spec)) != nil
                        }
                    }
                    var n = 0
                    for await ok in group where ok { n += 1 }
                    return n
                }
            }
            try await Task.sleep(for: .milliseconds(5 + 3 * round))
            await node.stop()
            answered += await proposals.value
        }
        // The node still starts and answers afterwards.
        let node = try await fixture.consortium.start("bank-a", logger: ConsortiumFixture.quietLogger)
        let decision = try await coordinator.propose(HostileNameTests.psiSpec(jobID: "job-after-the-race"))
        XCTAssertFalse(decision.jobID.isEmpty, "a decision came back")
        XCTAssertNil(try AuditLog(store: node.store).verify())
        await node.stop()
        try await coordinator.group.shutdownGracefully()
        print("proposals answered while stopping: \(answered) of \(12 * 48)")
    }
}
