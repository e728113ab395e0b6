import Crypto
import CustosAlerting
@testable import CustosCore
import Foundation
import Testing

/// The bodies, one format at a time, parsed back as a receiver would.
@Suite struct NotifierPayloadTests {
    func object(_ bytes: [UInt8]) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
    }

    @Test func webhookBodyIsTheCanonicalAlertAndItsSignatureVerifies() throws {
        let alert = NotifierSamples.alert()
        let body = NotificationPayload.webhookBody(alert)
        #expect(body == alert.canonicalJSON())
        let o = try object(body)
        #expect(o["schema"] as? String == "custos.alert/v1")
        #expect(o["id"] as? String == alert.id)

        let key = Array("webhook-shared-key".utf8)
        let headers = NotificationPayload.webhookHeaders(alertID: alert.id, body: body, signingKey: key)
        let byName = Dictionary(headers.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a })
        #expect(byName["X-Custos-Alert-Id"] == alert.id)
        #expect(byName["Content-Type"] == "application/json")
        let sig = try #require(byName["X-Custos-Signature"])
        #expect(sig.hasPrefix("sha256="))
        let hex = String(sig.dropFirst(7))
        #expect(hex.count == 64 && hex == hex.lowercased())
        // Verified independently with swift-crypto, as a receiver would.
        let mac = try #require(Self.unhex(hex))
        #expect(HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: body, using: SymmetricKey(data: key)))
        #expect(!HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: body + [0x20], using: SymmetricKey(data: key)))
        // RFC 4231 test case 2.
        #expect(NotificationPayload.signature(body: Array("what do ya want for nothing?".utf8), key: Array("Jefe".utf8))
                == "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        // No key, no signature header.
        #expect(!NotificationPayload.webhookHeaders(alertID: alert.id, body: body, signingKey: nil).contains { $0.name == "X-Custos-Signature" })
    }

    @Test func emailTextKeepsLongDetailNamesWhole() {
        var a = NotifierSamples.alert(alertClass: .volume_anomaly)
        a.details = ["baseline_median": "5.5", "reads": "20"]
        let text = NotificationPayload.emailText(a)
        #expect(text.contains("\nbaseline_median: 5.5\n"), "\(text)")
        #expect(text.contains("\nreads:        20\n"), "\(text)")
    }

    @Test func slackTextIsOneReadableParagraph() throws {
        let alert = NotifierSamples.alert(summary: "3 denied reads <of> secret & more\nsecond line")
        let o = try object(NotificationPayload.slack(alert))
        #expect(o.keys.sorted() == ["text"])
        let text = try #require(o["text"] as? String)
        #expect(!text.contains("\n"))
        for part in ["HIGH", "failed_threshold", "Security team (sec)", "2026-12-01T13:00:00Z", "secret/data/prod/payments/db (prod)",
                     "token-payment-processor (api_key)", "203.0.113.7 (London, GB)", "PB-SEC-01", alert.id,
                     "&lt;of&gt; secret &amp; more second line"] {
            #expect(text.contains(part), "\(part) missing from: \(text)")
        }
    }

    @Test func pagerDutyEventHasTheV2FieldsAndMappedSeverity() throws {
        let alert = NotifierSamples.alert(severity: .critical)
        let o = try object(NotificationPayload.pagerDuty(alert, routingKey: "R0UTING-KEY"))
        #expect(o["routing_key"] as? String == "R0UTING-KEY")
        #expect(o["event_action"] as? String == "trigger")
        #expect(o["dedup_key"] as? String == alert.dedupKey)
        let p = try #require(o["payload"] as? [String: Any])
        #expect(p["source"] as? String == "custos")
        #expect(p["severity"] as? String == "critical")
        #expect(p["timestamp"] as? String == "2026-12-01T12:00:00Z")
        #expect(p["class"] as? String == "failed_threshold")
        #expect(p["component"] as? String == "secret/data/prod/payments/db")
        #expect(p["group"] as? String == "prod")
        #expect((p["summary"] as? String)?.contains(alert.summary) == true)
        let d = try #require(p["custom_details"] as? [String: Any])
        #expect(d["alert_id"] as? String == alert.id)
        #expect(d["owner"] as? String == "Security team (sec)")
        #expect(d["sla_deadline"] as? String == "2026-12-01T13:00:00Z")
        #expect(d["secret"] as? String == "secret/data/prod/payments/db")
        #expect(d["origin"] as? String == "203.0.113.7 (London, GB)")
        #expect(d["evidence"] as? [Int] == [4, 5, 6])
        #expect(d["detail_window"] as? String == "300 s")

        let mapping: [Severity: String] = [.critical: "critical", .high: "error", .medium: "warning", .low: "info"]
        for (s, expected) in mapping {
            #expect(NotificationPayload.pagerDutySeverity(s) == expected)
            let body = try object(NotificationPayload.pagerDuty(NotifierSamples.alert(severity: s), routingKey: "k"))
            #expect((body["payload"] as? [String: Any])?["severity"] as? String == expected)
        }

        // The summary is cut to PagerDuty's 1024 characters.
        let long = NotifierSamples.alert(summary: String(repeating: "é", count: 3000))
        let lp = try #require(try object(NotificationPayload.pagerDuty(long, routingKey: "k"))["payload"] as? [String: Any])
        let summary = try #require(lp["summary"] as? String)
        #expect(summary.unicodeScalars.count <= 1024 && summary.unicodeScalars.count > 1000)
        #expect(summary.hasSuffix("…"))
    }

    @Test func alertmanagerBodyIsAnArrayWithLabelsAndAnnotations() throws {
        let alert = NotifierSamples.alert()
        let array = try #require(try JSONSerialization.jsonObject(with: Data(NotificationPayload.alertmanager(alert))) as? [[String: Any]])
        #expect(array.count == 1)
        let a = array[0]
        let labels = try #require(a["labels"] as? [String: String])
        #expect(labels["alertname"] == "custos_failed_threshold")
        #expect(labels["class"] == "failed_threshold")
        #expect(labels["severity"] == "high")
        #expect(labels["owner"] == "sec")
        #expect(labels["secret"] == "secret/data/prod/payments/db")
        #expect(labels["environment"] == "prod")
        #expect(labels["identity"] == "token-payment-processor")
        #expect(labels["source"] == "custos")
        #expect(labels["namespace"] == nil)   // empty values are left out
        let ann = try #require(a["annotations"] as? [String: String])
        #expect(ann["summary"] == alert.summary)
        #expect(ann["playbook"] == "PB-SEC-01")
        #expect(ann["sla_deadline"] == "2026-12-01T13:00:00Z")
        #expect(ann["alert_id"] == alert.id)
        #expect(a["startsAt"] as? String == "2026-12-01T11:58:10.123456789Z")
        #expect(a["endsAt"] == nil)   // Alertmanager's resolve_timeout applies

        #expect(NotificationPayload.alertmanagerEndpoint("http://am:9093") == "http://am:9093/api/v2/alerts")
        #expect(NotificationPayload.alertmanagerEndpoint("http://am:9093/") == "http://am:9093/api/v2/alerts")
        #expect(NotificationPayload.alertmanagerEndpoint("https://gw/alertmanager") == "https://gw/alertmanager/api/v2/alerts")
        #expect(NotificationPayload.alertmanagerEndpoint("http://am:9093/api/v2/alerts") == "http://am:9093/api/v2/alerts")
    }

    @Test func emailIsAnRFC5322MessageWhoseHeadersCannotBeInjected() throws {
        let evil = NotifierSamples.alert(summary: "denied read\r\nBcc: victim@evil.example\r\n\r\nfake body",
                                         identityName: "bob\nX-Injected: yes")
        let date = Date(timeIntervalSince1970: 1_796_083_200)   // 2026-12-01T00:00:00Z, a Tuesday
        let bytes = NotificationPayload.email(evil, from: "custos@example.com", to: "secops@example.com\r\nCc: x@evil.example",
                                              date: date, messageID: "<id.1@example.com>\r\nBcc: y@evil.example")
        let text = String(decoding: bytes, as: UTF8.self)
        let (headers, raw, body) = parseMessage(text)
        // Every header line is a known header or a folded continuation; nothing injected.
        let names = headers.map(\.0)
        #expect(names == ["from", "to", "subject", "date", "message-id", "mime-version", "content-type",
                          "content-transfer-encoding", "auto-submitted", "x-custos-alert-id"])
        for line in raw { #expect(!line.lowercased().hasPrefix("bcc") && !line.lowercased().hasPrefix("cc:") && !line.hasPrefix("X-Injected")) }
        let h = Dictionary(headers, uniquingKeysWith: { a, _ in a })
        #expect(h["subject"] == "[Custos] high failed_threshold: denied read Bcc: victim@evil.example fake body")
        #expect(h["to"] == "secops@example.com Cc: x@evil.example")
        #expect(h["date"] == "Tue, 01 Dec 2026 00:00:00 +0000")
        #expect(h["content-type"] == "text/plain; charset=UTF-8")
        #expect(!text.contains("\n\n") && !text.replacingOccurrences(of: "\r\n", with: "").contains("\n"))  // CRLF only
        let decoded = decodeQuotedPrintable(body)
        #expect(decoded.contains("Identity:     bob X-Injected: yes (api_key)") || decoded.contains("bob\nX-Injected: yes"))
        #expect(decoded.contains("Owner:        Security team (sec)"))
        #expect(decoded.contains("SLA deadline: 2026-12-01T13:00:00Z"))
        for line in body.components(separatedBy: "\r\n") { #expect(line.utf8.count <= 76) }

        // Non-ASCII in a header becomes encoded words, decoding back to the text.
        let intl = NotifierSamples.alert(summary: "Zugriff verweigert für Jürgen aus München — \(String(repeating: "ü", count: 40))")
        let (ih, _, _) = parseMessage(String(decoding: NotificationPayload.email(intl, from: "custos@example.com", to: "a@example.com",
                                                                                  date: date, messageID: "<x@example.com>"), as: UTF8.self))
        let subject = try #require(Dictionary(ih, uniquingKeysWith: { a, _ in a })["subject"])
        #expect(subject.unicodeScalars.allSatisfy { $0.isASCII })
        #expect(decodeEncodedWords(subject) == NotificationPayload.emailSubject(intl))
    }

    @Test func backoffDoublesFromHalfASecondUpToTheCap() {
        let r = RetryPolicy()
        #expect(r.attempts == 4 && r.timeout == .seconds(10))
        #expect(r.delay(beforeAttempt: 2) == .milliseconds(500))
        #expect(r.delay(beforeAttempt: 3) == .seconds(1))
        #expect(r.delay(beforeAttempt: 4) == .seconds(2))
        #expect(r.delay(beforeAttempt: 20) == .seconds(30))
        #expect(RetryPolicy(maxDelay: .milliseconds(700)).delay(beforeAttempt: 3) == .milliseconds(700))
    }

    @Test func targetsAreNamedWithoutPathsOrKeys() throws {
        let slack = DeliveryTarget(.slack(url: "https://hooks.slack.com/services/T000/B000/XXXXSECRET"), smtp: nil)
        #expect(slack.description == "slack https://hooks.slack.com:443")
        let pd = DeliveryTarget(.pagerduty(routingKey: "R0UTINGKEY", url: "https://events.pagerduty.com/v2/enqueue"), smtp: nil)
        #expect(pd.description == "pagerduty https://events.pagerduty.com:443")
        let hook = DeliveryTarget(.webhook(url: "http://user:pw@127.0.0.1:8080/hook/abc?token=t", secretEnv: "K"), smtp: nil)
        #expect(hook.description == "webhook http://127.0.0.1:8080")
        let mail = DeliveryTarget(.email(to: "a@example.com"), smtp: nil)
        #expect(mail.kind == "email")

        let notice = DeliveryFailureNotice(alertID: "a1", alertClass: .break_glass, severity: .critical, ownerKey: "sec",
                                           ownerName: "Security", alertSummary: "s", target: slack, attempts: 4,
                                           error: "HTTP 503", time: NotifierSamples.raisedAt)
        for body in [NotificationPayload.webhookBody(notice), NotificationPayload.slack(notice),
                     NotificationPayload.alertmanager(notice), NotificationPayload.pagerDuty(notice, routingKey: "other"),
                     NotificationPayload.email(notice, from: "c@example.com", to: "d@example.com", date: Date(), messageID: "<m@x>")] {
            let text = String(decoding: body, as: UTF8.self)
            #expect(!text.contains("XXXXSECRET") && !text.contains("/services/"))
            #expect(text.contains("a1") && text.contains("break_glass") && text.contains("sec"))
        }
    }

    static func unhex(_ s: String) -> [UInt8]? {
        let b = Array(s.utf8)
        guard b.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        for i in stride(from: 0, to: b.count, by: 2) {
            guard let v = UInt8(String(decoding: b[i..<i + 2], as: UTF8.self), radix: 16) else { return nil }
            out.append(v)
        }
        return out
    }
}
