import Foundation
import Testing
@testable import CustosCore

/// The decoder framework for non-Vault sources (Sources/CustosCore/Decoders) and its GitHub
/// and GitLab decoders, on the carried public records (Fixtures/sources/github-1, gitlab-1)
/// and on records written from the documented field sets (github-jobs, github-secrets,
/// gitlab-variables: see their .src files; no verbatim public record of those events exists).
@Suite("Source decoders")
struct SourceDecoderTests {
    static func decode(_ file: String, _ format: SourceFormat, instance: String = "default") throws -> Decoded {
        Decoded(SourceStreamDecoder.decodeAll(try Fixture.data("sources/" + file), decoder: format.decoder(instance: instance)))
    }

    static func decodeText(_ text: String, _ format: SourceFormat) -> Decoded {
        Decoded(SourceStreamDecoder.decodeAll(Array(text.utf8), decoder: format.decoder(instance: "default")))
    }

    // MARK: - GitHub

    @Test("prepared_workflow_job: one read per secret passed, full pipeline context")
    func githubSecretsPassed() throws {
        let d = try Self.decode("github-jobs.json", .github)
        #expect(d.rejected.isEmpty, "\(d.rejected)")
        #expect(d.events.count == 4)
        #expect(d.ignored.map(\.reason) == ["job prepared without secrets"])
        let first = d.events.prefix(3).map(\.event)
        #expect(first.map { $0.secret?.path } == ["github/octo-org/payments/STRIPE_KEY", "github/octo-org/payments/DB_PASSWORD",
                                                  "github/octo-org/payments/SENTRY_DSN"])
        #expect(d.events.prefix(3).allSatisfy { $0.line == 1 })
        #expect(d.events[3].line == 33)
        for e in first {
            #expect(e.action == .read && e.outcome == .success)
            #expect(e.source == .init(kind: "github", instance: "default"))
            #expect(e.secret?.store == "github" && e.secret?.environment == "prod")
            #expect(e.identity.kind == .pipeline && e.identity.method == "github-actions")
            #expect(e.identity.name == "octo-org/payments/.github/workflows/deploy.yml@refs/heads/main")
            #expect(e.origin == .init(ip: "198.51.100.23"))
            #expect(e.time.description == "2026-01-01T00:00:00.123Z")
            let p = try #require(e.pipeline)
            #expect(p.provider == "github" && p.repository == "octo-org/payments" && p.name == "Deploy")
            #expect(p.id == "octo-org/payments/.github/workflows/deploy.yml@refs/heads/main")
            #expect(p.runID == "12345678901" && p.attempt == 2 && p.job == "deploy" && p.environment == "prod")
            #expect(p.trigger == .manual && p.triggerIdentity == "octocat")
            // actor_ip is the actor's: never taken for the runner's address.
            #expect(p.runnerIP == nil)
            #expect(p.scope.count == 3)
        }
        #expect(Set(first.map(\.id)).count == 3)
        let ci = d.events[3].event
        #expect(ci.pipeline?.trigger == .automated && ci.pipeline?.triggerIdentity == nil)
        #expect(ci.pipeline?.runnerIP == "203.0.113.77" && ci.origin == nil)
        #expect(ci.secret?.environment == nil && ci.secret?.path == "github/octo-org/payments/CODECOV_TOKEN")
        // Every event is a valid canonical custos.event/v1 (what the trail stores).
        for (e, _) in d.events { #expect(try AccessEvent.decode(e.canonicalJSON()) == e) }
    }

    @Test("secret changes: write and delete by the actor, paths, identity kinds")
    func githubSecretChanges() throws {
        let d = try Self.decode("github-secrets.ndjson", .github)
        #expect(d.rejected.isEmpty, "\(d.rejected)")
        #expect(d.ignored.map(\.line) == [6])
        let e = d.events.map(\.event)
        #expect(e.map(\.action) == [.write, .write, .delete, .write, .write])
        #expect(e.map { $0.secret?.path } == ["github/octo-org/NPM_TOKEN", "github/octo-org/payments/STRIPE_KEY",
                                              "github/octo-org/payments/DB_PASSWORD", "github-codespaces/octo-org/DEV_DB_URL",
                                              "github-dependabot/octo-org/payments/REGISTRY_TOKEN"])
        #expect(e.map { $0.secret?.store } == ["github", "github", "github", "github-codespaces", "github-dependabot"])
        #expect(e.map(\.identity.kind) == [.human, .service, .api_key, .human, .human])
        #expect(e.map(\.identity.method) == ["web", "github_app", "fine_grained_pat", "web", "web"])
        #expect(e[0].identity == .init(id: "1001", name: "alice", kind: .human, method: "web"))
        #expect(e[1].identity.name == "renovate[bot]")
        #expect(e[2].secret?.environment == "staging" && e[2].origin == .init(ip: "2001:db8::5"))
        #expect(e[0].origin == .init(ip: "192.0.2.10") && e[1].origin == nil)
        // Times: epoch ms, ISO Z, ISO +00:00 (the first time member present is used: @timestamp).
        #expect(e[0].time.description == "2025-12-31T23:50:00.000Z" && e[1].time.description == "2025-12-31T23:51:00.000Z")
        #expect(e.allSatisfy { $0.pipeline == nil })
    }

    @Test("a bot actor by name, and created_at when @timestamp is absent")
    func githubBotAndTimes() {
        let d = Self.decodeText("""
            {"action":"repo.create_actions_secret","actor":"dependabot[bot]","created_at":"2026-01-01T00:00:00.5+01:00","repo":"o/r","secret_name":"X"}
            {"action":"org.update_actions_secret","actor":"alice","created_at":1767225600,"org":"o","secret_name":"Y"}
            {"action":"org.update_actions_secret","actor":"alice","created_at":"1767225600.25","org":"o","secret_name":"Y"}
            """, .github)
        #expect(d.rejected.isEmpty, "\(d.rejected)")
        #expect(d.events.map(\.event.identity.kind) == [.service, .human, .human])
        #expect(d.events.map(\.event.time.description) == ["2025-12-31T23:00:00.5Z", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00.25Z"])
        // No _document_id: ids from the record's content, still deterministic and distinct.
        #expect(Set(d.events.map(\.event.id)).count == 3)
    }

    @Test("the carried public record (a completed workflow run) is ignored; other actions too")
    func githubOtherActionsIgnored() throws {
        let d = try Self.decode("github-1.json", .github)
        #expect(d.events.isEmpty && d.rejected.isEmpty)
        #expect(d.ignored.count == 1)
        #expect(d.ignored[0].reason == "GitHub audit action without secret access (workflows.*)")
        let record = try JSONNode.parse(try Fixture.data("sources/github-1.json")).arrayValue![0]
        #expect(GitHubAuditDecoder.recognizes(record))
    }

    @Test("GitHub rejections name the problem, never the content")
    func githubRejections() {
        let secret = "ghp_SUPERSECRETVALUE123"
        let d = Self.decodeText("""
            {"action":"workflows.prepared_workflow_job","@timestamp":1767225600000,"repo":"o/r","secrets_passed":"\(secret)"}
            {"action":"workflows.prepared_workflow_job","@timestamp":1767225600000,"repo":"o/r","secrets_passed":["\(secret)-x"]}
            {"action":"workflows.prepared_workflow_job","@timestamp":"yesterday \(secret)","repo":"o/r","secrets_passed":["A"]}
            {"action":"workflows.prepared_workflow_job","@timestamp":1767225600000,"repo":"\(secret)","secrets_passed":["A"]}
            {"action":"repo.create_actions_secret","@timestamp":1767225600000,"repo":"o/r","secret_name":"\(secret)!"}
            {"actor":"x","@timestamp":1767225600000}
            {"action":"org.create_actions_secret","@timestamp":1767225600000,"secret_name":"\(secret)", "value":
            """, .github)
        #expect(d.events.isEmpty)
        #expect(d.rejected.map(\.line) == [1, 2, 3, 4, 5, 6, 7])
        for r in d.rejected { #expect(!r.reason.contains("SUPERSECRET"), "\(r.reason)") }
    }

    // MARK: - GitLab

    @Test("CI variables in both shapes: created, viewed, updated by a bot, deleted, instance")
    func gitlabVariables() throws {
        let d = try Self.decode("gitlab-variables.ndjson", .gitlab)
        #expect(d.rejected.isEmpty, "\(d.rejected)")
        #expect(d.ignored.map(\.line) == [6])
        let e = d.events.map(\.event)
        #expect(e.map(\.action) == [.write, .read, .write, .delete, .delete])
        #expect(e.map { $0.secret?.path } == ["gitlab/acme/backend/api/AWS_SECRET_ACCESS_KEY", "gitlab/acme/backend/api/AWS_SECRET_ACCESS_KEY",
                                              "gitlab/acme/DEPLOY_TOKEN", "gitlab/acme/backend/api/AWS_SECRET_ACCESS_KEY",
                                              "gitlab/-/instance/GLOBAL_SIGNING_KEY"])
        #expect(e.allSatisfy { $0.secret?.store == "gitlab" && $0.source.kind == "gitlab" })
        #expect(e.map(\.identity.kind) == [.human, .human, .service, .human, .human])
        #expect(e[0].identity == .init(id: "42", name: "carol", kind: .human, method: "session"))
        #expect(e[1].identity.name == "Carol Danvers")
        #expect(e[2].identity.name == "project_17_bot_4f2a")
        #expect(e.map { $0.origin?.ip } == ["198.51.100.44", "198.51.100.44", "203.0.113.9", "198.51.100.44", "192.0.2.200"])
        // created_at wins over time; +00:00, Z, epoch ms, one fraction digit.
        #expect(e.map(\.time.description) == ["2026-01-02T09:30:00.118Z", "2026-01-02T10:00:00.000Z", "2026-01-02T10:30:00.250Z",
                                              "2026-01-02T11:00:00.5Z", "2026-01-02T12:00:00.000Z"])
        #expect(e[0].requestID == "01JGXK3M5T7V9B2C4D6F8H0J1K")
        #expect(Set(e.map(\.id)).count == 5)
        for x in e { #expect(try AccessEvent.decode(x.canonicalJSON()) == x) }
    }

    @Test("the carried public audit_json.log records are ignored (no CI variable event)")
    func gitlabPublicRecordsIgnored() throws {
        let d = try Self.decode("gitlab-1.json", .gitlab)
        #expect(d.events.isEmpty && d.rejected.isEmpty)
        #expect(d.ignored.map(\.line) == [1, 2])
        for line in try Fixture.lines("sources/gitlab-1.json") {
            let v = try JSONNode.parse(line)
            #expect(GitLabAuditDecoder.recognizes(v) && !GitHubAuditDecoder.recognizes(v))
            #expect(SourceFormat.detect(v) == .gitlab)
        }
    }

    @Test("GitLab identity kinds: token, runner, unauthenticated")
    func gitlabIdentityKinds() {
        func kind(_ extra: String) -> IdentityKind? {
            let d = Self.decodeText(#"{"id":1,"author_id":5,"author_name":"x","entity_path":"g/p","entity_type":"Project","event_type":"ci_variable_updated","target_details":"K","created_at":"2026-01-01T00:00:00Z"\#(extra)}"#, .gitlab)
            return d.events.first?.event.identity.kind
        }
        #expect(kind("") == .human)
        #expect(kind(#","details":{"author_class":"Gitlab::Audit::DeployTokenAuthor"}"#) == .api_key)
        #expect(kind(#","details":{"author_class":"Gitlab::Audit::CiRunnerTokenAuthor"}"#) == .pipeline)
        #expect(kind(#","details":{"author_class":"Gitlab::Audit::UnauthenticatedAuthor"}"#) == .unknown)
        #expect(kind(#","author_username":"group_9_bot_aa""#) == .service)
    }

    // MARK: - Framework

    @Test("re-ingesting gives the same ids (duplicates, not new events)")
    func deterministicIDs() throws {
        for (file, format) in [("github-jobs.json", SourceFormat.github), ("github-secrets.ndjson", .github), ("gitlab-variables.ndjson", .gitlab)] {
            let a = try Self.decode(file, format).events.map(\.event)
            let b = try Self.decode(file, format).events.map(\.event)
            #expect(a == b && !a.isEmpty)
            // Another instance: other ids.
            let c = try Self.decode(file, format, instance: "other").events.map(\.event.id)
            #expect(Set(a.map(\.id)).isDisjoint(with: c))
        }
        // The same GitHub record reformatted (compact instead of pretty): the same events.
        let pretty = try Fixture.data("sources/github-jobs.json")
        var compact: [UInt8] = []
        var s = JSONRecordSplitter()
        s.feed(pretty) { if case .record(let b, _, _, _) = $0 { compact += try! JSONNode.compact(JSONNode.parse(b)) + [0x0A] } }
        let again = Decoded(SourceStreamDecoder.decodeAll(compact, decoder: GitHubAuditDecoder()))
        let original = try Self.decode("github-jobs.json", .github)
        #expect(again.events.map(\.event.id) == original.events.map(\.event.id))
    }

    @Test("framing: NDJSON, array, pretty objects back to back, in pieces of any size")
    func framing() throws {
        let records = try Fixture.lines("sources/github-secrets.ndjson")
        let ndjson: [UInt8] = Array(records.joined(separator: [UInt8(0x0A)]))
        let array: [UInt8] = Array("[".utf8) + Array(records.joined(separator: Array(",\n".utf8))) + Array("]".utf8)
        var pretty: [UInt8] = []
        for r in records { pretty += JSONNode.compact(try JSONNode.parse(r), indent: true) + [0x0A] }
        let bodies: [[UInt8]] = [ndjson, array, pretty, Array("\r\n".utf8) + ndjson + Array("\r\n".utf8)]
        let expected = try Self.decode("github-secrets.ndjson", .github).events.map(\.event)
        for body in bodies {
            for piece in [1, 7, 100, 1 << 20] {
                var s = SourceStreamDecoder(format: .github, instance: "default")
                var out: [DecodeOutput] = []
                var i = 0
                while i < body.count { s.feed(Array(body[i..<min(body.count, i + piece)]), into: &out); i += piece }
                s.finish(into: &out)
                let d = Decoded(out)
                #expect(d.rejected.isEmpty && d.events.map(\.event) == expected, "piece \(piece)")
            }
        }
        // Array elements are numbered in rejections; lines elsewhere.
        let d = Self.decodeText(#"[{"action":"repo.x","@timestamp":1}, 5, {"nope"}]"#, .github)
        #expect(d.rejected.count == 2)
        #expect(d.rejected[0].reason.contains("array element 2"))
    }

    @Test("recovery: a truncated record is rejected alone, the next one decodes")
    func recovery() {
        let good = #"{"action":"org.create_actions_secret","@timestamp":1767225600000,"org":"o","secret_name":"A"}"#
        let body = [String(good.prefix(40)), good, String(good.prefix(70)), good, "garbage here", good, "{", "  \"x\": {", good,
                    String(good.dropLast())].joined(separator: "\n")
        let d = Self.decodeText(body, .github)
        #expect(d.events.count == 4)
        #expect(d.rejected.map(\.line) == [1, 3, 5, 7, 10], "\(d.rejected)")
        #expect(d.events.map(\.line) == [2, 4, 6, 9])
    }

    @Test("unindented pretty printing (nested objects in column 1) is one record")
    func unindented() {
        let record = "{\n\"action\": \"workflows.prepared_workflow_job\",\n\"@timestamp\": 1767225600000,\n\"repo\": \"o/r\",\n"
            + "\"reasons\": [\n{\n\"code\": \"x\"\n},\n{\n\"code\": \"y\"\n}\n],\n\"config\":\n{\n\"a\": 1\n},\n\"secrets_passed\": [\n\"A\"\n]\n}\n"
        let d = Self.decodeText(record + record.replacingOccurrences(of: "\"A\"", with: "\"B\""), .github)
        #expect(d.rejected.isEmpty, "\(d.rejected)")
        #expect(d.events.map { $0.event.secret?.path } == ["github/o/r/A", "github/o/r/B"])
        #expect(d.events.map(\.line) == [1, 21])
    }

    @Test("timestamps in every style")
    func timestamps() {
        let cases: [(JSONNode, String?)] = [
            (.number("1615077308538"), "2021-03-07T00:35:08.538Z"),
            (.number("1615077308"), "2021-03-07T00:35:08Z"),
            (.number("1615077308.5"), "2021-03-07T00:35:08.5Z"),
            (.number("1615077308538123"), "2021-03-07T00:35:08.538123Z"),
            (.number("1615077308538123456"), "2021-03-07T00:35:08.538123456Z"),
            (.number("1.615077308538E12"), "2021-03-07T00:35:08.538Z"),
            (.string("1615077308538"), "2021-03-07T00:35:08.538Z"),
            (.string("2024-05-10T17:46:49.065Z"), "2024-05-10T17:46:49.065Z"),
            (.string("2024-05-10T17:46:49.058+00:00"), "2024-05-10T17:46:49.058Z"),
            (.string("2024-05-10T19:46:49.058+0200"), "2024-05-10T17:46:49.058Z"),
            (.string("2024-05-10T12:46:49-05"), "2024-05-10T17:46:49Z"),
            (.string("2024-05-10 17:46:49 UTC"), "2024-05-10T17:46:49Z"),
            (.string("2021-07-19T17:19:00.6738982251Z"), "2021-07-19T17:19:00.673898225Z"),
            (.string("2024-05-10T17:46:49.1234567Z"), "2024-05-10T17:46:49.1234567Z"),
            (.string("2024-05-10T17:46:49"), nil),
            (.string("2024-02-30T00:00:00Z"), nil),
            (.string("yesterday"), nil), (.string(""), nil), (.number("-5"), nil), (.bool(true), nil), (.null, nil),
            (.number("99999999999999999999"), nil),
        ]
        for (v, want) in cases { #expect(SourceTime.parse(v)?.description == want, "\(v)") }
    }

    @Test("format detection per record")
    func detection() throws {
        let gh = try JSONNode.parse(Array(#"{"action":"org.create_actions_secret","@timestamp":1,"actor":"a"}"#.utf8))
        #expect(SourceFormat.detect(gh) == .github)
        let gl = try JSONNode.parse(Array(#"{"id":1,"event_type":"ci_variable_created","author_id":1,"entity_path":"a/b"}"#.utf8))
        #expect(SourceFormat.detect(gl) == .gitlab)
        let vault = try JSONNode.parse(Array(#"{"time":"2026-01-01T00:00:00Z","type":"response","auth":{},"request":{"id":"x"}}"#.utf8))
        #expect(SourceFormat.detect(vault) == nil)
        let event = try JSONNode.parse(Array(#"{"schema":"custos.event/v1","action":"read"}"#.utf8))
        #expect(SourceFormat.detect(event) == nil)
    }

    @Test("a shipper's envelope (Fluent Bit log, Vector message) is unwrapped")
    func envelope() {
        let inner = #"{"action":"org.create_actions_secret","@timestamp":1767225600000,"org":"o","secret_name":"A"}"#
        let quoted = inner.replacingOccurrences(of: "\"", with: "\\\"")
        let d = Self.decodeText(#"{"log":"\#(quoted)\n","stream":"stdout"}"#, .github)
        #expect(d.events.count == 1 && d.events.first?.event.secret?.path == "github/o/A")
    }

    @Test("identity mapping shared by every source")
    func principalClasses() {
        #expect(PrincipalClass.allCases.map(\.kind) == [.human, .api_key, .service, .service, .service, .pipeline, .root, .unknown])
        for n in ["dependabot[bot]", "project_12_bot_ab12", "group_3_bot", "project_1_bot1"] { #expect(PrincipalClass.isBotName(n), "\(n)") }
        for n in ["alice", "robot", "project_bot", "project_x_bot", "bot[bot"] { #expect(!PrincipalClass.isBotName(n), "\(n)") }
    }

    // MARK: - Fuzz

    @Test("fuzz: mutated and truncated real records, random bytes, deep nesting, huge strings")
    func fuzz() throws {
        var rng = SeededRNG(seed: 0x6172_6368_6976_6531)
        var seeds: [[UInt8]] = []
        for f in ["github-1.json", "github-jobs.json"] { seeds.append(try Fixture.data("sources/" + f)) }
        for f in ["github-secrets.ndjson", "gitlab-variables.ndjson", "gitlab-1.json"] { seeds += try Fixture.lines("sources/" + f) }
        let secret = Array("SUPERSECRETVALUE".utf8)
        for round in 0..<3000 {
            var b = rng.pick(seeds)
            switch round % 6 {
            case 0: b = Array(b.prefix(rng.int(0...b.count)))
            case 1: for _ in 0..<rng.int(1...8) where !b.isEmpty { b[rng.int(0...(b.count - 1))] = UInt8.random(in: 0...255, using: &rng) }
            case 2: for _ in 0..<rng.int(1...4) where !b.isEmpty { b.insert(rng.pick(Array("{}[]\",:\\\n0".utf8)), at: rng.int(0...b.count)) }
            case 3: b = (0..<rng.int(0...400)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            case 4: b = Array(repeating: rng.pick(Array("[{".utf8)), count: rng.int(30...5000)) + secret
            case 5 where round % 60 != 5:
                // A slice of the record repeated somewhere in it.
                let i = rng.int(0...b.count), j = rng.int(i...b.count), k = rng.int(0...b.count)
                b.insert(contentsOf: Array(b[i..<j]), at: k)
            default:
                // A huge string value in a real record (now and then: debug builds are slow).
                if let at = b.firstIndex(of: 0x3A) { b.insert(contentsOf: Array("\"".utf8) + Array(repeating: 0x41, count: rng.int(70_000...300_000)) + secret + Array("\",".utf8) , at: at + 1) }
            }
            for format in SourceFormat.allCases {
                let out = SourceStreamDecoder.decodeAll(b, decoder: format.decoder(instance: "fuzz"))
                for o in out {
                    switch o {
                    case .rejected(let r): #expect(!r.reason.contains("SUPERSECRET") && r.reason.utf8.count < 300 && r.line >= 1)
                    case .ignored(_, let reason): #expect(!reason.contains("SUPERSECRET"))
                    case .event(let e, _): #expect(e.canonicalJSON().count <= AccessEvent.maxEncodedSize)
                    }
                }
            }
        }
        // Deep nesting is rejected by the splitter's count (no recursion), and by the parser.
        let deep = Array(repeating: UInt8(ascii: "["), count: 100_000) + Array(repeating: UInt8(ascii: "]"), count: 100_000)
        #expect(throws: JSONNode.ParseError.self) { try JSONNode.parse(deep) }
        let d = Decoded(SourceStreamDecoder.decodeAll(Array("{\"a\":".utf8) + deep + Array("}".utf8), decoder: GitHubAuditDecoder()))
        #expect(d.rejected.map(\.reason) == ["record nested more than 32 levels"])
        // A record over the size limit is rejected without being kept.
        var big = SourceStreamDecoder(decoder: GitLabAuditDecoder(), maxRecordBytes: 1000)
        var out: [DecodeOutput] = []
        big.feed(Array("{\"a\":\"".utf8) + Array(repeating: 0x41, count: 5000) + Array("\"}\n{}".utf8), into: &out)
        big.finish(into: &out)
        // ... and the next record (`{}`, which has no time) is read after it.
        #expect(Decoded(out).rejected.map(\.reason) == ["record longer than 1000 bytes", "missing \"created_at\" and \"time\""])
    }
}

extension JSONNode {
    /// Compact (or indented) JSON text of a value, for tests that reframe records.
    static func compact(_ v: JSONNode, indent: Bool = false, level: Int = 0) -> [UInt8] {
        func str(_ s: String) -> String {
            var o = "\""
            for u in s.unicodeScalars {
                switch u {
                case "\"": o += "\\\""
                case "\\": o += "\\\\"
                case "\n": o += "\\n"
                default: if u.value < 0x20 { o += String(format: "\\u%04x", u.value) } else { o.unicodeScalars.append(u) }
                }
            }
            return o + "\""
        }
        let nl = indent ? "\n" + String(repeating: "  ", count: level + 1) : ""
        let end = indent ? "\n" + String(repeating: "  ", count: level) : ""
        switch v {
        case .null: return Array("null".utf8)
        case .bool(let b): return Array((b ? "true" : "false").utf8)
        case .number(let n): return Array(n.utf8)
        case .string(let s): return Array(str(s).utf8)
        case .array(let a):
            if a.isEmpty { return Array("[]".utf8) }
            return Array("[".utf8) + a.map { Array(nl.utf8) + compact($0, indent: indent, level: level + 1) }.joined(separator: Array(",".utf8)) + Array((end + "]").utf8)
        case .object(let m):
            if m.isEmpty { return Array("{}".utf8) }
            return Array("{".utf8) + m.map { Array((nl + str($0.0) + ":").utf8) + compact($0.1, indent: indent, level: level + 1) }
                .joined(separator: Array(",".utf8)) + Array((end + "}").utf8)
        }
    }
}
