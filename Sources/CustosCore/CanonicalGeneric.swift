/// Canonical-form check for trail entries other than events (`custos.alert/v1`,
/// `custos.silence/v1`, ...), which are written by `CanonicalWriter` with the same rules
/// (README "Canonical encoding") but have no fixed schema walker:
/// - objects with keys in strictly ascending byte order (so each key once), no whitespace;
/// - strings as the writer emits them (valid UTF-8, only the escapes `\" \\ \b \t \n \f \r`
///   and `\u00xx` in lower-case hex for the other control characters);
/// - integers in shortest form (no `-0`, no leading zeros, no fraction or exponent);
/// - `true` and `false`; never `null`, never an empty array (absent values are omitted);
/// - at most 32 levels of nesting.
/// Errors say what and at which 1-based byte offset, never the content.
public enum GenericCanonical {
    /// Schemas of the trail's non-event entries.
    public static let otherSchemas: Set<String> = [Alert.schema, Silence.schema, DeliveryRecord.schema, InvestigationRecord.schema, IncidentStep.schema]

    public struct Result: Sendable, Equatable {
        /// The top-level `schema` member, when there is one.
        public var schema: String?
        public var problem: String?
    }

    public static func check(_ entry: UnsafeRawBufferPointer) -> Result {
        var w = Walker(bytes: entry)
        do throws(Failure) {
            guard w.peek() == UInt8(ascii: "{") else { throw w.fail("the entry is not a JSON object") }
            try w.value(depth: 0, top: true)
            guard w.pos == entry.count else { throw w.fail("trailing bytes") }
            return Result(schema: w.schema, problem: nil)
        } catch let f {
            return Result(schema: w.schema, problem: f.message)
        }
    }

    public static func check(_ entry: [UInt8]) -> Result { entry.withUnsafeBytes { check($0) } }

    struct Failure: Error { var message: String }

    struct Walker {
        let bytes: UnsafeRawBufferPointer
        var pos = 0
        var schema: String?

        init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

        func peek() -> UInt8? { pos < bytes.count ? bytes[pos] : nil }
        func fail(_ m: String) -> Failure { Failure(message: "\(m) at byte \(pos + 1)") }

        mutating func expect(_ c: UInt8) throws(Failure) {
            guard peek() == c else { throw fail("expected '\(Character(Unicode.Scalar(c)))'") }
            pos += 1
        }

        mutating func value(depth: Int, top: Bool = false) throws(Failure) {
            guard depth < 32 else { throw fail("nested more than 32 levels") }
            guard let c = peek() else { throw fail("unexpected end") }
            switch c {
            case UInt8(ascii: "{"):
                pos += 1
                var previous: [UInt8]? = nil
                if peek() == UInt8(ascii: "}") { pos += 1; return }
                while true {
                    let key = try string()
                    if let p = previous, !p.lexicographicallyPrecedes(key) {
                        throw fail(p == key ? "duplicate key" : "keys out of order")
                    }
                    previous = key
                    try expect(UInt8(ascii: ":"))
                    if top && key == Array("schema".utf8) && peek() == UInt8(ascii: "\"") {
                        schema = String(decoding: try string(), as: UTF8.self)
                    } else {
                        try value(depth: depth + 1)
                    }
                    if peek() == UInt8(ascii: ",") { pos += 1; continue }
                    try expect(UInt8(ascii: "}"))
                    return
                }
            case UInt8(ascii: "["):
                pos += 1
                guard peek() != UInt8(ascii: "]") else { throw fail("empty array (omitted in canonical form)") }
                while true {
                    try value(depth: depth + 1)
                    if peek() == UInt8(ascii: ",") { pos += 1; continue }
                    try expect(UInt8(ascii: "]"))
                    return
                }
            case UInt8(ascii: "\""):
                _ = try string()
            case UInt8(ascii: "t"): try literal("true")
            case UInt8(ascii: "f"): try literal("false")
            case UInt8(ascii: "n"): throw fail("null (omitted in canonical form)")
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                try integer()
            default:
                throw fail("unexpected byte")
            }
        }

        mutating func literal(_ s: StaticString) throws(Failure) {
            let n = s.utf8CodeUnitCount
            guard pos + n <= bytes.count else { throw fail("unexpected end") }
            for i in 0..<n where bytes[pos + i] != s.utf8Start[i] { throw fail("invalid literal") }
            pos += n
        }

        mutating func integer() throws(Failure) {
            let start = pos
            if peek() == UInt8(ascii: "-") { pos += 1 }
            guard let first = peek(), first >= 0x30 && first <= 0x39 else { throw fail("invalid number") }
            if first == 0x30 {
                pos += 1
                if pos - start == 2 { throw fail("-0 is not canonical") }
            } else {
                var digits = 0
                while let d = peek(), d >= 0x30 && d <= 0x39 { pos += 1; digits += 1 }
                guard digits <= 19 else { throw fail("integer too long") }
            }
            if let c = peek(), c == UInt8(ascii: ".") || c == UInt8(ascii: "e") || c == UInt8(ascii: "E") || (c >= 0x30 && c <= 0x39) {
                throw fail("only integers in shortest form are canonical")
            }
        }

        /// A canonical string; returns its decoded bytes.
        mutating func string() throws(Failure) -> [UInt8] {
            try expect(UInt8(ascii: "\""))
            var out: [UInt8] = []
            while true {
                guard let c = peek() else { throw fail("unterminated string") }
                if c == UInt8(ascii: "\"") { pos += 1; return out }
                if c < 0x20 { throw fail("raw control character in a string") }
                if c == UInt8(ascii: "\\") {
                    guard pos + 1 < bytes.count else { throw fail("unterminated escape") }
                    let e = bytes[pos + 1]
                    switch e {
                    case UInt8(ascii: "\""): out.append(0x22)
                    case UInt8(ascii: "\\"): out.append(0x5C)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "u"):
                        guard pos + 6 <= bytes.count, bytes[pos + 2] == 0x30, bytes[pos + 3] == 0x30,
                              let hi = Self.lowerHex(bytes[pos + 4]), let lo = Self.lowerHex(bytes[pos + 5]) else {
                            throw fail("non-canonical \\u escape")
                        }
                        let v = UInt8(hi << 4 | lo)
                        guard v < 0x20, ![0x08, 0x09, 0x0A, 0x0C, 0x0D].contains(v) else { throw fail("non-canonical \\u escape") }
                        out.append(v)
                        pos += 6
                        continue
                    default:
                        throw fail("non-canonical escape")
                    }
                    pos += 2
                    continue
                }
                if c < 0x80 { out.append(c); pos += 1; continue }
                // Multi-byte UTF-8: validate (no overlongs, surrogates, or > U+10FFFF).
                let n: Int
                var scalar: UInt32
                switch c {
                case 0xC2...0xDF: n = 2; scalar = UInt32(c & 0x1F)
                case 0xE0...0xEF: n = 3; scalar = UInt32(c & 0x0F)
                case 0xF0...0xF4: n = 4; scalar = UInt32(c & 0x07)
                default: throw fail("invalid UTF-8")
                }
                guard pos + n <= bytes.count else { throw fail("invalid UTF-8") }
                for i in 1..<n {
                    let b = bytes[pos + i]
                    guard b & 0xC0 == 0x80 else { throw fail("invalid UTF-8") }
                    scalar = scalar << 6 | UInt32(b & 0x3F)
                }
                let minimum: UInt32 = n == 2 ? 0x80 : n == 3 ? 0x800 : 0x10000
                guard scalar >= minimum, scalar <= 0x10FFFF, !(0xD800...0xDFFF).contains(scalar) else { throw fail("invalid UTF-8") }
                for i in 0..<n { out.append(bytes[pos + i]) }
                pos += n
            }
        }

        static func lowerHex(_ b: UInt8) -> Int? {
            switch b {
            case 0x30...0x39: return Int(b - 0x30)
            case 0x61...0x66: return Int(b - 0x61 + 10)
            default: return nil
            }
        }
    }
}
