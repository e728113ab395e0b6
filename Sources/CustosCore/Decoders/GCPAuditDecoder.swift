/// Google Cloud audit log entries (Cloud Logging `LogEntry` with an `AuditLog`
/// `protoPayload`) of Secret Manager into access events. README "AWS CloudTrail and Google
/// Cloud audit logs". Framing: NDJSON, a JSON array (`gcloud logging read --format=json`),
/// pretty-printed entries back to back.
///
/// Methods (`google.cloud.secretmanager.v1[beta…].SecretManagerService.<method>`):
/// `AccessSecretVersion` → `read` (a Data Access log: off unless enabled);
/// `CreateSecret`, `AddSecretVersion`, `UpdateSecret`, `EnableSecretVersion`,
/// `DisableSecretVersion` → `write`; `DeleteSecret`, `DestroySecretVersion` → `delete`;
/// `GetSecret`, `GetSecretVersion`, `ListSecretVersions`, `ListSecrets` → `list`
/// (metadata); `SetIamPolicy` → `policy_change`. Everything else is ignored. `request` and
/// `response` are never copied (only `CreateSecret`'s `request.secretId`, a name, is read).
///
/// Paths (store `gcp/<project>`): `gcp/<project>/<secret>` from `resourceName`
/// `projects/<project>/secrets/<secret>[/versions/<version>]`; a regional secret
/// (`projects/P/locations/L/secrets/S`) `gcp/<project>/<location>/<secret>`; `ListSecrets`
/// the project `gcp/<project>`. The version is not part of the path (a policy is about the
/// secret); `latest`, a number or an alias all read the same secret.
///
/// Outcome: `status.code` 0 or absent (`status: {}`) → success, 7 (PERMISSION_DENIED) or 16
/// (UNAUTHENTICATED) → denied, any other code → error; with no status code, an
/// `authorizationInfo` entry whose `granted` is not `true` (omitted means false) → denied.
public struct GCPAuditDecoder: SourceRecordDecoder {
    public static let kind = "gcp"
    public var sourceKind: String { Self.kind }
    public let instance: String
    let builder: SourceEventBuilder

    public init(instance: String = "default") {
        self.instance = instance
        self.builder = SourceEventBuilder(kind: Self.kind, instance: instance)
    }

    /// A LogEntry with an audit `protoPayload` (`methodName` or `serviceName`).
    public static func recognizes(_ r: JSONNode) -> Bool {
        guard let p = r["protoPayload"], p.isObject else { return false }
        return p["methodName"]?.stringValue != nil || p["serviceName"]?.stringValue != nil
    }

    public func decode(_ r: JSONNode, line: Int, into out: inout [DecodeOutput]) {
        guard let p = r["protoPayload"], p.isObject else {
            out.append(.rejected(.init(line: line, reason: "missing \"protoPayload\" (not a Cloud Audit Logs entry)")))
            return
        }
        guard let method = p["methodName"]?.stringValue, !method.isEmpty, method.utf8.count <= 256 else {
            out.append(.rejected(.init(line: line, reason: "missing or invalid \"protoPayload.methodName\"")))
            return
        }
        let timeValue = r["timestamp"] ?? r["receiveTimestamp"] ?? p[["requestMetadata", "requestAttributes", "time"]]
        guard let time = SourceTime.parse(timeValue) else {
            out.append(.rejected(.init(line: line, reason: timeValue == nil ? "missing \"timestamp\"" : "\"timestamp\" is not a time")))
            return
        }
        let service = p["serviceName"]?.stringValue
        guard service == "secretmanager.googleapis.com" || method.hasPrefix("google.cloud.secretmanager.") else {
            out.append(.ignored(line: line, reason: "Cloud Audit Logs entry of another service"))
            return
        }
        let short = method.split(separator: ".").last.map(String.init) ?? method
        let action: Action
        switch short {
        case "AccessSecretVersion": action = .read
        case "CreateSecret", "AddSecretVersion", "UpdateSecret", "EnableSecretVersion", "DisableSecretVersion": action = .write
        case "DeleteSecret", "DestroySecretVersion": action = .delete
        case "GetSecret", "GetSecretVersion", "ListSecretVersions", "ListSecrets": action = .list
        case "SetIamPolicy": action = .policyChange
        default:
            out.append(.ignored(line: line, reason: "Secret Manager call without secret access"))
            return
        }
        guard let resourceName = p["resourceName"]?.stringValue ?? p[["authorizationInfo"]]?.arrayValue?.first?["resource"]?.stringValue,
              var target = Self.resource(resourceName) else {
            out.append(.rejected(.init(line: line, reason: "missing or invalid \"protoPayload.resourceName\" (projects/<p>/secrets/<s>)")))
            return
        }
        if target.secret == nil, short == "CreateSecret", let id = p[["request", "secretId"]]?.stringValue, Self.isName(id) {
            target.secret = id
        }
        if target.secret == nil && action != .list {
            out.append(.rejected(.init(line: line, reason: "\(short) without a secret in \"resourceName\"")))
            return
        }
        var path = "gcp/\(target.project)"
        if let l = target.location { path += "/\(l)" }
        if let s = target.secret { path += "/\(s)" }
        let (outcome, reason) = Self.outcome(p)
        let insertID = Self.bounded(r["insertId"]?.text)
        let identity = Self.identity(p)
        let idKey = insertID.map { ["insert", $0, r["logName"]?.stringValue.flatMap { Self.bounded($0) } ?? ""] }
            ?? ["entry", short, path, identity.name ?? "", String(time.unixNanos)]
        let event = AccessEvent(
            id: builder.id(idKey), time: time, source: builder.source, action: action, outcome: outcome, reason: reason,
            secret: .init(store: "gcp/\(target.project)", path: path, environment: target.secret.flatMap { EnvironmentGuess.from(path: $0) }),
            identity: identity, origin: SourceIP.origin(p[["requestMetadata", "callerIp"]]), requestID: insertID)
        builder.emit(event, line: line, into: &out)
    }

    /// `projects/P[/locations/L][/secrets/S[/versions/V]]`, each part a resource id.
    static func resource(_ s: String) -> (project: String, location: String?, secret: String?)? {
        guard s.utf8.count <= 1024 else { return nil }
        var parts = s.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 2, parts[0] == "projects", isName(parts[1]) else { return nil }
        let project = parts[1]
        parts.removeFirst(2)
        var location: String?
        if parts.count >= 2, parts[0] == "locations" {
            guard isName(parts[1]) else { return nil }
            location = parts[1]
            parts.removeFirst(2)
        }
        if parts.isEmpty { return (project, location, nil) }
        guard parts.count >= 2, parts[0] == "secrets", isName(parts[1]) else { return nil }
        let secret = parts[1]
        parts.removeFirst(2)
        if parts.isEmpty || (parts.count == 2 && parts[0] == "versions" && isName(parts[1])) { return (project, location, secret) }
        return nil
    }

    /// A project, location, secret or version id: 1–255 of `[A-Za-z0-9_.-]`.
    static func isName(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.count <= 255 && s != "." && s != ".." && s.utf8.allSatisfy(SourceText.isSlug)
    }

    static func outcome(_ p: JSONNode) -> (Outcome, String?) {
        if let code = p[["status", "code"]]?.intValue, code != 0 {
            switch code {
            case 7, 16: return (.denied, "permission denied")
            case 5: return (.error, "not found")
            case 3, 9, 11: return (.error, "invalid request")
            case 8: return (.error, "throttled")
            default: return (.error, "request failed")
            }
        }
        if let auth = p["authorizationInfo"]?.arrayValue, !auth.isEmpty,
           auth.contains(where: { $0["granted"]?.boolValue != true }) {
            return (.denied, "permission denied")
        }
        return (.success, nil)
    }

    /// `authenticationInfo`: a `…gserviceaccount.com` principal → service; a workload
    /// identity federation subject (`principalSubject` `principal://…/subject/…`) → service,
    /// or pipeline when the subject is a GitHub Actions one (`repo:<owner>/<repo>:…`); any
    /// other email → human; none → unknown.
    static func identity(_ p: JSONNode) -> AccessEvent.Identity {
        let auth = p["authenticationInfo"]
        let email = bounded(auth?["principalEmail"]?.stringValue)
        let subject = bounded(auth?["principalSubject"]?.stringValue)
        if let email {
            let delegated = auth?["serviceAccountDelegationInfo"]?.arrayValue?.isEmpty == false
            if email.hasSuffix("gserviceaccount.com") {
                return .init(id: subject ?? email, name: email, kind: PrincipalClass.serviceAccount.kind, method: delegated ? "impersonation" : "service_account")
            }
            return .init(id: subject ?? email, name: email, kind: PrincipalClass.person.kind, method: "user")
        }
        if let subject {
            let github = subject.contains("/subject/repo:")
            let name = subject.range(of: "/subject/").map { String(subject[$0.upperBound...]) }.flatMap { $0.isEmpty ? nil : $0 } ?? subject
            return .init(id: subject, name: name,
                         kind: (github ? PrincipalClass.ciJob : PrincipalClass.serviceAccount).kind, method: "workload_identity")
        }
        return .init(kind: PrincipalClass.anonymous.kind)
    }

    /// A non-empty string of at most 512 bytes (longer values are dropped, not cut).
    static func bounded(_ s: String?) -> String? {
        guard let s, !s.isEmpty, s.utf8.count <= 512 else { return nil }
        return s
    }
}
