/// GitHub organization / enterprise audit log records (REST `GET /orgs/{org}/audit-log`
/// pages, audit log streaming, the JSON export) into access events. README "GitHub".
///
/// - `workflows.prepared_workflow_job` lists in `secrets_passed` the secrets a job was given
///   (GitHub logs no read of an Actions secret otherwise): one `read` event per name, by
///   the job (identity kind `pipeline`), with the run's pipeline context.
/// - Secret management (`org.`/`repo.`/`environment.` `create|update|remove_actions_secret`,
///   Dependabot and Codespaces secrets alike): `write` or `delete` by the actor.
/// - Every other action is ignored. Values are never in these records; `hashed_token`,
///   `user_agent`, `config`, … are not read.
///
/// Secret paths (the store is the first segment; secret names are `[A-Za-z0-9_]`, so the
/// segments cannot be confused):
/// - Actions, repository or environment secret: `github/<owner>/<repo>/<NAME>`, the
///   environment (if any) in `secret.environment`;
/// - Actions, organization secret: `github/<org>/<NAME>`;
/// - Dependabot and Codespaces secrets: the same shapes under `github-dependabot/` and
///   `github-codespaces/` (store `github-dependabot`, `github-codespaces`); a Codespaces
///   user secret: `github-codespaces/user/<login>/<NAME>`.
/// `secrets_passed` does not say at which level a passed secret is defined: it is recorded
/// as the job's repository sees it, `github/<owner>/<repo>/<NAME>`, with the job's
/// environment. (An organization secret therefore appears under its repository path on
/// reads and under the organization path on writes; a policy glob `github/<org>/*` covers both.)
public struct GitHubAuditDecoder: SourceRecordDecoder {
    public static let kind = "github"
    public var sourceKind: String { Self.kind }
    public let instance: String
    let builder: SourceEventBuilder

    public init(instance: String = "default") {
        self.instance = instance
        self.builder = SourceEventBuilder(kind: Self.kind, instance: instance)
    }

    /// An audit record: `action` `category.operation` and a GitHub timestamp or id.
    public static func recognizes(_ r: JSONNode) -> Bool {
        guard let action = r["action"]?.stringValue, action.contains(".") else { return false }
        return r["_document_id"] != nil || r["@timestamp"] != nil || (r["actor"] != nil && r["created_at"] != nil)
    }

    public func decode(_ r: JSONNode, line: Int, into out: inout [DecodeOutput]) {
        guard let action = r["action"]?.stringValue, !action.isEmpty else {
            out.append(.rejected(.init(line: line, reason: r["action"] == nil ? "missing \"action\"" : "\"action\" is not a string")))
            return
        }
        guard action.utf8.count <= 128 else {
            out.append(.rejected(.init(line: line, reason: "\"action\" longer than 128 bytes")))
            return
        }
        let timeValue = r["@timestamp"] ?? r["created_at"] ?? r["timestamp"]
        guard let time = SourceTime.parse(timeValue) else {
            out.append(.rejected(.init(line: line, reason: timeValue == nil ? "missing \"@timestamp\" and \"created_at\""
                                       : "\"@timestamp\"/\"created_at\" is not a time (epoch s/ms or RFC 3339)")))
            return
        }
        if action == "workflows.prepared_workflow_job" {
            preparedJob(r, time: time, line: line, into: &out)
        } else if let op = Self.secretOperation(action) {
            secretChange(r, action: action, op: op, time: time, line: line, into: &out)
        } else {
            out.append(.ignored(line: line, reason: "GitHub audit action without secret access (\(Self.category(action)))"))
        }
    }

    /// The category of an action, for ignore reasons (`repo.create` → `repo.*`): a bounded,
    /// generic text.
    static func category(_ action: String) -> String {
        let cat = action.split(separator: ".", maxSplits: 1).first.map(String.init) ?? ""
        let ok = !cat.isEmpty && cat.utf8.count <= 40 && cat.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
        return ok ? cat + ".*" : "unknown category"
    }

    // MARK: - Jobs that received secrets

    func preparedJob(_ r: JSONNode, time: EventTime, line: Int, into out: inout [DecodeOutput]) {
        guard let passed = r["secrets_passed"], !passed.isNull else {
            out.append(.ignored(line: line, reason: "job prepared without secrets"))
            return
        }
        guard let list = passed.arrayValue else {
            out.append(.rejected(.init(line: line, reason: "\"secrets_passed\" is not an array")))
            return
        }
        var names: [String] = []
        for v in list {
            guard let n = v.stringValue, Self.isSecretName(n) else {
                out.append(.rejected(.init(line: line, reason: "\"secrets_passed\" holds an entry that is not a secret name")))
                return
            }
            if !names.contains(n) { names.append(n) }
        }
        if names.isEmpty {
            out.append(.ignored(line: line, reason: "job prepared without secrets"))
            return
        }
        guard let repo = Self.repository(r) else {
            out.append(.rejected(.init(line: line, reason: "missing or invalid \"repo\" (owner/name)")))
            return
        }
        let workflowRef = Self.bounded(r["job_workflow_ref"]?.stringValue)
        let runID = Self.bounded(r["workflow_run_id"]?.text)
        let attempt = r["run_attempt"]?.intValue.flatMap { $0 >= 1 && $0 <= 1_000_000 ? $0 : nil }
        let job = Self.bounded(r["job_name"]?.text)
        let envName = Self.bounded(r["environment_name"]?.stringValue)
        let environment = envName.map { EnvironmentGuess.from(path: $0) ?? $0 }
        let workflowName = Self.bounded(r["workflow_name"]?.stringValue) ?? Self.bounded(r["name"]?.stringValue)
            ?? workflowRef.flatMap(Self.workflowFile)
        let actor = Self.bounded(r["actor"]?.stringValue)
        let trigger: AccessEvent.Pipeline.Trigger? = r["event"]?.stringValue.map { $0 == "workflow_dispatch" ? .manual : .automated }
        // `actor_ip` is the triggering actor's address (origin); only an explicit runner
        // address is the runner's.
        let runnerIP = SourceIP.origin(r["runner_ip"])?.ip
        let paths = names.map { "github/\(repo)/\($0)" }
        let pipeline = AccessEvent.Pipeline(
            provider: "github", repository: repo, name: workflowName, id: workflowRef, runID: runID, attempt: attempt,
            job: job, environment: environment, trigger: trigger, triggerIdentity: actor, runnerIP: runnerIP, scope: paths)
        // The job's identity: its workflow (as OIDC's `job_workflow_ref` names it), else the
        // repository's workflow by name.
        let identityName = workflowRef ?? "\(repo)/\(workflowName ?? "workflow")"
        let identity = AccessEvent.Identity(id: Self.bounded(r["workflow_id"]?.text).map { "workflow:\($0)" }, name: identityName,
                                            kind: PrincipalClass.ciJob.kind, method: "github-actions")
        let origin = SourceIP.origin(r["actor_ip"])
        // The record's own id, else what identifies one try of one job.
        let recordKey = r["_document_id"]?.text.map { ["doc", $0] }
            ?? ["job", repo, runID ?? "", String(attempt ?? 0), job ?? "", r["job_id"]?.text ?? "", String(time.unixNanos)]
        for (name, path) in zip(names, paths) {
            let event = AccessEvent(
                id: builder.id(recordKey + [name]), time: time, source: builder.source, action: .read, outcome: .success,
                secret: .init(store: "github", path: path, environment: environment), identity: identity, origin: origin,
                requestID: r["_document_id"]?.text.flatMap { Self.bounded($0) }, pipeline: pipeline)
            builder.emit(event, line: line, into: &out)
        }
    }

    // MARK: - Secret management

    enum SecretOp { case write, delete }

    /// `create|update|remove|delete … secret` operations (`org.create_actions_secret`,
    /// `codespaces.create_an_org_secret`, `repo.remove_dependabot_secret`, …).
    static func secretOperation(_ action: String) -> SecretOp? {
        let parts = action.split(separator: ".", maxSplits: 1)
        guard parts.count == 2 else { return nil }
        let op = parts[1]
        guard op.hasSuffix("_secret") || op.hasSuffix("_secrets") else { return nil }
        // Secret scanning, OAuth app secrets etc. are no stored secrets.
        guard !op.contains("scanning"), !op.contains("integration"), !op.contains("oauth") else { return nil }
        if op.hasPrefix("create") || op.hasPrefix("update") || op.hasPrefix("add") { return .write }
        if op.hasPrefix("remove") || op.hasPrefix("delete") || op.hasPrefix("destroy") { return .delete }
        return nil
    }

    func secretChange(_ r: JSONNode, action: String, op: SecretOp, time: EventTime, line: Int, into out: inout [DecodeOutput]) {
        guard let name = r["secret_name"]?.stringValue ?? r["key"]?.stringValue ?? r["name"]?.stringValue, Self.isSecretName(name) else {
            out.append(.rejected(.init(line: line, reason: "secret change without a valid secret name (\"secret_name\"/\"name\")")))
            return
        }
        let store = action.contains("dependabot") ? "github-dependabot" : action.contains("codespaces") ? "github-codespaces" : "github"
        let category = action.split(separator: ".").first.map(String.init) ?? ""
        let orgLevel = category == "org" || category == "business" || action.contains("org_secret")
        let repo = Self.repository(r)
        let org = Self.bounded(r["org"]?.stringValue).flatMap { Self.isSlug($0) ? $0 : nil } ?? repo.map { String($0.split(separator: "/")[0]) }
        let path: String
        if !orgLevel, let repo {
            path = "\(store)/\(repo)/\(name)"
        } else if orgLevel || category != "codespaces", let org {
            path = "\(store)/\(org)/\(name)"
        } else if let user = Self.bounded(r["user"]?.stringValue ?? r["actor"]?.stringValue), Self.isSlug(user) {
            path = "\(store)/user/\(user)/\(name)"
        } else {
            out.append(.rejected(.init(line: line, reason: "secret change without \"repo\" or \"org\"")))
            return
        }
        let envName = category == "environment" ? Self.bounded(r["environment_name"]?.stringValue ?? r["environment"]?.stringValue) : nil
        let environment = envName.map { EnvironmentGuess.from(path: $0) ?? $0 }
        let actorName = Self.bounded(r["actor"]?.stringValue)
        let identity = Self.actorIdentity(r, name: actorName)
        let key = r["_document_id"]?.text.map { ["doc", $0] } ?? ["change", action, path, actorName ?? "", String(time.unixNanos)]
        let event = AccessEvent(
            id: builder.id(key), time: time, source: builder.source, action: op == .write ? .write : .delete, outcome: .success,
            secret: .init(store: store, path: path, environment: environment), identity: identity,
            origin: SourceIP.origin(r["actor_ip"]), requestID: r["_document_id"]?.text.flatMap { Self.bounded($0) })
        builder.emit(event, line: line, into: &out)
    }

    /// The actor: a bot (`…[bot]`) or a GitHub App installation token is a service; a
    /// personal access token an api_key; otherwise (web session, OAuth or user-to-server
    /// app acting for the user) a person. Method: how the actor authenticated.
    static func actorIdentity(_ r: JSONNode, name: String?) -> AccessEvent.Identity {
        let access = r["programmatic_access_type"]?.stringValue?.lowercased()
        var cls = PrincipalClass.person
        var method = "web"
        if let access, !access.isEmpty {
            if access.contains("server-to-server") { cls = .application; method = "github_app" }
            else if access.contains("user-to-server") { method = "github_app_user" }
            else if access.contains("oauth") { method = "oauth_app" }
            else if access.contains("fine-grained") { cls = .accessToken; method = "fine_grained_pat" }
            else if access.contains("personal access token") { cls = .accessToken; method = "pat" }
            else { cls = .accessToken; method = "token" }
        }
        if let name, PrincipalClass.isBotName(name) || r["actor_is_bot"]?.boolValue == true { cls = .bot }
        if name == nil { cls = .anonymous }
        return .init(id: bounded(r["actor_id"]?.text), name: name, kind: cls.kind, method: method)
    }

    // MARK: - Fields

    /// `owner/name` from `repo` (or `repository`), checked to be a repository slug.
    static func repository(_ r: JSONNode) -> String? {
        guard let s = r["repo"]?.stringValue ?? r["repository"]?.stringValue else { return nil }
        let parts = s.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ isSlug(String($0)) }) else { return nil }
        return s
    }

    /// An owner or repository name: 1–100 of `[A-Za-z0-9._-]`, not `.` or `..`.
    static func isSlug(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.count <= 100 && s != "." && s != ".."
            && s.utf8.allSatisfy(SourceText.isSlug)
    }

    /// A secret name as GitHub allows them: `[A-Za-z0-9_]`, not starting with a digit (1–200).
    static func isSecretName(_ s: String) -> Bool {
        guard let f = s.utf8.first, !(f >= 0x30 && f <= 0x39), s.utf8.count <= 200 else { return false }
        return s.utf8.allSatisfy(SourceText.isWord)
    }

    /// A non-empty string of at most 512 bytes (longer values are dropped, not cut).
    static func bounded(_ s: String?) -> String? {
        guard let s, !s.isEmpty, s.utf8.count <= 512 else { return nil }
        return s
    }

    /// `deploy.yml` from `owner/repo/.github/workflows/deploy.yml@refs/heads/main`.
    static func workflowFile(_ ref: String) -> String? {
        let noRef = ref.split(separator: "@", maxSplits: 1).first.map(String.init) ?? ref
        return noRef.split(separator: "/").last.map(String.init)
    }
}
