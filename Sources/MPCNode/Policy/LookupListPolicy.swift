/// A dataset offered to other members as a lookup list (`policy.datasets.<name>.lookup_lists`,
/// Protocols/list-lookup.md): what a hit reveals, who may ask, and how often. The holder's node enforces
/// every limit itself at evaluation time.
public struct LookupListPolicy: Sendable, Equatable {
    /// Columns of the dataset a hit reveals (the identifier column never).
    public var labelColumns: [String]
    /// Members that may receive the list's table and ask.
    public var queriers: Set<String>
    /// Per querier: evaluations per second (a token bucket refilled continuously, holding one second's
    /// worth) and per UTC day.
    public var maximumPerSecond: Int
    public var maximumPerDay: Int
    /// "holders": a hit names this holder and its label; "count": the querier's answer only counts members
    /// listing the key and their highest risk.
    public var disclosure: Disclosure
    /// The label column ranking risk and its levels from lowest to highest (for "highest risk").
    public var riskColumn: String?
    public var riskLevels: [String]

    public enum Disclosure: String, Sendable, CaseIterable { case holders, count }

    public static let defaultMaximumPerSecond = 100
    public static let defaultMaximumPerDay = 100_000

    public init(labelColumns: [String], queriers: Set<String>, maximumPerSecond: Int = LookupListPolicy.defaultMaximumPerSecond,
                maximumPerDay: Int = LookupListPolicy.defaultMaximumPerDay, disclosure: Disclosure = .holders,
                riskColumn: String? = nil, riskLevels: [String] = []) {
        self.labelColumns = labelColumns
        self.queriers = queriers
        self.maximumPerSecond = maximumPerSecond
        self.maximumPerDay = maximumPerDay
        self.disclosure = disclosure
        self.riskColumn = riskColumn
        self.riskLevels = riskLevels
    }

    init(_ raw: RawLookupList, dataset: String, columns: Set<String>, path: String) throws {
        let key = "policy.datasets.\(dataset).lookup_lists"
        let labels = raw.label_columns ?? []
        guard labels.count <= 16, Set(labels).count == labels.count, labels.allSatisfy({ (1...64).contains($0.utf8.count) }) else {
            throw ConfigurationError.invalid(path: path, detail: "\(key).label_columns: at most 16 distinct column names")
        }
        let queriers = raw.queriers ?? []
        guard !queriers.isEmpty else {
            throw ConfigurationError.invalid(path: path, detail: "\(key).queriers: name the members that may look keys up in this list")
        }
        let perSecond = raw.max_lookups_per_second ?? Self.defaultMaximumPerSecond
        let perDay = raw.max_lookups_per_day ?? Self.defaultMaximumPerDay
        guard (1...100_000).contains(perSecond) else {
            throw ConfigurationError.invalid(path: path, detail: "\(key).max_lookups_per_second must lie in 1…100000")
        }
        guard (1...1_000_000_000).contains(perDay) else {
            throw ConfigurationError.invalid(path: path, detail: "\(key).max_lookups_per_day must lie in 1…10⁹")
        }
        guard let disclosure = Disclosure(rawValue: raw.disclosure ?? "holders") else {
            throw ConfigurationError.invalid(path: path, detail: "\(key).disclosure: '\(raw.disclosure ?? "")' is not holders or count")
        }
        if let risk = raw.risk_column, !labels.contains(risk) {
            throw ConfigurationError.invalid(path: path, detail: "\(key).risk_column '\(risk)' is not one of its label_columns")
        }
        guard (raw.risk_levels ?? []).count <= 16 else {
            throw ConfigurationError.invalid(path: path, detail: "\(key).risk_levels: at most 16")
        }
        self.init(labelColumns: labels, queriers: Set(queriers), maximumPerSecond: perSecond, maximumPerDay: perDay,
                  disclosure: disclosure, riskColumn: raw.risk_column, riskLevels: raw.risk_levels ?? [])
    }
}

/// The querier's side (`policy.lookups`): the holders' lists this node keeps tables of, how often it
/// asks for their updates, and how long a lookup waits for a holder.
public struct LookupSubscriptions: Sendable, Equatable {
    public struct Subscription: Sendable, Hashable, CustomStringConvertible {
        public var holder: String
        public var list: String
        public init(holder: String, list: String) { self.holder = holder; self.list = list }
        public var description: String { "\(holder):\(list)" }

        /// "holder:list" (a member's node id and one of its dataset names), or nil.
        public init?(parsing text: String) {
            let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty, text.utf8.count <= 120,
                  (try? DatasetCatalog.validate(datasetName: parts[1])) != nil else { return nil }
            self.init(holder: parts[0], list: parts[1])
        }
    }

    public var subscriptions: [Subscription]
    public var syncSeconds: Int
    public var timeoutMilliseconds: Int

    public init(subscriptions: [Subscription] = [], syncSeconds: Int = 60, timeoutMilliseconds: Int = 2000) {
        self.subscriptions = subscriptions
        self.syncSeconds = syncSeconds
        self.timeoutMilliseconds = timeoutMilliseconds
    }

    init(_ raw: RawLookupSubscriptions?, path: String) throws {
        var subscriptions: [Subscription] = []
        for text in raw?.subscribe ?? [] {
            guard let s = Subscription(parsing: text) else {
                throw ConfigurationError.invalid(path: path, detail: "policy.lookups.subscribe: '\(text)' is not holder:list (a member's node id and its dataset name)")
            }
            if !subscriptions.contains(s) { subscriptions.append(s) }
        }
        let sync = raw?.sync_seconds ?? 60, timeout = raw?.timeout_ms ?? 2000
        guard (1...86_400).contains(sync) else {
            throw ConfigurationError.invalid(path: path, detail: "policy.lookups.sync_seconds must lie in 1…86400")
        }
        guard (50...60_000).contains(timeout) else {
            throw ConfigurationError.invalid(path: path, detail: "policy.lookups.timeout_ms must lie in 50…60000")
        }
        self.init(subscriptions: subscriptions, syncSeconds: sync, timeoutMilliseconds: timeout)
    }
}
