import Foundation
import Testing
@testable import CustosCore

/// Test fixtures (Tests/CustosCoreTests/Fixtures) and small helpers shared by the decoder tests.
enum Fixture {
    static var root: URL { Bundle.module.url(forResource: "Fixtures", withExtension: nil)! }

    static func data(_ relative: String) throws -> [UInt8] {
        Array(try Data(contentsOf: root.appendingPathComponent(relative)))
    }

    /// The file's lines, without their newlines (a final empty line is dropped).
    static func lines(_ relative: String) throws -> [[UInt8]] {
        var lines = try data(relative).split(separator: 0x0A, omittingEmptySubsequences: false).map(Array.init)
        if lines.last?.isEmpty == true { lines.removeLast() }
        return lines
    }
}

/// Decoder outputs sorted by kind.
struct Decoded {
    var all: [DecodeOutput] = []
    var events: [(event: AccessEvent, line: Int)] = []
    var ignored: [(line: Int, reason: String)] = []
    var rejected: [DecodeRejection] = []

    init(_ outputs: [DecodeOutput]) {
        all = outputs
        for o in outputs {
            switch o {
            case .event(let e, let line): events.append((e, line))
            case .ignored(let line, let reason): ignored.append((line, reason))
            case .rejected(let r): rejected.append(r)
            }
        }
    }

    func event(requestID: String) -> AccessEvent? {
        let m = events.filter { $0.event.requestID == requestID }
        return m.count == 1 ? m[0].event : nil
    }
}

/// Decodes lines numbered from 1, then calls `finish` (unless told not to).
func decodeLines(_ lines: [[UInt8]], decoder: inout VaultAuditDecoder, finish: Bool = true) -> Decoded {
    var out: [DecodeOutput] = []
    for (i, l) in lines.enumerated() { decoder.decode(line: l, lineNumber: i + 1, into: &out) }
    if finish { decoder.finish(into: &out) }
    return Decoded(out)
}

func decodeLines(_ lines: [String], instance: String = "default", finish: Bool = true) -> Decoded {
    var d = VaultAuditDecoder(sourceKind: "vault", instance: instance)
    return decodeLines(lines.map { Array($0.utf8) }, decoder: &d, finish: finish)
}

func contains(_ haystack: [UInt8], _ needle: String) -> Bool {
    let n = Array(needle.utf8)
    guard !n.isEmpty, haystack.count >= n.count else { return false }
    for i in 0...(haystack.count - n.count) where haystack[i] == n[0] {
        if Array(haystack[i..<(i + n.count)]) == n { return true }
    }
    return false
}


@Suite("Vault/OpenBao audit decoder")
struct VaultAuditDecoderTests {

    // MARK: - The real OpenBao 2.7.2 fixture (see Fixtures/openbao/README.md)

    static func openbao() throws -> Decoded {
        var d = VaultAuditDecoder(sourceKind: "openbao", instance: "dev")
        return decodeLines(try Fixture.lines("openbao/audit-2.7.2.log"), decoder: &d)
    }

    @Test func openbaoFixtureTotals() throws {
        let lines = try Fixture.lines("openbao/audit-2.7.2.log")
        #expect(lines.count == 59)
        let r = try Self.openbao()
        #expect(r.rejected.isEmpty)
        // 18 scenario steps with a main request (e1 stopped after its preflight) plus the
        // 3 bootstrap accesses (token create, revoke-self, the id-less sys/mounts/secret).
        #expect(r.events.count == 21)
        // 8 preflight look-ups, line 6 (request without request.id), line 1 (audit self-test).
        #expect(r.ignored.count == 10)
        #expect(r.all.count == 31)
        // Every event here comes from a response line (every request that is kept was answered).
        for (e, line) in r.events {
            let json = try #require(try JSONSerialization.jsonObject(with: Data(lines[line - 1])) as? [String: Any])
            #expect(json["type"] as? String == "response")
            #expect(e.source == .init(kind: "openbao", instance: "dev"))
            #expect(e.id.count == 32)
        }
        #expect(Set(r.events.map(\.event.id)).count == 21)
    }

    @Test func openbaoIgnoredLines() throws {
        let r = try Self.openbao()
        let ui = r.ignored.filter { $0.reason.hasPrefix("UI look-up") }.map(\.line)
        #expect(ui == [13, 17, 25, 29, 33, 41, 53, 57])
        #expect(r.ignored.contains { $0.line == 6 && $0.reason.contains("without request.id") })
        #expect(r.ignored.contains { $0.line == 1 && $0.reason == "audit device self-test" })
        // e1: the bogus token's preflight (denied) is the only thing logged for the step: no event.
        #expect(r.events.allSatisfy { $0.event.requestID != "8f9b6087-b30b-559c-40b2-67f307936abe" })
        #expect(r.events.allSatisfy { !($0.event.secret?.path ?? "").hasPrefix("sys/internal/ui/") })
    }

    struct Step: Sendable, CustomTestStringConvertible {
        var name: String
        var requestID: String
        var line: Int
        var action: String
        var outcome: Outcome
        var reason: String? = nil
        var displayName: String?
        var kind: IdentityKind
        var method: String?
        var path: String
        var port: Int?
        var testDescription: String { name }
    }

    // Expected values from the README tables (display names, ports, outcomes) and the rules
    // in the brief (login identity from response.auth, root policy → root, ...).
    static let steps: [Step] = [
        Step(name: "a1-enable-userpass", requestID: "507115ac-a507-e5b9-1a2b-3603194bb188", line: 9, action: "auth_change", outcome: .success, displayName: "token", kind: .root, method: "token", path: "sys/auth/userpass", port: 35932),
        Step(name: "a2-enable-approle", requestID: "0dfb25f9-a716-5c34-0498-76d135a6f496", line: 11, action: "auth_change", outcome: .success, displayName: "token", kind: .root, method: "token", path: "sys/auth/approle", port: 35946),
        Step(name: "a3-put-prod-secret", requestID: "fe4015ab-44f6-c3e3-5043-cec7140038de", line: 15, action: "write", outcome: .success, displayName: "token", kind: .root, method: "token", path: "secret/data/prod/payments/db", port: 35956),
        Step(name: "a4-put-dev-config", requestID: "5f5c9ed6-8b0c-0973-12d6-cb0e5e7438c4", line: 19, action: "write", outcome: .success, displayName: "token", kind: .root, method: "token", path: "secret/data/dev/app/config", port: 35968),
        Step(name: "b1-policy-write", requestID: "e6956685-8c20-8b2f-4535-13cfa32137a0", line: 21, action: "policy_change", outcome: .success, displayName: "token", kind: .root, method: "token", path: "sys/policies/acl/payments-read", port: 35978),
        Step(name: "c1-token-create", requestID: "9869a982-f340-e9b5-2b82-2b7c3d1ae4ce", line: 23, action: "token_create", outcome: .success, displayName: "token", kind: .root, method: "token", path: "auth/token/create", port: 35994),
        Step(name: "d1-pp-read-dev", requestID: "fda0f0b4-7249-3a75-31c3-f861fc229985", line: 27, action: "read", outcome: .success, displayName: "token-payment-processor", kind: .api_key, method: "token", path: "secret/data/dev/app/config", port: 36008),
        Step(name: "d2-pp-read-prod", requestID: "f8404ecb-072d-92a0-8b8e-43fb17ff878c", line: 31, action: "read", outcome: .denied, reason: "permission denied", displayName: "token-payment-processor", kind: .api_key, method: "token", path: "secret/data/prod/payments/db", port: 36014),
        Step(name: "e2-bogus-read-dev-raw", requestID: "9d48ec19-e7f9-2646-47c2-cb67513d387b", line: 35, action: "read", outcome: .denied, reason: "invalid or missing token", displayName: nil, kind: .unknown, method: nil, path: "secret/data/dev/app/config", port: 36034),
        Step(name: "f1-userpass-create-alice", requestID: "a987e29e-6f0b-fa51-1de9-8e40f01fc606", line: 37, action: "auth_change", outcome: .success, displayName: "token", kind: .root, method: "token", path: "auth/userpass/users/alice", port: 36044),
        Step(name: "f2-alice-login", requestID: "0fa5ee5d-4111-65a7-1396-57582eeb1157", line: 39, action: "login", outcome: .success, displayName: "userpass-alice", kind: .human, method: "userpass", path: "auth/userpass/login/alice", port: 36054),
        Step(name: "f3-alice-read-dev", requestID: "9d0025dd-ec86-83f9-3e4d-a1667f09dfa7", line: 43, action: "read", outcome: .success, displayName: "userpass-alice", kind: .human, method: "userpass", path: "secret/data/dev/app/config", port: 36066),
        Step(name: "f4-approle-create-role", requestID: "bd18822a-f3b4-bf18-1196-5dd16e9fc1bc", line: 45, action: "auth_change", outcome: .success, displayName: "token", kind: .root, method: "token", path: "auth/approle/role/payments-app", port: 36082),
        Step(name: "f5-approle-read-role-id", requestID: "82fe5c86-a779-dc36-eb20-51d2bf744cea", line: 47, action: "read", outcome: .success, displayName: "token", kind: .root, method: "token", path: "auth/approle/role/payments-app/role-id", port: 36090),
        Step(name: "f6-approle-secret-id", requestID: "3a72e420-ae43-49b8-2dd9-105fca87f242", line: 49, action: "auth_change", outcome: .success, displayName: "token", kind: .root, method: "token", path: "auth/approle/role/payments-app/secret-id", port: 36092),
        Step(name: "f7-approle-login", requestID: "911954e4-8793-1217-0c2c-92b0b1ef001e", line: 51, action: "login", outcome: .success, displayName: "approle", kind: .service, method: "approle", path: "auth/approle/login", port: 36098),
        Step(name: "f8-approle-read-dev", requestID: "434e6488-c9c6-7242-6200-fc878609162d", line: 55, action: "read", outcome: .success, displayName: "approle", kind: .service, method: "approle", path: "secret/data/dev/app/config", port: 36110),
        Step(name: "g1-root-read-prod", requestID: "baa434d5-a9fe-d625-14e5-52639f8a30d1", line: 59, action: "read", outcome: .success, displayName: "token", kind: .root, method: "token", path: "secret/data/prod/payments/db", port: 36124),
    ]

    @Test(arguments: steps)
    func openbaoScenarioStep(_ step: Step) throws {
        let r = try Self.openbao()
        let matches = r.events.filter { $0.event.requestID == step.requestID }
        try #require(matches.count == 1, "exactly one event for \(step.name)")
        let (e, line) = matches[0]
        #expect(line == step.line)
        #expect(e.action.rawValue == step.action)
        #expect(e.outcome == step.outcome)
        #expect(e.reason == step.reason)
        #expect(e.identity.name == step.displayName)
        #expect(e.identity.kind == step.kind)
        #expect(e.identity.method == step.method)
        #expect(e.secret?.path == step.path)
        #expect(e.secret?.namespace == nil)
        #expect(e.origin == AccessEvent.Origin(ip: "127.0.0.1", port: step.port))
        #expect(e.id == EventID.make(instance: "dev", key: step.requestID))
        if step.kind == .unknown { #expect(e.identity.id == nil && e.identity.policies.isEmpty) }
        else { #expect(e.identity.id != nil) }
    }

    @Test func openbaoIdentitiesAndSecrets() throws {
        let r = try Self.openbao()
        let alice = try #require(r.event(requestID: "0fa5ee5d-4111-65a7-1396-57582eeb1157"))
        // From response.auth of line 39 (the request line has no identity at all).
        #expect(alice.identity.id == "4271c82e-f404-89a5-7977-ce65fb852ea4")
        #expect(alice.identity.policies == ["default", "payments-read"])
        let approle = try #require(r.event(requestID: "911954e4-8793-1217-0c2c-92b0b1ef001e"))
        #expect(approle.identity.id == "5807edeb-3df4-b046-55cc-f9022f57df03")
        let root = try #require(r.event(requestID: "baa434d5-a9fe-d625-14e5-52639f8a30d1"))
        #expect(root.identity.policies == ["root"])
        #expect(root.secret == AccessEvent.Secret(store: "secret/", path: "secret/data/prod/payments/db", environment: "prod"))
        let denied = try #require(r.event(requestID: "f8404ecb-072d-92a0-8b8e-43fb17ff878c"))
        #expect(denied.identity.policies == ["default", "payments-read"])
        #expect(denied.time.description == "2026-11-27T23:18:48.265402866Z")
        let dev = try #require(r.event(requestID: "5f5c9ed6-8b0c-0973-12d6-cb0e5e7438c4"))
        #expect(dev.secret?.environment == "dev")
        // Line 19 has 8 fraction digits: kept as written.
        #expect(dev.time.description == "2026-11-27T23:18:47.64943163Z")
        #expect(dev.time.digits == 8)

        // Bootstrap: the dev server's own root token (display name root) creates the dev root token.
        let gen = try #require(r.event(requestID: "dev-gen-root"))
        #expect(gen.action == .tokenCreate && gen.identity.kind == .root && gen.identity.name == "root")
        #expect(gen.origin == nil)
        let revoke = try #require(r.event(requestID: "dev-revoke-init-root"))
        #expect(revoke.action == .tokenRevoke)
        let mounts = try #require(r.events.first { $0.line == 7 }?.event)
        #expect(mounts.requestID == nil && mounts.action == .admin && mounts.secret?.path == "sys/mounts/secret")
        #expect(mounts.secret?.store == "sys/")
    }

    @Test func openbaoEventsCarryNoDataValues() throws {
        let lines = try Fixture.lines("openbao/audit-2.7.2.log")
        let r = try Self.openbao()
        // Every string inside request.data / response.data of the file (HMACs of values).
        var dataStrings = Set<String>()
        func collect(_ v: Any) {
            if let s = v as? String { if s.count >= 8 { dataStrings.insert(s) } }
            else if let a = v as? [Any] { a.forEach(collect) }
            else if let o = v as? [String: Any] { o.values.forEach(collect) }
        }
        for l in lines {
            let o = try #require(try JSONSerialization.jsonObject(with: Data(l)) as? [String: Any])
            if let d = (o["request"] as? [String: Any])?["data"] { collect(d) }
            if let d = (o["response"] as? [String: Any])?["data"] { collect(d) }
        }
        #expect(dataStrings.count > 20)
        for (e, _) in r.events {
            let c = e.canonicalJSON()
            for s in dataStrings { #expect(!contains(c, s)) }
            #expect(!contains(c, "5432"))   // a4's plain integer in request.data
            #expect(try AccessEvent.decode(c, requireCanonical: true) == e)
        }
    }

    @Test func decodingIsDeterministicAndResponseOnly() throws {
        // The same file twice gives the same ids; dropping every request line changes nothing
        // for answered requests (events are built from the response line alone).
        let lines = try Fixture.lines("openbao/audit-2.7.2.log")
        let full = try Self.openbao()
        var d = VaultAuditDecoder(sourceKind: "openbao", instance: "dev")
        let responsesOnly = lines.filter { contains($0, "\"type\":\"response\"") }
        let r2 = decodeLines(responsesOnly, decoder: &d)
        let a = full.events.map { $0.event }.filter { $0.requestID != nil }
        let b = r2.events.map { $0.event }.filter { $0.requestID != nil }
        #expect(a == b)
    }

    // MARK: - Public records (Fixtures/sources, with .src attribution)

    @Test func vault1UnauthenticatedDeniedPKIIssue() throws {
        var d = VaultAuditDecoder()
        let r = decodeLines(try Fixture.lines("sources/vault-1.json"), decoder: &d)
        #expect(r.rejected.isEmpty && r.ignored.isEmpty)
        try #require(r.events.count == 1)
        let (e, line) = r.events[0]
        #expect(line == 2)
        #expect(e.outcome == .denied)
        #expect(e.reason == "invalid or missing token")
        #expect(e.identity == .init(kind: .unknown))
        #expect(e.origin == .init(ip: "10.6.8.34", port: nil))
        #expect(e.action == .write)   // operation update on a non-sys path
        #expect(e.secret == .init(store: "internal-ca/", path: "internal-ca/issue/internal-server", environment: nil))
        #expect(e.requestID == "24ac580b-805a-d9ee-4d0d-7046932f4e05")
        #expect(e.time.description == "2021-07-19T17:19:00.674663552Z")
        #expect(!contains(e.canonicalJSON(), "1 error occurred"))
    }

    @Test func vault2NomadTokenReadAndOIDCHuman() throws {
        var d = VaultAuditDecoder()
        let r = decodeLines(try Fixture.lines("sources/vault-2.json"), decoder: &d)
        #expect(r.rejected.isEmpty && r.ignored.isEmpty)
        try #require(r.events.count == 2)

        let (read, readLine) = r.events[0]
        #expect(readLine == 2)
        #expect(read.action == .read && read.outcome == .success && read.reason == nil)
        #expect(read.identity.name == "token-375f9cb3-4355-42c7-eab5-029f8a310ca7-runner")
        // A token-auth token (display name prefix "token"), no entity: the accessor HMAC is the id.
        #expect(read.identity.method == "token")
        #expect(read.identity.kind == .api_key)
        #expect(read.identity.id == "hmac-sha256:8fa4f7f3d1fd812064950025cde2b1565829a9dc5075253399e5ede8f8a1d98e")
        #expect(read.identity.policies == ["app-continuous-delivery", "app-github-runner", "default"])
        #expect(read.secret == .init(store: "secret/", path: "secret/data/apps/continuous-delivery/aws-bucket-sse-c", environment: nil))
        #expect(read.origin == .init(ip: "10.6.8.36"))
        let c = read.canonicalJSON()
        #expect(contains(c, "\"time\":\"2021-06-29T17:26:11.409840527Z\""))
        #expect(!contains(c, "85d3c6e705ea04f4"))   // response.data HMAC

        // Line 3: a request with no response: an error event when the input ends.
        let (oidc, oidcLine) = r.events[1]
        #expect(oidcLine == 3)
        #expect(oidc.outcome == .error && oidc.reason == "no response logged")
        #expect(oidc.identity.kind == .human && oidc.identity.method == "oidc")
        #expect(oidc.identity.name == "oidc-12349999999999999999")
        #expect(oidc.identity.id == "e4f5c67a-6f7e-789d-ae56-a1fe3ae23046")
        #expect(oidc.identity.policies == ["default", "group-admin"])
        #expect(oidc.origin == .init(ip: "67.43.156.13"))
        #expect(oidc.secret?.path == "sys/capabilities-self")
        #expect(contains(oidc.canonicalJSON(), "\"time\":\"2020-12-01T20:29:04.356625452Z\""))
        #expect(!contains(oidc.canonicalJSON(), "example@gmail.com"))   // metadata is not copied
        for (e, _) in r.events { #expect(try AccessEvent.decode(e.canonicalJSON(), requireCanonical: true) == e) }
    }

    // MARK: - Synthetic lines

    static let tokenAuth = #"{"accessor":"hmac-sha256:acc","display_name":"token-app","policies":["default","app"],"token_type":"service"}"#

    static func rec(_ type: String = "response", id: String? = "r1", time: String? = "2024-05-01T10:00:00.123456789Z",
                    op: String = "read", path: String = "secret/data/app/x", auth: String = tokenAuth,
                    request extra: String = "", response: String? = nil, error: String? = nil, top: String = "") -> String {
        var req = #""operation":"\#(op)","path":"\#(path)""#
        if let id { req = #""id":"\#(id)","# + req }
        if !extra.isEmpty { req += "," + extra }
        var s = "{"
        if let time { s += #""time":"\#(time)","# }
        s += #""type":"\#(type)","auth":\#(auth),"request":{\#(req)}"#
        if let response { s += #","response":\#(response)"# }
        if let error { s += #","error":\#(error)"# }
        if !top.isEmpty { s += "," + top }
        return s + "}"
    }

    static func origin(_ address: String, port: String? = nil) -> AccessEvent.Origin?? {
        var extra = #""remote_address":"\#(address)""#
        if let port { extra += #","remote_port":\#(port)"# }
        let r = decodeLines([rec(request: extra)])
        guard r.events.count == 1 else { return .none }
        return .some(r.events[0].event.origin)
    }

    @Test func remoteAddressForms() {
        #expect(Self.origin("10.1.2.3") == .some(.init(ip: "10.1.2.3")))
        #expect(Self.origin("10.1.2.3:8200") == .some(.init(ip: "10.1.2.3", port: 8200)))
        #expect(Self.origin("[2001:db8::1]:443") == .some(.init(ip: "2001:db8::1", port: 443)))
        #expect(Self.origin("[::1]") == .some(.init(ip: "::1")))
        #expect(Self.origin("2001:db8::1") == .some(.init(ip: "2001:db8::1")))
        #expect(Self.origin("::1") == .some(.init(ip: "::1")))
        #expect(Self.origin("::ffff:10.0.0.1") == .some(.init(ip: "::ffff:10.0.0.1")))
        #expect(Self.origin("fe80::1%eth0") == .some(.init(ip: "fe80::1%eth0")))
        #expect(Self.origin("0.0.0.0:0") == .some(.init(ip: "0.0.0.0", port: 0)))
        #expect(Self.origin("255.255.255.255:65535") == .some(.init(ip: "255.255.255.255", port: 65535)))
        // Not an address: the event is kept, without an origin.
        for garbage in ["garbage", "not an ip", "cafe", "deadbeef", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1..2.3",
                        "１０.０.０.１", "10.0.0.1:http", "10.0.0.1:70000", "10.0.0.1:", "[::1", "[::1]x", "[::1]:x",
                        "[::1]:99999", "", "localhost:8200", "fe80::1%", "fe80::1%eth 0", "::g"] {
            #expect(Self.origin(garbage) == .some(nil), "\(garbage)")
        }
    }

    @Test func remotePortField() {
        #expect(Self.origin("10.1.2.3", port: "5555") == .some(.init(ip: "10.1.2.3", port: 5555)))
        // The explicit field wins over a port in the address.
        #expect(Self.origin("10.1.2.3:80", port: "5555") == .some(.init(ip: "10.1.2.3", port: 5555)))
        #expect(Self.origin("10.1.2.3:80", port: "null") == .some(.init(ip: "10.1.2.3", port: 80)))
        #expect(Self.origin("[::1]:80", port: "0") == .some(.init(ip: "::1", port: 0)))
        // Out of range or not an integer: the line is rejected.
        for bad in ["70000", "-1", "1.5", "\"80\"", "080"] {
            let r = decodeLines([Self.rec(request: #""remote_address":"10.1.2.3","remote_port":\#(bad)"#)])
            #expect(r.events.isEmpty && r.rejected.count == 1, "\(bad)")
        }
    }

    @Test func namespacePath() throws {
        let r = decodeLines([
            Self.rec(id: "a", path: "secret/data/prod/db", request: #""namespace":{"id":"Xyz12","path":"team-a/"},"mount_point":"secret/""#),
            Self.rec(id: "b", request: #""namespace":{"id":"root"}"#),
            Self.rec(id: "c", request: #""namespace":{"id":"root","path":""}"#),
            Self.rec(id: "d", request: #""namespace":null"#),
        ])
        #expect(r.rejected.isEmpty)
        let a = try #require(r.event(requestID: "a"))
        #expect(a.secret == .init(store: "secret/", path: "secret/data/prod/db", environment: "prod", namespace: "team-a/"))
        for id in ["b", "c", "d"] { #expect(r.event(requestID: id)?.secret?.namespace == nil) }
    }

    @Test func denialForms() throws {
        let anon = #"{"token_type":"default"}"#
        let oneError = #""1 error occurred:\n\t* permission denied\n\n""#
        let r = decodeLines([
            Self.rec(id: "a", error: #""permission denied""#),
            Self.rec(id: "b", error: oneError),
            Self.rec(id: "c", auth: anon, error: #""permission denied""#),
            Self.rec(id: "d", auth: anon, error: oneError),
            Self.rec(id: "e", auth: #"{"accessor":"x","display_name":"token-app","policies":["p"],"policy_results":{"allowed":false}}"#),
            Self.rec(id: "f", auth: anon, error: #""permission denied""#),   // a second for the same shape
            Self.rec(id: "g", op: "update", path: "auth/userpass/login/bob", auth: anon, request: #""mount_type":"userpass""#, error: #""invalid username or password""#),
            Self.rec(id: "h", error: #""missing client token""#),
            Self.rec(id: "i", error: #""something CANARY-ERR-TEXT broke""#),
        ])
        #expect(r.rejected.isEmpty)
        #expect(r.event(requestID: "a")?.outcome == .denied && r.event(requestID: "a")?.reason == "permission denied")
        #expect(r.event(requestID: "b")?.reason == "permission denied")
        #expect(r.event(requestID: "c")?.reason == "invalid or missing token")
        #expect(r.event(requestID: "d")?.reason == "invalid or missing token")
        #expect(r.event(requestID: "d")?.identity.kind == .unknown)
        #expect(r.event(requestID: "e")?.outcome == .denied && r.event(requestID: "e")?.reason == "permission denied")
        let login = try #require(r.event(requestID: "g"))
        #expect(login.action == .login && login.outcome == .denied && login.reason == "invalid credentials")
        #expect(login.identity == .init(kind: .unknown, method: "userpass"))
        #expect(r.event(requestID: "h")?.reason == "missing client token")
        let other = try #require(r.event(requestID: "i"))
        #expect(other.outcome == .error)
        #expect(!(other.reason ?? "").contains("CANARY"))
        #expect(!contains(other.canonicalJSON(), "CANARY"))
    }

    @Test func routineAndIgnoredRecords() {
        let r = decodeLines([
            Self.rec(id: "a", op: "read", path: "auth/token/lookup-self"),
            Self.rec(id: "b", op: "update", path: "sys/capabilities-self"),
            Self.rec(id: "c", op: "read", path: "auth/token/lookup-self", error: #""permission denied""#),
            Self.rec(id: "d", op: "read", path: "sys/internal/ui/mounts/secret/x"),
            Self.rec(id: "e", op: "update", path: "sys/audit/test"),
            Self.rec(id: "f", op: "help", path: "secret/data/x"),
            Self.rec("request", id: nil),
        ])
        #expect(r.events.map { $0.event.requestID } == ["c"])   // a denied self look-up is kept
        #expect(r.ignored.map(\.line) == [1, 2, 4, 5, 6, 7])
    }

    @Test func actionsFromPathsAndOperations() {
        let cases: [(String, String, String)] = [
            ("read", "secret/data/x", "read"), ("list", "secret/metadata/", "list"), ("create", "secret/data/x", "write"),
            ("update", "secret/data/x", "write"), ("patch", "secret/data/x", "write"), ("delete", "secret/data/x", "delete"),
            ("update", "auth/token/create-orphan", "token_create"), ("update", "auth/token/revoke-accessor", "token_revoke"),
            ("read", "auth/oidc/oidc/callback", "login"), ("update", "auth/kubernetes/login", "login"),
            ("delete", "sys/policy/old", "policy_change"), ("update", "sys/audit/file", "audit_change"),
            ("update", "sys/auth/ldap", "auth_change"), ("update", "sys/mounts/kv", "admin"),
            ("read", "sys/policies/acl/p", "read"), ("renew", "auth/token/renew-self", "renew"),
        ]
        for (op, path, want) in cases {
            let r = decodeLines([Self.rec(op: op, path: path)])
            #expect(r.events.first?.event.action.rawValue == want, "\(op) \(path)")
        }
    }

    @Test func ciClaimsInTokenMetadataGiveThePipelineContext() throws {
        func event(_ meta: String, address: String? = #""remote_address":"10.42.9.5""#) -> AccessEvent? {
            let auth = #"{"accessor":"hmac-sha256:acc","display_name":"jwt-octo-org/payments","policies":["default","payments-ci"],"metadata":{\#(meta)},"token_type":"service"}"#
            return decodeLines([Self.rec(auth: auth, request: address ?? "")]).events.first?.event
        }
        let github = try #require(event(#""role":"payments-ci","repository":"octo-org/payments","workflow":"deploy","job_workflow_ref":"octo-org/payments/.github/workflows/deploy.yml@refs/heads/main","run_id":"1001","run_attempt":"2","environment":"prod","event_name":"workflow_dispatch","actor":"mallory","job":"build""#))
        #expect(github.identity.kind == .pipeline)
        #expect(github.pipeline == .init(provider: "github", repository: "octo-org/payments", name: "deploy",
                                         id: "octo-org/payments/.github/workflows/deploy.yml@refs/heads/main", runID: "1001", attempt: 2,
                                         job: "build", environment: "prod", trigger: .manual, triggerIdentity: "mallory", runnerIP: "10.42.9.5"))
        // It survives the canonical form (the trail's).
        let back = try AccessEvent.decode(github.canonicalJSON(), requireCanonical: true)
        #expect(back.pipeline == github.pipeline)
        // workflow_ref stands in for job_workflow_ref; push is automated; a bad attempt is dropped.
        let push = try #require(event(#""repository":"octo-org/web","workflow_ref":"octo-org/web/.github/workflows/ci.yml@refs/heads/main","event_name":"push","run_attempt":"x""#, address: nil))
        #expect(push.pipeline == .init(provider: "github", repository: "octo-org/web", id: "octo-org/web/.github/workflows/ci.yml@refs/heads/main",
                                       trigger: .automated))
        let gitlab = try #require(event(#""project_path":"octo-org/infra","pipeline_id":"77","pipeline_source":"web","user_login":"bob","job_id":"9001","ci_config_ref_uri":"gitlab.example.com/octo-org/infra//.gitlab-ci.yml@refs/heads/main""#))
        #expect(gitlab.pipeline == .init(provider: "gitlab", repository: "octo-org/infra", id: "gitlab.example.com/octo-org/infra//.gitlab-ci.yml@refs/heads/main",
                                         runID: "77", job: "9001", trigger: .manual, triggerIdentity: "bob", runnerIP: "10.42.9.5"))
        // A plain token minted for the run (`token create -metadata ...`) is the pipeline's too.
        let minted = #"{"accessor":"hmac-sha256:acc","display_name":"token-gha-payments","policies":["default"],"metadata":{"repository":"octo-org/payments","run_id":"7"},"token_type":"service"}"#
        let m = try #require(decodeLines([Self.rec(auth: minted)]).events.first?.event)
        #expect(m.identity.kind == .pipeline && m.identity.method == "token" && m.pipeline?.runID == "7")
        let plain = #"{"accessor":"hmac-sha256:acc","display_name":"token-gha-payments","policies":["default"],"metadata":{"note":"x"},"token_type":"service"}"#
        #expect(decodeLines([Self.rec(auth: plain)]).events.first?.event.identity.kind == .api_key)
        // Metadata without a CI claim (or with non-string values) gives no pipeline.
        #expect(event(#""role":"deployer""#)?.pipeline == nil)
        #expect(event(#""repository":5,"run_id":null"#)?.pipeline == nil)
    }

    @Test func identityKinds() {
        func kind(_ auth: String, path: String = "secret/data/x", op: String = "read", mount: String? = nil, response: String? = nil) -> AccessEvent.Identity? {
            let extra = mount.map { #""mount_type":"\#($0)""# } ?? ""
            return decodeLines([Self.rec(op: op, path: path, auth: auth, request: extra, response: response)]).events.first?.event.identity
        }
        #expect(kind(#"{"display_name":"root","policies":["root"]}"#)?.kind == .root)
        #expect(kind(#"{"display_name":"token","token_policies":["root"]}"#)?.kind == .root)
        #expect(kind(#"{"display_name":"ldap-bob","policies":["default"]}"#)?.kind == .human)
        #expect(kind(#"{"display_name":"kubernetes-ns-sa","policies":["default"]}"#)?.kind == .service)
        #expect(kind(#"{"display_name":"token-ci","policies":["default"]}"#)?.kind == .api_key)
        #expect(kind(#"{"display_name":"jwt-x","policies":["default"],"metadata":{"repository":"o/r"}}"#)?.kind == .pipeline)
        #expect(kind(#"{"display_name":"jwt-x","policies":["default"],"metadata":{"role":"deployer"}}"#)?.kind == .service)
        #expect(kind(#"{"display_name":"weird","policies":["default"]}"#)?.kind == .unknown)
        let merged = kind(#"{"entity_id":"e1","display_name":"oidc-a","policies":["a"],"identity_policies":["a","b"]}"#)
        #expect(merged == .init(id: "e1", name: "oidc-a", kind: .human, method: "oidc", policies: ["a", "b"]))
        // A login takes its identity from response.auth, its method from the mount type.
        let login = kind(#"{"token_type":"default"}"#, path: "auth/ldap/login/bob", op: "update", mount: "ldap",
                         response: #"{"auth":{"display_name":"ldap-bob","entity_id":"e2","policies":["default"]},"data":{"x":1}}"#)
        #expect(login == .init(id: "e2", name: "ldap-bob", kind: .human, method: "ldap", policies: ["default"]))
    }

    @Test func secretValuesNeverReachEvents() throws {
        let canary = "CANARY-s3cr3t-VALUE"
        let canaryInt = "73519864207"
        let data = #"{"password":"\#(canary)","pin":\#(canaryInt),"flag":true,"off":false,"n":null,"nested":{"deep":["\#(canary)",\#(canaryInt),{"\#(canary)":true}]}}"#
        let auth = #"{"accessor":"hmac-sha256:acc","display_name":"token-app","policies":["default"],"metadata":{"note":"\#(canary)","num":\#(canaryInt),"\#(canary)":false},"token_type":"service","unknown":{"x":["\#(canary)",\#(canaryInt),true]}}"#
        let lines = [
            Self.rec("request", id: "a", op: "create", auth: auth, request: #""data":\#(data),"headers":{"x":["\#(canary)"]},"client_token":"\#(canary)""#),
            Self.rec("response", id: "a", op: "create", auth: auth, request: #""data":\#(data)"#,
                     response: #"{"data":\#(data),"secret":{"lease_id":"\#(canary)"},"wrap_info":{"token":"\#(canary)"},"headers":{"h":\#(canaryInt)}}"#,
                     top: #""extra":\#(data),"\#(canary)":\#(canaryInt)"#),
            // A login: response.auth is read; response.data is not.
            Self.rec("response", id: "b", op: "update", path: "auth/userpass/login/alice", auth: #"{"token_type":"default"}"#,
                     request: #""data":{"password":"\#(canary)"},"mount_type":"userpass""#,
                     response: #"{"auth":{"client_token":"\#(canary)","accessor":"acc2","display_name":"userpass-alice","policies":["default"],"metadata":{"pw":"\#(canary)","n":\#(canaryInt),"b":true}},"data":\#(data)}"#),
            // Unanswered: the request line becomes the event.
            Self.rec("request", id: "c", op: "update", auth: auth, request: #""data":\#(data)"#, error: #""\#(canary) went wrong""#),
        ]
        let r = decodeLines(lines)
        #expect(r.rejected.isEmpty)
        try #require(r.events.count == 3)
        #expect(r.event(requestID: "b")?.identity.name == "userpass-alice")
        for (e, _) in r.events {
            let c = e.canonicalJSON()
            #expect(!contains(c, canary))
            #expect(!contains(c, canaryInt))
            #expect(!contains(c, "true") && !contains(c, "false"))
            #expect(!(e.reason ?? "").contains(canary))
        }
    }

    // MARK: - Pairing

    @Test func unpairedRequestAndResponseWithoutRequest() throws {
        var d = VaultAuditDecoder()
        var out: [DecodeOutput] = []
        d.decode(line: Array(Self.rec("request", id: "lonely", time: "2024-05-01T10:00:00Z", op: "delete").utf8), lineNumber: 1, into: &out)
        #expect(out.isEmpty && d.pendingCount == 1)
        d.decode(line: Array(Self.rec("response", id: "orphan").utf8), lineNumber: 2, into: &out)
        d.finish(into: &out)
        #expect(d.pendingCount == 0)
        let r = Decoded(out)
        try #require(r.events.count == 2)
        #expect(r.events[0].line == 2 && r.events[0].event.requestID == "orphan" && r.events[0].event.outcome == .success)
        let lonely = r.events[1]
        #expect(lonely.line == 1)
        #expect(lonely.event.outcome == .error && lonely.event.reason == "no response logged")
        #expect(lonely.event.action == .delete)
        #expect(lonely.event.time.description == "2024-05-01T10:00:00Z")
        // Finishing again emits nothing more.
        var more: [DecodeOutput] = []
        d.finish(into: &more)
        #expect(more.isEmpty)
    }

    @Test func maxPendingEvictsOldest() throws {
        var d = VaultAuditDecoder(maxPending: 2)
        var out: [DecodeOutput] = []
        for (i, id) in ["r1", "r2", "r3"].enumerated() {
            d.decode(line: Array(Self.rec("request", id: id).utf8), lineNumber: i + 1, into: &out)
        }
        // r1 waited longest: evicted as soon as a third request arrived.
        var r = Decoded(out)
        try #require(r.events.count == 1)
        #expect(r.events[0].event.requestID == "r1" && r.events[0].line == 1 && r.events[0].event.reason == "no response logged")
        #expect(d.pendingCount == 2)
        d.decode(line: Array(Self.rec("response", id: "r2").utf8), lineNumber: 4, into: &out)
        d.decode(line: Array(Self.rec("request", id: "r4").utf8), lineNumber: 5, into: &out)
        #expect(d.pendingCount == 2)
        d.finish(into: &out)
        r = Decoded(out)
        #expect(r.events.map { $0.event.requestID! } == ["r1", "r2", "r3", "r4"])
        #expect(r.events.map { $0.event.outcome } == [.error, .success, .error, .error])
        #expect(r.events.map(\.line) == [1, 4, 3, 5])
    }

    @Test func manyPendingRequestsStayBounded() {
        var d = VaultAuditDecoder(maxPending: 100)
        var out: [DecodeOutput] = []
        for i in 0..<10_000 {
            d.decode(line: Array(Self.rec("request", id: "q\(i)").utf8), lineNumber: 2 * i + 1, into: &out)
            if i % 2 == 0 { d.decode(line: Array(Self.rec("response", id: "q\(i)").utf8), lineNumber: 2 * i + 2, into: &out) }
        }
        #expect(d.pendingCount <= 100)
        d.finish(into: &out)
        let r = Decoded(out)
        #expect(r.events.count == 10_000)
        #expect(Set(r.events.map { $0.event.requestID! }).count == 10_000)
        #expect(r.events.filter { $0.event.outcome == .success }.count == 5_000)
    }

    @Test func duplicateRequestIDs() throws {
        // Two request lines for one id then a response: one event.
        var r = decodeLines([Self.rec("request", id: "dup"), Self.rec("request", id: "dup"), Self.rec("response", id: "dup")])
        #expect(r.events.count == 1 && r.events.first?.line == 3 && r.events.first?.event.outcome == .success)
        // Two unanswered requests with one id: one error event (the later line).
        r = decodeLines([Self.rec("request", id: "dup"), Self.rec("request", id: "dup", op: "list")])
        #expect(r.events.count == 1 && r.events.first?.line == 2 && r.events.first?.event.action == .list)
        // The same response twice (two devices, re-ingestion): same event id, recognised downstream.
        r = decodeLines([Self.rec("response", id: "dup"), Self.rec("response", id: "dup")])
        #expect(r.events.count == 2 && r.events[0].event == r.events[1].event)
        // Same request id, different instances: different event ids.
        let a = decodeLines([Self.rec(id: "same")], instance: "a").events.first?.event.id
        let b = decodeLines([Self.rec(id: "same")], instance: "b").events.first?.event.id
        #expect(a != nil && a != b)
    }

    // MARK: - Rejections

    @Test func badLinesAreRejectedWithoutTheirContent() throws {
        let canary = "CANARY-REJECT-42"
        let good = Self.rec(id: "ok")
        var bigLine = Array(#"{"time":"2024-05-01T10:00:00Z","type":"response","x":"\#(canary)"#.utf8)
        bigLine += [UInt8](repeating: 0x41, count: 2 * 1024 * 1024)
        bigLine += Array("\"}".utf8)
        var badUTF8 = Array(Self.rec(path: "secret/\(canary)/").utf8)
        let at = try #require(badUTF8.firstIndex(of: 0x43))   // inside the path
        badUTF8.insert(contentsOf: [0xC3, 0x28, 0xFF], at: at)
        let bad: [(String, [UInt8], String)] = [
            ("not JSON", Array("\(canary) is not json".utf8), "invalid JSON"),
            ("array", Array(#"["\#(canary)",1]"#.utf8), "invalid JSON"),
            ("string", Array(#""\#(canary)""#.utf8), "invalid JSON"),
            ("truncated", Array(Self.rec(path: canary).utf8.dropLast(10)), "invalid JSON"),
            ("trailing", Array((Self.rec() + canary).utf8), "invalid JSON"),
            ("wrong type", Array(Self.rec(canary).utf8), "\"type\""),
            ("missing type", Array(#"{"time":"2024-05-01T10:00:00Z","request":{"id":"\#(canary)"}}"#.utf8), "\"type\""),
            ("missing time", Array(Self.rec(time: nil, path: canary).utf8), "missing \"time\""),
            ("invalid time", Array(Self.rec(time: canary).utf8), "\"time\" is not RFC 3339"),
            ("invalid time in request", Array(Self.rec("request", id: "t1", time: "2024-13-01T00:00:00Z", path: canary).utf8), "\"time\" is not RFC 3339"),
            ("missing time in request", Array(Self.rec("request", id: "t2", time: nil, path: canary).utf8), "missing \"time\""),
            ("invalid UTF-8", badUTF8, "invalid JSON"),
            ("2 MB line", bigLine, "line longer than"),
            ("non-string field", Array(Self.rec(request: #""mount_point":["\#(canary)"]"#).utf8), "invalid JSON"),
            ("overlong field", Array(Self.rec(path: canary + String(repeating: "p", count: 5000)).utf8), "invalid JSON"),
            ("deep nesting", Array(Self.rec(top: #""x":"# + String(repeating: "[", count: 10_000) + canary).utf8), "invalid JSON"),
        ]
        var lines: [[UInt8]] = []
        for (_, l, _) in bad { lines.append(l); lines.append(Array(good.utf8)) }
        var d = VaultAuditDecoder()
        let r = decodeLines(lines, decoder: &d)
        #expect(r.rejected.count == bad.count)
        #expect(r.events.count == bad.count)   // the good line after each bad one still decodes
        #expect(r.events.allSatisfy { $0.line % 2 == 0 })
        #expect(r.ignored.isEmpty)
        for (i, (name, _, reason)) in bad.enumerated() {
            let rej = r.rejected.first { $0.line == 2 * i + 1 }
            #expect(rej != nil, "\(name) rejected at line \(2 * i + 1)")
            guard let rej else { continue }
            #expect(rej.reason.contains(reason), "\(name): \(rej.reason)")
            #expect(!rej.reason.contains(canary), "\(name)")
            #expect(!rej.description.contains(canary), "\(name)")
            #expect(rej.reason.utf8.count < 200, "\(name)")
        }
    }

    @Test func requestLineWithBadTimeIsRejectedAtItsLine() {
        // Reported at the request's own line, even though its response arrives and is fine.
        let r = decodeLines([Self.rec("request", id: "t", time: "2024-02-30T00:00:00Z"), Self.rec("response", id: "t"),
                             Self.rec("request", id: "u", time: nil), Self.rec("response", id: "u")], finish: false)
        #expect(r.rejected.map(\.line) == [1, 3])
        #expect(r.events.map(\.line) == [2, 4])
    }

    @Test func blankLinesAreSkipped() {
        let r = decodeLines(["", "   ", "\t\r", Self.rec()])
        #expect(r.all.count == 1 && r.events.first?.line == 4)
    }

    @Test func eventsThatWouldNotFitTheTrailAreRejected() {
        // 256 policies of 1,000 bytes: a valid line under the line limit whose event would
        // encode to far more than an entry may hold.
        let policies = (0..<256).map { #""\#(String(repeating: "p", count: 999))\#($0 % 10)""# }.joined(separator: ",")
        let huge = Self.rec(auth: #"{"display_name":"token-x","policies":[\#(policies)]}"#)
        // Control characters are escaped as six bytes each.
        let ctl = String(repeating: "\\u0001", count: 4000)
        let escaped = Self.rec(path: "secret/\(ctl)", auth: #"{"display_name":"token-\#(ctl)","policies":["p"]}"#,
                               request: #""mount_point":"\#(ctl)","namespace":{"path":"\#(ctl)"}"#)
        let r = decodeLines([huge, escaped, Self.rec()])
        #expect(r.rejected.map(\.line) == [1, 2])
        #expect(r.rejected.allSatisfy { $0.reason.contains("\(AccessEvent.maxEncodedSize)") })
        #expect(r.events.map(\.line) == [3])
        for (e, _) in r.events { #expect(e.canonicalJSON().count <= AccessEvent.maxEncodedSize) }
    }

    // MARK: - Fuzz

    @Test func fuzzedRealLinesNeverCrashAndRoundTrip() throws {
        var seeds = try Fixture.lines("openbao/audit-2.7.2.log")
        seeds += try Fixture.lines("sources/vault-1.json")
        seeds += try Fixture.lines("sources/vault-2.json")
        var rng = SeededRNG(seed: 0xC057_05)
        let inserts: [[UInt8]] = [[0x22], [0x7B], [0x7D], [0x5C], [0x5B], [0x5D], [0x2C], [0x3A], Array("\\u".utf8),
                                  Array("\\uD800".utf8), [0x00], [0xFF], [0xC3], Array("null".utf8), Array("-0".utf8)]
        var d = VaultAuditDecoder(sourceKind: "openbao", instance: "fuzz", maxPending: 64)
        var events = 0, rejected = 0, ignored = 0
        var out: [DecodeOutput] = []
        func check(_ outputs: [DecodeOutput], lineCount: Int) {
            for o in outputs {
                switch o {
                case .event(let e, let line):
                    events += 1
                    #expect(line >= 1 && line <= lineCount)
                    let c = e.canonicalJSON()
                    #expect(c.count <= AccessEvent.maxEncodedSize)
                    do {
                        let back = try AccessEvent.decode(c, requireCanonical: true)
                        #expect(back == e)
                    } catch {
                        Issue.record("line \(line): canonical JSON does not round-trip: \(error) \(String(decoding: c, as: UTF8.self))")
                    }
                case .rejected(let r):
                    rejected += 1
                    #expect(r.line >= 1 && r.line <= lineCount && !r.reason.isEmpty)
                case .ignored(let line, _):
                    ignored += 1
                    #expect(line >= 1 && line <= lineCount)
                }
            }
        }
        let total = 3_000
        for n in 1...total {
            var l = seeds[Int.random(in: 0..<seeds.count, using: &rng)]
            let mutations = Int.random(in: 1...4, using: &rng)
            for _ in 0..<mutations {
                guard !l.isEmpty else { break }
                switch Int.random(in: 0..<100, using: &rng) {
                case 0..<35:   // flip bits of one byte
                    let i = Int.random(in: 0..<l.count, using: &rng)
                    l[i] ^= UInt8(1 << Int.random(in: 0..<8, using: &rng))
                case 35..<50:  // replace a byte
                    l[Int.random(in: 0..<l.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                case 50..<62:  // truncate
                    l.removeLast(Int.random(in: 1...l.count, using: &rng))
                case 62..<85:  // insert syntax
                    l.insert(contentsOf: inserts.randomElement(using: &rng)!, at: Int.random(in: 0...l.count, using: &rng))
                case 85..<90:  // deep nesting
                    let open: UInt8 = Bool.random(using: &rng) ? 0x5B : 0x7B
                    l.insert(contentsOf: [UInt8](repeating: open, count: 10_000), at: Int.random(in: 0...l.count, using: &rng))
                case 90..<95:  // swap digits in the time (keeps the shape, may make it impossible)
                    if let i = l.firstIndex(of: 0x54), i > 3 { l[i - 1] = UInt8.random(in: 48...57, using: &rng) }
                default:       // delete a range
                    let a = Int.random(in: 0..<l.count, using: &rng)
                    l.removeSubrange(a..<min(l.count, a + Int.random(in: 1...40, using: &rng)))
                }
            }
            d.decode(line: l, lineNumber: n, into: &out)
            check(out, lineCount: total)
            out.removeAll(keepingCapacity: true)
        }
        d.finish(into: &out)
        check(out, lineCount: total)
        #expect(d.pendingCount == 0)
        // The mutations must exercise every path.
        #expect(events > 100 && rejected > 500 && ignored > 10)
    }
}
