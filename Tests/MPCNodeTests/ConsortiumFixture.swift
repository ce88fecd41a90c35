import MPCBench
import Foundation
import Logging
import MPCNode
import MPCTestSupport
import MPCTransport
import XCTest

/// What each node put into TLS, by sending node.
final class WireTaps: @unchecked Sendable {
    private let lock = NSLock()
    private var bytes: [String: [UInt8]] = [:]
    private var peers: [String: Set<String>] = [:]

    func options(for node: String) -> TransportOptions {
        var o = TransportOptions()
        o.plaintextTap = { [weak self] peer, data in self?.record(node, peer, data) }
        return o
    }

    private func record(_ node: String, _ peer: String, _ data: [UInt8]) {
        lock.withLock {
            bytes[node, default: []].append(contentsOf: data)
            peers[node, default: []].insert(peer)
        }
    }

    func sent(by node: String) -> [UInt8] { lock.withLock { bytes[node] ?? [] } }
    /// The peers a node dialled (inbound connections are labelled "inbound …").
    func dialled(by node: String) -> Set<String> { lock.withLock { peers[node] ?? [] }.filter { !$0.hasPrefix("inbound") } }
}

/// A consortium of in-process nodes with real listeners, TLS and SQLite files in a temporary folder.
struct ConsortiumFixture {
    let directory: URL
    let consortium: LocalConsortium

    static let defaultPolicy: @Sendable (String) -> String = { bank in
        """
        policy:
          coordinators: [coordinator]
          datasets:
            customers:
              columns: [phone]
              protocols: [psi, psi-cardinality]
              result_recipients: [bank-a, bank-b]
              min_set_size: 20
            counts_only:
              columns: [phone]
              protocols: [psi-cardinality]
              result_recipients: [bank-a, bank-b]
              min_set_size: 20
            tiny:
              columns: [phone]
              protocols: [psi, psi-cardinality]
              result_recipients: [bank-a, bank-b]
              min_set_size: 20
        """
    }

    init(banks: [String] = ["bank-a", "bank-b"], policy: (String) -> String = ConsortiumFixture.defaultPolicy,
         peerIdleTimeoutSeconds: Int = 300, maximumJobSeconds: Int = 86_400, workerExecutable: URL? = nil) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("mpcnode-e2e-\(UUID().uuidString)")
        consortium = try LocalConsortium.create(in: directory, banks: banks, policy: policy,
                                                peerIdleTimeoutSeconds: peerIdleTimeoutSeconds, maximumJobSeconds: maximumJobSeconds,
                                                workerExecutable: workerExecutable)
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }

    /// Writes a CSV (header `customer_id,phone,balance`) and returns its path.
    func writeCSV(_ name: String, phones: [String]) throws -> String {
        let url = directory.appendingPathComponent("\(name).csv")
        var text = "customer_id,phone,balance\n"
        for (i, p) in phones.enumerated() { text += "C\(i),\(p),\(i * 10).50\n" }
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    func importCSV(into node: String, dataset: String, phones: [String], replace: Bool = false) throws {
        let configuration = try consortium.configuration(of: node)
        let catalog = DatasetCatalog(store: try NodeStore(path: configuration.databasePath))
        try catalog.importCSV(DatasetImportRequest(dataset: dataset, csvPath: writeCSV("\(node)-\(dataset)", phones: phones),
                                                   idColumn: "phone", normalization: IdentifierNormalization(digitsOnly: true), replace: replace))
    }

    static var quietLogger: Logger {
        var l = Logger(label: "test")
        l.logLevel = .critical
        return l
    }

    /// Waits until the job is final on `node` (at most `seconds`).
    static func waitForFinal(_ node: NodeRuntime, jobID: String, seconds: Double = 60) async throws -> JobView {
        let repository = JobRepository(store: node.store)
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let job = try? repository.view(jobID: jobID), job.state.isFinal { return job }
            try await Task.sleep(for: .milliseconds(50))
        }
        XCTFail("job \(jobID) not final on \(node.identity.nodeID) within \(seconds) s")
        return try repository.view(jobID: jobID)
    }
}

func phoneNumbers(_ count: Int, seed: UInt64, universe: Int = 5000) -> [String] {
    var rng = SplitMix(state: seed)
    return (0..<count).map { _ in "+44 7700 \(String(format: "%06d", Int.random(in: 0..<universe, using: &rng)))" }
}

func digits(_ s: String) -> String { String(s.filter(\.isNumber)) }

extension LocalConsortium {
    /// Writes `text` to `<file>.csv` in the consortium's folder and imports it into `node`'s `dataset`.
    func importCSV(_ text: String, into node: String, dataset: String, idColumn: String, file: String? = nil, replace: Bool = false) throws {
        let path = directory.appendingPathComponent("\(file ?? node).csv")
        try text.write(to: path, atomically: true, encoding: .utf8)
        _ = try DatasetCatalog(store: NodeStore(path: configuration(of: node).databasePath))
            .importCSV(DatasetImportRequest(dataset: dataset, csvPath: path.path, idColumn: idColumn, replace: replace))
    }
}
