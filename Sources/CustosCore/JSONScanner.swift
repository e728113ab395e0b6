/// A strict, allocation-light JSON pull scanner over a byte buffer.
///
/// Decoders read only the fields they need and skip everything else without building it,
/// which is what lets the Vault decoder run at hundreds of MB/s. Nesting is bounded
/// (`maxDepth`) so hostile input cannot exhaust the stack. Errors carry the byte offset and
/// a generic reason, never the input's content.
public struct JSONScanner {
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var offset: Int
        public var reason: String
        public var description: String { "\(reason) at byte \(offset + 1)" }
    }

    public let base: UnsafePointer<UInt8>
    public let count: Int
    public var pos: Int = 0
    public var maxDepth = 64

    public init(_ buffer: UnsafeRawBufferPointer) {
        if let b = buffer.baseAddress, buffer.count > 0 {
            base = b.assumingMemoryBound(to: UInt8.self)
            count = buffer.count
        } else {
            base = JSONScanner.emptyPointer
            count = 0
        }
    }

    nonisolated(unsafe) private static let emptyPointer: UnsafePointer<UInt8> = {
        let p = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
        p.initialize(to: 0)
        return UnsafePointer(p)
    }()

    @inline(__always) public var atEnd: Bool { pos >= count }

    public func fail(_ reason: String) -> Failure { Failure(offset: pos, reason: reason) }

    @inline(__always) public mutating func skipWhitespace() {
        // Compact JSON has none: one comparison in the common case.
        if pos < count && base[pos] > 0x20 { return }
        while pos < count {
            let c = base[pos]
            if c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { pos += 1 } else { return }
        }
    }

    @inline(__always) public mutating func peek() -> UInt8? {
        skipWhitespace()
        return pos < count ? base[pos] : nil
    }

    @inline(__always) public mutating func expect(_ c: UInt8) throws(Failure) {
        if pos < count && base[pos] == c { pos += 1; return }
        try expectSlow(c)
    }

    mutating func expectSlow(_ c: UInt8) throws(Failure) {
        skipWhitespace()
        guard pos < count, base[pos] == c else {
            throw fail(pos >= count ? "unexpected end of input" : "expected '\(Character(Unicode.Scalar(c)))'")
        }
        pos += 1
    }

    /// Iterates the members of an object: `body` gets each key (raw bytes, unescaped only if
    /// needed) and must consume the value (read it or call `skipValue`).
    public mutating func readObject(_ body: (inout JSONScanner, Key) throws(Failure) -> Void) throws(Failure) {
        try expect(0x7B)
        if peek() == 0x7D { pos += 1; return }
        while true {
            skipWhitespace()
            let key = try readKey()
            try expect(0x3A)
            skipWhitespace()
            let before = pos
            try body(&self, key)
            if pos == before { throw fail("value not consumed") }
            skipWhitespace()
            guard pos < count else { throw fail("unexpected end of input") }
            let c = base[pos]; pos += 1
            if c == 0x2C { continue }
            if c == 0x7D { return }
            pos -= 1
            throw fail("expected ',' or '}'")
        }
    }

    public mutating func readArray(_ body: (inout JSONScanner) throws(Failure) -> Void) throws(Failure) {
        try expect(0x5B)
        if peek() == 0x5D { pos += 1; return }
        while true {
            skipWhitespace()
            let before = pos
            try body(&self)
            if pos == before { throw fail("value not consumed") }
            skipWhitespace()
            guard pos < count else { throw fail("unexpected end of input") }
            let c = base[pos]; pos += 1
            if c == 0x2C { continue }
            if c == 0x5D { return }
            pos -= 1
            throw fail("expected ',' or ']'")
        }
    }

    /// An object key. Keys are short: comparing against a literal is cheap.
    public struct Key {
        public var bytes: UnsafeBufferPointer<UInt8>
        @inline(__always) public func equals(_ s: StaticString) -> Bool {
            guard s.utf8CodeUnitCount == bytes.count else { return false }
            let p = s.utf8Start
            for i in 0..<bytes.count where bytes[i] != p[i] { return false }
            return true
        }
        public var string: String { String(decoding: bytes, as: UTF8.self) }
    }

    @inline(__always) mutating func readKey() throws(Failure) -> Key {
        guard pos < count, base[pos] == 0x22 else { throw fail("expected a string key") }
        let start = pos + 1
        let i = plainRunEnd(start)
        if i < count && base[i] == 0x22 {
            pos = i + 1
            return Key(bytes: UnsafeBufferPointer(start: base + start, count: i - start))
        }
        // Escaped keys are legal but never match the literals decoders look for: validate and skip.
        try skipString()
        return Key(bytes: UnsafeBufferPointer(start: base, count: 0))
    }

    @inline(__always) public mutating func isNull() -> Bool {
        skipWhitespace()
        if pos + 4 <= count, base[pos] == 0x6E, base[pos + 1] == 0x75, base[pos + 2] == 0x6C, base[pos + 3] == 0x6C {
            pos += 4; return true
        }
        return false
    }

    /// Reads a string value (unescaping, validating UTF-8 and escapes).
    public mutating func readString() throws(Failure) -> String {
        skipWhitespace()
        guard pos < count, base[pos] == 0x22 else { throw fail("expected a string") }
        let start = pos + 1
        var i = start
        // Fast path: no escapes.
        while i < count {
            i = plainRunEnd(i)
            guard i < count else { break }
            let c = base[i]
            if c == 0x22 {
                pos = i + 1
                let buf = UnsafeBufferPointer(start: base + start, count: i - start)
                if Self.isASCII(buf) { return String(decoding: buf, as: UTF8.self) }
                guard let s = String(validating: buf, as: UTF8.self) else { pos = start; throw fail("invalid UTF-8 in string") }
                return s
            }
            if c == 0x5C { break }
            if c < 0x20 { pos = i; throw fail("control character in string") }
            i += 1
        }
        var out = [UInt8]()
        out.reserveCapacity(i - start + 16)
        out.append(contentsOf: UnsafeBufferPointer(start: base + start, count: i - start))
        while i < count {
            let c = base[i]
            if c == 0x22 {
                pos = i + 1
                guard let s = String(validating: out, as: UTF8.self) else { throw fail("invalid UTF-8 in string") }
                return s
            }
            if c < 0x20 { pos = i; throw fail("control character in string") }
            if c != 0x5C { out.append(c); i += 1; continue }
            guard i + 1 < count else { break }
            try appendEscape(at: &i, into: &out)
        }
        pos = count
        throw fail("unterminated string")
    }

    /// A string value read without making a `String`: its bytes are `count` bytes at `start`
    /// of the input, or (when it had escapes) of the scratch buffer it was unescaped into.
    public struct Span: Sendable, Equatable {
        public var start: Int32
        public var count: Int32
        public var inScratch: Bool
        public var isASCII: Bool
    }

    /// Reads a string value exactly as `readString` does (same checks, same failures at the
    /// same offsets) but returns where its bytes are instead of a `String`. Strings with
    /// escapes are unescaped by appending to `scratch`.
    public mutating func readStringSpan(scratch: inout [UInt8]) throws(Failure) -> Span {
        skipWhitespace()
        guard pos < count, base[pos] == 0x22 else { throw fail("expected a string") }
        let start = pos + 1
        var i = start
        while i < count {
            i = plainRunEnd(i)
            guard i < count else { break }
            let c = base[i]
            if c == 0x22 {
                pos = i + 1
                let buf = UnsafeBufferPointer(start: base + start, count: i - start)
                if Self.isASCII(buf) { return Span(start: Int32(start), count: Int32(i - start), inScratch: false, isASCII: true) }
                guard String(validating: buf, as: UTF8.self) != nil else { pos = start; throw fail("invalid UTF-8 in string") }
                return Span(start: Int32(start), count: Int32(i - start), inScratch: false, isASCII: false)
            }
            if c == 0x5C { break }
            if c < 0x20 { pos = i; throw fail("control character in string") }
            i += 1
        }
        let outStart = scratch.count
        scratch.append(contentsOf: UnsafeBufferPointer(start: base + start, count: i - start))
        while i < count {
            let c = base[i]
            if c == 0x22 {
                pos = i + 1
                let n = scratch.count - outStart
                let ascii: Bool = scratch.withUnsafeBufferPointer { Self.isASCII(UnsafeBufferPointer(rebasing: $0[outStart...])) }
                if !ascii {
                    let valid = scratch.withUnsafeBufferPointer { String(validating: UnsafeBufferPointer(rebasing: $0[outStart...]), as: UTF8.self) != nil }
                    guard valid else { throw fail("invalid UTF-8 in string") }
                }
                return Span(start: Int32(outStart), count: Int32(n), inScratch: true, isASCII: ascii)
            }
            if c < 0x20 { pos = i; throw fail("control character in string") }
            if c != 0x5C { scratch.append(c); i += 1; continue }
            guard i + 1 < count else { break }
            try appendEscape(at: &i, into: &scratch)
        }
        pos = count
        throw fail("unterminated string")
    }

    @inline(__always) static func isASCII(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        var i = 0
        let n = b.count
        guard let base = b.baseAddress else { return true }
        let raw = UnsafeRawPointer(base)
        while i + 8 <= n {
            if raw.loadUnaligned(fromByteOffset: i, as: UInt64.self) & 0x8080_8080_8080_8080 != 0 { return false }
            i += 8
        }
        while i < n { if b[i] >= 0x80 { return false }; i += 1 }
        return true
    }

    /// Decodes the escape at `i` (a backslash with at least one byte after it), appends its
    /// UTF-8 to `out` and moves `i` past it. Shared by `readString` and `readStringSpan`.
    @inline(__always)
    mutating func appendEscape(at i: inout Int, into out: inout [UInt8]) throws(Failure) {
        let e = base[i + 1]
        i += 2
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
            pos = i
            var scalar = try readHex4()
            i = pos
            if (0xD800...0xDBFF).contains(scalar) {
                guard i + 1 < count, base[i] == 0x5C, base[i + 1] == 0x75 else { throw fail("unpaired surrogate") }
                pos = i + 2
                let low = try readHex4()
                i = pos
                guard (0xDC00...0xDFFF).contains(low) else { throw fail("unpaired surrogate") }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00...0xDFFF).contains(scalar) {
                throw fail("unpaired surrogate")
            }
            guard let u = Unicode.Scalar(scalar) else { throw fail("invalid escape") }
            out.append(contentsOf: UTF8.encode(u)!)
        default:
            pos = i - 1
            throw fail("invalid escape")
        }
    }

    mutating func readHex4() throws(Failure) -> UInt32 {
        guard pos + 4 <= count else { throw fail("truncated \\u escape") }
        var v: UInt32 = 0
        for k in 0..<4 {
            let c = base[pos + k]
            let d: UInt32
            switch c {
            case 48...57: d = UInt32(c - 48)
            case 97...102: d = UInt32(c - 87)
            case 65...70: d = UInt32(c - 55)
            default: throw fail("invalid \\u escape")
            }
            v = v << 4 | d
        }
        pos += 4
        return v
    }

    public mutating func readStringOrNull() throws(Failure) -> String? {
        if isNull() { return nil }
        return try readString()
    }

    /// An integer (no fraction, no exponent), within Int64.
    public mutating func readInt() throws(Failure) -> Int64 {
        skipWhitespace()
        let start = pos
        var neg = false
        if pos < count, base[pos] == 0x2D { neg = true; pos += 1 }
        guard pos < count, base[pos] >= 48, base[pos] <= 57 else { pos = start; throw fail("expected an integer") }
        if base[pos] == 48, pos + 1 < count, base[pos + 1] >= 48, base[pos + 1] <= 57 { throw fail("leading zero") }
        // Accumulated with the sign applied, so that Int64.min is in range too.
        var v: Int64 = 0
        while pos < count, base[pos] >= 48, base[pos] <= 57 {
            let d = Int64(base[pos] - 48)
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (a, o2) = neg ? m.subtractingReportingOverflow(d) : m.addingReportingOverflow(d)
            guard !o1, !o2 else { throw fail("integer out of range") }
            v = a; pos += 1
        }
        if pos < count, base[pos] == 0x2E || base[pos] == 0x65 || base[pos] == 0x45 { throw fail("expected an integer") }
        return v
    }

    public mutating func readBool() throws(Failure) -> Bool {
        skipWhitespace()
        if pos + 4 <= count, base[pos] == 0x74, base[pos + 1] == 0x72, base[pos + 2] == 0x75, base[pos + 3] == 0x65 { pos += 4; return true }
        if pos + 5 <= count, base[pos] == 0x66, base[pos + 1] == 0x61, base[pos + 2] == 0x6C, base[pos + 3] == 0x73, base[pos + 4] == 0x65 { pos += 5; return false }
        throw fail("expected a boolean")
    }

    /// Reads an array of strings (null counts as empty).
    public mutating func readStringArray(limit: Int = 1024) throws(Failure) -> [String] {
        if isNull() { return [] }
        var out = [String]()
        try readArray { (s: inout JSONScanner) throws(Failure) in
            guard out.count < limit else { throw s.fail("array too long") }
            out.append(try s.readString())
        }
        return out
    }

    /// Skips any value, validating its syntax, within the depth bound.
    public mutating func skipValue() throws(Failure) {
        try skipValue(depth: 0)
    }

    /// Skips a string: the common case (no escape before the closing quote) inline.
    @inline(__always) mutating func skipPlainOrString() throws(Failure) {
        let e = plainRunEnd(pos + 1)
        if e < count && base[e] == 0x22 { pos = e + 1; return }
        try skipString()
    }

    mutating func skipValue(depth: Int) throws(Failure) {
        skipWhitespace()
        guard pos < count else { throw fail("unexpected end of input") }
        switch base[pos] {
        case 0x22: try skipPlainOrString()
        case 0x7B:
            guard depth < maxDepth else { throw fail("nesting too deep") }
            pos += 1
            if peek() == 0x7D { pos += 1; return }
            while true {
                skipWhitespace()
                guard pos < count, base[pos] == 0x22 else { throw fail("expected a string key") }
                try skipPlainOrString()
                try expect(0x3A)
                try skipValue(depth: depth + 1)
                skipWhitespace()
                guard pos < count else { throw fail("unexpected end of input") }
                let c = base[pos]; pos += 1
                if c == 0x2C { continue }
                if c == 0x7D { return }
                pos -= 1; throw fail("expected ',' or '}'")
            }
        case 0x5B:
            guard depth < maxDepth else { throw fail("nesting too deep") }
            pos += 1
            if peek() == 0x5D { pos += 1; return }
            while true {
                try skipValue(depth: depth + 1)
                skipWhitespace()
                guard pos < count else { throw fail("unexpected end of input") }
                let c = base[pos]; pos += 1
                if c == 0x2C { continue }
                if c == 0x5D { return }
                pos -= 1; throw fail("expected ',' or ']'")
            }
        case 0x74, 0x66: _ = try readBool()
        case 0x6E:
            guard isNull() else { throw fail("invalid literal") }
        default: try skipNumber()
        }
    }

    /// The first index at or after `i` holding `"`, `\` or a control character (or `count`),
    /// looking at eight bytes at a time.
    @inline(__always) func plainRunEnd(_ i0: Int) -> Int {
        Self.plainRunEnd(base, i0, count)
    }

    /// `plainRunEnd` over `count` bytes at `base`: the first index at or after `i0` holding
    /// `"`, `\` or a byte below 0x20 (which are also exactly the bytes canonical JSON escapes).
    @inline(__always) static func plainRunEnd(_ base: UnsafePointer<UInt8>, _ i0: Int, _ count: Int) -> Int {
        var i = i0
        let raw = UnsafeRawPointer(base)
        // Sixteen bytes at a time (SSE2 / NEON compares), then eight (SWAR), then one.
        while i + 16 <= count {
            let v = raw.loadUnaligned(fromByteOffset: i, as: SIMD16<UInt8>.self)
            let quote = SIMD16<UInt8>(repeating: 0x22), backslash = SIMD16<UInt8>(repeating: 0x5C)
            let space = SIMD16<UInt8>(repeating: 0x20)
            let m = (v .== quote) .| (v .== backslash) .| (v .< space)
            if any(m) {
                let flags = unsafeBitCast(SIMD16<UInt8>(repeating: 0).replacing(with: 0xFF, where: m), to: SIMD2<UInt64>.self)
                let lo = UInt64(littleEndian: flags[0])
                if lo != 0 { return i + lo.trailingZeroBitCount >> 3 }
                return i + 8 + UInt64(littleEndian: flags[1]).trailingZeroBitCount >> 3
            }
            i += 16
        }
        while i + 8 <= count {
            let w = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
            let q = w ^ (ones &* 0x22), b = w ^ (ones &* 0x5C)
            let special = (((q &- ones) & ~q) | ((b &- ones) & ~b) | (w &- (ones &* 0x20))) & ~w & highs
            // A borrow only starts at a flagged byte, so the lowest flag is exact (higher
            // ones may be spurious): it marks the first special byte of the word.
            if special != 0 { return i + special.trailingZeroBitCount >> 3 }
            i += 8
        }
        while i < count {
            let c = base[i]
            if c == 0x22 || c == 0x5C || c < 0x20 { return i }
            i += 1
        }
        return i
    }

    /// Skips a string, checking escapes and control characters (UTF-8 of skipped strings is
    /// not validated: nothing reads them).
    mutating func skipString() throws(Failure) {
        pos += 1
        while pos < count {
            pos = plainRunEnd(pos)
            guard pos < count else { break }
            let c = base[pos]
            if c == 0x22 { pos += 1; return }
            if c == 0x5C {
                guard pos + 1 < count else { break }
                let e = base[pos + 1]
                switch e {
                case 0x22, 0x5C, 0x2F, 0x62, 0x66, 0x6E, 0x72, 0x74: pos += 2
                case 0x75: pos += 2; _ = try readHex4()
                default: pos += 1; throw fail("invalid escape")
                }
                continue
            }
            if c < 0x20 { throw fail("control character in string") }
            pos += 1
        }
        throw fail("unterminated string")
    }

    mutating func skipNumber() throws(Failure) {
        let start = pos
        if pos < count, base[pos] == 0x2D { pos += 1 }
        func digits(_ s: inout JSONScanner) -> Int {
            var n = 0
            while s.pos < s.count, s.base[s.pos] >= 48, s.base[s.pos] <= 57 { s.pos += 1; n += 1 }
            return n
        }
        let intStart = pos
        let n = digits(&self)
        guard n > 0 else { pos = start; throw fail("invalid value") }
        if n > 1, base[intStart] == 48 { throw fail("leading zero") }
        if pos < count, base[pos] == 0x2E {
            pos += 1
            guard digits(&self) > 0 else { throw fail("invalid number") }
        }
        if pos < count, base[pos] == 0x65 || base[pos] == 0x45 {
            pos += 1
            if pos < count, base[pos] == 0x2B || base[pos] == 0x2D { pos += 1 }
            guard digits(&self) > 0 else { throw fail("invalid number") }
        }
    }

    /// After the top-level value: only whitespace may follow.
    public mutating func expectEnd() throws(Failure) {
        skipWhitespace()
        guard pos == count else { throw fail("trailing data after JSON value") }
    }
}
