import Foundation

extension Policy {
    static let topKeys: Set<String> = ["networks", "geoip", "schedules", "owners", "fallback_owner", "smtp",
                                       "identities", "secrets", "classes", "playbooks", "pipelines"]
    static let classKeys: Set<String> = ["action", "severity", "owner", "sla", "playbook", "fold", "count", "window",
                                         "speed_kmh", "min_km", "min_count", "deviations", "warmup"]
    /// Keys that only some classes understand.
    static let classSpecific: [String: AlertClass] = [
        "count": .failed_threshold, "window": .failed_threshold,
        "speed_kmh": .impossible_travel, "min_km": .impossible_travel,
        "min_count": .volume_anomaly, "deviations": .volume_anomaly, "warmup": .volume_anomaly,
    ]

    /// Reads a policy from a parsed document. Every problem is reported (by key path), not
    /// only the first; a policy with any problem is refused.
    public static func parse(_ root: ConfigNode) throws(ConfigProblems) -> Policy {
        var r = ConfigReader()
        var p = Policy()
        if case .null = root {} else if case .mapping = root {} else {
            r.problem("", root, "expected a mapping at the top level, found \(root.kindName)")
            throw ConfigProblems(r.problems)
        }
        let top = Dictionary(r.mapping(root, "", allowed: topKeys).map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })

        // networks
        for e in r.mapping(top["networks"], "networks") {
            let path = ConfigReader.join("networks", e.key)
            var cidrs: [CIDR] = []
            let items = r.sequence(e.value, path)
            if items.isEmpty { r.problem(path, e.value, "a network needs at least one CIDR") }
            for (i, item) in items.enumerated() {
                guard let text = r.string(item, ConfigReader.join(path, i), required: true) else { continue }
                do { cidrs.append(try CIDR(parsing: text)) } catch {
                    r.problem(ConfigReader.join(path, i), item, "\"\(text)\" is not a CIDR: \(error)")
                }
            }
            p.networks[e.key] = cidrs
        }

        // geoip
        if let g = top["geoip"] {
            let entries = Dictionary(r.mapping(g, "geoip", allowed: ["database", "countries"]).map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
            let db = r.string(entries["database"], "geoip.database", required: true)
            var countries = Set<String>()
            for (i, c) in r.strings(entries["countries"], "geoip.countries").enumerated() {
                let code = c.uppercased()
                if code.count == 2 && code.allSatisfy({ $0.isASCII && $0.isLetter }) { countries.insert(code) }
                else { r.problem("geoip.countries[\(i)]", entries["countries"], "\"\(c)\" is not an ISO 3166-1 alpha-2 country code") }
            }
            if let db { p.geoip = GeoIPSettings(database: db, countries: countries) }
        }

        // schedules
        for e in r.mapping(top["schedules"], "schedules") {
            let path = ConfigReader.join("schedules", e.key)
            if e.key == "always" { r.problem(path, e.value, "\"always\" is built in and cannot be redefined"); continue }
            let m = Dictionary(r.mapping(e.value, path, allowed: ["timezone", "days", "hours"]).map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
            var tz: TimeZone?
            if let name = r.string(m["timezone"], "\(path).timezone", required: true) {
                tz = TimeZone(identifier: name)
                if tz == nil || name.isEmpty { r.problem("\(path).timezone", m["timezone"], "\"\(name)\" is not an IANA time zone (like Europe/London or UTC)") }
            }
            var days = Set<Int>()
            let dayList = r.strings(m["days"], "\(path).days")
            if m["days"] == nil { days = Set(1...7) }
            for (i, d) in dayList.enumerated() {
                if let n = Schedule.dayNames.firstIndex(of: d.lowercased().prefix(3).description), d.count >= 3,
                   Self.fullDayNames[n].hasPrefix(d.lowercased()) { days.insert(n + 1) }
                else { r.problem("\(path).days[\(i)]", m["days"], "\"\(d)\" is not a day (mon, tue, wed, thu, fri, sat, sun)") }
            }
            var hours: (Int, Int)? = (0, 1440)
            if let h = r.string(m["hours"], "\(path).hours") {
                hours = Schedule.parseHours(h)
                if hours == nil { r.problem("\(path).hours", m["hours"], "expected HH:MM-HH:MM (24-hour clock, like 08:00-19:00), found \"\(h)\"") }
            }
            if let tz, let hours {
                p.schedules[e.key] = Schedule(name: e.key, timeZone: tz, days: days, start: hours.0, end: hours.1)
            }
        }

        // smtp
        if let s = top["smtp"] {
            let m = Dictionary(r.mapping(s, "smtp", allowed: ["host", "port", "from"]).map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
            let host = r.string(m["host"], "smtp.host", required: true)
            let port = m["port"] == nil ? 25 : r.integer(m["port"], "smtp.port", range: 1...65535)
            let from = r.string(m["from"], "smtp.from", required: true)
            if let from, !Self.isEmailAddress(from) { r.problem("smtp.from", m["from"], "\"\(from)\" is not an email address") }
            if let host, let port, let from { p.smtp = SMTPSettings(host: host, port: port, from: from) }
        }

        // owners
        for e in r.mapping(top["owners"], "owners") {
            let path = ConfigReader.join("owners", e.key)
            let m = Dictionary(r.mapping(e.value, path, allowed: ["name", "notify", "escalation"]).map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
            let name = r.string(m["name"], "\(path).name") ?? e.key
            var targets: [NotifyTarget] = []
            let items = r.sequence(m["notify"], "\(path).notify")
            if items.isEmpty {
                r.problem("\(path).notify", m["notify"] ?? e.value, "an owner needs at least one notification target (webhook, slack, pagerduty, alertmanager or email): an alert nobody receives is a silent failure")
            }
            for (i, item) in items.enumerated() {
                if let t = Self.parseTarget(item, "\(path).notify[\(i)]", &r) { targets.append(t) }
            }
            var owner = Owner(key: e.key, name: name, notify: targets)
            owner.escalation = r.strings(m["escalation"], "\(path).escalation")
            p.owners[e.key] = owner
        }
        // Escalation chains name other owners, without cycles back to the owner itself.
        for (key, owner) in p.owners {
            for (i, next) in owner.escalation.enumerated() {
                let path = "\(ConfigReader.join("owners", key)).escalation[\(i)]"
                if p.owners[next] == nil { r.problem(path, nil, "\"\(next)\" is not one of the owners") }
                else if next == key { r.problem(path, nil, "an owner cannot escalate to itself") }
            }
        }
        if p.owners.values.contains(where: { $0.notify.contains { if case .email = $0 { return true } else { return false } } }), p.smtp == nil, top["smtp"] == nil {
            r.problem("smtp", nil, "an owner is notified by email, so smtp (host, port, from) is required")
        }
        if let f = r.string(top["fallback_owner"], "fallback_owner") {
            if p.owners[f] == nil { r.problem("fallback_owner", top["fallback_owner"], "\"\(f)\" is not one of the owners") }
            p.fallbackOwner = f
        }

        // identities
        for (i, item) in r.sequence(top["identities"], "identities").enumerated() {
            let path = "identities[\(i)]"
            let m = Dictionary(r.mapping(item, path, allowed: ["match", "kind", "scope", "networks", "schedule", "break_glass"]).map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
            guard let match = r.string(m["match"], "\(path).match", required: true) else { continue }
            var rule = IdentityRule(match: match)
            if let k = r.string(m["kind"], "\(path).kind") {
                rule.kind = IdentityKind(rawValue: k)
                if rule.kind == nil { r.problem("\(path).kind", m["kind"], "\"\(k)\" is not a kind (\(IdentityKind.allCases.map(\.rawValue).joined(separator: ", ")))") }
            }
            rule.scope = r.strings(m["scope"], "\(path).scope")
            rule.networks = r.strings(m["networks"], "\(path).networks")
            for (j, n) in rule.networks.enumerated() where p.networks[n] == nil && top["networks"].flatMap({ $0[n] }) == nil {
                r.problem("\(path).networks[\(j)]", m["networks"], "\"\(n)\" is not one of the networks")
            }
            if let s = r.string(m["schedule"], "\(path).schedule") {
                if s != "always" && p.schedules[s] == nil && top["schedules"].flatMap({ $0[s] }) == nil {
                    r.problem("\(path).schedule", m["schedule"], "\"\(s)\" is not one of the schedules (or always)")
                }
                rule.schedule = s
            }
            rule.breakGlass = r.bool(m["break_glass"], "\(path).break_glass") ?? false
            p.identities.append(rule)
        }

        // secrets
        for (i, item) in r.sequence(top["secrets"], "secrets").enumerated() {
            let path = "secrets[\(i)]"
            let m = Dictionary(r.mapping(item, path, allowed: ["match", "environment"]).map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
            guard let match = r.string(m["match"], "\(path).match", required: true) else { continue }
            p.secrets.append(SecretRule(match: match, environment: r.string(m["environment"], "\(path).environment")))
        }

        // pipelines
        if let node = top["pipelines"] {
            let m = Dictionary(r.mapping(node, "pipelines", allowed: ["runner_networks", "production", "manual_triggers", "scopes"]).map { ($0.key, $0.value) },
                               uniquingKeysWith: { a, _ in a })
            func networkNames(_ n: ConfigNode?, _ path: String) -> [String] {
                let names = r.strings(n, path)
                for (j, name) in names.enumerated() where p.networks[name] == nil && top["networks"].flatMap({ $0[name] }) == nil {
                    r.problem("\(path)[\(j)]", n, "\"\(name)\" is not one of the networks")
                }
                return names
            }
            p.pipelines.runnerNetworks = networkNames(m["runner_networks"], "pipelines.runner_networks")
            if m["production"] != nil {
                p.pipelines.production = r.strings(m["production"], "pipelines.production")
                if p.pipelines.production.isEmpty { r.problem("pipelines.production", m["production"], "name at least one production environment (like prod)") }
            }
            p.pipelines.manualTriggers = r.strings(m["manual_triggers"], "pipelines.manual_triggers")
            for (i, item) in r.sequence(m["scopes"], "pipelines.scopes").enumerated() {
                let path = "pipelines.scopes[\(i)]"
                let sm = Dictionary(r.mapping(item, path, allowed: ["provider", "repository", "workflow", "environment", "secrets", "runner_networks"]).map { ($0.key, $0.value) },
                                    uniquingKeysWith: { a, _ in a })
                guard let repo = r.string(sm["repository"], "\(path).repository", required: true) else { continue }
                let secrets = r.strings(sm["secrets"], "\(path).secrets")
                if secrets.isEmpty {
                    r.problem("\(path).secrets", sm["secrets"] ?? item, "list the secrets (path globs) these runs may use; a pipeline that needs none can say [\"-\"]")
                }
                var scope = PipelineScope(provider: r.string(sm["provider"], "\(path).provider"), repository: repo,
                                          workflow: r.string(sm["workflow"], "\(path).workflow"),
                                          environment: r.string(sm["environment"], "\(path).environment"), secrets: secrets)
                if sm["runner_networks"] != nil { scope.runnerNetworks = networkNames(sm["runner_networks"], "\(path).runner_networks") }
                p.pipelines.scopes.append(scope)
            }
        }

        // classes
        for e in r.mapping(top["classes"], "classes") {
            let path = ConfigReader.join("classes", e.key)
            guard let c = AlertClass(rawValue: e.key) else {
                r.problem(path, e.value, "unknown alert class (known: \(AlertClass.allCases.map(\.rawValue).joined(separator: ", ")))")
                continue
            }
            let entries = r.mapping(e.value, path, allowed: classKeys)
            let m = Dictionary(entries.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
            for en in entries { if let only = classSpecific[en.key], only != c {
                r.problem("\(path).\(en.key)", en.value, "applies only to \(only)")
            } }
            let action = r.string(m["action"], "\(path).action", required: true)
            guard let action else { continue }
            guard action == "log" || action == "alert" else {
                r.problem("\(path).action", m["action"], "expected log or alert, found \"\(action)\""); continue
            }
            var s = ClassSettings(alert: action == "alert")
            if s.alert && c.isRoutine {
                r.problem("\(path).action", m["action"], "\(c) is routine and can only be logged (alerting on it is the alert fatigue Custos exists to prevent)")
            }
            if let sev = r.string(m["severity"], "\(path).severity") {
                if let v = Severity(rawValue: sev) { s.severity = v }
                else { r.problem("\(path).severity", m["severity"], "expected low, medium, high or critical, found \"\(sev)\"") }
            }
            s.owner = r.string(m["owner"], "\(path).owner")
            s.sla = r.duration(m["sla"], "\(path).sla", range: 60...(90 * 86_400))
            s.playbook = r.string(m["playbook"], "\(path).playbook")
            if let f = r.duration(m["fold"], "\(path).fold", range: 0...(7 * 86_400)) { s.fold = f }
            if let v = r.integer(m["count"], "\(path).count", range: 2...1_000_000) { s.count = v }
            if let v = r.duration(m["window"], "\(path).window", range: 1...(7 * 86_400)) { s.window = v }
            if let v = r.number(m["speed_kmh"], "\(path).speed_kmh", range: 1...100_000) { s.speedKmh = v }
            if let v = r.number(m["min_km"], "\(path).min_km", range: 0...40_000) { s.minKm = v }
            if let v = r.integer(m["min_count"], "\(path).min_count", range: 1...100_000_000) { s.minCount = v }
            if let v = r.number(m["deviations"], "\(path).deviations", range: 1...1000) { s.deviations = v }
            if let v = r.duration(m["warmup"], "\(path).warmup", range: 0...(365 * 86_400)) { s.warmup = v }
            if s.alert {
                if let o = s.owner {
                    if let owner = p.owners[o] {
                        if owner.notify.isEmpty { r.problem("\(path).owner", m["owner"], "owner \"\(o)\" has no notification target") }
                    } else if top["owners"].flatMap({ $0[o] }) == nil {
                        r.problem("\(path).owner", m["owner"], "\"\(o)\" is not one of the owners")
                    }
                } else {
                    r.problem("\(path).owner", m["owner"] ?? e.value, "an alerting class needs an owner: an alert nobody receives is a silent failure")
                }
                if s.sla == nil && m["sla"] == nil {
                    r.problem("\(path).sla", e.value, "an alerting class needs an SLA (how soon its owner must respond, like 30m or 4h)")
                }
            }
            p.classes[c] = s
        }

        // playbooks: replace a default by id, or add one.
        for (i, item) in r.sequence(top["playbooks"], "playbooks").enumerated() {
            let path = ConfigReader.join("playbooks", i)
            let m = Dictionary(r.mapping(item, path, allowed: ["id", "title", "classes", "priority", "response_goal", "steps"]).map { ($0.key, $0.value) },
                               uniquingKeysWith: { a, _ in a })
            guard let id = r.string(m["id"], "\(path).id", required: true) else { continue }
            let title = r.string(m["title"], "\(path).title", required: true) ?? id
            var classes: [AlertClass] = []
            for c in r.strings(m["classes"], "\(path).classes") {
                if let v = AlertClass(rawValue: c) { classes.append(v) }
                else { r.problem("\(path).classes", m["classes"], "\"\(c)\" is not an alert class (\(AlertClass.allCases.map(\.rawValue).joined(separator: ", ")))") }
            }
            let priority = r.string(m["priority"], "\(path).priority") ?? "P2"
            if !["P1", "P2", "P3", "P4"].contains(priority) { r.problem("\(path).priority", m["priority"], "expected P1, P2, P3 or P4") }
            let goal = r.duration(m["response_goal"], "\(path).response_goal", range: 60...(30 * 86_400)) ?? 3600
            let steps = r.strings(m["steps"], "\(path).steps")
            if steps.isEmpty { r.problem("\(path).steps", m["steps"] ?? item, "a playbook needs at least one step") }
            let pb = Playbook(id: id, title: title, classes: classes, priority: priority, responseGoal: goal, steps: steps)
            if let k = p.playbooks.firstIndex(where: { $0.id == id }) { p.playbooks[k] = pb } else { p.playbooks.append(pb) }
        }

        if !r.problems.isEmpty { throw ConfigProblems(r.problems) }
        return p
    }

    static let fullDayNames = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]

    static func isEmailAddress(_ s: String) -> Bool {
        let parts = s.split(separator: "@", omittingEmptySubsequences: false)
        return parts.count == 2 && !parts[0].isEmpty && parts[1].contains(".") && !s.contains(where: { $0.isWhitespace || $0 == "<" || $0 == ">" || $0 == "\r" || $0 == "\n" })
    }

    static func isHTTPURL(_ s: String) -> Bool {
        guard let c = URLComponents(string: s), let scheme = c.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = c.host, !host.isEmpty else { return false }
        return true
    }

    static func parseTarget(_ node: ConfigNode, _ path: String, _ r: inout ConfigReader) -> NotifyTarget? {
        let entries = r.mapping(node, path, allowed: ["webhook", "slack", "pagerduty", "alertmanager", "email"])
        guard entries.count == 1, let e = entries.first else {
            if case .mapping = node, entries.count > 1 { r.problem(path, node, "one target per list item (webhook, slack, pagerduty, alertmanager or email)") }
            else if case .mapping = node {} else if entries.isEmpty { r.problem(path, node, "expected a target like { webhook: URL }") }
            return nil
        }
        let p = ConfigReader.join(path, e.key)
        func url(_ n: ConfigNode?, _ path: String) -> String? {
            guard let u = r.string(n, path, required: true) else { return nil }
            // Never echo the URL: Slack and webhook URLs carry credentials in their path.
            guard isHTTPURL(u) else { r.problem(path, n, "expected an http:// or https:// URL"); return nil }
            return u
        }
        switch e.key {
        case "webhook":
            if case .mapping = e.value {
                let m = Dictionary(r.mapping(e.value, p, allowed: ["url", "secret_env"]).map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
                guard let u = url(m["url"], "\(p).url") else { return nil }
                return .webhook(url: u, secretEnv: r.string(m["secret_env"], "\(p).secret_env"))
            }
            return url(e.value, p).map { .webhook(url: $0, secretEnv: nil) }
        case "slack":
            if case .mapping = e.value {
                let m = Dictionary(r.mapping(e.value, p, allowed: ["url"]).map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
                return url(m["url"], "\(p).url").map { .slack(url: $0) }
            }
            return url(e.value, p).map { .slack(url: $0) }
        case "alertmanager":
            if case .mapping = e.value {
                let m = Dictionary(r.mapping(e.value, p, allowed: ["url"]).map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
                return url(m["url"], "\(p).url").map { .alertmanager(url: $0) }
            }
            return url(e.value, p).map { .alertmanager(url: $0) }
        case "pagerduty":
            let m = Dictionary(r.mapping(e.value, p, allowed: ["routing_key", "url"]).map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
            guard let key = r.string(m["routing_key"], "\(p).routing_key", required: true) else { return nil }
            var endpoint = "https://events.pagerduty.com/v2/enqueue"
            if m["url"] != nil { guard let u = url(m["url"], "\(p).url") else { return nil }; endpoint = u }
            return .pagerduty(routingKey: key, url: endpoint)
        case "email":
            guard let to = r.string(e.value, p, required: true) else { return nil }
            guard isEmailAddress(to) else { r.problem(p, e.value, "\"\(to)\" is not an email address"); return nil }
            return .email(to: to)
        default:
            return nil
        }
    }
}
