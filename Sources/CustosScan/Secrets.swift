/// A secret to look for. `value` is the only copy the caller should keep; `wipe()` overwrites
/// it (best effort: the bytes this array owns), and `SecretMatcher` wipes what it is given.
public struct ScanSecret: Sendable {
    public var name: String
    public var path: String?
    public var value: [UInt8]
    public init(name: String, path: String? = nil, value: [UInt8]) {
        self.name = name; self.path = path; self.value = value
    }
    public mutating func wipe() { wipeBytes(&value) }
}

/// Overwrites an array's storage with zeros, then empties it.
public func wipeBytes(_ a: inout [UInt8]) {
    a.withUnsafeMutableBytes { p in
        if let base = p.baseAddress { base.initializeMemory(as: UInt8.self, repeating: 0, count: p.count) }
    }
    a.removeAll()
}

/// Bounds on what a matcher accepts and how a scan uses memory.
public struct ScanLimits: Sendable {
    /// At most this many secrets (more is an input error, not a silent cut).
    public var maxSecrets = 10_000
    /// Longest secret value in bytes (a PEM private key fits).
    public var maxSecretLength = 8_192
    /// Shortest secret value: shorter values would match everywhere.
    public var minSecretLength = 4
    /// Cleaned bytes scanned per step (memory is a few times this).
    public var blockSize = 4 << 20
    /// Findings kept in memory; past this they are counted (and still masked), not kept.
    public var maxFindings = 100_000
    public init() {}
}

public struct SecretsInputError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ d: String) { description = d }
}

/// Parses a secrets file: a JSON object (name → value string, or name → {"value": ..., "path": ...}),
/// or lines `NAME=VALUE` (blank lines and lines starting with `#` are skipped; the value is
/// everything after the first `=`, with a trailing `\r` removed). Errors never quote a value.
public func parseSecretsFile(_ bytes: [UInt8]) throws -> [ScanSecret] {
    var i = 0
    while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x09 || bytes[i] == 0x0A || bytes[i] == 0x0D { i += 1 }
    if i < bytes.count, bytes[i] == UInt8(ascii: "{") {
        var p = JSONSecretsParser(b: bytes, i: i)
        return try p.parseObject()
    }
    var out: [ScanSecret] = []
    var lineNo = 0
    var start = 0
    while start < bytes.count {
        var end = start
        while end < bytes.count, bytes[end] != 0x0A { end += 1 }
        lineNo += 1
        var e = end
        if e > start, bytes[e - 1] == 0x0D { e -= 1 }
        var s = start
        while s < e, bytes[s] == 0x20 || bytes[s] == 0x09 { s += 1 }
        if s < e, bytes[s] != UInt8(ascii: "#") {
            guard let eq = bytes[s..<e].firstIndex(of: UInt8(ascii: "=")), eq > s else {
                throw SecretsInputError("secrets file line \(lineNo): expected NAME=VALUE")
            }
            var nameEnd = eq
            while nameEnd > s, bytes[nameEnd - 1] == 0x20 { nameEnd -= 1 }
            var name = String(decoding: bytes[s..<nameEnd], as: UTF8.self)
            if name.hasPrefix("export ") { name = String(name.dropFirst(7)).trimmingSpaces() }
            out.append(ScanSecret(name: name, value: Array(bytes[(eq + 1)..<e])))
        }
        start = end + 1
    }
    return out
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}

/// Just enough JSON for `{"NAME": "value", "OTHER": {"value": "...", "path": "..."}}`, decoding
/// straight into byte arrays (so values can be wiped later, unlike `String`s).
struct JSONSecretsParser {
    let b: [UInt8]
    var i: Int

    mutating func ws() { while i < b.count, b[i] == 0x20 || b[i] == 0x09 || b[i] == 0x0A || b[i] == 0x0D { i += 1 } }
    func fail(_ what: String) -> SecretsInputError { SecretsInputError("secrets file: invalid JSON at byte \(i): \(what)") }
    mutating func expect(_ c: Character) throws {
        ws()
        guard i < b.count, b[i] == c.asciiValue! else { throw fail("expected '\(c)'") }
        i += 1
    }

    mutating func parseObject() throws -> [ScanSecret] {
        try expect("{")
        var out: [ScanSecret] = []
        ws()
        if i < b.count, b[i] == UInt8(ascii: "}") { i += 1; return out }
        while true {
            ws()
            var nameBytes = try string()
            let name = String(decoding: nameBytes, as: UTF8.self)
            wipeBytes(&nameBytes)
            try expect(":")
            ws()
            guard i < b.count else { throw fail("unexpected end") }
            if b[i] == UInt8(ascii: "\"") {
                out.append(ScanSecret(name: name, value: try string()))
            } else if b[i] == UInt8(ascii: "{") {
                i += 1
                var value: [UInt8]?
                var path: String?
                ws()
                if i < b.count, b[i] == UInt8(ascii: "}") { i += 1 } else {
                    while true {
                        ws()
                        let key = String(decoding: try string(), as: UTF8.self)
                        try expect(":")
                        ws()
                        var v = try string()
                        switch key {
                        case "value": value = v
                        case "path": path = String(decoding: v, as: UTF8.self); wipeBytes(&v)
                        default: wipeBytes(&v)
                        }
                        ws()
                        guard i < b.count else { throw fail("unexpected end") }
                        if b[i] == UInt8(ascii: ",") { i += 1; continue }
                        if b[i] == UInt8(ascii: "}") { i += 1; break }
                        throw fail("expected ',' or '}'")
                    }
                }
                guard let v = value else { throw SecretsInputError("secrets file: \(name) has no \"value\"") }
                out.append(ScanSecret(name: name, path: path, value: v))
            } else {
                throw fail("a value must be a string or an object with \"value\"")
            }
            ws()
            guard i < b.count else { throw fail("unexpected end") }
            if b[i] == UInt8(ascii: ",") { i += 1; continue }
            if b[i] == UInt8(ascii: "}") { i += 1; break }
            throw fail("expected ',' or '}'")
        }
        ws()
        guard i == b.count else { throw fail("trailing data") }
        return out
    }

    mutating func string() throws -> [UInt8] {
        guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw fail("expected a string") }
        i += 1
        var out: [UInt8] = []
        while true {
            guard i < b.count else { wipeBytes(&out); throw fail("unterminated string") }
            let c = b[i]; i += 1
            if c == UInt8(ascii: "\"") { return out }
            if c != UInt8(ascii: "\\") { out.append(c); continue }
            guard i < b.count else { wipeBytes(&out); throw fail("unterminated escape") }
            let e = b[i]; i += 1
            switch e {
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "/"), UInt8(ascii: "\\"), UInt8(ascii: "\""): out.append(e)
            case UInt8(ascii: "u"):
                var cp = try hex4()
                if cp >= 0xD800, cp < 0xDC00, i + 1 < b.count, b[i] == UInt8(ascii: "\\"), b[i + 1] == UInt8(ascii: "u") {
                    i += 2
                    let lo = try hex4()
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
                }
                appendUTF8(cp, to: &out)
            default: wipeBytes(&out); throw fail("bad escape")
            }
        }
    }

    mutating func hex4() throws -> UInt32 {
        guard i + 4 <= b.count else { throw fail("short \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            guard let d = hexValue(b[i]) else { throw fail("bad \\u escape") }
            v = v << 4 | UInt32(d); i += 1
        }
        return v
    }
}

func hexValue(_ c: UInt8) -> UInt8? {
    switch c {
    case 0x30...0x39: return c - 0x30
    case 0x61...0x66: return c - 0x61 + 10
    case 0x41...0x46: return c - 0x41 + 10
    default: return nil
    }
}

func appendUTF8(_ cp: UInt32, to out: inout [UInt8]) {
    switch cp {
    case 0..<0x80: out.append(UInt8(cp))
    case 0x80..<0x800: out.append(UInt8(0xC0 | cp >> 6)); out.append(UInt8(0x80 | cp & 0x3F))
    case 0x800..<0x10000:
        out.append(UInt8(0xE0 | cp >> 12)); out.append(UInt8(0x80 | (cp >> 6) & 0x3F)); out.append(UInt8(0x80 | cp & 0x3F))
    default:
        out.append(UInt8(0xF0 | (cp >> 18) & 0x07)); out.append(UInt8(0x80 | (cp >> 12) & 0x3F))
        out.append(UInt8(0x80 | (cp >> 6) & 0x3F)); out.append(UInt8(0x80 | cp & 0x3F))
    }
}
