import Crypto
import Foundation

/// A streaming RFC 4180 reader: comma-separated, fields optionally in double quotes (a quote inside a
/// quoted field is doubled; quoted fields may span lines), LF or CRLF line ends, UTF-8.
///
/// It reads the file in 1 MiB chunks and hands out one record at a time, so a file of any size is read
/// in constant memory. Malformed input raises `CSVError` with the line it starts on. A UTF-8 byte-order
/// mark at the start is skipped; a field longer than `maximumFieldBytes` or a record of more than
/// `maximumFields` fields is an error at once (a 50 MB "header" or identifier is not read to its end).
///
/// Two ways to read: `next()` gives a record's fields as strings (checked UTF-8); `nextRaw()` leaves them
/// as bytes (`withFields`), unchecked, for the import's hot path, which checks and binds bytes without
/// making strings; a plain record (no quotes) is not even copied. The file's SHA-256 is computed as it is read (`sha256Hex` once the end
/// is reached), so an import reads its file once.
public struct CSVReader {
    /// The longest field read (64 KiB: far above any identifier, name or amount).
    public static let defaultMaximumFieldBytes = 64 << 10
    public static let defaultMaximumFields = 4096
    private let maximumFieldBytes: Int
    private let maximumFields: Int
    private var startChecked = false
    private let handle: FileHandle
    private var buffer: [UInt8] = []
    private var position = 0
    private var atEOF = false
    private var digest = SHA256()
    /// The file's SHA-256 (hex), once the reader has reached its end.
    public private(set) var sha256Hex: String?
    /// The line the next record starts on (1-based).
    public private(set) var line = 1
    /// Bytes of the file dropped from the buffer (read past); with `position`, how far the reader is.
    private var discarded = 0
    /// How many bytes of the file the records read so far span (for progress against the file's size).
    public var bytesRead: Int { discarded + position }

    /// The fields of the record `nextRaw()` read (see `withFields`): unescaped and laid end to end in
    /// `fieldBytes`, or — for a record without quotes that lies whole in the buffer, the common case —
    /// where they are in the buffer (`recordInBuffer`), not copied.
    private var fieldBytes: [UInt8] = []
    private var fieldRanges: [Range<Int>] = []
    private var recordInBuffer: Range<Int>?

    public init(path: String, maximumFieldBytes: Int = CSVReader.defaultMaximumFieldBytes,
                maximumFields: Int = CSVReader.defaultMaximumFields) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw CSVError.unreadable(path: path)
        }
        self.handle = handle
        self.maximumFieldBytes = maximumFieldBytes
        self.maximumFields = maximumFields
    }

    private mutating func fill() -> Bool {
        if atEOF { return false }
        let chunk = handle.readData(ofLength: 1 << 20)
        if chunk.isEmpty {
            atEOF = true
            sha256Hex = digest.finalize().map { String(format: "%02x", $0) }.joined()
            return false
        }
        digest.update(data: chunk)
        if position > 0 { buffer.removeFirst(position); discarded += position; position = 0 }
        buffer.append(contentsOf: chunk)
        return true
    }

    /// The next record, or nil at the end of the file. A final empty line is not a record.
    public mutating func next() throws -> [String]? {
        let startLine = line
        guard try nextRaw() else { return nil }
        return try withFields { bytes, ranges in
            try ranges.enumerated().map { index, range in
                guard let s = String(validating: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self) else {
                    throw CSVError.malformed(line: startLine, reason: "field \(index + 1) is not valid UTF-8")
                }
                return s
            }
        }
    }

    /// The record `nextRaw()` read: its bytes and each field's range in them (unescaped, unchecked UTF-8).
    /// Valid only inside `body` and until the next read.
    public func withFields<R>(_ body: (UnsafeBufferPointer<UInt8>, [Range<Int>]) throws -> R) rethrows -> R {
        if let r = recordInBuffer {
            return try buffer.withUnsafeBufferPointer { try body(UnsafeBufferPointer(rebasing: $0[r]), fieldRanges) }
        }
        return try fieldBytes.withUnsafeBufferPointer { try body($0, fieldRanges) }
    }

    /// The common record — no quote, whole in the buffer, ending in LF or CRLF — split where it lies.
    /// False (nothing consumed) for any other, which the full parser reads.
    private mutating func fastRecord() -> Bool {
        let chunk = buffer
        return chunk.withUnsafeBufferPointer { buf -> Bool in
            let start = position, n = buf.count
            guard let base = buf.baseAddress, start < n,
                  let found = memchr(base + start, Int32(UInt8(ascii: "\n")), n - start) else { return false }
            let newline = UnsafePointer(found.assumingMemoryBound(to: UInt8.self)) - base
            var end = newline
            if end > start && buf[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            fieldRanges.removeAll(keepingCapacity: true)
            var fieldStart = start
            var i = start
            while i < end {
                let b = buf[i]
                if b == UInt8(ascii: ",") {
                    fieldRanges.append(fieldStart - start ..< i - start)
                    fieldStart = i + 1
                } else if b == UInt8(ascii: "\"") || b == UInt8(ascii: "\r") {
                    return false
                }
                i += 1
            }
            fieldRanges.append(fieldStart - start ..< end - start)
            // Limits are the full parser's to report, with its messages.
            guard fieldRanges.count <= maximumFields, !fieldRanges.contains(where: { $0.count > maximumFieldBytes }) else { return false }
            recordInBuffer = start ..< end
            position = newline + 1
            line += 1
            return true
        }
    }

    /// Parser state carried across buffer refills within one record.
    private struct RecordState {
        var quoted = false
        var fieldWasQuoted = false
        /// A quote seen inside a quoted field whose meaning (escaped quote or closing) the next byte decides.
        var pendingQuote = false
        /// A carriage return outside quotes, which must be followed by a line feed.
        var pendingCR = false
        var fieldStart = 0
    }

    private enum Step { case needMore, recordEnd }

    /// Reads the next record into `fieldBytes` and `fieldRanges`; false at the end of the file. A final
    /// empty line is not a record. The bytes are not checked to be UTF-8 (`next()` does).
    public mutating func nextRaw() throws -> Bool {
        if !startChecked {
            startChecked = true
            // A byte-order mark (Excel writes one) would otherwise become part of the first column's name.
            while buffer.count < 3 && fill() {}
            if buffer.starts(with: [0xEF, 0xBB, 0xBF]) { position = 3 }
        }
        if position == buffer.count && !fill() { return false }
        if fastRecord() { return true }
        recordInBuffer = nil
        fieldBytes.removeAll(keepingCapacity: true)
        fieldRanges.removeAll(keepingCapacity: true)
        let startLine = line
        var state = RecordState()
        while true {
            if position == buffer.count && !fill() {
                // The end of the file ends the record.
                if state.pendingCR { throw CSVError.malformed(line: startLine, reason: "carriage return inside a field") }
                if state.pendingQuote { state.quoted = false; state.pendingQuote = false }
                if state.quoted { throw CSVError.malformed(line: startLine, reason: "quoted field not closed before the end of the file") }
                try finishField(&state, startLine: startLine)
                return true
            }
            let chunk = buffer  // shares storage; a refill (which mutates `buffer`) happens only outside this scan
            let step = try chunk.withUnsafeBufferPointer { try scan($0, &state, startLine: startLine) }
            if step == .recordEnd { return true }
        }
    }

    private mutating func finishField(_ state: inout RecordState, startLine: Int) throws {
        guard fieldRanges.count < maximumFields else {
            throw CSVError.malformed(line: startLine, reason: "more than \(maximumFields) fields in one record")
        }
        fieldRanges.append(state.fieldStart ..< fieldBytes.count)
        state.fieldStart = fieldBytes.count
        state.fieldWasQuoted = false
    }

    private mutating func append(_ bytes: UnsafeBufferPointer<UInt8>, _ state: RecordState, startLine: Int) throws {
        guard fieldBytes.count - state.fieldStart + bytes.count <= maximumFieldBytes else {
            throw CSVError.malformed(line: startLine, reason: "field \(fieldRanges.count + 1) is longer than \(maximumFieldBytes) bytes")
        }
        fieldBytes.append(contentsOf: bytes)
    }

    /// Consumes bytes of `buf` from `position` until the record ends or the buffer does.
    private mutating func scan(_ buf: UnsafeBufferPointer<UInt8>, _ state: inout RecordState, startLine: Int) throws -> Step {
        let comma = UInt8(ascii: ","), newline = UInt8(ascii: "\n"), cr = UInt8(ascii: "\r"), quote = UInt8(ascii: "\"")
        var i = position
        defer { position = i }
        let n = buf.count
        while i < n {
            if state.pendingCR {
                guard buf[i] == newline else { throw CSVError.malformed(line: startLine, reason: "carriage return inside a field") }
                state.pendingCR = false
                continue  // the line feed ends the record below
            }
            if state.pendingQuote {
                state.pendingQuote = false
                if buf[i] == quote {
                    i += 1
                    var q = quote
                    try withUnsafePointer(to: &q) { try append(UnsafeBufferPointer(start: $0, count: 1), state, startLine: startLine) }
                    continue
                }
                state.quoted = false  // the quote closed the field; this byte is read unquoted
            }
            if state.quoted {
                // A run of bytes up to the next quote, counting lines.
                let start = i
                while i < n && buf[i] != quote {
                    if buf[i] == newline { line += 1 }
                    i += 1
                }
                try append(UnsafeBufferPointer(rebasing: buf[start ..< i]), state, startLine: startLine)
                if i < n { i += 1; state.pendingQuote = true }
                continue
            }
            // Unquoted: a run of ordinary bytes, then one special byte.
            let start = i
            while i < n {
                let b = buf[i]
                if b == comma || b == newline || b == cr || b == quote { break }
                i += 1
            }
            if i > start {
                if state.fieldWasQuoted {
                    throw CSVError.malformed(line: startLine, reason: "text after the closing quote of field \(fieldRanges.count + 1)")
                }
                try append(UnsafeBufferPointer(rebasing: buf[start ..< i]), state, startLine: startLine)
            }
            guard i < n else { break }
            let b = buf[i]
            i += 1
            switch b {
            case comma:
                try finishField(&state, startLine: startLine)
            case newline:
                line += 1
                try finishField(&state, startLine: startLine)
                return .recordEnd
            case cr:
                state.pendingCR = true
                if i < n {
                    guard buf[i] == newline else { throw CSVError.malformed(line: startLine, reason: "carriage return inside a field") }
                    state.pendingCR = false
                }
            default:  // a quote
                guard fieldBytes.count == state.fieldStart && !state.fieldWasQuoted else {
                    throw CSVError.malformed(line: startLine, reason: "quote inside an unquoted field \(fieldRanges.count + 1)")
                }
                state.quoted = true
                state.fieldWasQuoted = true
            }
        }
        return .needMore
    }
}

public enum CSVError: Error, Equatable, CustomStringConvertible {
    case unreadable(path: String)
    case malformed(line: Int, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let p): return "cannot open \(p) for reading"
        case .malformed(let l, let r): return "line \(l): \(r)"
        }
    }
}
