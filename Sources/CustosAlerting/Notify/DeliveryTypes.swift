import CustosCore
import Foundation

/// How often and how patiently a notifier tries one target.
///
/// Attempt `n` (n ≥ 2) waits `min(initialDelay × multiplier^(n-2), maxDelay)` first — with
/// the defaults 0.5 s, 1 s, 2 s — or what a 429/503 response's `Retry-After` asks for (in
/// seconds, capped at `maxDelay`). Each attempt must finish within `timeout` (connect,
/// send, response). The waits go through `sleep`, which tests replace so they never wait.
///
/// AsyncHTTPClient keeps reconnecting to a host that refuses connections until the
/// attempt's deadline, so an unreachable HTTP target costs `timeout` per attempt (with the
/// defaults, 4 × 10 s plus 3.5 s of backoff) before the fallback owner is told; the error
/// is then still `connection refused`.
public struct RetryPolicy: Sendable {
    public typealias Sleeper = @Sendable (Duration) async throws -> Void

    /// Attempts per target and message, the first one included (at least 1).
    public var attempts: Int
    public var initialDelay: Duration
    public var multiplier: Double
    public var maxDelay: Duration
    /// Per attempt.
    public var timeout: Duration
    public var sleep: Sleeper

    public static let realSleep: Sleeper = { try await Task.sleep(for: $0) }

    public init(attempts: Int = 4, initialDelay: Duration = .milliseconds(500), multiplier: Double = 2,
                maxDelay: Duration = .seconds(30), timeout: Duration = .seconds(10),
                sleep: @escaping Sleeper = RetryPolicy.realSleep) {
        self.attempts = max(1, attempts)
        self.initialDelay = initialDelay
        self.multiplier = multiplier
        self.maxDelay = maxDelay
        self.timeout = timeout
        self.sleep = sleep
    }

    /// The wait before attempt `attempt` (2 is the first retry), without `Retry-After`.
    public func delay(beforeAttempt attempt: Int) -> Duration {
        guard attempt >= 2 else { return .zero }
        let factor = pow(max(multiplier, 1), Double(attempt - 2))
        let seconds = Self.seconds(initialDelay) * factor
        let cap = Self.seconds(maxDelay)
        return seconds.isFinite && seconds < cap ? .nanoseconds(Int64(seconds * 1e9)) : maxDelay
    }

    static func seconds(_ d: Duration) -> Double {
        let c = d.components
        return Double(c.seconds) + Double(c.attoseconds) / 1e18
    }
}

/// Where a message went, safe to print and keep: the target's kind and `scheme://host:port`
/// only. Slack and webhook URLs carry credentials in their path and PagerDuty routing keys
/// are credentials, so neither ever appears here (nor in errors, logs or notices).
public struct DeliveryTarget: Sendable, Hashable, CustomStringConvertible {
    /// webhook, slack, pagerduty, alertmanager, email (or `none` when an alert had nowhere to go).
    public var kind: String
    /// `https://hooks.slack.com:443`, `smtp://127.0.0.1:2525`; empty for `none`.
    public var endpoint: String

    public init(kind: String, endpoint: String) { self.kind = kind; self.endpoint = endpoint }

    public init(_ target: Policy.NotifyTarget, smtp: Policy.SMTPSettings?) {
        switch target {
        case .webhook(let url, _), .slack(let url), .alertmanager(let url), .pagerduty(_, let url):
            self.init(kind: target.kind, endpoint: Self.origin(url))
        case .email:
            self.init(kind: "email", endpoint: smtp.map { "smtp://\(Self.bracketed($0.host)):\($0.port)" } ?? "smtp://(not configured)")
        }
    }

    public var description: String { endpoint.isEmpty ? kind : "\(kind) \(endpoint)" }

    /// `scheme://host:port` of a URL (the port made explicit), nothing else of it.
    public static func origin(_ url: String) -> String {
        guard let c = URLComponents(string: url), let scheme = c.scheme?.lowercased(), let host = c.host, !host.isEmpty else {
            return "(invalid url)"
        }
        let port = c.port ?? (scheme == "https" ? 443 : scheme == "http" ? 80 : 0)
        return "\(scheme)://\(bracketed(host.lowercased())):\(port)"
    }

    static func bracketed(_ host: String) -> String {
        host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
    }
}

/// The result of delivering one message (an alert, or a notice that an alert's delivery
/// failed) to one target.
public struct DeliveryOutcome: Sendable, Equatable, CustomStringConvertible {
    public var alertID: String
    /// The owner whose target this was (the fallback owner for failure notices).
    public var ownerKey: String
    public var target: DeliveryTarget
    public var delivered: Bool
    /// Attempts made (0 when the message could not even be built, e.g. a missing signing key).
    public var attempts: Int
    /// Why the last attempt failed: `HTTP 503`, `connection refused`, `timed out after 10 s`,
    /// `SMTP 550 after RCPT TO`, ... Never a URL path, a body or a key.
    public var error: String?
    /// True for the message telling the fallback owner that an alert's delivery failed.
    public var isFailureNotice: Bool

    public init(alertID: String, ownerKey: String, target: DeliveryTarget, delivered: Bool, attempts: Int,
                error: String? = nil, isFailureNotice: Bool = false) {
        self.alertID = alertID; self.ownerKey = ownerKey; self.target = target; self.delivered = delivered
        self.attempts = attempts; self.error = error; self.isFailureNotice = isFailureNotice
    }

    public var description: String {
        let what = isFailureNotice ? "failure notice for alert \(alertID)" : "alert \(alertID)"
        let result = delivered ? "delivered" : "FAILED (\(error ?? "unknown error"))"
        return "\(what) to \(ownerKey) via \(target): \(result) after \(attempts) attempt\(attempts == 1 ? "" : "s")"
    }
}

/// Counters since the notifier was made, for a Prometheus /metrics endpoint.
public struct NotifierMetrics: Sendable, Equatable {
    public struct Counters: Sendable, Equatable {
        /// Messages delivered (2xx, or SMTP 250 after DATA).
        public var sent = 0
        /// Messages given up on after their last attempt (or that could not be built).
        public var failed = 0
        /// Attempts beyond the first (each retry counts once).
        public var retried = 0
        public init() {}
    }
    /// By target kind (webhook, slack, pagerduty, alertmanager, email, none). Failure
    /// notices to the fallback owner are counted here too.
    public var byKind: [String: Counters] = [:]
    /// Failure notices sent to, and failed towards, the fallback owner.
    public var failureNoticesSent = 0
    public var failureNoticesFailed = 0
    /// Alerts not delivered on purpose: silenced, or `updated` entries of folded alerts.
    public var skippedSilenced = 0
    public var skippedUpdated = 0

    public init() {}

    public subscript(kind: String) -> Counters { byKind[kind] ?? Counters() }
}

/// Sent to the fallback owner when every attempt to deliver an alert to a target failed.
/// It names the alert, its class and owner, and the target by kind and `scheme://host:port`.
public struct DeliveryFailureNotice: Sendable, Equatable {
    public static let schema = "custos.delivery_failure/v1"
    public var alertID: String
    public var alertClass: AlertClass
    public var severity: Severity
    public var ownerKey: String
    public var ownerName: String?
    public var alertSummary: String
    public var target: DeliveryTarget
    public var attempts: Int
    public var error: String
    /// When Custos gave up.
    public var time: EventTime

    public init(alertID: String, alertClass: AlertClass, severity: Severity, ownerKey: String, ownerName: String?,
                alertSummary: String, target: DeliveryTarget, attempts: Int, error: String, time: EventTime) {
        self.alertID = alertID; self.alertClass = alertClass; self.severity = severity; self.ownerKey = ownerKey
        self.ownerName = ownerName; self.alertSummary = alertSummary; self.target = target; self.attempts = attempts
        self.error = error; self.time = time
    }

    /// One line a human reads first.
    public var summary: String {
        "Custos could not deliver \(severity.rawValue) \(alertClass.rawValue) alert \(alertID) for owner \(ownerKey) "
            + "to \(target) after \(attempts) attempt\(attempts == 1 ? "" : "s"): \(error)"
    }

    /// Deduplicates repeated notices about the same alert and target.
    public var dedupKey: String { "custos_delivery_failure:\(alertID):\(target.kind):\(target.endpoint)" }
}
