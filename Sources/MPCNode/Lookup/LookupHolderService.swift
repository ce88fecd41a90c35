import Foundation
import Logging
import MPCCrypto
import MPCIdentity
import MPCProtocols
import MPCTransport

/// The holder's standing lookup service (Protocols/list-lookup.md): serves queriers' "lookup" sessions
/// (OPRF evaluations, after its policy and quotas) and "lookup-sync" sessions (a list's table or delta,
/// signed), and keeps its lists in step with their datasets.
public actor LookupHolderService {
    let nodeID: String
    let policy: NodePolicy
    let lists: HolderListStore
    let signatures: NodeSignatures
    let logger: Logger
    private var quota: LookupQuota
    private var states: [String: HolderListState] = [:]
    /// Open sessions of queriers (closed when the node stops: a querier's link never ends by itself).
    private var sessions: [ObjectIdentifier: (channel: TLSMessageChannel, task: Task<Void, Never>?)] = [:]
    private var stopped = false

    private func opened(_ channel: TLSMessageChannel) -> Bool {
        guard !stopped else { return false }
        sessions[ObjectIdentifier(channel)] = (channel, nil)
        return true
    }

    private func serving(_ channel: TLSMessageChannel, _ task: Task<Void, Never>) {
        if stopped { task.cancel() } else { sessions[ObjectIdentifier(channel)]?.task = task }
    }

    private func closed(_ channel: TLSMessageChannel) { sessions[ObjectIdentifier(channel)] = nil }

    /// Ends every querier's session (the node is stopping) and refuses new ones.
    public func closeSessions() async {
        stopped = true
        let open = sessions.values
        sessions = [:]
        // Cancelling the serving task ends its wait for the querier's next request at once (a TLS close
        // alone waits for the querier's close_notify).
        for session in open {
            session.task?.cancel()
            await session.channel.abort()
        }
        for session in open { await session.task?.value }
    }

    public init(nodeID: String, policy: NodePolicy, store: NodeStore, signatures: NodeSignatures, logger: Logger) throws {
        self.nodeID = nodeID
        self.policy = policy
        self.lists = HolderListStore(store: store, holder: nodeID)
        self.signatures = signatures
        self.logger = logger
        self.quota = try LookupQuota(store: store)
    }

    /// The datasets this node offers as lists.
    public var offered: [(String, LookupListPolicy)] {
        policy.datasets.compactMap { name, rule in rule.lookupList.map { (name, $0) } }.sorted { $0.0 < $1.0 }
    }

    /// Brings every offered list up to date with its dataset (a list whose dataset is not imported yet is
    /// skipped, logged). Returns the lists that changed.
    @discardableResult
    public func refreshAll() -> [String: HolderListChange] {
        var changed: [String: HolderListChange] = [:]
        for (name, rule) in offered {
            do {
                if let change = try refresh(name, rule: rule) { changed[name] = change }
            } catch StoreError.unknownDataset {
                logger.debug("lookup list not built: its dataset is not imported", metadata: ["list": "\(name)"])
            } catch {
                logger.error("lookup list not updated", metadata: ["list": "\(name)", "error": "\(error)"])
            }
        }
        return changed
    }

    func refresh(_ name: String, rule: LookupListPolicy, rotate: Bool = false) throws -> HolderListChange? {
        let started = ContinuousClock.now
        let change = try lists.refresh(dataset: name, policy: rule, rotate: rotate) { done, total in
            if total >= 100_000, done % 163_840 == 0 || done == total {
                self.logger.info("building lookup list", metadata: ["list": "\(name)", "entries": "\(done)/\(total)"])
            }
        }
        states[name] = try lists.state(name)
        if let change {
            logger.info(rotate ? "lookup list key rotated" : "lookup list updated", metadata: [
                "list": "\(name)", "version": "\(change.version)", "added": "\(change.added)", "removed": "\(change.removed)",
                "entries": "\(change.entries)", "seconds": "\((ContinuousClock.now - started).components.seconds)", "phases": "\(change.phases)",
            ])
        }
        return change
    }

    /// Draws a new key for `list` and rebuilds its entries; queriers fetch the full table on their next
    /// lookup or sync.
    public func rotate(_ list: String) throws -> HolderListChange {
        guard let rule = policy.datasets[list]?.lookupList else { throw LookupServiceError.notAList(list) }
        guard let change = try refresh(list, rule: rule, rotate: true) else { throw LookupServiceError.notAList(list) }
        return change
    }

    /// The list's key and version for `querier`, or nil when its policy does not offer it to that member.
    func list(_ name: String, for querier: String) -> ListLookupHolder.List? {
        guard let rule = policy.datasets[name]?.lookupList, rule.queriers.contains(querier) else { return nil }
        if states[name] == nil { states[name] = try? lists.state(name) }
        guard let state = states[name] else { return nil }
        return ListLookupHolder.List(keyID: state.keyID, key: state.key, version: state.version)
    }

    func admit(_ name: String, count: Int, querier: String) throws {
        guard let rule = policy.datasets[name]?.lookupList, rule.queriers.contains(querier) else {
            throw LookupRefusal.notOffered(querier: querier, list: name)
        }
        do { try quota.take(querier: querier, list: name, count: count, policy: rule) } catch {
            logger.notice("lookup refused", metadata: ["querier": "\(querier)", "list": "\(name)", "keys": "\(count)", "reason": "\(error)"])
            throw error
        }
    }

    /// Writes the usage counts and the audit records of hours that have ended.
    public func flushUsage(now: Date = Date()) {
        do { try quota.flush(store: lists.store, now: now) } catch {
            logger.error("lookup usage not recorded", metadata: ["error": "\(error)"])
        }
    }

    /// Today's evaluations for a querier on a list (for status).
    public func used(querier: String, list: String) -> Int { quota.used(querier: querier, list: list) }

    public func state(_ list: String) -> HolderListState? { states[list] ?? (try? lists.state(list)) }

    // MARK: Sessions

    /// A querier's "lookup" session: evaluations until it closes the session.
    public nonisolated func serveQueries(_ channel: TLSMessageChannel, from querier: String) async {
        guard await opened(channel) else { return await channel.close() }
        defer { Task { await self.closed(channel) } }
        let holder = ListLookupHolder(
            maximumBatch: 4096,
            lists: { [weak self] name in await self?.list(name, for: querier) },
            admit: { [weak self] name, count in try await self?.admit(name, count: count, querier: querier) })
        let logger = self.logger
        let task = Task {
            do {
                let evaluated = try await holder.serve(channel)
                logger.debug("lookup session ended", metadata: ["querier": "\(querier)", "evaluated": "\(evaluated)"])
            } catch is CancellationError {
                logger.debug("lookup session closed: this node is stopping", metadata: ["querier": "\(querier)"])
            } catch {
                logger.warning("lookup session ended with an error", metadata: ["querier": "\(querier)", "error": "\(error)"])
            }
        }
        await serving(channel, task)
        await task.value
    }

    /// A querier's "lookup-sync" session: one list's table or delta.
    public nonisolated func serveSync(_ channel: TLSMessageChannel, from querier: String) async {
        guard await opened(channel) else { return await channel.close() }
        defer { Task { await self.closed(channel) } }
        let session = ProtocolSession(channel: channel)
        do {
            let request = try await ListTableTransfer.receiveRequest(session)
            guard let rule = policy.datasets[request.list]?.lookupList, rule.queriers.contains(querier) else {
                try await ListTableTransfer.refuse(session, reason: LookupRefusal.notOffered(querier: querier, list: PeerText.cut(request.list, limit: 80)).description)
                await channel.close()
                return
            }
            // The holder's watch: a dataset changed since the last refresh becomes a version now.
            let state = try await refreshedState(request.list, rule: rule)
            guard let state else {
                try await ListTableTransfer.refuse(session, reason: "list '\(request.list)' is not ready at \(nodeID): its dataset is not imported")
                await channel.close()
                return
            }
            let plan = try lists.plan(dataset: request.list, state: state, keyID: request.keyID, version: request.version)
            let info = try DatasetCatalog(store: lists.store).describe(request.list)
            let header = ListTableHeader(
                list: request.list, keyID: state.keyID, version: state.version, baseVersion: plan.base, full: plan.full,
                added: UInt64(plan.added), removed: UInt64(plan.removed), entries: UInt64(state.entries),
                labelColumns: rule.labelColumns, disclosure: rule.disclosure.rawValue, riskColumn: rule.riskColumn ?? "",
                riskLevels: rule.riskLevels, normalization: info.normalization,
                maximumPerSecond: UInt64(rule.maximumPerSecond), maximumPerDay: UInt64(rule.maximumPerDay))
            let signatures = self.signatures
            try await ListTableTransfer.send(session, holder: nodeID, header: header,
                                             next: lists.batches(dataset: request.list, full: plan.full, base: plan.base),
                                             sign: { let s = try signatures.sign($0); return ListTableSignature(signature: s.signature, certificate: s.certificateDER) })
            logger.info("lookup table sent", metadata: [
                "querier": "\(querier)", "list": "\(request.list)", "version": "\(state.version)",
                "kind": "\(plan.full ? "full" : "delta from \(plan.base)")", "added": "\(plan.added)", "removed": "\(plan.removed)",
            ])
            // The querier closes once it has applied the update.
            _ = try? await channel.receive()
        } catch {
            logger.warning("lookup sync ended with an error", metadata: ["querier": "\(querier)", "error": "\(error)"])
        }
        await channel.close()
    }

    private func refreshedState(_ name: String, rule: LookupListPolicy) throws -> HolderListState? {
        do { _ = try refresh(name, rule: rule) } catch StoreError.unknownDataset { return nil }
        return states[name]
    }
}

public enum LookupServiceError: Error, CustomStringConvertible {
    case notAList(String)
    case notSubscribed(String)
    case badKey(String)
    case noLists

    public var description: String {
        switch self {
        case .notAList(let l): return "'\(l)' is not a lookup list of this node: add lookup_lists to its dataset policy"
        case .notSubscribed(let l): return "this node does not subscribe to '\(l)': add it to policy.lookups.subscribe (holder:list)"
        case .badKey(let d): return d
        case .noLists: return "this node subscribes to no lookup lists: add policy.lookups.subscribe (holder:list) to its configuration"
        }
    }
}

extension LookupHolderService {
    /// Each offered list's state and today's evaluations per querier.
    public func offeredStatus() -> [OfferedListStatus] {
        offered.map { name, rule in
            let state = state(name)
            return OfferedListStatus(list: name, keyID: state?.keyID, version: state?.version, entries: state?.entries,
                                     updatedAt: state?.updatedAt, queriers: rule.queriers.sorted(),
                                     maximumPerSecond: rule.maximumPerSecond, maximumPerDay: rule.maximumPerDay,
                                     usedToday: Dictionary(uniqueKeysWithValues: rule.queriers.map { ($0, used(querier: $0, list: name)) }))
        }
    }
}

/// "holder:list" names in a lookup request.
public enum LookupRequestLists {
    public static func parse(_ names: [String]?) throws -> [LookupSubscriptions.Subscription]? {
        guard let names, !names.isEmpty else { return nil }
        return try names.map { name in
            guard let s = LookupSubscriptions.Subscription(parsing: name) else {
                throw LookupServiceError.badKey("'\(PeerText.cut(name, limit: 60))' is not holder:list")
            }
            return s
        }
    }
}
