/// Custos events as OCSF records (Open Cybersecurity Schema Framework), pinned to the released
/// schema version `OCSF.version` with its released 1.x attribute names (`class_uid`,
/// `category_uid`, `type_uid`, ...; not the development layout of the schema repository's HEAD).
///
/// - Logins (`action: login`) are **Authentication** (class_uid 3002, category IAM 3),
///   activity Logon (1): type_uid 300201. The identity is the `user` being authenticated.
/// - Everything else is **API Activity** (class_uid 6003, category Application 6): the
///   activity is Create (1), Read (2), Update (3), Delete (4) or Other (99) after the action,
///   type_uid = 600300 + activity_id, and the identity is `actor.user`.
///
/// The record is built from the event's fields only: there is no field that could hold a
/// secret's value, and no raw source text. README "Out to SIEMs" has the full mapping table.
public enum OCSF {
    /// The OCSF schema version every record names in `metadata.version`.
    public static let version = "1.3.0"
    public static let productName = "Custos"
    public static let vendorName = "Custos"

    public static let apiActivityClass = 6003
    public static let authenticationClass = 3002

    /// The OCSF class an event maps to.
    public static func classUID(_ e: AccessEvent) -> Int { e.action == .login ? authenticationClass : apiActivityClass }

    /// API Activity's activity for an action: (activity_id, activity_name).
    public static func apiActivity(_ a: Action) -> (Int, String) {
        switch a.rawValue {
        case "create", "token_create": return (1, "Create")
        case "read", "list": return (2, "Read")
        case "write", "update", "policy_change", "auth_change", "audit_change": return (3, "Update")
        case "delete", "token_revoke": return (4, "Delete")
        default: return (99, "Other")
        }
    }

    /// user.type_id of OCSF 1.3.0 (0 Unknown, 1 User, 2 Admin, 3 System, 99 Other; 1.3.0 has
    /// no Service type): humans are User, root is Admin, services, API keys and pipelines
    /// are Other with `type` naming the kind.
    public static func userType(_ k: IdentityKind) -> (Int, String) {
        switch k {
        case .human: return (1, "User")
        case .root: return (2, "Admin")
        case .service: return (99, "Service")
        case .api_key: return (99, "API Key")
        case .pipeline: return (99, "Pipeline")
        case .unknown: return (0, "Unknown")
        }
    }

    /// (severity_id, severity): a leaked secret is High, a denied request Low, the rest Informational.
    public static func severity(_ e: AccessEvent) -> (Int, String) {
        if e.action == .leak { return (4, "High") }
        if e.outcome == .denied { return (2, "Low") }
        return (1, "Informational")
    }

    /// (status_id, status): success is Success (1); denied and error are Failure (2).
    public static func status(_ o: Outcome) -> (Int, String) { o == .success ? (1, "Success") : (2, "Failure") }

    /// Authentication's auth_protocol_id for an auth method (0 Unknown when none is known;
    /// 99 Other, with `auth_protocol` naming it, for methods OCSF 1.3.0 has no value for).
    public static func authProtocol(_ method: String?) -> (Int, String) {
        guard let m = method else { return (0, "Unknown") }
        switch m.lowercased() {
        case "oidc": return (4, "OpenID")
        case "saml": return (5, "SAML")
        case "kerberos": return (2, "Kerberos")
        case "radius": return (10, "RADIUS")
        default: return (99, m)
        }
    }

    /// Who, as a short text: the identity's name, else its id, else `unauthenticated`.
    static func who(_ e: AccessEvent) -> String { e.identity.name ?? e.identity.id ?? "unauthenticated" }

    /// A one-line summary (`message`; also the syslog MSG and CEF `msg`).
    public static func summary(_ e: AccessEvent) -> String {
        var s = "\(e.identity.kind.rawValue) \(who(e)) \(e.action.rawValue)"
        if let p = e.secret?.path { s += " " + p }
        s += ": " + e.outcome.rawValue
        if let r = e.reason { s += " (" + r + ")" }
        return s
    }

    /// One OCSF record (a JSON object, no newline). `index`, the event's trail index when
    /// known, becomes `metadata.sequence`.
    public static func record(_ e: AccessEvent, index: UInt64? = nil) -> [UInt8] {
        var w = CanonicalWriter(capacity: 1024)
        encode(e, index: index, into: &w)
        return w.bytes
    }

    /// NDJSON: one record per line, each line ending in a newline.
    public static func ndjson(_ events: [(index: UInt64?, event: AccessEvent)]) -> [UInt8] {
        var w = CanonicalWriter(capacity: 1024 * events.count)
        for (i, e) in events {
            encode(e, index: i, into: &w)
            w.bytes.append(0x0A)
        }
        return w.bytes
    }

    public static func encode(_ e: AccessEvent, index: UInt64?, into w: inout CanonicalWriter) {
        let login = e.action == .login
        let (sevID, sev) = severity(e)
        let (stID, st) = status(e.outcome)
        let classUID = login ? authenticationClass : apiActivityClass
        let (actID, actName) = login ? (1, "Logon") : apiActivity(e.action)
        let className = login ? "Authentication" : "API Activity"
        w.beginObject()
        w.field("activity_id", actID)
        w.field("activity_name", actName)
        if !login {
            w.key("actor"); w.beginObject()
            w.key("user"); user(e.identity, into: &w)
            w.endObject()
            w.key("api"); w.beginObject()
            w.field("operation", e.action.rawValue)
            if let r = e.requestID { w.key("request"); w.beginObject(); w.field("uid", r); w.endObject() }
            if e.outcome != .success {
                w.key("response"); w.beginObject()
                w.field("error", e.outcome.rawValue)
                w.field("error_message", e.reason)
                w.endObject()
            }
            w.key("service"); w.beginObject(); w.field("name", e.source.kind); w.field("uid", e.source.instance); w.endObject()
            w.endObject()
        } else {
            let (apID, ap) = authProtocol(e.identity.method)
            w.field("auth_protocol", ap)
            w.field("auth_protocol_id", apID)
        }
        w.field("category_name", login ? "Identity & Access Management" : "Application Activity")
        w.field("category_uid", login ? 3 : 6)
        w.field("class_name", className)
        w.field("class_uid", classUID)
        w.field("message", summary(e))
        w.key("metadata"); w.beginObject()
        w.field("log_name", AccessEvent.schema)
        w.field("log_provider", e.source.kind)
        w.field("original_time", e.time.description)
        w.key("product"); w.beginObject(); w.field("name", productName); w.field("vendor_name", vendorName); w.endObject()
        if let index { w.key("sequence"); w.int(Int(clamping: index)) }
        w.field("uid", e.id)
        w.field("version", version)
        w.endObject()
        if !login, let s = e.secret {
            w.key("resources"); w.beginArray(); w.comma(); w.beginObject()
            if let store = s.store { w.key("group"); w.beginObject(); w.field("name", store); w.endObject() }
            if let env = s.environment { w.field("labels", ["environment:" + env]) }
            w.field("name", s.path)
            w.field("namespace", s.namespace)
            w.field("type", "secret")
            w.field("uid", s.path)
            w.endObject(); w.endArray()
        }
        if login {
            w.key("service"); w.beginObject(); w.field("name", e.source.kind); w.field("uid", e.source.instance); w.endObject()
        }
        w.field("severity", sev)
        w.field("severity_id", sevID)
        if let o = e.origin {
            w.key("src_endpoint"); w.beginObject(); w.field("ip", o.ip); w.field("port", o.port); w.endObject()
        } else if let ip = e.pipeline?.runnerIP {
            w.key("src_endpoint"); w.beginObject(); w.field("ip", ip); w.endObject()
        } else if !login {
            // API Activity requires a source endpoint; the source did not log one.
            w.key("src_endpoint"); w.beginObject(); w.field("name", "unknown"); w.endObject()
        }
        w.field("status", st)
        w.field("status_code", e.outcome.rawValue)
        w.field("status_detail", e.reason)
        w.field("status_id", stID)
        w.key("time"); w.int(Int(e.time.unixNanos / 1_000_000))
        w.field("type_name", "\(className): \(actName)")
        w.field("type_uid", classUID * 100 + actID)
        unmapped(e, into: &w)
        if login { w.key("user"); user(e.identity, into: &w) }
        w.endObject()
    }

    static func user(_ i: AccessEvent.Identity, into w: inout CanonicalWriter) {
        let (tID, t) = userType(i.kind)
        w.beginObject()
        // OCSF's user needs at least one of account, name, uid.
        w.field("name", i.name ?? (i.id == nil ? "unauthenticated" : nil))
        w.field("type", t)
        w.field("type_id", tID)
        w.field("uid", i.id)
        w.endObject()
    }

    /// Custos's own fields OCSF has no attribute for (or that a SIEM rule wants verbatim).
    static func unmapped(_ e: AccessEvent, into w: inout CanonicalWriter) {
        w.key("unmapped"); w.beginObject()
        w.field("action", e.action.rawValue)
        w.key("identity"); w.beginObject()
        w.field("kind", e.identity.kind.rawValue)
        w.field("method", e.identity.method)
        w.field("policies", e.identity.policies)
        w.endObject()
        w.field("outcome", e.outcome.rawValue)
        if let p = e.pipeline { w.key("pipeline"); p.encode(into: &w) }
        w.field("schema", AccessEvent.schema)
        if let s = e.secret { w.key("secret"); s.encode(into: &w) }
        w.key("source"); w.beginObject(); w.field("instance", e.source.instance); w.field("kind", e.source.kind); w.endObject()
        w.endObject()
    }
}
