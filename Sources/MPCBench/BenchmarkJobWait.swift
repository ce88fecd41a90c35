import Foundation
import MPCNode

/// Follows a benchmark's job at its coordinator until it ends, logging progress now and then.
enum BenchmarkJobWait {
    /// - Parameter progress: a line describing the parties' progress, logged every `every` seconds.
    static func final(_ coordinator: NodeRuntime, jobID: String, started: Date, every: Double,
                      log: (String) -> Void, progress: () throws -> String) async throws -> JobView {
        let repository = JobRepository(store: coordinator.store)
        var job = try repository.view(jobID: jobID)
        var lastReport = Date()
        while !job.state.isFinal {
            try await Task.sleep(for: .milliseconds(100))
            job = try repository.view(jobID: jobID)
            if Date().timeIntervalSince(lastReport) > every {
                log("  \(Int(Date().timeIntervalSince(started))) s: \(try progress())")
                lastReport = Date()
            }
        }
        return job
    }
}
