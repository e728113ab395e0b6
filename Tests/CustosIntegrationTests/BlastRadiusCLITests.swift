// `custos blast-radius` end to end through the built binary: events ingested with a policy
// (`ingest --format custos --policy`), then the table, the JSON, an empty result and bad
// input. No OpenBao is started. (The API's JSON is compared with the library's in
// CustosServerTests/BlastRadiusTests; the command prints the library's bytes.)

import CustosCore
import Foundation
import Testing

@Suite("custos blast-radius")
struct BlastRadiusCLITests {
    static let policy = """
        owners:
          sec: { name: Security, notify: [ { webhook: "http://127.0.0.1:9/x" } ] }
        identities:
          - { match: "token-mallory", scope: ["secret/data/dev/*"] }
          - { match: "payments-svc", scope: ["secret/data/prod/payments/*"] }
        classes:
          out_of_scope: { action: alert, severity: high, owner: sec, sla: 1h }
        """

    static func event(_ n: Int, _ time: String, _ name: String, _ kind: IdentityKind, _ path: String,
                      _ outcome: Outcome = .success, ip: String) -> AccessEvent {
        AccessEvent(id: EventID.make(instance: "prod", key: "r\(n)"), time: EventTime(rfc3339: time)!,
                    source: .init(kind: "vault", instance: "prod"), action: .read, outcome: outcome,
                    secret: .init(store: "secret/", path: path), identity: .init(id: "id-\(name)", name: name, kind: kind, method: "approle"),
                    origin: .init(ip: ip), requestID: "r\(n)")
    }

    @Test("table, json, empty result and bad input")
    func blastRadiusCommand() async throws {
        let custos = try locateCustos()
        let dir = try TempDir("blast")
        defer { dir.remove() }
        let data = dir.path("data")
        let db = "secret/data/prod/payments/db"
        let events = [
            Self.event(1, "2026-03-10T08:00:00Z", "payments-svc", .service, db, ip: "10.0.1.10"),
            Self.event(2, "2026-03-10T08:05:00Z", "payments-svc", .service, "secret/data/prod/payments/stripe", ip: "10.0.1.10"),
            Self.event(3, "2026-03-10T09:00:00Z", "token-mallory", .api_key, db, .denied, ip: "203.0.113.9"),
            Self.event(4, "2026-03-12T09:00:00Z", "token-mallory", .api_key, db, ip: "203.0.113.9"),
        ]
        let lines = events.map { String(decoding: $0.canonicalJSON(), as: UTF8.self) }.joined(separator: "\n") + "\n"
        try lines.write(toFile: dir.path("events.ndjson"), atomically: true, encoding: .utf8)
        try Self.policy.write(toFile: dir.path("policy.yaml"), atomically: true, encoding: .utf8)
        try await run(custos, ["ingest", "--data", data, "--format", "custos", "--policy", dir.path("policy.yaml"), "--quiet",
                               dir.path("events.ndjson")], timeout: 60).expect(0, "ingest")

        let window = ["--from", "2026-03-10", "--to", "2026-03-11"]
        let table = try await run(custos, ["blast-radius", "--data", data, "--secret", db] + window, timeout: 60).expect(0, "table")
        for needle in ["Blast radius of \(db)", "2 access(es): 1 succeeded, 1 denied", "payments-svc", "token-mallory",
                       "203.0.113.9", "OUT OF SCOPE (from the 1 out_of_scope alert(s) recorded", "secret/data/prod/payments/stripe",
                       "ONLY CONSUMER", "vault/prod"] {
            #expect(table.stdout.contains(needle), "\(needle) not in:\n\(table.stdout)")
        }
        let withPolicy = try await run(custos, ["blast-radius", "--data", data, "--secret", db, "--policy", dir.path("policy.yaml")] + window,
                                       timeout: 60).expect(0, "table --policy")
        #expect(withPolicy.stdout.contains("OUT OF SCOPE ×1"), "\(withPolicy.stdout)")

        let json = try await run(custos, ["blast-radius", "--data", data, "--secret", db, "--format", "json"] + window, timeout: 60)
            .expect(0, "json")
        let o = try #require(try JSONSerialization.jsonObject(with: json.stdoutData) as? [String: Any])
        #expect(o["schema"] as? String == "custos.blast-radius/v1")
        let totals = try #require(o["totals"] as? [String: Any])
        #expect(totals["events"] as? Int == 2 && totals["denied"] as? Int == 1 && totals["identities"] as? Int == 2)
        let ids = try #require((o["identities"] as? [String: Any])?["items"] as? [[String: Any]])
        #expect(ids.compactMap { $0["name"] as? String } == ["payments-svc", "token-mallory"])

        // Nothing found: a message, exit 0.
        let none = try await run(custos, ["blast-radius", "--data", data, "--secret", "secret/data/nope/*"], timeout: 60).expect(0, "empty")
        #expect(none.stdout.contains("No event and no alert"), "\(none.stdout)")

        // Bad input: exit 2 with a message that says what is wrong.
        for (args, needle) in [(["--secret", "secret/[x"], "unterminated"), (["--secret", db, "--from", "tomorrow"], "--from"),
                               (["--secret", db, "--from", "2026-03-11", "--to", "2026-03-10"], "must be before"),
                               (["--secret", db, "--format", "csv"], "--format")] {
            let r = try await run(custos, ["blast-radius", "--data", data] + args, timeout: 60)
            #expect(r.status == 2, "\(args): exit \(r.status)")
            #expect(r.stderr.contains(needle), "\(args): \(r.stderr)")
        }
    }
}
