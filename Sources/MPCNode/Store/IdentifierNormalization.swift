/// How identifiers are made comparable across banks before they are stored. Both sides of a join must
/// use the same normalisation, or equal customers will not match.
public struct IdentifierNormalization: Sendable, Equatable, Codable, CustomStringConvertible {
    /// Remove leading and trailing white space (on by default).
    public var trim: Bool = true
    /// Lower-case (Unicode case folding), e.g. for e-mail addresses.
    public var caseFold: Bool = false
    /// Keep only the digits 0–9, e.g. for phone numbers written "+44 (0)20 7946-0000".
    public var digitsOnly: Bool = false

    public init(trim: Bool = true, caseFold: Bool = false, digitsOnly: Bool = false) {
        self.trim = trim
        self.caseFold = caseFold
        self.digitsOnly = digitsOnly
    }

    public func apply(_ value: String) -> String {
        var v = value
        if trim { v = v.trimmingCharacters(in: .whitespacesAndNewlines) }
        if caseFold { v = v.lowercased() }
        if digitsOnly { v = String(v.unicodeScalars.filter { ("0"..."9").contains($0) }.map(Character.init)) }
        return v
    }

    /// `apply` on bytes, for the import's hot path: the normalised identifier of `bytes` written to `out`
    /// when they are all ASCII (true); false otherwise, and the caller takes the `String` path (the two
    /// agree on ASCII: ASCII white space is 0x09–0x0D and 0x20, ASCII upper case maps to lower case, the
    /// digits are 0–9).
    public func applyASCII(_ bytes: UnsafeBufferPointer<UInt8>, into out: inout [UInt8]) -> Bool {
        out.removeAll(keepingCapacity: true)
        for b in bytes where b >= 0x80 { return false }
        var lo = 0, hi = bytes.count
        if trim {
            func isSpace(_ b: UInt8) -> Bool { b == 0x20 || (0x09...0x0D).contains(b) }
            while lo < hi && isSpace(bytes[lo]) { lo += 1 }
            while hi > lo && isSpace(bytes[hi - 1]) { hi -= 1 }
        }
        if !caseFold && !digitsOnly {
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[lo ..< hi]))
            return true
        }
        for i in lo ..< hi {
            var b = bytes[i]
            if digitsOnly && !(0x30...0x39).contains(b) { continue }
            if caseFold && (0x41...0x5A).contains(b) { b += 0x20 }
            out.append(b)
        }
        return true
    }

    /// Parses what `description` prints ("trim,digits-only", "none"); nil for anything else.
    public init?(description: String) {
        self.init(trim: false)
        guard description != "none" else { return }
        for step in description.split(separator: ",") {
            switch step {
            case "trim": trim = true
            case "case-fold": caseFold = true
            case "digits-only": digitsOnly = true
            default: return nil
            }
        }
    }

    public var description: String {
        var parts: [String] = []
        if trim { parts.append("trim") }
        if caseFold { parts.append("case-fold") }
        if digitsOnly { parts.append("digits-only") }
        return parts.isEmpty ? "none" : parts.joined(separator: ",")
    }
}

import Foundation
