import Foundation
import Logging
import MPCCrypto
import MPCIdentity
import MPCProtocols
import MPCTransport
import Synchronization

/// One key's answer (Protocols/list-lookup.md, "Online" and "Multi-holder answers").
public struct LookupKeyResult: Codable, Sendable, Equatable {
    public struct Hit: Codable, Sendable, Equatable {
        public var holder: String
        public var list: String
        public var label: [String: String]
        public var version: UInt64
    }
    public struct Checked: Codable, Sendable, Equatable {
        public var holder: String
        public var list: String
        public var version: UInt64
    }
    public struct NotAsked: Codable, Sendable, Equatable {
        public var holder: String
        public var list: String
        public var reason: String
    }
    /// Lists whose holders disclose only a count: how many list the key, and the highest risk among them.
    public struct Counted: Codable, Sendable, Equatable {
        public var listedBy: Int
        public var highestRisk: String?
        public init(listedBy: Int, highestRisk: String?) { self.listedBy = listedBy; self.highestRisk = highestRisk }

        enum CodingKeys: String, CodingKey { case listedBy = "listed_by", highestRisk = "highest_risk" }
    }

    public var key: String
    public var listed: Bool
    public var hits: [Hit]
    public var counted: Counted?
    /// Every list that answered, with the version the answer came from (a hit or not).
    public var checked: [Checked]
    /// Lists that could not be asked, and why: never a silent "not listed".
    public var notAsked: [NotAsked]

    enum CodingKeys: String, CodingKey {
        case key, listed, hits, counted = "listed_by_others", checked, notAsked = "not_asked"
    }
}

/// A subscribed list's state at the querier (`mpcnode lookup status`).
public struct LookupListStatus: Codable, Sendable, Equatable {
    public var holder: String
    public var list: String
    public var keyID: String?
    public var version: UInt64?
    public var entries: UInt64?
    public var updatedAt: Date?
    public var indexBytes: Int
    public var disclosure: String?
    public var labelColumns: [String]
    public var maximumPerSecond: UInt64?
    public var maximumPerDay: UInt64?
    public var usedToday: Int
    public var quotaLeftToday: Int?
    public var lastSyncError: String?

    enum CodingKeys: String, CodingKey {
        case holder, list, keyID = "key_id", version, entries, updatedAt = "updated_at", indexBytes = "index_bytes", disclosure
        case labelColumns = "label_columns", maximumPerSecond = "max_per_second", maximumPerDay = "max_per_day"
        case usedToday = "used_today", quotaLeftToday = "quota_left_today", lastSyncError = "last_sync_error"
    }
}

/// The querier's lookup service: keeps the subscribed lists' tables in step with their holders (a sync
/// at start, every `sync_seconds`, and whenever an answer names a newer version or key) and answers
/// lookups against every subscribed list in parallel, one OPRF round trip per holder.
public actor LookupQuerierService {
    public typealias Subscription = LookupSubscriptions.Subscription
    let nodeID: String
    let subscriptions: LookupSubscriptions
    let tables: SubscribedTables
    let transport: PeerTransport
    let addresses: [String: PeerAddress]
    let signatures: NodeSignatures
    let logger: Logger
    private var links: [String: HolderLink] = [:]
    private var syncs: [Subscription: Task<Void, Error>] = [:]
    private var syncErrors: [Subscription: String] = [:]
    private var usedToday: [Subscription: Int] = [:]
    private var usageDay = ""
    private var loop: Task<Void, Never>?
    /// Set by `stop`.
    private var stopped = false
    /// The most entries a holder's table may have (a lying holder cannot fill this node's disk).
    public static let maximumEntries: UInt64 = 50_000_000
    public static let maximumKeyBytes = DatasetCatalog.maximumIdentifierBytes

    public init(nodeID: String, subscriptions: LookupSubscriptions, store: NodeStore, transport: PeerTransport,
                addresses: [String: PeerAddress], signatures: NodeSignatures, logger: Logger) throws {
        self.nodeID = nodeID
        self.subscriptions = subscriptions
        self.tables = try SubscribedTables(store: store)
        self.transport = transport
        self.addresses = addresses
        self.signatures = signatures
        self.logger = logger
    }

    /// Starts the periodic sync (the first one at once).
    public func start() {
        guard loop == nil, !subscriptions.subscriptions.isEmpty else { return }
        let seconds = subscriptions.syncSeconds
        loop = Task { [weak self] in
            while !Task.isCancelled {
                await self?.syncAll()
                try? await Task.sleep(for: .seconds(seconds))
            }
        }
    }

    /// Stops the periodic sync, cancels and waits for syncs under way (a stopping node's connections must
    /// be done before its event loops shut down) and closes the links to holders. From then on no sync
    /// starts and no link opens (`Stopping`), also for a lookup that arrives meanwhile.
    public func stop() async {
        stopped = true
        let periodic = loop
        loop = nil
        periodic?.cancel()
        let running = Array(syncs.values)
        for sync in running { sync.cancel() }
        await periodic?.value
        for sync in running { _ = try? await sync.value }
        let open = links
        links = [:]
        for link in open.values { await link.close() }
    }

    /// Why no sync starts and no link opens once `stop` has begun.
    struct Stopping: Error, CustomStringConvertible {
        var description: String { "this node is stopping" }
    }

    /// Syncs every subscription (in parallel); returns the errors by subscription.
    @discardableResult
    public func syncAll() async -> [String: String] {
        await withTaskGroup(of: (Subscription, String?).self) { group in
            for s in subscriptions.subscriptions {
                group.addTask { do { try await self.sync(s); return (s, nil) } catch { return (s, "\(error)") } }
            }
            var errors: [String: String] = [:]
            for await (s, e) in group { if let e { errors[s.description] = e } }
            return errors
        }
    }

    /// Brings one subscription's table up to date (concurrent calls share one sync).
    public func sync(_ s: Subscription) async throws {
        guard !stopped else { throw Stopping() }
        if let running = syncs[s] { return try await running.value }
        let task = Task { try await self.performSync(s) }
        syncs[s] = task
        defer { syncs[s] = nil }
        do {
            try await task.value
            syncErrors[s] = nil
        } catch {
            syncErrors[s] = "\(error)"
            throw error
        }
    }

    private func performSync(_ s: Subscription) async throws {
        guard let address = addresses[s.holder] else { throw TransportError.unknownPeer(s.holder) }
        let current = tables.table(holder: s.holder, list: s.list)
        let tables = self.tables, signatures = self.signatures
        let started = ContinuousClock.now
        let receiving = Mutex<TableUpdate?>(nil)
        do {
            let (update, signature) = try await transport.withSession(jobID: "", service: LookupServices.sync, to: s.holder, at: address) { channel in
                let session = ProtocolSession(channel: channel)
                try await ListTableTransfer.request(session, list: s.list, keyID: current?.header.keyID ?? "", version: current?.header.version ?? 0)
                var signature: ListTableSignature?
                var update: TableUpdate?
                _ = try await ListTableTransfer.receive(
                    session, list: s.list, maximumEntries: Self.maximumEntries,
                    accept: { header in
                        update = try tables.begin(holder: s.holder, header: header)
                        receiving.withLock { $0 = update }
                    },
                    store: { try tables.stage(update!, $0) },
                    verify: { message, sig in
                        try signatures.verify(signature: sig.signature, message: message, nodeID: s.holder, certificateDER: sig.certificate)
                        signature = sig
                    })
                await channel.close()
                return (update!, signature!)
            }
            let header = update.header
            // Already at the holder's version under its key: nothing to apply.
            if current?.header.version == header.version, current?.header.keyID == header.keyID {
                tables.discard(update)
                return
            }
            let received = ContinuousClock.now
            try tables.apply(update, signature: signature)
            func seconds(_ d: Duration) -> String { String(format: "%.2f", Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18) }
            logger.info("lookup table updated", metadata: [
                "receive_seconds": "\(seconds(received - started))", "apply_seconds": "\(seconds(ContinuousClock.now - received))",
                "holder": "\(s.holder)", "list": "\(s.list)", "version": "\(header.version)", "key_id": "\(header.keyID)",
                "kind": "\(header.full ? "full" : "delta from \(header.baseVersion)")", "added": "\(header.added)",
                "removed": "\(header.removed)", "entries": "\(header.entries)",
            ])
        } catch {
            if let update = receiving.withLock({ $0 }) { tables.discard(update) }
            throw error
        }
    }

    private func link(_ holder: String, address: PeerAddress) throws -> HolderLink {
        guard !stopped else { throw Stopping() }
        if let l = links[holder] { return l }
        let l = HolderLink(holder: holder, address: address, transport: transport, logger: logger)
        links[holder] = l
        return l
    }

    private func count(_ s: Subscription, _ n: Int) {
        let day = UTCHour.day(Date())
        if day != usageDay { usageDay = day; usedToday = [:] }
        usedToday[s, default: 0] += n
    }

    // MARK: Lookups

    /// Looks `keys` up in every subscribed list (or those named), in parallel. Throws
    /// `LookupServiceError.badKey` for a key that is empty, too long or normalises to nothing.
    public func lookup(_ keys: [String], lists only: [Subscription]? = nil) async throws -> [LookupKeyResult] {
        let chosen = only ?? subscriptions.subscriptions
        if let only { for s in only where !subscriptions.subscriptions.contains(s) { throw LookupServiceError.notSubscribed(s.description) } }
        guard !chosen.isEmpty else { throw LookupServiceError.noLists }
        for (i, key) in keys.enumerated() {
            guard !key.isEmpty else { throw LookupServiceError.badKey("key \(i + 1) is empty") }
            guard key.utf8.count <= Self.maximumKeyBytes else {
                throw LookupServiceError.badKey("key \(i + 1) has \(key.utf8.count) bytes (at most \(Self.maximumKeyBytes))")
            }
        }
        // A key that normalises to nothing under a list's normalisation is a bad key, not a miss.
        for s in chosen {
            guard let table = tables.table(holder: s.holder, list: s.list) else { continue }
            let normalization = IdentifierNormalization(description: table.header.normalization) ?? IdentifierNormalization()
            for (i, key) in keys.enumerated() where normalization.apply(key).isEmpty {
                throw LookupServiceError.badKey("key \(i + 1) ('\(PeerText.cut(key, limit: 40))') normalises to nothing under \(s)'s normalisation (\(normalization))")
            }
        }
        // One blinded element per key and normalisation, asked of every holder (Protocols/list-lookup.md,
        // "Online": the holders see the same random element, as they see the same moment and batch position).
        var normalised = Set<String>()
        for s in chosen {
            let normalization = tables.table(holder: s.holder, list: s.list).flatMap { IdentifierNormalization(description: $0.header.normalization) } ?? IdentifierNormalization()
            for key in keys { normalised.insert(normalization.apply(key)) }
        }
        let distinct = Array(normalised)
        let hashed = Dictionary(uniqueKeysWithValues: zip(distinct, try LabelledLookup.Query.shared(for: distinct.map { Array($0.utf8) })))
        var results = keys.map { LookupKeyResult(key: $0, listed: false, hits: [], counted: nil, checked: [], notAsked: []) }
        let timeout = subscriptions.timeoutMilliseconds
        let outcomes = await withTaskGroup(of: (Subscription, Result<[ListAnswer?], Error>).self) { group in
            for s in chosen {
                group.addTask { (s, await self.ask(s, keys: keys, hashed: hashed, timeoutMilliseconds: timeout)) }
            }
            var out: [(Subscription, Result<[ListAnswer?], Error>)] = []
            for await o in group { out.append(o) }
            return out.sorted { $0.0.description < $1.0.description }
        }
        for (s, outcome) in outcomes {
            switch outcome {
            case .failure(let error):
                for i in results.indices { results[i].notAsked.append(.init(holder: s.holder, list: s.list, reason: "\(error)")) }
            case .success(let answers):
                let table = tables.table(holder: s.holder, list: s.list)
                for (i, answer) in answers.enumerated() {
                    guard let answer else { continue }
                    results[i].checked.append(.init(holder: s.holder, list: s.list, version: answer.version))
                    guard let label = answer.label else { continue }
                    results[i].listed = true
                    if table?.header.disclosure == LookupListPolicy.Disclosure.count.rawValue {
                        var counted = results[i].counted ?? .init(listedBy: 0, highestRisk: nil)
                        counted.listedBy += 1
                        if let header = table?.header, !header.riskColumn.isEmpty, let risk = label[header.riskColumn] {
                            counted.highestRisk = Self.higher(counted.highestRisk, risk, levels: header.riskLevels)
                        }
                        results[i].counted = counted
                    } else {
                        results[i].hits.append(.init(holder: s.holder, list: s.list, label: label, version: answer.version))
                    }
                }
            }
        }
        return results
    }

    static func higher(_ a: String?, _ b: String, levels: [String]) -> String {
        guard let a else { return b }
        let ia = levels.firstIndex(of: a) ?? -1, ib = levels.firstIndex(of: b) ?? -1
        return ib > ia ? b : a
    }

    struct ListAnswer: Sendable { var version: UInt64; var label: [String: String]? }

    /// One list's answers for `keys` (nil where a key was not asked), within the time limit.
    private func ask(_ s: Subscription, keys: [String], hashed: [String: LabelledLookup.Query], timeoutMilliseconds: Int) async -> Result<[ListAnswer?], Error> {
        do {
            return .success(try await Deadline.run(milliseconds: timeoutMilliseconds, onTimeout: LookupLinkError.timedOut(holder: s.holder, milliseconds: timeoutMilliseconds)) {
                try await self.askWithoutDeadline(s, keys: keys, hashed: hashed)
            })
        } catch { return .failure(error) }
    }

    private nonisolated func askWithoutDeadline(_ s: Subscription, keys: [String], hashed: [String: LabelledLookup.Query]) async throws -> [ListAnswer?] {
        guard let address = addresses[s.holder] else { throw TransportError.unknownPeer(s.holder) }
        if tables.table(holder: s.holder, list: s.list) == nil {
            // Never synced (the holder was down at start): one attempt now.
            do { try await self.sync(s) } catch {
                throw NotReady(subscription: s, detail: "\(error)")
            }
        }
        guard var table = tables.table(holder: s.holder, list: s.list) else { throw NotReady(subscription: s, detail: "no table") }
        let link = try await self.link(s.holder, address: address)
        if table.header.maximumPerSecond > 0 { await link.setMaximumBatch(Int(table.header.maximumPerSecond)) }
        let normalization = IdentifierNormalization(description: table.header.normalization) ?? IdentifierNormalization()
        var attempt = 0
        while true {
            attempt += 1
            let queries = try ParallelMap.map(keys) { key -> LabelledLookup.Query in
                let n = normalization.apply(key)
                // Asked again (a rotated key): a fresh blind, never the same element twice to one holder.
                return try (attempt == 1 ? hashed[n] : nil) ?? LabelledLookup.Query(sharedFor: Array(n.utf8))
            }
            let batch = await link.maximumBatch
            var answers: [GroupElement] = []
            var version: UInt64 = 0
            do {
                var start = 0
                while start < queries.count {
                    let slice = queries[start..<min(start + batch, queries.count)]
                    let answer = try await link.evaluate(list: s.list, keyID: table.header.keyID, blinded: slice.map(\.blinded.element))
                    answers += answer.answers
                    version = max(version, answer.version)
                    start += slice.count
                }
                await count(s, queries.count)
            } catch ListLookupError.refused(_, let reason, _) where attempt == 1 && reason.contains("fetch its table again") {
                // The key was rotated: the full table under the new key, then the lookup again.
                try await self.sync(s)
                guard let t = tables.table(holder: s.holder, list: s.list) else { throw NotReady(subscription: s, detail: "no table") }
                table = t
                continue
            }
            if version > table.header.version {
                // The holder has moved on: its delta first, so the answer is from its current version.
                do { try await self.sync(s) } catch { logger.warning("lookup table not updated", metadata: ["subscription": "\(s)", "error": "\(error)"]) }
                table = tables.table(holder: s.holder, list: s.list) ?? table
            }
            let context = LabelledLookup.context(holder: s.holder, list: s.list, keyID: table.header.keyID)
            let outputs: [(tag: UInt64, labelKey: [UInt8])]
            do {
                outputs = try ParallelMap.map(Array(zip(queries, answers))) { try $0.0.output(evaluated: $0.1) }
            } catch let error as CryptoError {
                throw ProtocolError.protocolViolation(peer: s.holder, detail: "its answer holds an element that cannot be unblinded (\(error))")
            }
            var out: [ListAnswer?] = []
            for (tag, labelKey) in outputs {
                var label: [String: String]?
                if table.contains(tag) {
                    var sealedLabels = try tables.sealedLabels(table, tag: tag)
                    if sealedLabels.isEmpty, let now = tables.table(holder: s.holder, list: s.list), now.tableID != table.tableID {
                        // A full update replaced the table (and deleted its rows) since this lookup began.
                        sealedLabels = try tables.sealedLabels(now, tag: tag)
                    }
                    for sealed in sealedLabels {
                        if let opened = try? ShareEncryption.open(sealed, key: labelKey, associatedData: context),
                           let object = try? JSONSerialization.jsonObject(with: Data(opened)) as? [String: String] {
                            label = object
                            break
                        }
                    }
                }
                out.append(ListAnswer(version: table.header.version, label: label))
            }
            return out
        }
    }

    struct NotReady: Error, CustomStringConvertible {
        var subscription: Subscription
        var detail: String
        var description: String { "no table of \(subscription) yet: \(detail)" }
    }

    // MARK: Status

    public func status() -> [LookupListStatus] {
        subscriptions.subscriptions.map { s in
            let t = tables.table(holder: s.holder, list: s.list)
            let used = usedToday[s] ?? 0
            return LookupListStatus(
                holder: s.holder, list: s.list, keyID: t?.header.keyID, version: t?.header.version, entries: t?.header.entries,
                updatedAt: t?.updatedAt, indexBytes: t?.indexBytes ?? 0, disclosure: t?.header.disclosure,
                labelColumns: t?.header.labelColumns ?? [], maximumPerSecond: t?.header.maximumPerSecond,
                maximumPerDay: t?.header.maximumPerDay, usedToday: used,
                quotaLeftToday: t.map { max(0, Int($0.header.maximumPerDay) - used) }, lastSyncError: syncErrors[s])
        }
    }
}

/// Runs an operation with a time limit without waiting for it past the limit (its result, if it comes
/// later, is dropped).
enum Deadline {
    static func run<T: Sendable>(milliseconds: Int, onTimeout: @autoclosure @escaping @Sendable () -> Error,
                                 _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        let once = Once<T>()
        return try await withCheckedThrowingContinuation { continuation in
            once.set(continuation)
            let work = Task { once.resume(with: await Result(catching: { try await operation() })) }
            Task {
                try? await Task.sleep(for: .milliseconds(milliseconds))
                if once.resume(with: .failure(onTimeout())) { work.cancel() }
            }
        }
    }

    final class Once<T: Sendable>: @unchecked Sendable {
        private let lock = NSLock()
        private var continuation: CheckedContinuation<T, Error>?
        func set(_ c: CheckedContinuation<T, Error>) { lock.withLock { continuation = c } }
        @discardableResult
        func resume(with result: Result<T, Error>) -> Bool {
            guard let c = lock.withLock({ () -> CheckedContinuation<T, Error>? in defer { continuation = nil }; return continuation }) else { return false }
            c.resume(with: result)
            return true
        }
    }
}

extension Result where Failure == Error {
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
