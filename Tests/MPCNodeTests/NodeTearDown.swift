import Foundation
import MPCNode
import XCTest

/// Ending a test that started nodes: stop them and wait, then remove their folder — in that order, and
/// before the next test starts. (A `defer` cannot wait: it removed the folder while the nodes, stopped
/// by a detached task, were still ending their jobs, and those nodes overlapped the next test.)
/// Teardown blocks run last registered first, so register the folder before starting the nodes.
extension XCTestCase {
    func removeAtTearDown(_ directory: URL) {
        addTeardownBlock { try? FileManager.default.removeItem(at: directory) }
    }

    func stopAtTearDown(_ nodes: [String: NodeRuntime]) {
        stopAtTearDown(Array(nodes.values))
    }

    func stopAtTearDown(_ nodes: [NodeRuntime]) {
        addTeardownBlock { for node in nodes { await node.stop() } }
    }
}
