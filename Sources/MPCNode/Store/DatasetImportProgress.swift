/// How far an import is (`DatasetCatalog.importCSV`): the rows as they are stored, then each step after
/// the last row — on a large file these take as long as the load itself (10^8 rows: about a minute and a
/// half after the load's 48 s on two cores), so an operator is told what the node is doing.
public enum DatasetImportProgress: Sendable, Equatable {
    /// Records stored so far, and the bytes of the file read (every 100,000 rows).
    case rows(Int, bytes: Int)
    /// Every record is stored; the identifiers' index is being built (a sort of every identifier).
    case indexing(rows: Int)
    /// Counting the distinct identifiers.
    case countingDistinct
    /// Committing: SQLite writes the transaction into the database file.
    case committing

    /// What an operator reads.
    public var description: String {
        switch self {
        case .rows(let rows, _): return "\(rows) rows read"
        case .indexing(let rows): return "all \(rows) rows stored; building the identifiers' index"
        case .countingDistinct: return "counting distinct identifiers"
        case .committing: return "committing"
        }
    }
}
