import Foundation
import GRDB
import MPCWire
import MPCProtocols

/// A party's contribution to a secure sum, computed from its own SQLite under the job's `AggregateSpec`.
///
/// Layout: for each cell (each value of `groups`, or one cell for all rows), in order:
/// `records, present, measure₁, …, measureₖ` — `records` counts the cell's rows, `present` is 1 if the
/// party has any (summed over parties it counts the parties behind the cell, for output protection),
/// and each measure is an exact fixed-point integer (`decimals`), in two's complement in Z_{2^64}.
///
/// Values are parsed as exact decimals (never floating point); a value with more decimals than the
/// spec allows, not a number, or a total whose magnitude could overflow the consortium's sum is an
/// error before anything is sent.
public struct LocalAggregate: Sendable {
    public static let slotsPerCellBeforeMeasures = CellSuppression.slotsBeforeMeasures

    public let spec: Mpcnode_V1_AggregateSpec
    public let parties: Int

    public init(spec: Mpcnode_V1_AggregateSpec, parties: Int) {
        self.spec = spec
        self.parties = parties
    }

    public var cells: [String] { spec.groupBy.isEmpty ? ["all"] : spec.groups }
    public var length: Int { cells.count * (Self.slotsPerCellBeforeMeasures + spec.measures.count) }
    /// The largest magnitude one party's total may have so that the sum over all parties fits in Int64.
    public var bound: Int64 { Int64.max / Int64(max(1, parties)) }

    public func validate() throws {
        if !spec.groupBy.isEmpty && spec.groups.isEmpty { throw AggregateError.invalidSpec("group_by needs the public list of groups") }
        guard Set(spec.groups).count == spec.groups.count else { throw AggregateError.invalidSpec("a group is listed twice") }
        for m in spec.measures where m.function != "sum" && m.function != "count" {
            throw AggregateError.invalidSpec("unknown function '\(m.function)' (sum or count)")
        }
        guard spec.decimals <= 9 else { throw AggregateError.invalidSpec("at most 9 decimals") }
        guard !spec.measures.isEmpty, spec.measures.count <= 64 else { throw AggregateError.invalidSpec("1 to 64 measures") }
        guard length <= Self.maximumLength else {
            throw AggregateError.invalidSpec("\(cells.count) cells × \(Self.slotsPerCellBeforeMeasures + spec.measures.count) values exceed \(Self.maximumLength) values")
        }
        guard spec.minCellRecords <= UInt64(UInt32.max) else { throw AggregateError.invalidSpec("a minimum of \(spec.minCellRecords) records per cell is absurd") }
    }

    /// The longest vector a secure sum carries (a million values: 8 MB per client).
    public static let maximumLength = 1 << 20

    /// The columns the spec reads (for the policy check).
    public var columns: Set<String> {
        var c = Set(spec.measures.map(\.column))
        if !spec.groupBy.isEmpty { c.insert(spec.groupBy) }
        return c
    }

    /// Computes the vector from `table`, streaming its rows. With `clip`, each record's value of a `sum`
    /// measure is first clamped to ±clip (fixed point): what bounds one record's weight for the noise.
    public func compute(_ db: Database, table: String, clip: Int64? = nil) throws -> [UInt64] {
        try validate()
        let cellIndex = Dictionary(uniqueKeysWithValues: cells.enumerated().map { ($1, $0) })
        let width = Self.slotsPerCellBeforeMeasures + spec.measures.count
        var totals = [Int64](repeating: 0, count: length)
        let selected = ([spec.groupBy.isEmpty ? "NULL" : NodeStore.quote(spec.groupBy)] + spec.measures.map { NodeStore.quote($0.column) })
            .joined(separator: ", ")
        let cursor = try Row.fetchCursor(db, sql: "SELECT _row, \(selected) FROM \(NodeStore.quote(table)) ORDER BY _row")
        while let row = try cursor.next() {
            let cell: Int
            if spec.groupBy.isEmpty { cell = 0 } else {
                guard let g: String = row[1], let c = cellIndex[g] else { continue }
                cell = c
            }
            let base = cell * width
            try add(&totals, base, 1, row: row["_row"])
            for (k, m) in spec.measures.enumerated() {
                let text: String? = row[k + 2]
                switch m.function {
                case "count":
                    if let text, !text.isEmpty { try add(&totals, base + 2 + k, 1, row: row["_row"]) }
                default:
                    guard let text, !text.isEmpty else { continue }
                    guard let v = Self.parseFixedPoint(text, decimals: Int(spec.decimals)) else {
                        throw AggregateError.badValue(row: row["_row"], column: m.column, value: text,
                                                      reason: "not a decimal number with at most \(spec.decimals) decimals")
                    }
                    try add(&totals, base + 2 + k, clip.map { min(max(v, -$0), $0) } ?? v, row: row["_row"])
                }
            }
        }
        var vector = [UInt64](repeating: 0, count: length)
        for cell in 0..<cells.count {
            if totals[cell * width] > 0 { totals[cell * width + 1] = 1 }
        }
        for (i, t) in totals.enumerated() {
            guard t.magnitude <= UInt64(bound) else {
                throw AggregateError.outOfRange(slot: i, bound: bound)
            }
            vector[i] = UInt64(bitPattern: t)
        }
        return vector
    }

    private func add(_ totals: inout [Int64], _ i: Int, _ v: Int64, row: Int64) throws {
        let (r, overflow) = totals[i].addingReportingOverflow(v)
        guard !overflow else { throw AggregateError.outOfRange(slot: i, bound: bound) }
        totals[i] = r
    }

    /// Parses "-1234.5" with `decimals` = 2 as −123450, exactly. Nil for anything else.
    public static func parseFixedPoint(_ text: String, decimals: Int) -> Int64? {
        var s = Substring(text.trimmingCharacters(in: .whitespaces))
        var negative = false
        if s.first == "-" || s.first == "+" { negative = s.first == "-"; s = s.dropFirst() }
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), !parts[0].isEmpty || parts.count == 2 else { return nil }
        let whole = parts[0], fraction = parts.count == 2 ? parts[1] : ""
        guard whole.allSatisfy(\.isASCIIDigit), fraction.allSatisfy(\.isASCIIDigit), fraction.count <= decimals,
              !(whole.isEmpty && fraction.isEmpty) else { return nil }
        var value: Int64 = 0
        for ch in whole + fraction + String(repeating: "0", count: decimals - fraction.count) {
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(Int64(ch.asciiValue! - 48))
            if o1 || o2 { return nil }
            value = a
        }
        return negative ? -value : value
    }

    /// Decodes a summed vector into signed totals.
    public static func signed(_ v: [UInt64]) -> [Int64] { v.map { Int64(bitPattern: $0) } }
}

extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}

public enum AggregateError: Error, CustomStringConvertible, Equatable {
    case invalidSpec(String)
    case badValue(row: Int64, column: String, value: String, reason: String)
    case outOfRange(slot: Int, bound: Int64)

    public var description: String {
        switch self {
        case .invalidSpec(let d): return "invalid aggregate: \(d)"
        case .badValue(let r, let c, let v, let reason): return "row \(r), column '\(c)': '\(v)' is \(reason)"
        case .outOfRange(let s, let b): return "local total in slot \(s) exceeds ±\(b), the bound that keeps the consortium's sum exact; aggregate in larger units (fewer decimals)"
        }
    }
}
