/// Output protection of a secure sum's cells (Protocols/secure-aggregation.md): each cell of the summed
/// vector is [records, contributing parties, measure 1, …, measure m], two's complement; a cell behind
/// fewer records or fewer parties than the minimums is released as suppressed, without any of its values.
public enum CellSuppression {
    /// Slots of a cell before its measures: the record count and the contributing-party count.
    public static let slotsBeforeMeasures = 2

    public struct Cell: Equatable, Sendable {
        /// nil when suppressed.
        public var records: Int64?
        public var parties: Int64?
        /// The measures' totals in order; empty when suppressed.
        public var values: [Int64]
        /// Why the cell is suppressed, or nil when it is released.
        public var suppressionReason: String?
        public var suppressed: Bool { suppressionReason != nil }
    }

    /// The cells of `sum` (`cells` cells of `measures` measures each) with the small ones suppressed.
    public static func apply(sum: [UInt64], cells: Int, measures: Int, minRecords: UInt64, minParties: UInt32) -> [Cell] {
        let width = slotsBeforeMeasures + measures
        guard sum.count == cells * width else {
            return Array(repeating: Cell(records: nil, parties: nil, values: [],
                                         suppressionReason: "the sum has \(sum.count) slots, not \(cells) cells of \(width)"), count: cells)
        }
        let totals = sum.map { Int64(bitPattern: $0) }
        return (0..<cells).map { i in
            let records = totals[i * width], parties = totals[i * width + 1]
            let reason: String? = records < Int64(clamping: minRecords) ? "fewer than \(minRecords) records"
                : parties < Int64(minParties) ? "fewer than \(minParties) parties" : nil
            guard reason == nil else { return Cell(records: nil, parties: nil, values: [], suppressionReason: reason) }
            return Cell(records: records, parties: parties, values: Array(totals[(i * width + 2)..<((i + 1) * width)]), suppressionReason: nil)
        }
    }
}
