import AsyncHTTPClient
import CustosCore
import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// Delivers alerts to their owners' notification targets (generic webhook, Slack, PagerDuty
/// Events v2, Prometheus Alertmanager, email over SMTP), each with retries and backoff.
///
/// - Only alerts with `status == .raised` and `silencedBy == nil` are delivered. The
///   `updated` entry that closes a fold is not sent again (its owner already had the
///   alert), and a silenced alert is recorded but by definition notifies nobody. Both are
///   counted in `metrics` (`skippedUpdated`, `skippedSilenced`).
/// - Every target of the alert's owner gets it. An alert whose owner is not (or no longer)
///   in the policy goes to the fallback owner instead.
/// - HTTP 2xx is delivered. 408, 425, 429, 5xx and network errors (refused, reset,
///   timeout, TLS, DNS) are retried after `RetryPolicy` delays (a `Retry-After` in seconds
///   is honoured up to `maxDelay`); any other status is final at once. SMTP: 4xx replies
///   and network errors are retried, 5xx replies are final.
/// - When a target still fails, a `DeliveryFailureNotice` (alert id, class, owner, target
///   kind and `scheme://host:port`, error class) goes to every target of
///   `policy.fallbackOwner`, unless that is the same owner. Failure notices are not
///   escalated further. Each attempt's result is in the returned `DeliveryOutcome`s and
///   in `metrics`.
/// - No URL path, routing key, signing key or body ever appears in an outcome or error.
///
/// Deliveries run concurrently (at most `concurrency` targets at a time).
public final class AlertNotifier: Sendable {
    public let policy: Policy
    public let retry: RetryPolicy
    public let concurrency: Int
    let environment: [String: String]
    let httpClient: HTTPClient
    let now: @Sendable () -> Date
    private let state = NIOLockedValueBox(NotifierMetrics())

    /// - Parameters:
    ///   - environment: where `webhook.secret_env` names are looked up.
    ///   - now: the clock for email `Date` headers and failure notices.
    public init(policy: Policy, environment: [String: String] = ProcessInfo.processInfo.environment,
                retry: RetryPolicy = .init(), httpClient: HTTPClient = .shared, concurrency: Int = 8,
                now: @escaping @Sendable () -> Date = { Date() }) {
        self.policy = policy
        self.environment = environment
        self.retry = retry
        self.httpClient = httpClient
        self.concurrency = max(1, concurrency)
        self.now = now
    }

    /// Counters since this notifier was made.
    public var metrics: NotifierMetrics { state.withLockedValue { $0 } }

    /// What is sent: an alert, or the news that an alert could not be delivered.
    enum Message: Sendable {
        case alert(Alert)
        case failure(DeliveryFailureNotice)

        var alertID: String {
            switch self {
            case .alert(let a): return a.id
            case .failure(let n): return n.alertID
            }
        }
    }

    struct Job: Sendable {
        var alert: Alert
        var ownerKey: String
        var target: Policy.NotifyTarget
    }

    /// Delivers each alert (see the type's documentation for which, and how) and returns one
    /// outcome per target tried, in alert order, then target order; the failure notices of
    /// a target follow its outcome.
    public func deliver(_ alerts: [Alert]) async -> [DeliveryOutcome] {
        var jobs: [Job] = []
        var immediate: [(Int, DeliveryOutcome)] = []
        for alert in alerts {
            if alert.status != .raised {
                state.withLockedValue { $0.skippedUpdated += 1 }
                continue
            }
            if alert.silencedBy != nil {
                state.withLockedValue { $0.skippedSilenced += 1 }
                continue
            }
            guard let owner = recipient(of: alert) else {
                let why = alert.owner.map { "owner \($0.key) is not in the policy and there is no fallback_owner" }
                    ?? "the alert has no owner and there is no fallback_owner"
                immediate.append((jobs.count, DeliveryOutcome(alertID: alert.id, ownerKey: alert.owner?.key ?? "",
                                                              target: DeliveryTarget(kind: "none", endpoint: ""),
                                                              delivered: false, attempts: 0, error: why)))
                count(kind: "none", delivered: false, attempts: 0)
                continue
            }
            for t in owner.notify { jobs.append(Job(alert: alert, ownerKey: owner.key, target: t)) }
        }

        var results: [(Int, [DeliveryOutcome])] = immediate.map { ($0.0, [$0.1]) }
        await withTaskGroup(of: (Int, [DeliveryOutcome]).self) { group in
            var next = 0
            func start() {
                let i = next, job = jobs[i]
                next += 1
                group.addTask { (i, await self.run(job)) }
            }
            while next < min(concurrency, jobs.count) { start() }
            while let r = await group.next() {
                results.append(r)
                if next < jobs.count { start() }
            }
        }
        // Stable: immediate outcomes were numbered by the job count at their time, so they
        // sort before the jobs of later alerts.
        return results.enumerated().sorted { ($0.element.0, $0.offset) < ($1.element.0, $1.offset) }.flatMap { $0.element.1 }
    }

    /// The owner whose targets get the alert: its own, else the fallback owner.
    func recipient(of alert: Alert) -> Policy.Owner? {
        if let key = alert.owner?.key, let o = policy.owners[key], !o.notify.isEmpty { return o }
        if let f = policy.fallbackOwner, let o = policy.owners[f] { return o }
        return nil
    }

    /// One alert to one target, then the fallback owner's notices if that failed.
    func run(_ job: Job) async -> [DeliveryOutcome] {
        let r = await send(.alert(job.alert), to: job.target)
        let target = DeliveryTarget(job.target, smtp: policy.smtp)
        var out = [DeliveryOutcome(alertID: job.alert.id, ownerKey: job.ownerKey, target: target,
                                   delivered: r.delivered, attempts: r.attempts, error: r.error)]
        guard !r.delivered, let fk = policy.fallbackOwner, fk != job.ownerKey, let fallback = policy.owners[fk] else { return out }
        let notice = DeliveryFailureNotice(
            alertID: job.alert.id, alertClass: job.alert.alertClass, severity: job.alert.severity,
            ownerKey: job.ownerKey, ownerName: policy.owners[job.ownerKey]?.name ?? job.alert.owner?.name,
            alertSummary: job.alert.summary, target: target, attempts: r.attempts,
            error: r.error ?? "unknown error", time: Self.eventTime(now()))
        for t in fallback.notify {
            let n = await send(.failure(notice), to: t)
            state.withLockedValue { n.delivered ? ($0.failureNoticesSent += 1) : ($0.failureNoticesFailed += 1) }
            out.append(DeliveryOutcome(alertID: job.alert.id, ownerKey: fk, target: DeliveryTarget(t, smtp: policy.smtp),
                                       delivered: n.delivered, attempts: n.attempts, error: n.error, isFailureNotice: true))
        }
        return out
    }

    // MARK: - Attempts

    struct Result: Sendable {
        var delivered: Bool
        var attempts: Int
        var error: String?
    }

    enum Attempt: Sendable {
        case delivered
        case transient(String, retryAfter: Duration?)
        case permanent(String)
    }

    enum Prepared: Sendable {
        case http(url: String, headers: [NotificationPayload.Header], body: [UInt8])
        case smtp(SMTPClient, from: String, to: String, message: [UInt8])
    }

    struct PrepareError: Error { var message: String }

    /// Builds the body once, then tries up to `retry.attempts` times.
    func send(_ message: Message, to target: Policy.NotifyTarget) async -> Result {
        let result = await attempts(message, to: target)
        count(kind: target.kind, delivered: result.delivered, attempts: result.attempts)
        return result
    }

    func attempts(_ message: Message, to target: Policy.NotifyTarget) async -> Result {
        let prepared: Prepared
        do {
            prepared = try prepare(message, for: target)
        } catch let e as PrepareError {
            return Result(delivered: false, attempts: 0, error: e.message)
        } catch {
            return Result(delivered: false, attempts: 0, error: "cannot build the message")
        }
        var attempt = 0
        while true {
            attempt += 1
            switch await once(prepared) {
            case .delivered:
                return Result(delivered: true, attempts: attempt, error: nil)
            case .permanent(let e):
                return Result(delivered: false, attempts: attempt, error: e)
            case .transient(let e, let retryAfter):
                guard attempt < retry.attempts else { return Result(delivered: false, attempts: attempt, error: e) }
                var wait = retry.delay(beforeAttempt: attempt + 1)
                if let retryAfter { wait = min(max(wait, retryAfter), retry.maxDelay) }
                do { try await retry.sleep(wait) } catch {
                    return Result(delivered: false, attempts: attempt, error: e + " (then cancelled)")
                }
            }
        }
    }

    func prepare(_ message: Message, for target: Policy.NotifyTarget) throws -> Prepared {
        func checked(_ url: String) throws -> String {
            guard let c = URLComponents(string: url), let s = c.scheme?.lowercased(), s == "http" || s == "https",
                  let h = c.host, !h.isEmpty else { throw PrepareError(message: "invalid URL (http or https with a host expected)") }
            return url
        }
        switch target {
        case .webhook(let url, let secretEnv):
            var key: [UInt8]?
            if let name = secretEnv {
                guard let value = environment[name], !value.isEmpty else {
                    throw PrepareError(message: "webhook signing key: environment variable \(name) is not set")
                }
                key = Array(value.utf8)
            }
            let body: [UInt8], headers: [NotificationPayload.Header]
            switch message {
            case .alert(let a):
                body = NotificationPayload.webhookBody(a)
                headers = NotificationPayload.webhookHeaders(alertID: a.id, body: body, signingKey: key)
            case .failure(let n):
                body = NotificationPayload.webhookBody(n)
                headers = NotificationPayload.webhookHeaders(alertID: n.alertID, body: body, signingKey: key, kind: "delivery_failure")
            }
            return .http(url: try checked(url), headers: headers, body: body)
        case .slack(let url):
            let body: [UInt8]
            switch message {
            case .alert(let a): body = NotificationPayload.slack(a)
            case .failure(let n): body = NotificationPayload.slack(n)
            }
            return .http(url: try checked(url), headers: [.init("Content-Type", "application/json")], body: body)
        case .pagerduty(let routingKey, let url):
            let body: [UInt8]
            switch message {
            case .alert(let a): body = NotificationPayload.pagerDuty(a, routingKey: routingKey)
            case .failure(let n): body = NotificationPayload.pagerDuty(n, routingKey: routingKey)
            }
            return .http(url: try checked(url), headers: [.init("Content-Type", "application/json")], body: body)
        case .alertmanager(let url):
            let body: [UInt8]
            switch message {
            case .alert(let a): body = NotificationPayload.alertmanager(a)
            case .failure(let n): body = NotificationPayload.alertmanager(n)
            }
            return .http(url: try checked(NotificationPayload.alertmanagerEndpoint(url)),
                         headers: [.init("Content-Type", "application/json")], body: body)
        case .email(let to):
            guard let smtp = policy.smtp else { throw PrepareError(message: "email: the policy has no smtp settings") }
            let date = now()
            let domain = SMTPClient.sanitizedHelo(String(smtp.from.split(separator: "@").last ?? "custos.local"))
            let unique = Hex.encode((0..<8).map { _ in UInt8.random(in: 0...255) })
            let body: [UInt8]
            switch message {
            case .alert(let a):
                body = NotificationPayload.email(a, from: smtp.from, to: to, date: date, messageID: "<\(a.id).\(unique)@\(domain)>")
            case .failure(let n):
                body = NotificationPayload.email(n, from: smtp.from, to: to, date: date,
                                                 messageID: "<failure.\(n.alertID).\(unique)@\(domain)>")
            }
            let client = SMTPClient(host: smtp.host, port: smtp.port, heloName: domain, timeout: retry.timeout)
            return .smtp(client, from: smtp.from, to: to, message: body)
        }
    }

    func once(_ prepared: Prepared) async -> Attempt {
        switch prepared {
        case .smtp(let client, let from, let to, let message):
            do throws(SMTPError) {
                try await client.send(from: from, to: to, message: message)
                return .delivered
            } catch {
                return error.isTransient ? .transient(error.description, retryAfter: nil) : .permanent(error.description)
            }
        case .http(let url, let headers, let body):
            var request = HTTPClientRequest(url: url)
            request.method = .POST
            for h in headers { request.headers.add(name: h.name, value: h.value) }
            request.headers.add(name: "User-Agent", value: "Custos")
            request.body = .bytes(ByteBuffer(bytes: body))
            do {
                let response = try await httpClient.execute(request, timeout: .nanoseconds(max(1, SMTPClient.nanos(retry.timeout))))
                // Read (and drop) up to 64 KiB of the reply so the connection can be reused.
                var seen = 0
                do {
                    for try await chunk in response.body {
                        seen += chunk.readableBytes
                        if seen > 65_536 { break }
                    }
                } catch {}
                let code = Int(response.status.code)
                switch code {
                case 200..<300:
                    return .delivered
                case 408, 425, 429, 500..<600:
                    let retryAfter = response.headers.first(name: "Retry-After")
                        .flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
                        .map { Duration.seconds(max(0, $0)) }
                    return .transient("HTTP \(code)", retryAfter: retryAfter)
                default:
                    return .permanent("HTTP \(code)")
                }
            } catch {
                return .transient(NetworkErrorClass.describe(error, timeout: retry.timeout), retryAfter: nil)
            }
        }
    }

    func count(kind: String, delivered: Bool, attempts: Int) {
        state.withLockedValue { m in
            var c = m.byKind[kind] ?? NotifierMetrics.Counters()
            if delivered { c.sent += 1 } else { c.failed += 1 }
            c.retried += max(0, attempts - 1)
            m.byKind[kind] = c
        }
    }

    static func eventTime(_ d: Date) -> EventTime {
        let t = d.timeIntervalSince1970
        let s = t.rounded(.down)
        let millis = Int32(min(999, ((t - s) * 1000).rounded(.down)))
        return EventTime(seconds: Int64(s), nanos: millis * 1_000_000, digits: 3)
    }
}
