import CustosAlerting
import CustosCore
@testable import CustosServer
import CustosStore
import CustosTrail
import Foundation
import Testing

/// Incidents: opened by high alerts, the lifecycle enforced, escalation along the owner's
/// chain, investigations linked, every step in the trail.
@Suite struct IncidentTests {
    static let policyYAML = """
        owners:
          sec: { name: Security team, notify: [ { webhook: "http://127.0.0.1:9/x" } ], escalation: [lead, ciso] }
          lead: { name: SecOps lead, notify: [ { webhook: "http://127.0.0.1:9/y" } ] }
          ciso: { name: CISO, notify: [ { webhook: "http://127.0.0.1:9/z" } ] }
        classes:
          failed_threshold: { action: alert, severity: high, owner: sec, sla: 1h, count: 3, window: 5m }
        """

    func t(_ s: String) -> EventTime { EventTime(rfc3339: s)! }

    func step(_ i: Incident, _ k: IncidentStep.Kind, by actor: String = "alice", at time: String, verdict: IncidentStep.Verdict? = nil,
              text: String? = nil, dir: TempDir) throws {
        try IncidentBook.check(i, k, verdict: verdict, text: text)
        let s = IncidentStep(incident: i.id, step: k, actor: actor, channel: "cli", time: t(time), verdict: verdict, text: text,
                             investigations: k == .verdict ? i.investigations.map(\.record.id) : [])
        #expect(try InvestigationLog.record(s, directory: dir.path) != .spooled(""))
    }

    func load(_ dir: TempDir) throws -> Incident {
        let all = try IncidentBook.load(try EventReader(directory: dir.path))
        #expect(all.count == 1)
        return try #require(all.first)
    }

    @Test func fromAlertToClosedWithEscalationAndLinkedQueries() throws {
        let dir = TempDir()
        let loaded = try PolicyLoader.load(yaml: Self.policyYAML, baseDirectory: NSTemporaryDirectory())
        #expect(loaded.policy.owners["sec"]?.escalation == ["lead", "ciso"])
        do {
            let store = try DataStore(directory: dir.path, origin: "t.example/log")
            let d = Detector(engine: DetectionEngine(policy: loaded.policy), clock: { EventTime(rfc3339: "2026-01-02T03:10:00Z")! })
            let ing = Ingestor(store: store, format: .openbao, instance: "t", batchSize: 2, detector: d)
            try ing.ingest(path: dir.write("a.log", IngestDetectionTests.denials([(0, 0), (1, 0), (2, 0)], prefix: "a")))
            _ = try ing.finish()
        }
        var i = try load(dir)
        #expect(i.state == .open && i.alert.severity == .high)
        #expect(i.deadline == t("2026-01-02T04:10:00Z"))
        #expect(Playbook.resolve(i.alert, in: loaded.policy.playbooks)?.id == "PB-SEC-01")

        // Out of order: refused, naming what comes first.
        #expect { try IncidentBook.check(i, .investigating, verdict: nil, text: nil) } throws: { "\($0)".contains("acknowledge") }
        #expect { try IncidentBook.check(i, .closed, verdict: nil, text: "x") } throws: { "\($0)".contains("needs a verdict") }

        // Escalation: nothing before the deadline; level 1 (lead) after it; level 2 (ciso) one SLA
        // period later; then the chain is exhausted.
        #expect(IncidentBook.dueEscalations([i], policy: loaded.policy, now: t("2026-01-02T04:09:59Z")).isEmpty)
        let first = IncidentBook.dueEscalations([i], policy: loaded.policy, now: t("2026-01-02T04:10:00Z"))
        #expect(first.map(\.escalatedTo) == ["lead"] && first.map(\.level) == [1])
        do {
            let store = try DataStore(directory: dir.path)
            try store.appendEntries(first.map { .incident($0) })
        }
        i = try load(dir)
        #expect(IncidentBook.dueEscalations([i], policy: loaded.policy, now: t("2026-01-02T04:30:00Z")).isEmpty)
        let second = IncidentBook.dueEscalations([i], policy: loaded.policy, now: t("2026-01-02T05:20:00Z"))
        #expect(second.map(\.escalatedTo) == ["ciso"] && second.map(\.level) == [2])
        // The escalated alert goes to the chain's owner, marked.
        let esc = IncidentBook.escalatedAlert(i, to: loaded.policy.owners["lead"]!, level: 1)
        #expect(esc.owner?.key == "lead" && esc.summary.hasPrefix("ESCALATED (level 1"))

        // Acknowledged (late): no more escalation; a second acknowledgement is refused.
        try step(i, .acknowledged, at: "2026-01-02T04:40:00Z", dir: dir)
        i = try load(dir)
        #expect(i.state == .acknowledged && i.acknowledgedWithinSLA == false)
        #expect(IncidentBook.dueEscalations([i], policy: loaded.policy, now: t("2026-01-03T00:00:00Z")).isEmpty)
        #expect { try IncidentBook.check(i, .acknowledged, verdict: nil, text: nil) } throws: { "\($0)".contains("acknowledged already, by alice") }

        // Investigating: alice's queries after her acknowledgement are linked, bob's are not
        // unless he names the incident.
        try step(i, .investigating, at: "2026-01-02T04:41:00Z", text: "reviewing the failures", dir: dir)
        for (who, time, incident) in [("alice", "2026-01-02T04:42:00Z", nil), ("bob", "2026-01-02T04:43:00Z", nil),
                                      ("bob", "2026-01-02T04:44:00Z", i.id), ("alice", "2026-01-02T04:00:00Z", nil)] as [(String, String, String?)] {
            _ = try InvestigationLog.record(InvestigationRecord(time: t(time), actor: who, channel: "cli", action: .query,
                                                                parameters: ["identity": "token-ci"], resultCount: 3, incident: incident), directory: dir.path)
        }
        i = try load(dir)
        #expect(i.investigations.map(\.record.actor) == ["alice", "bob"])
        #expect(i.investigations.map(\.record.time) == [t("2026-01-02T04:42:00Z"), t("2026-01-02T04:44:00Z")])

        // Verdict needs a reason; confirmed needs an action before closing.
        #expect { try IncidentBook.check(i, .verdict, verdict: .confirmed, text: nil) } throws: { "\($0)".contains("reason") }
        try step(i, .verdict, at: "2026-01-02T05:00:00Z", verdict: .confirmed, text: "credential stuffing from a CI runner", dir: dir)
        i = try load(dir)
        #expect(i.verdict?.investigations.count == 2)
        #expect { try IncidentBook.check(i, .closed, verdict: nil, text: "done") } throws: { "\($0)".contains("at least one action") }
        try step(i, .action, at: "2026-01-02T05:05:00Z", text: "revoked token-ci; rotated secret/data/prod/db", dir: dir)
        i = try load(dir)
        try step(i, .closed, at: "2026-01-02T05:10:00Z", text: "contained", dir: dir)
        i = try load(dir)
        #expect(i.state == .closed)
        #expect(i.steps.map(\.step.step) == [.escalated, .acknowledged, .investigating, .verdict, .action, .closed])
        #expect { try IncidentBook.check(i, .note, verdict: nil, text: "late") } throws: { "\($0)".contains("closed") }

        // Every step is a canonical trail entry and the trail verifies.
        let layout = TrailLayout(dataDirectory: dir.path)
        let vkey = try String(contentsOfFile: layout.verifierKeyPath, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(TrailVerifier(layout: layout, verifier: try NoteVerifier(vkey: vkey)).verify().isValid)
        // And the JSON the CLI and the API print carries the timeline and the playbook.
        let json = try #require(try JSONSerialization.jsonObject(with: Data(IncidentJSON.show(i, playbook: Playbook.resolve(i.alert, in: Playbook.defaults)))) as? [String: Any])
        #expect(json["state"] as? String == "closed" && (json["steps"] as? [Any])?.count == 6)
        #expect((json["playbook"] as? [String: Any])?["id"] as? String == "PB-SEC-01")
    }

    @Test func stepsRoundTripAndPlaybooksAreConfigurable() throws {
        let s = IncidentStep(incident: "abc123", step: .escalated, actor: "custos", channel: "custos", time: t("2026-01-02T04:10:00Z"),
                             text: "x", escalatedTo: "lead", level: 1, investigations: ["inv-1"])
        #expect(try TrailEntry.decode(s.canonicalJSON()) == .incident(s))
        #expect(s.canonicalJSON().withUnsafeBytes { EntryCheck.canonicalProblem($0) } == nil)
        // Defaults: five playbooks covering every alerting class.
        #expect(Playbook.defaults.map(\.id) == ["PB-SEC-01", "PB-SEC-02", "PB-SEC-03", "PB-SEC-04", "PB-SEC-05", "PB-SEC-06", "PB-SEC-07"])
        for c in AlertClass.allCases where !c.isRoutine {
            #expect(Playbook.defaults.contains { $0.classes.contains(c) }, "\(c) has no default playbook")
        }
        // A policy replaces one by id and adds another; problems are reported by path.
        let loaded = try PolicyLoader.load(yaml: """
            playbooks:
              - { id: PB-SEC-03, title: Travel, classes: [impossible_travel], priority: P1, response_goal: 15m, steps: [call the user] }
              - { id: PB-LOCAL-9, title: Local, classes: [off_hours], steps: [check the rota] }
            """, baseDirectory: NSTemporaryDirectory())
        #expect(loaded.policy.playbooks.count == Playbook.defaults.count + 1)
        #expect(loaded.policy.playbooks.first { $0.id == "PB-SEC-03" }?.responseGoal == 900)
        do {
            _ = try PolicyLoader.load(yaml: """
                owners:
                  sec: { name: S, notify: [ { webhook: "http://127.0.0.1:9/x" } ], escalation: [nobody, sec] }
                playbooks:
                  - { id: PB-X, title: X, classes: [no_such_class], priority: P9, steps: [] }
                """, baseDirectory: NSTemporaryDirectory())
            Issue.record("accepted a bad policy")
        } catch {
            let text = error.problems.map(\.description).joined(separator: "\n")
            #expect(text.contains("owners.sec.escalation[0]") && text.contains("\"nobody\" is not one of the owners"))
            #expect(text.contains("cannot escalate to itself"))
            #expect(text.contains("playbooks[0].classes") && text.contains("playbooks[0].priority") && text.contains("playbooks[0].steps"))
        }
    }
}
