/// Decodes values of the MaxMind DB data format from one section of a file (the data section or
/// the metadata section).
///
/// Every read is checked against the section's bounds; nothing here traps on bad input. One
/// decode (one top-level value) is limited in nesting depth, in the number of values it may
/// produce (which bounds pointer fan-out and cycles), and in the string/bytes payload it may copy,
/// so a hostile file cannot make a lookup hang or allocate without bound.
///
/// The decoder reads through an `UnsafeBufferPointer` for speed and lives only inside the
/// `withUnsafeBufferPointer` call that made it. Every index is checked against the section bounds
/// (which lie inside the buffer) before it is read; debug builds also check each access.
struct MMDBDecoder {
    /// Deepest nesting of maps and arrays accepted. GeoIP2 records nest four or five deep.
    static let maxDepth = 32
    /// Most values (including map keys and pointer follows) one top-level decode may produce.
    static let maxValues = 100_000
    /// Most string and bytes payload one top-level decode may copy.
    static let maxPayloadBytes = 64 << 20

    let bytes: UnsafeBufferPointer<UInt8>
    /// Absolute start and end (exclusive) of the section; pointers are relative to `start`.
    let start: Int
    let end: Int
    let section: String
    private var valuesLeft = MMDBDecoder.maxValues
    private var payloadLeft = MMDBDecoder.maxPayloadBytes

    /// `start...end` must lie within `bytes`.
    init(bytes: UnsafeBufferPointer<UInt8>, start: Int, end: Int, section: String) {
        self.bytes = bytes
        self.start = max(0, min(start, bytes.count))
        self.end = max(self.start, min(end, bytes.count))
        self.section = section
    }

    /// Decodes the value at `offset` (relative to the section), with fresh limits.
    mutating func decode(atSectionOffset offset: Int) throws(GeoIPError) -> MMDBValue {
        valuesLeft = Self.maxValues
        payloadLeft = Self.maxPayloadBytes
        guard offset >= 0, offset < end - start else {
            throw GeoIPError(.data, "offset \(offset) is outside the \(section) (\(end - start) bytes)", offset: start)
        }
        var pos = start + offset
        return try value(at: &pos, depth: 0)
    }

    // MARK: Control bytes

    struct Header {
        /// 1...15 as in the specification (1 is a pointer).
        var type: Int
        /// The payload size; for a pointer, the target offset relative to the section.
        var size: Int
        /// Absolute position just after the control bytes (for a pointer: after the pointer).
        var payload: Int
    }

    static func typeName(_ t: Int) -> String {
        switch t {
        case 1: return "pointer"
        case 2: return "utf8_string"
        case 3: return "double"
        case 4: return "bytes"
        case 5: return "uint16"
        case 6: return "uint32"
        case 7: return "map"
        case 8: return "int32"
        case 9: return "uint64"
        case 10: return "uint128"
        case 11: return "array"
        case 12: return "data cache container"
        case 13: return "end marker"
        case 14: return "boolean"
        case 15: return "float"
        default: return "type \(t)"
        }
    }

    /// An error for the value at absolute position `pos` (every message names its byte).
    func fail(_ message: String, at pos: Int) -> GeoIPError {
        GeoIPError(.data, message, offset: pos)
    }

    @inline(__always)
    func header(at pos: Int) throws(GeoIPError) -> Header {
        guard pos >= start, pos < end else {
            throw fail("a value at byte \(pos) would start past the end of the \(section)", at: pos)
        }
        let ctrl = Int(bytes[pos])
        var p = pos + 1
        var type = ctrl >> 5
        if type == 1 {
            let ss = (ctrl >> 3) & 3
            let n = ss + 1
            guard n <= end - p else {
                throw fail("pointer at byte \(pos) needs \(n) more bytes but the \(section) ends", at: pos)
            }
            let low3 = ctrl & 7
            var v: Int
            switch ss {
            case 0: v = low3 << 8 | Int(bytes[p])
            case 1: v = (low3 << 16 | Int(bytes[p]) << 8 | Int(bytes[p + 1])) + 2048
            case 2: v = (low3 << 24 | Int(bytes[p]) << 16 | Int(bytes[p + 1]) << 8 | Int(bytes[p + 2])) + 526_336
            default:
                v = Int(bytes[p]) << 24 | Int(bytes[p + 1]) << 16 | Int(bytes[p + 2]) << 8 | Int(bytes[p + 3])
            }
            return Header(type: 1, size: v, payload: p + n)
        }
        if type == 0 {
            guard p < end else {
                throw fail("extended type byte of the value at byte \(pos) is past the end of the \(section)", at: pos)
            }
            let ext = Int(bytes[p])
            p += 1
            guard ext >= 1, ext <= 8 else {
                throw fail("value at byte \(pos) has unknown extended type \(ext + 7)", at: pos)
            }
            type = 7 + ext
        }
        var size = ctrl & 0x1F
        if size >= 29 {
            let n = size - 28
            guard n <= end - p else {
                throw fail("size of the \(Self.typeName(type)) at byte \(pos) needs \(n) more bytes but the \(section) ends", at: pos)
            }
            var v = 0
            for k in 0..<n { v = v << 8 | Int(bytes[p + k]) }
            p += n
            switch n {
            case 1: size = 29 + v
            case 2: size = 285 + v
            default: size = 65_821 + v
            }
        }
        return Header(type: type, size: size, payload: p)
    }

    /// Follows a pointer: the target must be inside the section and must not be another pointer.
    mutating func resolve(_ h: Header, at pos: Int) throws(GeoIPError) -> (target: Int, header: Header) {
        try spend(at: pos)
        guard h.size >= 0, h.size < end - start else {
            throw fail("pointer at byte \(pos) points to offset \(h.size), outside the \(section) (\(end - start) bytes)", at: pos)
        }
        let target = start + h.size
        let th = try header(at: target)
        guard th.type != 1 else {
            throw fail("pointer at byte \(pos) points to another pointer at byte \(target); the format forbids pointers to pointers", at: pos)
        }
        return (target, th)
    }

    @inline(__always)
    mutating func spend(at pos: Int) throws(GeoIPError) {
        valuesLeft -= 1
        guard valuesLeft >= 0 else {
            throw fail("value expands to more than \(Self.maxValues) values (pointer fan-out or a cycle) near byte \(pos)", at: pos)
        }
    }

    // MARK: Values

    mutating func value(at pos: inout Int, depth: Int) throws(GeoIPError) -> MMDBValue {
        let here = pos
        let h = try header(at: here)
        if h.type == 1 {
            let (target, th) = try resolve(h, at: here)
            var tp = target
            let v = try body(th, at: target, next: &tp, depth: depth)
            pos = h.payload
            return v
        }
        return try body(h, at: here, next: &pos, depth: depth)
    }

    /// Checks that `size` payload bytes fit after `p`, for the value whose control byte is at `at`.
    @inline(__always)
    func room(_ size: Int, _ p: Int, _ type: Int, at: Int) throws(GeoIPError) {
        guard size <= end - p else {
            throw fail("\(Self.typeName(type)) length \(size) at byte \(at) runs past the end of the \(section) (\(end - p) bytes left)", at: at)
        }
    }

    mutating func unsigned(_ h: Header, maxBytes: Int, at: Int) throws(GeoIPError) -> (UInt64, UInt64) {
        guard h.size <= maxBytes else {
            throw fail("\(Self.typeName(h.type)) at byte \(at) has size \(h.size); at most \(maxBytes) bytes allowed", at: at)
        }
        try room(h.size, h.payload, h.type, at: at)
        var hi: UInt64 = 0, lo: UInt64 = 0
        for k in 0..<h.size {
            hi = hi << 8 | lo >> 56
            lo = lo << 8 | UInt64(bytes[h.payload + k])
        }
        return (hi, lo)
    }

    mutating func body(_ h: Header, at here: Int, next: inout Int, depth: Int) throws(GeoIPError) -> MMDBValue {
        try spend(at: here)
        let p = h.payload
        switch h.type {
        case 2:
            try room(h.size, p, h.type, at: here)
            let s = try string(from: p, count: h.size, at: here)
            next = p + h.size
            return .string(s)
        case 3:
            guard h.size == 8 else { throw fail("double at byte \(here) has size \(h.size); a double is 8 bytes", at: here) }
            let (_, v) = try unsigned(h, maxBytes: 8, at: here)
            next = p + 8
            return .double(Double(bitPattern: v))
        case 4:
            try room(h.size, p, h.type, at: here)
            payloadLeft -= h.size
            guard payloadLeft >= 0 else { throw fail("value copies more than \(Self.maxPayloadBytes) bytes of strings and bytes (at byte \(here))", at: here) }
            next = p + h.size
            return .bytes(Array(UnsafeBufferPointer(rebasing: bytes[p..<(p + h.size)])))
        case 5:
            let (_, v) = try unsigned(h, maxBytes: 2, at: here)
            next = p + h.size
            return .uint16(UInt16(truncatingIfNeeded: v))
        case 6:
            let (_, v) = try unsigned(h, maxBytes: 4, at: here)
            next = p + h.size
            return .uint32(UInt32(truncatingIfNeeded: v))
        case 8:
            // Fewer than 4 bytes are not sign-extended (as libmaxminddb and the Go reader do).
            let (_, v) = try unsigned(h, maxBytes: 4, at: here)
            next = p + h.size
            return .int32(Int32(bitPattern: UInt32(truncatingIfNeeded: v)))
        case 9:
            let (_, v) = try unsigned(h, maxBytes: 8, at: here)
            next = p + h.size
            return .uint64(v)
        case 10:
            let (hi, lo) = try unsigned(h, maxBytes: 16, at: here)
            next = p + h.size
            return .uint128(high: hi, low: lo)
        case 14:
            guard h.size <= 1 else { throw fail("boolean at byte \(here) has size \(h.size); must be 0 or 1", at: here) }
            next = p
            return .bool(h.size == 1)
        case 15:
            guard h.size == 4 else { throw fail("float at byte \(here) has size \(h.size); a float is 4 bytes", at: here) }
            let (_, v) = try unsigned(h, maxBytes: 4, at: here)
            next = p + 4
            return .float(Float(bitPattern: UInt32(truncatingIfNeeded: v)))
        case 7:
            guard depth < Self.maxDepth else { throw fail("nesting deeper than \(Self.maxDepth) at byte \(here)", at: here) }
            // Every key and every value takes at least one byte in place (a pointer takes two).
            guard h.size <= (end - p) / 2 else {
                throw fail("map at byte \(here) declares \(h.size) entries but only \(end - p) bytes remain in the \(section)", at: here)
            }
            var entries: [(key: String, value: MMDBValue)] = []
            entries.reserveCapacity(min(h.size, 32))
            var q = p
            for _ in 0..<h.size {
                let k = try key(at: &q)
                let v = try value(at: &q, depth: depth + 1)
                entries.append((k, v))
            }
            next = q
            return .map(entries)
        case 11:
            guard depth < Self.maxDepth else { throw fail("nesting deeper than \(Self.maxDepth) at byte \(here)", at: here) }
            guard h.size <= end - p else {
                throw fail("array at byte \(here) declares \(h.size) elements but only \(end - p) bytes remain in the \(section)", at: here)
            }
            var items: [MMDBValue] = []
            items.reserveCapacity(min(h.size, 32))
            var q = p
            for _ in 0..<h.size {
                items.append(try value(at: &q, depth: depth + 1))
            }
            next = q
            return .array(items)
        default:
            // 12 (data cache container) and 13 (end marker) are reserved for writers; never in a record.
            throw fail("\(Self.typeName(h.type)) at byte \(here) is not allowed in a MaxMind DB value", at: here)
        }
    }

    // MARK: Navigating without decoding

    /// Moves `pos` past the value there without building it. Sizes, bounds, types, nesting and
    /// pointers are checked as when decoding; the UTF-8 of skipped strings is not.
    mutating func skip(at pos: inout Int, depth: Int) throws(GeoIPError) {
        let here = pos
        let h = try header(at: here)
        try spend(at: here)
        let p = h.payload
        switch h.type {
        case 1:
            _ = try resolve(h, at: here)
            pos = p
        case 2, 4:
            try room(h.size, p, h.type, at: here)
            pos = p + h.size
        case 3, 15:
            let want = h.type == 3 ? 8 : 4
            guard h.size == want else {
                throw fail("\(Self.typeName(h.type)) at byte \(here) has size \(h.size); a \(Self.typeName(h.type)) is \(want) bytes", at: here)
            }
            try room(h.size, p, h.type, at: here)
            pos = p + h.size
        case 5, 6, 8, 9, 10:
            let maxBytes: Int
            switch h.type {
            case 5: maxBytes = 2
            case 6, 8: maxBytes = 4
            case 9: maxBytes = 8
            default: maxBytes = 16
            }
            guard h.size <= maxBytes else {
                throw fail("\(Self.typeName(h.type)) at byte \(here) has size \(h.size); at most \(maxBytes) bytes allowed", at: here)
            }
            try room(h.size, p, h.type, at: here)
            pos = p + h.size
        case 14:
            guard h.size <= 1 else { throw fail("boolean at byte \(here) has size \(h.size); must be 0 or 1", at: here) }
            pos = p
        case 7, 11:
            guard depth < Self.maxDepth else { throw fail("nesting deeper than \(Self.maxDepth) at byte \(here)", at: here) }
            let perItem = h.type == 7 ? 2 : 1
            guard h.size <= (end - p) / perItem else {
                throw fail("\(Self.typeName(h.type)) at byte \(here) declares \(h.size) \(h.type == 7 ? "entries" : "elements") but only \(end - p) bytes remain in the \(section)", at: here)
            }
            var q = p
            for _ in 0..<h.size {
                if h.type == 7 { _ = try keyBytes(at: &q) }
                try skip(at: &q, depth: depth + 1)
            }
            pos = q
        default:
            throw fail("\(Self.typeName(h.type)) at byte \(here) is not allowed in a MaxMind DB value", at: here)
        }
    }

    /// Where the value at `pos` really is: through one pointer if there is one.
    mutating func target(of pos: Int) throws(GeoIPError) -> (position: Int, header: Header) {
        let h = try header(at: pos)
        if h.type == 1 {
            let r = try resolve(h, at: pos)
            return (r.target, r.header)
        }
        return (pos, h)
    }

    /// The raw bytes of the map key at `pos` (a string, directly or through one pointer), moving
    /// `pos` past it. The key's UTF-8 is not checked (it is only compared).
    mutating func keyBytes(at pos: inout Int) throws(GeoIPError) -> Range<Int> {
        let here = pos
        let h = try header(at: here)
        try spend(at: here)
        var kh = h
        var at = here
        if h.type == 1 {
            let r = try resolve(h, at: here)
            kh = r.header
            at = r.target
            pos = h.payload
        }
        guard kh.type == 2 else {
            throw fail("map key at byte \(here) is a \(Self.typeName(kh.type)), not a string", at: here)
        }
        try room(kh.size, kh.payload, kh.type, at: at)
        if h.type != 1 { pos = kh.payload + kh.size }
        return kh.payload..<(kh.payload + kh.size)
    }

    /// The position of the value for `key` in the map at `pos`; nil if there is no such key or
    /// the value there is not a map.
    mutating func member(_ key: StaticString, ofMapAt pos: Int) throws(GeoIPError) -> Int? {
        try member(UnsafeBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount), ofMapAt: pos)
    }

    mutating func member(_ key: String, ofMapAt pos: Int) throws(GeoIPError) -> Int? {
        var k = key
        let r = k.withUTF8 { (u) -> Result<Int?, GeoIPError> in
            do throws(GeoIPError) { return .success(try member(u, ofMapAt: pos)) } catch { return .failure(error) }
        }
        return try r.get()
    }

    mutating func member(_ key: UnsafeBufferPointer<UInt8>, ofMapAt pos: Int) throws(GeoIPError) -> Int? {
        let (at, h) = try target(of: pos)
        guard h.type == 7 else { return nil }
        guard h.size <= (end - h.payload) / 2 else {
            throw fail("map at byte \(at) declares \(h.size) entries but only \(end - h.payload) bytes remain in the \(section)", at: at)
        }
        var q = h.payload
        for _ in 0..<h.size {
            let k = try keyBytes(at: &q)
            if k.count == key.count, memEqual(k.lowerBound, key) { return q }
            try skip(at: &q, depth: 1)
        }
        return nil
    }

    func memEqual(_ from: Int, _ key: UnsafeBufferPointer<UInt8>) -> Bool {
        for i in 0..<key.count where bytes[from + i] != key[i] { return false }
        return true
    }

    /// Decodes the value at absolute position `pos` (following one pointer).
    mutating func value(at pos: Int) throws(GeoIPError) -> MMDBValue {
        var p = pos
        return try value(at: &p, depth: 0)
    }

    /// A map key: a string, directly or through one pointer.
    mutating func key(at pos: inout Int) throws(GeoIPError) -> String {
        let here = pos
        var h = try header(at: here)
        var at = here
        if h.type == 1 {
            let r = try resolve(h, at: here)
            pos = h.payload
            at = r.target
            h = r.header
            guard h.type == 2 else {
                throw fail("map key at byte \(here) points to a \(Self.typeName(h.type)) at byte \(at), not a string", at: here)
            }
            try spend(at: at)
            try room(h.size, h.payload, h.type, at: at)
            return try string(from: h.payload, count: h.size, at: at)
        }
        guard h.type == 2 else {
            throw fail("map key at byte \(here) is a \(Self.typeName(h.type)), not a string", at: here)
        }
        try spend(at: here)
        try room(h.size, h.payload, h.type, at: here)
        pos = h.payload + h.size
        return try string(from: h.payload, count: h.size, at: here)
    }

    mutating func string(from p: Int, count: Int, at here: Int) throws(GeoIPError) -> String {
        payloadLeft -= count
        guard payloadLeft >= 0 else { throw fail("value copies more than \(Self.maxPayloadBytes) bytes of strings and bytes (at byte \(here))", at: here) }
        guard Self.isValidUTF8(bytes, p, p + count) else {
            throw fail("string at byte \(here) is not valid UTF-8", at: here)
        }
        return String(decoding: UnsafeBufferPointer(rebasing: bytes[p..<(p + count)]), as: UTF8.self)
    }

    /// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF.
    static func isValidUTF8(_ b: UnsafeBufferPointer<UInt8>, _ from: Int, _ to: Int) -> Bool {
        var i = from
        // ASCII eight bytes at a time.
        if let base = b.baseAddress {
            let raw = UnsafeRawPointer(base)
            while to - i >= 8, raw.loadUnaligned(fromByteOffset: i, as: UInt64.self) & 0x8080_8080_8080_8080 == 0 { i += 8 }
        }
        while i < to {
            let c = b[i]
            if c < 0x80 { i += 1; continue }
            let cont = (c >= 0xF0) ? 3 : (c >= 0xE0 ? 2 : 1)
            guard c >= 0xC2, c <= 0xF4, cont < to - i else { return false }
            let c1 = b[i + 1]
            var lo: UInt8 = 0x80, hi: UInt8 = 0xBF
            if c == 0xE0 { lo = 0xA0 } else if c == 0xED { hi = 0x9F } else if c == 0xF0 { lo = 0x90 } else if c == 0xF4 { hi = 0x8F }
            guard c1 >= lo, c1 <= hi else { return false }
            var k = 2
            while k <= cont {
                guard b[i + k] & 0xC0 == 0x80 else { return false }
                k += 1
            }
            i += cont + 1
        }
        return true
    }
}
