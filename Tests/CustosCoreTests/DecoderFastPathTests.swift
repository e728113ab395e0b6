import Foundation
import Testing
@testable import CustosCore

/// The decoder's fast path (byte ranges, canonical JSON written straight into an
/// `EventBatch`) must give exactly what the `String`-based reference path gives, for every
/// line: the same events, rejections and ignored lines, and entries byte-identical to
/// `AccessEvent.canonicalJSON()` with index columns equal to the event's fields.
@Suite("Decoder fast path = reference path")
struct DecoderFastPathTests {

    /// One decoded line, comparable.
    enum Result: Equatable, CustomStringConvertible {
        case event(AccessEvent, line: Int)
        case rejected(DecodeRejection)
        case ignored(line: Int, reason: String)
        init(_ o: DecodeOutput) {
            switch o {
            case .event(let e, let line): self = .event(e, line: line)
            case .rejected(let r): self = .rejected(r)
            case .ignored(let line, let reason): self = .ignored(line: line, reason: reason)
            }
        }
        var description: String {
            switch self {
            case .event(let e, let line): "\(line): \(String(decoding: e.canonicalJSON(), as: UTF8.self))"
            case .rejected(let r): "rejected \(r)"
            case .ignored(let line, let reason): "\(line): ignored \(reason)"
            }
        }
    }

    struct Run {
        var results: [Result] = []
        var batch = EventBatch()
        var other: [Result] = []
        var fastEvents = 0
    }

    /// Decodes `lines` three ways: reference only, fast path into outputs, fast path into a batch.
    static func decode(_ lines: [[UInt8]], maxPending: Int = 50_000) -> (reference: [Result], fast: [Result], batch: EventBatch, batchOther: [Result]) {
        var ref = VaultAuditDecoder(sourceKind: "openbao", instance: "fast\"path", maxPending: maxPending)
        ref.referenceOnly = true
        var fast = VaultAuditDecoder(sourceKind: "openbao", instance: "fast\"path", maxPending: maxPending)
        var toBatch = VaultAuditDecoder(sourceKind: "openbao", instance: "fast\"path", maxPending: maxPending)
        var a: [DecodeOutput] = [], b: [DecodeOutput] = [], c: [DecodeOutput] = []
        var batch = EventBatch()
        for (i, l) in lines.enumerated() {
            ref.decode(line: l, lineNumber: i + 1, into: &a)
            fast.decode(line: l, lineNumber: i + 1, into: &b)
            l.withUnsafeBytes { toBatch.decode(line: $0, lineNumber: i + 1, into: &batch, other: &c) }
        }
        ref.finish(into: &a)
        fast.finish(into: &b)
        toBatch.finish(into: &batch, other: &c)
        return (a.map(Result.init), b.map(Result.init), batch, c.map(Result.init))
    }

    /// Checks the three ways agree; returns how many events there were.
    @discardableResult
    static func check(_ lines: [[UInt8]], maxPending: Int = 50_000, sourceLocation: SourceLocation = #_sourceLocation) -> Int {
        let (reference, fast, batch, other) = decode(lines, maxPending: maxPending)
        #expect(reference.count == fast.count, sourceLocation: sourceLocation)
        for (r, f) in zip(reference, fast) where r != f {
            Issue.record("fast path differs:\n  reference \(r)\n  fast      \(f)", sourceLocation: sourceLocation)
            break
        }
        var events: [AccessEvent] = []
        var nonEvents: [Result] = []
        for r in reference {
            if case .event(let e, _) = r { events.append(e) } else { nonEvents.append(r) }
        }
        #expect(other == nonEvents, sourceLocation: sourceLocation)
        #expect(batch.count == events.count, sourceLocation: sourceLocation)
        for (i, e) in events.enumerated() where i < batch.count {
            let entry = Array(batch.entry(i))
            guard entry == e.canonicalJSON() else {
                Issue.record("batch entry \(i) differs:\n  \(String(decoding: e.canonicalJSON(), as: UTF8.self))\n  \(String(decoding: entry, as: UTF8.self))",
                             sourceLocation: sourceLocation)
                break
            }
            let row = batch.rows[i]
            let key = EventKeyWords.of(id: e.id)
            #expect(key.0 == row.keyHi && key.1 == row.keyLo, sourceLocation: sourceLocation)
            #expect(row.timeNanos == e.time.unixNanos, sourceLocation: sourceLocation)
            #expect(batch.string(i, \.id) == e.id, sourceLocation: sourceLocation)
            #expect(batch.string(i, \.action) == e.action.rawValue, sourceLocation: sourceLocation)
            #expect(batch.string(i, \.outcome) == e.outcome.rawValue, sourceLocation: sourceLocation)
            #expect(batch.string(i, \.sourceKind) == e.source.kind, sourceLocation: sourceLocation)
            #expect(batch.string(i, \.sourceInstance) == e.source.instance, sourceLocation: sourceLocation)
            #expect(batch.string(i, \.secretPath) == e.secret?.path, sourceLocation: sourceLocation)
            #expect(batch.string(i, \.environment) == e.secret?.environment, sourceLocation: sourceLocation)
            #expect(batch.string(i, \.identityID) == e.identity.id, sourceLocation: sourceLocation)
            #expect(batch.string(i, \.identityName) == e.identity.name, sourceLocation: sourceLocation)
            #expect(batch.string(i, \.identityKind) == e.identity.kind.rawValue, sourceLocation: sourceLocation)
            #expect(batch.string(i, \.originIP) == e.origin?.ip, sourceLocation: sourceLocation)
        }
        return events.count
    }

    /// How many of `lines`' events the fast path builds (the rest take the reference path).
    static func fastShare(_ lines: [[UInt8]]) -> (fast: Int, all: Int) {
        var d = VaultAuditDecoder(sourceKind: "openbao", instance: "x")
        var sink = CountingSink()
        for (i, l) in lines.enumerated() { l.withUnsafeBytes { d.decode(line: $0, lineNumber: i + 1, sink: &sink) } }
        d.finish(sink: &sink)
        return (sink.drafts, sink.drafts + sink.events)
    }

    struct CountingSink: DecodeSink {
        var drafts = 0, events = 0
        mutating func output(_ o: DecodeOutput) {}
        mutating func event(_ e: AccessEvent, line: Int) { events += 1 }
        mutating func draft(_ d: VaultAuditDecoder.Draft, _ s: VaultAuditDecoder.DraftSource, line: Int) { drafts += 1 }
    }

    // MARK: - Corpora

    static func fixtureLines() throws -> [[UInt8]] {
        try Fixture.lines("openbao/audit-2.7.2.log") + Fixture.lines("sources/vault-1.json") + Fixture.lines("sources/vault-2.json")
    }

    /// Records varied in everything the fast path looks at, as request/response pairs (and
    /// some unanswered requests and lone responses).
    static func variety(count: Int, seed: UInt64) -> [[UInt8]] {
        var rng = SeededRNG(seed: seed)
        func q(_ s: String) -> String {   // a JSON string, escaped in one of several ways
            var out = "\""
            for u in s.unicodeScalars {
                switch u {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "/": out += rng.chance(0.1) ? "\\/" : "/"
                case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
                case _ where u.value >= 0x80 && rng.chance(0.3):
                    for cu in String(u).utf16 { out += String(format: "\\u%04X", cu) }
                case _ where u.isASCII && rng.chance(0.02): out += String(format: "\\u%04x", u.value)
                default: out.unicodeScalars.append(u)
                }
            }
            return out + "\""
        }
        let names = ["token-app", "root", "approle", "userpass-alice", "oidc-bob", "ldap-x", "kubernetes-ns-sa", "jwt-ci",
                     "github-actions-x", "gitlab", "token", "cert", "aws-x", "-lead", "--", "a--b", "", "okta", "radius-1",
                     "saml-s", "github-u", "caf\u{e9}-x", "e\u{301}-x", "t\u{2212}x", "\u{212A}ey-x", "x\r\ny"]
        let policySets = [[], ["default"], ["root"], ["default", "app"], ["a", "b", "a"], ["x\"y"], ["p\u{e9}"], ["e\u{301}", "\u{e9}"]]
        let paths = ["secret/data/prod/app/db", "secret/data/Production/x", "kv/dev/z", "kv/QA/q", "kv/stg", "secret",
                     "/lead/prod", "//", "/", "", "a//b", "secret/data/caf\u{e9}/prod", "secret/e\u{301}/x", "secret/x\u{301}",
                     "secret/ctl\u{1}/dev", "secret/q\"uote", "secret/back\\slash", "secret/nl\nx", "sys/mounts", "auth/token/lookup/t",
                     "auth/userpass/login/a", "sys/internal/ui/mounts/x", "sys/audit/test", "auth/x", "sysx/y", "authx/y",
                     "sys", "auth", "secret/\u{212A}", "x\r\n/y", String(repeating: "p", count: 4000) + "/prod"]
        let ops = ["read", "list", "create", "update", "patch", "delete", "help", "renew", "", "weird", "r\u{e9}ad", "READ"]
        let errors: [String?] = [nil, nil, nil, "", "permission denied", "1 error occurred:\n\t* permission denied\n\n", "PERMISSION DENIED",
                                 "invalid token", "bad token", "missing client token", "unsupported path", "no handler for route",
                                 "unsupported operation", "invalid request", "rate limit", "quota exceeded", "not found",
                                 "no value found", "invalid credentials", "invalid username or password", "invalid role or secret id",
                                 "invalid secret id", "invalid role id", "internal error", "other", "permission d\u{e9}nied",
                                 "Permission denied\u{301}", "\u{130}NTERNAL ERROR", "permission denied\r\n"]
        let addresses: [String?] = [nil, "10.0.0.1", "10.0.0.1:8200", "[::1]:8", "::1", "fe80::1%eth0", "256.0.0.1", "1.2.3",
                                    "host:1", "", "1.2.3.4:99999", "01.2.3.4", "0.0.0.0"]
        let times = ["2026-01-02T03:04:05.123456789Z", "2026-01-02T03:04:05Z", "2026-01-02T03:04:05.1Z", "2026-01-02 03:04:05Z",
                     "2026-01-02T03:04:05+02:00", "2026-01-02t03:04:05z", "2026-12-31T23:59:60Z", "2026-02-30T00:00:00Z", "x"]
        var lines: [[UInt8]] = []
        for i in 0..<count {
            var auth: [String] = []
            let r = rng.int(0...99)
            if r < 5 {
                auth = [#""token_type":"default""#]
            } else if r < 8 {
                auth = []
            } else {
                if rng.chance(0.8) { auth.append(#""accessor":"# + q(rng.pick(["hmac-sha256:acc", "", "acc\u{e9}"]))) }
                if rng.chance(0.9) { auth.append(#""display_name":"# + q(rng.pick(names))) }
                if rng.chance(0.7) { auth.append(#""policies":["# + rng.pick(policySets).map(q).joined(separator: ",") + "]") }
                if rng.chance(0.5) { auth.append(#""token_policies":["# + rng.pick(policySets).map(q).joined(separator: ",") + "]") }
                if rng.chance(0.3) { auth.append(#""identity_policies":["# + rng.pick(policySets).map(q).joined(separator: ",") + "]") }
                if rng.chance(0.1) { auth.append(#""policies":null"#) }
                if rng.chance(0.6) { auth.append(#""entity_id":"# + q(rng.pick(["ent-1", "", "e\u{1}"]))) }
                if rng.chance(0.4) {
                    var m: [String] = []
                    // CI claims (repository, workflow, run_id as strings) send a record to the reference
                    // path, which builds its pipeline context: rarer, so both paths stay exercised.
                    // repository_owner is a pipeline hint but no claim: the fast path keeps it.
                    for k in ["role", "role_name", "repository", "workflow", "run_id", "username", "r\\u006fle", "repository_owner"]
                    where rng.chance(["repository", "workflow", "run_id"].contains(k) ? 0.03 : 0.25) {
                        m.append(q(k) + ":" + rng.pick([q("ci-runner"), q("Pipeline"), q("svc"), q("GITHUB"), q("GitLab"),
                                                         q("r\u{e9}le"), "5", "null", "true", "[1]"]))
                    }
                    auth.append(#""metadata":{"# + m.joined(separator: ",") + "}")
                }
                if rng.chance(0.7) { auth.append(#""policy_results":{"allowed":"# + (rng.chance(0.85) ? "true" : "false") + "}") }
                if rng.chance(0.2) { auth.append(#""client_token":"hmac-sha256:00""#) }
            }
            var req: [String] = []
            let ridChoice = rng.int(0...99)
            let rid: String? = ridChoice < 4 ? nil : ridChoice < 7 ? "" : ridChoice < 10 ? "dup-\(rng.int(0...20))" : "req-\(seed)-\(i)"
            if let rid { req.append(#""id":"# + q(rid)) }
            if rng.chance(0.95) { req.append(#""operation":"# + q(rng.pick(ops))) }
            if rng.chance(0.8) { req.append(#""mount_point":"# + q(rng.pick(["secret/", "", "kv/", "m\u{e9}/", "a\"b/"]))) }
            if rng.chance(0.5) { req.append(#""mount_type":"# + q(rng.pick(["kv", "userpass", "jwt", ""]))) }
            if rng.chance(0.97) { req.append(#""path":"# + q(rng.pick(paths))) }
            if rng.chance(0.4) { req.append(#""namespace":{"id":"n","path":"# + q(rng.pick(["team-a/", "", "t\u{e9}am/"])) + "}") }
            if let a = rng.pick(addresses) { req.append(#""remote_address":"# + q(a)) }
            if rng.chance(0.5) { req.append(#""remote_port":\#(rng.int(0...65535))"#) }
            if rng.chance(0.3) { req.append(#""data":{"password":"secret-value","n":5}"#) }
            var top = [#""time":"# + q(rng.chance(0.9) ? times[0] : rng.pick(times))]
            let authJSON = auth.isEmpty && rng.chance(0.5) ? "null" : "{" + auth.joined(separator: ",") + "}"
            top.append(#""auth":"# + authJSON)
            top.append(#""request":{"# + req.joined(separator: ",") + "}")
            if let e = rng.pick(errors) { top.append(#""error":"# + q(e)) }
            let request = "{" + [top[0], #""type":"request""#] .joined(separator: ",") + "," + top.dropFirst().joined(separator: ",") + "}"
            var response = "{" + [top[0], #""type":"response""#].joined(separator: ",") + "," + top.dropFirst().joined(separator: ",")
            if rng.chance(0.3) {
                response += #","response":{"mount_type":"# + q(rng.pick(["userpass", "jwt", ""])) + #","auth":{"display_name":"# + q(rng.pick(names)) + "}}"
            }
            response += "}"
            switch rng.int(0...19) {
            case 0: lines.append(Array(request.utf8))
            case 1: lines.append(Array(response.utf8))
            default: lines.append(Array(request.utf8)); lines.append(Array(response.utf8))
            }
        }
        return lines
    }

    /// The decoder fuzz test's mutations.
    static func mutate(_ seeds: [[UInt8]], count: Int, seed: UInt64) -> [[UInt8]] {
        var rng = SeededRNG(seed: seed)
        let inserts: [[UInt8]] = [[0x22], [0x7B], [0x7D], [0x5C], [0x5B], [0x5D], [0x2C], [0x3A], Array("\\u".utf8),
                                  Array("\\uD800".utf8), [0x00], [0xFF], [0xC3], Array("null".utf8), Array("-0".utf8), [0x01], [0x7F]]
        var out: [[UInt8]] = []
        for _ in 0..<count {
            var l = rng.pick(seeds)
            for _ in 0..<rng.int(1...3) {
                guard !l.isEmpty else { break }
                switch rng.int(0...99) {
                case 0..<35: l[rng.int(0...(l.count - 1))] ^= UInt8(1 << rng.int(0...7))
                case 35..<50: l[rng.int(0...(l.count - 1))] = UInt8(rng.int(0...255))
                case 50..<60: l.removeLast(rng.int(1...l.count))
                case 60..<85: l.insert(contentsOf: rng.pick(inserts), at: rng.int(0...l.count))
                case 85..<90: l.insert(contentsOf: [UInt8](repeating: rng.chance(0.5) ? 0x5B : 0x7B, count: rng.int(60...70)), at: rng.int(0...l.count))
                default:
                    let a = rng.int(0...(l.count - 1))
                    l.removeSubrange(a..<min(l.count, a + rng.int(1...20)))
                }
            }
            out.append(l)
        }
        return out
    }

    // MARK: - Tests

    @Test func fixtures() throws {
        #expect(Self.check(try Self.fixtureLines()) > 20)
    }

    @Test(arguments: [1, 2, 3, 4] as [UInt64])
    func variety(seed: UInt64) {
        let lines = Self.variety(count: 3000, seed: seed)
        let events = Self.check(lines)
        #expect(events > 1000)
        // Both paths are exercised: about a fifth of these deliberately odd records takes the
        // fast path (hundreds per seed).
        let share = Self.fastShare(lines)
        #expect(share.fast > share.all / 10 && share.fast < share.all, "fast \(share.fast) of \(share.all)")
    }

    @Test func varietyWithFewPendingRequests() {
        Self.check(Self.variety(count: 2000, seed: 9), maxPending: 3)
    }

    @Test(arguments: [11, 12] as [UInt64])
    func mutatedLines(seed: UInt64) throws {
        let seeds = try Self.fixtureLines() + Self.variety(count: 300, seed: seed)
        Self.check(Self.mutate(seeds, count: 6000, seed: seed), maxPending: 64)
    }

    /// The benchmark's shape of line takes the fast path.
    @Test func commonRecordsTakeTheFastPath() {
        let auth = #"{"accessor":"hmac-sha256:a","display_name":"token-svc-1","policies":["default","app-read"],"entity_id":"e-1","token_type":"service","policy_results":{"allowed":true}}"#
        let lines = (0..<10).flatMap { i in
            [VaultAuditDecoderTests.rec("request", id: "q\(i)", auth: auth, request: #""mount_point":"secret/","remote_address":"10.0.0.\#(i)","remote_port":3000"#),
             VaultAuditDecoderTests.rec("response", id: "q\(i)", auth: auth, request: #""mount_point":"secret/","remote_address":"10.0.0.\#(i)","remote_port":3000"#)]
        }.map { Array($0.utf8) }
        #expect(Self.check(lines) == 10)
        let share = Self.fastShare(lines)
        #expect(share.fast == 10 && share.all == 10)
    }

    /// Entries at the size limit: the fast path rejects exactly what the reference rejects.
    @Test func entrySizeLimit() {
        var lines: [[UInt8]] = []
        for n in stride(from: 540, through: 556, by: 1) {
            // Each \u0001 of the policies becomes six bytes: around 65,535 in all.
            let policy = #""\#(String(repeating: "\\u0001", count: n))""#
            let policies = (0..<20).map { "\"p\($0)\"," + policy }.joined(separator: ",")
            let auth = #"{"display_name":"token-a","entity_id":"e","policies":[\#(policies)]}"#
            lines.append(Array(VaultAuditDecoderTests.rec(id: "s\(n)", auth: auth).utf8))
        }
        let events = Self.check(lines)
        #expect(events > 0 && events < lines.count)
    }

    /// Waiting requests survive arena compaction (in place) intact: each unanswered request
    /// becomes the event of its own line.
    @Test func waitingRequestsSurviveArenaCompaction() {
        var d = VaultAuditDecoder(sourceKind: "vault", instance: "c")
        var out: [DecodeOutput] = []
        let pad = String(repeating: "x", count: 2000)
        var expected: [String] = []
        for i in 0..<12_000 {
            let rid = "c\(i)"
            let path = "secret/data/p\(i)"
            let req = VaultAuditDecoderTests.rec("request", id: rid, path: path, request: #""headers":{"pad":"\#(pad)"}"#)
            d.decode(line: Array(req.utf8), lineNumber: 2 * i + 1, into: &out)
            if i % 5 != 0 {
                d.decode(line: Array(VaultAuditDecoderTests.rec("response", id: rid, path: path).utf8), lineNumber: 2 * i + 2, into: &out)
            } else {
                expected.append(path)
            }
        }
        #expect(d.arena.capacity > 8 << 20)   // compacted at least once on the way
        out.removeAll()
        d.finish(into: &out)
        let paths = out.compactMap { o -> String? in if case .event(let e, _) = o { return e.secret?.path } else { return nil } }
        #expect(paths == expected)
    }

    /// `EventTime.fastUTC` accepts exactly texts that print back unchanged.
    @Test func fastUTCTimesPrintBackVerbatim() {
        var rng = SeededRNG(seed: 5)
        for _ in 0..<20_000 {
            var t = String(format: "%04d-%02d-%02dT%02d:%02d:%02d", rng.int(0...9999), rng.int(0...13), rng.int(0...32),
                           rng.int(0...24), rng.int(0...60), rng.int(0...61))
            let digits = rng.int(0...10)
            if digits > 0 { t += "." + (0..<digits).map { _ in String(rng.int(0...9)) }.joined() }
            t += "Z"
            var text = t
            text.withUTF8 { u in
                if let e = EventTime.fastUTC(u) {
                    #expect(e.rfc3339Bytes() == Array(u), "\(t)")
                }
            }
        }
    }
}
