import Foundation
import GRDB
import MPCCrypto
import MPCProtocols
import MPCTestSupport
import XCTest
@testable import MPCNode

/// A querier applies a holder's table or delta only whole: a holder that stops in the middle of a delta
/// leaves the querier on its last complete version, also across the querier's restart; the next sync
/// brings it up to date.
final class ListTableUpdateTests: XCTestCase {
    func testAHolderStoppingMidDeltaLeavesTheQuerierOnItsLastCompleteVersion() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mpcnode-delta-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let holderStore = try NodeStore(path: directory.appendingPathComponent("holder/node.sqlite"))
        let querierPath = directory.appendingPathComponent("querier/node.sqlite")
        let catalog = DatasetCatalog(store: holderStore)
        func csv(_ range: Range<Int>) throws -> String {
            let url = directory.appendingPathComponent("rows-\(range.lowerBound).csv")
            try ("phone,risk\n" + range.map { "4477\(String(format: "%07d", $0)),r\($0 % 4)" }.joined(separator: "\n") + "\n")
                .write(to: url, atomically: true, encoding: .utf8)
            return url.path
        }
        try catalog.importCSV(DatasetImportRequest(dataset: "blacklist", csvPath: try csv(0..<1000), idColumn: "phone",
                                                   normalization: IdentifierNormalization(digitsOnly: true)))
        let policy = LookupListPolicy(labelColumns: ["risk"], queriers: ["bank-b"])
        let lists = HolderListStore(store: holderStore, holder: "bank-a")
        XCTAssertEqual(try lists.refresh(dataset: "blacklist", policy: policy)?.version, 1)

        /// One sync over an in-memory channel; the holder stops after `batchesBeforeStopping` batches.
        func sync(_ tables: SubscribedTables, batchesBeforeStopping: Int? = nil) async throws {
            let (q, h) = InMemoryChannel.pair("bank-b", "bank-a")
            let holder = Task {
                let session = ProtocolSession(channel: h)
                let request = try await ListTableTransfer.receiveRequest(session)
                let state = try XCTUnwrap(try lists.state("blacklist"))
                let plan = try lists.plan(dataset: "blacklist", state: state, keyID: request.keyID, version: request.version)
                let header = ListTableHeader(list: "blacklist", keyID: state.keyID, version: state.version, baseVersion: plan.base, full: plan.full,
                                             added: UInt64(plan.added), removed: UInt64(plan.removed), entries: UInt64(state.entries),
                                             labelColumns: ["risk"], disclosure: "holders", riskColumn: "", riskLevels: [],
                                             normalization: "trim,digits-only", maximumPerSecond: 100, maximumPerDay: 1000)
                let next = lists.batches(dataset: "blacklist", full: plan.full, base: plan.base)
                var sent = 0
                do {
                    try await ListTableTransfer.send(session, holder: "bank-a", header: header, next: {
                        if let stop = batchesBeforeStopping, sent == stop { throw CancellationError() }
                        sent += 1
                        return try next()
                    }, sign: { _ in ListTableSignature(signature: [1], certificate: [2]) })
                } catch {
                    await h.close()  // the holder's process ends: its connection closes
                    throw error
                }
            }
            let session = ProtocolSession(channel: q)
            let current = tables.table(holder: "bank-a", list: "blacklist")
            try await ListTableTransfer.request(session, list: "blacklist", keyID: current?.header.keyID ?? "", version: current?.header.version ?? 0)
            var update: TableUpdate?
            do {
                _ = try await ListTableTransfer.receive(session, list: "blacklist", maximumEntries: 1 << 20,
                                                        accept: { update = try tables.begin(holder: "bank-a", header: $0) },
                                                        store: { try tables.stage(update!, $0) }, verify: { _, _ in })
                try tables.apply(update!, signature: ListTableSignature(signature: [1], certificate: [2]))
            } catch {
                // As if the querier's process ended here: what it received stays on disk until its restart.
                holder.cancel()
                await h.close()
                throw error
            }
            _ = try? await holder.value
        }

        func rows(_ tables: SubscribedTables, _ table: String) throws -> Int {
            try tables.store.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM \(table)") ?? -1 }
        }
        var tables = try SubscribedTables(store: NodeStore(path: querierPath))
        // The first (full) table stops after its only batch: nothing is in force, and a restart deletes
        // the rows it left.
        do { try await sync(tables, batchesBeforeStopping: 1); XCTFail("a truncated table was applied") } catch {}
        XCTAssertNil(tables.table(holder: "bank-a", list: "blacklist"))
        XCTAssertEqual(try rows(tables, "lookup_table_entry"), 1000)
        tables = try SubscribedTables(store: NodeStore(path: querierPath))
        XCTAssertNil(tables.table(holder: "bank-a", list: "blacklist"))
        XCTAssertEqual(try rows(tables, "lookup_table_entry"), 0)
        XCTAssertEqual(try rows(tables, "lookup_table_unused"), 0)

        try await sync(tables)
        XCTAssertEqual(tables.table(holder: "bank-a", list: "blacklist")?.header.version, 1)
        XCTAssertEqual(tables.table(holder: "bank-a", list: "blacklist")?.tags.count, 1000)

        // Version 2: 5,000 rows added, 300 removed (three batches of added entries, one of removals).
        try catalog.append(dataset: "blacklist", csvPath: try csv(1000..<6000))
        try catalog.remove(dataset: "blacklist", identifiers: (0..<300).map { "4477\(String(format: "%07d", $0))" })
        let change = try XCTUnwrap(try lists.refresh(dataset: "blacklist", policy: policy))
        XCTAssertEqual(change, HolderListChange(version: 2, added: 5000, removed: 300, entries: 5700))

        // The holder stops after two batches: nothing applies.
        do { try await sync(tables, batchesBeforeStopping: 2); XCTFail("a truncated delta was applied") } catch {}
        XCTAssertEqual(tables.table(holder: "bank-a", list: "blacklist")?.header.version, 1)
        XCTAssertEqual(tables.table(holder: "bank-a", list: "blacklist")?.tags.count, 1000)
        // The querier restarts: still version 1, from its SQLite, with no half-received rows left.
        tables = try SubscribedTables(store: NodeStore(path: querierPath))
        XCTAssertEqual(tables.table(holder: "bank-a", list: "blacklist")?.header.version, 1)
        XCTAssertEqual(tables.table(holder: "bank-a", list: "blacklist")?.tags.count, 1000)
        XCTAssertEqual(try rows(tables, "lookup_staging"), 0)
        XCTAssertEqual(try rows(tables, "lookup_table_entry"), 1000)

        // The next sync is a delta from 1 and leaves exactly the holder's entries.
        try await sync(tables)
        let table = try XCTUnwrap(tables.table(holder: "bank-a", list: "blacklist"))
        XCTAssertEqual(table.header.version, 2)
        XCTAssertFalse(table.header.full)
        let holderTags = try holderStore.read { db in
            try Int64.fetchAll(db, sql: "SELECT tag FROM lookup_list_entry WHERE dataset = 'blacklist' AND removed_version IS NULL").map { UInt64(bitPattern: $0) }.sorted()
        }
        XCTAssertEqual(table.tags, holderTags)
        XCTAssertEqual(table.tags.count, 5700)
        XCTAssertEqual(try rows(tables, "lookup_table_entry"), 5700)
    }

    /// A member holding a list lies in updates whose counts add up on the wire but not against the
    /// querier's table: a delta removing a tag it does not hold, a delta removing one tag twice, a full
    /// table with an entry twice. Each is refused when applied; the querier keeps its table (in memory and
    /// in SQLite), leaves nothing staged, and still answers from it.
    func testALyingHoldersUpdatesThatDoNotAddUpLeaveTheTableAsItWas() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mpcnode-lying-holder-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let holderStore = try NodeStore(path: directory.appendingPathComponent("holder/node.sqlite"))
        let csv = directory.appendingPathComponent("list.csv")
        try ("phone,risk\n" + (0..<1000).map { "4477\(String(format: "%07d", $0)),r\($0 % 4)" }.joined(separator: "\n") + "\n")
            .write(to: csv, atomically: true, encoding: .utf8)
        try DatasetCatalog(store: holderStore).importCSV(DatasetImportRequest(dataset: "blacklist", csvPath: csv.path, idColumn: "phone",
                                                                              normalization: IdentifierNormalization(digitsOnly: true)))
        let lists = HolderListStore(store: holderStore, holder: "bank-a")
        try lists.refresh(dataset: "blacklist", policy: LookupListPolicy(labelColumns: ["risk"], queriers: ["bank-b"]))
        let state = try XCTUnwrap(try lists.state("blacklist"))
        let entries = try XCTUnwrap(try lists.batches(dataset: "blacklist", full: true, base: 0)()).added
        XCTAssertEqual(entries.count, 1000)
        let tables = try SubscribedTables(store: NodeStore(path: directory.appendingPathComponent("querier/node.sqlite")))

        func header(version: UInt64, base: UInt64, full: Bool, added: Int, removed: Int, entries: Int) -> ListTableHeader {
            ListTableHeader(list: "blacklist", keyID: state.keyID, version: version, baseVersion: base, full: full, added: UInt64(added),
                            removed: UInt64(removed), entries: UInt64(entries), labelColumns: ["risk"], disclosure: "holders", riskColumn: "",
                            riskLevels: [], normalization: "trim,digits-only", maximumPerSecond: 100, maximumPerDay: 1000)
        }
        /// One update over an in-memory channel, received and applied as the querier's service does.
        func sync(_ header: ListTableHeader, _ batches: [ListTableBatch]) async throws {
            let (q, h) = InMemoryChannel.pair("bank-b", "bank-a")
            let holder = Task {
                let session = ProtocolSession(channel: h)
                _ = try await ListTableTransfer.receiveRequest(session)
                var rest = batches[...]
                try await ListTableTransfer.send(session, holder: "bank-a", header: header, next: { rest.popFirst() },
                                                 sign: { _ in ListTableSignature(signature: [1], certificate: [2]) })
            }
            defer { holder.cancel() }
            let session = ProtocolSession(channel: q)
            try await ListTableTransfer.request(session, list: "blacklist", keyID: "", version: 0)
            var update: TableUpdate?
            do {
                _ = try await ListTableTransfer.receive(session, list: "blacklist", maximumEntries: 1 << 20,
                                                        accept: { update = try tables.begin(holder: "bank-a", header: $0) },
                                                        store: { try tables.stage(update!, $0) }, verify: { _, _ in })
                try tables.apply(update!, signature: ListTableSignature(signature: [1], certificate: [2]))
            } catch {
                if let update { tables.discard(update) }
                throw error
            }
        }
        func rows(_ table: String) throws -> Int { try tables.store.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM \(table)") ?? -1 } }
        func unchanged(_ what: String) throws {
            let table = try XCTUnwrap(tables.table(holder: "bank-a", list: "blacklist"), what)
            XCTAssertEqual(table.header.version, 1, what)
            XCTAssertEqual(table.tags, entries.map(\.tag).sorted(), what)
            XCTAssertEqual(try rows("lookup_table_entry"), 1000, what)
            XCTAssertEqual(try rows("lookup_staging"), 0, what)
            XCTAssertEqual(try rows("lookup_table_unused"), 0, what)
            XCTAssertEqual(try tables.sealedLabels(table, tag: entries[7].tag).count, 1, what)
        }

        // The honest table first.
        try await sync(header(version: 1, base: 0, full: true, added: 1000, removed: 0, entries: 1000), [ListTableBatch(added: entries)])
        try unchanged("honest table")

        // A delta removing a tag the querier never had (and adding one entry, so its total claims 1000).
        let stranger = LabelledLookup.Entry(tag: 0x0123_4567_89ab_cdef, label: entries[0].label)
        do {
            try await sync(header(version: 2, base: 1, full: false, added: 1, removed: 1, entries: 1000),
                           [ListTableBatch(added: [stranger], removed: [0xdead_beef])])
            XCTFail("a delta removing an unknown tag was applied")
        } catch LookupSyncError.countMismatch {}
        try unchanged("after removing an unknown tag")

        // A delta removing the same tag twice.
        do {
            try await sync(header(version: 2, base: 1, full: false, added: 0, removed: 2, entries: 998),
                           [ListTableBatch(removed: [entries[3].tag, entries[3].tag])])
            XCTFail("a delta removing one tag twice was applied")
        } catch LookupSyncError.countMismatch {}
        try unchanged("after removing one tag twice")

        // A full table with one entry twice (its header counts 1001).
        do {
            try await sync(header(version: 2, base: 0, full: true, added: 1001, removed: 0, entries: 1001),
                           [ListTableBatch(added: entries + [entries[5]])])
            XCTFail("a full table with a duplicated entry was applied")
        } catch {}
        try unchanged("after a full table with an entry twice")
    }
}
