import MPCBench
import Foundation
import MPCNode
import XCTest

/// Another Unix user on the node's machine reads nothing: the data folder is 0700 and every file in it
/// 0600 from the first command, a daemon refuses a private key others can read, and the plaintext scratch
/// copies a killed daemon left behind are gone at the next start.
final class PrivateFilesTests: XCTestCase {
    static func mode(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }

    func testAnImportBeforeTheFirstServeLeavesOnlyPrivateFiles() throws {
        let fixture = try ConsortiumFixture()
        defer { fixture.remove() }
        let configuration = try fixture.consortium.configuration(of: "bank-a")
        // A folder and a database left looser by an earlier version are tightened too.
        try FileManager.default.createDirectory(at: configuration.dataDirectory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o755])
        try fixture.importCSV(into: "bank-a", dataset: "customers", phones: phoneNumbers(50, seed: 3))
        XCTAssertEqual(Self.mode(configuration.dataDirectory.path), 0o700)
        let db = configuration.databasePath.path
        XCTAssertEqual(Self.mode(db), 0o600)
        for suffix in ["-wal", "-shm"] where FileManager.default.fileExists(atPath: db + suffix) {
            XCTAssertEqual(Self.mode(db + suffix), 0o600, suffix)
        }
        chmod(db, 0o644)
        _ = try NodeStore(path: configuration.databasePath)
        XCTAssertEqual(Self.mode(db), 0o600, "a database found 0644 is made 0600 when the node opens it")
    }

    func testTheDaemonRefusesAPrivateKeyOthersCanRead() async throws {
        let fixture = try ConsortiumFixture()
        defer { fixture.remove() }
        let key = try fixture.consortium.configuration(of: "bank-a").tls.privateKey.path
        for loose in [0o644, 0o640, 0o666] {
            chmod(key, mode_t(loose))
            do {
                let node = try await fixture.consortium.start("bank-a", logger: ConsortiumFixture.quietLogger)
                await node.stop()
                XCTFail("started with a key of mode \(String(loose, radix: 8))")
            } catch let error as PrivateFileError {
                XCTAssertTrue("\(error)".contains("chmod 600 \(key)"), "\(error)")
            }
        }
        chmod(key, 0o600)
        let node = try await fixture.consortium.start("bank-a", logger: ConsortiumFixture.quietLogger)
        await node.stop()
    }

    func testScratchCopiesAreCreatedPrivateAndRemovedAtTheNextStart() async throws {
        let fixture = try ConsortiumFixture()
        defer { fixture.remove() }
        let phones = phoneNumbers(200, seed: 4)
        let (configuration, source) = try Self.scratchCopy(of: phones, in: fixture)
        XCTAssertEqual(source.count, Set(phones).count)
        XCTAssertEqual(Self.mode(configuration.jobsDirectory.path), 0o700)
        XCTAssertEqual(Self.mode(source.path.path), 0o600, "the scratch copy holds plaintext identifiers")
        // The daemon was killed here: the copy is left behind, and removed when the node starts again.
        let node = try await fixture.consortium.start("bank-a", logger: ConsortiumFixture.quietLogger)
        XCTAssertFalse(FileManager.default.fileExists(atPath: source.path.path))
        XCTAssertEqual(try DatasetCatalog(store: node.store).describe("customers").rowCount, phones.count, "the node's own data is untouched")
        await node.stop()
    }

    /// A job that fails at its deadline removes its scratch copy while the abandoned role may still be
    /// reading it synchronously (cancellation does not stop a synchronous read). The copy is gone from
    /// the folder at once, and the role's reads still answer: they must never reach a closed connection
    /// (GRDB then hands SQLite a NULL handle and the whole node dies with SIGSEGV).
    func testAScratchCopyRemovedWhileItsRoleStillReadsIsGoneAndTheReadsStillAnswer() throws {
        let fixture = try ConsortiumFixture()
        defer { fixture.remove() }
        let phones = phoneNumbers(300, seed: 5)
        let (configuration, source) = try Self.scratchCopy(of: phones, in: fixture)
        var before: [String] = []
        try source.forEachIdentifier(atPositions: Array(0..<source.count)) { before.append($0) }
        source.remove()
        XCTAssertFalse(FileManager.default.fileExists(atPath: source.path.path), "the plaintext copy leaves the folder at once")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: configuration.jobsDirectory.path).filter { $0.hasPrefix("job-0123456789ab") }, [])
        var after: [String] = []
        try source.forEachIdentifier(atPositions: Array(0..<source.count)) { after.append($0) }
        XCTAssertEqual(after, before)
        XCTAssertEqual(Set(after).count, Set(phones).count)
        XCTAssertEqual(try source.totals().count, source.count)
    }

    /// bank-a's `customers` imported with these phones, and a job's scratch copy of them prepared as a job
    /// would (the node not started).
    static func scratchCopy(of phones: [String], in fixture: ConsortiumFixture) throws -> (NodeConfiguration, SQLiteIdentifierSource) {
        try fixture.importCSV(into: "bank-a", dataset: "customers", phones: phones)
        let configuration = try fixture.consortium.configuration(of: "bank-a")
        let store = try NodeStore(path: configuration.databasePath)
        let source = try SQLiteIdentifierSource.prepare(jobID: "job-0123456789ab", dataset: "customers", column: "phone", store: store,
                                                        scratchDirectory: configuration.jobsDirectory)
        return (configuration, source)
    }
}
