import Foundation
import MPCNode
import MPCTransport
import MPCWire
import XCTest

/// Builds job specs for policy tests.
struct MPCNodeTestSpec {
    var dataset: String
    var column: String
    var deliverTo: [String]
    var cardinalityOnly = false

    static func psi(dataset: String, column: String, deliverTo: [String]) -> MPCNodeTestSpec {
        MPCNodeTestSpec(dataset: dataset, column: column, deliverTo: deliverTo)
    }

    func build() -> Mpcnode_V1_JobSpec {
        .with {
            $0.jobID = "job-test"
            $0.coordinator = "coordinator"
            $0.protocol = "psi"
            $0.parties = [.with { $0.nodeID = "bank-a"; $0.dataset = dataset; $0.column = column },
                          .with { $0.nodeID = "bank-b"; $0.dataset = "other"; $0.column = "id" }]
            $0.deliverTo = deliverTo
            $0.cardinalityOnly = cardinalityOnly
            $0.group = "x25519"
        }
    }
}

/// Jobs a participant's policy forbids are refused, with the reason, before any data is exchanged.
final class PolicyEnforcementTests: XCTestCase {
    func submitAndWait(_ nodes: [String: NodeRuntime], dataset: String = "customers", deliverTo: [String] = ["bank-a"],
                       cardinalityOnly: Bool = false) async throws -> JobView {
        let jobID = try await nodes["coordinator"]!.engine.submit(JobSubmission.phonePSI(dataset: dataset, deliverTo: deliverTo, cardinalityOnly: cardinalityOnly))
        return try await ConsortiumFixture.waitForFinal(nodes["coordinator"]!, jobID: jobID)
    }

    func testRefusalsCarryTheReasonAndNoSessionIsOpened() async throws {
        let fixture = try ConsortiumFixture(policy: { bank in
            // bank-b exposes `customers` to bank-a as the only recipient.
            let recipients = bank == "bank-b" ? "[bank-a]" : "[bank-a, bank-b]"
            return """
            policy:
              coordinators: [coordinator]
              datasets:
                customers:
                  columns: [phone]
                  protocols: [psi, psi-cardinality]
                  result_recipients: \(recipients)
                  min_set_size: 50
                counts_only:
                  columns: [phone]
                  protocols: [psi-cardinality]
                  result_recipients: [bank-a, bank-b]
                  min_set_size: 20
                tiny:
                  columns: [phone]
                  protocols: [psi]
                  result_recipients: [bank-a, bank-b]
                  min_set_size: 50
            """
        })
        removeAtTearDown(fixture.directory)
        for bank in ["bank-a", "bank-b"] {
            try fixture.importCSV(into: bank, dataset: "customers", phones: phoneNumbers(200, seed: bank == "bank-a" ? 5 : 6))
            try fixture.importCSV(into: bank, dataset: "counts_only", phones: phoneNumbers(200, seed: 7))
            try fixture.importCSV(into: bank, dataset: "tiny", phones: phoneNumbers(bank == "bank-a" ? 200 : 1, seed: 8))
        }
        let taps = WireTaps()
        let nodes = try await fixture.consortium.startAll(logger: ConsortiumFixture.quietLogger, transportOptions: taps.options(for:))
        stopAtTearDown(nodes)

        // The dataset is not exposed to this protocol (only to the cardinality).
        var job = try await submitAndWait(nodes, dataset: "counts_only")
        XCTAssertEqual(job.state, .refused)
        XCTAssertTrue(job.reason?.contains("not exposed to psi") == true, job.reason ?? "")
        // A recipient the policy does not allow.
        job = try await submitAndWait(nodes, deliverTo: ["bank-b"])
        XCTAssertEqual(job.state, .refused)
        XCTAssertTrue(job.reason?.contains("bank-b: bank-b may not receive results") == true, job.reason ?? "")
        // An input below the minimum set size (a one-element PSI is a membership probe).
        job = try await submitAndWait(nodes, dataset: "tiny")
        XCTAssertEqual(job.state, .refused)
        XCTAssertTrue(job.reason?.contains("bank-b: input has 1 distinct identifiers, below the policy minimum of 50") == true, job.reason ?? "")
        // A dataset the node does not have.
        job = try await submitAndWait(nodes, dataset: "missing")
        XCTAssertEqual(job.state, .refused)
        XCTAssertTrue(job.reason?.contains("not exposed") == true, job.reason ?? "")

        // None of these started: no bank dialled the other, no bank has a started job or a result.
        XCTAssertFalse(taps.dialled(by: "bank-a").contains("bank-b"))
        XCTAssertFalse(taps.dialled(by: "bank-b").contains("bank-a"))
        for bank in ["bank-a", "bank-b"] {
            let events = try AuditLog(store: nodes[bank]!.store).records(limit: 1000).map(\.event)
            XCTAssertFalse(events.contains("job.started"), "\(bank): \(events)")
            XCTAssertTrue(events.contains("job.policy.refused") || events.contains("job.aborted"), "\(bank): \(events)")
        }

        // And a job that every policy allows does run (the refusals above were the policy, not a broken setup).
        job = try await submitAndWait(nodes)
        XCTAssertEqual(job.state, .succeeded, job.reason ?? "")
        XCTAssertTrue(taps.dialled(by: "bank-a").contains("bank-b"))
    }

    func testProposalFromANodeThatIsNotAnAllowedCoordinatorIsRefused() async throws {
        // bank-b accepts jobs from "someone-else" only.
        let fixture = try ConsortiumFixture(policy: { bank in
            """
            policy:
              coordinators: [\(bank == "bank-b" ? "someone-else" : "coordinator")]
              datasets:
                customers:
                  columns: [phone]
                  protocols: [psi]
                  result_recipients: [bank-a]
                  min_set_size: 10
            """
        })
        removeAtTearDown(fixture.directory)
        for bank in ["bank-a", "bank-b"] { try fixture.importCSV(into: bank, dataset: "customers", phones: phoneNumbers(100, seed: 9)) }
        let nodes = try await fixture.consortium.startAll(logger: ConsortiumFixture.quietLogger)
        stopAtTearDown(nodes)
        let job = try await submitAndWait(nodes)
        XCTAssertEqual(job.state, .refused)
        XCTAssertTrue(job.reason?.contains("bank-b: coordinator is not a coordinator this node accepts jobs from") == true, job.reason ?? "")
    }

    func testPolicyCheckRulesInIsolation() throws {
        let policy = NodePolicy(coordinators: ["coordinator"], datasets: [
            "customers": DatasetPolicy(columns: ["phone"], protocols: [.psi], resultRecipients: ["bank-a"], minimumSetSize: 10),
        ])
        let check = PolicyCheck(policy: policy, nodeID: "bank-a")
        var spec = MPCNodeTestSpec.psi(dataset: "customers", column: "phone", deliverTo: ["bank-a"])
        var reads = 0
        XCTAssertEqual(check.check(spec.build(), proposer: "coordinator") { reads += 1; return 10 }, .allowed)
        XCTAssertEqual(reads, 1)
        // Refusals that need no data do not read any.
        spec.column = "email"
        XCTAssertEqual(check.check(spec.build(), proposer: "coordinator") { reads += 1; return 10 },
                       .refused(reason: "column 'email' of dataset 'customers' may not be used"))
        XCTAssertEqual(reads, 1, "the store is not read for a job refused on its spec")
        spec.column = "phone"
        XCTAssertEqual(check.check(spec.build(), proposer: "mallory") { 10 }, .refused(reason: "mallory is not a coordinator this node accepts jobs from"))
        XCTAssertEqual(check.check(spec.build(), proposer: "coordinator") { 9 },
                       .refused(reason: "input has 9 distinct identifiers, below the policy minimum of 10 for dataset 'customers'"))
        XCTAssertEqual(check.check(spec.build(), proposer: "coordinator") { nil },
                       .refused(reason: "dataset 'customers' or its column 'phone' does not exist on this node"))
    }

    /// Finding 5: each client applies its own floor to a secure sum's threshold; the coordinator's spec
    /// cannot lower it, and no policy can set it below a majority.
    func testASecureSumThresholdBelowTheClientsFloorIsRefused() throws {
        let rule = DatasetPolicy(columns: ["balance"], protocols: [.secureSum], resultRecipients: ["regulator"], minimumSetSize: 1,
                                 minimumCellRecords: 1, minimumCellParties: 1)
        XCTAssertEqual((2...9).map { rule.sumThresholdFloor(clients: $0) }, [2, 3, 3, 4, 5, 5, 6, 7], "⌊2n/3⌋ + 1 by default")
        let policy = NodePolicy(coordinators: ["coordinator"], datasets: ["accounts": rule])
        let check = PolicyCheck(policy: policy, nodeID: "branch-1")
        func spec(threshold: UInt32) -> Mpcnode_V1_JobSpec {
            .with {
                $0.jobID = "job-sum"; $0.coordinator = "coordinator"; $0.protocol = "secure-sum"
                $0.parties = (1...5).map { i in .with { $0.nodeID = "branch-\(i)"; $0.dataset = "accounts" } }
                $0.deliverTo = ["regulator"]; $0.threshold = threshold
                $0.aggregate = .with { $0.measures = [.with { $0.function = "sum"; $0.column = "balance" }]; $0.minCellRecords = 1; $0.minCellParties = 1; $0.decimals = 2 }
            }
        }
        XCTAssertEqual(check.check(spec(threshold: 0), proposer: "coordinator") { 10 }, .allowed, "the default threshold meets the floor")
        XCTAssertEqual(check.check(spec(threshold: 4), proposer: "coordinator") { 10 }, .allowed)
        guard case .refused(let reason) = check.check(spec(threshold: 3), proposer: "coordinator", inputSize: { 10 }) else {
            return XCTFail("threshold 3 of 5 must be refused")
        }
        XCTAssertTrue(reason.contains("threshold 3 of 5 clients is below this dataset's floor 4"), reason)
        XCTAssertThrowsError(try NodeConfiguration.parse("""
            node_id: branch-1
            listen: 127.0.0.1:9000
            data_dir: data
            tls: {certificate: c.pem, private_key: k.pem, ca_certificate: ca.pem}
            policy:
              datasets:
                accounts: {protocols: [secure-sum], min_sum_threshold_share: 0.4}
            """, path: "branch-1.yaml")) { XCTAssertTrue("\($0)".contains("min_sum_threshold_share"), "\($0)") }
    }
}
