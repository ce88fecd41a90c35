import Foundation
import MPCNode

/// Writes a job's whole result to a file, page by page from the daemon (`mpcnode job result --output`):
/// constant memory whatever the result's size; the file appears under its name only once complete
/// (written as `<name>.partial`, then renamed), readable by its owner only.
struct ResultExport {
    enum Format: String, CaseIterable { case csv, json }

    let options: ConfigOption
    let jobID: String
    let output: URL
    let format: Format
    let columns: [String]
    let pageRows: Int

    /// Returns the number of rows written.
    func run(progress: (Int, Int) -> Void) async throws -> Int {
        let partial = output.appendingPathExtension("partial")
        try? FileManager.default.removeItem(at: partial)
        guard FileManager.default.createFile(atPath: partial.path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
            throw CLIFailure("cannot create \(partial.path): check that its folder exists and is writable")
        }
        var completed = false
        defer { if !completed { try? FileManager.default.removeItem(at: partial) } }
        let file = try FileHandle(forWritingTo: partial)
        defer { try? file.close() }

        var after: String?
        var written = 0, pages = 0
        var buffer = Data()
        repeat {
            let page = try await JobCommand.call(options, AdminRequest(command: .jobResultPage, jobID: jobID, limit: pageRows,
                                                                        after: after, columns: columns)).resultPage!
            if pages == 0 {
                guard page.kind != "cardinality" else {
                    throw CLIFailure("job \(jobID)'s result is a count only (\(page.cardinality)): there are no rows to write")
                }
                buffer.append(contentsOf: format == .csv ? Self.csvLine(page.columns).utf8 : "[\n".utf8)
            }
            for row in page.rows {
                switch format {
                case .csv: buffer.append(contentsOf: Self.csvLine(row).utf8)
                case .json: buffer.append(contentsOf: ((written == 0 ? "" : ",\n") + Self.jsonObject(page.columns, row)).utf8)
                }
                written += 1
            }
            try file.write(contentsOf: buffer)
            buffer.removeAll(keepingCapacity: true)
            pages += 1
            progress(written, page.cardinality)
            after = page.next
        } while after != nil
        if format == .json { try file.write(contentsOf: Data("\n]\n".utf8)) }
        try file.synchronize()
        try? FileManager.default.removeItem(at: output)
        try FileManager.default.moveItem(at: partial, to: output)
        completed = true
        return written
    }

    /// RFC 4180: a field with a comma, quote or line break is quoted, its quotes doubled; a missing value is empty.
    static func csvLine(_ fields: [String?]) -> String {
        fields.map { field -> String in
            guard let field else { return "" }
            if field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) {
                return "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\""
            }
            return field
        }.joined(separator: ",") + "\n"
    }

    static func jsonObject(_ columns: [String], _ row: [String?]) -> String {
        var object: [String: Any] = [:]
        for (column, value) in zip(columns, row) {
            if column == "score", let value, let number = Double(value) { object[column] = number } else { object[column] = value ?? NSNull() }
        }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return "  " + String(decoding: data, as: UTF8.self)
    }
}
