import Foundation
import Testing
@testable import CustosCore

@Suite("EventTime")
struct EventTimeTests {

    static func t(_ s: String) -> EventTime? { EventTime(rfc3339: s) }

    /// Outside 1677...2262 the nanosecond value saturates instead of wrapping around: a
    /// year-2611 time sorts after every 2026 one (it wrapped into 2026 before) and a
    /// year-1600 time before every one; inside the range it is exact.
    @Test func unixNanosSaturatesOutsideItsRange() throws {
        let wrapped = try #require(Self.t("2611-03-05T23:34:33.709551616Z"))
        let q3 = try #require(Self.t("2026-07-01T00:00:00Z")), q4 = try #require(Self.t("2026-10-01T00:00:00Z"))
        #expect(wrapped.unixNanos == .max)
        #expect(wrapped.unixNanos > q4.unixNanos && q3 < wrapped && q4 < wrapped)
        #expect(try #require(Self.t("1600-01-01T00:00:00Z")).unixNanos == .min)
        #expect(try #require(Self.t("2262-04-11T23:47:16.854775807Z")).unixNanos == .max)
        #expect(try #require(Self.t("2262-04-11T23:47:16.854775806Z")).unixNanos == .max - 1)
        #expect(try #require(Self.t("1677-09-21T00:12:43.145224192Z")).unixNanos == .min)
        #expect(q3.unixNanos == 1_782_864_000_000_000_000)
    }

    @Test func wellKnownInstants() throws {
        #expect(Self.t("1970-01-01T00:00:00Z") == EventTime(seconds: 0))
        #expect(Self.t("2000-01-01T00:00:00Z")?.seconds == 946_684_800)
        #expect(Self.t("2001-09-09T01:46:40Z")?.seconds == 1_000_000_000)
        #expect(Self.t("2038-01-19T03:14:07Z")?.seconds == 2_147_483_647)
        // NTP era start, 70 years before the Unix epoch.
        #expect(Self.t("1900-01-01T00:00:00Z")?.seconds == -2_208_988_800)
        #expect(Self.t("0000-01-01T00:00:00Z")?.seconds == -62_167_219_200)
        #expect(Self.t("9999-12-31T23:59:59Z")?.seconds == 253_402_300_799)
    }

    @Test func zuluRoundTrip() throws {
        for s in ["2026-11-27T23:18:46.24026281Z", "2021-07-19T17:19:00.673898225Z", "2024-02-29T00:00:00Z",
                  "1969-12-31T23:59:59.999999999Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z",
                  "1600-02-29T12:00:00.5Z"] {
            let e = try #require(Self.t(s), "\(s)")
            #expect(e.description == s)
            #expect(e.rfc3339Bytes() == Array(s.utf8))
            #expect(Self.t(e.description) == e)
        }
    }

    @Test func offsetsAreConvertedToUTC() throws {
        #expect(Self.t("2024-01-01T05:30:00+05:30")?.description == "2024-01-01T00:00:00Z")
        // Crossing midnight and the year, both ways.
        #expect(Self.t("2023-12-31T20:00:00.5-08:00")?.description == "2024-01-01T04:00:00.5Z")
        #expect(Self.t("2024-01-01T02:00:00+05:30")?.description == "2023-12-31T20:30:00Z")
        #expect(Self.t("2024-03-01T01:00:00+02:00")?.description == "2024-02-29T23:00:00Z")
        #expect(Self.t("2024-02-28T23:59:59.999-00:01")?.description == "2024-02-29T00:00:59.999Z")
        #expect(Self.t("2024-06-01T12:00:00+23:59")?.description == "2024-05-31T12:01:00Z")
        #expect(Self.t("2024-06-01T12:00:00-00:00") == Self.t("2024-06-01T12:00:00Z"))
        #expect(Self.t("2024-06-01T12:00:00+00:00") == Self.t("2024-06-01T12:00:00Z"))
    }

    @Test func fractionDigitsArePreserved() throws {
        let whole = "2021-07-19T17:19:00"
        let frac = Array("673898225")
        for d in 0...9 {
            let s = whole + (d == 0 ? "" : "." + String(frac.prefix(d))) + "Z"
            let e = try #require(Self.t(s))
            #expect(e.digits == UInt8(d))
            #expect(e.description == s)
            var expectedNanos = d == 0 ? 0 : Int(String(frac.prefix(d)))!
            for _ in d..<9 where d > 0 { expectedNanos *= 10 }
            #expect(e.nanos == Int32(expectedNanos))
        }
        // Trailing zeros are the source's and stay; equal instants with different precision
        // are not == (== includes the digits), and neither orders before the other.
        let a = try #require(Self.t("2024-01-01T00:00:00.100Z")), b = try #require(Self.t("2024-01-01T00:00:00.1Z"))
        #expect(a.description == "2024-01-01T00:00:00.100Z")
        #expect(a != b && !(a < b) && !(b < a) && a.unixNanos == b.unixNanos)
        #expect(Self.t("2024-01-01T00:00:00.000000000Z")?.description == "2024-01-01T00:00:00.000000000Z")
    }

    @Test func leapYears() {
        #expect(Self.t("2024-02-29T00:00:00Z") != nil)
        #expect(Self.t("2000-02-29T00:00:00Z") != nil)
        #expect(Self.t("2400-02-29T00:00:00Z") != nil)
        #expect(Self.t("2023-02-29T00:00:00Z") == nil)
        #expect(Self.t("1900-02-29T00:00:00Z") == nil)
        #expect(Self.t("2100-02-29T00:00:00Z") == nil)
        #expect(Self.t("2024-02-30T00:00:00Z") == nil)
        for m in [4, 6, 9, 11] {
            #expect(Self.t(String(format: "2023-%02d-30T00:00:00Z", m)) != nil)
            #expect(Self.t(String(format: "2023-%02d-31T00:00:00Z", m)) == nil)
        }
        for m in [1, 3, 5, 7, 8, 10, 12] { #expect(Self.t(String(format: "2023-%02d-31T00:00:00Z", m)) != nil) }
        // 2024-02-29 is one day after 02-28 and one before 03-01.
        let feb28 = Self.t("2024-02-28T00:00:00Z")!.seconds, mar1 = Self.t("2024-03-01T00:00:00Z")!.seconds
        #expect(mar1 - feb28 == 2 * 86_400)
        #expect(Self.t("2023-03-01T00:00:00Z")!.seconds - Self.t("2023-02-28T00:00:00Z")!.seconds == 86_400)
    }

    @Test(arguments: [
        "", "2024-05-01", "2024-05-01T10:00Z", "2024-05-01T10:00:00", "2024-05-01T10:00:00.Z",
        "2024-05-01T10:00:00.1234567890Z", "2021-13-01T00:00:00Z", "2021-00-01T00:00:00Z", "2021-01-00T00:00:00Z",
        "2021-01-32T00:00:00Z", "2021-01-01T24:00:00Z", "2021-01-01T23:60:00Z", "2021-01-01T23:59:61Z",
        "2024-5-01T10:00:00Z", "24-05-01T10:00:00Z", "+2024-05-01T10:00:00Z", "2024/05/01T10:00:00Z",
        "2024-05-01X10:00:00Z", "2024-05-01T10:00:00+0530", "2024-05-01T10:00:00+05", "2024-05-01T10:00:00+24:00",
        "2024-05-01T10:00:00+05:60", "2024-05-01T10:00:00ZZ", "2024-05-01T10:00:00Zx", " 2024-05-01T10:00:00Z",
        "2024-05-01T10:00:00Z ", "2024-05-01T10:00:00,5Z", "２０２４-05-01T10:00:00Z", "2024-05-01T10:00:00UTC",
        "2024-05-01T10:00:00.-1Z", "2024-05-01T1:00:00Z", "2024-05-01T10:00:00+5:30",
        // Out of the four-digit year range once converted to UTC.
        "0000-01-01T00:00:00+00:01", "9999-12-31T23:59:59-00:01",
    ])
    func rejectsBadForms(_ s: String) {
        #expect(Self.t(s) == nil)
    }

    @Test func lenientFormsTheParserAccepts() {
        // Documented in EventTime: `t`/space separators and a lower-case `z` are accepted.
        let z = Self.t("2024-05-01T10:00:00.25Z")
        #expect(z != nil)
        #expect(Self.t("2024-05-01t10:00:00.25z") == z)
        #expect(Self.t("2024-05-01 10:00:00.25Z") == z)
        // A leap second is folded into the next second.
        #expect(Self.t("2016-12-31T23:59:60Z") == Self.t("2017-01-01T00:00:00Z"))
        #expect(Self.t("2016-12-31T23:59:60.5Z")?.description == "2017-01-01T00:00:00.5Z")
    }

    @Test func beforeTheEpoch() throws {
        let e = try #require(Self.t("1969-12-31T23:59:59.5Z"))
        #expect(e.seconds == -1 && e.nanos == 500_000_000)
        #expect(e.unixNanos == -500_000_000)
        #expect(Self.t("1969-12-31T00:00:00Z")?.seconds == -86_400)
        #expect(Self.t("1969-12-30T23:59:59Z")?.seconds == -86_401)
        #expect(EventTime(seconds: -86_401).description == "1969-12-30T23:59:59Z")
        #expect(EventTime(seconds: -1, nanos: 1, digits: 9).description == "1969-12-31T23:59:59.000000001Z")
        #expect(Self.t("1677-09-22T00:00:00Z")!.unixNanos < 0)
    }

    @Test func orderingByUnixNanos() throws {
        let texts = ["1969-12-31T23:59:59.999999999Z", "1970-01-01T00:00:00Z", "1970-01-01T00:00:00.000000001Z",
                     "2024-01-01T04:59:59.9+05:00", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00.000001Z",
                     "2023-12-31T19:00:00.000002-05:00", "2262-04-11T23:47:16Z"]
        let times = try texts.map { try #require(Self.t($0)) }
        for i in times.indices.dropLast() {
            #expect(times[i] < times[i + 1], "\(texts[i]) < \(texts[i + 1])")
            #expect(times[i].unixNanos < times[i + 1].unixNanos)
        }
        #expect(times.shuffled().sorted() == times)
    }

    // MARK: - Foundation cross-checks

    static func isoFormatter(fraction: Bool = false) -> ISO8601DateFormatter {
        let f = ISO8601DateFormatter()
        f.timeZone = TimeZone(identifier: "UTC")
        f.formatOptions = fraction ? [.withInternetDateTime, .withFractionalSeconds] : [.withInternetDateTime]
        return f
    }

    @Test func agreesWithFoundationOnOffsets() throws {
        let f = Self.isoFormatter()
        for s in ["2024-01-01T05:30:00+05:30", "2023-12-31T20:00:00-08:00", "1969-07-20T20:17:40Z", "1901-12-13T20:45:52+01:00",
                  "2100-03-01T00:00:00-12:00", "2024-02-29T23:59:59+14:00", "1999-12-31T23:59:59-09:30"] {
            let date = try #require(f.date(from: s), "\(s)")
            let e = try #require(Self.t(s))
            #expect(Double(e.seconds) == date.timeIntervalSince1970, "\(s)")
            #expect(e.description == f.string(from: date), "\(s)")
        }
        let ms = Self.isoFormatter(fraction: true)
        for s in ["2021-07-19T17:19:00.673Z", "1969-12-31T23:59:59.250-01:00"] {
            let date = try #require(ms.date(from: s))
            let e = try #require(Self.t(s))
            #expect(abs(Double(e.unixNanos) / 1e9 - date.timeIntervalSince1970) < 1e-6, "\(s)")
        }
    }

    @Test func formattingAgreesWithFoundation() {
        let f = Self.isoFormatter()
        var rng = SeededRNG(seed: 1970)
        // 1900...2200: Foundation's calendar is the proleptic Gregorian one only after 1582.
        for _ in 0..<500 {
            let s = Int64.random(in: -2_208_988_800...7_258_118_400, using: &rng)
            let text = f.string(from: Date(timeIntervalSince1970: TimeInterval(s)))
            #expect(EventTime(seconds: s).description == text)
            #expect(Self.t(text)?.seconds == s)
        }
    }
}
