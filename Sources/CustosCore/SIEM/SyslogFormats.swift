/// Custos events as syslog messages for SIEMs that take only syslog: RFC 5424 with the
/// event's fields as structured data, or ArcSight CEF (Common Event Format) in an RFC 5424
/// envelope. Framing for TCP is RFC 6587 octet counting (`LEN SP MSG`); over UDP each
/// message is one datagram (RFC 5426).
public enum SyslogOut {
    /// The SD-ID of Custos's structured data element. 32473 is the private enterprise number
    /// RFC 5612 reserves for documentation and examples: Custos has no number of its own.
    public static let sdID = "custos@32473"
    /// Facility authpriv (10): security/authorization messages.
    public static let defaultFacility = 10

    /// Syslog severity for an event: a leak is critical (2), a denial a warning (4), an error
    /// an error (3), a success informational (6).
    public static func severity(_ e: AccessEvent) -> Int {
        if e.action == .leak { return 2 }
        switch e.outcome {
        case .success: return 6
        case .denied: return 4
        case .error: return 3
        }
    }

    /// RFC 5424 TIMESTAMP: the event time with at most 6 fraction digits (TIME-SECFRAC).
    public static func timestamp(_ t: EventTime) -> String {
        let s = t.description
        guard let dot = s.firstIndex(of: "."), s.hasSuffix("Z") else { return s }
        let frac = s[s.index(after: dot)..<s.index(before: s.endIndex)]
        return String(s[..<dot]) + "." + String(frac.prefix(6)) + "Z"
    }

    /// A header field (HOSTNAME, APP-NAME, MSGID): printable US-ASCII without spaces, at most
    /// `max` characters; anything else becomes `_`; empty becomes the NILVALUE `-`.
    public static func headerField(_ s: String, max: Int) -> String {
        var out = ""
        for u in s.unicodeScalars.prefix(max) { out.unicodeScalars.append(u.value > 32 && u.value < 127 ? u : "_") }
        return out.isEmpty ? "-" : out
    }

    /// PARAM-VALUE escaping (RFC 5424 section 6.3.3): `"`, `\` and `]` get a backslash.
    public static func escapeParamValue(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s.unicodeScalars {
            if c == "\"" || c == "\\" || c == "]" { out.unicodeScalars.append("\\") }
            out.unicodeScalars.append(c)
        }
        return out
    }

    /// The structured-data parameters of an event, in a fixed order; absent fields are left out.
    public static func parameters(_ e: AccessEvent) -> [(String, String)] {
        var p: [(String, String)] = [("id", e.id), ("action", e.action.rawValue), ("outcome", e.outcome.rawValue)]
        func add(_ k: String, _ v: String?) { if let v { p.append((k, v)) } }
        add("reason", e.reason)
        add("secret", e.secret?.path)
        add("store", e.secret?.store)
        add("environment", e.secret?.environment)
        add("namespace", e.secret?.namespace)
        add("identity", e.identity.name)
        add("identity_id", e.identity.id)
        add("kind", e.identity.kind.rawValue)
        add("method", e.identity.method)
        if !e.identity.policies.isEmpty { add("policies", e.identity.policies.joined(separator: ",")) }
        add("ip", e.origin?.ip)
        add("port", e.origin?.port.map(String.init))
        add("request_id", e.requestID)
        add("source", e.source.kind)
        add("instance", e.source.instance)
        if let pl = e.pipeline {
            add("pipeline_provider", pl.provider)
            add("pipeline_repository", pl.repository)
            add("pipeline_name", pl.name)
            add("pipeline_run_id", pl.runID)
            add("pipeline_attempt", pl.attempt.map(String.init))
            add("pipeline_job", pl.job)
            add("pipeline_environment", pl.environment)
            add("pipeline_trigger", pl.trigger?.rawValue)
            add("pipeline_runner_ip", pl.runnerIP)
        }
        return p
    }

    static func header(_ e: AccessEvent, hostname: String, facility: Int, severity sev: Int, msgID: String) -> String {
        "<\(facility * 8 + sev)>1 \(timestamp(e.time)) \(headerField(hostname, max: 255)) custos - \(headerField(msgID, max: 32))"
    }

    /// One RFC 5424 message (no framing): header, `[custos@32473 k="v" ...]`, then the summary.
    public static func rfc5424(_ e: AccessEvent, hostname: String, facility: Int = defaultFacility) -> String {
        var s = header(e, hostname: hostname, facility: facility, severity: severity(e), msgID: e.action.rawValue)
        s += " [" + sdID
        for (k, v) in parameters(e) { s += " \(k)=\"\(escapeParamValue(v))\"" }
        s += "] " + OCSF.summary(e)
        return s
    }

    // MARK: CEF

    /// CEF header field escaping: `\` and `|` get a backslash; a line break becomes a space
    /// (the header cannot hold one).
    public static func cefHeader(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "|": out += "\\|"
            case "\r", "\n": out += " "
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// CEF extension value escaping: `\` and `=` get a backslash; CR and LF become `\r` and `\n`.
    public static func cefValue(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "=": out += "\\="
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// CEF severity 0...10: leak 9, denied 6, error 5, success 3.
    public static func cefSeverity(_ e: AccessEvent) -> Int {
        if e.action == .leak { return 9 }
        switch e.outcome {
        case .success: return 3
        case .denied: return 6
        case .error: return 5
        }
    }

    /// The CEF extension's key-value pairs, in a fixed order.
    public static func cefExtension(_ e: AccessEvent) -> [(String, String)] {
        var p: [(String, String)] = [("rt", String(e.time.unixNanos / 1_000_000)), ("act", e.action.rawValue),
                                     ("outcome", e.outcome == .success ? "success" : "failure")]
        func add(_ k: String, _ v: String?) { if let v { p.append((k, v)) } }
        add("reason", e.reason)
        add("suser", e.identity.name)
        add("suid", e.identity.id)
        if let ip = e.origin?.ip {
            if ip.contains(":") { add("c6a2", ip); add("c6a2Label", "sourceIPv6") } else { add("src", ip) }
        }
        add("spt", e.origin?.port.map(String.init))
        add("externalId", e.id)
        add("deviceExternalId", e.source.instance)
        add("cat", e.action == .login ? "authentication" : "secret-access")
        if let s = e.secret { add("cs1Label", "secret"); add("cs1", s.path) }
        if let env = e.secret?.environment { add("cs2Label", "environment"); add("cs2", env) }
        if let store = e.secret?.store { add("cs3Label", "store"); add("cs3", store) }
        add("cs4Label", "identityKind"); add("cs4", e.identity.kind.rawValue)
        if let m = e.identity.method { add("cs5Label", "authMethod"); add("cs5", m) }
        add("cs6Label", "source"); add("cs6", e.source.kind)
        add("requestClientApplication", e.pipeline?.repository)
        add("msg", OCSF.summary(e))
        return p
    }

    /// One CEF record: `CEF:0|Custos|Custos|1|<action>|<name>|<severity>|k=v ...`.
    public static func cef(_ e: AccessEvent) -> String {
        let name = e.action == .login ? "login \(e.outcome.rawValue)" : "secret \(e.action.rawValue) \(e.outcome.rawValue)"
        var s = "CEF:0|\(cefHeader(OCSF.vendorName))|\(cefHeader(OCSF.productName))|1|\(cefHeader(e.action.rawValue))|\(cefHeader(name))|\(cefSeverity(e))|"
        s += cefExtension(e).map { "\($0.0)=\(cefValue($0.1))" }.joined(separator: " ")
        return s
    }

    /// A CEF record in an RFC 5424 envelope (no structured data), as syslog-fed SIEMs take it.
    public static func cefSyslog(_ e: AccessEvent, hostname: String, facility: Int = defaultFacility) -> String {
        header(e, hostname: hostname, facility: facility, severity: severity(e), msgID: e.action.rawValue) + " - " + cef(e)
    }

    /// RFC 6587 octet counting: `LEN SP MSG`, LEN the message's length in bytes.
    public static func octetCounted(_ message: String) -> [UInt8] {
        let m = Array(message.utf8)
        return Array("\(m.count) ".utf8) + m
    }
}
