import Foundation
import Testing
@testable import CustosCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `CanonicalValidator` must give exactly the verdict of the slow reference
/// (`AccessEvent.decode(_:requireCanonical: true)`): checked on random canonical events and
/// on many mutations of each, with every input placed right before an unreadable page so
/// that any read past the end of the entry crashes the test.
@Suite("CanonicalValidator")
struct CanonicalValidatorTests {

    // MARK: - Helpers

    typealias RNG = SeededRNG

    /// Memory whose last readable byte is followed by a PROT_NONE page.
    final class GuardedBuffer {
        let page: Int
        let size: Int
        let base: UnsafeMutableRawPointer
        init(capacity: Int = 1 << 20) {
            page = Int(getpagesize())
            size = (capacity + page - 1) / page * page
            let p = mmap(nil, size + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
            precondition(p != nil && p != UnsafeMutableRawPointer(bitPattern: -1), "mmap failed")
            base = p!
            precondition(mprotect(base + size, page, PROT_NONE) == 0, "mprotect failed")
        }
        deinit { munmap(base, size + page) }

        func problem(_ bytes: [UInt8]) -> String? {
            precondition(bytes.count <= size)
            let start = base + (size - bytes.count)
            bytes.withUnsafeBytes { start.copyMemory(from: $0.baseAddress ?? UnsafeRawPointer(base), byteCount: $0.count) }
            return CanonicalValidator.problem(UnsafeRawBufferPointer(start: start, count: bytes.count))
        }
    }

    static func reference(_ b: [UInt8]) -> Bool { (try? AccessEvent.decode(b, requireCanonical: true)) != nil }

    static func text(_ b: [UInt8]) -> String {
        b.map { $0 >= 0x20 && $0 < 0x7F ? String(UnicodeScalar($0)) : String(format: "<%02x>", $0) }.joined()
    }

    /// Asserts equal verdicts; returns the validator's verdict.
    @discardableResult
    static func check(_ b: [UInt8], _ g: GuardedBuffer, _ mismatches: inout [String]) -> Bool {
        let fast = g.problem(b) == nil
        if fast != reference(b) {
            mismatches.append("validator \(fast ? "accepts" : "rejects"), reference \(fast ? "rejects" : "accepts"): \(text(b))")
        }
        return fast
    }

    // MARK: - Random events

    static let stringPieces: [String] = {
        var p = ["a", "b", "z", "Q", "0", "9", " ", "/", "\"", "\\", "\u{7F}", "é", "ß", "中", "😀", "👩‍💻", "\u{2028}",
                 "\u{FEFF}", "\u{FFFD}", "\u{FFFF}", "\u{10FFFF}", "\u{80}", "\u{7FF}", "\u{800}", "\u{D7FF}", "\u{E000}",
                 "\u{10000}", "-", ":", ",", "{", "}", "[", "]", "u", "00", "\\u0041", "null", "secret/data/x"]
        for c in 0..<0x20 { p.append(String(UnicodeScalar(UInt8(c)))) }
        return p
    }()

    static func randomString(_ r: inout RNG) -> String {
        if r.chance(0.15) { return "" }
        var s = ""
        for _ in 0..<r.int(1...8) { s += r.pick(stringPieces) }
        return s
    }

    static func maybe(_ r: inout RNG, _ p: Double = 0.5) -> String? { r.chance(p) ? randomString(&r) : nil }

    static func randomArray(_ r: inout RNG) -> [String] {
        r.chance(0.4) ? [] : (0..<r.int(1...3)).map { _ in randomString(&r) }
    }

    static func pad(_ v: Int, _ w: Int) -> String {
        let s = String(v)
        return String(repeating: "0", count: max(0, w - s.count)) + s
    }

    static func randomTimeString(_ r: inout RNG) -> String {
        let year = r.chance(0.3) ? r.pick([0, 1, 4, 100, 400, 1582, 1600, 1900, 1969, 1970, 2000, 2024, 2100, 9999]) : r.int(0...9999)
        let month = r.int(1...12)
        let day = r.chance(0.5) ? EventTime.daysIn(month: month, year: year) : r.int(1...EventTime.daysIn(month: month, year: year))
        var s = "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(r.int(0...23), 2)):\(pad(r.int(0...59), 2)):\(pad(r.int(0...59), 2))"
        let digits = r.int(0...9)
        if digits > 0 { s += "." + (0..<digits).map { _ in String(r.int(0...9)) }.joined() }
        return s + "Z"
    }

    static func randomEvent(_ r: inout RNG) -> AccessEvent {
        let t = randomTimeString(&r)
        let time = EventTime(rfc3339: t)!
        precondition(time.description == t, t)
        var e = AccessEvent(
            id: randomString(&r), time: time, source: .init(kind: randomString(&r), instance: randomString(&r)),
            action: Action(r.chance(0.5) ? r.pick(["read", "list", "login", "token_create"]) : randomString(&r)),
            outcome: r.pick(Outcome.allCases), reason: maybe(&r, 0.3),
            identity: .init(id: maybe(&r), name: maybe(&r), kind: r.pick(IdentityKind.allCases),
                            method: maybe(&r), policies: randomArray(&r)),
            requestID: maybe(&r))
        if r.chance(0.6) {
            e.secret = .init(store: maybe(&r), path: randomString(&r), environment: maybe(&r), namespace: maybe(&r))
        }
        if r.chance(0.6) {
            e.origin = .init(ip: randomString(&r), port: r.chance(0.3) ? nil : (r.chance(0.3) ? r.pick([0, 1, 9, 10, 65535]) : r.int(0...65535)))
        }
        if r.chance(0.4) {
            e.pipeline = .init(provider: maybe(&r), repository: maybe(&r), name: maybe(&r), id: maybe(&r), runID: maybe(&r),
                               attempt: r.chance(0.5) ? nil : (r.chance(0.3) ? r.pick([0, 1, 9, 10, 1_000_000]) : r.int(0...1_000_000)),
                               job: maybe(&r), step: maybe(&r), environment: maybe(&r),
                               trigger: r.chance(0.5) ? r.pick(AccessEvent.Pipeline.Trigger.allCases) : nil,
                               triggerIdentity: maybe(&r), runnerIP: maybe(&r), scope: randomArray(&r))
        }
        return e
    }

    // MARK: - Mutations

    struct Object { var content: Range<Int>; var members: [Range<Int>] }

    /// Objects (content and member ranges) and string tokens of a (nearly) canonical document.
    static func structure(_ b: [UInt8]) -> (objects: [Object], strings: [Range<Int>]) {
        var objects: [Object] = [], strings: [Range<Int>] = []
        var stack: [(object: Int?, memberStart: Int)] = []
        var inString = false, escaped = false, stringStart = 0
        for (k, c) in b.enumerated() {
            if inString {
                if escaped { escaped = false } else if c == 0x5C { escaped = true } else if c == 0x22 {
                    inString = false; strings.append(stringStart..<(k + 1))
                }
                continue
            }
            switch c {
            case 0x22: inString = true; stringStart = k
            case 0x7B: objects.append(Object(content: (k + 1)..<(k + 1), members: [])); stack.append((objects.count - 1, k + 1))
            case 0x5B: stack.append((nil, k + 1))
            case 0x2C:
                if let top = stack.last, let o = top.object {
                    objects[o].members.append(top.memberStart..<k); stack[stack.count - 1].memberStart = k + 1
                }
            case 0x7D, 0x5D:
                guard let top = stack.popLast() else { break }
                if let o = top.object {
                    if k > top.memberStart { objects[o].members.append(top.memberStart..<k) }
                    objects[o].content = objects[o].content.lowerBound..<k
                }
            default: break
            }
        }
        return (objects, strings)
    }

    /// The value range of the member `"key":value` of any object, if present.
    static func valueRange(_ b: [UInt8], key: String) -> Range<Int>? {
        let (objects, _) = structure(b)
        let prefix = Array("\"\(key)\":".utf8)
        for o in objects {
            for m in o.members where m.count >= prefix.count && Array(b[m.lowerBound..<(m.lowerBound + prefix.count)]) == prefix {
                return (m.lowerBound + prefix.count)..<m.upperBound
            }
        }
        return nil
    }

    static let interestingBytes: [UInt8] = Array(" \t\n\r\"\\/0123456789{}[],:-+.eEZzTtnu".utf8)
        + [0x00, 0x01, 0x1F, 0x7F, 0x80, 0xBF, 0xC0, 0xC1, 0xC2, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF]

    static let stringInserts: [[UInt8]] = [
        #"\u0041"#, #"\u0061"#, #"\u001f"#, #"\u001F"#, #"\u000a"#, #"\u000A"#, #"\u0008"#, #"\u0009"#, #"\u000c"#,
        #"\u000d"#, #"\u000b"#, #"\u0000"#, #"\u007f"#, #"\u0020"#, #"\u0022"#, #"\u005c"#, #"\u00e9"#, #"\u0100"#,
        #"\ud83d\ude00"#, #"\ud800"#, #"\udc00"#, #"\u"#, #"\u00"#, #"\u001"#, #"\u00g0"#, #"\/"#, #"\""#, #"\\"#,
        #"\b"#, #"\t"#, #"\n"#, #"\f"#, #"\r"#, #"\a"#, #"\x41"#, #"\0"#, #"\'"#, "\\", "\"", "/",
    ].map { Array($0.utf8) } + [
        [0x00], [0x09], [0x0A], [0x1F], [0x7F], [0x20],
        // Invalid UTF-8: overlongs, surrogates, beyond U+10FFFF, stray and truncated sequences.
        [0xC0, 0x80], [0xC0, 0xAF], [0xC1, 0xBF], [0xE0, 0x80, 0x80], [0xE0, 0x9F, 0xBF], [0xED, 0xA0, 0x80],
        [0xED, 0xBF, 0xBF], [0xF0, 0x80, 0x80, 0x80], [0xF0, 0x8F, 0xBF, 0xBF], [0xF4, 0x90, 0x80, 0x80],
        [0xF5, 0x80, 0x80, 0x80], [0xF8, 0x88, 0x80, 0x80, 0x80], [0xFE], [0xFF], [0x80], [0xBF], [0xC2], [0xE2, 0x82],
        [0xF0, 0x9F, 0x98], [0xC2, 0x41], [0xE2, 0x28, 0xA1], [0xF0, 0x28, 0x8C, 0xBC],
        // Valid boundaries.
        [0xC2, 0x80], [0xDF, 0xBF], [0xE0, 0xA0, 0x80], [0xED, 0x9F, 0xBF], [0xEE, 0x80, 0x80], [0xEF, 0xBF, 0xBF],
        [0xF0, 0x90, 0x80, 0x80], [0xF4, 0x8F, 0xBF, 0xBF],
    ]

    static let escapeSwaps: [(String, String)] = [
        (#"\n"#, #"\u000a"#), (#"\t"#, #"\u0009"#), (#"\b"#, #"\u0008"#), (#"\f"#, #"\u000c"#), (#"\r"#, #"\u000d"#),
        (#"\""#, #"\u0022"#), (#"\\"#, #"\u005c"#), (#"\u001f"#, #"\u001F"#), (#"\u000b"#, #"\u000B"#),
        (#"\u0001"#, "\u{01}"), (#"\n"#, "\n"), ("/", #"\/"#), ("a", #"\u0061"#), ("é", #"\u00e9"#),
        ("😀", #"\ud83d\ude00"#), (#"\u001e"#, #"\u001e"#),
    ]

    static let replacementValues: [String] = [
        "null", "[]", "{}", #""""#, "0", "1", "-0", "true", "false", #""x""#, #"["x"]"#, #"[""]"#, #"{"a":"b"}"#, "1.5", "1e3",
    ]

    static let portValues: [String] = [
        "0", "00", "01", "-0", "-1", "1", "9", "10", "65535", "65536", "65534", "99999", "100000", "8200", "08200", "8200.0",
        "8200e0", "82E2", "1e3", "+1", #""8200""#, "null", "4294967296", "9223372036854775807", "9223372036854775808",
        "18446744073709551616", "-9223372036854775808", "0x10", "1 ", " 1", "",
    ]

    static let enumValues: [String] = [
        "success", "denied", "error", "Success", "success ", "", "succes", "successs", "human", "service", "api_key",
        "api-key", "root", "pipeline", "unknown", "Unknown", "manual", "automated", "automatic", "custos.event/v1",
        "custos.event/v2", #"custos.event\/v1"#, #"\u0073uccess"#, "custos.event/v1 ",
    ]

    static let arrayValues: [String] = [
        "[]", "null", #"[""]"#, #"["a",]"#, #"[,"a"]"#, #"["a","b"]"#, #"["a" ,"b"]"#, #"[ "a"]"#, "[1]", #"[["a"]]"#,
        #"["a""b"]"#, #"["a"#, #""a""#, "{}", #"["a",null]"#,
    ]

    static func randomTimeVariant(_ r: inout RNG) -> String {
        func num(_ w: Int, _ range: ClosedRange<Int>) -> String { pad(r.int(range), w) }
        let year = r.chance(0.8) ? num(4, 0...9999) : r.pick(["999", "10000", "-001", "+2024", "0000", "9999", "2O24"])
        let month = r.chance(0.8) ? num(2, 1...12) : r.pick(["00", "13", "1", "001", "19"])
        let day = r.chance(0.5) ? r.pick(["28", "29", "30", "31"]) : (r.chance(0.8) ? num(2, 1...31) : r.pick(["00", "32", "3", "39"]))
        let sep = r.chance(0.8) ? "T" : r.pick(["t", " ", "_", "", "TT"])
        let hour = r.chance(0.85) ? num(2, 0...23) : r.pick(["24", "25", "1", "99"])
        let minute = r.chance(0.85) ? num(2, 0...59) : r.pick(["60", "61", "5"])
        let second = r.chance(0.8) ? num(2, 0...59) : r.pick(["60", "61", "5", "99"])
        var s = "\(year)-\(month)-\(day)\(sep)\(hour):\(minute):\(second)"
        if r.chance(0.5) {
            let digits = r.chance(0.8) ? r.int(1...9) : r.pick([0, 10, 11, 20])
            s += "." + (0..<digits).map { _ in String(r.int(0...9)) }.joined()
        }
        s += r.chance(0.75) ? "Z" : r.pick(["z", "+00:00", "-00:00", "+01:00", "-23:59", "+24:00", "", "ZZ", "Z ", "GMT", "+0000"])
        return s
    }

    static func replace(_ b: [UInt8], _ range: Range<Int>, with s: String) -> [UInt8] {
        var out = b
        out.replaceSubrange(range, with: Array(s.utf8))
        return out
    }

    static func mutate(_ b: [UInt8], _ r: inout RNG) -> [UInt8] {
        var b = b
        let (objects, strings) = structure(b)
        switch r.int(0...17) {
        case 0:  // flip a byte
            guard !b.isEmpty else { break }
            b[r.int(0...(b.count - 1))] = r.chance(0.5) ? UInt8.random(in: 0...255, using: &r) : r.pick(interestingBytes)
        case 1:  // insert a byte
            b.insert(r.chance(0.7) ? r.pick(interestingBytes) : UInt8.random(in: 0...255, using: &r), at: r.int(0...b.count))
        case 2:  // delete bytes
            guard !b.isEmpty else { break }
            let at = r.int(0...(b.count - 1))
            b.removeSubrange(at..<min(b.count, at + r.int(1...3)))
        case 3:  // truncate or append
            if r.chance(0.5) { b.removeLast(r.int(0...b.count)) } else { b += Array(r.pick([" ", "\n", "{}", ",", "}", "x", "\0"]).utf8) }
        case 4:  // swap two members of an object
            guard let o = objects.filter({ $0.members.count >= 2 }).randomElement(using: &r) else { break }
            var parts = o.members.map { Array(b[$0]) }
            let x = r.int(0...(parts.count - 1)), y = r.int(0...(parts.count - 1))
            parts.swapAt(x, y)
            b.replaceSubrange(o.content, with: Array(parts.joined(separator: [0x2C])))
        case 5:  // duplicate a member
            guard let o = objects.filter({ !$0.members.isEmpty }).randomElement(using: &r) else { break }
            var parts = o.members.map { Array(b[$0]) }
            let x = r.int(0...(parts.count - 1))
            parts.insert(parts[x], at: r.chance(0.7) ? x + 1 : r.int(0...parts.count))
            b.replaceSubrange(o.content, with: Array(parts.joined(separator: [0x2C])))
        case 6:  // drop a member
            guard let o = objects.filter({ !$0.members.isEmpty }).randomElement(using: &r) else { break }
            var parts = o.members.map { Array(b[$0]) }
            parts.remove(at: r.int(0...(parts.count - 1)))
            b.replaceSubrange(o.content, with: Array(parts.joined(separator: [0x2C])))
        case 7:  // insert a foreign member (index, unknown, or a schema key in the wrong object)
            guard let o = objects.randomElement(using: &r) else { break }
            var parts = o.members.map { Array(b[$0]) }
            let member = r.pick([#""index":3"#, #""index":0"#, #""a":"b""#, #""zzz":"x""#, #""id":"x""#, #""kind":"human""#,
                                 #""path":"p""#, #""port":1"#, #""ip":"1""#, #""pipeline":{}"#, #""origin":{"ip":"x"}"#,
                                 #""scope":["a"]"#, #""trigger":"manual""#, #""\u0069d":"x""#, #""":"x""#, #""reason":"r""#])
            parts.insert(Array(member.utf8), at: r.int(0...parts.count))
            b.replaceSubrange(o.content, with: Array(parts.joined(separator: [0x2C])))
        case 8:  // insert an escape or odd bytes into a string
            guard let s = strings.randomElement(using: &r) else { break }
            b.insert(contentsOf: r.pick(stringInserts), at: r.int((s.lowerBound + 1)...(s.upperBound - 1)))
        case 9:  // swap one spelling of a character for another
            let (from, to) = r.pick(escapeSwaps)
            let f = Array(from.utf8)
            guard let s = strings.randomElement(using: &r), s.count - 2 >= f.count else { break }
            let inner = Array(b[(s.lowerBound + 1)..<(s.upperBound - 1)])
            guard let at = (0...(inner.count - f.count)).first(where: { Array(inner[$0..<($0 + f.count)]) == f }) else {
                b.insert(contentsOf: Array(to.utf8), at: s.upperBound - 1)  // append the alternative spelling
                break
            }
            b.replaceSubrange((s.lowerBound + 1 + at)..<(s.lowerBound + 1 + at + f.count), with: Array(to.utf8))
        case 10:  // replace a string's content with random bytes
            guard let s = strings.randomElement(using: &r) else { break }
            let junk = (0..<r.int(0...6)).flatMap { _ in r.chance(0.5) ? r.pick(stringInserts) : [r.pick(interestingBytes)] }
            b.replaceSubrange((s.lowerBound + 1)..<(s.upperBound - 1), with: junk)
        case 11:  // replace a member's value
            guard let o = objects.filter({ !$0.members.isEmpty }).randomElement(using: &r) else { break }
            let m = r.pick(o.members)
            guard let colon = b[m].firstIndex(of: 0x3A) else { break }
            b.replaceSubrange((colon + 1)..<m.upperBound, with: Array(r.pick(replacementValues).utf8))
        case 12:  // a time variant
            guard let v = valueRange(b, key: "time") else { break }
            b = replace(b, v, with: "\"" + randomTimeVariant(&r) + "\"")
        case 13:  // a port variant (adding an origin when there is none)
            if let v = valueRange(b, key: "port") {
                b = replace(b, v, with: r.pick(portValues))
            } else if let v = valueRange(b, key: "ip") {
                b.insert(contentsOf: Array((",\"port\":" + r.pick(portValues)).utf8), at: v.upperBound)
            }
        case 14:  // an enum (or schema) variant
            let key = r.pick(["outcome", "kind", "trigger", "schema"])
            guard let v = valueRange(b, key: key) else { break }
            b = replace(b, v, with: "\"" + r.pick(enumValues) + "\"")
        case 15:  // an array variant
            let key = r.pick(["policies", "scope"])
            if let v = valueRange(b, key: key) {
                b = replace(b, v, with: r.pick(arrayValues))
            } else if let v = valueRange(b, key: "kind"), key == "policies" {
                b.insert(contentsOf: Array(",\"policies\":\(r.pick(arrayValues))".utf8), at: v.upperBound)
            }
        case 16:  // whitespace between tokens
            let structural = b.indices.filter { [0x7B, 0x7D, 0x5B, 0x5D, 0x2C, 0x3A].contains(b[$0]) }
            guard let at = structural.randomElement(using: &r) else { break }
            b.insert(r.pick([0x20, 0x0A, 0x09, 0x0D]), at: r.chance(0.5) ? at : at + 1)
        default:  // a leading zero or sign before a digit
            let digits = b.indices.filter { b[$0] >= 0x30 && b[$0] <= 0x39 }
            guard let at = digits.randomElement(using: &r) else { break }
            b.insert(r.pick(Array("0-+".utf8)), at: at)
        }
        return b
    }

    static var iterations: Int { Int(ProcessInfo.processInfo.environment["CUSTOS_VALIDATOR_EVENTS"] ?? "") ?? 300 }
    static var seed: UInt64 { UInt64(ProcessInfo.processInfo.environment["CUSTOS_VALIDATOR_SEED"] ?? "") ?? 0xC057_05 }

    // MARK: - (a) Equivalence

    @Test func randomEventsAndMutationsGetTheReferenceVerdict() {
        var r = RNG(seed: Self.seed)
        let g = GuardedBuffer()
        var mismatches: [String] = []
        var accepted = 0, rejected = 0
        for _ in 0..<Self.iterations {
            let e = Self.randomEvent(&r)
            let bytes = e.canonicalJSON()
            #expect(Self.reference(bytes), "reference rejects a canonical event: \(Self.text(bytes))")
            #expect(g.problem(bytes) == nil, "validator rejects a canonical event: \(Self.text(bytes))")
            for _ in 0..<60 {
                var m = bytes
                for _ in 0..<(r.chance(0.75) ? 1 : r.int(2...4)) { m = Self.mutate(m, &r) }
                if Self.check(m, g, &mismatches) { accepted += 1 } else { rejected += 1 }
            }
            if mismatches.count > 20 { break }
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) mismatches:\n\(mismatches.prefix(20).joined(separator: "\n"))")
        // The mutations must reach both verdicts, or the comparison says little.
        #expect(accepted > Self.iterations, "accepted \(accepted), rejected \(rejected)")
        #expect(rejected > Self.iterations * 30)
    }

    /// `e` with the characters JSON escapes taken out of its index columns (random strings
    /// nearly always have one somewhere, and the fast path declines those).
    static func withoutEscapesInColumns(_ e: inout AccessEvent) {
        func plain(_ s: String) -> String {
            String(String.UnicodeScalarView(s.unicodeScalars.filter { $0 != "\"" && $0 != "\\" && $0.value >= 0x20 }))
        }
        e.id = plain(e.id)
        e.action = Action(plain(e.action.rawValue))
        e.source = .init(kind: plain(e.source.kind), instance: plain(e.source.instance))
        e.identity.id = e.identity.id.map(plain)
        e.identity.name = e.identity.name.map(plain)
        if let s = e.secret { e.secret = .init(store: s.store, path: plain(s.path), environment: s.environment.map(plain), namespace: s.namespace) }
        if let o = e.origin { e.origin = .init(ip: plain(o.ip), port: o.port) }
    }

    static let firstEvent = AccessEvent(id: "x", time: EventTime(seconds: 0), source: .init(kind: "k", instance: "i"),
                                        action: .read, outcome: .success, identity: .init(kind: .human))

    /// `EventBatch.appendIfCanonical` (ingest's fast path for canonical custos events) takes a
    /// line only when the reference accepts it, stores the line itself, and gives every index
    /// column, the key and the time exactly as decoding and `append(_:)` do; it declines only
    /// lines the reference rejects, an empty or over-long id, or a column with an escape.
    @Test func theFastPathAppendsWhatDecodingDoes() throws {
        var r = RNG(seed: Self.seed ^ 0xFA57)
        var taken = 0, declinedCanonical = 0
        let columns: [(String, KeyPath<EventBatch.Row, EventBatch.Span>)] = [
            ("id", \.id), ("action", \.action), ("outcome", \.outcome), ("source.kind", \.sourceKind),
            ("source.instance", \.sourceInstance), ("secret.path", \.secretPath), ("secret.environment", \.environment),
            ("identity.id", \.identityID), ("identity.name", \.identityName), ("identity.kind", \.identityKind),
            ("origin.ip", \.originIP)]
        for k in 0..<(Self.iterations * 4) {
            var event = Self.randomEvent(&r)
            if k % 2 == 0 { Self.withoutEscapesInColumns(&event) }
            var line = event.canonicalJSON()
            if k % 4 == 3 { line = Self.mutate(line, &r) }
            var fast = EventBatch()
            fast.append(Self.firstEvent)   // so that offsets must be relative to the entry
            let before = fast.bytes.count
            let took = line.withUnsafeBytes { fast.appendIfCanonical($0) }
            let reference = try? AccessEvent.decode(line, requireCanonical: true)
            guard took else {
                #expect(fast.count == 1 && fast.bytes.count == before, "a declined line left something behind")
                if let e = reference {
                    declinedCanonical += 1
                    let escapedColumn = [e.id, e.action.rawValue, e.source.kind, e.source.instance, e.secret?.path ?? "",
                                         e.secret?.environment ?? "", e.identity.id ?? "", e.identity.name ?? "", e.origin?.ip ?? ""]
                        .contains { v in v.unicodeScalars.contains { $0 == "\"" || $0 == "\\" || $0.value < 0x20 } }
                    #expect(escapedColumn || e.id.isEmpty || e.id.utf8.count > 256, "declined a canonical line: \(Self.text(line))")
                }
                continue
            }
            taken += 1
            let e = try #require(reference, "took a line the reference rejects: \(Self.text(line))")
            var slow = EventBatch()
            slow.append(e)
            #expect(Array(fast.entry(1)) == line)
            #expect(Array(slow.entry(0)) == line)
            #expect(fast.rows[1].keyHi == slow.rows[0].keyHi && fast.rows[1].keyLo == slow.rows[0].keyLo)
            #expect(fast.rows[1].timeNanos == slow.rows[0].timeNanos)
            for (name, c) in columns {
                #expect(fast.string(1, c) == slow.string(0, c), "column \(name) of \(Self.text(line))")
            }
        }
        // Both verdicts must be reached often, or the comparison says little.
        #expect(taken > Self.iterations, "taken \(taken), declined canonical \(declinedCanonical)")
        #expect(declinedCanonical > 0)
    }

    @Test func everyTruncationGetsTheReferenceVerdict() {
        var r = RNG(seed: Self.seed ^ 0xFFFF)
        let g = GuardedBuffer()
        var mismatches: [String] = []
        for _ in 0..<20 {
            let bytes = Self.randomEvent(&r).canonicalJSON()
            for k in 0..<bytes.count {
                Self.check(Array(bytes[..<k]), g, &mismatches)
                Self.check(Array(bytes[k...]), g, &mismatches)
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) mismatches:\n\(mismatches.prefix(20).joined(separator: "\n"))")
    }

    @Test func everyTimeVariantGetsTheReferenceVerdict() {
        // Times alone, many of them: calendar edges, separators, zones, fraction lengths.
        var r = RNG(seed: Self.seed ^ 0x7131)
        let g = GuardedBuffer()
        var mismatches: [String] = []
        let base = CanonicalJSONTests.minimalJSON
        for _ in 0..<20_000 {
            let t = r.chance(0.3) ? Self.randomTimeString(&r) : Self.randomTimeVariant(&r)
            Self.check(Array(base.replacingOccurrences(of: "1970-01-01T00:00:00Z", with: t).utf8), g, &mismatches)
        }
        // Every day of two leap-cycle years and their neighbours, and every month end.
        for year in [0, 1, 4, 100, 1900, 2000, 2023, 2024, 9999] {
            for month in 0...13 {
                for day in 0...32 {
                    let t = "\(Self.pad(year, 4))-\(Self.pad(month, 2))-\(Self.pad(day, 2))T23:59:59Z"
                    Self.check(Array(base.replacingOccurrences(of: "1970-01-01T00:00:00Z", with: t).utf8), g, &mismatches)
                }
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) mismatches:\n\(mismatches.prefix(20).joined(separator: "\n"))")
    }

    @Test func everyShortByteStringInAStringGetsTheReferenceVerdict() {
        // All one- and two-byte contents and all \u00xx escapes, in a string field.
        let g = GuardedBuffer()
        var mismatches: [String] = []
        let base = Array(CanonicalJSONTests.minimalJSON.utf8)
        let at = base.firstRange(of: Array(#""id":"x""#.utf8))!.lowerBound + 6
        for a in 0...255 {
            var one = base; one[at] = UInt8(a)
            Self.check(one, g, &mismatches)
            for b in 0...255 {
                var two = base; two[at] = UInt8(a); two.insert(UInt8(b), at: at + 1)
                Self.check(two, g, &mismatches)
            }
        }
        for v in 0...0xFF {
            for hex in Set([String(format: "%04x", v), String(format: "%04X", v)]) {
                var b = base; b.replaceSubrange(at..<(at + 1), with: Array("\\u\(hex)".utf8))
                Self.check(b, g, &mismatches)
            }
        }
        // Three- and four-byte sequences around the UTF-8 boundaries.
        for lead: UInt8 in [0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5] {
            for c1: UInt8 in [0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0] {
                for c2: UInt8 in [0x7F, 0x80, 0xBF, 0xC0] {
                    var b = base; b.replaceSubrange(at..<(at + 1), with: [lead, c1, c2])
                    Self.check(b, g, &mismatches)
                    b.insert(0x80, at: at + 3)
                    Self.check(b, g, &mismatches)
                }
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) mismatches:\n\(mismatches.prefix(20).joined(separator: "\n"))")
    }

    // MARK: - (b) Known answers

    static func replacing(_ a: String, _ b: String, in s: String = CanonicalJSONTests.fullJSON) -> String {
        precondition(s.contains(a), a)
        return s.replacingOccurrences(of: a, with: b)
    }

    static func minimal(_ a: String, _ b: String) -> String { replacing(a, b, in: CanonicalJSONTests.minimalJSON) }

    static let policies1024 = "[" + (0..<1024).map { "\"p\($0)\"" }.joined(separator: ",") + "]"
    static let policies1025 = "[" + (0..<1025).map { "\"p\($0)\"" }.joined(separator: ",") + "]"

    static let accepted: [String] = [
        CanonicalJSONTests.fullJSON,
        CanonicalJSONTests.minimalJSON,
        minimal(#""outcome":"success","#, #""outcome":"success","pipeline":{},"#),
        minimal(#""outcome":"success","#, #""outcome":"success","reason":"","#),
        minimal(#""id":"x""#, #""id":"""#),
        minimal(#""id":"x""#, #""id":"\u0000\u001f\b\t\n\f\r\"\\/\#u{7F}é中😀\#u{10FFFF}\#u{FEFF}""#),
        minimal("1970-01-01T00:00:00Z", "0000-01-01T00:00:00Z"),
        minimal("1970-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z"),
        minimal("1970-01-01T00:00:00Z", "2000-02-29T00:00:00.0Z"),
        minimal("1970-01-01T00:00:00Z", "0000-02-29T12:00:00.000000000Z"),
        minimal("1970-01-01T00:00:00Z", "1969-12-31T23:59:59.5Z"),
        minimal(#""identity":{"kind":"unknown"}"#, #""identity":{"kind":"api_key","policies":\#(policies1024)}"#),
        replacing(#""port":8200"#, #""port":0"#),
        replacing(#""port":8200"#, #""port":65535"#),
        replacing(#""origin":{"ip":"10.0.0.1","port":8200}"#, #""origin":{"ip":""}"#),
        replacing(#""secret":{"environment":"prod","namespace":"team-a/","path":"secret/data/prod/db","store":"secret/"}"#,
                  #""secret":{"path":""}"#),
        replacing(#""trigger":"automated""#, #""trigger":"manual""#),
        replacing(#""attempt":2"#, #""attempt":0"#),
        replacing(#""attempt":2"#, #""attempt":1000000"#),
    ]

    static let rejected: [String] = [
        "", "{}", "[]", "null", " ",
        " " + CanonicalJSONTests.fullJSON,
        CanonicalJSONTests.fullJSON + "\n",
        CanonicalJSONTests.fullJSON + "{}",
        replacing(#"{"action""#, #"{ "action""#),
        replacing(#""outcome":"denied""#, #""index":3,"outcome":"denied""#),
        replacing(#""policies":["default","payments-read"]"#, #""policies":[]"#),
        replacing(#""policies":["default","payments-read"]"#, #""policies":null"#),
        replacing(#""scope":["repo:o/r","env:prod"]"#, #""scope":[]"#),
        replacing(#""outcome":"denied","#, #""outcome":"denied","pipeline":null,"#),
        replacing(#""reason":"permission denied""#, #""reason":null"#),
        minimal(#""identity":{"kind":"unknown"}"#, #""identity":{"kind":"api_key","policies":\#(policies1025)}"#),
        replacing(#""port":8200"#, #""port":65536"#),
        replacing(#""port":8200"#, #""port":08200"#),
        replacing(#""port":8200"#, #""port":00"#),
        replacing(#""port":8200"#, #""port":-0"#),
        replacing(#""port":8200"#, #""port":8200.0"#),
        replacing(#""attempt":2"#, #""attempt":1000001"#),
        replacing(#""attempt":2"#, #""attempt":02"#),
        replacing(#""attempt":2"#, #""attempt":-1"#),
        replacing(#""attempt":2"#, #""attempt":"2""#),
        replacing(#""attempt":2,"environment":"prod","#, #""environment":"prod","attempt":2,"#),
        minimal("1970-01-01T00:00:00Z", "2023-02-29T00:00:00Z"),
        minimal("1970-01-01T00:00:00Z", "1900-02-29T00:00:00Z"),
        minimal("1970-01-01T00:00:00Z", "2024-04-31T00:00:00Z"),
        minimal("1970-01-01T00:00:00Z", "2016-12-31T23:59:60Z"),
        minimal("1970-01-01T00:00:00Z", "2024-01-01T24:00:00Z"),
        minimal("1970-01-01T00:00:00Z", "1970-01-01t00:00:00Z"),
        minimal("1970-01-01T00:00:00Z", "1970-01-01 00:00:00Z"),
        minimal("1970-01-01T00:00:00Z", "1970-01-01T00:00:00z"),
        minimal("1970-01-01T00:00:00Z", "1970-01-01T00:00:00+00:00"),
        minimal("1970-01-01T00:00:00Z", "1970-01-01T00:00:00.Z"),
        minimal("1970-01-01T00:00:00Z", "1970-01-01T00:00:00.1234567890Z"),
        minimal("1970-01-01T00:00:00Z", "10000-01-01T00:00:00Z"),
        minimal("1970-01-01T00:00:00Z", #"1970-01-01T00:00:00\u005a"#),
        minimal(#""id":"x""#, #""id":"\u0041""#),
        minimal(#""id":"x""#, #""id":"\u001F""#),
        minimal(#""id":"x""#, #""id":"\u000a""#),
        minimal(#""id":"x""#, #""id":"\/""#),
        minimal(#""id":"x""#, #""id":"\u007f""#),
        minimal(#""id":"x""#, "\"id\":\"\t\""),
        minimal(#""id":"x""#, #""id":"\ud83d\ude00""#),
        minimal(#""action":"read""#, #""\u0061ction":"read""#),
        minimal(#""schema":"custos.event/v1""#, #""schema":"custos.event/v2""#),
        minimal(#""outcome":"success""#, #""outcome":"Success""#),
        minimal(#""kind":"unknown""#, #""kind":"robot""#),
        minimal(#""identity":{"kind":"unknown"}"#, #""identity":{}"#),
        minimal(#""source":{"instance":"i","kind":"k"}"#, #""source":{"instance":"i"}"#),
        minimal(#""source":{"instance":"i","kind":"k"}"#, #""source":{"kind":"k","instance":"i"}"#),
        minimal(#""outcome":"success","#, #""origin":{"port":1},"outcome":"success","#),
        minimal(#""schema":"custos.event/v1","#, #""schema":"custos.event/v1","secret":{},"#),
        minimal(#""action":"read","#, #""action":"read","action":"read","#),
        minimal(#""action":"read","#, ""),
    ]

    static func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

    @Test func knownAccepts() {
        let g = GuardedBuffer()
        for s in Self.accepted {
            #expect(Self.reference(Self.bytes(s)), "reference: \(s.prefix(200))")
            #expect(g.problem(Self.bytes(s)) == nil, "validator: \(s.prefix(200))")
        }
    }

    @Test func knownRejects() {
        let g = GuardedBuffer()
        // Raw invalid UTF-8 in a string: overlong, surrogate, beyond U+10FFFF.
        var raw: [[UInt8]] = Self.rejected.map(Self.bytes)
        for bad: [UInt8] in [[0xC0, 0xAF], [0xE0, 0x80, 0xAF], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xFF]] {
            var b = Self.bytes(CanonicalJSONTests.minimalJSON)
            b.replaceSubrange(b.firstRange(of: Self.bytes(#""id":"x""#))!.lowerBound + 6 ..< b.firstRange(of: Self.bytes(#""id":"x""#))!.lowerBound + 7, with: bad)
            raw.append(b)
        }
        for b in raw {
            #expect(!Self.reference(b), "reference: \(Self.text(b).prefix(200))")
            #expect(g.problem(b) != nil, "validator: \(Self.text(b).prefix(200))")
        }
    }

    @Test func problemsNameThePlaceNotTheContent() throws {
        let json = Self.minimal(#""id":"x""#, #""id":"hunter2\/""#)
        let p = try #require(CanonicalValidator.problem(Self.bytes(json)))
        #expect(!p.contains("hunter2"))
        #expect(p.contains("id"))
        #expect(p.contains("at byte \(Self.bytes(json).firstRange(of: Self.bytes(#"\/"#))!.lowerBound + 1)"))
        let missing = try #require(CanonicalValidator.problem(Self.bytes(Self.minimal(#""source":{"instance":"i","kind":"k"}"#, #""source":{"instance":"i"}"#))))
        #expect(missing.contains("source.kind") || missing.contains("kind"))
        #expect(CanonicalValidator.problem(UnsafeRawBufferPointer(start: nil, count: 0)) != nil)
    }
}
