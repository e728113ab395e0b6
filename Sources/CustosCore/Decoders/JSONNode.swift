/// One JSON value, fully parsed, for the record-level decoders of sources other than Vault
/// (GitHub, GitLab, and the cloud audit logs of issue 7). Their records are small and few
/// compared with Vault's, so clarity wins over the byte-range tricks of `VaultAuditDecoder`.
///
/// Parsing is bounded (`JSONNode.Limits`): nesting depth, string length, members per
/// record. Errors give a reason and a byte offset, never the input's content.
public enum JSONNode: Sendable, Equatable {
    case null
    case bool(Bool)
    /// The number as written (validated JSON number syntax): epoch timestamps need every
    /// digit, which `Double` would round.
    case number(String)
    case string(String)
    case array([JSONNode])
    /// Members in input order (a duplicate key: the first one wins in `subscript`).
    case object([(String, JSONNode)])

    public static func == (a: JSONNode, b: JSONNode) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.bool(let x), .bool(let y)): return x == y
        case (.number(let x), .number(let y)): return x == y
        case (.string(let x), .string(let y)): return x == y
        case (.array(let x), .array(let y)): return x == y
        case (.object(let x), .object(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    public struct Limits: Sendable {
        public var maxDepth: Int
        public var maxStringBytes: Int
        /// Values (of any kind) in one record.
        public var maxValues: Int
        public init(maxDepth: Int = 32, maxStringBytes: Int = 64 << 10, maxValues: Int = 100_000) {
            self.maxDepth = maxDepth; self.maxStringBytes = maxStringBytes; self.maxValues = maxValues
        }
        public static let `default` = Limits()
    }

    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public var offset: Int
        public var reason: String
        public var description: String { "\(reason) at byte \(offset + 1)" }
    }

    /// Parses exactly one JSON value (surrounding whitespace allowed).
    public static func parse(_ bytes: UnsafeRawBufferPointer, limits: Limits = .default) throws(ParseError) -> JSONNode {
        var p = Parser(b: bytes.bindMemory(to: UInt8.self), limits: limits)
        p.ws()
        let v = try p.value(depth: 0)
        p.ws()
        guard p.i == p.b.count else { throw p.fail("trailing bytes after the value") }
        return v
    }

    public static func parse(_ bytes: [UInt8], limits: Limits = .default) throws(ParseError) -> JSONNode {
        let r: Result<JSONNode, ParseError> = bytes.withUnsafeBytes { raw in
            do throws(ParseError) { return .success(try parse(raw, limits: limits)) } catch { return .failure(error) }
        }
        return try r.get()
    }

    // MARK: Access

    /// The member `key` of an object (nil for anything else or when absent).
    public subscript(key: String) -> JSONNode? {
        guard case .object(let members) = self else { return nil }
        for (k, v) in members where k == key { return v }
        return nil
    }

    /// The value at a path of keys (`["meta", "remote_ip"]`).
    public subscript(path: [String]) -> JSONNode? {
        var v: JSONNode? = self
        for k in path { v = v?[k] }
        return v
    }

    public var stringValue: String? { if case .string(let s) = self { return s }; return nil }
    public var isNull: Bool { if case .null = self { return true }; return false }
    public var boolValue: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var arrayValue: [JSONNode]? { if case .array(let a) = self { return a }; return nil }
    public var isObject: Bool { if case .object = self { return true }; return false }
    public var objectKeys: [String] { if case .object(let m) = self { return m.map(\.0) }; return [] }

    /// An integer given as a JSON integer or as a string of digits (GitHub ids, GitLab ids).
    public var intValue: Int? {
        switch self {
        case .number(let n), .string(let n): return Int(n)
        default: return nil
        }
    }

    /// A non-empty string, or the text of a number (ids that some sources write either way).
    public var text: String? {
        switch self {
        case .string(let s): return s.isEmpty ? nil : s
        case .number(let n): return n
        default: return nil
        }
    }

    // MARK: Parser

    struct Parser {
        let b: UnsafeBufferPointer<UInt8>
        let limits: Limits
        var i = 0
        var values = 0

        func fail(_ r: String) -> ParseError { ParseError(offset: i, reason: r) }

        mutating func ws() {
            while i < b.count, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 }
        }

        mutating func value(depth: Int) throws(ParseError) -> JSONNode {
            values += 1
            guard values <= limits.maxValues else { throw fail("more than \(limits.maxValues) values in one record") }
            guard i < b.count else { throw fail("unexpected end of input") }
            switch b[i] {
            case 0x7B:
                guard depth < limits.maxDepth else { throw fail("nested more than \(limits.maxDepth) levels") }
                i += 1; ws()
                var members: [(String, JSONNode)] = []
                if i < b.count, b[i] == 0x7D { i += 1; return .object(members) }
                while true {
                    ws()
                    guard i < b.count, b[i] == 0x22 else { throw fail(i < b.count ? "expected a string key" : "unexpected end of input") }
                    let k = try string()
                    ws()
                    guard i < b.count, b[i] == 0x3A else { throw fail(i < b.count ? "expected ':'" : "unexpected end of input") }
                    i += 1; ws()
                    let v = try value(depth: depth + 1)
                    members.append((k, v))
                    ws()
                    guard i < b.count else { throw fail("unexpected end of input") }
                    if b[i] == 0x2C { i += 1; continue }
                    if b[i] == 0x7D { i += 1; return .object(members) }
                    throw fail("expected ',' or '}'")
                }
            case 0x5B:
                guard depth < limits.maxDepth else { throw fail("nested more than \(limits.maxDepth) levels") }
                i += 1; ws()
                var items: [JSONNode] = []
                if i < b.count, b[i] == 0x5D { i += 1; return .array(items) }
                while true {
                    ws()
                    items.append(try value(depth: depth + 1))
                    ws()
                    guard i < b.count else { throw fail("unexpected end of input") }
                    if b[i] == 0x2C { i += 1; continue }
                    if b[i] == 0x5D { i += 1; return .array(items) }
                    throw fail("expected ',' or ']'")
                }
            case 0x22: return .string(try string())
            case 0x74: try literal("true"); return .bool(true)
            case 0x66: try literal("false"); return .bool(false)
            case 0x6E: try literal("null"); return .null
            case 0x2D, 0x30...0x39: return .number(try number())
            default: throw fail("unexpected character")
            }
        }

        mutating func literal(_ s: StaticString) throws(ParseError) {
            let n = s.utf8CodeUnitCount
            guard i + n <= b.count else { throw fail("unexpected end of input") }
            for k in 0..<n where b[i + k] != s.utf8Start[k] { throw fail("invalid literal") }
            i += n
        }

        mutating func number() throws(ParseError) -> String {
            let start = i
            if b[i] == 0x2D { i += 1 }
            func digits(_ p: inout Parser) -> Int {
                let s = p.i
                while p.i < p.b.count, p.b[p.i] >= 0x30, p.b[p.i] <= 0x39 { p.i += 1 }
                return p.i - s
            }
            guard i < b.count, b[i] >= 0x30, b[i] <= 0x39 else { throw fail("invalid number") }
            if b[i] == 0x30 { i += 1 } else { _ = digits(&self) }
            if i < b.count, b[i] == 0x2E {
                i += 1
                guard digits(&self) > 0 else { throw fail("invalid number") }
            }
            if i < b.count, b[i] == 0x65 || b[i] == 0x45 {
                i += 1
                if i < b.count, b[i] == 0x2B || b[i] == 0x2D { i += 1 }
                guard digits(&self) > 0 else { throw fail("invalid number") }
            }
            guard i - start <= 64 else { throw fail("number longer than 64 characters") }
            return String(decoding: UnsafeBufferPointer(rebasing: b[start..<i]), as: UTF8.self)
        }

        mutating func hex4() throws(ParseError) -> UInt32 {
            guard i + 4 <= b.count else { throw fail("unexpected end of input") }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let c = b[i]
                let d: UInt32
                switch c {
                case 0x30...0x39: d = UInt32(c - 0x30)
                case 0x61...0x66: d = UInt32(c - 0x61 + 10)
                case 0x41...0x46: d = UInt32(c - 0x41 + 10)
                default: throw fail("invalid \\u escape")
                }
                v = v << 4 | d
                i += 1
            }
            return v
        }

        /// A string at `b[i] == '"'`: escapes resolved, UTF-8 validated, length bounded.
        mutating func string() throws(ParseError) -> String {
            i += 1
            var out: [UInt8] = []
            let start = i
            var plain = true
            while true {
                guard i < b.count else { throw fail("unterminated string") }
                let c = b[i]
                if c == 0x22 { break }
                if c < 0x20 { throw fail("control character in string") }
                if c != 0x5C {
                    if !plain { out.append(c) }
                    i += 1
                } else {
                    if plain { out.append(contentsOf: UnsafeBufferPointer(rebasing: b[start..<i])); plain = false }
                    i += 1
                    guard i < b.count else { throw fail("unterminated string") }
                    let e = b[i]; i += 1
                    switch e {
                    case 0x22: out.append(0x22)
                    case 0x5C: out.append(0x5C)
                    case 0x2F: out.append(0x2F)
                    case 0x62: out.append(0x08)
                    case 0x66: out.append(0x0C)
                    case 0x6E: out.append(0x0A)
                    case 0x72: out.append(0x0D)
                    case 0x74: out.append(0x09)
                    case 0x75:
                        var u = try hex4()
                        if (0xD800...0xDBFF).contains(u) {
                            guard i + 6 <= b.count, b[i] == 0x5C, b[i + 1] == 0x75 else { throw fail("unpaired surrogate") }
                            i += 2
                            let lo = try hex4()
                            guard (0xDC00...0xDFFF).contains(lo) else { throw fail("unpaired surrogate") }
                            u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00)
                        } else if (0xDC00...0xDFFF).contains(u) {
                            throw fail("unpaired surrogate")
                        }
                        guard let scalar = Unicode.Scalar(u) else { throw fail("invalid \\u escape") }
                        out.append(contentsOf: Array(String(Character(scalar)).utf8))
                    default:
                        i -= 1
                        throw fail("invalid escape")
                    }
                }
                if (plain ? i - start : out.count) > limits.maxStringBytes {
                    throw fail("string longer than \(limits.maxStringBytes) bytes")
                }
            }
            let s: String?
            if plain {
                s = String(validating: UnsafeBufferPointer(rebasing: b[start..<i]), as: UTF8.self)
            } else {
                s = String(validating: out, as: UTF8.self)
            }
            guard let s else { throw fail("invalid UTF-8 in string") }
            i += 1
            return s
        }
    }
}
