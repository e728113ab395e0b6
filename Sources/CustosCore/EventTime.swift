/// An instant in UTC that remembers how many fraction digits its source wrote, so that
/// `2021-07-19T17:19:00.673898225Z` prints back exactly (full source precision).
public struct EventTime: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var seconds: Int64
    public var nanos: Int32
    /// 0...9: fraction digits shown when printed.
    public var digits: UInt8

    public init(seconds: Int64, nanos: Int32 = 0, digits: UInt8 = 0) {
        self.seconds = seconds; self.nanos = nanos; self.digits = min(digits, 9)
    }

    /// Nanoseconds since the Unix epoch, for ordering and the index: exact from 1677-09-21 to
    /// 2262-04-11 and saturated outside it. (It used to wrap around: an event dated
    /// 2611-03-05T23:34:33.709551616Z sorted into 2026, so a query or evidence for a 2026
    /// period counted it.)
    public var unixNanos: Int64 {
        let (scaled, o1) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if o1 { return seconds < 0 ? .min : .max }
        let (v, o2) = scaled.addingReportingOverflow(Int64(nanos))
        return o2 ? .max : v
    }

    public static func < (a: EventTime, b: EventTime) -> Bool {
        (a.seconds, a.nanos) < (b.seconds, b.nanos)
    }
    public static func == (a: EventTime, b: EventTime) -> Bool {
        a.seconds == b.seconds && a.nanos == b.nanos && a.digits == b.digits
    }
    public func hash(into h: inout Hasher) { h.combine(seconds); h.combine(nanos); h.combine(digits) }

    /// RFC 3339 in UTC with a `Z` and exactly `digits` fraction digits.
    public var description: String { String(decoding: rfc3339Bytes(), as: UTF8.self) }

    public func rfc3339Bytes() -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(30)
        appendRFC3339(to: &out)
        return out
    }

    public func appendRFC3339(to out: inout [UInt8]) {
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secOfDay = Int(seconds - days * 86_400)
        let (y, m, d) = Self.civil(fromDays: days)
        @inline(__always) func put(_ v: Int, _ width: Int) {
            var div = 1
            for _ in 1..<width { div *= 10 }
            var x = v
            while div > 0 { out.append(UInt8(48 + (x / div) % 10)); x %= div; div /= 10 }
        }
        put(Int(y), 4); out.append(45); put(m, 2); out.append(45); put(d, 2); out.append(84)
        put(secOfDay / 3600, 2); out.append(58); put(secOfDay / 60 % 60, 2); out.append(58); put(secOfDay % 60, 2)
        if digits > 0 {
            out.append(46)
            var frac = Int(nanos)
            for _ in 0..<(9 - Int(digits)) { frac /= 10 }
            put(frac, Int(digits))
        }
        out.append(90)
    }

    /// Parses RFC 3339 (`T` or space separator, `Z`/`z` or ±HH:MM offset, 0–9 fraction digits).
    /// Returns nil for anything else, including impossible dates.
    public init?(rfc3339 text: some StringProtocol) {
        var str = String(text)
        guard let parsed = str.withUTF8({ EventTime(rfc3339UTF8: $0) }) else { return nil }
        self = parsed
    }

    /// Parses RFC 3339 from UTF-8 bytes (see `init?(rfc3339:)`).
    public init?(rfc3339UTF8 bytes: UnsafeBufferPointer<UInt8>) {
        if let fast = Self.fastUTC(bytes) { self = fast; return }
        var s = bytes[...]
        func num(_ n: Int) -> Int? {
            guard s.count >= n else { return nil }
            var v = 0
            for c in s.prefix(n) { guard c >= 48, c <= 57 else { return nil }; v = v * 10 + Int(c - 48) }
            s = s.dropFirst(n)
            return v
        }
        func lit(_ c: UInt8) -> Bool { guard s.first == c else { return false }; s = s.dropFirst(); return true }
        guard let y = num(4), lit(45), let mo = num(2), lit(45), let d = num(2) else { return nil }
        guard let sep = s.first, sep == 84 || sep == 116 || sep == 32 else { return nil }
        s = s.dropFirst()
        guard let h = num(2), lit(58), let mi = num(2), lit(58), let se = num(2) else { return nil }
        guard (1...12).contains(mo), d >= 1, d <= Self.daysIn(month: mo, year: y), h < 24, mi < 60, se <= 60 else { return nil }
        var nanos = 0, digits = 0
        if lit(46) {
            while let c = s.first, c >= 48, c <= 57 {
                guard digits < 9 else { return nil }
                nanos = nanos * 10 + Int(c - 48); digits += 1; s = s.dropFirst()
            }
            guard digits > 0 else { return nil }
            for _ in digits..<9 { nanos *= 10 }
        }
        var offset = 0
        if lit(90) || lit(122) {
        } else if let sign = s.first, sign == 43 || sign == 45 {
            s = s.dropFirst()
            guard let oh = num(2), lit(58), let om = num(2), oh < 24, om < 60 else { return nil }
            offset = (oh * 60 + om) * 60 * (sign == 45 ? -1 : 1)
        } else { return nil }
        guard s.isEmpty else { return nil }
        let days = Self.days(fromCivil: Int64(y), mo, d)
        // A leap second (:60) is folded into the next second.
        let secs = days * 86_400 + Int64(h * 3600 + mi * 60 + se) - Int64(offset)
        // In UTC the year must still have four digits, or it could not be printed back.
        guard secs >= Self.minSeconds, secs < Self.endSeconds else { return nil }
        self.init(seconds: secs, nanos: Int32(nanos), digits: UInt8(digits))
    }

    /// 0000-01-01T00:00:00Z and 10000-01-01T00:00:00Z.
    static let minSeconds = days(fromCivil: 0, 1, 1) * 86_400
    static let endSeconds = days(fromCivil: 10_000, 1, 1) * 86_400

    /// The common case, `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z`, read at fixed positions; nil for
    /// anything else (the general parser then decides).
    @inline(__always) static func fastUTC(_ b: UnsafeBufferPointer<UInt8>) -> EventTime? {
        let n = b.count
        guard n >= 20, n <= 30, b[4] == 45, b[7] == 45, b[10] == 84, b[13] == 58, b[16] == 58, b[n - 1] == 90 else { return nil }
        @inline(__always) func d(_ i: Int) -> Int? {
            let c = b[i]
            return c >= 48 && c <= 57 ? Int(c - 48) : nil
        }
        guard let y0 = d(0), let y1 = d(1), let y2 = d(2), let y3 = d(3), let m0 = d(5), let m1 = d(6),
              let d0 = d(8), let d1 = d(9), let h0 = d(11), let h1 = d(12), let i0 = d(14), let i1 = d(15),
              let s0 = d(17), let s1 = d(18) else { return nil }
        let y = y0 * 1000 + y1 * 100 + y2 * 10 + y3, mo = m0 * 10 + m1, day = d0 * 10 + d1
        let h = h0 * 10 + h1, mi = i0 * 10 + i1, se = s0 * 10 + s1
        guard (1...12).contains(mo), day >= 1, day <= daysIn(month: mo, year: y), h < 24, mi < 60, se < 60 else { return nil }
        var nanos = 0, digits = 0
        if n > 20 {
            guard b[19] == 46, n - 21 >= 1, n - 21 <= 9 else { return nil }
            for i in 20..<(n - 1) {
                guard let v = d(i) else { return nil }
                nanos = nanos * 10 + v
                digits += 1
            }
            for _ in digits..<9 { nanos *= 10 }
        }
        let secs = days(fromCivil: Int64(y), mo, day) * 86_400 + Int64(h * 3600 + mi * 60 + se)
        return EventTime(seconds: secs, nanos: Int32(nanos), digits: UInt8(digits))
    }

    static func daysIn(month m: Int, year y: Int) -> Int {
        switch m {
        case 2: return (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    // Howard Hinnant's days_from_civil / civil_from_days.
    static func days(fromCivil y0: Int64, _ m: Int, _ d: Int) -> Int64 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = Int64((m + 9) % 12)
        let doy = (153 * mp + 2) / 5 + Int64(d) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// Year, month (1–12) and day of the month of `z0` days since 1970-01-01.
    public static func civil(fromDays z0: Int64) -> (Int64, Int, Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = Int(doy - (153 * mp + 2) / 5 + 1)
        let m = Int(mp < 10 ? mp + 3 : mp - 9)
        return (m <= 2 ? y + 1 : y, m, d)
    }
}
