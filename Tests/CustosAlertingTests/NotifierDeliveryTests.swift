import Crypto
import CustosAlerting
@testable import CustosCore
import Foundation
import Testing

/// Real deliveries over loopback to receivers the tests start themselves: a Python HTTP
/// server recording every request (Fixtures/webhook_receiver.py) and a Python SMTP server
/// (Fixtures/smtp_receiver.py, aiosmtpd). Backoff waits are recorded, not slept.
@Suite struct NotifierDeliveryTests {
    static let hookKeyVar = "CUSTOS_TEST_WEBHOOK_KEY"
    static let hookKey = "k3y-for-the-test-webhook"

    /// The default attempt timeout is generous: on a loaded CI machine a Python receiver can
    /// take seconds to answer, and a timed-out first attempt would turn "delivered after 1
    /// attempt" into 2. Tests about timeouts pass their own, short one.
    func retry(_ log: SleepLog, attempts: Int = 4, timeout: Duration = .seconds(30)) -> RetryPolicy {
        RetryPolicy(attempts: attempts, timeout: timeout, sleep: log.sleeper)
    }

    func assertNoCredentials(_ outcomes: [DeliveryOutcome], _ secrets: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        for o in outcomes {
            let text = "\(o) \(o.target.endpoint) \(o.error ?? "")"
            for s in secrets { #expect(!text.contains(s), "outcome mentions \(s): \(text)", sourceLocation: sourceLocation) }
        }
    }

    @Test func signedWebhookArrivesWithTheCanonicalBody() async throws {
        let rx = try await Receiver.webhook()
        defer { rx.stop() }
        let policy = try NotifierSamples.policy("""
            owners:
              sec: { name: Security team, notify: [ { webhook: { url: "\(rx.url)/hooks/T0/SECRETPATH", secret_env: \(Self.hookKeyVar) } } ] }
            """)
        let log = SleepLog()
        let notifier = AlertNotifier(policy: policy, environment: [Self.hookKeyVar: Self.hookKey], retry: retry(log))
        let alert = NotifierSamples.alert()
        let outcomes = await notifier.deliver([alert])

        #expect(outcomes == [DeliveryOutcome(alertID: alert.id, ownerKey: "sec",
                                             target: DeliveryTarget(kind: "webhook", endpoint: "http://127.0.0.1:\(rx.port)"),
                                             delivered: true, attempts: 1)])
        let reqs = try await rx.requests()
        #expect(reqs.count == 1)
        let r = try #require(reqs.first)
        #expect(r.path == "/hooks/T0/SECRETPATH")
        #expect(r.body == alert.canonicalJSON())
        #expect(r.headers["content-type"] == "application/json")
        #expect(r.headers["x-custos-alert-id"] == alert.id)
        #expect(r.headers["x-custos-kind"] == "alert")
        // The receiver's check: HMAC-SHA256 over the raw body with the shared key.
        let sig = try #require(r.headers["x-custos-signature"])
        let expected = "sha256=" + HMAC<SHA256>.authenticationCode(for: r.body, using: SymmetricKey(data: Array(Self.hookKey.utf8)))
            .map { String(format: "%02x", $0) }.joined()
        #expect(sig == expected)
        #expect(log.delays.isEmpty)
        #expect(notifier.metrics["webhook"] == { var c = NotifierMetrics.Counters(); c.sent = 1; return c }())
        assertNoCredentials(outcomes, ["SECRETPATH", "/hooks", Self.hookKey])
    }

    @Test func a500IsRetriedAfterBackoffThenDelivered() async throws {
        let rx = try await Receiver.webhook(statuses: "500,200")
        defer { rx.stop() }
        let policy = try NotifierSamples.policy("""
            owners:
              sec: { name: Security team, notify: [ { slack: "\(rx.url)/services/T0/B0/SLACKSECRET" } ] }
            """)
        let log = SleepLog()
        let notifier = AlertNotifier(policy: policy, retry: retry(log))
        let outcomes = await notifier.deliver([NotifierSamples.alert()])
        #expect(outcomes.count == 1)
        #expect(outcomes.first?.delivered == true)
        #expect(outcomes.first?.attempts == 2)
        let reqs = try await rx.requests(atLeast: 2)
        try #require(reqs.map(\.status) == [500, 200])   // (a failure here must not index out of range)
        #expect(reqs[0].body == reqs[1].body)
        let text = try #require((reqs[1].json as? [String: Any])?["text"] as? String)
        #expect(text.contains("failed_threshold") && text.contains("Security team"))
        #expect(log.delays == [.milliseconds(500)])
        let m = notifier.metrics["slack"]
        #expect(m.sent == 1 && m.failed == 0 && m.retried == 1)
        assertNoCredentials(outcomes, ["SLACKSECRET", "/services"])
    }

    @Test func a4xxIsNotRetriedAndTheFallbackOwnerHearsOfIt() async throws {
        let pd = try await Receiver.webhook(statuses: "400")
        defer { pd.stop() }
        let fallback = try await Receiver.webhook()
        defer { fallback.stop() }
        let policy = try NotifierSamples.policy("""
            owners:
              sec:  { name: Security team, notify: [ { pagerduty: { routing_key: R0UTINGKEYSECRET, url: "\(pd.url)/v2/enqueue" } } ] }
              lead: { name: SecOps lead, notify: [ { webhook: "\(fallback.url)/fallback" } ] }
            fallback_owner: lead
            """)
        let log = SleepLog()
        let notifier = AlertNotifier(policy: policy, retry: retry(log))
        let alert = NotifierSamples.alert(severity: .critical)
        let outcomes = await notifier.deliver([alert])

        #expect(outcomes.count == 2)
        let first = try #require(outcomes.first)
        #expect(!first.delivered && first.attempts == 1 && first.error == "HTTP 400")
        #expect(first.target.description == "pagerduty http://127.0.0.1:\(pd.port)")
        #expect(log.delays.isEmpty)
        // PagerDuty got a real Events v2 body.
        let event = try #require(try await pd.requests().first?.json as? [String: Any])
        #expect(event["routing_key"] as? String == "R0UTINGKEYSECRET")
        #expect(event["dedup_key"] as? String == alert.dedupKey)
        #expect((event["payload"] as? [String: Any])?["severity"] as? String == "critical")
        // The fallback owner's notice.
        let notice = try #require(outcomes.last)
        #expect(notice.isFailureNotice && notice.delivered && notice.ownerKey == "lead")
        let body = try #require(try await fallback.requests().first)
        #expect(body.headers["x-custos-kind"] == "delivery_failure")
        let n = try #require(body.json as? [String: Any])
        #expect(n["schema"] as? String == "custos.delivery_failure/v1")
        #expect(n["alert_id"] as? String == alert.id)
        #expect(n["class"] as? String == "failed_threshold")
        #expect((n["owner"] as? [String: Any])?["key"] as? String == "sec")
        #expect((n["target"] as? [String: Any])?["kind"] as? String == "pagerduty")
        #expect((n["target"] as? [String: Any])?["endpoint"] as? String == "http://127.0.0.1:\(pd.port)")
        #expect(n["error"] as? String == "HTTP 400")
        let raw = String(decoding: body.body, as: UTF8.self)
        #expect(!raw.contains("R0UTINGKEYSECRET") && !raw.contains("/v2/enqueue"))
        assertNoCredentials(outcomes, ["R0UTINGKEYSECRET", "/v2/enqueue", "/fallback"])
        let m = notifier.metrics
        #expect(m["pagerduty"].failed == 1 && m["webhook"].sent == 1 && m.failureNoticesSent == 1)
    }

    @Test func anUnreachableTargetFailsAfterEveryAttemptAndTheFallbackOwnerIsTold() async throws {
        let closed = try unusedLoopbackPort()
        let fallback = try await Receiver.webhook()
        defer { fallback.stop() }
        let policy = try NotifierSamples.policy("""
            owners:
              sec:  { name: Security team, notify: [ { slack: "http://127.0.0.1:\(closed)/services/T0/B0/SLACKSECRET" } ] }
              lead: { name: SecOps lead, notify: [ { webhook: "\(fallback.url)/fallback" } ] }
            fallback_owner: lead
            """)
        let log = SleepLog()
        let notifier = AlertNotifier(policy: policy, retry: retry(log, attempts: 3, timeout: .seconds(1)))
        let alert = NotifierSamples.alert()
        let started = ContinuousClock.now
        let outcomes = await notifier.deliver([alert])
        let took = ContinuousClock.now - started

        #expect(outcomes.count == 2)
        let failed = try #require(outcomes.first)
        #expect(!failed.delivered && failed.attempts == 3 && !failed.isFailureNotice)
        let error = try #require(failed.error)
        // AsyncHTTPClient keeps reconnecting until the attempt's deadline, then reports the
        // last connect error.
        #expect(error == "connection refused" || error.hasPrefix("timed out"), "\(error)")
        #expect(failed.target == DeliveryTarget(kind: "slack", endpoint: "http://127.0.0.1:\(closed)"))
        #expect(log.delays == [.milliseconds(500), .seconds(1)])
        // Backoff is recorded, not slept: three attempts bounded by 1 s each. The bound is
        // loose for a loaded CI machine (one run took 10 s); without timeouts it would hang.
        #expect(took < .seconds(30))

        let n = try #require(try await fallback.requests().first?.json as? [String: Any])
        #expect(n["alert_id"] as? String == alert.id)
        #expect(n["attempts"] as? Int == 3)
        #expect((n["target"] as? [String: Any])?["endpoint"] as? String == "http://127.0.0.1:\(closed)")
        let summary = try #require(n["summary"] as? String)
        #expect(summary.contains(alert.id) && summary.contains("failed_threshold") && summary.contains("sec") && summary.contains("slack"))
        #expect(outcomes.last?.isFailureNotice == true && outcomes.last?.delivered == true)
        assertNoCredentials(outcomes, ["SLACKSECRET", "/services"])
        let m = notifier.metrics
        #expect(m["slack"].failed == 1 && m["slack"].retried == 2 && m["slack"].sent == 0)
        #expect(m.failureNoticesSent == 1)
    }

    @Test func aMissingSigningKeyIsAnErrorNamingTheVariable() async throws {
        let rx = try await Receiver.webhook()
        defer { rx.stop() }
        let fallback = try await Receiver.webhook()
        defer { fallback.stop() }
        let policy = try NotifierSamples.policy("""
            owners:
              sec:  { name: Security team, notify: [ { webhook: { url: "\(rx.url)/hook", secret_env: CUSTOS_TEST_UNSET_KEY } } ] }
              lead: { name: SecOps lead, notify: [ { webhook: { url: "\(fallback.url)/fallback", secret_env: \(Self.hookKeyVar) } } ] }
            fallback_owner: lead
            """)
        let notifier = AlertNotifier(policy: policy, environment: [Self.hookKeyVar: Self.hookKey], retry: retry(SleepLog()))
        let outcomes = await notifier.deliver([NotifierSamples.alert()])
        try #require(outcomes.count == 2)
        #expect(outcomes[0].delivered == false && outcomes[0].attempts == 0)
        #expect(outcomes[0].error == "webhook signing key: environment variable CUSTOS_TEST_UNSET_KEY is not set")
        #expect(rx.files().isEmpty)
        // The notice itself is signed with the fallback target's key.
        #expect(outcomes[1].delivered && outcomes[1].isFailureNotice)
        let notice = try #require(try await fallback.requests().first)
        #expect(notice.headers["x-custos-signature"] == NotificationPayload.signature(body: notice.body, key: Array(Self.hookKey.utf8)))
        assertNoCredentials(outcomes, [Self.hookKey, "/hook", "/fallback"])
    }

    @Test func updatedAndSilencedAlertsAreNotDelivered() async throws {
        let rx = try await Receiver.webhook()
        defer { rx.stop() }
        let policy = try NotifierSamples.policy("""
            owners:
              sec: { name: Security team, notify: [ { webhook: "\(rx.url)/hook" } ] }
            """)
        let notifier = AlertNotifier(policy: policy, retry: retry(SleepLog()))
        let raised = NotifierSamples.alert(id: "00000000000000000000000000000001")
        let outcomes = await notifier.deliver([
            NotifierSamples.alert(id: "00000000000000000000000000000002", status: .updated),
            NotifierSamples.alert(id: "00000000000000000000000000000003", silencedBy: "silence-1"),
            raised,
        ])
        #expect(outcomes.map(\.alertID) == [raised.id])
        let reqs = try await rx.requests()
        #expect(reqs.count == 1 && reqs.first?.headers["x-custos-alert-id"] == raised.id)
        let m = notifier.metrics
        #expect(m.skippedUpdated == 1 && m.skippedSilenced == 1 && m["webhook"].sent == 1)
    }

    @Test func anAlertWhoseOwnerIsGoneGoesToTheFallbackOwner() async throws {
        let fallback = try await Receiver.webhook()
        defer { fallback.stop() }
        let policy = try NotifierSamples.policy("""
            owners:
              lead: { name: SecOps lead, notify: [ { webhook: "\(fallback.url)/fallback" } ] }
            fallback_owner: lead
            """)
        let notifier = AlertNotifier(policy: policy, retry: retry(SleepLog()))
        let alert = NotifierSamples.alert(owner: "team-that-left")
        let outcomes = await notifier.deliver([alert])
        #expect(outcomes.count == 1 && outcomes[0].delivered && outcomes[0].ownerKey == "lead" && !outcomes[0].isFailureNotice)
        #expect(try await fallback.requests().first?.body == alert.canonicalJSON())

        let orphan = AlertNotifier(policy: try NotifierSamples.policy("""
            owners:
              lead: { name: SecOps lead, notify: [ { webhook: "\(fallback.url)/fallback" } ] }
            """))
        let lost = await orphan.deliver([alert])
        #expect(lost == [DeliveryOutcome(alertID: alert.id, ownerKey: "team-that-left", target: DeliveryTarget(kind: "none", endpoint: ""),
                                         delivered: false, attempts: 0,
                                         error: "owner team-that-left is not in the policy and there is no fallback_owner")])
        #expect(orphan.metrics["none"].failed == 1)
    }

    @Test func emailArrivesAtARealSMTPServer() async throws {
        let smtp = try await Receiver.smtp()
        defer { smtp.stop() }
        let policy = try NotifierSamples.policy("""
            owners:
              sec: { name: Security team, notify: [ { email: secops@example.com } ] }
            smtp: { host: 127.0.0.1, port: \(smtp.port), from: custos@example.org }
            """)
        let fixed = Date(timeIntervalSince1970: 1_796_083_200)
        let log = SleepLog()
        let notifier = AlertNotifier(policy: policy, retry: retry(log), now: { fixed })
        // A body line that is a lone "." would end DATA early without dot-stuffing.
        let alert = NotifierSamples.alert(summary: "denied reads of secret/data/prod/payments/db\n.\n..two dots\nend — ünïcode")
        let outcomes = await notifier.deliver([alert])
        #expect(outcomes == [DeliveryOutcome(alertID: alert.id, ownerKey: "sec",
                                             target: DeliveryTarget(kind: "email", endpoint: "smtp://127.0.0.1:\(smtp.port)"),
                                             delivered: true, attempts: 1)])
        let mail = try #require(try await smtp.mails().first)
        #expect(mail.mailFrom == "custos@example.org")
        #expect(mail.rcptTos == ["secops@example.com"])
        let (headers, _, body) = parseMessage(mail.text)
        let h = Dictionary(headers, uniquingKeysWith: { a, _ in a })
        #expect(h["from"] == "custos@example.org")
        #expect(h["to"] == "secops@example.com")
        #expect(decodeEncodedWords(h["subject"] ?? "") == NotificationPayload.emailSubject(alert))
        #expect(decodeEncodedWords(h["subject"] ?? "").hasPrefix("[Custos] high failed_threshold: denied reads of secret/data/prod/payments/db"))
        #expect(h["date"] == "Tue, 01 Dec 2026 00:00:00 +0000")
        #expect(h["message-id"]?.hasPrefix("<\(alert.id).") == true && h["message-id"]?.hasSuffix("@example.org>") == true)
        #expect(h["content-type"] == "text/plain; charset=UTF-8")
        #expect(h["x-custos-alert-id"] == alert.id)
        let text = decodeQuotedPrintable(body)
        #expect(text.contains("denied reads of secret/data/prod/payments/db\n.\n..two dots\nend — ünïcode\n"))
        #expect(text.contains("Playbook:     PB-SEC-01"))
        #expect(text.contains("Origin:       203.0.113.7 (London, GB)"))
        #expect(log.delays.isEmpty)
        #expect(notifier.metrics["email"].sent == 1)
    }

    @Test func aRecipientRejectedWith5xxIsNotRetried() async throws {
        let smtp = try await Receiver.smtp()
        defer { smtp.stop() }
        let policy = try NotifierSamples.policy("""
            owners:
              sec: { name: Security team, notify: [ { email: reject-me@example.com } ] }
            smtp: { host: 127.0.0.1, port: \(smtp.port), from: custos@example.org }
            """)
        let log = SleepLog()
        let notifier = AlertNotifier(policy: policy, retry: retry(log))
        let outcomes = await notifier.deliver([NotifierSamples.alert()])
        #expect(outcomes.count == 1)
        #expect(outcomes.first?.delivered == false && outcomes.first?.attempts == 1)
        let error = try #require(outcomes.first?.error)
        #expect(error == "SMTP 550 after RCPT TO" || error == "SMTP 550 after end of data", "\(error)")
        #expect(log.delays.isEmpty)
        #expect(smtp.files().isEmpty)
        #expect(notifier.metrics["email"].failed == 1)
    }

    @Test func anSMTPServerThatIsNotThereIsRetried() async throws {
        let closed = try unusedLoopbackPort()
        let policy = try NotifierSamples.policy("""
            owners:
              sec: { name: Security team, notify: [ { email: secops@example.com } ] }
            smtp: { host: 127.0.0.1, port: \(closed), from: custos@example.org }
            """)
        let log = SleepLog()
        let notifier = AlertNotifier(policy: policy, retry: retry(log, attempts: 2, timeout: .seconds(2)))
        let outcomes = await notifier.deliver([NotifierSamples.alert()])
        #expect(outcomes.first?.attempts == 2 && outcomes.first?.delivered == false)
        #expect(outcomes.first?.error == "connection refused")
        #expect(log.delays == [.milliseconds(500)])
    }

    @Test func anSMTPServerThatNeverGreetsTimesOut() async throws {
        // An HTTP server waits for the client to speak first, so an SMTP client waiting for
        // its 220 greeting waits forever: only the attempt's timeout ends it.
        let silent = try await Receiver.webhook()
        defer { silent.stop() }
        let policy = try NotifierSamples.policy("""
            owners:
              sec: { name: Security team, notify: [ { email: secops@example.com } ] }
            smtp: { host: 127.0.0.1, port: \(silent.port), from: custos@example.org }
            """)
        let notifier = AlertNotifier(policy: policy, retry: retry(SleepLog(), attempts: 1, timeout: .seconds(1)))
        let started = ContinuousClock.now
        let outcomes = await notifier.deliver([NotifierSamples.alert()])
        // Without the timeout it would wait for ever; the bound is loose for a loaded CI machine
        // (the error below says which path ended it).
        #expect(ContinuousClock.now - started < .seconds(30))
        #expect(outcomes.first?.delivered == false && outcomes.first?.attempts == 1)
        #expect(outcomes.first?.error == "timed out after 1 s")
    }
}
