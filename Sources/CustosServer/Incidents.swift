import CustosCore
import CustosStore
import CustosTrail
import Foundation

/// An incident: an alert of high or critical severity and the response steps recorded for it.
public struct Incident: Sendable {
    public enum State: String, Sendable, CaseIterable {
        case open, acknowledged, investigating, decided, closed
    }

    public var alertIndex: UInt64
    public var alert: Alert
    public var steps: [(index: UInt64, step: IncidentStep)] = []
    /// Investigations linked to the incident: named with `--incident`, or run by one of its
    /// responders between the acknowledgement and the verdict.
    public var investigations: [(index: UInt64, record: InvestigationRecord)] = []

    public var id: String { alert.id }
    /// The response goal: the alert's SLA deadline.
    public var deadline: EventTime? { alert.slaDeadline }

    public func first(_ k: IncidentStep.Kind) -> IncidentStep? { steps.first { $0.step.step == k }?.step }
    public var acknowledged: IncidentStep? { first(.acknowledged) }
    public var verdict: IncidentStep? { first(.verdict) }
    public var closed: IncidentStep? { first(.closed) }
    public var actions: [IncidentStep] { steps.filter { $0.step.step == .action }.map(\.step) }
    public var escalations: [IncidentStep] { steps.filter { $0.step.step == .escalated }.map(\.step) }

    public var state: State {
        if closed != nil { return .closed }
        if verdict != nil { return .decided }
        if first(.investigating) != nil { return .investigating }
        if acknowledged != nil { return .acknowledged }
        return .open
    }

    /// People who responded (acknowledged or investigated).
    var responders: Set<String> {
        Set(steps.filter { $0.step.step == .acknowledged || $0.step.step == .investigating }.map(\.step.actor))
    }

    /// Whether the acknowledgement came within the SLA (nil: no SLA, or not acknowledged yet).
    public var acknowledgedWithinSLA: Bool? {
        guard let d = deadline, let a = acknowledged else { return nil }
        return a.time <= d
    }
}

public struct IncidentError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

public enum IncidentBook {
    /// Alerts at this severity or above open an incident.
    public static let openingSeverity: Severity = .high

    /// Every incident in the trail, in the order their alerts were raised.
    public static func load(_ reader: EventReader) throws -> [Incident] {
        var q = AlertQuery()
        q.statuses = [.raised]
        q.severities = Severity.allCases.filter { $0 >= openingSeverity }
        var incidents = try reader.alerts(q).filter { $0.alert.silencedBy == nil }.map { Incident(alertIndex: $0.index, alert: $0.alert) }
        var byID: [String: Int] = [:]
        for (k, i) in incidents.enumerated() { byID[i.id] = k }
        for e in try EventReader.entries(try reader.index.entries(schema: IncidentStep.schema), from: reader.trail) {
            guard case .incident(let s) = e.entry, let k = byID[s.incident] else { continue }
            incidents[k].steps.append((e.index, s))
        }
        let investigations = try reader.investigations()
        for k in incidents.indices {
            let inc = incidents[k]
            let start = inc.acknowledged?.time
            let end = inc.verdict?.time ?? inc.closed?.time
            let who = inc.responders
            incidents[k].investigations = investigations.filter { r in
                if r.record.incident == inc.id { return true }
                guard let start, who.contains(r.record.actor), r.record.time >= start else { return false }
                return end.map { r.record.time <= $0 } ?? true
            }
        }
        return incidents
    }

    /// The incident whose id is `id` or starts with it (at least 6 characters, unambiguous).
    public static func find(_ id: String, in incidents: [Incident]) throws -> Incident {
        if let exact = incidents.first(where: { $0.id == id }) { return exact }
        guard id.count >= 6 else { throw IncidentError("no incident \(id) (give the alert id, or at least its first 6 characters)") }
        let m = incidents.filter { $0.id.hasPrefix(id) }
        guard m.count == 1 else {
            throw IncidentError(m.isEmpty ? "no incident \(id): only alerts of severity high or critical open one (see `custos incident list --state all`)"
                                          : "\(id) is ambiguous: \(m.count) incidents start with it")
        }
        return m[0]
    }

    /// Checks that `kind` may follow the incident's steps so far; throws a clear error that
    /// names the step that must come first.
    public static func check(_ i: Incident, _ kind: IncidentStep.Kind, verdict: IncidentStep.Verdict?, text: String?) throws {
        let s = i.state
        if s == .closed { throw IncidentError("incident \(i.id) is closed (\(i.closed!.time) by \(i.closed!.actor)); nothing more can be recorded") }
        switch kind {
        case .acknowledged:
            if let a = i.acknowledged { throw IncidentError("incident \(i.id) was acknowledged already, by \(a.actor) at \(a.time)") }
        case .investigating:
            guard s == .acknowledged else {
                throw IncidentError(s == .open ? "acknowledge incident \(i.id) first (custos incident ack)" : "incident \(i.id) is \(s.rawValue) already")
            }
        case .verdict:
            guard s == .investigating else {
                throw IncidentError(s == .decided ? "incident \(i.id) has its verdict already (\(i.verdict!.verdict?.rawValue ?? "?"), by \(i.verdict!.actor))"
                                                  : "incident \(i.id) is \(s.rawValue): start investigating first (custos incident investigate)")
            }
            guard verdict != nil else { throw IncidentError("a verdict is false_positive or confirmed") }
            guard let t = text, !t.isEmpty else { throw IncidentError("a verdict needs a reason (--reason)") }
        case .action:
            guard s == .decided else { throw IncidentError("record the verdict of incident \(i.id) before the actions taken") }
            guard let t = text, !t.isEmpty else { throw IncidentError("an action needs a description (--text)") }
        case .closed:
            guard s == .decided else { throw IncidentError("incident \(i.id) is \(s.rawValue): it needs a verdict before it is closed") }
            if i.verdict?.verdict == .confirmed && i.actions.isEmpty {
                throw IncidentError("incident \(i.id) was confirmed: record at least one action taken (custos incident action) before closing it")
            }
            guard let t = text, !t.isEmpty else { throw IncidentError("closing needs a summary (--summary)") }
        case .note:
            guard let t = text, !t.isEmpty else { throw IncidentError("a note needs text") }
        case .escalated:
            guard i.acknowledged == nil else { throw IncidentError("incident \(i.id) was acknowledged; it does not escalate") }
        }
        if let t = text, t.utf8.count > 4096 { throw IncidentError("the text is longer than 4096 bytes") }
    }

    /// The escalations due at `now`: an incident not acknowledged by its deadline goes to the
    /// first owner of its owner's escalation chain, then one more for each further SLA period
    /// (the time from the alert to its deadline) without an acknowledgement.
    public static func dueEscalations(_ incidents: [Incident], policy: Policy, now: EventTime) -> [IncidentStep] {
        var out: [IncidentStep] = []
        for i in incidents where i.acknowledged == nil && i.closed == nil {
            guard let deadline = i.deadline, now >= deadline, let ownerKey = i.alert.owner?.key,
                  let chain = policy.owners[ownerKey]?.escalation, !chain.isEmpty else { continue }
            let period = max(60, deadline.seconds - i.alert.raisedAt.seconds)
            let due = min(chain.count, Int((now.seconds - deadline.seconds) / period) + 1)
            let done = i.escalations.compactMap(\.level).max() ?? 0
            guard due > done else { continue }
            for level in (done + 1)...due {
                out.append(IncidentStep(incident: i.id, step: .escalated, actor: "custos", channel: "custos", time: now,
                                        text: "not acknowledged by \(deadline) (SLA); escalated to \(chain[level - 1])",
                                        escalatedTo: chain[level - 1], level: level))
            }
        }
        return out
    }

    /// The alert as the escalation target receives it: same alert, routed to `owner`.
    public static func escalatedAlert(_ i: Incident, to owner: Policy.Owner, level: Int) -> Alert {
        var a = i.alert
        a.owner = Alert.OwnerRef(key: owner.key, name: owner.name)
        a.summary = "ESCALATED (level \(level), not acknowledged within SLA): " + a.summary
        return a
    }
}
