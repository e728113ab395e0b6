import Foundation
import Testing
@testable import CustosCore

@Suite("Canonical JSON")
struct CanonicalJSONTests {

    static let fullEvent = AccessEvent(
        id: "0123456789abcdef0123456789abcdef",
        time: EventTime(rfc3339: "2024-02-29T12:34:56.789Z")!,
        source: .init(kind: "openbao", instance: "prod-1"),
        action: .read, outcome: .denied, reason: "permission denied",
        secret: .init(store: "secret/", path: "secret/data/prod/db", environment: "prod", namespace: "team-a/"),
        identity: .init(id: "ent-1", name: "userpass-alice", kind: .human, method: "userpass", policies: ["default", "payments-read"]),
        origin: .init(ip: "10.0.0.1", port: 8200),
        requestID: "req-1",
        pipeline: .init(provider: "github", repository: "o/r", name: "deploy", id: "o/r/.github/workflows/deploy.yml@refs/heads/main",
                        runID: "42", attempt: 2, job: "build", step: "fetch", environment: "prod", trigger: .automated,
                        triggerIdentity: "octocat", runnerIP: "20.1.2.3", scope: ["repo:o/r", "env:prod"]))

    // Written by hand from the rules: keys in byte order at every level, no whitespace.
    static let fullJSON = #"{"action":"read","id":"0123456789abcdef0123456789abcdef","identity":{"id":"ent-1","kind":"human","method":"userpass","name":"userpass-alice","policies":["default","payments-read"]},"origin":{"ip":"10.0.0.1","port":8200},"outcome":"denied","pipeline":{"attempt":2,"environment":"prod","id":"o/r/.github/workflows/deploy.yml@refs/heads/main","job":"build","name":"deploy","provider":"github","repository":"o/r","run_id":"42","runner_ip":"20.1.2.3","scope":["repo:o/r","env:prod"],"step":"fetch","trigger":"automated","trigger_identity":"octocat"},"reason":"permission denied","request_id":"req-1","schema":"custos.event/v1","secret":{"environment":"prod","namespace":"team-a/","path":"secret/data/prod/db","store":"secret/"},"source":{"instance":"prod-1","kind":"openbao"},"time":"2024-02-29T12:34:56.789Z"}"#

    static let minimalEvent = AccessEvent(id: "x", time: EventTime(seconds: 0), source: .init(kind: "k", instance: "i"),
                                          action: .read, outcome: .success, identity: .init(kind: .unknown))
    static let minimalJSON = #"{"action":"read","id":"x","identity":{"kind":"unknown"},"outcome":"success","schema":"custos.event/v1","source":{"instance":"i","kind":"k"},"time":"1970-01-01T00:00:00Z"}"#

    static func text(_ e: AccessEvent, index: UInt64? = nil) -> String { String(decoding: e.canonicalJSON(index: index), as: UTF8.self) }

    static func decode(_ s: String, canonical: Bool = true) throws -> AccessEvent {
        try AccessEvent.decode(Array(s.utf8), requireCanonical: canonical)
    }

    @Test func knownAnswerFullEvent() throws {
        #expect(Self.text(Self.fullEvent) == Self.fullJSON)
        #expect(try Self.decode(Self.fullJSON) == Self.fullEvent)
        // With an index: a top-level member between identity and origin.
        let withIndex = Self.fullJSON.replacingOccurrences(of: #"]},"origin""#, with: #"]},"index":7,"origin""#)
        #expect(Self.text(Self.fullEvent, index: 7) == withIndex)
        // Decoding reads past `index`, but it is not part of the canonical event.
        #expect(try Self.decode(withIndex, canonical: false) == Self.fullEvent)
        #expect(throws: EventCodingError.self) { try Self.decode(withIndex) }
        // Keys really are sorted at every level (independent check through Foundation).
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(Self.fullEvent.canonicalJSON())) as? [String: Any])
        #expect(obj.count == 12)
    }

    @Test func knownAnswerMinimalEvent() throws {
        #expect(Self.text(Self.minimalEvent) == Self.minimalJSON)
        #expect(try Self.decode(Self.minimalJSON) == Self.minimalEvent)
        // Empty arrays are omitted; empty strings are values, not absences.
        var e = Self.minimalEvent
        e.pipeline = .init()
        e.identity.policies = []
        #expect(Self.text(e) == Self.minimalJSON.replacingOccurrences(of: #""outcome":"success","#, with: #""outcome":"success","pipeline":{},"#))
        e.pipeline = nil
        e.reason = ""
        #expect(Self.text(e).contains(#""reason":"","#))
        #expect(try Self.decode(Self.text(e)) == e)
    }

    @Test func stringEscaping() throws {
        // Every code point below U+0020, quote, backslash, DEL, slash, non-ASCII and an emoji.
        var raw = ""
        var expected = ""
        for c in 0..<0x20 {
            raw.unicodeScalars.append(Unicode.Scalar(UInt8(c)))
            switch c {
            case 0x08: expected += "\\b"
            case 0x09: expected += "\\t"
            case 0x0A: expected += "\\n"
            case 0x0C: expected += "\\f"
            case 0x0D: expected += "\\r"
            default:
                let hex = "0123456789abcdef"
                let hi = hex[hex.index(hex.startIndex, offsetBy: c >> 4)]
                let lo = hex[hex.index(hex.startIndex, offsetBy: c & 15)]
                expected += "\\u00\(hi)\(lo)"
            }
        }
        raw += "\"\\\u{7F}/é中😀\u{2028}\u{FEFF}"
        expected += "\\\"\\\\\u{7F}/é中😀\u{2028}\u{FEFF}"
        var e = Self.minimalEvent
        e.reason = raw
        let json = Self.text(e)
        #expect(json == Self.minimalJSON.replacingOccurrences(of: #""outcome":"success","#, with: #""outcome":"success","reason":"\#(expected)","#))
        // Spot checks written out in full.
        #expect(json.contains(#""reason":"\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\b\t\n\u000b\f\r\u000e\u000f\u0010"#))
        #expect(json.contains(#"\u001e\u001f\"\\"#))
        #expect(!json.contains(#"\/"#))
        #expect(!json.contains("\\u007f"))
        #expect(try Self.decode(json) == e)
        // Foundation reads the same string back.
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(obj["reason"] as? String == raw)
    }

    @Test func integers() {
        var w = CanonicalWriter()
        w.beginArray()
        for v in [0, 7, -1, 10, 65535, Int.max, Int.min] { w.comma(); w.int(v) }
        w.endArray()
        #expect(String(decoding: w.bytes, as: UTF8.self) == "[0,7,-1,10,65535,9223372036854775807,-9223372036854775808]")
    }

    // MARK: - Strict decoding

    static func replacing(_ a: String, _ b: String, in s: String = fullJSON) -> String {
        precondition(s.contains(a), a)
        return s.replacingOccurrences(of: a, with: b)
    }

    @Test(arguments: [
        ("space after comma", CanonicalJSONTests.replacing(#","id""#, #", "id""#)),
        ("space after colon", CanonicalJSONTests.replacing(#""action":"#, #""action": "#)),
        ("leading space", " " + CanonicalJSONTests.fullJSON),
        ("trailing newline", CanonicalJSONTests.fullJSON + "\n"),
        ("reordered keys", CanonicalJSONTests.replacing(#"{"action":"read","id":"0123456789abcdef0123456789abcdef","#, #"{"id":"0123456789abcdef0123456789abcdef","action":"read","#)),
        ("reordered nested keys", CanonicalJSONTests.replacing(#"{"instance":"prod-1","kind":"openbao"}"#, #"{"kind":"openbao","instance":"prod-1"}"#)),
        ("escaped slash", CanonicalJSONTests.replacing(#""path":"secret/data/prod/db""#, #""path":"secret\/data/prod/db""#)),
        ("\\u0072 for a plain char", CanonicalJSONTests.replacing(#""action":"read""#, #""action":"\u0072ead""#)),
        ("non-ASCII escaped", CanonicalJSONTests.replacing(#""name":"userpass-alice""#, #""name":"userpass-\u00e9""#)),
        ("time with offset", CanonicalJSONTests.replacing(#"12:34:56.789Z"#, #"12:34:56.789+00:00"#)),
        ("lower-case z", CanonicalJSONTests.replacing(#"12:34:56.789Z"#, #"12:34:56.789z"#)),
        ("empty policies array", CanonicalJSONTests.replacing(#","policies":["default","payments-read"]"#, #","policies":[]"#)),
        ("null policies", CanonicalJSONTests.replacing(#","policies":["default","payments-read"]"#, #","policies":null"#)),
        ("empty scope array", CanonicalJSONTests.replacing(#""scope":["repo:o/r","env:prod"]"#, #""scope":[]"#)),
        ("port with plus", CanonicalJSONTests.replacing(#""port":8200"#, #""port":+8200"#)),
        ("port with exponent", CanonicalJSONTests.replacing(#""port":8200"#, #""port":82e2"#)),
        ("index", CanonicalJSONTests.replacing(#""outcome":"denied""#, #""index":1,"outcome":"denied""#)),
    ])
    func canonicalOnlyRejects(_ name: String, _ json: String) throws {
        #expect(throws: EventCodingError.self, "\(name)") { try Self.decode(json) }
    }

    @Test func nonCanonicalButValidFormsDecodeToTheSameEvent() throws {
        for json in [Self.replacing(#","id""#, #", "id""#), " " + Self.fullJSON + "\n",
                     Self.replacing(#""path":"secret/data/prod/db""#, #""path":"secret\/data/prod/db""#),
                     Self.replacing(#""action":"read""#, #""action":"\u0072ead""#),
                     Self.replacing(#"{"instance":"prod-1","kind":"openbao"}"#, #"{"kind":"openbao","instance":"prod-1"}"#)] {
            #expect(try Self.decode(json, canonical: false) == Self.fullEvent, "\(json)")
        }
        // Upper-case hex in an escape: valid JSON, not canonical.
        var e = Self.minimalEvent
        e.reason = "a\u{1F}b"
        let lower = Self.text(e)
        #expect(lower.contains(#"a\u001fb"#))
        let upper = lower.replacingOccurrences(of: #"\u001f"#, with: #"\u001F"#)
        #expect(try Self.decode(upper, canonical: false) == e)
        #expect(throws: EventCodingError.self) { try Self.decode(upper) }
        // A needless \u escape of a control character that has a short form.
        let long = lower.replacingOccurrences(of: #""reason":"a\u001fb""#, with: #""reason":"\u000a""#)
        #expect(throws: EventCodingError.self) { try Self.decode(long) }
        e.reason = "\n"
        #expect(try Self.decode(long, canonical: false) == e)
    }

    @Test(arguments: [
        ("explicit null", CanonicalJSONTests.replacing(#""reason":"permission denied""#, #""reason":null"#)),
        ("null secret", CanonicalJSONTests.replacing(#""request_id":"req-1","#, #""request_id":"req-1","secret":null,"#)),
        ("duplicate key", CanonicalJSONTests.replacing(#""action":"read","#, #""action":"read","action":"read","#)),
        ("duplicate nested key", CanonicalJSONTests.replacing(#"{"instance":"prod-1","#, #"{"instance":"prod-1","instance":"prod-1","#)),
        ("duplicate identity key", CanonicalJSONTests.replacing(#""kind":"human","#, #""kind":"human","kind":"human","#)),
        ("duplicate origin key", CanonicalJSONTests.replacing(#"{"ip":"10.0.0.1","#, #"{"ip":"10.0.0.1","ip":"10.0.0.1","#)),
        ("duplicate secret key", CanonicalJSONTests.replacing(#""path":"secret/data/prod/db","#, #""path":"secret/data/prod/db","path":"x","#)),
        ("duplicate pipeline key", CanonicalJSONTests.replacing(#""job":"build","#, #""job":"build","job":"build","#)),
        ("unknown key", CanonicalJSONTests.replacing(#""time":"#, #""tim":"x","time":"#)),
        ("unknown key with escape", CanonicalJSONTests.replacing(#""time":"#, #""\u0074":"x","time":"#)),
        ("unknown nested key", CanonicalJSONTests.replacing(#""kind":"human","#, #""kind":"human","mood":"ok","#)),
        ("unknown source key", CanonicalJSONTests.replacing(#""kind":"openbao""#, #""kind":"openbao","x":"y""#)),
        ("wrong schema", CanonicalJSONTests.replacing("custos.event/v1", "custos.event/v2")),
        ("schema missing", CanonicalJSONTests.replacing(#""schema":"custos.event/v1","#, "")),
        ("id missing", CanonicalJSONTests.replacing(#""id":"0123456789abcdef0123456789abcdef","#, "")),
        ("time missing", CanonicalJSONTests.replacing(#","time":"2024-02-29T12:34:56.789Z""#, "")),
        ("action missing", CanonicalJSONTests.replacing(#""action":"read","#, "")),
        ("outcome missing", CanonicalJSONTests.replacing(#""outcome":"denied","#, "")),
        ("source missing", CanonicalJSONTests.replacing(#""source":{"instance":"prod-1","kind":"openbao"},"#, "")),
        ("identity missing", CanonicalJSONTests.replacing(#""identity":{"id":"ent-1","kind":"human","method":"userpass","name":"userpass-alice","policies":["default","payments-read"]},"#, "")),
        ("identity kind missing", CanonicalJSONTests.replacing(#""kind":"human","#, "")),
        ("source kind missing", CanonicalJSONTests.replacing(#","kind":"openbao""#, "")),
        ("secret path missing", CanonicalJSONTests.replacing(#""path":"secret/data/prod/db","#, "")),
        ("origin ip missing", CanonicalJSONTests.replacing(#""ip":"10.0.0.1","#, "")),
        ("unknown outcome", CanonicalJSONTests.replacing(#""outcome":"denied""#, #""outcome":"maybe""#)),
        ("unknown kind", CanonicalJSONTests.replacing(#""kind":"human""#, #""kind":"robot""#)),
        ("unknown trigger", CanonicalJSONTests.replacing(#""trigger":"automated""#, #""trigger":"cron""#)),
        ("port out of range", CanonicalJSONTests.replacing(#""port":8200"#, #""port":65536"#)),
        ("negative port", CanonicalJSONTests.replacing(#""port":8200"#, #""port":-1"#)),
        ("port leading zero", CanonicalJSONTests.replacing(#""port":8200"#, #""port":08200"#)),
        ("port fraction", CanonicalJSONTests.replacing(#""port":8200"#, #""port":8200.0"#)),
        ("port string", CanonicalJSONTests.replacing(#""port":8200"#, #""port":"8200""#)),
        ("invalid time", CanonicalJSONTests.replacing("2024-02-29T12", "2023-02-29T12")),
        ("time not a string", CanonicalJSONTests.replacing(#""time":"2024-02-29T12:34:56.789Z""#, #""time":1709210096"#)),
        ("policies not strings", CanonicalJSONTests.replacing(#"["default","payments-read"]"#, "[1]")),
        ("trailing data", CanonicalJSONTests.fullJSON + "{}"),
        ("trailing comma", CanonicalJSONTests.replacing(#""kind":"openbao"}"#, #""kind":"openbao",}"#)),
        ("array", "[" + CanonicalJSONTests.fullJSON + "]"),
        ("empty", ""),
        ("unpaired surrogate", CanonicalJSONTests.replacing(#""name":"userpass-alice""#, #""name":"\ud800""#)),
    ])
    func alwaysRejects(_ name: String, _ json: String) {
        #expect(throws: EventCodingError.self, "\(name) (canonical)") { try Self.decode(json) }
        #expect(throws: EventCodingError.self, "\(name) (lenient)") { try Self.decode(json, canonical: false) }
    }

    @Test func errorsDoNotQuoteTheInput() {
        let canary = "CANARY-CANON-7"
        for json in [Self.replacing(#""outcome":"denied""#, #""outcome":"\#(canary)""#),
                     Self.replacing(#""time":"#, #""\#(canary)":1,"time":"#),
                     Self.replacing("custos.event/v1", canary)] {
            do { _ = try Self.decode(json); Issue.record("accepted") }
            catch { #expect(!"\(error)".contains(canary)) }
        }
    }

    // MARK: - Round trip over random events

    static let alphabet: [String] = ["a", "Z", "0", " ", "/", "\"", "\\", "\u{0}", "\u{1}", "\u{8}", "\t", "\n", "\u{B}", "\u{C}",
                                     "\r", "\u{1F}", "\u{7F}", "\u{80}", "é", "ß", "中", "😀", "👩‍💻", "\u{2028}", "\u{FEFF}",
                                     "\u{FFFD}", "\u{10FFFF}", "\u{301}", "{", "}", "[", "]", ",", ":"]

    static func randomString(_ rng: inout SeededRNG, max: Int = 12) -> String {
        var s = ""
        for _ in 0..<Int.random(in: 0...max, using: &rng) { s += alphabet.randomElement(using: &rng)! }
        return s
    }

    static func maybe<T>(_ rng: inout SeededRNG, _ make: (inout SeededRNG) -> T) -> T? {
        Bool.random(using: &rng) ? make(&rng) : nil
    }

    static func randomEvent(_ rng: inout SeededRNG) -> AccessEvent {
        let digits = UInt8.random(in: 0...9, using: &rng)
        var nanos = Int32.random(in: 0..<1_000_000_000, using: &rng)
        var scale: Int32 = 1
        for _ in 0..<(9 - Int(digits)) { scale *= 10 }
        nanos = nanos / scale * scale
        // Any instant from 0000-01-01 to 9999-12-31 UTC.
        let seconds = Int64.random(in: -62_167_219_200..<253_402_300_800, using: &rng)
        let time = EventTime(seconds: seconds, nanos: nanos, digits: digits)
        func str(_ rng: inout SeededRNG) -> String { randomString(&rng) }
        func arr(_ rng: inout SeededRNG) -> [String] { (0..<Int.random(in: 0...3, using: &rng)).map { _ in randomString(&rng) } }
        return AccessEvent(
            id: str(&rng), time: time, source: .init(kind: str(&rng), instance: str(&rng)),
            action: Action(str(&rng)), outcome: Outcome.allCases.randomElement(using: &rng)!,
            reason: maybe(&rng, str),
            secret: maybe(&rng) { rng in .init(store: maybe(&rng, str), path: str(&rng), environment: maybe(&rng, str), namespace: maybe(&rng, str)) },
            identity: .init(id: maybe(&rng, str), name: maybe(&rng, str), kind: IdentityKind.allCases.randomElement(using: &rng)!,
                            method: maybe(&rng, str), policies: arr(&rng)),
            origin: maybe(&rng) { rng in .init(ip: str(&rng), port: maybe(&rng) { rng in Int.random(in: 0...65535, using: &rng) }) },
            requestID: maybe(&rng, str),
            pipeline: maybe(&rng) { rng in
                .init(provider: maybe(&rng, str), repository: maybe(&rng, str), name: maybe(&rng, str), id: maybe(&rng, str),
                      runID: maybe(&rng, str), attempt: maybe(&rng) { rng in Int.random(in: 0...1_000_000, using: &rng) }, job: maybe(&rng, str),
                      step: maybe(&rng, str), environment: maybe(&rng, str), trigger: maybe(&rng) { rng in AccessEvent.Pipeline.Trigger.allCases.randomElement(using: &rng)! },
                      triggerIdentity: maybe(&rng, str), runnerIP: maybe(&rng, str), scope: arr(&rng))
            })
    }

    @Test func randomEventsRoundTrip() throws {
        var rng = SeededRNG(seed: 20_240_229)
        for _ in 0..<1_000 {
            let e = Self.randomEvent(&rng)
            let bytes = e.canonicalJSON()
            let back = try AccessEvent.decode(bytes, requireCanonical: true)
            #expect(back == e)
            #expect(back.canonicalJSON() == bytes)
            // Independent reading: Foundation parses it, with the same strings.
            // (Foundation on Linux drops some U+FEFF from strings: compared without them.)
            func noBOM(_ s: String?) -> String? { s.map { String(String.UnicodeScalarView($0.unicodeScalars.filter { $0 != "\u{FEFF}" })) } }
            let obj = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
            #expect(noBOM(obj["id"] as? String) == noBOM(e.id))
            #expect(noBOM(obj["reason"] as? String) == noBOM(e.reason))
            let policies = (obj["identity"] as? [String: Any])?["policies"] as? [String]
            #expect(policies?.map { noBOM($0)! } == (e.identity.policies.isEmpty ? nil : e.identity.policies.map { noBOM($0)! }))
            #expect(obj["time"] as? String == e.time.description)
            // Keys in ascending byte order, no whitespace outside strings: check the top level.
            let keys = obj.keys.map { Array($0.utf8) }.sorted { $0.lexicographicallyPrecedes($1) }
            var pos = 0
            for k in keys {
                guard let r = Self.find(Array("\"".utf8) + k + Array("\":".utf8), in: bytes, from: pos) else {
                    Issue.record("key \(String(decoding: k, as: UTF8.self)) out of order"); break
                }
                pos = r
            }
        }
    }

    static func find(_ needle: [UInt8], in hay: [UInt8], from: Int) -> Int? {
        guard hay.count >= needle.count, from <= hay.count - needle.count else { return nil }
        for i in from...(hay.count - needle.count) where hay[i] == needle[0] && hay[i..<(i + needle.count)].elementsEqual(needle) { return i + needle.count }
        return nil
    }
}
