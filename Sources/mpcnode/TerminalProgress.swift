import Foundation

/// Progress of long CLI work on standard error: a bar redrawn in place when standard error is a terminal,
/// otherwise a plain line each time the text changes (at most every `plainInterval`), so that logs of a
/// script or a systemd unit stay readable. Standard output keeps only the result.
struct TerminalProgress {
    let interactive = isatty(STDERR_FILENO) == 1
    var plainInterval: TimeInterval = 5
    private var lastPlain = Date.distantPast
    private var lastText = ""
    private var drawn = false

    /// Shows `done` of `total` (a fraction bar when total > 0) followed by `detail`.
    mutating func update(done: Int, total: Int, detail: String) {
        let fraction = total > 0 ? min(1, Double(done) / Double(total)) : nil
        if interactive {
            var line = "  "
            if let fraction {
                let width = 30, filled = Int(fraction * Double(width))
                line += "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] "
                line += String(format: "%3d %% ", Int(fraction * 100))
            }
            line += detail
            FileHandle.standardError.write(Data("\r\u{1B}[2K\(line)".utf8))
            drawn = true
        } else {
            let text = (fraction.map { "\(Int($0 * 100)) % " } ?? "") + detail
            guard text != lastText, Date().timeIntervalSince(lastPlain) >= plainInterval else { return }
            lastText = text
            lastPlain = Date()
            FileHandle.standardError.write(Data("  \(text)\n".utf8))
        }
    }

    /// A line of its own (a state change), never folded into the bar.
    mutating func line(_ text: String) {
        if interactive && drawn { FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8)); drawn = false }
        FileHandle.standardError.write(Data("  \(text)\n".utf8))
    }

    /// Ends the bar's line (nothing to do for plain lines).
    mutating func finish() {
        if interactive && drawn { FileHandle.standardError.write(Data("\n".utf8)); drawn = false }
    }
}
