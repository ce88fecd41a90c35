import Foundation
import GRDB
import Synchronization

/// Who is told when a job's state changes at this node (the node's metrics): each observer is called
/// once the transaction that changed the state commits (never for a change rolled back), with the
/// writer's connection to read what else it needs.
public final class JobStateObservers: Sendable {
    public typealias Observer = @Sendable (_ db: Database, _ jobID: String, _ state: JobState) -> Void
    private let observers = Mutex<[Observer]>([])

    public init() {}

    public func add(_ observer: @escaping Observer) { observers.withLock { $0.append(observer) } }

    /// Called by `JobRepository.setState` inside its transaction.
    func changed(_ db: Database, jobID: String, state: JobState) {
        let current = observers.withLock { $0 }
        guard !current.isEmpty else { return }
        db.afterNextTransaction(onCommit: { db in
            for observer in current { observer(db, jobID, state) }
        })
    }
}
