import CustosCore
import Foundation

/// JSON for incidents (CLI and API).
public enum IncidentJSON {
    public static func obj(_ i: Incident, playbook: Playbook?) -> [String: Any] {
        var o: [String: Any] = [
            "id": i.id, "state": i.state.rawValue, "alert_index": i.alertIndex, "class": i.alert.alertClass.rawValue,
            "severity": i.alert.severity.rawValue, "raised_at": i.alert.raisedAt.description, "summary": i.alert.summary,
            "steps": i.steps.map { n, s -> [String: Any] in
                var d: [String: Any] = ["index": n, "step": s.step.rawValue, "actor": s.actor, "channel": s.channel, "time": s.time.description]
                if let v = s.verdict { d["verdict"] = v.rawValue }
                if let t = s.text { d["text"] = t }
                if let e = s.escalatedTo { d["escalated_to"] = e; d["level"] = s.level ?? 0 }
                if !s.investigations.isEmpty { d["investigations"] = s.investigations }
                return d
            },
            "investigations": i.investigations.map { n, r -> [String: Any] in
                ["index": n, "id": r.id, "actor": r.actor, "action": r.action.rawValue, "time": r.time.description, "result_count": r.resultCount ?? -1]
            },
        ]
        if let owner = i.alert.owner { o["owner"] = owner.key }
        if let d = i.deadline { o["sla_deadline"] = d.description }
        if let w = i.acknowledgedWithinSLA { o["acknowledged_within_sla"] = w }
        if let p = playbook { o["playbook"] = ["id": p.id, "title": p.title, "priority": p.priority, "response_goal_seconds": p.responseGoal, "steps": p.steps] as [String: Any] }
        return o
    }

    public static func encode(_ v: Any) -> [UInt8] {
        Array((try? JSONSerialization.data(withJSONObject: v, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])) ?? Data()) + [0x0A]
    }

    /// The incidents with the playbook that applies to each (from `playbooks`: the server's
    /// policy, or the defaults).
    public static func list(_ rows: [Incident], playbooks: [Playbook] = Playbook.defaults) -> [UInt8] {
        encode(rows.map { obj($0, playbook: Playbook.resolve($0.alert, in: playbooks)) })
    }
    public static func show(_ i: Incident, playbook: Playbook?) -> [UInt8] { encode(obj(i, playbook: playbook)) }
}
