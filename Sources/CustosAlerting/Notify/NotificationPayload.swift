import Crypto
import CustosCore
import Foundation

/// The bodies Custos sends, built from an alert (or a delivery-failure notice) by pure
/// functions: no clock, no environment, no network. `AlertNotifier` sends them.
///
/// None carries a secret's value (alerts have none). The webhook, Slack, PagerDuty and
/// Alertmanager bodies are UTF-8 JSON; the email is an RFC 5322 message.
public enum NotificationPayload {
    public struct Header: Sendable, Equatable {
        public var name: String
        public var value: String
        public init(_ name: String, _ value: String) { self.name = name; self.value = value }
    }

    // MARK: - Generic webhook

    public static let signatureHeader = "X-Custos-Signature"
    public static let alertIDHeader = "X-Custos-Alert-Id"
    /// `alert` or `delivery_failure`.
    public static let kindHeader = "X-Custos-Kind"

    /// The alert's canonical JSON (`custos.alert/v1`, as the trail keeps it).
    public static func webhookBody(_ alert: Alert) -> [UInt8] { alert.canonicalJSON() }

    /// `sha256=<lowercase hex HMAC-SHA256(key, body)>`: the receiver recomputes it over the
    /// raw body bytes with the shared key and compares in constant time.
    public static func signature(body: [UInt8], key: [UInt8]) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: key))
        return "sha256=" + Hex.encode(Array(mac))
    }

    /// Content type, alert id, kind, and the signature when a key is given.
    public static func webhookHeaders(alertID: String, body: [UInt8], signingKey: [UInt8]?,
                                      kind: String = "alert") -> [Header] {
        var h = [Header("Content-Type", "application/json"), Header(alertIDHeader, alertID), Header(kindHeader, kind)]
        if let signingKey { h.append(Header(signatureHeader, signature(body: body, key: signingKey))) }
        return h
    }

    /// `custos.delivery_failure/v1`: keys in ascending byte order, like the alert's.
    public static func webhookBody(_ n: DeliveryFailureNotice) -> [UInt8] {
        JSONText.object([
            ("alert_id", .string(n.alertID)),
            ("alert_summary", .string(n.alertSummary)),
            ("attempts", .int(n.attempts)),
            ("class", .string(n.alertClass.rawValue)),
            ("error", .string(n.error)),
            ("owner", .object([("key", .string(n.ownerKey)), ("name", n.ownerName.map { .string($0) })])),
            ("schema", .string(DeliveryFailureNotice.schema)),
            ("severity", .string(n.severity.rawValue)),
            ("summary", .string(n.summary)),
            ("target", .object([("endpoint", .string(n.target.endpoint)), ("kind", .string(n.target.kind))])),
            ("time", .string(n.time.description)),
        ]).bytes
    }

    // MARK: - Slack incoming webhook

    /// `{"text": ...}`: one paragraph, Slack's `&`, `<`, `>` escaped.
    public static func slack(_ alert: Alert) -> [UInt8] {
        JSONText.object([("text", .string(slackEscape(slackText(alert))))]).bytes
    }

    /// The paragraph: severity, class, summary, owner and SLA deadline, secret, identity,
    /// origin, playbook, alert id.
    public static func slackText(_ alert: Alert) -> String {
        var s = "[Custos] \(alert.severity.rawValue.uppercased()) \(alert.alertClass.rawValue): \(oneLine(alert.summary))"
        if !s.hasSuffix(".") { s += "." }
        s += " Owner: \(ownerText(alert))"
        if let d = alert.slaDeadline { s += ", respond by \(d) (SLA)" }
        s += "."
        if let secret = alert.secret { s += " Secret: \(secretText(secret))." }
        s += " Identity: \(identityText(alert.identity))."
        if let o = alert.origin { s += " Origin: \(originText(o))." }
        s += " Action: \(alert.action.rawValue), \(alert.outcome.rawValue)"
        if alert.count > 1 { s += ", \(alert.count) times" }
        s += "."
        if let p = alert.playbook { s += " Playbook: \(oneLine(p))." }
        s += " Alert \(alert.id)."
        return s
    }

    public static func slack(_ n: DeliveryFailureNotice) -> [UInt8] {
        JSONText.object([("text", .string(slackEscape("[Custos] DELIVERY FAILURE: " + n.summary + ".")))]).bytes
    }

    static func slackEscape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }

    // MARK: - PagerDuty Events API v2

    /// critical→critical, high→error, medium→warning, low→info.
    public static func pagerDutySeverity(_ s: Severity) -> String {
        switch s {
        case .critical: return "critical"
        case .high: return "error"
        case .medium: return "warning"
        case .low: return "info"
        }
    }

    public static let pagerDutySummaryLimit = 1024

    /// An Events v2 `trigger` whose `dedup_key` is the alert's, so repeats of the same
    /// alert update one PagerDuty incident. `timestamp` is when Custos raised it;
    /// `component` the secret path (else the identity), `group` its environment.
    public static func pagerDuty(_ alert: Alert, routingKey: String) -> [UInt8] {
        let summary = truncate("[\(alert.alertClass.rawValue)] \(oneLine(alert.summary))", pagerDutySummaryLimit)
        var details: [(String, JSONText?)] = [
            ("alert_id", .string(alert.id)),
            ("class", .string(alert.alertClass.rawValue)),
            ("severity", .string(alert.severity.rawValue)),
            ("owner", alert.owner.map { .string(ownerText(alert, $0)) }),
            ("sla_deadline", alert.slaDeadline.map { .string($0.description) }),
            ("playbook", alert.playbook.map { .string($0) }),
            ("secret", alert.secret.map { .string($0.path) }),
            ("environment", alert.secret?.environment.map { .string($0) }),
            ("identity", .string(identityText(alert.identity))),
            ("identity_id", alert.identity.id.map { .string($0) }),
            ("action", .string(alert.action.rawValue)),
            ("outcome", .string(alert.outcome.rawValue)),
            ("origin", alert.origin.map { .string(originText($0)) }),
            ("count", .int(alert.count)),
            ("first_time", .string(alert.time.description)),
            ("last_time", .string(alert.lastTime.description)),
            ("raised_at", .string(alert.raisedAt.description)),
            ("evidence", .array(alert.evidence.map { .int(Int($0)) })),
        ]
        for k in alert.details.keys.sorted() { details.append(("detail_\(k)", .string(alert.details[k]!))) }
        return JSONText.object([
            ("routing_key", .string(routingKey)),
            ("event_action", .string("trigger")),
            ("dedup_key", .string(alert.dedupKey)),
            ("client", .string("Custos")),
            ("payload", .object([
                ("summary", .string(summary)),
                ("source", .string("custos")),
                ("severity", .string(pagerDutySeverity(alert.severity))),
                ("timestamp", .string(alert.raisedAt.description)),
                ("component", .string(alert.secret?.path ?? identityText(alert.identity))),
                ("group", alert.secret?.environment.map { .string($0) }),
                ("class", .string(alert.alertClass.rawValue)),
                ("custom_details", .object(details)),
            ])),
        ]).bytes
    }

    public static func pagerDuty(_ n: DeliveryFailureNotice, routingKey: String) -> [UInt8] {
        JSONText.object([
            ("routing_key", .string(routingKey)),
            ("event_action", .string("trigger")),
            ("dedup_key", .string(n.dedupKey)),
            ("client", .string("Custos")),
            ("payload", .object([
                ("summary", .string(truncate(n.summary, pagerDutySummaryLimit))),
                ("source", .string("custos")),
                ("severity", .string("error")),
                ("timestamp", .string(n.time.description)),
                ("component", .string("notifier/\(n.target.kind)")),
                ("class", .string("delivery_failure")),
                ("custom_details", .object([
                    ("alert_id", .string(n.alertID)), ("class", .string(n.alertClass.rawValue)),
                    ("owner", .string(n.ownerKey)), ("target", .string(n.target.description)),
                    ("attempts", .int(n.attempts)), ("error", .string(n.error)),
                ])),
            ])),
        ]).bytes
    }

    // MARK: - Prometheus Alertmanager (API v2)

    /// Where to POST: the configured URL with `/api/v2/alerts` appended to its path (unless
    /// it already ends so), so both `http://am:9093` and `http://gw/alertmanager` work.
    public static func alertmanagerEndpoint(_ url: String) -> String {
        guard var c = URLComponents(string: url) else { return url }
        var path = c.path
        if path.hasSuffix("/api/v2/alerts") { return url }
        while path.hasSuffix("/") { path.removeLast() }
        c.path = path + "/api/v2/alerts"
        return c.string ?? url
    }

    /// The labels identify the alert in Alertmanager (its fingerprint) and drive routing:
    /// `alertname` = `custos_<class>`, `class`, `severity`, `owner` (key), `secret` (path),
    /// `environment`, `namespace`, `identity` (name, else id), `identity_kind`, `source` =
    /// `custos`, `dedup_key`. Empty values are left out (Alertmanager treats them as absent).
    /// The alert carries no source instance, so there is no `instance` label.
    public static func alertmanagerLabels(_ alert: Alert) -> [(String, String)] {
        var l: [(String, String?)] = [
            ("alertname", "custos_\(alert.alertClass.rawValue)"),
            ("class", alert.alertClass.rawValue),
            ("severity", alert.severity.rawValue),
            ("owner", alert.owner?.key),
            ("secret", alert.secret?.path),
            ("environment", alert.secret?.environment),
            ("namespace", alert.secret?.namespace),
            ("identity", alert.identity.name ?? alert.identity.id),
            ("identity_kind", alert.identity.kind.rawValue),
            ("source", "custos"),
            ("dedup_key", alert.dedupKey),
        ]
        l = l.filter { !($0.1 ?? "").isEmpty }
        return l.map { ($0.0, $0.1!) }
    }

    /// A one-element array of postable alerts. `startsAt` is the time of the first event
    /// the alert is about (or when Custos raised it, if that is earlier: a source clock
    /// running ahead must not put `startsAt` in Alertmanager's future, which it refuses).
    /// `endsAt` is omitted on purpose: Alertmanager then keeps the alert firing for its
    /// `resolve_timeout` (default 5 m) after receipt and resolves it itself, since Custos
    /// sends an alert once and never sends a "resolved".
    public static func alertmanager(_ alert: Alert) -> [UInt8] {
        var annotations: [(String, JSONText?)] = [
            ("summary", .string(oneLine(alert.summary))),
            ("description", .string(slackText(alert))),
            ("alert_id", .string(alert.id)),
            ("owner_name", alert.owner.map { .string($0.name) }),
            ("playbook", alert.playbook.map { .string($0) }),
            ("sla_deadline", alert.slaDeadline.map { .string($0.description) }),
            ("raised_at", .string(alert.raisedAt.description)),
            ("origin", alert.origin.map { .string(originText($0)) }),
            ("count", .string(String(alert.count))),
        ]
        annotations = annotations.filter { $0.1 != nil }
        return JSONText.array([.object([
            ("labels", .object(alertmanagerLabels(alert).map { ($0.0, .string($0.1)) })),
            ("annotations", .object(annotations)),
            ("startsAt", .string(min(alert.time, alert.raisedAt).description)),
        ])]).bytes
    }

    public static func alertmanager(_ n: DeliveryFailureNotice) -> [UInt8] {
        JSONText.array([.object([
            ("labels", .object([
                ("alertname", .string("custos_delivery_failure")),
                ("class", .string(n.alertClass.rawValue)),
                ("severity", .string(n.severity.rawValue)),
                ("owner", .string(n.ownerKey)),
                ("target_kind", .string(n.target.kind)),
                ("target", .string(n.target.endpoint)),
                ("alert_id", .string(n.alertID)),
                ("source", .string("custos")),
            ])),
            ("annotations", .object([
                ("summary", .string(n.summary)),
                ("alert_id", .string(n.alertID)),
                ("error", .string(n.error)),
            ])),
            ("startsAt", .string(n.time.description)),
        ])]).bytes
    }

    // MARK: - Email (RFC 5322)

    /// `[Custos] <severity> <class>: <summary, at most 120 characters>`.
    public static func emailSubject(_ alert: Alert) -> String {
        "[Custos] \(alert.severity.rawValue) \(alert.alertClass.rawValue): \(truncate(oneLine(alert.summary), 120))"
    }

    /// A complete message with CRLF line ends: From, To, Subject, Date, Message-ID,
    /// MIME-Version, a UTF-8 text/plain body in quoted-printable (7-bit safe for any
    /// relay). Every header value has CR, LF and other control characters removed, so no
    /// field of an alert can add a header; non-ASCII values are RFC 2047 encoded words.
    public static func email(_ alert: Alert, from: String, to: String, date: Date, messageID: String) -> [UInt8] {
        message(from: from, to: to, subject: emailSubject(alert), date: date, messageID: messageID,
                extra: [Header("X-Custos-Alert-Id", alert.id)], body: emailText(alert))
    }

    public static func email(_ n: DeliveryFailureNotice, from: String, to: String, date: Date, messageID: String) -> [UInt8] {
        let subject = "[Custos] delivery failure: \(n.alertClass.rawValue) alert \(n.alertID) to \(n.ownerKey) via \(n.target.kind)"
        var body = n.summary + ".\n\n"
        body += "Alert id:   \(n.alertID)\nClass:      \(n.alertClass.rawValue)\nSeverity:   \(n.severity.rawValue)\n"
        body += "Owner:      \(n.ownerName.map { "\($0) (\(n.ownerKey))" } ?? n.ownerKey)\n"
        body += "Target:     \(n.target)\nAttempts:   \(n.attempts)\nError:      \(n.error)\n"
        body += "Summary:    \(oneLine(n.alertSummary))\nGave up at: \(n.time)\n"
        return message(from: from, to: to, subject: subject, date: date, messageID: messageID,
                       extra: [Header("X-Custos-Alert-Id", n.alertID), Header("X-Custos-Kind", "delivery_failure")], body: body)
    }

    /// The plain-text body of an alert email.
    public static func emailText(_ alert: Alert) -> String {
        var s = "Custos raised a \(alert.severity.rawValue) \(alert.alertClass.rawValue) alert.\n\n\(alert.summary)\n\n"
        // Labels pad to 14 columns; a longer one (an extra such as baseline_median) keeps its whole name.
        func row(_ k: String, _ v: String?) { if let v { s += (k.count >= 14 ? k + " " : k.padding(toLength: 14, withPad: " ", startingAt: 0)) + v + "\n" } }
        row("Severity:", alert.severity.rawValue)
        row("Class:", alert.alertClass.rawValue)
        row("Owner:", ownerText(alert))
        row("SLA deadline:", alert.slaDeadline?.description)
        row("Playbook:", alert.playbook)
        row("Secret:", alert.secret.map(secretText))
        row("Identity:", identityText(alert.identity) + (alert.identity.id.map { ", id \($0)" } ?? ""))
        row("Origin:", alert.origin.map(originText))
        row("Action:", "\(alert.action.rawValue), \(alert.outcome.rawValue)")
        row("Count:", String(alert.count))
        row("First event:", alert.time.description)
        row("Last event:", alert.lastTime.description)
        row("Raised at:", alert.raisedAt.description)
        for k in alert.details.keys.sorted() { row("\(k):", alert.details[k]) }
        row("Alert id:", alert.id)
        row("Dedup key:", alert.dedupKey)
        if !alert.evidence.isEmpty { row("Evidence:", "trail entries " + alert.evidence.map(String.init).joined(separator: ", ")) }
        return s
    }

    static func message(from: String, to: String, subject: String, date: Date, messageID: String,
                        extra: [Header], body: String) -> [UInt8] {
        let headers = [
            Header("From", from), Header("To", to), Header("Subject", subject), Header("Date", rfc5322Date(date)),
            Header("Message-ID", messageID), Header("MIME-Version", "1.0"),
            Header("Content-Type", "text/plain; charset=UTF-8"), Header("Content-Transfer-Encoding", "quoted-printable"),
            Header("Auto-Submitted", "auto-generated"),
        ] + extra
        var out = ""
        for h in headers { out += "\(h.name): \(headerValue(h.value))\r\n" }
        out += "\r\n"
        out += quotedPrintable(body)
        if !out.hasSuffix("\r\n") { out += "\r\n" }
        return Array(out.utf8)
    }

    /// A header value that cannot start another header: CR, LF and other controls become
    /// spaces (runs collapsed); non-ASCII text becomes RFC 2047 `=?UTF-8?B?...?=` words.
    public static func headerValue(_ s: String) -> String {
        var clean = ""
        var lastSpace = false
        for u in s.unicodeScalars {
            let control = u.value < 0x20 || u.value == 0x7F || (0x80..<0xA0).contains(u.value)
                || u == "\u{2028}" || u == "\u{2029}" || u == "\u{85}"
            if control || u == " " {
                if !lastSpace { clean.unicodeScalars.append(" ") }
                lastSpace = true
            } else {
                clean.unicodeScalars.append(u)
                lastSpace = false
            }
        }
        clean = clean.trimmingCharacters(in: .whitespaces)
        guard clean.unicodeScalars.contains(where: { !$0.isASCII }) else { return clean }
        // Encoded words of at most 75 characters, never splitting a character.
        var words: [String] = []
        var chunk: [UInt8] = []
        for ch in clean {
            let bytes = Array(String(ch).utf8)
            if (chunk.count + bytes.count + 2) / 3 * 4 > 75 - 12 {
                words.append("=?UTF-8?B?" + Data(chunk).base64EncodedString() + "?=")
                chunk = []
            }
            chunk += bytes
        }
        if !chunk.isEmpty { words.append("=?UTF-8?B?" + Data(chunk).base64EncodedString() + "?=") }
        return words.joined(separator: "\r\n ")
    }

    /// Quoted-printable (RFC 2045 §6.7) with CRLF line ends and lines of at most 76 characters.
    static func quotedPrintable(_ text: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        let normalized = text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
        let lines = normalized.split(separator: "\n", omittingEmptySubsequences: false)
        for (i, line) in lines.enumerated() {
            let bytes = Array(line.utf8)
            var width = 0
            for (j, b) in bytes.enumerated() {
                let last = j == bytes.count - 1
                let literal = (b >= 33 && b <= 126 && b != UInt8(ascii: "=")) || ((b == 0x20 || b == 0x09) && !last)
                let token: [UInt8] = literal ? [b] : [UInt8(ascii: "="), hex[Int(b >> 4)], hex[Int(b & 15)]]
                if width + token.count > 75 {
                    out += [UInt8(ascii: "="), 0x0D, 0x0A]
                    width = 0
                }
                out += token
                width += token.count
            }
            if i < lines.count - 1 { out += [0x0D, 0x0A] }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `Sat, 28 Nov 2026 01:43:13 +0000` (RFC 5322 §3.3, always UTC).
    public static func rfc5322Date(_ date: Date) -> String {
        let t = Int64(date.timeIntervalSince1970.rounded(.down))
        let days = t >= 0 ? t / 86_400 : -((-t + 86_399) / 86_400)
        let secs = t - days * 86_400
        // Civil from days (H. Hinnant).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        let weekday = Int(((days + 4) % 7 + 7) % 7)   // 1970-01-01 was a Thursday
        let wd = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"][weekday]
        let mon = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"][Int(m) - 1]
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(wd), \(two(d)) \(mon) \(y) \(two(secs / 3600)):\(two(secs / 60 % 60)):\(two(secs % 60)) +0000"
    }

    // MARK: - Text pieces

    static func ownerText(_ alert: Alert, _ owner: Alert.OwnerRef? = nil) -> String {
        guard let o = owner ?? alert.owner else { return "(no owner)" }
        return o.name == o.key || o.name.isEmpty ? o.key : "\(o.name) (\(o.key))"
    }

    static func secretText(_ s: AccessEvent.Secret) -> String {
        var t = s.path
        var extra: [String] = []
        if let e = s.environment { extra.append(e) }
        if let n = s.namespace { extra.append("namespace \(n)") }
        if !extra.isEmpty { t += " (\(extra.joined(separator: ", ")))" }
        return t
    }

    static func identityText(_ i: Alert.IdentityRef) -> String {
        "\(i.name ?? i.id ?? "unknown") (\(i.kind.rawValue))"
    }

    static func originText(_ o: Alert.OriginRef) -> String {
        let place = [o.city, o.country].compactMap { $0 }
        var t = o.ip
        if !place.isEmpty { t += " (\(place.joined(separator: ", "))\(o.countryOutside == true ? ", outside the allowed countries" : ""))" }
        return t
    }

    /// Newlines and other controls as single spaces.
    static func oneLine(_ s: String) -> String {
        var out = ""
        var lastSpace = false
        for u in s.unicodeScalars {
            if u.value < 0x20 || u.value == 0x7F || u == " " || u == "\u{2028}" || u == "\u{2029}" || u == "\u{85}" {
                if !lastSpace { out.unicodeScalars.append(" ") }
                lastSpace = true
            } else {
                out.unicodeScalars.append(u)
                lastSpace = false
            }
        }
        return out.trimmingCharacters(in: .whitespaces)
    }

    /// At most `limit` Unicode scalars (cut between characters, `…` marking the cut).
    static func truncate(_ s: String, _ limit: Int) -> String {
        if s.unicodeScalars.count <= limit { return s }
        var out = ""
        var used = 0
        for ch in s {
            let n = ch.unicodeScalars.count
            if used + n > limit - 1 { break }
            out.append(ch)
            used += n
        }
        return out + "…"
    }
}
