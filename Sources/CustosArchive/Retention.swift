import CustosAlerting
import CustosCore
import Foundation

/// The retention class of a trail entry (README "Retention and archive").
public enum RetentionClass: String, CaseIterable, Sendable, CustomStringConvertible {
    /// Access events that name a secret (`secret.path`).
    case secretAccess = "secret_access"
    /// Logins, token create/revoke/renew, and changes to auth methods, policies and audit devices.
    case authentication
    /// Every other access event (applications and resources without a secret path).
    case application
    /// System and debug events: `admin` operations and events whose action is unknown.
    case system
    /// Custos's own records (alerts, silences, deliveries, investigations, incidents and any
    /// schema this build does not know): kept at least as long as secret access.
    case custosRecord = "custos_record"

    public var description: String { rawValue }

    static let authenticationActions: Set<Action> = [
        .login, .tokenCreate, .tokenRevoke, Action("renew"), .authChange, .policyChange, .auditChange,
    ]
    static let systemActions: Set<Action> = [.admin, Action("unknown"), Action("debug")]

    /// The class of an access event.
    public static func of(_ e: AccessEvent) -> RetentionClass {
        if let s = e.secret, !s.path.isEmpty { return .secretAccess }
        if authenticationActions.contains(e.action) { return .authentication }
        if systemActions.contains(e.action) { return .system }
        return .application
    }

    /// The class of a trail entry and the time its retention counts from (nil: the entry
    /// has no time Custos can read, so it never expires).
    ///
    /// For records other than access events the time is the latest top-level `time` or
    /// `*_at` timestamp (a silence counts from its expiry, not its creation).
    public static func classify(_ entry: UnsafeRawBufferPointer) -> (RetentionClass, EventTime?) {
        if let e = try? AccessEvent.decode(entry) { return (of(e), e.time) }
        guard let obj = try? JSONSerialization.jsonObject(with: Data(entry)) as? [String: Any] else {
            return (.custosRecord, nil)
        }
        var latest: EventTime?
        for (k, v) in obj where k == "time" || k.hasSuffix("_at") {
            if let s = v as? String, let t = EventTime(rfc3339: s), latest.map({ t > $0 }) ?? true { latest = t }
        }
        return (.custosRecord, latest)
    }
}

/// How long each class stays in the trail. Durations in seconds.
public struct RetentionPolicy: Sendable, Equatable {
    public static let day: Int64 = 86_400
    /// Defaults: secret access and authentication 13 months (≥ 12), application and
    /// resource access 9 months (6–12), system and debug 4.5 months (3–6).
    public var secretAccess: Int64 = 395 * day
    public var authentication: Int64 = 395 * day
    public var application: Int64 = 270 * day
    public var system: Int64 = 135 * day
    /// S3 Object Lock (COMPLIANCE) retention of archived objects, counted from the archive
    /// run: 7 years by default.
    public var archiveLock: Int64 = 2557 * day

    /// The shortest each tier may be configured (12, 12, 6 and 3 months).
    public static let minimums: [RetentionClass: Int64] = [
        .secretAccess: 365 * day, .authentication: 365 * day, .application: 183 * day, .system: 92 * day,
    ]
    static let maximum: Int64 = 100 * 366 * day

    public init() {}

    /// How long entries of class `c` are kept.
    public func period(_ c: RetentionClass) -> Int64 {
        switch c {
        case .secretAccess: return secretAccess
        case .authentication: return authentication
        case .application: return application
        case .system: return system
        case .custosRecord: return max(secretAccess, authentication, application, system)
        }
    }

    /// Whether an entry of class `c` at `time` has expired at `now` (time + period < now).
    /// An entry without a time never expires.
    public func isExpired(_ c: RetentionClass, time: EventTime?, now: EventTime) -> Bool {
        guard let time else { return false }
        let (end, overflow) = time.seconds.addingReportingOverflow(period(c))
        return !overflow && end < now.seconds
    }

    static let keys: Set<String> = ["secret_access", "authentication", "application", "system", "archive_lock"]

    /// Parses a retention file: the keys below at the top level or under `retention:`.
    /// ```yaml
    /// retention:
    ///   secret_access: 395d    # ≥ 365d
    ///   authentication: 395d   # ≥ 365d
    ///   application: 270d      # ≥ 183d
    ///   system: 135d           # ≥ 92d
    ///   archive_lock: 2557d    # S3 Object Lock retention of archived objects
    /// ```
    public static func parse(yaml: String) throws(ConfigProblems) -> RetentionPolicy {
        let root = try PolicyLoader.parseYAML(yaml)
        var r = ConfigReader()
        var p = RetentionPolicy()
        var node: ConfigNode? = root
        var base = ""
        if case .mapping(let entries, _) = root, entries.contains(where: { $0.key == "retention" }) {
            _ = r.mapping(root, "", allowed: ["retention"])
            node = root["retention"]
            base = "retention"
        }
        for e in r.mapping(node, base, allowed: keys) {
            let path = ConfigReader.join(base, e.key)
            if e.key == "archive_lock" {
                if let v = r.duration(e.value, path, range: day...maximum) { p.archiveLock = v }
                continue
            }
            guard let c = RetentionClass(rawValue: e.key), let min = minimums[c] else { continue }
            guard let v = r.duration(e.value, path, range: 1...maximum) else { continue }
            if v < min {
                r.problem(path, e.value, "\(ConfigDuration.format(v)) is shorter than the \(c) tier allows: at least \(min / day)d (\(c == .system ? 3 : c == .application ? 6 : 12) months)")
                continue
            }
            switch c {
            case .secretAccess: p.secretAccess = v
            case .authentication: p.authentication = v
            case .application: p.application = v
            case .system: p.system = v
            case .custosRecord: break
            }
        }
        if !r.problems.isEmpty { throw ConfigProblems(r.problems) }
        return p
    }

    public static func load(path: String) throws(ConfigProblems) -> RetentionPolicy {
        guard let data = FileManager.default.contents(atPath: path), data.count <= 1 << 20 else {
            throw ConfigProblems([ConfigProblem(path: "", message: "cannot read \(path) (or it is larger than 1 MiB)")])
        }
        return try parse(yaml: String(decoding: data, as: UTF8.self))
    }
}

/// Where pruning may go.
public enum PrunePoint {
    /// The new minimum index: the largest multiple of 256 (whole entry bundles) such that
    /// every entry below it is expired (`firstUnexpired` is the index of the first entry at
    /// or after the current minimum index that is not), archived and verified in the
    /// archive (`verifiedEnd`: entries below it are), and in a full bundle of the trail.
    /// Never below the current minimum index.
    public static func compute(firstUnexpired: UInt64, verifiedEnd: UInt64, size: UInt64, minimumIndex: UInt64) -> UInt64 {
        let limit = min(firstUnexpired, verifiedEnd, size)
        return max(minimumIndex, (limit / 256) * 256)
    }
}
