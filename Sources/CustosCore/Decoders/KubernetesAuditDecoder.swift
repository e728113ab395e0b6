/// Kubernetes API server audit events (`audit.k8s.io/v1` `Event`, one per line from the log
/// backend, or the `EventList` batches of the webhook backend) into access events. README
/// "Azure Key Vault, Kubernetes and SaaS vault logs".
///
/// - Only `objectRef.resource == "secrets"` (core group) counts; configmaps and everything
///   else are ignored.
/// - One request logs up to four stages under one `auditID`; only `ResponseComplete` is
///   counted (`RequestReceived`, `ResponseStarted`, `Panic` are ignored with a reason), so a
///   request is one event.
/// - Verbs: `get`, `watch` → `read`; `list` → `list`; `create`, `update`, `patch` → `write`;
///   `delete`, `deletecollection` → `delete`. A `list` (or a `watch` or `deletecollection`
///   without a name) names no single secret: its path ends in `*`. Note that a `list` of
///   secrets returns their values: policies should treat it like a read.
/// - Path (store `kubernetes`): `k8s/<instance>/<namespace>/<name>`, where the instance is
///   the configured source instance (the cluster); across all namespaces `k8s/<instance>/*/*`.
///   The namespace is also `secret.namespace`.
/// - Outcome: `responseStatus.code` (401/403 denied, other ≥ 400 error); without a code the
///   `authorization.k8s.io/decision` annotation (`forbid` → denied).
/// - Identity: `system:serviceaccount:<ns>:<name>` a service account; `system:node:<name>`
///   (or group `system:nodes`) a service; `system:admin`, `kubernetes-admin` or group
///   `system:masters` root (break-glass: the group bypasses RBAC); `system:anonymous`
///   anonymous; other `system:` users (controllers) a service; anyone else a person.
///   `impersonatedUser`, when present, is who the request acted as and is the identity
///   (method `impersonation`).
/// - `requestObject` and `responseObject` hold the secret's data at level Request and
///   RequestResponse: they are never read.
public struct KubernetesAuditDecoder: SourceRecordDecoder {
    public static let kind = "kubernetes"
    public var sourceKind: String { Self.kind }
    public let instance: String
    let builder: SourceEventBuilder
    /// The cluster segment of paths: the instance when it is a path segment, else `default`.
    let cluster: String

    public init(instance: String = "default") {
        self.instance = instance
        self.builder = SourceEventBuilder(kind: Self.kind, instance: instance)
        self.cluster = SourceFields.isSegment(instance, max: 128) ? instance : "default"
    }

    /// An audit `Event` (`kind: Event` of `audit.k8s.io`, or `auditID` with `stage` and
    /// `verb`), or an `EventList`.
    public static func recognizes(_ r: JSONNode) -> Bool {
        let api = r["apiVersion"]?.stringValue ?? ""
        if api.hasPrefix("audit.k8s.io/") { return r["kind"]?.stringValue == "Event" || r["kind"]?.stringValue == "EventList" }
        return r["auditID"]?.stringValue != nil && r["stage"]?.stringValue != nil && r["verb"]?.stringValue != nil
    }

    public func decode(_ r: JSONNode, line: Int, into out: inout [DecodeOutput]) {
        if r["kind"]?.stringValue == "EventList" {
            guard let items = r["items"]?.arrayValue else {
                out.append(.rejected(.init(line: line, reason: "EventList without an \"items\" array")))
                return
            }
            RecordWrapper.decode(items, key: "items", line: line, empty: "empty Kubernetes EventList", into: &out) {
                decodeOne($0, line: line, into: &$1)
            }
            return
        }
        decodeOne(r, line: line, into: &out)
    }

    func decodeOne(_ r: JSONNode, line: Int, into out: inout [DecodeOutput]) {
        guard let auditID = SourceFields.bounded(r["auditID"], max: 128) else {
            out.append(.rejected(.init(line: line, reason: r["auditID"] == nil ? "missing \"auditID\"" : "\"auditID\" is not a string of at most 128 bytes")))
            return
        }
        guard let verb = r["verb"]?.stringValue else {
            out.append(.rejected(.init(line: line, reason: "missing \"verb\"")))
            return
        }
        let timeValue = r["stageTimestamp"] ?? r["requestReceivedTimestamp"]
        guard let time = SourceTime.parse(timeValue) else {
            out.append(.rejected(.init(line: line, reason: timeValue == nil ? "missing \"stageTimestamp\"" : "\"stageTimestamp\" is not a time (RFC 3339)")))
            return
        }
        let ref = r["objectRef"]
        guard ref?["resource"]?.stringValue == "secrets", (ref?["apiGroup"]?.stringValue ?? "").isEmpty else {
            out.append(.ignored(line: line, reason: "Kubernetes audit event for another resource than secrets"))
            return
        }
        guard r["stage"]?.stringValue == "ResponseComplete" else {
            let stage = SourceFields.reasonName(r["stage"]?.stringValue)
            out.append(.ignored(line: line, reason: "Kubernetes audit stage \(stage) (only ResponseComplete is counted)"))
            return
        }
        let action: Action
        switch verb {
        case "get", "watch": action = .read
        case "list": action = .list
        case "create", "update", "patch": action = .write
        case "delete", "deletecollection": action = .delete
        default:
            out.append(.ignored(line: line, reason: "Kubernetes verb \(SourceFields.reasonName(verb)) on secrets is no secret access"))
            return
        }
        let namespace: String?
        if let ns = ref?["namespace"], !ns.isNull {
            guard let s = SourceFields.segment(ns, max: 253) else {
                out.append(.rejected(.init(line: line, reason: "\"objectRef.namespace\" is not a valid namespace")))
                return
            }
            namespace = s
        } else {
            namespace = nil
        }
        var name: String?
        if let n = ref?["name"], !n.isNull {
            guard let s = SourceFields.segment(n, max: 253) else {
                out.append(.rejected(.init(line: line, reason: "\"objectRef.name\" is not a valid secret name")))
                return
            }
            name = s
        }
        // A list or a collection delete is about no single secret, whatever a field selector says.
        if verb == "list" || verb == "deletecollection" { name = nil }
        if name == nil, verb != "list", verb != "watch", verb != "deletecollection", verb != "create" {
            out.append(.rejected(.init(line: line, reason: "\"\(verb)\" of a secret without \"objectRef.name\"")))
            return
        }
        // A create by generateName has no name yet: the response object would tell, and it is never read.
        let path = "k8s/\(cluster)/\(namespace ?? "*")/\(name ?? "*")"
        let (outcome, reason) = Self.outcome(r)
        let identity = Self.identity(r)
        let origin = SourceIP.origin(r["sourceIPs"]?.arrayValue?.first)
        let event = AccessEvent(
            id: builder.id(["audit", auditID]), time: time, source: builder.source, action: action, outcome: outcome, reason: reason,
            secret: .init(store: "kubernetes", path: path, namespace: namespace), identity: identity, origin: origin, requestID: auditID)
        builder.emit(event, line: line, into: &out)
    }

    static func outcome(_ r: JSONNode) -> (Outcome, String?) {
        if let code = SourceFields.status(r["responseStatus"]?["code"]) { return SourceFields.outcome(httpStatus: code) }
        switch r["annotations"]?["authorization.k8s.io/decision"]?.stringValue {
        case "forbid"?: return (.denied, "forbidden")
        case "allow"?: return (.success, nil)
        default: return (.error, "no response status logged")
        }
    }

    static func identity(_ r: JSONNode) -> AccessEvent.Identity {
        var user = r["user"]
        var method: String? = nil
        if let imp = r["impersonatedUser"], imp["username"]?.stringValue != nil {
            user = imp
            method = "impersonation"
        }
        guard let username = SourceFields.bounded(user?["username"], max: 256) else {
            return .init(kind: PrincipalClass.anonymous.kind, method: method)
        }
        let groups = (user?["groups"]?.arrayValue ?? []).compactMap(\.stringValue)
        let uid = SourceFields.bounded(user?["uid"], max: 128)
        let cls: PrincipalClass
        if username.hasPrefix("system:serviceaccount:") {
            cls = .serviceAccount
            method = method ?? "serviceaccount"
        } else if username == "system:admin" || username == "kubernetes-admin" || groups.contains("system:masters") {
            cls = .superuser
        } else if username.hasPrefix("system:node:") || groups.contains("system:nodes") {
            cls = .serviceAccount
            method = method ?? "node"
        } else if username == "system:anonymous" || groups.contains("system:unauthenticated") {
            cls = .anonymous
        } else if username.hasPrefix("system:") {
            cls = .application
        } else {
            cls = .person
        }
        return .init(id: uid, name: username, kind: cls.kind, method: method)
    }
}
