/// Timestamps as the non-Vault sources write them, in one place. Accepted:
/// - RFC 3339 / ISO 8601 text: `T`, `t` or space between date and time; any number of
///   fraction digits (beyond nine they are cut, not rounded); `Z`, `z`, `UTC`, `GMT`,
///   `±HH:MM`, `±HHMM` or `±HH` (a space before the zone is allowed). A time without a zone
///   is refused: it would be a guess.
/// - Epoch numbers, as JSON numbers or strings of digits, with or without a fraction: the
///   unit is told by the integer part's size (up to 11 digits seconds, 12–14 milliseconds,
///   15–17 microseconds, 18–19 nanoseconds), which is unambiguous from 1973 to 5138.
///   Exponent forms (`1.615077308538E12`) are read at millisecond precision.
/// The precision shown when printed (`EventTime.digits`) is what the source wrote: epoch
/// milliseconds print three fraction digits, `.058+00:00` prints `.058Z`.
public enum SourceTime {
    /// A JSON value that holds a time (string or number); nil when it is neither or invalid.
    public static func parse(_ v: JSONNode?) -> EventTime? {
        switch v {
        case .string(let s)?: return parse(text: s)
        case .number(let n)?: return epoch(n)
        default: return nil
        }
    }

    /// Text: RFC 3339-like, or an epoch number written as a string.
    public static func parse(text: String) -> EventTime? {
        let u = Array(text.utf8)
        guard !u.isEmpty, u.count <= 64 else { return nil }
        if isDigit(u[0]), !u.contains(0x2D), !u.contains(0x3A), !u.contains(0x20) { return epoch(text) }
        return iso(u)
    }

    static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }

    /// RFC 3339 variants, rewritten into the strict form `EventTime(rfc3339:)` checks.
    static func iso(_ u: [UInt8]) -> EventTime? {
        // Date and time: the fixed 19 bytes `YYYY-MM-DD?HH:MM:SS`.
        guard u.count >= 19 else { return nil }
        for i in [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18] where !isDigit(u[i]) { return nil }
        guard u[4] == 0x2D, u[7] == 0x2D, u[13] == 0x3A, u[16] == 0x3A,
              u[10] == 0x54 || u[10] == 0x74 || u[10] == 0x20 else { return nil }
        var out = Array(u[0..<19])
        out[10] = 0x54
        var i = 19
        if i < u.count, u[i] == 0x2E || u[i] == 0x2C {
            i += 1
            var digits = 0
            var frac: [UInt8] = []
            while i < u.count, isDigit(u[i]) {
                if digits < 9 { frac.append(u[i]) }
                digits += 1; i += 1
            }
            guard digits > 0 else { return nil }
            out.append(0x2E); out.append(contentsOf: frac)
        }
        if i < u.count, u[i] == 0x20 { i += 1 }
        let zone = Array(u[i...])
        switch zone {
        case [0x5A], [0x7A], Array("UTC".utf8), Array("GMT".utf8): out.append(0x5A)
        default:
            guard let sign = zone.first, sign == 0x2B || sign == 0x2D else { return nil }
            let rest = Array(zone.dropFirst())
            let hhmm: [UInt8]
            if rest.count == 5, rest[2] == 0x3A { hhmm = [rest[0], rest[1], rest[3], rest[4]] }
            else if rest.count == 4 { hhmm = rest }
            else if rest.count == 2 { hhmm = rest + [0x30, 0x30] }
            else { return nil }
            guard hhmm.allSatisfy(isDigit) else { return nil }
            out.append(sign); out.append(contentsOf: hhmm[0..<2]); out.append(0x3A); out.append(contentsOf: hhmm[2..<4])
        }
        return out.withUnsafeBufferPointer { EventTime(rfc3339UTF8: $0) }
    }

    /// An epoch number (see the type's documentation for the units).
    public static func epoch(_ text: String) -> EventTime? {
        let u = Array(text.utf8)
        guard !u.isEmpty, u.count <= 40 else { return nil }
        if u.contains(where: { $0 == 0x65 || $0 == 0x45 }) {
            // Exponent form: through Double, at millisecond precision.
            guard let d = Double(text), d.isFinite, d > 0 else { return nil }
            let digits = d < 1e11 ? 0 : d < 1e14 ? 3 : d < 1e17 ? 6 : 9
            let seconds = d / [1.0, 1e3, 1e6, 1e9][digits / 3]
            guard seconds < Double(EventTime.endSeconds) else { return nil }
            let whole = seconds.rounded(.down)
            let millis = Int32(min(999, max(0, ((seconds - whole) * 1000).rounded())))
            return EventTime(seconds: Int64(whole), nanos: millis * 1_000_000, digits: 3)
        }
        var intPart: [UInt8] = [], fracPart: [UInt8] = []
        var seenDot = false
        for c in u {
            if c == 0x2E { guard !seenDot else { return nil }; seenDot = true; continue }
            guard isDigit(c) else { return nil }
            if seenDot { fracPart.append(c) } else { intPart.append(c) }
        }
        while intPart.count > 1, intPart.first == 0x30 { intPart.removeFirst() }
        guard !intPart.isEmpty, !(seenDot && fracPart.isEmpty), intPart.count <= 19 else { return nil }
        // Scale: how many of the digits (from the right of the integer part) are below a second.
        let unitDigits = intPart.count <= 11 ? 0 : intPart.count <= 14 ? 3 : intPart.count <= 17 ? 6 : 9
        let secText = intPart.count > unitDigits ? Array(intPart[0..<(intPart.count - unitDigits)]) : [0x30]
        var sub = Array(intPart.suffix(unitDigits))
        while sub.count < unitDigits { sub.insert(0x30, at: 0) }
        let shown = min(9, unitDigits + fracPart.count)
        var nanoDigits = sub + fracPart
        if nanoDigits.count > 9 { nanoDigits = Array(nanoDigits[0..<9]) }
        while nanoDigits.count < 9 { nanoDigits.append(0x30) }
        guard let secs = Int64(String(decoding: secText, as: UTF8.self)), let nanos = Int32(String(decoding: nanoDigits, as: UTF8.self)),
              secs < EventTime.endSeconds else { return nil }
        return EventTime(seconds: secs, nanos: nanos, digits: UInt8(shown))
    }
}
