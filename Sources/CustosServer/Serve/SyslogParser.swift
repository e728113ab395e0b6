/// Syslog messages (RFC 5424 and RFC 3164 with its common variants), parsed from the bytes
/// of one frame. Pure: no I/O, no allocation beyond the result, never traps on any input
/// (fuzz-tested). The MSG part is what Custos decodes (a Vault/OpenBao audit record or a
/// custos event as JSON); the header is checked and kept only as far as it is useful.
///
/// Custos's own rule on top of the RFCs: MSG must be valid UTF-8 (RFC 5424 requires it after
/// a BOM; RFC 3164 leaves it open), since JSON is UTF-8.
public struct SyslogMessage: Sendable, Equatable {
    public enum Kind: String, Sendable { case rfc5424, rfc3164 }
    public var kind: Kind
    /// 0...23 and 0...7; a RFC 3164 message without PRI gets 1 (user) and 5 (notice), as a
    /// relay would assign (RFC 3164 4.3.3).
    public var facility: Int
    public var severity: Int
    /// The timestamp as sent (RFC 3339 in RFC 5424; `Mmm dd hh:mm:ss` and variants in RFC 3164).
    public var timestamp: String?
    public var hostname: String?
    public var appName: String?
    public var procID: String?
    public var msgID: String?
    public var structuredData: [SyslogSDElement] = []
    /// MSG without a leading BOM and without trailing LF, CR and NUL bytes.
    public var message: [UInt8]
}

public struct SyslogSDElement: Sendable, Equatable {
    public var id: String
    public var params: [SyslogSDParam]
}

public struct SyslogSDParam: Sendable, Equatable {
    public var name: String
    /// Unescaped (`\"`, `\\`, `\]`).
    public var value: String
}

/// Why a frame is not a syslog message Custos accepts. `description` names the rule and the
/// byte offset, never the message's content.
public struct SyslogParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        public var description: String { name }
        public static let empty = Code(name: "empty")
        public static let badPriority = Code(name: "bad PRI")
        public static let badVersion = Code(name: "bad VERSION")
        public static let badTimestamp = Code(name: "bad TIMESTAMP")
        public static let badHeader = Code(name: "bad header field")
        public static let badStructuredData = Code(name: "bad STRUCTURED-DATA")
        public static let invalidUTF8 = Code(name: "invalid UTF-8")
    }
    public var code: Code
    public var offset: Int
    public var detail: String
    public init(_ code: Code, at offset: Int, _ detail: String) { self.code = code; self.offset = offset; self.detail = detail }
    public var description: String { "\(code) at byte \(offset): \(detail)" }
}

public enum SyslogParser {
    /// RFC 5424 if a VERSION follows the PRI, otherwise RFC 3164.
    public static func parse(_ bytes: [UInt8]) -> Result<SyslogMessage, SyslogParseError> {
        bytes.withUnsafeBytes { parse($0) }
    }

    public static func parse(_ raw: UnsafeRawBufferPointer) -> Result<SyslogMessage, SyslogParseError> {
        var c = Cursor(raw)
        do throws(SyslogParseError) {
            guard !c.atEnd else { throw SyslogParseError(.empty, at: 0, "no bytes") }
            guard c.peek == UInt8(ascii: "<") else {
                // RFC 3164 4.3.3: no PRI, so the whole frame is the content.
                return .success(try rfc3164Content(&c, facility: 1, severity: 5))
            }
            let pri = try priority(&c)
            // VERSION: 1...3 digits and a space (an RFC 3339 time in RFC 3164 starts with 4 digits and '-').
            var v = c.pos
            while v < raw.count, v - c.pos < 4, isDigit(raw[v]) { v += 1 }
            if v > c.pos, v - c.pos <= 3, v == raw.count || raw[v] == 0x20 || !isDigit(raw[v]) && raw[v] != 0x2D {
                return .success(try rfc5424(&c, pri: pri))
            }
            return .success(try rfc3164(&c, pri: pri))
        } catch {
            return .failure(error)
        }
    }

    // MARK: PRI

    /// `<` 1*3DIGIT `>`, 0...191, no leading zero (except `<0>`).
    static func priority(_ c: inout Cursor) throws(SyslogParseError) -> Int {
        let start = c.pos
        c.advance()  // "<"
        var v = 0, digits = 0
        while let b = c.peek, isDigit(b) {
            if digits == 3 { throw SyslogParseError(.badPriority, at: start, "more than 3 digits") }
            if digits == 1 && v == 0 { throw SyslogParseError(.badPriority, at: start, "leading zero") }
            v = v * 10 + Int(b - 0x30); digits += 1; c.advance()
        }
        guard digits > 0 else { throw SyslogParseError(.badPriority, at: start, "expected <0...191>") }
        guard c.peek == UInt8(ascii: ">") else { throw SyslogParseError(.badPriority, at: c.pos, "expected '>' after the priority value") }
        c.advance()
        guard v <= 191 else { throw SyslogParseError(.badPriority, at: start, "priority value above 191") }
        return v
    }

    // MARK: RFC 5424

    static func rfc5424(_ c: inout Cursor, pri: Int) throws(SyslogParseError) -> SyslogMessage {
        let vStart = c.pos
        var version = 0, digits = 0
        while let b = c.peek, isDigit(b), digits < 3 { version = version * 10 + Int(b - 0x30); digits += 1; c.advance() }
        guard c.peek == 0x20 else { throw SyslogParseError(.badVersion, at: c.pos, "expected a space after VERSION") }
        guard version == 1 else { throw SyslogParseError(.badVersion, at: vStart, "only VERSION 1 (RFC 5424) is known") }
        c.advance()
        let ts = try field(&c, "TIMESTAMP", max: 64)
        if let ts { try checkRFC3339(ts, at: c.pos - ts.utf8.count - 1) }
        var m = SyslogMessage(kind: .rfc5424, facility: pri / 8, severity: pri % 8, timestamp: ts, message: [])
        m.hostname = try field(&c, "HOSTNAME", max: 255)
        m.appName = try field(&c, "APP-NAME", max: 48)
        m.procID = try field(&c, "PROCID", max: 128)
        m.msgID = try field(&c, "MSGID", max: 32, last: true)
        m.structuredData = try structuredData(&c)
        if !c.atEnd {
            guard c.peek == 0x20 else { throw SyslogParseError(.badStructuredData, at: c.pos, "expected a space before MSG") }
            c.advance()
        }
        m.message = try message(&c)
        return m
    }

    /// A header field: NILVALUE (`-`, returned as nil) or 1...max printable US-ASCII
    /// characters, followed by one space (for the last one: by the space before
    /// STRUCTURED-DATA, which must be there).
    static func field(_ c: inout Cursor, _ name: String, max: Int, last: Bool = false) throws(SyslogParseError) -> String? {
        let start = c.pos
        while let b = c.peek, b != 0x20 {
            guard b >= 33 && b <= 126 else { throw SyslogParseError(.badHeader, at: c.pos, "\(name) must be printable US-ASCII") }
            c.advance()
        }
        let n = c.pos - start
        guard n > 0 else { throw SyslogParseError(.badHeader, at: start, "\(name) is empty (use - for none)") }
        guard n <= max else { throw SyslogParseError(.badHeader, at: start, "\(name) longer than \(max) characters") }
        guard c.peek == 0x20 else { throw SyslogParseError(.badHeader, at: c.pos, "message ends after \(name)") }
        c.advance()
        if n == 1 && c.raw[start] == UInt8(ascii: "-") { return nil }
        return c.string(start..<(start + n))
    }

    /// FULL-DATE "T" FULL-TIME (RFC 5424 6.2.3): `2026-11-28T12:00:00.123456Z`, `...+01:00`.
    /// Fractions of up to 9 digits are accepted (RFC 5424 allows 6; some senders write 9).
    static func checkRFC3339(_ s: String, at offset: Int) throws(SyslogParseError) {
        let b = Array(s.utf8)
        func fail(_ why: String) -> SyslogParseError { SyslogParseError(.badTimestamp, at: offset, why) }
        func digits(_ r: Range<Int>) -> Int? {
            guard r.upperBound <= b.count else { return nil }
            var v = 0
            for i in r { guard isDigit(b[i]) else { return nil }; v = v * 10 + Int(b[i] - 0x30) }
            return v
        }
        guard b.count >= 20, let _ = digits(0..<4), b[4] == 0x2D, let mo = digits(5..<7), b[7] == 0x2D, let d = digits(8..<10),
              b[10] == UInt8(ascii: "T") || b[10] == UInt8(ascii: "t"),
              let h = digits(11..<13), b[13] == 0x3A, let mi = digits(14..<16), b[16] == 0x3A, let se = digits(17..<19) else {
            throw fail("expected YYYY-MM-DDThh:mm:ss[.frac](Z|+hh:mm)")
        }
        guard (1...12).contains(mo), (1...31).contains(d), h <= 23, mi <= 59, se <= 60 else { throw fail("date or time out of range") }
        var i = 19
        if b[i] == 0x2E {
            i += 1
            let f = i
            while i < b.count, isDigit(b[i]) { i += 1 }
            guard (1...9).contains(i - f) else { throw fail("1 to 9 digits expected after '.'") }
        }
        guard i < b.count else { throw fail("time zone missing (Z or +hh:mm)") }
        if b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "z") {
            i += 1
        } else if b[i] == 0x2B || b[i] == 0x2D {
            guard let oh = digits((i + 1)..<(i + 3)), i + 3 < b.count, b[i + 3] == 0x3A, let om = digits((i + 4)..<(i + 6)),
                  oh <= 23, om <= 59 else { throw fail("time zone offset must be +hh:mm or -hh:mm") }
            i += 6
        } else {
            throw fail("time zone missing (Z or +hh:mm)")
        }
        guard i == b.count else { throw fail("extra characters after the time zone") }
    }

    /// NILVALUE or 1*SD-ELEMENT.
    static func structuredData(_ c: inout Cursor) throws(SyslogParseError) -> [SyslogSDElement] {
        guard let first = c.peek else { throw SyslogParseError(.badStructuredData, at: c.pos, "missing (use - for none)") }
        if first == UInt8(ascii: "-") {
            c.advance()
            return []
        }
        guard first == UInt8(ascii: "[") else { throw SyslogParseError(.badStructuredData, at: c.pos, "expected '[' or -") }
        var elements: [SyslogSDElement] = []
        while c.peek == UInt8(ascii: "[") {
            c.advance()
            let id = try sdName(&c, "SD-ID")
            var params: [SyslogSDParam] = []
            while c.peek == 0x20 {
                c.advance()
                let name = try sdName(&c, "PARAM-NAME")
                guard c.peek == UInt8(ascii: "=") else { throw SyslogParseError(.badStructuredData, at: c.pos, "expected '=' after PARAM-NAME") }
                c.advance()
                guard c.peek == 0x22 else { throw SyslogParseError(.badStructuredData, at: c.pos, "expected '\"' to open PARAM-VALUE") }
                c.advance()
                var value: [UInt8] = []
                while true {
                    guard let b = c.peek else { throw SyslogParseError(.badStructuredData, at: c.pos, "PARAM-VALUE not closed") }
                    c.advance()
                    if b == 0x22 { break }
                    if b == 0x5C, let n = c.peek, n == 0x22 || n == 0x5C || n == 0x5D {
                        value.append(n); c.advance()
                    } else {
                        value.append(b)
                    }
                }
                guard let v = String(validating: value, as: UTF8.self) else {
                    throw SyslogParseError(.invalidUTF8, at: c.pos, "PARAM-VALUE is not UTF-8")
                }
                params.append(SyslogSDParam(name: name, value: v))
            }
            guard c.peek == UInt8(ascii: "]") else { throw SyslogParseError(.badStructuredData, at: c.pos, "expected ']' or a space and a parameter") }
            c.advance()
            elements.append(SyslogSDElement(id: id, params: params))
        }
        return elements
    }

    /// SD-NAME: 1...32 printable US-ASCII characters except `=`, space, `]` and `"`.
    static func sdName(_ c: inout Cursor, _ what: String) throws(SyslogParseError) -> String {
        let start = c.pos
        while let b = c.peek, b >= 33, b <= 126, b != UInt8(ascii: "="), b != UInt8(ascii: "]"), b != 0x22 { c.advance() }
        let n = c.pos - start
        guard (1...32).contains(n) else { throw SyslogParseError(.badStructuredData, at: start, "\(what) must be 1...32 characters") }
        return c.string(start..<c.pos)
    }

    /// The rest of the frame: optional BOM, then UTF-8; trailing LF, CR and NUL removed.
    static func message(_ c: inout Cursor) throws(SyslogParseError) -> [UInt8] {
        var start = c.pos
        var end = c.raw.count
        while end > start, c.raw[end - 1] == 0x0A || c.raw[end - 1] == 0x0D || c.raw[end - 1] == 0x00 { end -= 1 }
        if end - start >= 3, c.raw[start] == 0xEF, c.raw[start + 1] == 0xBB, c.raw[start + 2] == 0xBF { start += 3 }
        let bytes = Array(c.raw[start..<end])
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw SyslogParseError(.invalidUTF8, at: start, "MSG is not valid UTF-8")
        }
        c.pos = c.raw.count
        return bytes
    }

    // MARK: RFC 3164

    static let months: [[UInt8]] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"].map { Array($0.utf8) }

    /// `<PRI>` then, each optional: TIMESTAMP (`Mmm dd hh:mm:ss`, with `dd` space- or
    /// zero-padded, optionally `.fff` and/or a year `Mmm dd yyyy hh:mm:ss`, or RFC 3339 as
    /// rsyslog's `RSYSLOG_ForwardFormat` writes), HOSTNAME (only after a timestamp), TAG
    /// (`name:`, `name[pid]:` or `name[pid]`), then MSG.
    static func rfc3164(_ c: inout Cursor, pri: Int) throws(SyslogParseError) -> SyslogMessage {
        let tsStart = c.pos
        var ts: String?
        if let end = bsdTimestamp(c) {
            ts = c.string(tsStart..<end); c.pos = end
        } else if let end = rfc3339Prefix(c) {
            let s = c.string(tsStart..<end)
            try checkRFC3339(s, at: tsStart)
            ts = s; c.pos = end
        }
        guard let ts else { return try rfc3164Content(&c, facility: pri / 8, severity: pri % 8) }
        var m = SyslogMessage(kind: .rfc3164, facility: pri / 8, severity: pri % 8, timestamp: ts, message: [])
        guard c.peek == 0x20 else {
            if c.atEnd { return m }
            throw SyslogParseError(.badTimestamp, at: c.pos, "expected a space after TIMESTAMP")
        }
        while c.peek == 0x20 { c.advance() }
        // HOSTNAME, unless the first word is already the TAG (no hostname: local senders).
        if !tag(&c, into: &m) {
            let start = c.pos
            while let b = c.peek, b > 32, b < 127 { c.advance() }
            if c.pos > start, c.peek == 0x20, c.raw[start] != UInt8(ascii: "{"), c.raw[start] != UInt8(ascii: "["), c.pos - start <= 255 {
                m.hostname = c.string(start..<c.pos)
                while c.peek == 0x20 { c.advance() }
                if !tag(&c, into: &m) { _ = spaceTag(&c, into: &m) }
            } else {
                c.pos = start
            }
        }
        m.message = try message(&c)
        return m
    }

    /// A message with no (recognized) header: TAG if there is one, then MSG.
    static func rfc3164Content(_ c: inout Cursor, facility: Int, severity: Int) throws(SyslogParseError) -> SyslogMessage {
        var m = SyslogMessage(kind: .rfc3164, facility: facility, severity: severity, message: [])
        _ = tag(&c, into: &m)
        m.message = try message(&c)
        return m
    }

    /// TAG: 1...48 characters other than space, `:`, `[`, `]`, `{`, then `:`, `[pid]:` or
    /// `[pid]`, then spaces. Moves the cursor only when it finds one.
    static func tag(_ c: inout Cursor, into m: inout SyslogMessage) -> Bool {
        let start = c.pos
        var p = c.pos
        while p < c.raw.count, p - start <= 48, c.raw[p] > 32, c.raw[p] < 127,
              c.raw[p] != UInt8(ascii: ":"), c.raw[p] != UInt8(ascii: "["), c.raw[p] != UInt8(ascii: "]"), c.raw[p] != UInt8(ascii: "{") { p += 1 }
        let nameEnd = p
        guard nameEnd > start, nameEnd - start <= 48, p < c.raw.count else { return false }
        var pid: Range<Int>?
        if c.raw[p] == UInt8(ascii: "[") {
            let ps = p + 1
            var q = ps
            while q < c.raw.count, q - ps <= 128, c.raw[q] > 32, c.raw[q] < 127, c.raw[q] != UInt8(ascii: "]") { q += 1 }
            guard q < c.raw.count, c.raw[q] == UInt8(ascii: "]"), q > ps, q - ps <= 128 else { return false }
            pid = ps..<q
            p = q + 1
            if p < c.raw.count, c.raw[p] == UInt8(ascii: ":") { p += 1 }
            guard p == c.raw.count || c.raw[p] == 0x20 else { return false }
        } else if c.raw[p] == UInt8(ascii: ":") {
            p += 1
            guard p == c.raw.count || c.raw[p] == 0x20 else { return false }
        } else {
            return false
        }
        m.appName = c.string(start..<nameEnd)
        m.procID = pid.map { c.string($0) }
        c.pos = p
        while c.peek == 0x20 { c.advance() }
        return true
    }

    /// A TAG ended by a space (RFC 3164 4.1.3 allows it), taken only when a JSON object
    /// follows (`host openbao {...}`, what rsyslog sends for an imfile Tag without a colon).
    static func spaceTag(_ c: inout Cursor, into m: inout SyslogMessage) -> Bool {
        let start = c.pos
        var p = c.pos
        while p < c.raw.count, p - start <= 48, c.raw[p] > 32, c.raw[p] < 127, c.raw[p] != UInt8(ascii: "{") { p += 1 }
        let end = p
        guard end > start, end - start <= 48, p < c.raw.count, c.raw[p] == 0x20 else { return false }
        while p < c.raw.count, c.raw[p] == 0x20 { p += 1 }
        guard p < c.raw.count, c.raw[p] == UInt8(ascii: "{") else { return false }
        m.appName = c.string(start..<end)
        c.pos = p
        return true
    }

    /// The end of a BSD timestamp at the cursor: `Mmm dd hh:mm:ss`, `Mmm  d hh:mm:ss`,
    /// optionally `.fff...`, or `Mmm dd yyyy hh:mm:ss`; nil if there is none.
    static func bsdTimestamp(_ c: Cursor) -> Int? {
        let r = c.raw, s = c.pos
        guard s + 15 <= r.count else { return nil }
        guard months.contains(where: { $0[0] == r[s] && $0[1] == r[s + 1] && $0[2] == r[s + 2] }), r[s + 3] == 0x20 else { return nil }
        let d1 = r[s + 4], d2 = r[s + 5]
        guard (d1 == 0x20 || isDigit(d1)), isDigit(d2), r[s + 6] == 0x20 else { return nil }
        let day = (d1 == 0x20 ? 0 : Int(d1 - 0x30)) * 10 + Int(d2 - 0x30)
        guard (1...31).contains(day) else { return nil }
        var p = s + 7
        // Optional year (Cisco and others): `yyyy `.
        if p + 5 <= r.count, isDigit(r[p]), isDigit(r[p + 1]), isDigit(r[p + 2]), isDigit(r[p + 3]), r[p + 4] == 0x20 { p += 5 }
        guard p + 8 <= r.count, isDigit(r[p]), isDigit(r[p + 1]), r[p + 2] == 0x3A, isDigit(r[p + 3]), isDigit(r[p + 4]),
              r[p + 5] == 0x3A, isDigit(r[p + 6]), isDigit(r[p + 7]) else { return nil }
        let h = Int(r[p] - 0x30) * 10 + Int(r[p + 1] - 0x30), mi = Int(r[p + 3] - 0x30) * 10 + Int(r[p + 4] - 0x30)
        let se = Int(r[p + 6] - 0x30) * 10 + Int(r[p + 7] - 0x30)
        guard h <= 23, mi <= 59, se <= 60 else { return nil }
        p += 8
        if p + 1 < r.count, r[p] == 0x2E, isDigit(r[p + 1]) {
            p += 1
            while p < r.count, isDigit(r[p]), p - s < 40 { p += 1 }
        }
        return p
    }

    /// The end of the word at the cursor if it starts like an RFC 3339 timestamp (`dddd-dd-ddT`).
    static func rfc3339Prefix(_ c: Cursor) -> Int? {
        let r = c.raw, s = c.pos
        guard s + 11 <= r.count, isDigit(r[s]), isDigit(r[s + 1]), isDigit(r[s + 2]), isDigit(r[s + 3]), r[s + 4] == 0x2D,
              isDigit(r[s + 5]), isDigit(r[s + 6]), r[s + 7] == 0x2D, r[s + 10] == UInt8(ascii: "T") else { return nil }
        var p = s
        while p < r.count, r[p] != 0x20, p - s < 64 { p += 1 }
        return p
    }

    @inline(__always) static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }

    struct Cursor {
        let raw: UnsafeRawBufferPointer
        var pos = 0
        init(_ raw: UnsafeRawBufferPointer) { self.raw = raw }
        var atEnd: Bool { pos >= raw.count }
        var peek: UInt8? { pos < raw.count ? raw[pos] : nil }
        mutating func advance() { pos += 1 }
        /// Header bytes are checked printable ASCII (or validated) before they get here.
        func string(_ r: Range<Int>) -> String { String(decoding: UnsafeRawBufferPointer(rebasing: raw[r]), as: UTF8.self) }
    }
}
