import Foundation
import Logging

/// A swift-log handler that writes one JSON object per line to standard error:
/// `{"ts":"…","level":"info","label":"mpcnode","msg":"job started","job":"job-…",…}`.
/// Metadata values become top-level keys, so log collectors can index them.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let label: String
    private static let lock = NSLock()

    public init(label: String) { self.label = label }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?,
                    source: String, file: String, function: String, line: UInt) {
        var object: [String: String] = [:]
        for (k, v) in self.metadata { object[k] = "\(v)" }
        for (k, v) in explicit ?? [:] { object[k] = "\(v)" }
        object["ts"] = AuditTime.string(Date())
        object["level"] = level.rawValue
        object["label"] = label
        object["msg"] = message.description
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard var data = try? encoder.encode(object) else { return }
        data.append(0x0a)
        Self.lock.withLock { FileHandle.standardError.write(data) }
    }
}
