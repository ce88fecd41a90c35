import MPCBench
import MPCNode
import MPCTestSupport
import MPCWire
import XCTest

/// A participant validates the whole spec itself: a coordinator's node that skips its own checks (or
/// crafts the proposal) gets a refusal naming the rule, recorded in the audit log, and no job starts.
final class MalformedSpecTests: XCTestCase {
    func testSpecsTheCLIWouldRefuseAreRefusedByTheParticipant() async throws {
        let fixture = try ConsortiumFixture(banks: ["bank-a", "bank-b", "bank-c"])
        defer { fixture.remove() }
        try fixture.importCSV(into: "bank-a", dataset: "customers", phones: phoneNumbers(200, seed: 31))
        let bankA = try await fixture.consortium.start("bank-a", logger: ConsortiumFixture.quietLogger)
        let coordinator = try HostileNameTests.HostileCoordinator(fixture)
        let party = { (node: String) in Mpcnode_V1_PartyInput.with { $0.nodeID = node; $0.dataset = "customers"; $0.column = "phone" } }
        let cases: [(String, String, (inout Mpcnode_V1_JobSpec) -> Void)] = [
            ("job-party-twice", "listed twice", { $0.parties = [party("bank-a"), party("bank-a")] }),
            ("job-three-party-psi", "between two parties", { $0.parties.append(party("bank-c")) }),
            ("job-no-recipient", "no recipient", { $0.deliverTo = [] }),
            ("job-outside-recipient", "delivers to one or both of its parties", { $0.deliverTo = ["bank-c"] }),
            ("job-bad-group", "unknown group", { $0.group = "p-256" }),
            ("job-sum-server-party", "not a party", {
                $0.protocol = "secure-sum"; $0.aggregate.measures = [.with { $0.function = "count"; $0.column = "phone" }]; $0.deliverTo = ["bank-b"]
            }),
            ("job-sets-aggregator-party", "neither a party nor the coordinator", {
                $0.protocol = "watchlist"; $0.sets.aggregator = "bank-b"; $0.sets.mixer = "bank-a"; $0.sets.atLeast = 2; $0.deliverTo = []
            }),
        ]
        for (id, expected, mutate) in cases {
            var spec = HostileNameTests.psiSpec(jobID: id)
            mutate(&spec)
            let decision = try await coordinator.propose(spec)
            XCTAssertFalse(decision.accepted, id)
            XCTAssertTrue(decision.reason.contains(expected), "\(id): \(decision.reason)")
            XCTAssertEqual(try JobRepository(store: bankA.store).state(jobID: id), .refused, id)
            guard case .error? = try await coordinator.start(id).kind else { XCTFail("\(id) was started"); continue }
        }

        // A bank (its certificate's role) may not propose: refused, recorded, its id neither echoed nor stored.
        let bank = try HostileNameTests.HostileCoordinator(fixture, identity: "bank-b", role: .bank)
        let decision = try await bank.propose(HostileNameTests.psiSpec(jobID: "../job-from-a-bank"))
        XCTAssertFalse(decision.accepted)
        XCTAssertTrue(decision.reason.contains("not coordinator"), decision.reason)
        XCTAssertEqual(decision.jobID, "")
        let records = try AuditLog(store: bankA.store).records(limit: 1000)
        XCTAssertEqual(records.filter { $0.event == "job.policy.refused" }.count, cases.count)
        XCTAssertEqual(records.filter { $0.event == "job.proposal.refused" }.count, 1)
        XCTAssertNil(try AuditLog(store: bankA.store).verify())

        await bankA.stop()
        try await coordinator.group.shutdownGracefully()
        try await bank.group.shutdownGracefully()
    }

    /// Seeded mutation of whole proposals (finding 7): a valid spec of every kind with one field set to an
    /// extreme, a hostile string, emptied bytes or a doubled list. The participant answers each (accepts or
    /// refuses by rule) and keeps serving; its data, audit chain and the files around its data folder are
    /// unchanged, and nothing that was refused was stored as a job.
    func testCraftedProposalsOfEveryKindGetAnAnswerAndChangeNothing() async throws {
        let fixture = try ConsortiumFixture(banks: ["bank-a", "bank-b", "bank-c"])
        defer { fixture.remove() }
        try fixture.importCSV(into: "bank-a", dataset: "customers", phones: phoneNumbers(200, seed: 37))
        let bankA = try await fixture.consortium.start("bank-a", logger: ConsortiumFixture.quietLogger)
        let coordinator = try HostileNameTests.HostileCoordinator(fixture)
        let around = HostileNameTests.listing(fixture.directory).filter { !$0.key.contains("/data/bank-a/") }
        let rowsBefore = try DatasetCatalog(store: bankA.store).describe("customers").rowCount
        let party = { (node: String) in Mpcnode_V1_PartyInput.with { $0.nodeID = node; $0.dataset = "customers"; $0.column = "phone" } }
        let bases: [Mpcnode_V1_JobSpec] = [
            HostileNameTests.psiSpec(jobID: "job-base-psi"),
            .with {
                $0.jobID = "job-base-sum"; $0.coordinator = "coordinator"; $0.protocol = "secure-sum"
                $0.parties = [party("bank-a"), party("bank-b"), party("bank-c")]; $0.deliverTo = ["regulator"]
                $0.aggregate = .with { $0.measures = [.with { $0.function = "count"; $0.column = "phone" }]; $0.minCellRecords = 10; $0.minCellParties = 2 }
            },
            .with {
                $0.jobID = "job-base-sets"; $0.coordinator = "coordinator"; $0.protocol = "union-sum"; $0.group = "x25519"
                $0.parties = [party("bank-a"), party("bank-b"), party("bank-c")]; $0.deliverTo = ["regulator"]
                $0.sets = .with { $0.aggregator = "regulator"; $0.mixer = "bank-b"; $0.atLeast = 1; $0.valueColumn = "balance"; $0.decimals = 2; $0.minCellParties = 2 }
            },
            .with {
                $0.jobID = "job-base-train"; $0.coordinator = "coordinator"; $0.protocol = "train-lr"
                $0.parties = [party("bank-a"), party("bank-b")]
                $0.training = .with {
                    $0.mode = "vertical"; $0.aggregator = "regulator"; $0.label = "balance"; $0.rounds = 2; $0.learningRate = 0.1
                    $0.batchSize = 64; $0.keyBits = 2048
                    $0.partyFeatures = [.with { $0.nodeID = "bank-a"; $0.features = ["balance"] }, .with { $0.nodeID = "bank-b"; $0.features = ["balance"] }]
                }
            },
        ]
        var answered = 0, refused = 0
        for seed in 0..<UInt64(150) {
            var base = bases[Int(seed % UInt64(bases.count))]
            base.jobID = "job-fuzz-\(seed)"
            guard let (spec, what) = MessageMutator.mutated(base, seed: seed) else { continue }
            let decision = try await coordinator.propose(spec)
            answered += 1
            if !decision.accepted {
                refused += 1
                XCTAssertFalse(decision.reason.isEmpty, "seed \(seed) (\(what)): a refusal says why")
                if spec.jobID == base.jobID {
                    XCTAssertNotEqual(try? JobRepository(store: bankA.store).state(jobID: spec.jobID), .accepted, "seed \(seed) (\(what))")
                }
            }
        }
        XCTAssertGreaterThan(answered, 100, "most mutations re-encode")
        XCTAssertGreaterThan(refused, 0)
        // Still serving, data and audit intact, nothing changed around the data folder.
        let decision = try await coordinator.propose(HostileNameTests.psiSpec(jobID: "job-after-the-fuzz"))
        XCTAssertTrue(decision.accepted, decision.reason)
        XCTAssertEqual(try DatasetCatalog(store: bankA.store).describe("customers").rowCount, rowsBefore)
        XCTAssertNil(try AuditLog(store: bankA.store).verify())
        XCTAssertEqual(HostileNameTests.listing(fixture.directory).filter { !$0.key.contains("/data/bank-a/") }, around)
        await bankA.stop()
        try await coordinator.group.shutdownGracefully()
    }
}
