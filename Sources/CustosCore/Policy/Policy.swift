import Foundation

/// Every alert class Custos knows. A class is either logged only or alerted (routed to a
/// named owner with an SLA), as the policy says.
public enum AlertClass: String, Sendable, CaseIterable, Comparable, CustomStringConvertible {
    case access_known_ip
    case failed_single
    case failed_threshold
    case out_of_scope
    case impossible_travel
    case break_glass
    case volume_anomaly
    case unknown_ip
    case off_hours
    /// A pipeline used (or tried) a secret outside its `pipelines.scopes` entry.
    case pipeline_out_of_scope
    /// A pipeline's runner came from outside `pipelines.runner_networks`.
    case runner_unknown_ip
    /// A production pipeline started by hand by someone not in `pipelines.manual_triggers`.
    case manual_prod_trigger
    /// A secret's value was found in a build log (`custos scan-log --report`): rotate it.
    case leaked_secret

    public var description: String { rawValue }
    public static func < (a: AlertClass, b: AlertClass) -> Bool { a.rawValue < b.rawValue }

    /// Classes that are routine by nature: they can only be logged.
    public var isRoutine: Bool { self == .access_known_ip || self == .failed_single }
}

public enum Severity: String, Sendable, CaseIterable, Comparable {
    case low, medium, high, critical
    var rank: Int { Self.allCases.firstIndex(of: self)! }
    public static func < (a: Severity, b: Severity) -> Bool { a.rank < b.rank }
}

/// The alerting policy: which identities may touch which secrets, from where and when;
/// which deviations alert whom, with what SLA. Loaded from YAML (see README, "Policy").
/// A policy in which an alerting class has no owner, or an owner has nowhere to be
/// notified, does not load.
public struct Policy: Sendable {
    public var networks: [String: [CIDR]] = [:]
    public var geoip: GeoIPSettings?
    public var schedules: [String: Schedule] = [:]
    public var owners: [String: Owner] = [:]
    /// Who receives the failures of notifiers (and alerts whose owner cannot be reached).
    public var fallbackOwner: String?
    public var smtp: SMTPSettings?
    public var identities: [IdentityRule] = []
    public var secrets: [SecretRule] = []
    public var classes: [AlertClass: ClassSettings] = [:]
    /// CI/CD pipelines: which secrets each may use, where runners are, who may start
    /// production runs by hand.
    public var pipelines = PipelineSettings()
    /// Response playbooks (defaults PB-SEC-01 … PB-SEC-07; the policy's `playbooks:` replaces by id or adds).
    public var playbooks: [Playbook] = Playbook.defaults

    public init() {}

    public struct GeoIPSettings: Sendable, Equatable {
        /// Path of a MaxMind DB file (GeoLite2/GeoIP2 City or Country, DB-IP), relative to
        /// the policy file's folder when not absolute.
        public var database: String
        /// ISO 3166-1 alpha-2 codes of the countries where the organisation has people.
        public var countries: Set<String>
    }

    public struct SMTPSettings: Sendable, Equatable {
        public var host: String
        public var port: Int
        public var from: String
        public init(host: String, port: Int, from: String) { self.host = host; self.port = port; self.from = from }
    }

    public struct Owner: Sendable, Equatable {
        public var key: String
        public var name: String
        public var notify: [NotifyTarget]
        /// Owners (keys) an unacknowledged incident escalates to, in order: the first when the
        /// SLA is missed, the next after another SLA period, and so on.
        public var escalation: [String] = []
        public init(key: String, name: String, notify: [NotifyTarget]) { self.key = key; self.name = name; self.notify = notify }
    }

    public enum NotifyTarget: Sendable, Equatable, CustomStringConvertible {
        /// Generic webhook: JSON body, `X-Custos-Signature: sha256=<hex HMAC>` when a
        /// signing secret is configured (read from the named environment variable).
        case webhook(url: String, secretEnv: String?)
        case slack(url: String)
        case pagerduty(routingKey: String, url: String)
        case alertmanager(url: String)
        case email(to: String)

        public var kind: String {
            switch self {
            case .webhook: return "webhook"
            case .slack: return "slack"
            case .pagerduty: return "pagerduty"
            case .alertmanager: return "alertmanager"
            case .email: return "email"
            }
        }

        /// Safe to print: no URL path (Slack and webhook URLs often embed credentials), no key.
        public var description: String {
            switch self {
            case .webhook(let url, _), .slack(let url), .alertmanager(let url), .pagerduty(_, let url):
                return "\(kind) \(Self.hostOnly(url))"
            case .email(let to): return "email \(to)"
            }
        }

        static func hostOnly(_ url: String) -> String {
            guard let c = URLComponents(string: url), let scheme = c.scheme, let host = c.host else { return "(url)" }
            return "\(scheme)://\(host)\(c.port.map { ":\($0)" } ?? "")/…"
        }
    }

    public struct IdentityRule: Sendable, Equatable {
        /// Glob on the identity's name or id; the first rule that matches applies.
        public var match: String
        public var kind: IdentityKind?
        /// Globs of the secret paths the identity may touch (empty: no scope restriction).
        public var scope: [String] = []
        /// Names of `networks` the identity is expected to come from (empty: not checked).
        public var networks: [String] = []
        /// Name of a schedule, or `always` (nil: not checked).
        public var schedule: String?
        public var breakGlass = false
        public init(match: String, kind: IdentityKind? = nil, scope: [String] = [], networks: [String] = [],
                    schedule: String? = nil, breakGlass: Bool = false) {
            self.match = match; self.kind = kind; self.scope = scope; self.networks = networks
            self.schedule = schedule; self.breakGlass = breakGlass
        }
    }

    public struct PipelineSettings: Sendable, Equatable {
        /// Names of `networks` runners are expected to come from (empty: runners are not checked).
        public var runnerNetworks: [String] = []
        /// Deployment environments (of the run, or of the secret it touches) that are production.
        public var production: [String] = ["prod", "production"]
        /// Globs of the identities that may start a production pipeline by hand (empty: nobody).
        public var manualTriggers: [String] = []
        /// Which secrets each repository / workflow / environment may use; the secrets of every
        /// matching entry are allowed. Empty: scopes are not checked.
        public var scopes: [PipelineScope] = []
        public init() {}
    }

    public struct PipelineScope: Sendable, Equatable {
        /// Glob on `pipeline.provider` (nil: any provider).
        public var provider: String?
        /// Glob on `pipeline.repository` (`octo-org/payments`, `octo-org/*`).
        public var repository: String
        /// Glob on the workflow's name or its definition id (nil: every workflow).
        public var workflow: String?
        /// The run's deployment environment (nil: any, including none).
        public var environment: String?
        /// Globs of the secret paths the matching runs may use.
        public var secrets: [String]
        /// Names of `networks` this entry's runners come from, instead of `runner_networks`.
        public var runnerNetworks: [String]?
        public init(provider: String? = nil, repository: String, workflow: String? = nil, environment: String? = nil,
                    secrets: [String], runnerNetworks: [String]? = nil) {
            self.provider = provider; self.repository = repository; self.workflow = workflow
            self.environment = environment; self.secrets = secrets; self.runnerNetworks = runnerNetworks
        }
    }

    public struct SecretRule: Sendable, Equatable {
        public var match: String
        public var environment: String?
        public init(match: String, environment: String? = nil) { self.match = match; self.environment = environment }
    }

    public struct ClassSettings: Sendable, Equatable {
        public var alert: Bool
        public var severity: Severity = .medium
        public var owner: String?
        /// Seconds the owner has to respond.
        public var sla: Int64?
        public var playbook: String?
        /// Alerts of this class about the same entity within this many seconds fold into one.
        public var fold: Int64 = 3600
        // failed_threshold
        public var count = 3
        public var window: Int64 = 300
        // impossible_travel
        public var speedKmh = 900.0
        public var minKm = 500.0
        // volume_anomaly
        public var minCount = 20
        public var deviations = 6.0
        public var warmup: Int64 = 14 * 86_400

        public init(alert: Bool) { self.alert = alert }
    }

    /// Settings of a class; a class the policy does not mention is logged only.
    public func settings(_ c: AlertClass) -> ClassSettings { classes[c] ?? ClassSettings(alert: false) }

    /// Things that are allowed but probably not what was meant (`policy check` prints them).
    public var warnings: [String] {
        var w: [String] = []
        for c in AlertClass.allCases where !c.isRoutine && !(classes[c]?.alert ?? false) {
            w.append("classes.\(c): \(classes[c] == nil ? "not configured, so" : "action is log:") \(c) is only logged, never alerted")
        }
        if geoip == nil {
            w.append("geoip: no database, so impossible_travel cannot work and unknown_ip alerts carry no country")
        }
        if identities.isEmpty { w.append("identities: no rules, so out_of_scope, unknown_ip and off_hours never apply") }
        if pipelines.scopes.isEmpty {
            w.append("pipelines.scopes: none, so pipeline_out_of_scope applies only to runs that report their own scope")
        }
        if pipelines.runnerNetworks.isEmpty && !pipelines.scopes.contains(where: { $0.runnerNetworks != nil }) {
            w.append("pipelines.runner_networks: none, so runner_unknown_ip never applies")
        }
        return w
    }
}

/// Days and hours in an IANA time zone. `always` is built in.
public struct Schedule: Sendable, Equatable {
    public var name: String
    public var timeZone: TimeZone
    /// Weekdays, 1 = Monday ... 7 = Sunday.
    public var days: Set<Int>
    /// Minutes after local midnight; `end` is exclusive. `end < start` spans midnight
    /// (the part after midnight belongs to the day the span started on).
    public var start: Int
    public var end: Int
    public var always: Bool

    public static let alwaysOn = Schedule(name: "always", timeZone: TimeZone(identifier: "UTC")!, days: Set(1...7), start: 0, end: 1440, always: true)

    public init(name: String, timeZone: TimeZone, days: Set<Int>, start: Int, end: Int, always: Bool = false) {
        self.name = name; self.timeZone = timeZone; self.days = days; self.start = start; self.end = end; self.always = always
    }

    public static let dayNames = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

    /// Whether a local weekday (1 = Monday) and minute of day fall inside the schedule.
    public func contains(weekday: Int, minute: Int) -> Bool {
        if always { return true }
        if start <= end { return days.contains(weekday) && minute >= start && minute < end }
        // Spans midnight: the evening part on a listed day, the early part on the day after one.
        if minute >= start { return days.contains(weekday) }
        if minute < end { return days.contains(weekday == 1 ? 7 : weekday - 1) }
        return false
    }

    /// Whether a UTC instant (seconds since the epoch) falls inside the schedule, given the
    /// zone's offset from UTC at that instant.
    public func contains(unixSeconds t: Int64, offsetSeconds: Int) -> Bool {
        if always { return true }
        let local = t + Int64(offsetSeconds)
        let days = Self.floorDiv(local, 86_400)
        let minute = Int((local - days * 86_400) / 60)
        // 1970-01-01 was a Thursday (weekday 4).
        let weekday = Int(((days + 3) % 7 + 7) % 7) + 1
        return contains(weekday: weekday, minute: minute)
    }

    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : -((-a + b - 1) / b) }

    /// "08:00-19:00" → (480, 1140). 24:00 is allowed as an end.
    public static func parseHours(_ s: String) -> (Int, Int)? {
        let parts = s.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let a = parseClock(parts[0].trimmingCharacters(in: .whitespaces)),
              let b = parseClock(parts[1].trimmingCharacters(in: .whitespaces)), a != b, a < 1440 else { return nil }
        return (a, b)
    }

    static func parseClock(_ s: String) -> Int? {
        let p = s.split(separator: ":", omittingEmptySubsequences: false)
        guard p.count == 2, p[0].count == 2, p[1].count == 2, let h = Int(p[0]), let m = Int(p[1]),
              (0...24).contains(h), (0...59).contains(m), h < 24 || m == 0 else { return nil }
        return h * 60 + m
    }
}
