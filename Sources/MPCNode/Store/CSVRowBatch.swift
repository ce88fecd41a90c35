/// Records of a CSV checked and ready to insert, laid end to end: the import's reading thread fills a
/// batch, its writing thread binds every row of it, and the batch goes back to be filled again. Each row
/// holds one value per parameter of the INSERT, in order (the identifier already normalised).
///
/// A batch is owned by one thread at a time: it is handed over only through `CSVRowBatchQueue`.
final class CSVRowBatch: @unchecked Sendable {
    /// A batch is full at this many rows, at `valueLimit` values (a wide file's rows of mostly empty
    /// fields) or once its bytes pass `byteLimit` (one record may go over either).
    static let rowLimit = 8192
    static let valueLimit = 1 << 16
    static let byteLimit = 1 << 20

    /// The values' bytes, end to end.
    private(set) var bytes: [UInt8] = []
    /// Where each value ends in `bytes`: `parametersPerRow` entries a row.
    private(set) var ends: [Int] = []
    private(set) var rowCount = 0
    /// How far into the file the reader was when this batch was complete (for progress).
    var fileBytesRead = 0
    let parametersPerRow: Int

    init(parametersPerRow: Int) {
        self.parametersPerRow = parametersPerRow
        bytes.reserveCapacity(Self.byteLimit + 4096)
        ends.reserveCapacity(min(Self.rowLimit * parametersPerRow, Self.valueLimit + parametersPerRow))
    }

    var isFull: Bool { rowCount >= Self.rowLimit || ends.count >= Self.valueLimit || bytes.count >= Self.byteLimit }

    /// Appends the next value of the row being added; `endRow()` closes the row.
    func appendValue(_ value: UnsafeBufferPointer<UInt8>) {
        bytes.append(contentsOf: value)
        ends.append(bytes.count)
    }

    func endRow() {
        rowCount += 1
        precondition(ends.count == rowCount * parametersPerRow, "a row of \(parametersPerRow) values")
    }

    /// Calls `body` with a way to read value `parameter` of row `row` (valid only inside `body`).
    func withValues<R>(_ body: (_ value: (_ row: Int, _ parameter: Int) -> UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        try bytes.withUnsafeBufferPointer { all in
            try ends.withUnsafeBufferPointer { ends in
                try body { row, parameter in
                    let i = row * parametersPerRow + parameter
                    let start = i == 0 ? 0 : ends[i - 1]
                    return UnsafeBufferPointer(rebasing: all[start ..< ends[i]])
                }
            }
        }
    }

    func reset() {
        bytes.removeAll(keepingCapacity: true)
        ends.removeAll(keepingCapacity: true)
        rowCount = 0
        fileBytesRead = 0
    }
}
