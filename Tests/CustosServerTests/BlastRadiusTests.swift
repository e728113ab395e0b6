import CustosAlerting
import CustosCore
@testable import CustosServer
import CustosStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// `BlastRadius` over a data directory with a realistic mix: a human, a service, root, a CI
/// pipeline and an out-of-scope API key, successes and denials from several addresses, other
/// secrets, and events just outside the window; alerts recorded by the real detector.
@Suite struct BlastRadiusTests {
    static let db = "secret/data/prod/payments/db"
    static let apiKey = "secret/data/prod/payments/api-key"
    static let stripe = "secret/data/prod/payments/stripe"
    static let salaries = "secret/data/prod/hr/salaries"

    static let policyYAML = """
        owners:
          sec: { name: Security, notify: [ { webhook: "http://127.0.0.1:9/x" } ] }
        identities:
          - { match: "token-mallory", scope: ["secret/data/dev/*"] }
          - { match: "payments-svc", kind: service, scope: ["secret/data/prod/payments/*"] }
          - { match: "alice", scope: ["secret/data/prod/hr/*"] }
        classes:
          out_of_scope: { action: alert, severity: high, owner: sec, sla: 1h }
        """

    static let alice = AccessEvent.Identity(id: "ent-alice", name: "alice", kind: .human, method: "userpass", policies: ["default", "payments-admin"])
    static let svc = AccessEvent.Identity(id: "ent-svc", name: "payments-svc", kind: .service, method: "approle", policies: ["payments-read"])
    static let root = AccessEvent.Identity(id: "hmac-sha256:root", name: "root", kind: .root, method: "token", policies: ["root"])
    static let ci = AccessEvent.Identity(id: "ent-ci", name: "gha-deploy", kind: .pipeline, method: "jwt", policies: ["deploy"])
    static let mallory = AccessEvent.Identity(id: "acc-mallory", name: "token-mallory", kind: .api_key, method: "token", policies: ["default"])

    static func e(_ time: String, _ who: AccessEvent.Identity, _ path: String, _ outcome: Outcome = .success, ip: String,
                  source: (String, String) = ("vault", "prod-east"), pipeline: AccessEvent.Pipeline? = nil) -> AccessEvent {
        let rid = "\(time)|\(who.name ?? "")|\(path)|\(ip)"
        return AccessEvent(id: EventID.make(instance: source.1, key: rid), time: EventTime(rfc3339: time)!,
                           source: .init(kind: source.0, instance: source.1), action: .read, outcome: outcome,
                           reason: outcome == .denied ? "permission denied" : nil,
                           secret: .init(store: "secret/", path: path, environment: "prod"), identity: who,
                           origin: .init(ip: ip, port: 40000), requestID: rid, pipeline: pipeline)
    }

    static func run(_ id: String) -> AccessEvent.Pipeline {
        .init(provider: "github", name: "payments/deploy", runID: id, job: "deploy", trigger: .automated, runnerIP: "172.16.0.4")
    }

    static var events: [AccessEvent] {
        [
            // Outside the window (before it, and at its exclusive end).
            e("2026-03-09T23:59:59Z", alice, db, ip: "10.0.0.5"),
            e("2026-03-09T22:00:00Z", alice, salaries, ip: "10.0.0.5"),
            // In the window.
            e("2026-03-10T08:00:00Z", svc, db, ip: "10.0.1.10"),
            e("2026-03-10T09:00:00Z", alice, db, ip: "10.0.0.5"),
            e("2026-03-10T09:20:00Z", alice, db, ip: "10.0.0.5"),
            e("2026-03-10T09:40:00Z", alice, db, .denied, ip: "203.0.113.9"),
            e("2026-03-10T11:00:00Z", alice, salaries, ip: "10.0.0.5"),
            e("2026-03-10T12:00:00Z", svc, db, ip: "10.0.1.10"),
            e("2026-03-10T12:05:00Z", svc, apiKey, ip: "10.0.1.10"),
            e("2026-03-10T12:06:00Z", svc, apiKey, ip: "10.0.1.10"),
            e("2026-03-10T12:07:00Z", svc, stripe, ip: "10.0.1.10"),
            e("2026-03-10T13:00:00Z", root, db, ip: "198.51.100.7"),
            e("2026-03-10T14:00:00Z", ci, db, ip: "172.16.0.4", source: ("openbao", "ci"), pipeline: run("run-1")),
            e("2026-03-10T14:01:00Z", ci, stripe, ip: "172.16.0.4", source: ("openbao", "ci"), pipeline: run("run-1")),
            e("2026-03-10T15:00:00Z", ci, db, ip: "172.16.0.4", source: ("openbao", "ci"), pipeline: run("run-2")),
            e("2026-03-10T16:00:00Z", svc, db, ip: "10.0.1.10"),
            e("2026-03-10T17:00:00Z", mallory, db, .denied, ip: "203.0.113.9"),
            e("2026-03-10T17:01:00Z", mallory, db, .denied, ip: "203.0.113.9"),
            e("2026-03-11T00:00:00Z", svc, db, ip: "10.0.1.10"),
        ]
    }

    /// Appends the events, runs the detector over them as ingest does and appends its alerts.
    static func fill(_ store: DataStore) throws {
        let evs = events
        let r = try store.append(evs)
        #expect(r.accepted == evs.count)
        let policy = try PolicyLoader.load(yaml: policyYAML, baseDirectory: "/").policy
        var engine = DetectionEngine(policy: policy)
        var alerts: [Alert] = []
        let now = EventTime(rfc3339: "2026-03-12T00:00:00Z")!
        for (i, ev) in evs.enumerated() { engine.process(ev, index: r.range.lowerBound + UInt64(i), now: now, into: &alerts) }
        engine.flush(into: &alerts)
        #expect(!alerts.isEmpty)
        _ = try store.appendEntries(alerts.map { .alert($0) })
    }

    static func makeDirectory() throws -> TempDir {
        let dir = TempDir()
        let store = try DataStore(directory: dir.path, origin: "t.example/blast")
        try fill(store)
        return dir
    }

    static func window(_ secret: String, limit: Int = 50) throws -> BlastRadiusRequest {
        try BlastRadiusRequest(secret: secret, from: EventTime(rfc3339: "2026-03-10T00:00:00Z"), to: EventTime(rfc3339: "2026-03-11T00:00:00Z"), limit: limit)
    }

    static var policy: Policy { try! PolicyLoader.load(yaml: policyYAML, baseDirectory: "/").policy }

    @Test func exactSecretAggregation() throws {
        let dir = try Self.makeDirectory()
        let reader = try EventReader(directory: dir.path)
        let r = try BlastRadius.compute(try Self.window(Self.db), reader: reader, policy: Self.policy)

        #expect(r.totals.events == 11 && r.totals.successes == 8 && r.totals.denied == 3 && r.totals.errors == 0)
        #expect(r.totals.identities == 5 && r.totals.consumers == 4 && r.totals.ips == 5)
        #expect(r.totals.firstTime?.description == "2026-03-10T08:00:00Z" && r.totals.lastTime?.description == "2026-03-10T17:01:00Z")
        #expect(r.paths.items.map(\.path) == [Self.db] && r.paths.items[0].consumers == 4)

        // Identities: by count, then key.
        #expect(r.identities.items.map(\.label) == ["alice", "payments-svc", "token-mallory", "gha-deploy", "root"])
        #expect(r.identities.more == 0)
        let alice = r.identities.items[0]
        #expect(alice.kind == .human && alice.id == "ent-alice" && alice.methods == ["userpass"])
        #expect(alice.policies.items == ["default", "payments-admin"])
        #expect(alice.successes == 2 && alice.denied == 1 && alice.errors == 0)
        #expect(alice.firstTime.description == "2026-03-10T09:00:00Z" && alice.lastTime.description == "2026-03-10T09:40:00Z")
        #expect(alice.ips.items == ["10.0.0.5", "203.0.113.9"])
        #expect(alice.scope == .init(rule: "alice", scope: ["secret/data/prod/hr/*"], outside: 3, inside: 0))
        // Other secrets in the window only (the 22:00 read the day before does not count).
        #expect(alice.otherSecrets.items.map(\.path) == [Self.salaries])
        #expect(alice.otherSecrets.items[0].count == 1 && alice.otherSecrets.items[0].onlyConsumer)
        #expect(alice.otherSecrets.items[0].lastTime.description == "2026-03-10T11:00:00Z")

        let svc = r.identities.items[1]
        #expect(svc.successes == 3 && svc.ips.items == ["10.0.1.10"])
        #expect(svc.scope == .init(rule: "payments-svc", scope: ["secret/data/prod/payments/*"], outside: 0, inside: 3))
        #expect(svc.otherSecrets.items.map(\.path) == [Self.apiKey, Self.stripe])
        #expect(svc.otherSecrets.items.map(\.onlyConsumer) == [true, false])
        #expect(svc.otherSecrets.items.map(\.count) == [2, 1])

        let mallory = r.identities.items[2]
        #expect(mallory.kind == .api_key && mallory.successes == 0 && mallory.denied == 2 && mallory.otherSecrets.items.isEmpty)
        #expect(mallory.scope?.outside == 2)
        let ci = r.identities.items[3]
        #expect(ci.kind == .pipeline && ci.scope == nil && ci.otherSecrets.items.map(\.path) == [Self.stripe])
        #expect(ci.otherSecrets.items[0].onlyConsumer == false)
        let root = r.identities.items[4]
        #expect(root.kind == .root && root.policies.items == ["root"] && root.ips.items == ["198.51.100.7"])
        #expect(r.identities.items.allSatisfy { $0.onlyConsumerOf.isEmpty })

        // Addresses.
        #expect(r.ips.items.map(\.ip) == ["10.0.1.10", "203.0.113.9", "10.0.0.5", "172.16.0.4", "198.51.100.7"])
        #expect(r.ips.items.map(\.count) == [3, 3, 2, 2, 1])
        #expect(r.ips.items[1].identities.items == ["token-mallory", "alice"] && r.ips.items[1].denied == 3)

        // Systems and pipelines.
        #expect(r.systems.items.map { "\($0.sourceKind)/\($0.sourceInstance)" } == ["vault/prod-east", "openbao/ci"])
        #expect(r.systems.items.map(\.count) == [9, 2] && r.systems.items[0].stores == ["secret/"])
        #expect(r.pipelines.items.count == 1)
        let p = r.pipelines.items[0]
        #expect(p.provider == "github" && p.name == "payments/deploy" && p.count == 2)
        #expect(p.runIDs.items == ["run-1", "run-2"] && p.runnerIPs.items == ["172.16.0.4"] && p.identities.items == ["gha-deploy"])

        // Out of scope: against the policy, and the alerts the detector recorded.
        #expect(r.outOfScope.basis == "policy")
        #expect(r.outOfScope.identities.items.map(\.identity) == ["alice", "token-mallory"])
        #expect(r.outOfScope.identities.items.map(\.events) == [3, 2])
        #expect(r.outOfScope.alerts == 2)
        #expect(r.alertsByClass == [.out_of_scope: 2])
        #expect(r.alerts.items.map(\.identity) == ["alice", "token-mallory"])
        #expect(r.alerts.items.map(\.count) == [3, 2])
        #expect(r.alerts.items.allSatisfy { $0.secret == Self.db && $0.alertClass == .out_of_scope })
        #expect(!r.truncated)
    }

    @Test func withoutPolicyOutOfScopeComesFromTheAlerts() throws {
        let dir = try Self.makeDirectory()
        let r = try BlastRadius.compute(try Self.window(Self.db), reader: try EventReader(directory: dir.path))
        #expect(r.outOfScope.basis == "alerts")
        #expect(r.outOfScope.identities.items.map(\.identity) == ["alice", "token-mallory"])
        #expect(r.outOfScope.identities.items.map(\.events) == [3, 2])
        #expect(r.outOfScope.identities.items[0].scope == ["secret/data/prod/hr/*"])
        #expect(r.identities.items.allSatisfy { $0.scope == nil })
        let json = String(decoding: r.json(), as: UTF8.self)
        #expect(json.contains("\"basis\":\"alerts\""))
    }

    @Test func globCoversSeveralPathsAndOnlyConsumers() throws {
        let dir = try Self.makeDirectory()
        let r = try BlastRadius.compute(try Self.window("secret/data/prod/payments/*"), reader: try EventReader(directory: dir.path))
        #expect(r.totals.events == 15)
        #expect(r.paths.items.map(\.path) == [Self.db, Self.apiKey, Self.stripe])
        #expect(r.paths.items.map(\.consumers) == [4, 1, 2])
        let svc = try #require(r.identities.items.first { $0.label == "payments-svc" })
        #expect(svc.onlyConsumerOf == [Self.apiKey])
        #expect(svc.paths.items == [Self.db, Self.apiKey, Self.stripe])
        // The other secrets are those outside the glob.
        #expect(svc.otherSecrets.items.isEmpty)
        #expect(r.identities.items.first { $0.label == "alice" }?.otherSecrets.items.map(\.path) == [Self.salaries])
        // A glob with a class.
        let c = try BlastRadius.compute(try Self.window("secret/data/prod/payments/[ds]*"), reader: try EventReader(directory: dir.path))
        #expect(c.paths.items.map(\.path) == [Self.db, Self.stripe])
    }

    @Test func limitsCutListsWithMore() throws {
        let dir = try Self.makeDirectory()
        let r = try BlastRadius.compute(try Self.window(Self.db, limit: 2), reader: try EventReader(directory: dir.path))
        #expect(r.identities.items.count == 2 && r.identities.more == 3)
        #expect(r.ips.items.count == 2 && r.ips.more == 3)
        #expect(r.totals.identities == 5)
        let json = String(decoding: r.json(), as: UTF8.self)
        #expect(json.contains("\"more\":3"))
    }

    @Test func nestedSetsAreBoundedAndSaySo() throws {
        let dir = TempDir()
        do {
            let store = try DataStore(directory: dir.path, origin: "t.example/blast")
            // One identity from 1,200 addresses: more than the 1,000 distinct values tracked per set.
            let evs = (0..<1_200).map { i in
                Self.e("2026-03-10T10:00:00Z", Self.svc, Self.db, ip: "10.9.\(i / 256).\(i % 256)")
            }
            _ = try store.append(evs)
        }
        let r = try BlastRadius.compute(try Self.window(Self.db), reader: try EventReader(directory: dir.path))
        #expect(r.totals.events == 1_200 && r.totals.ips == 1_200)
        let svc = try #require(r.identities.items.first)
        #expect(svc.ips.items.count == BlastRadiusRequest.defaultNestedLimit)
        #expect(svc.ips.more == BlastRadiusRequest.trackLimit - BlastRadiusRequest.defaultNestedLimit)
        #expect(r.ips.items.count == BlastRadiusRequest.defaultLimit && r.ips.more == 1_200 - BlastRadiusRequest.defaultLimit)
        #expect(r.truncated)
        #expect(String(decoding: r.json(), as: UTF8.self).contains("\"truncated\":true"))
    }

    @Test func emptyResultIsNotAnError() throws {
        let dir = try Self.makeDirectory()
        let r = try BlastRadius.compute(try Self.window("secret/data/nope/*"), reader: try EventReader(directory: dir.path))
        #expect(r.isEmpty && r.totals.events == 0 && r.identities.items.isEmpty)
        let o = try #require(try JSONSerialization.jsonObject(with: Data(r.json())) as? [String: Any])
        #expect((o["totals"] as? [String: Any])?["events"] as? Int == 0)
        #expect(o["schema"] as? String == "custos.blast-radius/v1")
        // A window with nothing in it.
        let w = try BlastRadiusRequest(secret: Self.db, from: EventTime(rfc3339: "2027-01-01T00:00:00Z"))
        #expect(try BlastRadius.compute(w, reader: try EventReader(directory: dir.path)).isEmpty)
    }

    @Test func badInputIsRefusedClearly() {
        #expect(throws: BlastRadiusInputError.self) { try BlastRadiusRequest(secret: "") }
        let unterminated = #expect(throws: BlastRadiusInputError.self) { try BlastRadiusRequest(secret: "secret/data/[prod") }
        #expect(unterminated?.message.contains("unterminated '['") == true)
        let reversed = #expect(throws: BlastRadiusInputError.self) {
            try BlastRadiusRequest(secret: "x", from: EventTime(rfc3339: "2026-03-11T00:00:00Z"), to: EventTime(rfc3339: "2026-03-10T00:00:00Z"))
        }
        #expect(reversed?.message.contains("must be before") == true)
        #expect(throws: BlastRadiusInputError.self) { try BlastRadiusRequest(secret: "a\nb") }
        #expect(throws: BlastRadiusInputError.self) { try BlastRadiusRequest(secret: "x", limit: 0) }
        // Literal classes and escapes are fine.
        #expect(BlastRadiusRequest.globProblem("secret/[[]x]") == nil)
        #expect(BlastRadiusRequest.globProblem("secret/[]]") == nil)
        #expect(BlastRadiusRequest.literalGlob("a*b?[c]") == "a[*]b[?][[]c]")
        #expect(Glob.matches(BlastRadiusRequest.literalGlob("a*b?[c]"), "a*b?[c]"))
        #expect(!Glob.matches(BlastRadiusRequest.literalGlob("a*b"), "axxb"))
    }

    @Test func jsonIsStableAndCarriesNoSecretValue() throws {
        let dir = try Self.makeDirectory()
        let r1 = try BlastRadius.compute(try Self.window(Self.db), reader: try EventReader(directory: dir.path), policy: Self.policy)
        let r2 = try BlastRadius.compute(try Self.window(Self.db), reader: try EventReader(directory: dir.path), policy: Self.policy)
        #expect(r1.json() == r2.json())
        let text = String(decoding: r1.json(), as: UTF8.self)
        #expect(text.hasSuffix("}\n") && !text.dropLast().contains("\n"))
        let o = try #require(try JSONSerialization.jsonObject(with: Data(r1.json())) as? [String: Any])
        for k in ["schema", "secret", "from", "to", "totals", "paths", "identities", "ips", "systems", "pipelines", "alerts",
                  "alerts_by_class", "out_of_scope", "truncated"] {
            #expect(o[k] != nil, "missing \(k)")
        }
        let ids = try #require((o["identities"] as? [String: Any])?["items"] as? [[String: Any]])
        #expect(ids.first?["name"] as? String == "alice")
        #expect((ids.first?["scope"] as? [String: Any])?["outside"] as? Int == 3)
        #expect(!text.contains("password") && !text.contains("hmac-sha256:11"))
    }

    @Test func apiAnswersTheSameJSONAndRefusesIngestTokens() async throws {
        let dir = TempDir()
        let (state, t) = try ServeTests.make(dir, policy: Self.policyYAML)
        try Self.fill(state.store)
        let expected = try BlastRadius.compute(try Self.window(Self.db), reader: try EventReader(directory: dir.path), policy: Self.policy).json()
        let expectedGlob = try BlastRadius.compute(try Self.window("secret/data/prod/payments/*"), reader: try EventReader(directory: dir.path),
                                                   policy: Self.policy).json()
        try await buildApplication(state: state).test(.live) { client in
            let auditor: HTTPFields = [.authorization: "Bearer \(t.auditor)"]
            let q = "from=2026-03-10&to=2026-03-11T00:00:00Z"
            try await client.execute(uri: "/v1/blast-radius?secret=\(Self.db)&\(q)", method: .get, headers: auditor) { r in
                #expect(r.status == .ok)
                #expect(r.headers[.contentType] == "application/json")
                #expect(Array(String(buffer: r.body).utf8) == expected)
            }
            try await client.execute(uri: "/v1/blast-radius?secret=secret/data/prod/payments/*&\(q)", method: .get, headers: auditor) { r in
                #expect(Array(String(buffer: r.body).utf8) == expectedGlob)
            }
            try await client.execute(uri: "/v1/blast-radius?secret=\(Self.db)", method: .get,
                                     headers: [.authorization: "Bearer \(t.ingest)"]) { r in
                #expect(r.status == .forbidden)
            }
            try await client.execute(uri: "/v1/blast-radius?secret=\(Self.db)", method: .get, headers: [:]) { r in
                #expect(r.status == .unauthorized)
            }
            for (uri, needle) in [("/v1/blast-radius", "secret is required"),
                                  ("/v1/blast-radius?secret=secret/%5Bx", "unterminated"),
                                  ("/v1/blast-radius?secret=x&from=2026-03-11&to=2026-03-10", "must be before"),
                                  ("/v1/blast-radius?secret=x&from=yesterday", "RFC 3339"),
                                  ("/v1/blast-radius?secret=x&limit=0", "limit")] {
                try await client.execute(uri: uri, method: .get, headers: auditor) { r in
                    #expect(r.status == .badRequest, "\(uri): \(r.status)")
                    #expect(String(buffer: r.body).contains(needle), "\(uri): \(String(buffer: r.body))")
                }
            }
            // Nothing found: 200 with zero totals.
            try await client.execute(uri: "/v1/blast-radius?secret=secret/data/none", method: .get, headers: auditor) { r in
                #expect(r.status == .ok)
                let o = try #require(try JSONSerialization.jsonObject(with: Data(String(buffer: r.body).utf8)) as? [String: Any])
                #expect((o["totals"] as? [String: Any])?["events"] as? Int == 0)
            }
        }
    }
}
