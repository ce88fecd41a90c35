/// The kinds' words that views and the CLI need, so that no kind is named outside Kinds/.

/// How a training job splits the data: the parties hold the same features of different customers
/// (horizontal) or different features of the same customers (vertical).
public enum TrainingMode: String, Sendable, CaseIterable {
    case horizontal
    case vertical
}

extension ReportView {
    /// How the report's cells are protected, in words for its reader.
    public var protection: String {
        kind == nil || kind == SecureSumKind().name
            ? "cells with fewer than \(minCellRecords) records or \(minCellParties) parties are suppressed"
            : "per-identifier rows held by fewer than \(minCellParties) parties are suppressed"
    }

    /// The kind of job that made the report (reports stored before it was recorded were secure sums).
    public var kindName: String { kind ?? SecureSumKind().name }
}

extension ModelView {
    /// Whether the model was trained vertically (each party holds a block of its coefficients).
    public var isVertical: Bool { mode == TrainingMode.vertical.rawValue }
}
