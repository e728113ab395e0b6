/// GitLab audit events into access events. README "GitLab". Two shapes, one decoder:
/// - `audit_json.log` of a self-managed instance: flat records with dotted keys
///   (`meta.remote_ip`, `meta.user`), `event_name` on recent versions;
/// - streaming destinations and the REST API (`/audit_events`): `event_type` (or
///   `event_name`), `author_id`, `entity_path`, `target_details` at the top and/or in
///   `details`.
/// A member is looked up at the top, then in `details`, then as `meta.<name>`.
///
/// CI/CD variables: `ci_variable_*` (project), `ci_group_variable_*`,
/// `ci_instance_variable_*` with `_created`/`_updated` → `write`, `_deleted` → `delete`;
/// `variable_viewed_api` / `variable_viewed_graphql` (a value read through the API) →
/// `read`. `target_details` is the variable's KEY (never its value). Everything else is
/// ignored.
///
/// Paths (store `gitlab`): `gitlab/<project or group full path>/<KEY>`; an instance
/// variable `gitlab/-/instance/<KEY>`; without `entity_path`, `gitlab/-/projects/<id>/<KEY>`
/// or `gitlab/-/groups/<id>/<KEY>` (GitLab reserves `-` as a path segment, so these never
/// clash with a real namespace). A variable's `environment_scope`, when the record has one
/// and it is not `*`, becomes `secret.environment`.
public struct GitLabAuditDecoder: SourceRecordDecoder {
    public static let kind = "gitlab"
    public var sourceKind: String { Self.kind }
    public let instance: String
    let builder: SourceEventBuilder

    public init(instance: String = "default") {
        self.instance = instance
        self.builder = SourceEventBuilder(kind: Self.kind, instance: instance)
    }

    /// A GitLab audit event: an author and an entity (`author_id` with `entity_type` or
    /// `entity_path`), or an `event_type`/`event_name` with either.
    public static func recognizes(_ r: JSONNode) -> Bool {
        let hasAuthor = field(r, "author_id") != nil || field(r, "author_name") != nil
        let hasEntity = field(r, "entity_type") != nil || field(r, "entity_path") != nil || field(r, "entity_id") != nil
        return hasAuthor && hasEntity && r["action"] == nil && r["request"] == nil
    }

    /// `name` at the top, in `details`, or as `meta.name`.
    static func field(_ r: JSONNode, _ name: String) -> JSONNode? {
        if let v = r[name], !v.isNull { return v }
        if let v = r["details"]?[name], !v.isNull { return v }
        if let v = r["meta." + name], !v.isNull { return v }
        return nil
    }

    static func string(_ r: JSONNode, _ name: String) -> String? {
        guard let s = field(r, name)?.text, s.utf8.count <= 512 else { return nil }
        return s
    }

    enum Scope { case project, group, instance }

    /// The variable event an event name stands for.
    static func classify(_ event: String) -> (Action, Scope?)? {
        switch event {
        case "variable_viewed_api", "variable_viewed_graphql", "ci_variable_viewed", "ci_variable_value_viewed": return (.read, nil)
        default: break
        }
        let scopes: [(String, Scope)] = [("ci_group_variable_", .group), ("ci_instance_variable_", .instance), ("ci_variable_", .project)]
        for (prefix, scope) in scopes where event.hasPrefix(prefix) {
            switch event.dropFirst(prefix.count) {
            case "created", "updated": return (.write, scope)
            case "deleted": return (.delete, scope)
            default: return nil
            }
        }
        return nil
    }

    public func decode(_ r: JSONNode, line: Int, into out: inout [DecodeOutput]) {
        let timeValue = Self.field(r, "created_at") ?? r["time"] ?? r["@timestamp"]
        guard let time = SourceTime.parse(timeValue) else {
            out.append(.rejected(.init(line: line, reason: timeValue == nil ? "missing \"created_at\" and \"time\""
                                       : "\"created_at\"/\"time\" is not a time (epoch s/ms or RFC 3339)")))
            return
        }
        guard let eventName = Self.string(r, "event_type") ?? Self.string(r, "event_name") else {
            out.append(.ignored(line: line, reason: "GitLab audit event without an event name (not a CI variable event)"))
            return
        }
        guard let classified = Self.classify(eventName) else {
            out.append(.ignored(line: line, reason: "GitLab audit event without secret access"))
            return
        }
        let (action, declaredScope) = classified
        guard let key = Self.string(r, "target_details"), Self.isVariableKey(key) else {
            out.append(.rejected(.init(line: line, reason: "CI variable event without a valid variable key in \"target_details\"")))
            return
        }
        let entityType = Self.string(r, "entity_type")
        let scope: Scope? = declaredScope ?? (entityType == "Group" ? .group : entityType == "Project" ? .project : nil)
        let entityPath = Self.string(r, "entity_path").flatMap { Self.isNamespacePath($0) ? $0 : nil }
        let entityID = Self.field(r, "entity_id")?.intValue
        let base: String
        switch scope {
        case .instance?: base = "gitlab/-/instance"
        case .group?, .project?, nil:
            if let entityPath { base = "gitlab/\(entityPath)" }
            else if let entityID, scope != nil { base = "gitlab/-/\(scope == .group ? "groups" : "projects")/\(entityID)" }
            else {
                out.append(.rejected(.init(line: line, reason: "CI variable event without \"entity_path\" or \"entity_id\"")))
                return
            }
        }
        let path = "\(base)/\(key)"
        let envScope = Self.string(r, "environment_scope").flatMap { $0 == "*" || $0.contains("*") ? nil : $0 }
        let environment = envScope.map { EnvironmentGuess.from(path: $0) ?? $0 }
        let identity = Self.author(r)
        let origin = SourceIP.origin(Self.field(r, "remote_ip")) ?? SourceIP.origin(Self.field(r, "ip_address"))
        // The event's own id (streaming, API); in audit_json.log the request's correlation
        // id with what the event was about.
        let idKey: [String]
        if let id = r["id"]?.text, id.utf8.count <= 256 {
            idKey = ["id", id]
        } else if let cid = Self.string(r, "correlation_id") {
            idKey = ["correlation", cid, eventName, Self.string(r, "target_id") ?? "", key]
        } else {
            idKey = ["record", eventName, path, identity.id ?? identity.name ?? "", String(time.unixNanos)]
        }
        let event = AccessEvent(
            id: builder.id(idKey), time: time, source: builder.source, action: action, outcome: .success,
            secret: .init(store: "gitlab", path: path, environment: environment), identity: identity, origin: origin,
            requestID: Self.string(r, "correlation_id"))
        builder.emit(event, line: line, into: &out)
    }

    /// The author: a project/group access token's bot user (`project_<id>_bot…`) is a bot;
    /// a token-, deploy-key- or runner-authenticated author a token or a job; no author
    /// (`-1`, `An unauthenticated user`) anonymous; else a person.
    static func author(_ r: JSONNode) -> AccessEvent.Identity {
        let authorID = field(r, "author_id")?.intValue
        let username = string(r, "user") ?? string(r, "author_username") ?? string(r, "username")
        let display = string(r, "author_name")
        let name = username ?? display
        let authorClass = string(r, "author_class") ?? ""
        var cls = PrincipalClass.person
        var method: String? = "session"
        if authorID == -1 || authorClass.contains("Unauthenticated") || name == nil {
            cls = .anonymous; method = nil
        } else if authorClass.contains("CiRunner") || authorClass.contains("Ci::Build") {
            cls = .ciJob; method = "ci_job_token"
        } else if authorClass.contains("Deploy") || authorClass.contains("Token") {
            cls = .accessToken; method = "token"
        } else if [username, display].contains(where: { $0.map(PrincipalClass.isBotName) == true }) {
            cls = .bot; method = "access_token"
        }
        return .init(id: authorID.map { String($0) }, name: name, kind: cls.kind, method: method)
    }

    /// A CI/CD variable key: 1–255 of `[A-Za-z0-9_]`.
    static func isVariableKey(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.count <= 255
            && s.utf8.allSatisfy(SourceText.isWord)
    }

    /// A group or project full path: segments of `[A-Za-z0-9._-]`, joined by `/`, none `-`.
    static func isNamespacePath(_ s: String) -> Bool {
        guard !s.isEmpty, s.utf8.count <= 255 else { return false }
        let segs = s.split(separator: "/", omittingEmptySubsequences: false)
        return segs.allSatisfy { seg in
            !seg.isEmpty && seg != "-" && seg != "." && seg != ".."
                && seg.utf8.allSatisfy(SourceText.isSlug)
        }
    }
}
