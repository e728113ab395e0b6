import Foundation
import Testing
@testable import CustosCore

/// Runs `python3 ARGS` and returns (status, combined output).
func runPython(_ args: [String]) throws -> (Int32, String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3"] + args
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    try p.run()
    let out = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: out, as: UTF8.self))
}

/// The OCSF mapping (README "Out to SIEMs"): field by field, and every record of a real
/// OpenBao audit log validated against the JSON Schema of OCSF 1.3.0 (PyPI `ocsf-json-schema`).
@Suite struct OCSFTests {
    static let schemaAvailable: Bool = (try? runPython(["-c", "import ocsf_json_schema, jsonschema"]).0) == 0
    static let schemaRequired = ProcessInfo.processInfo.environment["CUSTOS_REQUIRE_OCSF"] == "1"

    /// The OpenBao 2.7.2 fixture decoded: writes, a denied read, invalid-token errors, two
    /// logins (userpass alice, approle), root's reads, a human's read.
    static func fixtureEvents() throws -> [AccessEvent] {
        var d = VaultAuditDecoder(sourceKind: "openbao", instance: "dev")
        return decodeLines(try Fixture.lines("openbao/audit-2.7.2.log"), decoder: &d).events.map(\.event)
    }

    static func object(_ bytes: [UInt8]) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
    }

    static let sample = AccessEvent(
        id: "bdf8000c47727435775c54cb0ed79651", time: EventTime(rfc3339: "2026-11-27T23:18:48.265402866Z")!,
        source: .init(kind: "openbao", instance: "dev"), action: .read, outcome: .denied, reason: "permission denied",
        secret: .init(store: "secret/", path: "secret/data/prod/payments/db", environment: "prod", namespace: "team-a/"),
        identity: .init(id: "hmac-sha256:9dfb", name: "token-payment-processor", kind: .api_key, method: "token", policies: ["default", "payments-read"]),
        origin: .init(ip: "127.0.0.1", port: 36014), requestID: "f8404ecb-072d-92a0-8b8e-43fb17ff878c",
        pipeline: .init(provider: "github", repository: "octo-org/payments", runID: "1001", attempt: 2, trigger: .manual))

    @Test func deniedReadIsAPIActivityRead() throws {
        let r = try Self.object(OCSF.record(Self.sample, index: 41))
        #expect(r["class_uid"] as? Int == 6003 && r["category_uid"] as? Int == 6)
        #expect(r["activity_id"] as? Int == 2 && r["type_uid"] as? Int == 600302)
        #expect(r["status_id"] as? Int == 2 && r["status"] as? String == "Failure" && r["status_detail"] as? String == "permission denied")
        #expect(r["severity_id"] as? Int == 2)
        #expect(r["time"] as? Int == 1_795_821_528_265)
        let md = try #require(r["metadata"] as? [String: Any])
        #expect(md["version"] as? String == "1.3.0" && md["version"] as? String == OCSF.version)
        #expect(md["uid"] as? String == Self.sample.id && md["sequence"] as? Int == 41)
        #expect(md["original_time"] as? String == "2026-11-27T23:18:48.265402866Z")
        #expect((md["product"] as? [String: Any])?["name"] as? String == "Custos")
        let user = try #require((r["actor"] as? [String: Any])?["user"] as? [String: Any])
        #expect(user["uid"] as? String == "hmac-sha256:9dfb" && user["name"] as? String == "token-payment-processor")
        #expect(user["type_id"] as? Int == 99 && user["type"] as? String == "API Key")
        let api = try #require(r["api"] as? [String: Any])
        #expect(api["operation"] as? String == "read")
        #expect((api["request"] as? [String: Any])?["uid"] as? String == "f8404ecb-072d-92a0-8b8e-43fb17ff878c")
        let src = try #require(r["src_endpoint"] as? [String: Any])
        #expect(src["ip"] as? String == "127.0.0.1" && src["port"] as? Int == 36014)
        let res = try #require((r["resources"] as? [[String: Any]])?.first)
        #expect(res["uid"] as? String == "secret/data/prod/payments/db" && res["name"] as? String == "secret/data/prod/payments/db")
        #expect(res["type"] as? String == "secret" && res["namespace"] as? String == "team-a/")
        #expect(res["labels"] as? [String] == ["environment:prod"])
        let un = try #require(r["unmapped"] as? [String: Any])
        #expect((un["pipeline"] as? [String: Any])?["repository"] as? String == "octo-org/payments")
        #expect((un["identity"] as? [String: Any])?["policies"] as? [String] == ["default", "payments-read"])
    }

    @Test func loginIsAuthenticationLogon() throws {
        var e = Self.sample
        e.action = .login; e.outcome = .success; e.reason = nil; e.secret = nil
        e.identity = .init(id: "ent-1", name: "userpass-alice", kind: .human, method: "userpass")
        let r = try Self.object(OCSF.record(e))
        #expect(r["class_uid"] as? Int == 3002 && r["category_uid"] as? Int == 3)
        #expect(r["activity_id"] as? Int == 1 && r["type_uid"] as? Int == 300201)
        #expect(r["status_id"] as? Int == 1 && r["severity_id"] as? Int == 1)
        let user = try #require(r["user"] as? [String: Any])
        #expect(user["name"] as? String == "userpass-alice" && user["type_id"] as? Int == 1 && user["uid"] as? String == "ent-1")
        #expect(r["actor"] == nil && r["api"] == nil && r["resources"] == nil)
        #expect(r["auth_protocol"] as? String == "userpass" && r["auth_protocol_id"] as? Int == 99)
        #expect((r["service"] as? [String: Any])?["name"] as? String == "openbao")
        #expect((r["metadata"] as? [String: Any])?["sequence"] == nil)
    }

    @Test func activitiesAndUserTypes() {
        #expect(OCSF.apiActivity(.read).0 == 2 && OCSF.apiActivity(.list).0 == 2)
        #expect(OCSF.apiActivity(.write).0 == 3 && OCSF.apiActivity(.policyChange).0 == 3)
        #expect(OCSF.apiActivity(.delete).0 == 4 && OCSF.apiActivity(.tokenRevoke).0 == 4)
        #expect(OCSF.apiActivity(.tokenCreate).0 == 1)
        #expect(OCSF.apiActivity(.use).0 == 99 && OCSF.apiActivity(.leak).0 == 99 && OCSF.apiActivity(Action("rotate")).0 == 99)
        #expect(OCSF.userType(.human).0 == 1 && OCSF.userType(.root).0 == 2 && OCSF.userType(.unknown).0 == 0)
        #expect(OCSF.userType(.service).0 == 99 && OCSF.userType(.pipeline).0 == 99 && OCSF.userType(.api_key).0 == 99)
        #expect(OCSF.status(.success).0 == 1 && OCSF.status(.denied).0 == 2 && OCSF.status(.error).0 == 2)
    }

    @Test func unauthenticatedAndNoOrigin() throws {
        var e = Self.sample
        e.identity = .unauthenticated; e.origin = nil; e.pipeline = nil; e.outcome = .error; e.reason = "invalid or missing token"
        let r = try Self.object(OCSF.record(e))
        let user = try #require((r["actor"] as? [String: Any])?["user"] as? [String: Any])
        #expect(user["name"] as? String == "unauthenticated" && user["type_id"] as? Int == 0 && user["uid"] == nil)
        #expect((r["src_endpoint"] as? [String: Any])?["name"] as? String == "unknown")
        #expect(((r["api"] as? [String: Any])?["response"] as? [String: Any])?["error"] as? String == "error")
    }

    @Test func fixtureCoversTheCases() throws {
        let events = try Self.fixtureEvents()
        #expect(events.contains { $0.action == .read && $0.outcome == .denied })
        #expect(events.contains { $0.action == .login })
        #expect(events.contains { $0.identity.kind == .root })
        #expect(events.contains { $0.identity.kind == .human })
        let lines = OCSF.ndjson(events.enumerated().map { (index: Optional(UInt64($0.offset)), event: $0.element) })
            .split(separator: 0x0A).map(Array.init)
        #expect(lines.count == events.count)
        for (l, e) in zip(lines, events) {
            let r = try Self.object(l)
            #expect(r["class_uid"] as? Int == (e.action == .login ? 3002 : 6003))
            #expect(r["type_uid"] as? Int == (r["class_uid"] as? Int ?? 0) * 100 + (r["activity_id"] as? Int ?? -1))
            #expect((r["metadata"] as? [String: Any])?["uid"] as? String == e.id)
        }
        // The fixture's canary secret value never appears (events have no value to carry).
        #expect(!String(decoding: lines.joined(), as: UTF8.self).contains("CANARY"))
    }

    @Test(.enabled(if: schemaAvailable || schemaRequired,
                   "ocsf-json-schema is not installed (python3 -m pip install ocsf-json-schema jsonschema; CI sets CUSTOS_REQUIRE_OCSF=1)"))
    func recordsValidateAgainstOCSF130Schema() throws {
        #expect(Self.schemaAvailable, "CUSTOS_REQUIRE_OCSF=1 but python3 cannot import ocsf_json_schema and jsonschema")
        var events = try Self.fixtureEvents()
        // Beyond the fixture: an unauthenticated error without origin, a pipeline's use and leak, IPv6.
        var a = Self.sample; a.identity = .unauthenticated; a.origin = nil; a.outcome = .error
        var b = Self.sample; b.action = .use; b.outcome = .success; b.reason = nil; b.origin = nil
        b.identity = .init(name: "octo-org/payments", kind: .pipeline); b.pipeline?.runnerIP = "10.1.2.3"
        var c = Self.sample; c.action = .leak; c.origin = .init(ip: "2001:db8::7", port: 443); c.identity.kind = .service
        var d = Self.sample; d.action = .login; d.secret = nil; d.identity = .init(id: "x", kind: .root, method: "oidc"); d.origin = nil
        events += [a, b, c, d]
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("custos-ocsf-\(UUID().uuidString).ndjson")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data(OCSF.ndjson(events.enumerated().map { (index: Optional(UInt64($0.offset)), event: $0.element) })).write(to: file)
        let script = Fixture.root.appendingPathComponent("ocsf/validate_ocsf.py").path
        let (status, out) = try runPython([script, OCSF.version, file.path])
        #expect(status == 0, "\(out)")
        #expect(out.contains("valid \(events.count) records"), "\(out)")
        #expect(out.contains("api_activity") && out.contains("authentication"), "\(out)")
    }
}
