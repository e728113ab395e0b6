import CustosCore
import CustosStore
import CustosTrail
import Foundation

/// What a request for a blast radius got wrong (a bad glob or window): the CLI exits 2 with
/// it, the API answers 400.
public struct BlastRadiusInputError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// "Before anyone revokes a credential": who and what used a secret (an exact path or a
/// glob) over a window, from where, whether it was out of scope, and what else those
/// identities read. Used by `custos blast-radius` and `GET /v1/blast-radius`, which print
/// the same JSON (`BlastRadiusReport.json()`).
public struct BlastRadiusRequest: Sendable, Equatable {
    /// Secret path glob (SQLite GLOB: `*`, `?`, `[...]`, case-sensitive); a path without
    /// those characters is an exact path.
    public var secret: String
    /// Inclusive start and exclusive end (either may be open).
    public var from: EventTime?
    public var to: EventTime?
    /// Rows per top-level list (identities, IPs, systems, pipelines, paths, alerts).
    public var limit: Int
    /// Values per nested list (an identity's IPs, other secrets, ...).
    public var nestedLimit: Int

    public static let defaultLimit = 50
    public static let defaultNestedLimit = 10
    /// Distinct values tracked per nested set while aggregating (memory bound); beyond it
    /// further values are not counted and the report says `truncated`.
    public static let trackLimit = 1_000
    /// Distinct identities, IPs, systems, pipelines and paths tracked in all.
    public static let topTrackLimit = 100_000

    public init(secret: String, from: EventTime? = nil, to: EventTime? = nil,
                limit: Int = BlastRadiusRequest.defaultLimit, nestedLimit: Int = BlastRadiusRequest.defaultNestedLimit) throws(BlastRadiusInputError) {
        if let problem = Self.globProblem(secret) { throw BlastRadiusInputError("secret: \(problem)") }
        if let f = from, let t = to, !(f < t) {
            throw BlastRadiusInputError("from (\(f)) must be before to (\(t))")
        }
        guard (1...10_000).contains(limit) else { throw BlastRadiusInputError("limit must be 1...10000") }
        guard (1...1_000).contains(nestedLimit) else { throw BlastRadiusInputError("nested limit must be 1...1000") }
        self.secret = secret; self.from = from; self.to = to; self.limit = limit; self.nestedLimit = nestedLimit
    }

    /// Why `glob` is not a usable secret glob, or nil. Refused: empty, longer than 4096
    /// bytes, control characters, an unterminated `[` class.
    public static func globProblem(_ glob: String) -> String? {
        if glob.isEmpty { return "give a secret path or glob (e.g. secret/data/prod/db or 'secret/data/prod/*')" }
        if glob.utf8.count > 4096 { return "the glob is longer than 4096 bytes" }
        if glob.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) { return "the glob contains control characters" }
        let p = Array(glob.unicodeScalars)
        var i = 0
        while i < p.count {
            if p[i] == "[" {
                // As SQLite reads a class: optional ^, a ] right after it is literal, then up to ].
                var j = i + 1
                if j < p.count && p[j] == "^" { j += 1 }
                if j < p.count && p[j] == "]" { j += 1 }
                while j < p.count && p[j] != "]" { j += 1 }
                if j >= p.count { return "unterminated '[' class at character \(i + 1) of '\(glob)' (write [[] for a literal [)" }
                i = j + 1
            } else {
                i += 1
            }
        }
        return nil
    }

    /// `text` as a glob that matches exactly it (SQLite GLOB has no escape character; a
    /// special character goes in a one-character class).
    public static func literalGlob(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for c in text.unicodeScalars {
            switch c {
            case "*": out += "[*]"
            case "?": out += "[?]"
            case "[": out += "[[]"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }
}

/// The result: every list sorted by count (descending) then name, cut at the request's
/// limits with the number left out in `more`. Never a secret value: events carry none.
public struct BlastRadiusReport: Sendable, Equatable {
    public static let schema = "custos.blast-radius/v1"

    /// A list cut at a limit: `more` is how many were left out.
    public struct Listed<T: Sendable & Equatable>: Sendable, Equatable {
        public var items: [T]
        public var more: Int
        public init(items: [T], more: Int) { self.items = items; self.more = more }
    }

    public struct Totals: Sendable, Equatable {
        public var events = 0, successes = 0, denied = 0, errors = 0
        /// Distinct identities, those with at least one success (consumers), and addresses.
        public var identities = 0, consumers = 0, ips = 0
        public var firstTime: EventTime?
        public var lastTime: EventTime?
    }

    /// One secret path the glob matched.
    public struct PathUse: Sendable, Equatable {
        public var path: String
        public var count: Int, successes: Int, denied: Int
        /// Identities with at least one success on the path.
        public var consumers: Int
        public var lastTime: EventTime
    }

    public struct ScopeUse: Sendable, Equatable {
        /// The identity rule of the policy that applied (its `match`) and its scope.
        public var rule: String
        public var scope: [String]
        /// Accesses outside and inside the scope.
        public var outside: Int
        public var inside: Int
    }

    public struct OtherSecret: Sendable, Equatable {
        public var path: String
        public var count: Int, denied: Int
        public var lastTime: EventTime
        /// No other identity succeeded on this path in the window.
        public var onlyConsumer: Bool
    }

    public struct IdentityUse: Sendable, Equatable {
        /// The key detection uses: id, else name ("" when unauthenticated).
        public var key: String
        public var id: String?
        public var name: String?
        public var kind: IdentityKind
        public var methods: [String]
        public var policies: Listed<String>
        public var successes: Int, denied: Int, errors: Int
        public var firstTime: EventTime, lastTime: EventTime
        public var actions: [String]
        public var ips: Listed<String>
        /// The matched paths this identity used.
        public var paths: Listed<String>
        /// Matched paths on which it is the only identity that succeeded.
        public var onlyConsumerOf: [String]
        /// With a policy: what its scope rule says about these accesses (nil: no scope applies).
        public var scope: ScopeUse?
        /// Secrets outside the glob that it accessed in the window.
        public var otherSecrets: Listed<OtherSecret>
        public var label: String { name ?? id ?? "(unauthenticated)" }
        public var count: Int { successes + denied + errors }
    }

    public struct IPUse: Sendable, Equatable {
        public var ip: String
        public var count: Int, successes: Int, denied: Int
        public var identities: Listed<String>
        public var firstTime: EventTime, lastTime: EventTime
    }

    public struct SystemUse: Sendable, Equatable {
        public var sourceKind: String, sourceInstance: String
        public var stores: [String]
        public var count: Int
        public var firstTime: EventTime, lastTime: EventTime
    }

    public struct PipelineUse: Sendable, Equatable {
        public var provider: String?, name: String?
        public var count: Int
        public var runIDs: Listed<String>
        public var runnerIPs: Listed<String>
        public var identities: Listed<String>
        public var lastTime: EventTime
    }

    public struct AlertUse: Sendable, Equatable {
        public var index: UInt64
        public var id: String
        public var alertClass: AlertClass
        public var severity: Severity
        public var time: EventTime, lastTime: EventTime
        public var count: Int
        public var identity: String
        public var identityKind: IdentityKind
        public var secret: String?
        public var ip: String?
        public var action: String, outcome: String
        public var summary: String
        public var silenced: Bool
    }

    /// One identity that accessed the secret outside its scope.
    public struct OutOfScopeIdentity: Sendable, Equatable {
        public var identity: String
        public var kind: IdentityKind
        public var rule: String?
        public var scope: [String]
        /// Accesses outside scope (policy), or the alerts' counts (alerts).
        public var events: Int
    }

    public struct OutOfScope: Sendable, Equatable {
        /// "policy" when a policy's scope rules were checked against every event, else
        /// "alerts" (only what detection recorded as out_of_scope alerts).
        public var basis: String
        /// out_of_scope alerts in the window naming a matched path.
        public var alerts: Int
        public var identities: Listed<OutOfScopeIdentity>
    }

    public var secret: String
    public var from: EventTime?
    public var to: EventTime?
    public var totals = Totals()
    public var paths = Listed<PathUse>(items: [], more: 0)
    public var identities = Listed<IdentityUse>(items: [], more: 0)
    public var ips = Listed<IPUse>(items: [], more: 0)
    public var systems = Listed<SystemUse>(items: [], more: 0)
    public var pipelines = Listed<PipelineUse>(items: [], more: 0)
    public var alerts = Listed<AlertUse>(items: [], more: 0)
    public var alertsByClass: [AlertClass: Int] = [:]
    public var outOfScope = OutOfScope(basis: "alerts", alerts: 0, identities: .init(items: [], more: 0))
    /// Set when a memory bound stopped counting some distinct values (see `trackLimit`).
    public var truncated = false

    /// Nothing in the window touched a matching secret and no alert names one.
    public var isEmpty: Bool { totals.events == 0 && alerts.items.isEmpty && alerts.more == 0 }
}

// MARK: - Computation

public enum BlastRadius {
    /// Computes the blast radius of `request` from the index and the trail of `reader`,
    /// aggregating while reading (events are never all in memory at once). With `policy`,
    /// each access is also checked against its scope rules (`DetectionEngine.scopeVerdict`).
    public static func compute(_ request: BlastRadiusRequest, reader: EventReader, policy: Policy? = nil) throws -> BlastRadiusReport {
        var agg = Aggregator(request: request, engine: policy.map { DetectionEngine(policy: $0) })
        var q = EventQuery()
        q.secret = request.secret
        q.from = request.from
        q.to = request.to
        try reader.forEachEvent(try reader.index.query(q)) { _, e in
            agg.add(e)
            return true
        }
        var report = agg.report()
        try otherSecrets(&report, request: request, reader: reader, aggregator: &agg)
        try alerts(&report, request: request, reader: reader)
        report.truncated = report.truncated || agg.truncated
        return report
    }

    /// For each listed identity: the secrets outside the glob it accessed in the window,
    /// and whether it is their only consumer (no other identity succeeded on them).
    static func otherSecrets(_ report: inout BlastRadiusReport, request: BlastRadiusRequest, reader: EventReader,
                             aggregator: inout Aggregator) throws {
        let target = CompiledGlob(request.secret)
        // Path -> up to two identity keys that succeeded on it in the window.
        var consumers: [String: Set<String>] = [:]
        for i in report.identities.items.indices {
            let key = report.identities.items[i].key
            guard !key.isEmpty else { continue }   // unauthenticated: not one identity
            var q = EventQuery()
            q.identity = BlastRadiusRequest.literalGlob(key)
            q.from = request.from
            q.to = request.to
            var byPath: [String: (count: Int, denied: Int, last: EventTime)] = [:]
            var truncated = false
            try reader.forEachEvent(try reader.index.query(q)) { _, e in
                guard Self.identityKey(e) == key, let path = e.secret?.path, !target.matches(path) else { return true }
                if byPath[path] == nil && byPath.count >= BlastRadiusRequest.trackLimit { truncated = true; return true }
                var v = byPath[path] ?? (count: 0, denied: 0, last: e.time)
                v.count += 1
                if e.outcome == .denied { v.denied += 1 }
                if e.time > v.last { v.last = e.time }
                byPath[path] = v
                return true
            }
            if truncated { aggregator.truncated = true }
            let sorted = byPath.sorted { a, b in a.value.count != b.value.count ? a.value.count > b.value.count : Self.byteLess(a.key, b.key) }
            var items: [BlastRadiusReport.OtherSecret] = []
            for (path, v) in sorted.prefix(request.nestedLimit) {
                if consumers[path] == nil {
                    var cq = EventQuery()
                    cq.secret = BlastRadiusRequest.literalGlob(path)
                    cq.outcomes = [.success]
                    cq.from = request.from
                    cq.to = request.to
                    var seen = Set<String>()
                    try reader.forEachEvent(try reader.index.query(cq)) { _, e in
                        guard e.secret?.path == path else { return true }
                        seen.insert(Self.identityKey(e))
                        return seen.count < 2
                    }
                    consumers[path] = seen
                }
                items.append(.init(path: path, count: v.count, denied: v.denied, lastTime: v.last,
                                   onlyConsumer: consumers[path] == [key]))
            }
            report.identities.items[i].otherSecrets = .init(items: items, more: max(0, sorted.count - items.count))
        }
    }

    /// Alerts in the window naming a matched path (raised entries with their fold updates
    /// merged, as `custos alerts` shows them), in trail order.
    static func alerts(_ report: inout BlastRadiusReport, request: BlastRadiusRequest, reader: EventReader) throws {
        var q = AlertQuery()
        q.secret = request.secret
        q.from = request.from
        q.to = request.to
        q.statuses = [.raised]
        let indices = try reader.index.alertEntries(q)
        let raised = try EventReader.entries(indices, from: reader.trail).compactMap { r -> (UInt64, Alert)? in
            if case .alert(let a) = r.entry { return (r.index, a) } else { return nil }
        }
        var updates: [String: [Alert]] = [:]
        let ids = raised.map { $0.1.id }
        for chunk in stride(from: 0, to: ids.count, by: 500) {
            var uq = AlertQuery()
            uq.statuses = [.updated]
            uq.ids = Array(ids[chunk..<min(ids.count, chunk + 500)])
            for (_, a) in try reader.alerts(uq) { updates[a.id, default: []].append(a) }
        }
        var items: [BlastRadiusReport.AlertUse] = []
        var byClass: [AlertClass: Int] = [:]
        var oos: [String: BlastRadiusReport.OutOfScopeIdentity] = [:]
        var oosAlerts = 0
        for (index, raisedAlert) in raised {
            var a = raisedAlert
            for u in updates[a.id] ?? [] {
                a.count = max(a.count, u.count)
                if u.lastTime > a.lastTime { a.lastTime = u.lastTime }
            }
            byClass[a.alertClass, default: 0] += 1
            let who = a.identity.name ?? a.identity.id ?? "(unauthenticated)"
            if a.alertClass == .out_of_scope {
                oosAlerts += 1
                let key = a.identity.id ?? a.identity.name ?? ""
                var o = oos[key] ?? .init(identity: who, kind: a.identity.kind, rule: nil,
                                          scope: a.details["scope"].map { $0.split(separator: ",").map(String.init) } ?? [], events: 0)
                o.events += a.count
                oos[key] = o
            }
            if items.count < request.limit {
                items.append(.init(index: index, id: a.id, alertClass: a.alertClass, severity: a.severity, time: a.time,
                                   lastTime: a.lastTime, count: a.count, identity: who, identityKind: a.identity.kind,
                                   secret: a.secret?.path, ip: a.origin?.ip, action: a.action.rawValue,
                                   outcome: a.outcome.rawValue, summary: a.summary, silenced: a.silencedBy != nil))
            }
        }
        report.alerts = .init(items: items, more: raised.count - items.count)
        report.alertsByClass = byClass
        report.outOfScope.alerts = oosAlerts
        if report.outOfScope.basis == "alerts" {
            let sorted = oos.values.sorted { a, b in a.events != b.events ? a.events > b.events : byteLess(a.identity, b.identity) }
            report.outOfScope.identities = .init(items: Array(sorted.prefix(request.limit)), more: max(0, sorted.count - request.limit))
        }
    }

    static func identityKey(_ e: AccessEvent) -> String { e.identity.id ?? e.identity.name ?? "" }
    static func byteLess(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }
}

/// Distinct values with counts, at most `limit` of them (later new values are not counted
/// and `dropped` says so).
struct Tally: Sendable {
    var counts: [String: Int] = [:]
    var dropped = false
    let limit: Int
    init(limit: Int = BlastRadiusRequest.trackLimit) { self.limit = limit }

    mutating func add(_ v: String, _ n: Int = 1) {
        if let c = counts[v] { counts[v] = c + n; return }
        guard counts.count < limit else { dropped = true; return }
        counts[v] = n
    }

    /// The values by count (descending), then by byte order.
    func sorted() -> [String] {
        counts.sorted { a, b in a.value != b.value ? a.value > b.value : BlastRadius.byteLess(a.key, b.key) }.map(\.key)
    }

    func listed(_ n: Int) -> BlastRadiusReport.Listed<String> {
        let s = sorted()
        return .init(items: Array(s.prefix(n)), more: max(0, s.count - n))
    }
}

struct Aggregator {
    let request: BlastRadiusRequest
    let engine: DetectionEngine?
    var truncated = false

    struct Window {
        var first: EventTime, last: EventTime
        init(_ t: EventTime) { first = t; last = t }
        mutating func add(_ t: EventTime) { if t < first { first = t }; if t > last { last = t } }
    }

    struct Outcomes {
        var successes = 0, denied = 0, errors = 0
        var count: Int { successes + denied + errors }
        mutating func add(_ o: Outcome) {
            switch o {
            case .success: successes += 1
            case .denied: denied += 1
            case .error: errors += 1
            }
        }
    }

    struct Ident {
        var id: String?, name: String?, kind: IdentityKind
        var methods = Tally(), policies = Tally(), actions = Tally(), ips = Tally(), paths = Tally()
        var outcomes = Outcomes()
        var window: Window
        var scope: BlastRadiusReport.ScopeUse?
    }

    struct PathAgg { var outcomes = Outcomes(); var consumers = Tally(); var last: EventTime }
    struct IPAgg { var outcomes = Outcomes(); var identities = Tally(); var window: Window }
    struct SystemAgg { var kind: String, instance: String; var stores = Tally(); var count = 0; var window: Window }
    struct PipelineAgg {
        var provider: String?, name: String?
        var count = 0
        var runIDs = Tally(), runnerIPs = Tally(), identities = Tally()
        var last: EventTime
    }

    var totals = Outcomes()
    var window: Window?
    var identities: [String: Ident] = [:]
    var paths: [String: PathAgg] = [:]
    var ips: [String: IPAgg] = [:]
    var systems: [String: SystemAgg] = [:]
    var pipelines: [String: PipelineAgg] = [:]

    init(request: BlastRadiusRequest, engine: DetectionEngine?) { self.request = request; self.engine = engine }

    /// Whether a new key may be added to a top-level map of `count` entries.
    mutating func room(_ count: Int) -> Bool {
        if count < BlastRadiusRequest.topTrackLimit { return true }
        truncated = true
        return false
    }

    mutating func add(_ e: AccessEvent) {
        totals.add(e.outcome)
        if window == nil { window = Window(e.time) } else { window!.add(e.time) }
        let key = BlastRadius.identityKey(e)
        let label = e.identity.name ?? e.identity.id ?? "(unauthenticated)"
        let path = e.secret?.path ?? ""

        if identities[key] != nil || room(identities.count) {
            var id = identities[key] ?? Ident(id: e.identity.id, name: e.identity.name, kind: e.identity.kind, window: Window(e.time))
            identities[key] = nil
            if let m = e.identity.method { id.methods.add(m) }
            for p in e.identity.policies { id.policies.add(p) }
            id.actions.add(e.action.rawValue)
            if let ip = e.origin?.ip { id.ips.add(ip) }
            id.paths.add(path)
            id.outcomes.add(e.outcome)
            id.window.add(e.time)
            if let v = engine?.scopeVerdict(e) {
                var s = id.scope ?? .init(rule: v.rule, scope: v.scope, outside: 0, inside: 0)
                if v.outside { s.outside += 1 } else { s.inside += 1 }
                id.scope = s
            }
            identities[key] = id
        }
        if paths[path] != nil || room(paths.count) {
            var p = paths[path] ?? PathAgg(last: e.time)
            p.outcomes.add(e.outcome)
            if e.outcome == .success { p.consumers.add(key) }
            if e.time > p.last { p.last = e.time }
            paths[path] = p
        }
        if let ip = e.origin?.ip, ips[ip] != nil || room(ips.count) {
            var a = ips[ip] ?? IPAgg(window: Window(e.time))
            a.outcomes.add(e.outcome)
            a.identities.add(label)
            a.window.add(e.time)
            ips[ip] = a
        }
        let sysKey = e.source.kind + "\u{0}" + e.source.instance
        if systems[sysKey] != nil || room(systems.count) {
            var s = systems[sysKey] ?? SystemAgg(kind: e.source.kind, instance: e.source.instance, window: Window(e.time))
            if let store = e.secret?.store { s.stores.add(store) }
            s.count += 1
            s.window.add(e.time)
            systems[sysKey] = s
        }
        if let pl = e.pipeline {
            let pk = (pl.provider ?? "") + "\u{0}" + (pl.name ?? "")
            if pipelines[pk] != nil || room(pipelines.count) {
                var p = pipelines[pk] ?? PipelineAgg(provider: pl.provider, name: pl.name, last: e.time)
                p.count += 1
                if let r = pl.runID { p.runIDs.add(r) }
                if let r = pl.runnerIP { p.runnerIPs.add(r) }
                p.identities.add(label)
                if e.time > p.last { p.last = e.time }
                pipelines[pk] = p
            }
        }
    }

    static func cut<T: Sendable & Equatable>(_ sorted: [T], _ n: Int) -> BlastRadiusReport.Listed<T> {
        .init(items: Array(sorted.prefix(n)), more: max(0, sorted.count - n))
    }

    mutating func report() -> BlastRadiusReport {
        let n = request.limit, m = request.nestedLimit
        let less = BlastRadius.byteLess
        var r = BlastRadiusReport(secret: request.secret, from: request.from, to: request.to)
        var dropped = false
        func note(_ t: Tally) -> Tally { if t.dropped { dropped = true }; return t }

        r.totals.events = totals.count
        r.totals.successes = totals.successes
        r.totals.denied = totals.denied
        r.totals.errors = totals.errors
        r.totals.identities = identities.count
        r.totals.consumers = identities.values.filter { $0.outcomes.successes > 0 }.count
        r.totals.ips = ips.count
        r.totals.firstTime = window?.first
        r.totals.lastTime = window?.last

        // Matched paths, and who is the only consumer of each.
        var onlyConsumer: [String: [String]] = [:]
        let pathRows = paths.map { path, p -> BlastRadiusReport.PathUse in
            if p.consumers.counts.count == 1, let k = p.consumers.counts.keys.first { onlyConsumer[k, default: []].append(path) }
            if p.consumers.dropped { dropped = true }
            return .init(path: path, count: p.outcomes.count, successes: p.outcomes.successes, denied: p.outcomes.denied,
                         consumers: p.consumers.counts.count, lastTime: p.last)
        }.sorted { a, b in a.count != b.count ? a.count > b.count : less(a.path, b.path) }
        r.paths = Self.cut(pathRows, n)

        let identityRows = identities.map { key, i -> BlastRadiusReport.IdentityUse in
            .init(key: key, id: i.id, name: i.name, kind: i.kind, methods: note(i.methods).sorted(),
                  policies: note(i.policies).listed(m), successes: i.outcomes.successes, denied: i.outcomes.denied,
                  errors: i.outcomes.errors, firstTime: i.window.first, lastTime: i.window.last,
                  actions: note(i.actions).sorted(), ips: note(i.ips).listed(m), paths: note(i.paths).listed(m),
                  onlyConsumerOf: (onlyConsumer[key] ?? []).sorted(by: less), scope: i.scope,
                  otherSecrets: .init(items: [], more: 0))
        }.sorted { a, b in a.count != b.count ? a.count > b.count : less(a.key, b.key) }
        r.identities = Self.cut(identityRows, n)

        let ipRows = ips.map { ip, a -> BlastRadiusReport.IPUse in
            .init(ip: ip, count: a.outcomes.count, successes: a.outcomes.successes, denied: a.outcomes.denied,
                  identities: note(a.identities).listed(m), firstTime: a.window.first, lastTime: a.window.last)
        }.sorted { a, b in a.count != b.count ? a.count > b.count : less(a.ip, b.ip) }
        r.ips = Self.cut(ipRows, n)

        let systemRows = systems.values.map { s -> BlastRadiusReport.SystemUse in
            .init(sourceKind: s.kind, sourceInstance: s.instance, stores: note(s.stores).sorted(), count: s.count,
                  firstTime: s.window.first, lastTime: s.window.last)
        }.sorted { a, b in
            a.count != b.count ? a.count > b.count
                : less(a.sourceKind + "\u{0}" + a.sourceInstance, b.sourceKind + "\u{0}" + b.sourceInstance)
        }
        r.systems = Self.cut(systemRows, n)

        let pipelineRows = pipelines.map { k, p -> (String, BlastRadiusReport.PipelineUse) in
            (k, .init(provider: p.provider, name: p.name, count: p.count, runIDs: note(p.runIDs).listed(m),
                      runnerIPs: note(p.runnerIPs).listed(m), identities: note(p.identities).listed(m), lastTime: p.last))
        }.sorted { a, b in a.1.count != b.1.count ? a.1.count > b.1.count : less(a.0, b.0) }.map(\.1)
        r.pipelines = Self.cut(pipelineRows, n)

        if engine != nil {
            let oos = identityRows.compactMap { i -> BlastRadiusReport.OutOfScopeIdentity? in
                guard let s = i.scope, s.outside > 0 else { return nil }
                return .init(identity: i.label, kind: i.kind, rule: s.rule, scope: s.scope, events: s.outside)
            }.sorted { a, b in a.events != b.events ? a.events > b.events : less(a.identity, b.identity) }
            r.outOfScope = .init(basis: "policy", alerts: 0, identities: Self.cut(oos, n))
        }
        if dropped { truncated = true }
        r.truncated = truncated
        return r
    }
}

extension EventReader {
    /// Reads the events at `indices` (ascending) from the trail, each bundle once, and hands
    /// each to `body` without keeping them; `body` returns false to stop.
    func forEachEvent(_ indices: [UInt64], _ body: (UInt64, AccessEvent) throws -> Bool) throws {
        var k = 0
        var going = true
        while k < indices.count && going {
            let bundle = indices[k] >> 8
            var end = k
            while end < indices.count && indices[end] >> 8 == bundle { end += 1 }
            let wanted = Set(indices[k..<end])
            try trail.forEachEntry(in: (bundle << 8)..<min(trail.size, (bundle + 1) << 8)) { i, bytes in
                if going && wanted.contains(i) { going = try body(i, try AccessEvent.decode(bytes)) }
            }
            k = end
        }
    }
}

// MARK: - JSON

extension BlastRadiusReport {
    /// The report as one line of JSON with keys in byte order (the encoding of events:
    /// no whitespace, absent values omitted), then a newline. README "Blast radius"
    /// documents the fields; CLI and API print exactly these bytes.
    public func json() -> [UInt8] {
        var w = CanonicalWriter(capacity: 4096)
        JSONValue.object(jsonFields()).write(&w)
        w.bytes.append(0x0A)
        return w.bytes
    }

    func jsonFields() -> [String: JSONValue] {
        func time(_ t: EventTime?) -> JSONValue? { t.map { .string($0.description) } }
        func strings(_ a: [String]) -> JSONValue { .array(a.map(JSONValue.string)) }
        func listed<T: Sendable & Equatable>(_ l: Listed<T>, _ f: (T) -> JSONValue) -> JSONValue {
            .object(["items": .array(l.items.map(f)), "more": .int(l.more)])
        }
        func listedStrings(_ l: Listed<String>) -> JSONValue { listed(l, JSONValue.string) }

        var o: [String: JSONValue] = [
            "schema": .string(Self.schema),
            "secret": .string(secret),
            "truncated": .bool(truncated),
        ]
        o["from"] = time(from)
        o["to"] = time(to)
        var t: [String: JSONValue] = [
            "events": .int(totals.events), "successes": .int(totals.successes), "denied": .int(totals.denied),
            "errors": .int(totals.errors), "identities": .int(totals.identities), "consumers": .int(totals.consumers),
            "ips": .int(totals.ips),
        ]
        t["first_time"] = time(totals.firstTime)
        t["last_time"] = time(totals.lastTime)
        o["totals"] = .object(t)
        o["paths"] = listed(paths) { p in
            .object(["path": .string(p.path), "count": .int(p.count), "successes": .int(p.successes),
                     "denied": .int(p.denied), "consumers": .int(p.consumers), "last_time": .string(p.lastTime.description)])
        }
        o["identities"] = listed(identities) { i in
            var f: [String: JSONValue] = [
                "key": .string(i.key), "kind": .string(i.kind.rawValue), "methods": strings(i.methods),
                "policies": listedStrings(i.policies), "successes": .int(i.successes), "denied": .int(i.denied),
                "errors": .int(i.errors), "first_time": .string(i.firstTime.description),
                "last_time": .string(i.lastTime.description), "actions": strings(i.actions),
                "ips": listedStrings(i.ips), "paths": listedStrings(i.paths), "only_consumer_of": strings(i.onlyConsumerOf),
                "other_secrets": listed(i.otherSecrets) { s in
                    .object(["path": .string(s.path), "count": .int(s.count), "denied": .int(s.denied),
                             "last_time": .string(s.lastTime.description), "only_consumer": .bool(s.onlyConsumer)])
                },
            ]
            f["id"] = i.id.map(JSONValue.string)
            f["name"] = i.name.map(JSONValue.string)
            if let s = i.scope {
                f["scope"] = .object(["rule": .string(s.rule), "allowed": strings(s.scope),
                                      "outside": .int(s.outside), "inside": .int(s.inside)])
            }
            return .object(f)
        }
        o["ips"] = listed(ips) { a in
            .object(["ip": .string(a.ip), "count": .int(a.count), "successes": .int(a.successes), "denied": .int(a.denied),
                     "identities": listedStrings(a.identities), "first_time": .string(a.firstTime.description),
                     "last_time": .string(a.lastTime.description)])
        }
        o["systems"] = listed(systems) { s in
            .object(["source_kind": .string(s.sourceKind), "source_instance": .string(s.sourceInstance),
                     "stores": strings(s.stores), "count": .int(s.count), "first_time": .string(s.firstTime.description),
                     "last_time": .string(s.lastTime.description)])
        }
        o["pipelines"] = listed(pipelines) { p in
            var f: [String: JSONValue] = [
                "count": .int(p.count), "run_ids": listedStrings(p.runIDs), "runner_ips": listedStrings(p.runnerIPs),
                "identities": listedStrings(p.identities), "last_time": .string(p.lastTime.description),
            ]
            f["provider"] = p.provider.map(JSONValue.string)
            f["name"] = p.name.map(JSONValue.string)
            return .object(f)
        }
        o["alerts"] = listed(alerts) { a in
            var f: [String: JSONValue] = [
                "index": .int(Int(a.index)), "id": .string(a.id), "class": .string(a.alertClass.rawValue),
                "severity": .string(a.severity.rawValue), "time": .string(a.time.description),
                "last_time": .string(a.lastTime.description), "count": .int(a.count), "identity": .string(a.identity),
                "identity_kind": .string(a.identityKind.rawValue), "action": .string(a.action),
                "outcome": .string(a.outcome), "summary": .string(a.summary), "silenced": .bool(a.silenced),
            ]
            f["secret"] = a.secret.map(JSONValue.string)
            f["ip"] = a.ip.map(JSONValue.string)
            return .object(f)
        }
        o["alerts_by_class"] = .object(Dictionary(uniqueKeysWithValues: alertsByClass.map { ($0.key.rawValue, JSONValue.int($0.value)) }))
        o["out_of_scope"] = .object([
            "basis": .string(outOfScope.basis),
            "alerts": .int(outOfScope.alerts),
            "identities": listed(outOfScope.identities) { i in
                var f: [String: JSONValue] = ["identity": .string(i.identity), "kind": .string(i.kind.rawValue),
                                              "scope": strings(i.scope), "events": .int(i.events)]
                f["rule"] = i.rule.map(JSONValue.string)
                return .object(f)
            },
        ])
        return o
    }
}

/// A JSON value written with sorted keys (byte order) through `CanonicalWriter`; arrays
/// are written even when empty (a stable shape for clients).
enum JSONValue: Sendable, Equatable {
    case string(String)
    case int(Int)
    case bool(Bool)
    indirect case array([JSONValue])
    indirect case object([String: JSONValue])

    func write(_ w: inout CanonicalWriter) {
        switch self {
        case .string(let s): w.string(s)
        case .int(let i): w.int(i)
        case .bool(let b): w.bytes.append(contentsOf: b ? Array("true".utf8) : Array("false".utf8))
        case .array(let a):
            w.beginArray()
            for v in a { w.comma(); v.write(&w) }
            w.endArray()
        case .object(let o):
            w.beginObject()
            for k in o.keys.sorted(by: BlastRadius.byteLess) {
                w.comma()
                w.string(k)
                w.bytes.append(0x3A)
                o[k]!.write(&w)
            }
            w.endObject()
        }
    }
}
