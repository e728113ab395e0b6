import ArgumentParser
import CustosCore
import CustosServer
import CustosStore
import Foundation

struct Alerts: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the alerts recorded in the trail.",
        discussion: """
            One row per alert: the `raised` entry, with the count, the latest time and the \
            evidence of its `updated` entries (later occurrences folded into it) merged in. \
            Filters combine with AND; a repeated filter matches any of its values; times \
            filter on the alert's first event (RFC 3339 or YYYY-MM-DD; --from inclusive, --to \
            exclusive). NOTIFIED says whether every delivery to the owner succeeded \
            (yes/no), or `-` when none was attempted (ingest without --notify, or silenced). \
            --format json prints an array of alerts in canonical form, each with the trail \
            index of its raised entry. Exit 0 also when nothing matches.
            """)

    @OptionGroup var data: DataOptions
    @OptionGroup var actor: ActorOptions
    @Option(name: .customLong("class"), help: ArgumentHelp("Alert class: \(AlertClass.allCases.map(\.rawValue).joined(separator: ", ")).", valueName: "CLASS"))
    var classes: [String] = []
    @Option(help: ArgumentHelp("Severity: low, medium, high, critical.", valueName: "SEVERITY")) var severity: [String] = []
    @Option(help: ArgumentHelp("Owner key (as in the policy).", valueName: "KEY")) var owner: [String] = []
    @Option(help: ArgumentHelp("Secret path glob.", valueName: "GLOB")) var secret: String?
    @Option(help: ArgumentHelp("Identity name or id glob.", valueName: "GLOB")) var identity: String?
    @Option(help: ArgumentHelp("Earliest alert time (inclusive).", valueName: "TIME")) var from: String?
    @Option(help: ArgumentHelp("Latest alert time (exclusive).", valueName: "TIME")) var to: String?
    @Flag(inversion: .prefixedNo, help: "Include silenced alerts (--no-silenced: only those that notify).")
    var silenced = true
    @Option(help: ArgumentHelp("At most N alerts (the first N in trail order).", valueName: "N")) var limit: Int?
    @Option(help: "Output: table or json.") var format: String = "table"

    func buildQuery() throws -> AlertQuery {
        var q = AlertQuery()
        q.classes = try classes.map { c in
            guard let v = AlertClass(rawValue: c) else {
                throw ValidationError("--class: '\(c)' is not one of \(AlertClass.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return v
        }
        q.severities = try severity.map { s in
            guard let v = Severity(rawValue: s) else { throw ValidationError("--severity: '\(s)' is not one of low, medium, high, critical") }
            return v
        }
        q.owners = owner
        q.secret = secret
        q.identity = identity
        q.from = try from.map { try FilterOptions.parseTime($0, "--from") }
        q.to = try to.map { try FilterOptions.parseTime($0, "--to") }
        if let f = q.from, let t = q.to, !(f < t) { throw ValidationError("--from must be before --to") }
        if !silenced { q.silenced = false }
        if let l = limit, l < 0 { throw ValidationError("--limit must be >= 0") }
        return q
    }

    func validate() throws {
        guard ["table", "json"].contains(format) else { throw ValidationError("--format must be table or json") }
        _ = try buildQuery()
    }

    func run() throws {
        var q = try buildQuery()
        let reader = try openReader(data.data)
        q.statuses = [.raised]
        q.limit = limit
        let raised = try reader.alerts(q)
        // The updated entries of those alerts (same filters: an update repeats its alert's fields).
        var updates: [String: [Alert]] = [:]
        let ids = raised.map(\.alert.id)
        for chunk in stride(from: 0, to: ids.count, by: 500) {
            var uq = AlertQuery()
            uq.statuses = [.updated]
            uq.ids = Array(ids[chunk..<min(ids.count, chunk + 500)])
            for (_, a) in try reader.alerts(uq) { updates[a.id, default: []].append(a) }
        }
        var delivered: [String: Bool] = [:]
        for d in try reader.deliveries() where !d.notice {
            delivered[d.alertID] = (delivered[d.alertID] ?? true) && d.delivered
        }
        let merged: [(index: UInt64, alert: Alert)] = raised.map { r in
            var a = r.alert
            for u in updates[a.id] ?? [] {
                a.count = max(a.count, u.count)
                if u.lastTime > a.lastTime { a.lastTime = u.lastTime }
                a.evidence.append(contentsOf: u.evidence)
            }
            return (r.index, a)
        }
        try recordInvestigation(data: data.data, actor: actor, .alerts, parameters: [
            "class": classes.isEmpty ? nil : classes.joined(separator: ","),
            "severity": severity.isEmpty ? nil : severity.joined(separator: ","),
            "owner": owner.isEmpty ? nil : owner.joined(separator: ","), "secret": secret, "identity": identity,
            "from": from, "to": to, "silenced": silenced ? nil : "excluded", "limit": limit.map(String.init), "format": format,
        ], resultCount: merged.count)
        switch format {
        case "json":
            var out = [UInt8]("[".utf8)
            for (i, r) in merged.enumerated() {
                if i > 0 { out.append(contentsOf: Array(",\n".utf8)) }
                out.append(contentsOf: r.alert.canonicalJSON(index: r.index))
            }
            out.append(contentsOf: Array("]\n".utf8))
            FileHandle.standardOutput.write(Data(out))
        default:
            let header = ["INDEX", "TIME", "CLASS", "SEVERITY", "OWNER", "SLA DEADLINE", "IDENTITY", "SECRET", "ORIGIN", "COUNT", "NOTIFIED", "SUMMARY"]
            let rows = merged.map { r -> [String] in
                let a = r.alert
                let place = [a.origin?.city, a.origin?.country].compactMap { $0 }.joined(separator: ", ")
                let origin = a.origin.map { $0.ip + (place.isEmpty ? "" : " (\(place))") } ?? "-"
                let notified = a.silencedBy != nil ? "silenced" : delivered[a.id].map { $0 ? "yes" : "no" } ?? "-"
                return [String(r.index), a.time.description, a.alertClass.rawValue, a.severity.rawValue,
                        a.owner?.key ?? "-", a.slaDeadline?.description ?? "-",
                        "\(a.identity.name ?? a.identity.id ?? "-") (\(a.identity.kind.rawValue))",
                        a.secret?.path ?? "-", origin, String(a.count), notified, a.summary]
            }
            printTextTable(header: header, rows: rows)
            stderrPrint("\(merged.count) alert(s)")
        }
    }
}

struct SilenceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "silence",
        abstract: "Silence alerts for a while (recorded in the trail), or list silences.",
        subcommands: [SilenceAdd.self, SilenceList.self])
}

struct SilenceAdd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Record a silence: matching alerts are still recorded, but nobody is notified.",
        discussion: """
            A silence needs an owner (who answers for it), a reason, an expiry (a duration \
            such as 2h or 3d from now, at most 90 days, or an RFC 3339 time) and at least one \
            matcher (--class, --identity, --secret): a silence of everything is refused. It is \
            appended to the trail as a `custos.silence/v1` entry and applies to alerts raised \
            from then until it expires, by every later `custos ingest --policy`. Silences \
            cannot be deleted: to end one early, nothing can rewrite the trail, so make the \
            next one narrower (this is deliberate: who silenced what, and why, is evidence).
            """)

    @OptionGroup var data: DataOptions
    @Option(help: ArgumentHelp("Who answers for the silence (a person or a team).", valueName: "NAME")) var owner: String
    @Option(help: ArgumentHelp("Why (kept in the trail).", valueName: "TEXT")) var reason: String
    @Option(help: ArgumentHelp("When it ends: a duration from now (30m, 2h, 3d) or an RFC 3339 time.", valueName: "WHEN")) var expires: String
    @Option(name: .customLong("class"), help: ArgumentHelp("Only alerts of this class.", valueName: "CLASS")) var alertClass: String?
    @Option(help: ArgumentHelp("Only alerts about identities matching this glob (name or id).", valueName: "GLOB")) var identity: String?
    @Option(help: ArgumentHelp("Only alerts about secrets matching this glob.", valueName: "GLOB")) var secret: String?

    static let maxSeconds: Int64 = 90 * 86_400

    func expiry(from now: EventTime) throws -> EventTime {
        if let d = ConfigDuration.parse(expires) {
            guard d > 0, d <= Self.maxSeconds else { throw ValidationError("--expires: \(expires) must be more than 0 and at most 90d") }
            return EventTime(seconds: now.seconds + d, nanos: now.nanos, digits: now.digits)
        }
        guard let t = EventTime(rfc3339: expires) else {
            throw ValidationError("--expires: '\(expires)' is neither a duration (30m, 2h, 3d) nor an RFC 3339 time")
        }
        guard t > now else { throw ValidationError("--expires: \(expires) is in the past") }
        guard t.seconds - now.seconds <= Self.maxSeconds else { throw ValidationError("--expires: \(expires) is more than 90 days away") }
        return t
    }

    func validate() throws {
        for (flag, v, limit) in [("--owner", owner, 256), ("--reason", reason, 4096)] {
            guard !v.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw ValidationError("\(flag) must not be empty") }
            guard v.utf8.count <= limit else { throw ValidationError("\(flag) is longer than \(limit) bytes") }
        }
        if let c = alertClass, AlertClass(rawValue: c) == nil {
            throw ValidationError("--class: '\(c)' is not one of \(AlertClass.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        for (flag, g) in [("--identity", identity), ("--secret", secret)] {
            if let g, g.isEmpty || g.utf8.count > 1024 { throw ValidationError("\(flag) must be 1...1024 bytes") }
        }
        guard alertClass != nil || identity != nil || secret != nil else {
            throw ValidationError("give at least one of --class, --identity, --secret: a silence of every alert is refused")
        }
        _ = try expiry(from: EventTime(unixTime: Date().timeIntervalSince1970))
    }

    func run() throws {
        try requireDataDirectory(data.data)
        let store = try DataStore(directory: data.data, createIfMissing: false)
        let now = EventTime(unixTime: Date().timeIntervalSince1970)
        let c = alertClass.flatMap(AlertClass.init(rawValue:))
        let s = Silence(id: Silence.makeID(owner: owner, createdAt: now, alertClass: c, identity: identity, secret: secret),
                        alertClass: c, identity: identity, secret: secret, owner: owner, reason: reason,
                        createdAt: now, expiresAt: try expiry(from: now))
        let range = try store.appendEntries([.silence(s)])
        print("silence \(s.id) recorded at trail index \(range.lowerBound); expires \(s.expiresAt)")
    }
}

struct SilenceList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the silences in the trail (active ones unless --all).")

    @OptionGroup var data: DataOptions
    @Flag(help: "Include expired silences.") var all = false
    @Option(help: "Output: table or json.") var format: String = "table"

    func validate() throws {
        guard ["table", "json"].contains(format) else { throw ValidationError("--format must be table or json") }
    }

    func run() throws {
        try requireDataDirectory(data.data)
        let reader: EventReader
        do { reader = try EventReader(directory: data.data) } catch let e as IndexError { throw CLIError.usage(e.message) }
        let now = EventTime(unixTime: Date().timeIntervalSince1970)
        let list = try reader.silences().filter { all || $0.expiresAt > now }
        if format == "json" {
            var out = [UInt8]("[".utf8)
            for (i, s) in list.enumerated() {
                if i > 0 { out.append(contentsOf: Array(",\n".utf8)) }
                out.append(contentsOf: s.canonicalJSON())
            }
            out.append(contentsOf: Array("]\n".utf8))
            FileHandle.standardOutput.write(Data(out))
            return
        }
        printTextTable(header: ["ID", "OWNER", "CLASS", "IDENTITY", "SECRET", "CREATED", "EXPIRES", "REASON"],
                       rows: list.map { [$0.id, $0.owner, $0.alertClass?.rawValue ?? "*", $0.identity ?? "*", $0.secret ?? "*",
                                         $0.createdAt.description, $0.expiresAt.description, $0.reason] })
        stderrPrint("\(list.count) silence(s)")
    }
}
