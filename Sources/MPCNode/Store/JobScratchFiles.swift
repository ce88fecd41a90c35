import Foundation
import Logging

/// The folder of the jobs' scratch databases (`data/jobs/`), each a plaintext copy of one job's input
/// that its job removes when it ends. A daemon killed mid-job leaves its copies behind; the next start
/// removes them before anything runs, except those of the jobs that resume (a bucketed PSI).
enum JobScratchFiles {
    static func removeAll(in folder: URL, keeping kept: Set<String>, logger: Logger) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else { return }
        var removed = 0
        for name in names where name.hasSuffix(".sqlite") || name.hasSuffix(".sqlite-journal") || name.hasSuffix(".sqlite-wal") || name.hasSuffix(".sqlite-shm")
            || name.hasSuffix(".workers.json") || name.contains(".worker-") {
            // Job ids have no dots: the job's id is the name up to its first.
            let jobID = name.components(separatedBy: ".").first ?? name
            if kept.contains(jobID) { continue }
            if (try? FileManager.default.removeItem(at: folder.appendingPathComponent(name))) != nil { removed += 1 }
        }
        if removed > 0 {
            logger.notice("removed scratch files of jobs interrupted by the last stop", metadata: ["files": "\(removed)", "folder": "\(folder.path)"])
        }
    }
}
