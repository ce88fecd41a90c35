import Foundation

/// The hand-over between an import's reading thread (parses and checks the CSV) and its writing thread
/// (inserts into SQLite). A fixed number of batches circulate between the two, so memory stays bounded
/// whatever the file's size, and each side waits for the other only when it is ahead by all of them.
///
/// The reader ends with `finish` (the file's SHA-256, or the error that stopped it), after its last
/// batch; the writer ends its side with `abandon` (after an error of its own, or once it has read the
/// end), which makes the reader stop at its next batch.
final class CSVRowBatchQueue: @unchecked Sendable {  // every stored property is guarded by `condition`
    enum Next {
        case batch(CSVRowBatch)
        case end(Result<String, any Error>)
    }

    private let condition = NSCondition()
    private var filled: [CSVRowBatch] = []
    private var empty: [CSVRowBatch]
    private var outcome: Result<String, any Error>?
    private var abandoned = false

    init(batches: Int, parametersPerRow: Int) {
        empty = (0 ..< batches).map { _ in CSVRowBatch(parametersPerRow: parametersPerRow) }
    }

    // The reading side.

    /// A batch to fill, once one is free; nil when the writer has abandoned the import.
    func takeEmpty() -> CSVRowBatch? {
        condition.lock()
        defer { condition.unlock() }
        while empty.isEmpty && !abandoned { condition.wait() }
        return abandoned ? nil : empty.removeLast()
    }

    func putFilled(_ batch: CSVRowBatch) {
        condition.lock()
        filled.append(batch)
        condition.signal()
        condition.unlock()
    }

    func finish(_ result: Result<String, any Error>) {
        condition.lock()
        outcome = result
        condition.signal()
        condition.unlock()
    }

    // The writing side.

    /// The next filled batch in file order, or the reader's outcome once every batch before it was taken.
    func takeFilled() -> Next {
        condition.lock()
        defer { condition.unlock() }
        while filled.isEmpty && outcome == nil { condition.wait() }
        if !filled.isEmpty { return .batch(filled.removeFirst()) }
        return .end(outcome!)
    }

    func putEmpty(_ batch: CSVRowBatch) {
        batch.reset()
        condition.lock()
        empty.append(batch)
        condition.signal()
        condition.unlock()
    }

    func abandon() {
        condition.lock()
        abandoned = true
        condition.broadcast()
        condition.unlock()
    }
}
