// `custos demo` end to end: the built binary runs its scenario (real OpenBao records posted
// to its own in-process server), every alert class fires, the trail verifies, and the kept
// data directory is what `custos alerts` and `custos verify` see. No OpenBao is started.

import Foundation
import Testing

@Suite("custos demo")
struct DemoTests {
    static let alertingClasses = ["failed_threshold", "out_of_scope", "impossible_travel", "break_glass",
                                  "volume_anomaly", "unknown_ip", "off_hours",
                                  "pipeline_out_of_scope", "runner_unknown_ip", "manual_prod_trigger", "leaked_secret"]

    @Test("demo --data DIR: every class fires, the trail verifies, nothing secret is printed; alerts and verify agree")
    func demoRunsAndKeepsItsTrail() async throws {
        let custos = try locateCustos()
        let dir = try TempDir("demo")
        defer { dir.remove() }
        let data = dir.path("data")
        let r = try await run(custos, ["demo", "--data", data], timeout: 180).expect(0, "custos demo")
        let out = r.stdout

        for c in Self.alertingClasses + ["access_known_ip", "failed_single"] {
            #expect(out.contains(c), "\(c) is not in the demo's output")
        }
        #expect(out.contains("Every alert class fired"), "\(out)")
        #expect(!out.contains("DEMO FAILED"))
        let verification = out.split(separator: "\n").first { $0.hasPrefix("trail OK: ") }
        #expect(verification != nil, "no `trail OK` line in:\n\(out)")
        // Alert fatigue: routine events are logged, not alerted.
        let summary = try #require(out.split(separator: "\n").first { $0.contains(" events logged, ") && $0.contains(" alerts: ") },
                                   "no `N events logged, M alerts` line")
        let numbers = summary.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
        #expect(numbers.count >= 3 && numbers[2] > 0 && numbers[1] < numbers[0], "\(summary)")
        // Owners and their channels, with SLA deadlines and playbooks, from the notifier builders.
        for needle in ["DevOps on-call (devops-oncall)", "Security team (security)", "CISO / SecOps lead (secops-lead)",
                       "SLA deadline 2", "playbook PB-SEC-04", "Subject: [Custos] critical break_glass:",
                       "PagerDuty Events v2", "alertname=custos_unknown_ip", "\"schema\":\"custos.alert/v1\""] {
            #expect(out.contains(needle), "\(needle) is not in the demo's output")
        }
        // Nothing secret: no API token (custos_ + 43 base64url characters), no routing key.
        let all = out + r.stderr
        #expect(all.range(of: "custos_[A-Za-z0-9_-]{43}", options: .regularExpression) == nil, "an API token was printed")
        #expect(!all.contains("R0UT1NGKEY"), "the PagerDuty routing key was printed")
        print("custos demo took \(String(format: "%.1f", r.seconds)) s")

        // The kept directory: verify passes with the demo's root; alerts lists every class.
        let v = try await run(custos, ["verify", "--data", data, "--vkey", data + "/keys/trail.vkey"], timeout: 60).expect(0, "verify")
        #expect(v.stdout.hasPrefix("trail OK: "))
        #expect(v.stdout.contains(String(verification?.split(separator: " ").last ?? "?")), "verify's root differs from the demo's")
        let a = try await run(custos, ["alerts", "--data", data, "--format", "json"], timeout: 60).expect(0, "alerts --format json")
        let alerts = try #require(try JSONSerialization.jsonObject(with: a.stdoutData) as? [[String: Any]])
        let classes = Set(alerts.compactMap { $0["class"] as? String })
        #expect(classes == Set(Self.alertingClasses), "alerts lists \(classes.sorted())")
        #expect(alerts.allSatisfy { $0["sla_deadline"] != nil && ($0["owner"] as? [String: Any])?["key"] != nil })
        // `alerts` recorded itself in the trail (an investigation): one entry more, and it verifies.
        let v2 = try await run(custos, ["verify", "--data", data, "--vkey", data + "/keys/trail.vkey"], timeout: 60).expect(0, "verify after alerts")
        #expect(v2.stdout.hasPrefix("trail OK: ") && !v2.stdout.contains(String(verification?.split(separator: " ").last ?? "?")))
    }

    @Test("demo without --data removes its temporary directory; --data refuses a non-empty directory")
    func temporaryDirectoryAndRefusal() async throws {
        let custos = try locateCustos()
        let r = try await run(custos, ["demo"], timeout: 180).expect(0, "custos demo")
        let line = try #require(r.stdout.split(separator: "\n").first { $0.hasPrefix("Data directory") })
        let path = String(line.dropFirst("Data directory".count).trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "")
        #expect(!path.isEmpty && !FileManager.default.fileExists(atPath: path), "\(path) is still there")

        let dir = try TempDir("demo-busy")
        defer { dir.remove() }
        try "x".write(toFile: dir.path("something"), atomically: true, encoding: .utf8)
        let busy = try await run(custos, ["demo", "--data", dir.path("")], timeout: 60)
        try busy.expect(2, "demo --data on a non-empty directory")
        #expect(busy.stderr.contains("new or empty"))
    }

    @Test("a class that does not fire fails the demo loudly (exit 1)")
    func aMissingClassFailsTheDemo() async throws {
        let custos = try locateCustos()
        let dir = try TempDir("demo-missing")
        defer { dir.remove() }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let examples = dir.path("examples")
        try FileManager.default.copyItem(atPath: root.appendingPathComponent("examples").path, toPath: examples)
        // The same policy with off_hours only logged: the demo must notice the class never fired.
        let policy = examples + "/policy.yaml"
        let text = try String(contentsOfFile: policy, encoding: .utf8)
        let edited = text.replacingOccurrences(of: "off_hours:         { action: alert, severity: medium,   owner: security,      sla: 4h }",
                                               with: "off_hours:         { action: log }")
        #expect(edited != text, "examples/policy.yaml changed; update this test")
        try edited.write(toFile: policy, atomically: true, encoding: .utf8)
        let r = try await run(custos, ["demo", "--examples", examples, "--data", dir.path("data")], timeout: 180)
        try r.expect(1, "demo with off_hours only logged")
        #expect(r.stdout.contains("DEMO FAILED: off_hours"), "\(r.stdout)")
    }
}
