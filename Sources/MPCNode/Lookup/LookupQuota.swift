import Foundation
import GRDB

/// Why a holder refused a querier's lookups (told to the querier, counted in the holder's usage).
public enum LookupRefusal: Error, CustomStringConvertible, Equatable {
    case rateLimited(querier: String, list: String, perSecond: Int, batch: Int)
    case dailyQuotaUsed(querier: String, list: String, perDay: Int)
    case notOffered(querier: String, list: String)

    public var description: String {
        switch self {
        case .rateLimited(let q, let l, let r, let b):
            return b > r
                ? "a batch of \(b) keys exceeds the limit of \(r) lookups a second for \(q) on list '\(l)': send smaller batches"
                : "rate limit: at most \(r) lookups a second for \(q) on list '\(l)'; retry in a second"
        case .dailyQuotaUsed(let q, let l, let d):
            return "daily quota used: \(q) may look up at most \(d) keys a day in list '\(l)' (resets at 00:00 UTC)"
        case .notOffered(let q, let l):
            return "no list '\(l)' is offered to \(q)"
        }
    }
}

/// The holder's per-querier limits on evaluations (Protocols/list-lookup.md, "Leakage"): a token bucket
/// per (querier, list) holding one second's worth, and a count per UTC day. The counts are kept per hour
/// in `lookup_usage` (so a restart does not reset a day's quota) and written to the audit log once per
/// hour per querier and list, never per lookup.
struct LookupQuota {
    struct Key: Hashable { var querier: String; var list: String }
    struct Bucket { var tokens: Double; var at: ContinuousClock.Instant }
    struct Pending { var evaluated = 0; var refused = 0 }

    private var buckets: [Key: Bucket] = [:]
    /// Today's evaluations per key (UTC day), with the day they count for.
    private var today: [Key: Int] = [:]
    private var day: String
    /// Counts not yet written to `lookup_usage`, per key and hour.
    private var pending: [Key: [String: Pending]] = [:]

    init(store: NodeStore, now: Date = Date()) throws {
        day = Self.day(now)
        today = try store.read { db in
            var counts: [Key: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT querier, list, SUM(evaluated) AS n FROM lookup_usage WHERE hour LIKE ? GROUP BY querier, list",
                                        arguments: [day + "T%"]) {
                counts[Key(querier: row["querier"], list: row["list"])] = row["n"]
            }
            return counts
        }
    }

    static func hour(_ date: Date) -> String { UTCHour.hour(date) }
    static func day(_ date: Date) -> String { UTCHour.day(date) }

    /// Takes `count` evaluations for `querier` on `list`, or throws the refusal (counted as refused).
    mutating func take(querier: String, list: String, count: Int, policy: LookupListPolicy, now: Date = Date(),
                       clock: ContinuousClock.Instant = .now) throws {
        let key = Key(querier: querier, list: list)
        let currentDay = Self.day(now)
        if currentDay != day { day = currentDay; today = [:] }
        let hour = Self.hour(now)
        let rate = Double(policy.maximumPerSecond)
        var bucket = buckets[key] ?? Bucket(tokens: rate, at: clock)
        bucket.tokens = min(rate, bucket.tokens + rate * Double((clock - bucket.at).components.attoseconds) / 1e18 + rate * Double((clock - bucket.at).components.seconds))
        bucket.at = clock
        do {
            guard (today[key] ?? 0) + count <= policy.maximumPerDay else {
                throw LookupRefusal.dailyQuotaUsed(querier: querier, list: list, perDay: policy.maximumPerDay)
            }
            guard Double(count) <= bucket.tokens else {
                buckets[key] = bucket
                throw LookupRefusal.rateLimited(querier: querier, list: list, perSecond: policy.maximumPerSecond, batch: count)
            }
        } catch {
            pending[key, default: [:]][hour, default: Pending()].refused += count
            throw error
        }
        bucket.tokens -= Double(count)
        buckets[key] = bucket
        today[key, default: 0] += count
        pending[key, default: [:]][hour, default: Pending()].evaluated += count
    }

    /// Today's evaluations for `querier` on `list`.
    func used(querier: String, list: String) -> Int { today[Key(querier: querier, list: list)] ?? 0 }

    /// Writes the pending counts to `lookup_usage`, then one audit record for every (querier, list, hour)
    /// that has ended and was not yet audited.
    mutating func flush(store: NodeStore, now: Date = Date()) throws {
        let counts = pending
        let currentHour = Self.hour(now)
        try store.write { db in
            for (key, hours) in counts {
                for (hour, p) in hours {
                    try db.execute(sql: """
                        INSERT INTO lookup_usage (querier, list, hour, evaluated, refused) VALUES (?, ?, ?, ?, ?)
                        ON CONFLICT(querier, list, hour) DO UPDATE SET evaluated = evaluated + excluded.evaluated, refused = refused + excluded.refused
                        """, arguments: [key.querier, key.list, hour, p.evaluated, p.refused])
                }
            }
            let audit = AuditLog(store: store)
            for row in try Row.fetchAll(db, sql: "SELECT querier, list, hour, evaluated, refused FROM lookup_usage WHERE audited = 0 AND hour < ? ORDER BY hour",
                                        arguments: [currentHour]) {
                try audit.append(db, event: "lookup.evaluations", jobID: nil, details: [
                    "querier": .string(row["querier"]), "list": .string(row["list"]), "hour": .string(row["hour"]),
                    "evaluated": .int(row["evaluated"]), "refused": .int(row["refused"]),
                ])
                try db.execute(sql: "UPDATE lookup_usage SET audited = 1 WHERE querier = ? AND list = ? AND hour = ?",
                               arguments: [row["querier"] as String, row["list"] as String, row["hour"] as String])
            }
        }
        pending = [:]
    }
}

/// "yyyy-MM-ddTHH" and "yyyy-MM-dd" in UTC, cheaply (on every lookup request: no formatter object).
enum UTCHour {
    static func hour(_ date: Date) -> String {
        var t = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&t, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour))"
    }

    static func day(_ date: Date) -> String { String(hour(date).prefix(10)) }
}
