// Issue 6 end to end: a REAL OpenBao sends its audit records to `custos serve` (socket
// device); two pipeline-like runs (scripts/pipeline-scenario.sh → scripts/pipeline-job.sh)
// read secrets with scoped tokens carrying their CI claims, report their use with
// `custos ci report`, and scan their logs with `custos scan-log --report`. The first run prints
// its DB password base64-encoded and truncated: Custos raises `leaked_secret` and shows the run
// that used the secret; the second reads a secret outside its pipeline scope:
// `pipeline_out_of_scope`. No secret value reaches Custos's data directory or any output.

import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@Suite(
    "pipelines end to end",
    .enabled(
        if: ProcessInfo.processInfo.environment["CUSTOS_SKIP_OPENBAO"] != "1",
        "CUSTOS_SKIP_OPENBAO=1 is set: not starting a real OpenBao"))
struct PipelineEndToEndTests {
    static let policy = """
        owners:
          security: { name: Security team, notify: [ { webhook: "http://127.0.0.1:9/unused" } ] }
        networks:
          runners: [127.0.0.0/8]
        identities:
          - { match: "token-gha-*", kind: pipeline, schedule: always }
          - { match: "github:*", kind: pipeline, schedule: always }
        pipelines:
          runner_networks: [runners]
          scopes:
            - { repository: octo-org/payments, workflow: deploy, environment: prod, secrets: ["secret/data/prod/payments/*"] }
            - { repository: octo-org/payments, secrets: ["secret/data/payments/*"] }
        classes:
          pipeline_out_of_scope: { action: alert, severity: high, owner: security, sla: 1h }
          runner_unknown_ip:     { action: alert, severity: high, owner: security, sla: 1h }
          manual_prod_trigger:   { action: alert, severity: medium, owner: security, sla: 4h }
          leaked_secret:         { action: alert, severity: critical, owner: security, sla: 30m }
        """

    static func get(_ url: String, token: String) async throws -> [[String: Any]] {
        let (code, data) = try await ServeIntegrationTests.http("GET", url, token: token)
        guard code == 200, let arr = try JSONSerialization.jsonObject(with: data) as? [[String: Any]] else {
            throw Failure("GET \(url) answered \(code): \(String(decoding: data.prefix(300), as: UTF8.self))")
        }
        return arr
    }

    @Test("a leaked secret and an out-of-scope read by real pipeline runs against a real OpenBao")
    func leakAndOutOfScope() async throws {
        let custos = try locateCustos()
        let dir = try TempDir("pipelines")
        defer { dir.remove() }
        let httpPort = try ServeIntegrationTests.freePort(), sockPort = try ServeIntegrationTests.freePort()
        let data = dir.path("data")
        try Self.policy.write(toFile: dir.path("policy.yaml"), atomically: true, encoding: .utf8)
        try """
            data: \(data)
            listen: 127.0.0.1:\(httpPort)
            policy: \(dir.path("policy.yaml"))
            notify: false
            audit_socket: { listen: "127.0.0.1:\(sockPort)", format: openbao, instance: bao }
            """.write(toFile: dir.path("serve.yaml"), atomically: true, encoding: .utf8)

        let server = try ServeProcess(custos: custos, config: dir.path("serve.yaml"), port: httpPort, logs: dir, tag: "pipelines")
        defer { server.kill9() }
        try await server.waitUp()
        let base = server.base
        let ingestToken = try server.token("ingest"), auditorToken = try server.token("auditor")

        // The two runs.
        let scenario = dir.path("scenario")
        let scripts = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts")
        var env = ProcessInfo.processInfo.environment
        env["CUSTOS_BIN"] = custos.path
        env["CUSTOS_URL"] = base
        env["CUSTOS_TOKEN"] = ingestToken
        let r = try await run(URL(fileURLWithPath: "/bin/bash"), [scripts.appendingPathComponent("pipeline-scenario.sh").path, scenario,
                                                                   "--socket", "127.0.0.1:\(sockPort)"], environment: env, timeout: 600)
        try r.expect(0, "pipeline scenario")
        func file(_ name: String) -> String { (try? String(contentsOfFile: scenario + "/" + name, encoding: .utf8)) ?? "" }
        // Run 501 leaked: scan-log found it (exit 1) and reported it; run 502 did not leak (exit 0).
        #expect(file("job-501.rc").trimmingCharacters(in: .whitespacesAndNewlines) == "1", "run 501: \(file("job-501.out")) \(file("job-501.err"))")
        #expect(file("job-502.rc").trimmingCharacters(in: .whitespacesAndNewlines) == "0", "run 502: \(file("job-502.out")) \(file("job-502.err"))")
        let values = file("values.txt").split(separator: "\n").map(String.init)
        try #require(values.count == 3)
        let log501 = file("run-501.log")
        // The log really holds the leak, in the two forms masking misses (otherwise this proves nothing).
        #expect(!log501.contains(values[0]), "the job printed the raw value; it should only leak encoded and truncated forms")
        #expect(log501.contains(String(values[0].prefix(20))) && log501.contains("debug: auth header "))
        #expect(file("job-501.err").contains("reported"), "\(file("job-501.err"))")

        // The alerts (the socket device's records and the reports may arrive in any order: wait).
        var alerts: [[String: Any]] = []
        func raised(_ c: String) -> [[String: Any]] { alerts.filter { $0["class"] as? String == c && $0["status"] as? String == "raised" } }
        for _ in 0..<200 {
            alerts = try await Self.get(base + "/v1/alerts?limit=1000", token: auditorToken)
            if !raised("leaked_secret").isEmpty && !raised("pipeline_out_of_scope").isEmpty { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let leaks = raised("leaked_secret")
        #expect(leaks.count == 1, "\(alerts)")
        let leak = try #require(leaks.first)
        #expect((leak["secret"] as? [String: Any])?["path"] as? String == "secret/data/prod/payments/db")
        let leakSummary = leak["summary"] as? String ?? ""
        #expect(leakSummary.contains("octo-org/payments deploy run 501") && leakSummary.contains("rotate it now"), "\(leakSummary)")
        let leakDetails = leak["details"] as? [String: Any] ?? [:]
        #expect((leakDetails["variant"] as? String ?? "").contains("base64"), "\(leakDetails)")
        #expect(leakDetails["run_id"] as? String == "501")

        let oos = raised("pipeline_out_of_scope")
        #expect(oos.count == 1, "\(oos)")
        let o = try #require(oos.first)
        #expect((o["secret"] as? [String: Any])?["path"] as? String == "secret/data/prod/ledger/db")
        #expect((o["details"] as? [String: Any])?["run_id"] as? String == "502")
        #expect((o["summary"] as? String ?? "").contains("octo-org/payments ci run 502"), "\(o)")
        // Run 501 stayed in its scope and on a runner; nothing else alerted.
        #expect(Set(alerts.compactMap { $0["class"] as? String }) == ["leaked_secret", "pipeline_out_of_scope"], "\(alerts.compactMap { $0["summary"] })")

        // The run that used the secret: OpenBao's read (context from the token's CI claims, the
        // runner's address) and the run's own `use` report, side by side.
        let events = try await Self.get(base + "/v1/events?secret=secret/data/prod/payments/db", token: auditorToken)
        let read = try #require(events.first { $0["action"] as? String == "read" && ($0["source"] as? [String: Any])?["kind"] as? String == "openbao" },
                                "no OpenBao read of the DB secret: \(events)")
        let p = try #require(read["pipeline"] as? [String: Any], "\(read)")
        #expect(p["provider"] as? String == "github" && p["repository"] as? String == "octo-org/payments" && p["run_id"] as? String == "501")
        #expect(p["name"] as? String == "deploy" && p["environment"] as? String == "prod" && p["runner_ip"] as? String == "127.0.0.1")
        #expect(p["trigger"] as? String == "automated" && p["trigger_identity"] as? String == "octocat")
        #expect((read["identity"] as? [String: Any])?["kind"] as? String == "pipeline")
        let use = try #require(events.first { $0["action"] as? String == "use" }, "no `use` report: \(events)")
        #expect((use["pipeline"] as? [String: Any])?["run_id"] as? String == "501")
        #expect(events.contains { $0["action"] as? String == "leak" })

        // Blast radius of the leaked secret names the pipeline run.
        let (brCode, brData) = try await ServeIntegrationTests.http("GET", base + "/v1/blast-radius?secret=secret/data/prod/payments/db", token: auditorToken)
        #expect(brCode == 200)
        #expect(String(decoding: brData, as: UTF8.self).contains("octo-org/payments"), "\(String(decoding: brData.prefix(2000), as: UTF8.self))")

        // Graceful stop; the trail verifies; no secret value anywhere in Custos's files or outputs.
        try await server.stop()
        #expect(server.process.terminationStatus == 0)
        let verify = try await run(custos, ["verify", "--data", data, "--vkey", data + "/keys/trail.vkey"], timeout: 120)
        try verify.expect(0, "verify")
        var outputs = [try String(contentsOfFile: dir.path("serve-pipelines.out"), encoding: .utf8),
                       try String(contentsOfFile: dir.path("serve-pipelines.err"), encoding: .utf8)]
        for n in ["job-501.out", "job-501.err", "job-502.out", "job-502.err"] { outputs.append(file(n)) }
        for v in values {
            let needle = String(v.prefix(16))
            for rel in Fixture.files(under: data) {
                let bytes = try Data(contentsOf: URL(fileURLWithPath: data + "/" + rel))
                #expect(bytes.range(of: Data(needle.utf8)) == nil, "a secret value in \(rel)")
            }
            for (i, o) in outputs.enumerated() where i != 2 {   // job-501.out is the job's own (leaky) log
                #expect(!o.contains(needle), "a secret value in output \(i)")
            }
        }
    }
}
