import Foundation

/// The node's timestamps — audit records, ledger rows, receipts, JSON log lines: ISO 8601 in UTC with
/// milliseconds ("2026-12-07T19:06:38.123Z"), one width, so they sort as text.
///
/// A `Date.ISO8601FormatStyle` is a Sendable value, safe from every thread at once. The single
/// `ISO8601DateFormatter` it replaces was shared by every node's writer and every log line of the
/// process although it is a reference type that builds its formatter lazily — a data race.
public enum AuditTime {
    static let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    public static func string(_ date: Date) -> String { style.format(date) }

    /// nil when `text` is not such a timestamp.
    public static func date(_ text: String) -> Date? { try? style.parse(text) }
}
