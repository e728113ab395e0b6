// End-to-end alerting: the real OpenBao audit log (see OpenBaoIntegrationTests) goes through
// `custos ingest --policy`, the alerts land in the trail, `custos alerts` lists them, and
// with --notify they reach a real webhook receiver (Tests/CustosAlertingTests/Fixtures/
// webhook_receiver.py, on 127.0.0.1) and each delivery is recorded in the trail.

import Foundation
import Testing

@Suite(
    "Alerting end to end",
    .enabled(
        if: ProcessInfo.processInfo.environment["CUSTOS_SKIP_OPENBAO"] != "1",
        "CUSTOS_SKIP_OPENBAO=1 is set: not starting a real OpenBao"))
struct AlertingCLITests {
    static func policy(port: Int) -> String {
        """
        owners:
          sec:  { name: Security team, notify: [ { webhook: "http://127.0.0.1:\(port)/sec" } ] }
          lead: { name: SecOps lead,   notify: [ { webhook: "http://127.0.0.1:\(port)/lead" } ] }
        identities:
          - { match: "token-payment-processor*", kind: service, scope: ["secret/data/dev/*"] }
          - { match: "*" }
        classes:
          break_glass:  { action: alert, severity: critical, owner: lead, sla: 15m, playbook: PB-SEC-04 }
          out_of_scope: { action: alert, severity: critical, owner: sec,  sla: 30m, playbook: PB-SEC-02 }
        """
    }

    static func alertsJSON(_ s: Scenario, _ data: String, _ extra: [String] = []) async throws -> [[String: Any]] {
        let r = try await s.custos(["alerts", "--data", data, "--format", "json"] + extra).expect(0, "alerts json")
        guard let arr = try JSONSerialization.jsonObject(with: r.stdoutData) as? [[String: Any]] else {
            throw Failure("alerts json is not an array of objects: \(r.stdout)")
        }
        return arr
    }

    @Test("ingest --policy records break-glass and out-of-scope alerts; --notify delivers them and records it")
    func detectRecordNotify() async throws {
        let s = try await Fixture.shared.scenario()
        let dir = try TempDir("alerting")
        defer { dir.remove() }
        let receiver = try WebhookReceiver(outDir: dir.path("hooks"))
        defer { receiver.stop() }
        let policyFile = dir.path("policy.yaml")
        try Self.policy(port: receiver.port).write(toFile: policyFile, atomically: true, encoding: .utf8)
        try await s.custos(["policy", "check", policyFile]).expect(0, "policy check")

        // Without --notify: recorded, nobody paged.
        let quiet = dir.path("quiet")
        let q = try await s.custos(["ingest", "--data", quiet, "--format", "openbao", "--policy", policyFile, s.auditLog]).expect(0, "ingest --policy")
        #expect(q.stdout.contains("not delivered"))
        let recorded = try await Self.alertsJSON(s, quiet)
        #expect(receiver.requests().isEmpty, "ingest without --notify sent \(receiver.requests().count) requests")

        // Break-glass: the root token's read of the prod secret is among the evidence.
        let queried = try await s.queryJSON(quiet, ["--kind", "root", "--secret", "secret/data/prod/*"])
        let rootRead = try s.requestID(step: "g1-root-read-prod", path: "secret/data/prod/payments/db")
        let rootIndex = try #require(queried.first { $0.requestID == rootRead }?.index)
        let breakGlass = recorded.filter { $0["class"] as? String == "break_glass" }
        #expect(!breakGlass.isEmpty)
        let evidence = breakGlass.flatMap { ($0["evidence"] as? [Int]) ?? [] }
        #expect(evidence.contains(rootIndex), "root read at \(rootIndex) not in break_glass evidence \(evidence)")
        #expect(breakGlass.allSatisfy { ($0["owner"] as? [String: String])?["key"] == "lead" && $0["severity"] as? String == "critical" })

        // Out of scope: payment-processor's denied read of the prod secret (the attempt is the signal).
        let oos = recorded.filter { $0["class"] as? String == "out_of_scope" }
        let pp = try #require(oos.first { ($0["secret"] as? [String: Any])?["path"] as? String == "secret/data/prod/payments/db" },
                              "no out_of_scope alert for the prod secret: \(oos)")
        #expect(pp["outcome"] as? String == "denied")
        #expect((pp["identity"] as? [String: Any])?["name"] as? String == "token-payment-processor")
        #expect(pp["playbook"] as? String == "PB-SEC-02" && pp["sla_deadline"] != nil)
        // Nothing else alerts: the other classes are not configured (logged only).
        #expect(Set(recorded.compactMap { $0["class"] as? String }) == ["break_glass", "out_of_scope"])

        // Filters.
        #expect(try await Self.alertsJSON(s, quiet, ["--class", "out_of_scope"]).count == oos.count)
        #expect(try await Self.alertsJSON(s, quiet, ["--owner", "lead"]).count == breakGlass.count)
        try await s.custos(["alerts", "--data", quiet]).expect(0, "alerts table")
        let badClass = try await s.custos(["alerts", "--data", quiet, "--class", "nope"])
        try badClass.expect(2, "unknown class")
        #expect(badClass.stderr.contains("nope") && badClass.stderr.contains("break_glass"))

        // With --notify: one webhook POST per raised alert, to its owner's target; deliveries recorded.
        let loud = dir.path("loud")
        let n = try await s.custos(["ingest", "--data", loud, "--format", "openbao", "--policy", policyFile, "--notify", s.auditLog])
        try n.expect(0, "ingest --notify")
        let sent = try await Self.alertsJSON(s, loud)
        #expect(sent.count == recorded.count)
        let reqs = receiver.requests()
        #expect(reqs.count == sent.count, "\(reqs.count) webhook requests for \(sent.count) alerts")
        #expect(n.stdout.contains("notifications delivered \(sent.count)  failed 0"), "\(n.stdout)")
        for r in reqs {
            let body = try #require(try JSONSerialization.jsonObject(with: r.body) as? [String: Any])
            let alert = (body["alert"] as? [String: Any]) ?? body
            let id = try #require(alert["id"] as? String, "webhook body without an alert id: \(body.keys.sorted())")
            let a = try #require(sent.first { $0["id"] as? String == id })
            let owner = (a["owner"] as? [String: String])?["key"] ?? "?"
            #expect(r.path == "/" + owner, "alert \(id) for \(owner) went to \(r.path)")
            for (name, needle) in s.canaryNeedles { #expect(r.body.range(of: needle) == nil, "\(name) in a webhook body") }
        }
        let table = try await s.custos(["alerts", "--data", loud]).expect(0, "alerts table")
        #expect(table.stdout.contains("yes") && !table.stdout.contains(" no "))
        let v = try await s.custos(["verify", "--data", loud, "--vkey", loud + "/keys/trail.vkey"]).expect(0, "verify")
        // events + alerts (raised and fold updates) + one delivery record per webhook request
        #expect(v.stdout.contains("trail OK"))

        // A silence, recorded in the trail, mutes the next matching alert (a fresh trail whose
        // first entry is the silence, so the alerts come after it).
        let muted = dir.path("muted")
        try await s.custos(["ingest", "--data", muted, "--format", "openbao", "/dev/null"]).expect(0, "create an empty trail")
        try await s.custos(["silence", "add", "--data", muted, "--owner", "secops", "--reason", "break-glass drill",
                            "--expires", "2h", "--class", "break_glass"]).expect(0, "silence add")
        let before = receiver.requests().count
        try await s.custos(["ingest", "--data", muted, "--format", "openbao", "--policy", policyFile, "--notify", s.auditLog]).expect(0, "ingest muted")
        let mutedAlerts = try await Self.alertsJSON(s, muted)
        #expect(mutedAlerts.filter { $0["class"] as? String == "break_glass" }.allSatisfy { $0["silenced_by"] != nil })
        #expect(receiver.requests().count - before == oos.count, "only the out_of_scope alerts notify")
        let list = try await s.custos(["silence", "list", "--data", muted]).expect(0, "silence list")
        #expect(list.stdout.contains("break-glass drill"))

        try s.expectNoCanary(under: quiet)
        try s.expectNoCanary(under: loud)
    }

    @Test("a bad policy stops ingest before anything is written")
    func badPolicyWritesNothing() async throws {
        let s = try await Fixture.shared.scenario()
        let dir = try TempDir("badpolicy")
        defer { dir.remove() }
        let policyFile = dir.path("policy.yaml")
        try """
            owners:
              sec: { name: Security team, notify: [] }
            classes:
              break_glass: { action: alert, severity: critical, owner: nobody, sla: 15m }
            """.write(toFile: policyFile, atomically: true, encoding: .utf8)
        let data = dir.path("data")
        let r = try await s.custos(["ingest", "--data", data, "--policy", policyFile, s.auditLog])
        try r.expect(2, "ingest with a bad policy")
        #expect(r.stderr.contains("classes.break_glass"))
        #expect(!FileManager.default.fileExists(atPath: data), "the data directory was created")
        let notify = try await s.custos(["ingest", "--data", data, "--notify", s.auditLog])
        try notify.expect(2, "--notify without --policy")
        #expect(notify.stderr.contains("--notify needs --policy"))
    }
}

/// The webhook receiver script, running for one test.
final class WebhookReceiver: @unchecked Sendable {
    struct Request { var path: String; var body: Data }
    let process = Process()
    let outDir: String
    let port: Int

    init(outDir: String) throws {
        self.outDir = outDir
        try FileManager.default.createDirectory(atPath: outDir, withIntermediateDirectories: true)
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        let script = root.appendingPathComponent("CustosAlertingTests/Fixtures/webhook_receiver.py").path
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script, outDir]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        var line = Data()
        while true {
            let b = pipe.fileHandleForReading.readData(ofLength: 1)
            if b.isEmpty || b == Data("\n".utf8) { break }
            line.append(b)
        }
        guard let p = Int(String(decoding: line, as: UTF8.self)) else {
            process.terminate()
            throw Failure("webhook receiver did not print its port (got \(String(decoding: line, as: UTF8.self)))")
        }
        port = p
    }

    func requests() -> [Request] {
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: outDir)) ?? []).filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }.sorted()
        return files.compactMap { f in
            guard let d = FileManager.default.contents(atPath: outDir + "/" + f),
                  let o = try? JSONSerialization.jsonObject(with: d) as? [String: Any],
                  let path = o["path"] as? String, let b64 = o["body_b64"] as? String, let body = Data(base64Encoded: b64) else { return nil }
            return Request(path: path, body: body)
        }
    }

    func stop() {
        if process.isRunning { process.terminate(); process.waitUntilExit() }
    }
}
