import Foundation

/// One step of an incident's response, as the trail keeps it (`custos.incident/v1`).
///
/// An alert of high or critical severity opens an incident: the alert's own trail entry is the
/// opening, and the incident's id is the alert's. Each later step is an entry of this schema:
/// acknowledged (who saw it, when) → investigating → verdict (false positive or confirmed) →
/// action (any number) → closed; escalated (not acknowledged within the SLA) and note may come
/// in between. Nothing is ever changed or removed: the incident's state is the fold of its steps.
public struct IncidentStep: Sendable, Equatable {
    public static let schema = "custos.incident/v1"

    public enum Kind: String, Sendable, CaseIterable {
        case acknowledged, investigating, verdict, action, closed, escalated, note
    }

    public enum Verdict: String, Sendable, CaseIterable {
        case falsePositive = "false_positive", confirmed
    }

    /// The incident: the id of the alert that opened it.
    public var incident: String
    public var step: Kind
    /// Who: a person (command line `--actor`), an API token's name, or `custos` for escalations.
    public var actor: String
    /// `cli`, `api:<role>`, or `custos` (automatic).
    public var channel: String
    public var time: EventTime
    public var verdict: Verdict?
    /// The reason, the action taken, the closing summary or the note.
    public var text: String?
    /// For an escalation: the owner it went to, and the level in the owner's chain (1 = first).
    public var escalatedTo: String?
    public var level: Int?
    /// Investigations (their ids) this step rests on: the queries run for the incident.
    public var investigations: [String]

    public init(incident: String, step: Kind, actor: String, channel: String, time: EventTime, verdict: Verdict? = nil,
                text: String? = nil, escalatedTo: String? = nil, level: Int? = nil, investigations: [String] = []) {
        self.incident = incident; self.step = step; self.actor = actor; self.channel = channel; self.time = time
        self.verdict = verdict; self.text = text; self.escalatedTo = escalatedTo; self.level = level
        self.investigations = investigations
    }

    public func canonicalJSON() -> [UInt8] {
        var w = CanonicalWriter()
        w.beginObject()
        w.field("actor", actor)
        w.field("channel", channel)
        w.field("escalated_to", escalatedTo)
        w.field("incident", incident)
        w.field("investigations", investigations)
        w.field("level", level)
        w.field("schema", Self.schema)
        w.field("step", step.rawValue)
        w.field("text", text)
        w.key("time"); w.time(time)
        w.field("verdict", verdict?.rawValue)
        w.endObject()
        return w.bytes
    }

    init(tree o: [String: JSONTree]) throws {
        var r = TreeReader(o, "incident")
        actor = try r.string("actor")
        channel = try r.string("channel")
        escalatedTo = try r.optionalString("escalated_to")
        incident = try r.string("incident")
        investigations = try r.stringArray("investigations")
        level = try r.optionalInt("level")
        _ = try r.string("schema")
        guard let k = Kind(rawValue: try r.string("step")) else { throw r.fail("step", "unknown step") }
        step = k
        text = try r.optionalString("text")
        time = try r.time("time")
        if let v = try r.optionalString("verdict") {
            guard let x = Verdict(rawValue: v) else { throw r.fail("verdict", "unknown verdict") }
            verdict = x
        } else { verdict = nil }
        try r.end()
    }
}

/// A response playbook: what to do for which alert classes, how urgently.
public struct Playbook: Sendable, Equatable {
    public var id: String
    public var title: String
    public var classes: [AlertClass]
    /// P1 (most urgent) … P4.
    public var priority: String
    /// Seconds from the alert to a response (acknowledgement).
    public var responseGoal: Int64
    public var steps: [String]

    public init(id: String, title: String, classes: [AlertClass], priority: String, responseGoal: Int64, steps: [String]) {
        self.id = id; self.title = title; self.classes = classes; self.priority = priority
        self.responseGoal = responseGoal; self.steps = steps
    }

    /// PB-SEC-01 … PB-SEC-07, one per family of alert classes. A policy's `playbooks:` section
    /// replaces one of these by id or adds others.
    public static let defaults: [Playbook] = [
        Playbook(id: "PB-SEC-01", title: "Repeated failures on a secret", classes: [.failed_threshold], priority: "P2", responseGoal: 3600, steps: [
            "Identify the identity and origin of the failures (custos alerts, custos query --outcome denied).",
            "Decide whether it is a misconfigured client (expired credential, wrong path) or guessing.",
            "If guessing: block the origin IP, revoke the identity's token, check for a later success from the same origin.",
            "Record the verdict and the actions on the incident.",
        ]),
        Playbook(id: "PB-SEC-02", title: "Access out of scope", classes: [.out_of_scope], priority: "P2", responseGoal: 3600, steps: [
            "Compare the secret read with the identity's scope in the policy.",
            "Run the blast radius of the secret: who else uses it, what breaks if it is rotated.",
            "If unexpected: revoke the access, rotate the secret, fix the identity's policy in the secret store.",
        ]),
        Playbook(id: "PB-SEC-03", title: "Access from an unknown place", classes: [.impossible_travel, .unknown_ip], priority: "P1", responseGoal: 1800, steps: [
            "Confirm with the identity's owner whether the access was theirs (VPN, travel, new runner).",
            "Run the blast radius of the secrets read from the unknown origin (custos blast-radius).",
            "If not theirs: revoke the identity's credentials, rotate the secrets read, block the origin.",
            "If theirs: add the network to the policy so it stops alerting; record the verdict.",
        ]),
        Playbook(id: "PB-SEC-04", title: "Break-glass (root) use", classes: [.break_glass], priority: "P1", responseGoal: 900, steps: [
            "Find the change or incident ticket that justified the break-glass use; without one, treat it as confirmed.",
            "Review every request made with the root identity in the window (custos query --kind root).",
            "Revoke the root token and re-seal the break-glass procedure; rotate what it read.",
        ]),
        Playbook(id: "PB-SEC-05", title: "Unusual volume or hours", classes: [.volume_anomaly, .off_hours], priority: "P3", responseGoal: 14_400, steps: [
            "Check for a deploy, batch job or incident that explains the volume or the time.",
            "If unexplained: review what was read (custos query --identity ...) and treat as a possible exfiltration (PB-SEC-03 steps).",
        ]),
        Playbook(id: "PB-SEC-06", title: "Secret leaked into a build log", classes: [.leaked_secret], priority: "P1", responseGoal: 1800, steps: [
            "Rotate the secret now: a build log is readable by everyone with access to the repository or project, and may be cached or forwarded.",
            "Run the blast radius of the secret (custos blast-radius) so the rotation does not break its other users; update them with the new value.",
            "Delete or restrict the run's log (GitHub: delete the workflow run's logs; GitLab: erase the job) and any artifact that copied it.",
            "Find the step that printed it (the alert names the run, line and variant) and fix it: no echo of secrets, no `set -x`, no debug dumps of the environment.",
            "Review reads of the secret since the run (custos query --secret PATH --from RUN-TIME) for use by someone else.",
        ]),
        Playbook(id: "PB-SEC-07", title: "Pipeline outside its bounds", classes: [.pipeline_out_of_scope, .runner_unknown_ip, .manual_prod_trigger], priority: "P2", responseGoal: 3600, steps: [
            "Identify the run from the alert (provider, repository, workflow, run id and attempt, job, trigger and who triggered it).",
            "Check the change that made the run do it: a new workflow file, a changed job, a new runner, a manual start; ask its author.",
            "If unexpected: cancel the run, revoke the pipeline's token or role in the secret store, and rotate the secrets it read (blast radius first).",
            "If legitimate: widen pipelines.scopes, pipelines.runner_networks or pipelines.manual_triggers in the policy, and record the verdict.",
        ]),
    ]

    /// The playbook for `alert`: the one it names, else the first whose classes include its class.
    public static func resolve(_ alert: Alert, in playbooks: [Playbook]) -> Playbook? {
        if let id = alert.playbook, let p = playbooks.first(where: { $0.id == id }) { return p }
        return playbooks.first { $0.classes.contains(alert.alertClass) }
    }
}
