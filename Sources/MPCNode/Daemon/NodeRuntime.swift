import Foundation
import GRDB
import Logging
import MPCIdentity
import MPCTransport
import MPCWire
import NIOCore
import NIOPosix
import Synchronization

/// A running node: its peer listener, admin endpoint and job engine. `mpcnode serve` runs one under
/// swift-service-lifecycle; tests start several in one process with real listeners.
public final class NodeRuntime: Sendable {
    public let configuration: NodeConfiguration
    public let identity: NodeIdentity
    public let store: NodeStore
    public let engine: JobEngine
    public let transport: PeerTransport
    /// The holder's and the querier's lookup services (Protocols/list-lookup.md).
    public let lookupHolder: LookupHolderService
    public let lookupQuerier: LookupQuerierService
    /// This node's Merkle log and the gossip of tree heads with its peers (Protocols/ledger.md).
    public let ledger: LedgerGossip
    /// The signed receipts of jobs (issued here when this node coordinates).
    public let receipts: JobReceipts
    /// This node's metrics (`/metrics` of the HTTP API).
    public let metrics: NodeMetrics
    let signatures: NodeSignatures
    public let peerPort: Int
    let listener: PeerListener
    let admin: AdminServer
    let group: MultiThreadedEventLoopGroup
    let tasks: [Task<Void, Never>]
    let logger: Logger
    let startedAt: Date
    /// The one stop of this node: later calls wait for it (a second close of a listener whose event
    /// loops are already shut down would wait forever).
    private let stopping = Mutex<Task<Void, Never>?>(nil)

    /// `watchesLookupLists`: whether the node brings its lookup lists up to date with their datasets every
    /// 2 seconds and syncs its subscribed lists at start and periodically (always in a daemon; the lookup
    /// benchmark turns it off to time each build and sync itself).
    /// Checks the node's certificate, opens its store, ends jobs interrupted by a previous stop, and
    /// starts listening. Throws (and starts nothing) when the certificate is expired, not issued by the
    /// consortium CA, or for another node.
    public static func start(configuration: NodeConfiguration, logger: Logger,
                             transportOptions: TransportOptions? = nil,
                             sessionWaitTimeout: Duration = .seconds(60), faults: FaultHooks? = nil,
                             watchesLookupLists: Bool = true) async throws -> NodeRuntime {
        let identity = try CertificateCheck.verifyOwn(
            certificatePath: configuration.tls.certificate.path, privateKeyPath: configuration.tls.privateKey.path,
            caPath: configuration.tls.caCertificate.path, expectedNodeID: configuration.nodeID)
        guard identity.role != .worker else {
            throw NodeError.certificateRole(detail: "\(configuration.tls.certificate.path) is a worker certificate (role worker): a node serves with its own certificate (bank, coordinator or regulator); the worker certificate belongs under workers.certificate")
        }
        try PrivateFiles.checkKey(configuration.tls.privateKey.path)
        try PrivateFiles.folder(configuration.dataDirectory)
        let store = try NodeStore(path: configuration.databasePath)
        let descriptors = DescriptorLimit.raiseToHardLimit()
        logger.debug("open-file limit", metadata: ["descriptors": "\(descriptors)"])
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        var options = transportOptions ?? TransportOptions()
        let revocations = try Self.revocationList(configuration, own: identity)
        let metrics = NodeMetrics()
        let earlier = options.inboundHandshakeFailed
        options.inboundHandshakeFailed = { reason in earlier?(reason); metrics.handshakeFailed(reason: reason) }
        if options.traffic == nil { options.traffic = metrics.trafficObserver(peers: Set(configuration.peers.keys)) }
        if transportOptions == nil { options.idleTimeout = .seconds(Int64(configuration.peerIdleTimeoutSeconds)) }
        let transport = try PeerTransport(
            identity: identity,
            material: TLSMaterial(certificatePath: configuration.tls.certificate.path,
                                  privateKeyPath: configuration.tls.privateKey.path,
                                  caCertificatePath: configuration.tls.caCertificate.path),
            group: group, options: options, logger: logger)
        transport.setRevocationList(revocations)
        metrics.observeJobs(of: store)
        let engine = JobEngine(configuration: configuration, store: store, transport: transport, logger: logger,
                               sessionWaitTimeout: sessionWaitTimeout, faults: faults, metrics: metrics)
        await engine.recoverAfterRestart()
        let signatures = NodeSignatures(try CertificateSignatures(certificatePath: configuration.tls.certificate.path,
                                                                  privateKeyPath: configuration.tls.privateKey.path,
                                                                  caPath: configuration.tls.caCertificate.path))
        let lookupHolder = try LookupHolderService(nodeID: identity.nodeID, policy: configuration.policy, store: store,
                                                   signatures: signatures, logger: logger)
        let lookupQuerier = try LookupQuerierService(nodeID: identity.nodeID, subscriptions: configuration.policy.lookups, store: store,
                                                     transport: transport, addresses: configuration.peers, signatures: signatures, logger: logger)
        let ledger = LedgerGossip(nodeID: identity.nodeID, store: store, signatures: signatures, transport: transport,
                                  peers: configuration.peers, metrics: metrics, logger: logger)
        let receipts = JobReceipts(nodeID: identity.nodeID, store: store, signatures: signatures, transport: transport,
                                   peers: configuration.peers, logger: logger) { jobID, digest, party in
            let proven = try await ledger.proveRecord(ofJob: jobID, event: "job.receipt", receiptSHA256: digest, at: party)
            return "leaf \(proven.leafIndex) of its signed head of \(proven.headSize) leaves"
        }
        if identity.role == .coordinator { receipts.issueWhenJobsEnd() }
        let listener: PeerListener
        do {
            listener = try await transport.bind(host: configuration.listen.host, port: configuration.listen.port,
                                                handler: NodeConnectionHandler(engine: engine, knownPeers: Set(configuration.peers.keys),
                                                                               lookups: lookupHolder, ledger: ledger, receipts: receipts))
        } catch {
            try? await group.shutdownGracefully()
            throw NodeError.cannotListen(address: configuration.listen.description, detail: "\(error)")
        }
        let startedAt = Date()
        let repository = JobRepository(store: store)
        let catalog = DatasetCatalog(store: store)
        let audit = AuditLog(store: store)
        let admin: AdminServer
        do {
            admin = try await AdminServer.bind(path: configuration.adminSocketPath, group: group, logger: logger,
                                               access: try AdminAccess.current(groupName: configuration.adminGroup)) { request in
                await Self.handle(request, configuration: configuration, identity: identity, engine: engine,
                                  repository: repository, catalog: catalog, audit: audit, startedAt: startedAt,
                                  lookupHolder: lookupHolder, lookupQuerier: lookupQuerier, signatures: signatures, ledger: ledger, receipts: receipts)
            }
        } catch {
            await listener.close()
            try? await group.shutdownGracefully()
            throw error
        }
        try audit.append(event: "node.started", jobID: nil, details: [
            "node": .string(identity.nodeID), "role": .string(identity.role.rawValue),
            "listen": .string("\(configuration.listen.host):\(listener.port)"),
        ])
        let tasks = [
            Task { do { try await listener.run() } catch { logger.error("peer listener stopped", metadata: ["error": "\(error)"]) } },
            Task { do { try await admin.run() } catch { logger.error("admin endpoint stopped", metadata: ["error": "\(error)"]) } },
            // The holder's watch of its lists' datasets, and its hourly usage records.
            Task {
                var tick = 0
                while !Task.isCancelled {
                    if watchesLookupLists { await lookupHolder.refreshAll() }
                    if tick % 15 == 0 { await lookupHolder.flushUsage() }
                    tick += 1
                    try? await Task.sleep(for: .seconds(2))
                }
            },
            // Tree-head gossip: the heads of a job's other nodes are pulled a few seconds after a job this node
            // took part in ends having run (so that heads covering the job's records are held soon; a refused
            // job ran no protocol and waits for the periodic pull), and every peer's every
            // `ledger.gossip_seconds`; this node signs a head whenever a peer asks and its log grew.
            Task {
                let ended = AsyncStream<[String]>.makeStream(bufferingPolicy: .bufferingNewest(16))
                store.jobStates.add { db, jobID, state in
                    guard state == .succeeded || state == .failed,
                          let bytes = try? Data.fetchOne(db, sql: "SELECT spec FROM job WHERE id = ?", arguments: [jobID]),
                          let spec = try? Mpcnode_V1_JobSpec(serializedBytes: bytes), let kind = try? JobKinds.kind(of: spec) else { return }
                    ended.continuation.yield(kind.participants(of: spec) + [spec.coordinator])
                }
                let period = Duration.seconds(configuration.ledgerGossipSeconds)
                await withTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for await nodes in ended.stream {
                            try? await Task.sleep(for: .seconds(2))
                            await ledger.pull(Set(nodes))
                        }
                    }
                    group.addTask {
                        while !Task.isCancelled {
                            try? await Task.sleep(for: period)
                            if Task.isCancelled { break }
                            await ledger.pullAll()
                        }
                        ended.continuation.finish()
                    }
                }
            },
        ]
        if watchesLookupLists { await lookupQuerier.start() }
        if faults != nil {
            logger.warning("fault injection is on: this node fails on purpose at a point a test chose (debug builds only)")
        }
        logger.info("node started", metadata: [
            "node": "\(identity.nodeID)", "role": "\(identity.role.rawValue)",
            "listen": "\(configuration.listen.host):\(listener.port)", "admin": "\(configuration.adminSocketPath.path)",
        ])
        let runtime = NodeRuntime(configuration: configuration, identity: identity, store: store, engine: engine, transport: transport,
                                  lookupHolder: lookupHolder, lookupQuerier: lookupQuerier, ledger: ledger, receipts: receipts, metrics: metrics, signatures: signatures,
                                  peerPort: listener.port, listener: listener, admin: admin, group: group, tasks: tasks, logger: logger, startedAt: startedAt)
        runtime.warnIfCertificateExpiresSoon()
        return runtime
    }

    private init(configuration: NodeConfiguration, identity: NodeIdentity, store: NodeStore, engine: JobEngine,
                 transport: PeerTransport, lookupHolder: LookupHolderService, lookupQuerier: LookupQuerierService, ledger: LedgerGossip, receipts: JobReceipts, metrics: NodeMetrics, signatures: NodeSignatures, peerPort: Int, listener: PeerListener, admin: AdminServer,
                 group: MultiThreadedEventLoopGroup, tasks: [Task<Void, Never>], logger: Logger, startedAt: Date) {
        self.configuration = configuration
        self.identity = identity
        self.store = store
        self.engine = engine
        self.transport = transport
        self.lookupHolder = lookupHolder
        self.lookupQuerier = lookupQuerier
        self.ledger = ledger
        self.receipts = receipts
        self.metrics = metrics
        self.signatures = signatures
        self.peerPort = peerPort
        self.listener = listener
        self.admin = admin
        self.group = group
        self.tasks = tasks
        self.logger = logger
        self.startedAt = startedAt
    }

    /// Loads the node's certificate, key and CA files again without stopping (after a renewal): they
    /// must verify as before (issued by the CA, valid, for this node id and role, matching the key, the
    /// key private); then new connections and the next signed lookup table use them, open connections
    /// finish with the old ones. Throws, changing nothing, otherwise. Returns the days the new certificate
    /// is valid for.
    @discardableResult
    public func reloadCertificates() throws -> Int {
        let tls = configuration.tls
        let renewed = try CertificateCheck.verifyOwn(certificatePath: tls.certificate.path, privateKeyPath: tls.privateKey.path,
                                                      caPath: tls.caCertificate.path, expectedNodeID: configuration.nodeID)
        guard renewed == identity else {
            throw NodeError.certificateMismatch(detail: "the new certificate says \(renewed), this node runs as \(identity); restart the daemon to change its role")
        }
        try PrivateFiles.checkKey(tls.privateKey.path)
        let revocations = try Self.revocationList(configuration, own: renewed)
        let signing = try CertificateSignatures(certificatePath: tls.certificate.path, privateKeyPath: tls.privateKey.path, caPath: tls.caCertificate.path)
        try transport.reloadTLS(TLSMaterial(certificatePath: tls.certificate.path, privateKeyPath: tls.privateKey.path, caCertificatePath: tls.caCertificate.path))
        signatures.replace(with: signing)
        transport.setRevocationList(revocations)
        let days = Int((signing.notValidAfter.timeIntervalSinceNow / 86_400).rounded(.down))
        try? AuditLog(store: store).append(event: "node.certificate.reloaded", jobID: nil, details: ["days_left": .int(days)])
        logger.notice("certificates reloaded", metadata: ["days_left": "\(days)", "certificate": "\(tls.certificate.path)"])
        warnIfCertificateExpiresSoon()
        return days
    }

    /// Warns in the log when this node's certificate has fewer than `days` days left (at start, at each
    /// reload, and once a day while the daemon runs); returns the days left when it warned.
    @discardableResult
    public func warnIfCertificateExpiresSoon(within days: Double = 30) -> Int? {
        let left = signatures.notValidAfter.certificate.timeIntervalSinceNow / 86_400
        guard left < days else { return nil }
        logger.warning("this node's certificate expires soon: have a new one signed (mpcnode node init, then the CA's mpcnode ca sign) and reload (SIGHUP, or replace the files)",
                       metadata: ["days_left": "\(Int(left.rounded(.down)))", "certificate": "\(configuration.tls.certificate.path)"])
        return Int(left.rounded(.down))
    }

    /// The consortium's revocation list of the configuration (nil when none is configured), verified
    /// against the CA; throws if it does not verify or lists this node's own certificate.
    /// `certificate`: the one this process presents (the node's; a worker's own).
    static func revocationList(_ configuration: NodeConfiguration, own: NodeIdentity, certificate: URL? = nil) throws -> RevocationList? {
        guard let path = configuration.tls.revocationList else { return nil }
        let ca = try CertificateCheck.loadCertificate(path: configuration.tls.caCertificate.path)
        let list = try RevocationList.load(path: path.path, ca: ca)
        let mine = try CertificateCheck.loadCertificate(path: (certificate ?? configuration.tls.certificate).path)
        if let entry = list.entry(for: mine) {
            throw IdentityError.revoked(nodeID: own.nodeID, serial: entry.serial, reason: entry.reason)
        }
        return list
    }

    /// The Prometheus text exposition of this node's metrics, with the days to expiry of the certificates
    /// in force (a renewal shows at the next scrape after its reload).
    public func metricsExposition() -> [UInt8] {
        let inForce = signatures.notValidAfter
        return metrics.exposition(certificateNotAfter: inForce.certificate, caNotAfter: inForce.ca)
    }

    /// What `mpcnode node status` and `GET /v1/node` show.
    public func statusView() throws -> NodeStatusView {
        try Self.statusView(configuration: configuration, identity: identity, store: store, startedAt: startedAt,
                            certificates: signatures.notValidAfter)
    }

    static func statusView(configuration: NodeConfiguration, identity: NodeIdentity, store: NodeStore, startedAt: Date,
                           certificates: (certificate: Date, ca: Date)) throws -> NodeStatusView {
        NodeStatusView(
            nodeID: identity.nodeID, role: identity.role.rawValue, listen: configuration.listen.description,
            peers: configuration.peers.mapValues(\.description), startedAt: startedAt,
            datasets: try DatasetCatalog(store: store).list().count,
            runningJobs: try JobRepository(store: store).list(limit: 1000).filter { $0.state == .running }.count,
            auditChainIntact: try AuditLog(store: store).verify() == nil,
            certificateDaysLeft: Int((certificates.certificate.timeIntervalSinceNow / 86_400).rounded(.down)),
            caDaysLeft: Int((certificates.ca.timeIntervalSinceNow / 86_400).rounded(.down)))
    }

    /// Each configured peer, asked over mutual TLS with an empty control request (it answers and does
    /// nothing), all at once, each within `timeout`.
    public func peerReachability(timeout: Duration = .seconds(3)) async -> [PeerReachability] {
        let transport = self.transport
        return await withTaskGroup(of: PeerReachability.self) { group in
            for (peer, address) in configuration.peers {
                group.addTask {
                    let started = ContinuousClock.now
                    let outcome: Result<Date?, Error> = await withTaskGroup(of: Result<Date?, Error>?.self) { race in
                        race.addTask {
                            do { return .success(try await transport.probe(peer, at: address).certificateNotValidAfter) } catch { return .failure(error) }
                        }
                        race.addTask { try? await Task.sleep(for: timeout); return nil }
                        let first = await race.next() ?? nil
                        race.cancelAll()
                        return first ?? .failure(TransportError.cannotConnect(peer: peer, address: address.description, detail: "no answer within \(timeout)"))
                    }
                    switch outcome {
                    case .success(let notValidAfter):
                        let ms = Double((ContinuousClock.now - started) / .microseconds(1)) / 1000
                        return PeerReachability(node: peer, address: address.description, reachable: true, milliseconds: ms, error: nil,
                                                certificateNotValidAfter: notValidAfter,
                                                certificateDaysLeft: notValidAfter.map { $0.timeIntervalSinceNow / 86_400 })
                    case .failure(let error):
                        return PeerReachability(node: peer, address: address.description, reachable: false, milliseconds: nil, error: "\(error)")
                    }
                }
            }
            var out: [PeerReachability] = []
            for await r in group { out.append(r) }
            return out.sorted { $0.node < $1.node }
        }
    }

    /// Whether this node's database answers a read (readiness).
    public func databaseAnswers() -> Bool {
        (try? store.read { db in try Int.fetchOne(db, sql: "SELECT 1") }) == 1
    }

    /// Stops accepting, ends running jobs (as failed, with the reason recorded), and closes everything.
    /// Calling it again (or from several tasks) waits for the first call's stop to end.
    public func stop() async {
        let stop = stopping.withLock { running in
            if let running { return running }
            let task = Task { await self.stopOnce() }
            running = task
            return task
        }
        await stop.value
    }

    private func stopOnce() async {
        logger.info("node stopping", metadata: ["node": "\(identity.nodeID)"])
        await listener.close()
        await admin.close()
        await lookupQuerier.stop()
        await lookupHolder.closeSessions()
        await engine.shutdown()
        await receipts.stop()
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
        await lookupHolder.flushUsage()
        try? AuditLog(store: store).append(event: "node.stopped", jobID: nil, details: ["node": .string(identity.nodeID)])
        try? FileManager.default.removeItem(at: configuration.adminSocketPath)
        try? await group.shutdownGracefully()
        logger.info("node stopped", metadata: ["node": "\(identity.nodeID)"])
    }

    static func handle(_ request: AdminRequest, configuration: NodeConfiguration, identity: NodeIdentity, engine: JobEngine,
                       repository: JobRepository, catalog: DatasetCatalog, audit: AuditLog, startedAt: Date,
                       lookupHolder: LookupHolderService, lookupQuerier: LookupQuerierService, signatures: NodeSignatures,
                       ledger: LedgerGossip, receipts: JobReceipts) async -> AdminResponse {
        var response = AdminResponse()
        do {
            switch request.command {
            case .status:
                response.node = try statusView(configuration: configuration, identity: identity, store: repository.store, startedAt: startedAt,
                                               certificates: signatures.notValidAfter)
            case .submitJob:
                guard let submission = request.submission else { return AdminResponse(error: "submitJob needs a submission") }
                guard identity.role == .coordinator else {
                    return AdminResponse(error: "this node's certificate says role \(identity.role.rawValue); only a coordinator node submits jobs")
                }
                response.jobID = try await engine.submit(submission)
            case .jobStatus:
                response.job = try repository.view(jobID: request.jobID ?? "")
            case .listJobs:
                response.jobs = try repository.list(limit: request.limit ?? 50)
            case .jobResult:
                response.result = try repository.result(jobID: request.jobID ?? "", limit: request.limit ?? 1000)
            case .abortJob:
                try await engine.abort(jobID: request.jobID ?? "", reason: request.reason ?? "", by: "the coordinator's operator (CLI)")
                response.job = try repository.view(jobID: request.jobID ?? "")
            case .jobResultPage:
                response.resultPage = try repository.resultPage(jobID: request.jobID ?? "", after: request.after, limit: request.limit ?? JobRepository.maximumPageRows,
                                                                columns: request.columns ?? [], localNode: identity.nodeID)
            case .listReports:
                response.reports = try ReportRepository(store: repository.store).list(limit: request.limit ?? 100)
            case .showReport:
                var report = try ReportRepository(store: repository.store).get(request.jobID ?? "")
                report.receipt = try receipts.check(jobID: report.jobID)
                response.report = report
                response.receipt = report.receipt
            case .listModels:
                response.models = try ModelRepository(store: repository.store).list(limit: request.limit ?? 100)
            case .showModel:
                response.model = try ModelRepository(store: repository.store).get(request.jobID ?? "")
            case .audit:
                response.audit = try audit.records(jobID: request.jobID, limit: request.limit ?? 100)
            case .lookup:
                let started = ContinuousClock.now
                response.lookups = try await lookupQuerier.lookup(request.keys ?? [], lists: try LookupRequestLists.parse(request.lists))
                response.lookupElapsedMicroseconds = Int((ContinuousClock.now - started) / .microseconds(1))
            case .lookupStatus:
                response.subscribedLists = await lookupQuerier.status()
                response.offeredLists = await lookupHolder.offeredStatus()
            case .lookupSync:
                response.syncErrors = await lookupQuerier.syncAll()
                response.subscribedLists = await lookupQuerier.status()
            case .ledgerVerify:
                var parties: [String] = []
                if let jobID = request.jobID {
                    let job = try repository.view(jobID: jobID)
                    parties = job.parties.map(\.nodeID) + [job.coordinator]
                }
                response.ledger = try await ledger.verify(jobID: request.jobID, parties: parties,
                                                          receipt: try request.jobID.flatMap { try receipts.check(jobID: $0) })
            case .lookupRotate:
                guard let list = request.lists?.first else { return AdminResponse(error: "lookupRotate needs the list's name") }
                _ = try await lookupHolder.rotate(list)
                response.offeredLists = await lookupHolder.offeredStatus()
            }
        } catch {
            response.error = "\(error)"
        }
        return response
    }
}
