import Foundation
import Logging
import MPCCrypto
import MPCIdentity
import MPCProtocols
import MPCTransport
import MPCWire
import NIOPosix

/// One worker process of a bank (`mpcnode worker`): runs its range of one PSI job's buckets with the
/// peer's worker of the same index, over mutual TLS 1.3 with worker certificates, reading the job's
/// scratch database its node prepared (the snapshot, the buckets, the sealed key) and writing each
/// completed bucket there. It learns its peer, its side and its limits from its node's plan and
/// configuration only; it accepts one session, from the peer's worker of its index, and nothing else.
public enum PSIWorker {
    /// Exit status of a worker whose link dropped (the node relaunches it within `max_resumes`).
    public static let linkDroppedStatus: Int32 = 75

    /// Runs worker `index` of job `jobID` and returns its exit status (0: its buckets are done).
    /// `faults(nodeID)` gives a test's fault hooks for the worker of that node (a debug build's only).
    /// `parentPID`: the node that started this worker as its child (`launch: local`); the worker stops
    /// when that process is gone, so a killed daemon leaves no worker behind.
    public static func run(configurationPath: String, jobID: String, index: Int, parentPID: Int32? = nil, logger: Logger,
                           faults: @Sendable (String) -> FaultHooks? = { _ in nil }) async -> Int32 {
        let configuration: NodeConfiguration
        do { configuration = try NodeConfiguration.load(path: configurationPath) } catch {
            logger.error("cannot load the configuration", metadata: ["error": "\(error)"])
            return 1
        }
        let jobs = configuration.jobsDirectory
        var summary = PSIWorkerSummary(index: index, status: .failed, error: nil, firstBucket: 0, bucketsRun: 0,
                                       bytesSent: 0, bytesReceived: 0, elementsProcessed: 0)
        do {
            let report = try await work(configuration: configuration, jobID: jobID, index: index, parentPID: parentPID, logger: logger,
                                        faults: faults(configuration.nodeID), summary: &summary)
            summary.status = .done
            summary.firstBucket = report.firstBucket
            summary.bytesSent = report.bytesSent
            summary.bytesReceived = report.bytesReceived
            try? summary.write(jobID: jobID, in: jobs)
            logger.info("worker done", metadata: ["job": "\(jobID)", "worker": "\(index)", "first_bucket": "\(report.firstBucket)",
                                                  "bytes_sent": "\(report.bytesSent)"])
            return 0
        } catch {
            let dropped = PSIKind.isDroppedLink(error)
            summary.status = dropped ? .linkDropped : .failed
            summary.error = PeerText.cut("\(error)", limit: 1000)
            if (try? PeerSuppliedName.jobID.validate(jobID)) != nil { try? summary.write(jobID: jobID, in: jobs) }
            logger.error("worker failed", metadata: ["job": "\(jobID)", "worker": "\(index)", "error": "\(error)", "resumable": "\(dropped)"])
            return dropped ? linkDroppedStatus : 1
        }
    }

    private static func work(configuration: NodeConfiguration, jobID: String, index: Int, parentPID: Int32?, logger: Logger,
                             faults: FaultHooks?, summary: inout PSIWorkerSummary) async throws -> BucketedPSIParty.Report {
        guard let settings = configuration.workers else { throw WorkerError.notConfigured(path: configuration.sourcePath) }
        try PeerSuppliedName.jobID.validate(jobID)
        let plan = try PSIWorkerPlan.read(jobID: jobID, in: configuration.jobsDirectory)
        guard (0..<plan.workerCount).contains(index) else { throw WorkerError.badIndex(index: index, count: plan.workerCount) }
        guard let peerWorkers = settings.peers[plan.peer] else { throw WorkerError.noPeerWorkers(peer: plan.peer) }

        // Its own certificate: the bank's node id, role worker, issued by the consortium CA, not revoked.
        let identity = try CertificateCheck.verifyOwn(
            certificatePath: settings.certificate.path, privateKeyPath: settings.privateKey.path,
            caPath: configuration.tls.caCertificate.path, expectedNodeID: configuration.nodeID)
        guard identity.role == .worker else {
            throw WorkerError.notAWorkerCertificate(path: settings.certificate.path, role: identity.role.rawValue)
        }
        try PrivateFiles.checkKey(settings.privateKey.path)
        // One process, one job: the shared event loops, ended with the process.
        let group = MultiThreadedEventLoopGroup.singleton
        var options = TransportOptions()
        options.idleTimeout = .seconds(Int64(configuration.peerIdleTimeoutSeconds))
        let transport = try PeerTransport(identity: identity, material: TLSMaterial(
            certificatePath: settings.certificate.path, privateKeyPath: settings.privateKey.path,
            caCertificatePath: configuration.tls.caCertificate.path), group: group, options: options, logger: logger)
        if let list = try NodeRuntime.revocationList(configuration, own: identity, certificate: settings.certificate) {
            transport.setRevocationList(list)
        }

        let source = try SQLiteIdentifierSource.reopen(jobID: jobID, scratchDirectory: configuration.jobsDirectory)
        let checkpoints = try SQLiteBucketCheckpoints(source: source, sealKey: JobSealKey.load(dataDirectory: configuration.dataDirectory))
        // One live process a range; every start counted against max_resumes.
        let owner = "\(ProcessInfo.processInfo.hostName)/\(getpid())/\(UUID().uuidString.prefix(8))"
        try checkpoints.claimWorkerRange(index: index, owner: owner, maximumRestarts: configuration.policy.maximumResumes)
        defer { checkpoints.releaseWorkerClaim(index: index, owner: owner) }
        guard let psiProtocol = PSIProtocol(wireName: plan.psiProtocol), configuration.policy.psiProtocols.contains(psiProtocol),
              let blinding = BlindingGroup(rawValue: plan.group) else {
            throw JobError.fault("the plan names PSI protocol \(JobError.shown(plan.psiProtocol)) or group \(JobError.shown(plan.group)), which this node does not run")
        }
        var psi = PSIParty.Configuration(jobID: jobID, group: blinding, selfReceivesOutput: plan.selfReceivesOutput,
                                         peerReceivesOutput: plan.peerReceivesOutput, cardinalityOnly: false)
        psi.minimumPeerSetSize = plan.minimumPeerSetSize
        psi.maximumPeerSetSize = plan.maximumPeerSetSize
        // The node's own policy limits, not the plan's.
        var config = BucketedPSIParty.Configuration(psi: psi, isFirstParty: plan.dials, maximumBuckets: configuration.policy.maximumBuckets)
        config.psiProtocol = psiProtocol
        config.workerCount = plan.workerCount
        config.scope = .worker(index: index)
        let processed = ProcessedElements()
        let progress: @Sendable (BucketedPSIParty.Progress) -> Void = { p in
            processed.record(p.processedThisRun)
            checkpoints.heartbeat()
        }
        let configured = config
        let party = { @Sendable (channel: any MessageChannel) -> BucketedPSIParty in
            var stored: any BucketCheckpoints = checkpoints
            if let faults, faults.dropPSILinkAfterBucket != nil { stored = FaultAfterBucket(checkpoints, faults: faults, channel: channel) }
            return BucketedPSIParty(configuration: configured, source: source, checkpoints: stored, channel: channel, progress: progress)
        }
        let stream = "worker-\(index)"
        let wait = Duration.seconds(configuration.peerIdleTimeoutSeconds)
        logger.info("worker starting", metadata: ["job": "\(jobID)", "worker": "\(index)", "of": "\(plan.workerCount)",
                                                  "peer": "\(plan.peer)", "dials": "\(plan.dials)"])
        defer { summary.elementsProcessed = processed.endAttempt() }
        let planFile = PSIWorkerPlan.url(jobID: jobID, in: configuration.jobsDirectory)
        return try await withThrowingTaskGroup(of: BucketedPSIParty.Report?.self) { group in
            group.addTask {
                try await pair(plan: plan, index: index, settings: settings, peerWorkers: peerWorkers, transport: transport,
                               stream: stream, wait: wait, party: party)
            }
            group.addTask {
                // Renews the claim; stops the worker once its node ended the job (the plan is removed then).
                while true {
                    try await Task.sleep(for: .seconds(5))
                    checkpoints.renewWorkerClaim(index: index, owner: owner)
                    guard FileManager.default.fileExists(atPath: planFile.path), parentPID.map({ getppid() == $0 }) ?? true else {
                        throw WorkerError.jobEnded(jobID: jobID)
                    }
                }
            }
            defer { group.cancelAll() }
            while let next = try await group.next() {
                if let report = next { return report }
            }
            throw CancellationError()
        }
    }

    /// Dials the peer's worker of the same index, or listens for it, and runs the range over that session.
    private static func pair(plan: PSIWorkerPlan, index: Int, settings: WorkerSettings, peerWorkers: WorkerAddressTemplate,
                             transport: PeerTransport, stream: String, wait: Duration,
                             party: @escaping @Sendable (any MessageChannel) -> BucketedPSIParty) async throws -> BucketedPSIParty.Report {
        let jobID = plan.jobID
        if plan.dials {
            let address = peerWorkers.address(index: index)
            let deadline = ContinuousClock.now + wait
            var pause = Duration.milliseconds(100)
            while true {
                do {
                    return try await transport.withSession(jobID: jobID, stream: stream, to: plan.peer, at: address, role: .worker) { channel in
                        try await party(channel).run()
                    }
                } catch let error as TransportError where PSIKind.isUnreachable(error) && ContinuousClock.now < deadline {
                    // The peer's worker may start a moment after this one.
                    try await Task.sleep(for: pause)
                    pause = min(pause * 2, .seconds(2))
                }
            }
        }
        let rendezvous = SessionRendezvous()
        let listen = settings.listen.address(index: index)
        let handler = PairedWorkerHandler(jobID: jobID, stream: stream, peer: plan.peer, rendezvous: rendezvous, timeout: wait)
        let listener: PeerListener
        do {
            listener = try await transport.bind(host: listen.host, port: listen.port, handler: handler)
        } catch {
            throw NodeError.cannotListen(address: listen.description, detail: "\(error)")
        }
        let serving = Task { try? await listener.run() }
        defer { serving.cancel() }
        let channel = try await rendezvous.claim(jobID: jobID, stream: stream, peer: plan.peer, timeout: wait)
        let report = try await party(channel).run()
        await listener.close()
        return report
    }
}

/// A listening worker's connections: the one session of its job and index from the peer's worker; a
/// node certificate, another member, another job or index, and every control request are refused.
struct PairedWorkerHandler: InboundConnectionHandler {
    let jobID: String
    let stream: String
    let peer: String
    let rendezvous: SessionRendezvous
    let timeout: Duration

    func handleControl(_ request: Mpcnode_V1_ControlRequest, from peer: NodeIdentity) async -> Mpcnode_V1_ControlResponse {
        .with { $0.error = .with { $0.message = "a worker answers no control request" } }
    }

    func handleSession(_ open: Mpcnode_V1_SessionOpen, from identity: NodeIdentity, channel: TLSMessageChannel) async {
        guard identity.nodeID == peer, identity.role == .worker, open.jobID == jobID, open.stream == stream, open.service.isEmpty else {
            var frame = Mpcnode_V1_SessionFrame()
            frame.abort = .with { $0.reason = "this worker runs \(stream) of job \(jobID) with \(peer)'s worker only" }
            if let bytes: [UInt8] = try? frame.serializedBytes() { try? await channel.send(bytes) }
            return
        }
        await rendezvous.offer(jobID: jobID, stream: stream, peer: peer, channel: channel, timeout: timeout)
    }
}
