import Foundation

/// A streaming RFC 4180 reader: comma-separated, fields optionally in double quotes (a quote inside a
/// quoted field is doubled; quoted fields may span lines), LF or CRLF line ends, UTF-8.
///
/// It reads the file in 1 MiB chunks and hands out one record at a time, so a file of any size is read
/// in constant memory. Malformed input raises `CSVError` with the line it starts on. A UTF-8 byte-order
/// mark at the start is skipped; a field longer than `maximumFieldBytes` or a record of more than
/// `maximumFields` fields is an error at once (a 50 MB "header" or identifier is not read to its end).
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
    /// The line the next record starts on (1-based).
    public private(set) var line = 1
    /// Bytes of the file dropped from the buffer (read past); with `position`, how far the reader is.
    private var discarded = 0
    /// How many bytes of the file the records read so far span (for progress against the file's size).
    public var bytesRead: Int { discarded + position }

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
        if chunk.isEmpty { atEOF = true; return false }
        if position > 0 { buffer.removeFirst(position); discarded += position; position = 0 }
        buffer.append(contentsOf: chunk)
        return true
    }

    private mutating func peek() -> UInt8? {
        if position == buffer.count && !fill() { return nil }
        return buffer[position]
    }

    /// The next record, or nil at the end of the file. A final empty line is not a record.
    public mutating func next() throws -> [String]? {
        if !startChecked {
            startChecked = true
            // A byte-order mark (Excel writes one) would otherwise become part of the first column's name.
            while buffer.count < 3 && fill() {}
            if buffer.starts(with: [0xEF, 0xBB, 0xBF]) { position = 3 }
        }
        guard peek() != nil else { return nil }
        let startLine = line
        var fields: [String] = []
        var field: [UInt8] = []
        var quoted = false
        var fieldWasQuoted = false
        let maximumFieldBytes = self.maximumFieldBytes, maximumFields = self.maximumFields
        func finishField() throws {
            guard fields.count < maximumFields else {
                throw CSVError.malformed(line: startLine, reason: "more than \(maximumFields) fields in one record")
            }
            guard let s = String(validating: field, as: UTF8.self) else {
                throw CSVError.malformed(line: startLine, reason: "field \(fields.count + 1) is not valid UTF-8")
            }
            fields.append(s)
            field.removeAll(keepingCapacity: true)
            fieldWasQuoted = false
        }
        while let byte = peek() {
            position += 1
            if field.count >= maximumFieldBytes {
                throw CSVError.malformed(line: startLine, reason: "field \(fields.count + 1) is longer than \(maximumFieldBytes) bytes")
            }
            if quoted {
                if byte == UInt8(ascii: "\"") {
                    if peek() == UInt8(ascii: "\"") { position += 1; field.append(byte) } else { quoted = false }
                } else {
                    if byte == UInt8(ascii: "\n") { line += 1 }
                    field.append(byte)
                }
                continue
            }
            switch byte {
            case UInt8(ascii: ","):
                try finishField()
            case UInt8(ascii: "\n"):
                line += 1
                try finishField()
                return fields
            case UInt8(ascii: "\r"):
                if peek() == UInt8(ascii: "\n") { continue }
                throw CSVError.malformed(line: startLine, reason: "carriage return inside a field")
            case UInt8(ascii: "\""):
                guard field.isEmpty && !fieldWasQuoted else {
                    throw CSVError.malformed(line: startLine, reason: "quote inside an unquoted field \(fields.count + 1)")
                }
                quoted = true
                fieldWasQuoted = true
            default:
                if fieldWasQuoted {
                    throw CSVError.malformed(line: startLine, reason: "text after the closing quote of field \(fields.count + 1)")
                }
                field.append(byte)
            }
        }
        if quoted { throw CSVError.malformed(line: startLine, reason: "quoted field not closed before the end of the file") }
        try finishField()
        return fields
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
