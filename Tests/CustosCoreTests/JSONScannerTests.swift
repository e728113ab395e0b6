import Testing
@testable import CustosCore

@Suite("JSONScanner")
struct JSONScannerTests {

    /// Runs `body` on a scanner over `bytes`; returns its result, or the failure.
    static func scan<T>(_ bytes: [UInt8], _ body: (inout JSONScanner) throws(JSONScanner.Failure) -> T) -> Result<T, JSONScanner.Failure> {
        bytes.withUnsafeBytes { buf in
            var s = JSONScanner(buf)
            do throws(JSONScanner.Failure) { return .success(try body(&s)) } catch { return .failure(error) }
        }
    }

    static func scan<T>(_ text: String, _ body: (inout JSONScanner) throws(JSONScanner.Failure) -> T) -> Result<T, JSONScanner.Failure> {
        scan(Array(text.utf8), body)
    }

    /// Reads one string value and requires the end of input after it.
    static func string(_ json: String) -> Result<String, JSONScanner.Failure> {
        scan(json) { (s: inout JSONScanner) throws(JSONScanner.Failure) in let v = try s.readString(); try s.expectEnd(); return v }
    }

    static func string(_ bytes: [UInt8]) -> Result<String, JSONScanner.Failure> {
        scan(bytes) { (s: inout JSONScanner) throws(JSONScanner.Failure) in let v = try s.readString(); try s.expectEnd(); return v }
    }

    static func int(_ json: String) -> Result<Int64, JSONScanner.Failure> {
        scan(json) { (s: inout JSONScanner) throws(JSONScanner.Failure) in let v = try s.readInt(); try s.expectEnd(); return v }
    }

    static func skip(_ json: String, maxDepth: Int? = nil) -> Result<Int, JSONScanner.Failure> {
        scan(json) { (s: inout JSONScanner) throws(JSONScanner.Failure) in
            if let maxDepth { s.maxDepth = maxDepth }
            try s.skipValue(); try s.expectEnd(); return s.pos
        }
    }

    static func reason<T>(_ r: Result<T, JSONScanner.Failure>) -> String? {
        if case .failure(let f) = r { return f.reason }
        return nil
    }

    static func value<T>(_ r: Result<T, JSONScanner.Failure>) -> T? { try? r.get() }

    // MARK: - Strings

    @Test func stringEscapes() {
        #expect(Self.value(Self.string(#""plain""#)) == "plain")
        #expect(Self.value(Self.string(#""""#)) == "")
        #expect(Self.value(Self.string(#""\"\\\/\b\f\n\r\t""#)) == "\"\\/\u{8}\u{C}\n\r\t")
        #expect(Self.value(Self.string(#""a\u0041b""#)) == "aAb")
        #expect(Self.value(Self.string(#""\u00e9\u00E9""#)) == "éé")
        #expect(Self.value(Self.string(#""\u0000""#)) == "\u{0}")
        #expect(Self.value(Self.string(#""\u4e2d\uFFFF""#)) == "中\u{FFFF}")
        // Surrogate pairs, lower and upper case hex.
        #expect(Self.value(Self.string(#""\ud83d\ude00""#)) == "😀")
        #expect(Self.value(Self.string(#""x\uD83D\uDE00y""#)) == "x😀y")
        #expect(Self.value(Self.string(#""\uDBFF\uDFFF""#)) == "\u{10FFFF}")
        #expect(Self.value(Self.string(#""\uD800\uDC00""#)) == "\u{10000}")
        // Raw UTF-8 (including DEL) passes through.
        #expect(Self.value(Self.string("\"é中😀\u{7F}\"")) == "é中😀\u{7F}")
        #expect(Self.value(Self.string("  \"ws\"\n ")) == "ws")
    }

    @Test(arguments: [
        #""\uD800""#, #""\uD800x""#, #""\uDBFF\u0041""#, #""\uD800\uD800""#, #""\uDC00""#, #""\uDFFF\uD800""#,
        #""\ud83d\n""#, #""\ud83d\""#, #""a\uDE00b""#,
    ])
    func unpairedSurrogatesAreRejected(_ json: String) {
        let r = Self.string(json)
        #expect(Self.value(r) == nil)
        #expect(Self.reason(r) == "unpaired surrogate" || Self.reason(r) == "unterminated string" || Self.reason(r) == "truncated \\u escape")
    }

    @Test func unpairedSurrogateReasons() {
        #expect(Self.reason(Self.string(#""\uD800""#)) == "unpaired surrogate")
        #expect(Self.reason(Self.string(#""\uDC00""#)) == "unpaired surrogate")
        #expect(Self.reason(Self.string(#""\uD800\u0041""#)) == "unpaired surrogate")
    }

    @Test func badStrings() {
        #expect(Self.reason(Self.string(#""\x""#)) == "invalid escape")
        #expect(Self.reason(Self.string(#""\'""#)) == "invalid escape")
        #expect(Self.reason(Self.string(#""\u12""#)) != nil)
        #expect(Self.reason(Self.string(#""\u12G4""#)) == "invalid \\u escape")
        #expect(Self.reason(Self.string(#""\u""#)) != nil)
        #expect(Self.reason(Self.string(#""abc"#)) == "unterminated string")
        #expect(Self.reason(Self.string(#""ab\"#)) == "unterminated string")
        #expect(Self.reason(Self.string(#""a\n\"#)) == "unterminated string")
        #expect(Self.reason(Self.string("\"a\u{1}b\"")) == "control character in string")
        #expect(Self.reason(Self.string("\"a\\nb\nc\"")) == "control character in string")   // slow path
        #expect(Self.reason(Self.string("\"tab\there\"")) == "control character in string")
        #expect(Self.reason(Self.string([0x22, 0x61, 0xFF, 0x22])) == "invalid UTF-8 in string")
        #expect(Self.reason(Self.string([0x22, 0x5C, 0x6E, 0xC3, 0x28, 0x22])) == "invalid UTF-8 in string")
        #expect(Self.reason(Self.string([0x22, 0xED, 0xA0, 0x80, 0x22])) == "invalid UTF-8 in string")   // encoded surrogate
        #expect(Self.reason(Self.string([0x22, 0xC0, 0xAF, 0x22])) == "invalid UTF-8 in string")         // overlong
        #expect(Self.reason(Self.string("abc")) == "expected a string")
        #expect(Self.reason(Self.string("null")) == "expected a string")
        #expect(Self.reason(Self.string("")) == "expected a string")
        #expect(Self.reason(Self.string(#""a" "b""#)) == "trailing data after JSON value")
    }

    @Test func failureOffsetsAreOneBasedBytes() {
        guard case .failure(let f) = Self.string(#""ab\x""#) else { Issue.record("accepted"); return }
        #expect(f.offset == 4)   // the escape letter
        #expect(f.description == "invalid escape at byte 5")
        guard case .failure(let g) = Self.string("\"a\u{1}\"") else { Issue.record("accepted"); return }
        #expect(g.offset == 2 && g.description == "control character in string at byte 3")
    }

    // MARK: - Numbers

    @Test func readInt() {
        #expect(Self.value(Self.int("0")) == 0)
        #expect(Self.value(Self.int("-0")) == 0)
        #expect(Self.value(Self.int("42")) == 42)
        #expect(Self.value(Self.int("-42")) == -42)
        #expect(Self.value(Self.int(" \n7\t ")) == 7)
        #expect(Self.value(Self.int("9223372036854775807")) == Int64.max)
        #expect(Self.value(Self.int("-9223372036854775807")) == -Int64.max)
        #expect(Self.value(Self.int("-9223372036854775808")) == Int64.min)
        #expect(Self.reason(Self.int("9223372036854775808")) == "integer out of range")
        #expect(Self.reason(Self.int("-9223372036854775809")) == "integer out of range")
        #expect(Self.reason(Self.int("99999999999999999999")) == "integer out of range")
        #expect(Self.reason(Self.int("01")) == "leading zero")
        #expect(Self.reason(Self.int("-01")) == "leading zero")
        #expect(Self.reason(Self.int("00")) == "leading zero")
        for bad in ["1.5", "1.0", "1e3", "1E3", "-", "+1", "", " ", ".5", "a", "\"1\"", "null", "true", "0x10"] {
            #expect(Self.value(Self.int(bad)) == nil, "\(bad)")
        }
        #expect(Self.reason(Self.int("1.5")) == "expected an integer")
        #expect(Self.reason(Self.int("12 3")) == "trailing data after JSON value")
    }

    @Test func skipValueNumbers() {
        for ok in ["0", "-0", "1.5", "-0.0e+10", "1E-3", "1e3", "123456789012345678901234567890", "0.000001", "-12.5E+7"] {
            #expect(Self.value(Self.skip(ok)) == ok.utf8.count, "\(ok)")
        }
        for bad in ["01", "-01", "1.", "1e", "1e+", "-", ".5", "+1", "1.e3", "--1", "0x1", "1.5.5", "NaN", "Infinity"] {
            #expect(Self.value(Self.skip(bad)) == nil, "\(bad)")
        }
    }

    // MARK: - skipValue

    @Test func skipValueAcceptsValidJSON() {
        for ok in [#"{}"#, #"[]"#, #"  { "a" : [ 1 , "x" , { } , [ ] , null , true , false ] }  "#, #""s\u00e9\n""#,
                   "true", "false", "null", #"{"a":{"b":{"c":[[[]]]}}}"#, #"[1,-2.5e3,"\"",{"k\"ey":null}]"#,
                   "\t\r\n[1]\t\r\n"] {
            #expect(Self.value(Self.skip(ok)) != nil, "\(ok)")
        }
    }

    @Test func skipValueRejectsInvalidJSON() {
        for bad in ["", " ", "{", "[", "{]", "[}", #"{"a"}"#, #"{"a":}"#, #"{"a":1,}"#, "[1,]", "[,1]", #"{a:1}"#,
                    #"{'a':1}"#, "nul", "tru", "fals", "nulll", "[1 2]", #"{"a":1 "b":2}"#, #"{"a" 1}"#, #"{1:2}"#,
                    "\"unterminated", "[\"a\\x\"]", "\u{C}[]", "\u{A0}[]", "[] []", "{}}", "undefined"] {
            #expect(Self.value(Self.skip(bad)) == nil, "\(bad)")
        }
    }

    @Test func skipValueDepthLimit() {
        func nested(_ n: Int, _ open: String, _ close: String) -> String {
            String(repeating: open, count: n) + String(repeating: close, count: n)
        }
        #expect(Self.value(Self.skip(nested(64, "[", "]"))) != nil)
        #expect(Self.reason(Self.skip(nested(65, "[", "]"))) == "nesting too deep")
        #expect(Self.value(Self.skip(nested(64, #"{"a":"#, "}").replacingOccurrences(of: #"{"a":}"#, with: "{}"))) != nil)
        let deepObject = String(repeating: #"{"a":"#, count: 65) + "1" + String(repeating: "}", count: 65)
        #expect(Self.reason(Self.skip(deepObject)) == "nesting too deep")
        let mixed = String(repeating: #"[{"a":"#, count: 33) + "1" + String(repeating: "}]", count: 33)
        #expect(Self.reason(Self.skip(mixed)) == "nesting too deep")
        // Hostile depth: fails fast without exhausting the stack.
        #expect(Self.reason(Self.skip(String(repeating: "[", count: 10_000))) == "nesting too deep")
        #expect(Self.reason(Self.skip(String(repeating: #"{"a":"#, count: 10_000))) == "nesting too deep")
        #expect(Self.reason(Self.skip(String(repeating: "[", count: 1_000_000))) == "nesting too deep")
        // The limit is adjustable.
        #expect(Self.value(Self.skip("[[[]]]", maxDepth: 3)) != nil)
        #expect(Self.reason(Self.skip("[[[[]]]]", maxDepth: 3)) == "nesting too deep")
    }

    @Test func trailingDataAndEmptyInput() {
        for bad in ["1 2", "{} x", "[]]", "{}{}", "\"a\"\"b\"", "null,"] {
            #expect(Self.reason(Self.skip(bad)) == "trailing data after JSON value", "\(bad)")
        }
        #expect(Self.reason(Self.skip("")) == "unexpected end of input")
        #expect(Self.reason(Self.skip(" \n\t\r")) == "unexpected end of input")
        let empty = Self.scan([UInt8]()) { (s: inout JSONScanner) throws(JSONScanner.Failure) in
            let atEnd = s.atEnd, peeked = s.peek(), null = s.isNull()
            #expect(atEnd && peeked == nil && !null)
            try s.expectEnd()
            return s.count
        }
        #expect(Self.value(empty) == 0)
        #expect(Self.reason(Self.scan("") { (s: inout JSONScanner) throws(JSONScanner.Failure) in try s.readObject { (_: inout JSONScanner, _: JSONScanner.Key) throws(JSONScanner.Failure) in } }) == "unexpected end of input")
    }

    // MARK: - Objects and arrays

    @Test func readObjectMembersAndWhitespace() {
        let json = " \t\r\n{ \"a\" : [ 1 , 2 ] ,\n\"b\":\"x\" , \"c\" : { } }\r\n"
        let r = Self.scan(json) { (s: inout JSONScanner) throws(JSONScanner.Failure) -> [String] in
            var keys: [String] = []
            try s.readObject { (s: inout JSONScanner, k: JSONScanner.Key) throws(JSONScanner.Failure) in
                keys.append(k.string)
                if k.equals("b") { let v = try s.readString(); #expect(v == "x") } else { try s.skipValue() }
            }
            try s.expectEnd()
            return keys
        }
        #expect(Self.value(r) == ["a", "b", "c"])
    }

    @Test func readObjectErrors() {
        func members(_ json: String, consume: Bool = true) -> Result<[String], JSONScanner.Failure> {
            Self.scan(json) { (s: inout JSONScanner) throws(JSONScanner.Failure) -> [String] in
                var keys: [String] = []
                try s.readObject { (s: inout JSONScanner, k: JSONScanner.Key) throws(JSONScanner.Failure) in
                    keys.append(k.string)
                    if consume { try s.skipValue() }
                }
                try s.expectEnd()
                return keys
            }
        }
        #expect(Self.value(members("{}")) == [])
        #expect(Self.value(members(#"{"a":1,"a":2}"#)) == ["a", "a"])   // duplicates are the caller's business
        #expect(Self.reason(members(#"{"a":1,}"#)) == "expected a string key")
        #expect(Self.reason(members(#"{"a" 1}"#)) == "expected ':'")
        #expect(Self.reason(members(#"{"a":1 "b":2}"#)) == "expected ',' or '}'")
        #expect(Self.reason(members(#"{1:1}"#)) == "expected a string key")
        #expect(Self.reason(members(#"{"a":1"#)) == "unexpected end of input")
        #expect(Self.reason(members("[]")) == "expected '{'")
        #expect(Self.reason(members(#"{"a":1}"#, consume: false)) == "value not consumed")
        // Escaped keys are validated but never match a literal: they come back empty.
        #expect(Self.value(members(#"{"\u0061":1,"b\"c":2}"#)) == ["", ""])
        #expect(Self.reason(members(#"{"\x":1}"#)) == "invalid escape")
        #expect(Self.reason(members("{\"a\u{1}\":1}")) == "control character in string")
    }

    @Test func stringArrays() {
        func arr(_ json: String, limit: Int = 1024) -> Result<[String], JSONScanner.Failure> {
            Self.scan(json) { (s: inout JSONScanner) throws(JSONScanner.Failure) in
                let v = try s.readStringArray(limit: limit); try s.expectEnd(); return v
            }
        }
        #expect(Self.value(arr("null")) == [])
        #expect(Self.value(arr("[]")) == [])
        #expect(Self.value(arr(#" [ "a" , "b\n" ] "#)) == ["a", "b\n"])
        #expect(Self.reason(arr(#"["a",1]"#)) == "expected a string")
        #expect(Self.reason(arr(#"["a",]"#)) == "expected a string")
        #expect(Self.reason(arr(#"["a""b"]"#)) == "expected ',' or ']'")
        #expect(Self.value(arr(#"["a","b","c"]"#, limit: 3)) == ["a", "b", "c"])
        #expect(Self.reason(arr(#"["a","b","c","d"]"#, limit: 3)) == "array too long")
        #expect(Self.value(arr(#"{"a":1}"#)) == nil)
    }

    @Test func literals() {
        func lit(_ json: String) -> Result<String, JSONScanner.Failure> {
            Self.scan(json) { (s: inout JSONScanner) throws(JSONScanner.Failure) in
                let v: String
                if s.isNull() { v = "null" } else { v = try s.readBool() ? "true" : "false" }
                try s.expectEnd()
                return v
            }
        }
        #expect(Self.value(lit(" true ")) == "true")
        #expect(Self.value(lit("false")) == "false")
        #expect(Self.value(lit("null")) == "null")
        #expect(Self.reason(lit("True")) == "expected a boolean")
        #expect(Self.reason(lit("tru")) == "expected a boolean")
        #expect(Self.reason(lit("1")) == "expected a boolean")
        #expect(Self.reason(lit("truex")) == "trailing data after JSON value")
        #expect(Self.value(Self.scan(#""x""#) { (s: inout JSONScanner) throws(JSONScanner.Failure) in try s.readStringOrNull() }) == .some("x"))
        #expect(Self.value(Self.scan("null") { (s: inout JSONScanner) throws(JSONScanner.Failure) in try s.readStringOrNull() }) == .some(nil))
    }
}
