import ArgumentParser
import CustosAlerting
import CustosCore
import CustosServer
import CustosStore
import Foundation

struct IncidentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "incident",
        abstract: "Respond to incidents: acknowledge, investigate, decide, act, close.",
        discussion: """
            An alert of severity high or critical opens an incident; its id is the alert's id \
            (any unambiguous prefix of 6+ characters works). The lifecycle is acknowledged → \
            investigating → verdict (false_positive or confirmed) → action (one or more; at least \
            one for a confirmed incident) → closed. Every step is a trail entry with who and when; \
            queries run by a responder between the acknowledgement and the verdict, and any run \
            with `--incident ID`, are linked to the incident (`incident show` lists them). An \
            incident not acknowledged by its SLA deadline escalates along its owner's `escalation` \
            chain in the policy (`custos incident escalate`, or automatically in `custos serve`).
            """,
        subcommands: [IncidentList.self, IncidentShow.self, IncidentAck.self, IncidentInvestigate.self, IncidentVerdict.self,
                      IncidentAction.self, IncidentClose.self, IncidentNote.self, IncidentEscalate.self])
}

/// Loads the incidents of a data directory.
func loadIncidents(_ data: String) throws -> [Incident] {
    try IncidentBook.load(try openReader(data))
}

/// Records one step after checking that it may follow the incident's steps so far.
func recordStep(data: String, actor: ResponderOptions, id: String, _ kind: IncidentStep.Kind, verdict: IncidentStep.Verdict? = nil,
                text: String? = nil) throws {
    let incidents = try loadIncidents(data)
    let i: Incident
    do {
        i = try IncidentBook.find(id, in: incidents)
        try IncidentBook.check(i, kind, verdict: verdict, text: text)
    } catch let e as IncidentError { throw CLIError.usage(e.message) }
    // A verdict and a close freeze the investigations they rest on.
    let linked = kind == .verdict || kind == .closed ? i.investigations.map(\.record.id) : []
    let step = IncidentStep(incident: i.id, step: kind, actor: actor.resolved, channel: "cli",
                            time: EventTime(unixTime: Date().timeIntervalSince1970), verdict: verdict, text: text, investigations: linked)
    let r: InvestigationLog.Recorded
    do { r = try InvestigationLog.record(step, directory: data) } catch { throw CLIError.operational("\(error)") }
    switch r {
    case .trail(let n): print("incident \(i.id): \(kind.rawValue) by \(step.actor) at \(step.time) (trail entry \(n))")
    case .spooled: print("incident \(i.id): \(kind.rawValue) by \(step.actor) at \(step.time) (recorded; the running server appends it to the trail)")
    }
}

struct IncidentList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List incidents (open ones by default); the look is recorded in the trail.")
    @OptionGroup var data: DataOptions
    @OptionGroup var actor: ActorOptions
    @Option(help: ArgumentHelp("open, acknowledged, investigating, decided, closed, active (all but closed) or all.", valueName: "STATE"))
    var state: String = "active"
    @Option(help: "Output: table or json.") var format: String = "table"

    func validate() throws {
        guard ["active", "all"].contains(state) || Incident.State(rawValue: state) != nil else {
            throw ValidationError("--state must be open, acknowledged, investigating, decided, closed, active or all")
        }
        guard ["table", "json"].contains(format) else { throw ValidationError("--format must be table or json") }
    }

    func run() throws {
        let all = try loadIncidents(data.data)
        let rows = all.filter { state == "all" || (state == "active" ? $0.state != .closed : $0.state.rawValue == state) }
        try recordInvestigation(data: data.data, actor: actor, .incident, parameters: ["state": state], resultCount: rows.count)
        if format == "json" {
            FileHandle.standardOutput.write(Data(IncidentJSON.list(rows)))
            return
        }
        let now = EventTime(unixTime: Date().timeIntervalSince1970)
        printTextTable(header: ["ID", "RAISED", "CLASS", "SEVERITY", "OWNER", "STATE", "SLA DEADLINE", "ACKNOWLEDGED", "SUMMARY"], rows: rows.map { i in
            let ack = i.acknowledged.map { "\($0.time) \($0.actor)" } ?? (i.deadline.map { now > $0 ? "OVERDUE" : "-" } ?? "-")
            return [i.id, i.alert.raisedAt.description, i.alert.alertClass.rawValue, i.alert.severity.rawValue, i.alert.owner?.key ?? "-",
                    i.state.rawValue, i.deadline?.description ?? "-", ack, i.alert.summary]
        })
        stderrPrint("\(rows.count) incident(s)")
    }
}

struct IncidentShow: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show an incident: alert, playbook, timeline, linked queries; the look is recorded in the trail.")
    @OptionGroup var data: DataOptions
    @OptionGroup var actor: ActorOptions
    @Argument(help: ArgumentHelp("The incident (alert) id or a unique prefix.", valueName: "ID")) var id: String
    @Option(help: ArgumentHelp("The policy, for its playbooks (default: the built-in PB-SEC-01 … PB-SEC-07).", valueName: "FILE")) var policy: String?
    @Option(help: "Output: text or json.") var format: String = "text"

    func validate() throws { guard ["text", "json"].contains(format) else { throw ValidationError("--format must be text or json") } }

    func run() throws {
        let incidents = try loadIncidents(data.data)
        let i: Incident
        do { i = try IncidentBook.find(id, in: incidents) } catch let e as IncidentError { throw CLIError.usage(e.message) }
        let playbooks = try policy.map { p -> [Playbook] in
            do { return try PolicyLoader.load(path: p).policy.playbooks } catch { throw CLIError.usage("\(p): the policy has problems (see `custos policy check`)") }
        } ?? Playbook.defaults
        let pb = Playbook.resolve(i.alert, in: playbooks)
        try recordInvestigation(data: data.data, actor: actor, .incident, parameters: ["id": i.id], resultCount: 1, incident: i.id)
        if format == "json" {
            FileHandle.standardOutput.write(Data(IncidentJSON.show(i, playbook: pb)))
            return
        }
        let a = i.alert
        print("incident \(i.id)  [\(i.state.rawValue)]")
        print("  alert:     \(a.alertClass.rawValue), \(a.severity.rawValue), trail entry \(i.alertIndex): \(a.summary)")
        print("  owner:     \(a.owner.map { "\($0.name) (\($0.key))" } ?? "-")   SLA deadline: \(i.deadline?.description ?? "-")")
        print("  identity:  \(a.identity.name ?? a.identity.id ?? "-") (\(a.identity.kind.rawValue))   secret: \(a.secret?.path ?? "-")   origin: \(a.origin?.ip ?? "-")")
        if let pb {
            print("  playbook:  \(pb.id) \(pb.title) (\(pb.priority), respond within \(ConfigDuration.format(pb.responseGoal)))")
            for (k, s) in pb.steps.enumerated() { print("             \(k + 1). \(s)") }
        }
        print("  timeline:")
        print("    \(a.raisedAt)  opened (alert raised)")
        for (n, s) in i.steps {
            var line = "    \(s.time)  \(s.step.rawValue)"
            if let v = s.verdict { line += " \(v.rawValue)" }
            if let e = s.escalatedTo { line += " to \(e) (level \(s.level ?? 0))" }
            line += " by \(s.actor) [\(s.channel)]"
            if let t = s.text { line += ": \(t)" }
            print(line + "  (entry \(n))")
        }
        if let w = i.acknowledgedWithinSLA { print("  acknowledged within SLA: \(w ? "yes" : "NO")") }
        print("  linked investigations: \(i.investigations.count)")
        for (n, r) in i.investigations {
            print("    \(r.time)  \(r.actor) \(r.action.rawValue) \(r.parameters.keys.sorted().map { "\($0)=\(r.parameters[$0]!)" }.joined(separator: " ")) → \(r.resultCount.map(String.init) ?? "-") (entry \(n))")
        }
    }
}

struct IncidentAck: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ack", abstract: "Acknowledge an incident: you saw it, now.")
    @OptionGroup var data: DataOptions
    @OptionGroup var actor: ResponderOptions
    @Argument(help: ArgumentHelp("The incident id or a unique prefix.", valueName: "ID")) var id: String
    @Option(help: ArgumentHelp("An optional note.", valueName: "TEXT")) var text: String?
    func run() throws { try recordStep(data: data.data, actor: actor, id: id, .acknowledged, text: text) }
}

struct IncidentInvestigate: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "investigate", abstract: "Start investigating an acknowledged incident.")
    @OptionGroup var data: DataOptions
    @OptionGroup var actor: ResponderOptions
    @Argument(help: ArgumentHelp("The incident id or a unique prefix.", valueName: "ID")) var id: String
    @Option(help: ArgumentHelp("What is being reviewed.", valueName: "TEXT")) var text: String?
    func run() throws { try recordStep(data: data.data, actor: actor, id: id, .investigating, text: text) }
}

struct IncidentVerdict: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "verdict", abstract: "Record the verdict: false positive or confirmed.")
    @OptionGroup var data: DataOptions
    @OptionGroup var actor: ResponderOptions
    @Argument(help: ArgumentHelp("The incident id or a unique prefix.", valueName: "ID")) var id: String
    @Flag(help: "The alert was a false positive.") var falsePositive = false
    @Flag(help: "The incident is confirmed.") var confirmed = false
    @Option(help: ArgumentHelp("Why (kept in the trail).", valueName: "TEXT")) var reason: String
    func validate() throws { guard falsePositive != confirmed else { throw ValidationError("give exactly one of --false-positive and --confirmed") } }
    func run() throws {
        try recordStep(data: data.data, actor: actor, id: id, .verdict, verdict: confirmed ? .confirmed : .falsePositive, text: reason)
    }
}

struct IncidentAction: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "action", abstract: "Record an action taken (revoked, rotated, blocked …).")
    @OptionGroup var data: DataOptions
    @OptionGroup var actor: ResponderOptions
    @Argument(help: ArgumentHelp("The incident id or a unique prefix.", valueName: "ID")) var id: String
    @Option(help: ArgumentHelp("What was done (never a secret value).", valueName: "TEXT")) var text: String
    func run() throws { try recordStep(data: data.data, actor: actor, id: id, .action, text: text) }
}

struct IncidentClose: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "close", abstract: "Close an incident that has its verdict (and actions, if confirmed).")
    @OptionGroup var data: DataOptions
    @OptionGroup var actor: ResponderOptions
    @Argument(help: ArgumentHelp("The incident id or a unique prefix.", valueName: "ID")) var id: String
    @Option(help: ArgumentHelp("The closing summary.", valueName: "TEXT")) var summary: String
    func run() throws { try recordStep(data: data.data, actor: actor, id: id, .closed, text: summary) }
}

struct IncidentNote: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "note", abstract: "Add a note to an open incident.")
    @OptionGroup var data: DataOptions
    @OptionGroup var actor: ResponderOptions
    @Argument(help: ArgumentHelp("The incident id or a unique prefix.", valueName: "ID")) var id: String
    @Option(help: ArgumentHelp("The note.", valueName: "TEXT")) var text: String
    func run() throws { try recordStep(data: data.data, actor: actor, id: id, .note, text: text) }
}

struct IncidentEscalate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "escalate",
        abstract: "Escalate incidents not acknowledged within their SLA (for cron; `custos serve` does it by itself).",
        discussion: """
            For each open incident past its SLA deadline whose owner has an `escalation` chain in \
            the policy, records an `escalated` step per level due (the first at the deadline, the \
            next after each further SLA period) and, with --notify, sends the alert to that owner \
            marked ESCALATED (the delivery is recorded too).
            """)
    @OptionGroup var data: DataOptions
    @Option(help: ArgumentHelp("The policy (owners and their escalation chains).", valueName: "FILE")) var policy: String
    @Option(help: ArgumentHelp("Evaluate as of this time instead of now (RFC 3339).", valueName: "TIME")) var now: String?
    @Flag(help: "Also notify the escalation targets.") var notify = false

    func run() throws {
        let loaded: LoadedPolicy
        do { loaded = try PolicyLoader.load(path: policy) } catch { throw CLIError.usage("\(policy): the policy has problems (see `custos policy check`)") }
        let t = try now.map { try FilterOptions.parseTime($0, "--now") } ?? EventTime(unixTime: Date().timeIntervalSince1970)
        let incidents = try loadIncidents(data.data)
        let due = IncidentBook.dueEscalations(incidents, policy: loaded.policy, now: t)
        let store = try DataStore(directory: data.data, createIfMissing: false)
        if !due.isEmpty { try store.appendEntries(due.map { .incident($0) }) }
        for s in due { print("incident \(s.incident): escalated to \(s.escalatedTo ?? "-") (level \(s.level ?? 0))") }
        if notify && !due.isEmpty {
            let byID = Dictionary(incidents.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
            let alerts = due.compactMap { s -> Alert? in
                guard let i = byID[s.incident], let to = s.escalatedTo, let o = loaded.policy.owners[to] else { return nil }
                return IncidentBook.escalatedAlert(i, to: o, level: s.level ?? 1)
            }
            let outcomes = runBlocking { await AlertNotifier(policy: loaded.policy).deliver(alerts) }
            let now = EventTime(unixTime: Date().timeIntervalSince1970)
            try store.appendEntries(outcomes.map {
                .delivery(DeliveryRecord(alertID: $0.alertID, owner: $0.ownerKey, targetKind: $0.target.kind, endpoint: $0.target.endpoint,
                                         delivered: $0.delivered, attempts: $0.attempts, error: $0.error, notice: $0.isFailureNotice, time: now))
            })
            for o in outcomes where !o.delivered { stderrPrint("custos: escalation to \(o.ownerKey) via \(o.target.kind) failed: \(o.error ?? "?")") }
        }
        if due.isEmpty { print("no escalation due") }
    }
}
