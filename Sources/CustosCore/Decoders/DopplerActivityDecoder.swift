/// Doppler activity log stream records (the JSON documents Doppler's log streams — generic
/// HTTPS, AWS SQS, Datadog, Splunk, Sumo Logic — deliver) into access events. README "Azure
/// Key Vault, Kubernetes and SaaS vault logs".
///
/// - `security.secret_read` → one `read` per entry of `metadata.secrets` (`p` project, `e`
///   environment, `c` config, `s` secret name, `v` version); a secret read through a
///   reference is recorded at the secret's own place (`r` names where it was referenced
///   from and is not used).
/// - `enclave.project.config.secrets.update` → `metadata.diff.added`/`updated` → `write`,
///   `removed` → `delete`, one event per name (the diff lists names, never values).
/// - Every other type is ignored; so are entries of the Activity Logs API (`GET /v3/logs`),
///   which have no event type and describe changes in text only.
/// - Path (store `doppler`): `doppler/<project>/<config>/<NAME>`; the environment (`e`, or
///   the config's root environment) is `secret.environment`.
/// - Actor (`user.kind`): `user` a person; `serviceAccount` a service account; a token kind
///   (`apiToken`, `serviceToken`, `cliToken`, …: a token with no identity of its own) an
///   api_key; `bot` (Doppler itself) a bot; anything else an application.
/// - Doppler logs no denied access. Id: the entry's `slug`; a secret read has none, so its
///   id is built from `createdAt`, the actor and the secret (two reads of one secret by one
///   actor in the same millisecond count once).
public struct DopplerActivityDecoder: SourceRecordDecoder {
    public static let kind = "doppler"
    public var sourceKind: String { Self.kind }
    public let instance: String
    let builder: SourceEventBuilder

    public init(instance: String = "default") {
        self.instance = instance
        self.builder = SourceEventBuilder(kind: Self.kind, instance: instance)
    }

    /// A log stream document: `source` (or Datadog's `ddsource`) `doppler` and a `type`.
    public static func recognizes(_ r: JSONNode) -> Bool {
        (r["source"]?.stringValue == "doppler" || r["ddsource"]?.stringValue == "doppler") && r["type"]?.stringValue != nil
    }

    public func decode(_ r: JSONNode, line: Int, into out: inout [DecodeOutput]) {
        let timeValue = r["createdAt"] ?? r["created_at"]
        guard let time = SourceTime.parse(timeValue) else {
            out.append(.rejected(.init(line: line, reason: timeValue == nil ? "missing \"createdAt\"" : "\"createdAt\" is not a time (RFC 3339 or epoch)")))
            return
        }
        guard let type = r["type"]?.stringValue else {
            out.append(.ignored(line: line, reason: "Doppler activity log entry without an event type (Activity Logs API entries describe changes in text only)"))
            return
        }
        switch type {
        case "security.secret_read": secretRead(r, time: time, line: line, into: &out)
        case "enclave.project.config.secrets.update": secretsUpdate(r, time: time, line: line, into: &out)
        default: out.append(.ignored(line: line, reason: "Doppler activity without secret access (\(SourceFields.reasonName(type)))"))
        }
    }

    func secretRead(_ r: JSONNode, time: EventTime, line: Int, into out: inout [DecodeOutput]) {
        guard let list = r["metadata"]?["secrets"]?.arrayValue else {
            out.append(.rejected(.init(line: line, reason: "secret read without a \"metadata.secrets\" array")))
            return
        }
        var reads: [(path: String, env: String?, version: String)] = []
        for s in list {
            guard let project = SourceFields.segment(s["p"], max: 128), let config = SourceFields.segment(s["c"], max: 128),
                  let name = Self.secretName(s["s"]) else {
                out.append(.rejected(.init(line: line, reason: "an entry of \"metadata.secrets\" lacks a valid project (p), config (c) or name (s)")))
                return
            }
            let env = SourceFields.segment(s["e"], max: 64) ?? Self.rootEnvironment(config)
            reads.append(("doppler/\(project)/\(config)/\(name)", env, s["v"]?.text ?? ""))
        }
        if reads.isEmpty {
            out.append(.ignored(line: line, reason: "Doppler secret read without secrets"))
            return
        }
        let identity = Self.actor(r["user"], session: r["session"])
        let origin = SourceIP.origin(r["session"]?["ip"])
        let slug = SourceFields.bounded(r["slug"], max: 128)
        for read in reads {
            let key = slug.map { ["slug", $0, read.path] } ?? ["read", String(time.unixNanos), identity.id ?? identity.name ?? "", read.path, read.version]
            let event = AccessEvent(
                id: builder.id(key), time: time, source: builder.source, action: .read, outcome: .success,
                secret: .init(store: "doppler", path: read.path, environment: read.env.map { EnvironmentGuess.from(path: $0) ?? $0 }),
                identity: identity, origin: origin, requestID: slug)
            builder.emit(event, line: line, into: &out)
        }
    }

    func secretsUpdate(_ r: JSONNode, time: EventTime, line: Int, into out: inout [DecodeOutput]) {
        let m = r["metadata"]
        guard let project = SourceFields.segment(m?["projectId"] ?? m?["projectName"], max: 128),
              let config = SourceFields.segment(m?["configName"], max: 128) else {
            out.append(.rejected(.init(line: line, reason: "secrets update without a valid \"metadata.projectId\" and \"metadata.configName\"")))
            return
        }
        guard let diff = m?["diff"], diff.isObject else {
            out.append(.rejected(.init(line: line, reason: "secrets update without a \"metadata.diff\" object")))
            return
        }
        var changes: [(String, Action)] = []
        for (key, action) in [("added", Action.write), ("updated", .write), ("removed", .delete)] {
            guard let names = diff[key], !names.isNull else { continue }
            guard let arr = names.arrayValue else {
                out.append(.rejected(.init(line: line, reason: "\"metadata.diff.\(key)\" is not an array")))
                return
            }
            for n in arr {
                guard let name = Self.secretName(n) else {
                    out.append(.rejected(.init(line: line, reason: "\"metadata.diff.\(key)\" holds an entry that is not a secret name")))
                    return
                }
                changes.append((name, action))
            }
        }
        if changes.isEmpty {
            out.append(.ignored(line: line, reason: "Doppler secrets update without names in the diff"))
            return
        }
        let identity = Self.actor(r["user"], session: r["session"])
        let slug = SourceFields.bounded(r["slug"], max: 128)
        let env = Self.rootEnvironment(config).map { EnvironmentGuess.from(path: $0) ?? $0 }
        for (name, action) in changes {
            let path = "doppler/\(project)/\(config)/\(name)"
            let key = slug.map { ["slug", $0, path, action.rawValue] }
                ?? ["change", String(time.unixNanos), identity.id ?? identity.name ?? "", path, action.rawValue]
            let event = AccessEvent(
                id: builder.id(key), time: time, source: builder.source, action: action, outcome: .success,
                secret: .init(store: "doppler", path: path, environment: env), identity: identity,
                origin: SourceIP.origin(r["session"]?["ip"]), requestID: slug)
            builder.emit(event, line: line, into: &out)
        }
    }

    /// Doppler secret names: `[A-Z0-9_]`, not starting with a digit (lowercase accepted), 1–256.
    static func secretName(_ v: JSONNode?) -> String? {
        guard let s = v?.stringValue, let f = s.utf8.first, !(f >= 0x30 && f <= 0x39), s.utf8.count <= 256,
              s.utf8.allSatisfy(SourceText.isWord) else { return nil }
        return s
    }

    /// A config's root environment: `prd` for `prd`, `prd_eu` (branch configs are
    /// `<env>_<branch>`).
    static func rootEnvironment(_ config: String) -> String? {
        let root = config.split(separator: "_", maxSplits: 1).first.map(String.init) ?? config
        return root.isEmpty ? nil : root
    }

    static func actor(_ u: JSONNode?, session: JSONNode?) -> AccessEvent.Identity {
        let method = SourceFields.bounded(session?["method"], max: 64)?.lowercased()
        guard let u, u.isObject else { return .init(kind: PrincipalClass.anonymous.kind, method: method) }
        let kind = u["kind"]?.stringValue ?? ""
        let id = SourceFields.bounded(u["slug"], max: 128)
        let tokenName = SourceFields.bounded(u["type"]?["name"], max: 256)
        let name = SourceFields.bounded(u["email"], max: 256) ?? SourceFields.bounded(u["username"], max: 256)
            ?? SourceFields.bounded(u["name"], max: 256) ?? tokenName
        let cls: PrincipalClass
        switch kind {
        case "user": cls = .person
        case "serviceAccount", "service_account": cls = .serviceAccount
        case "bot": cls = .bot
        case let k where k.lowercased().contains("token"): cls = .accessToken
        default: cls = .application
        }
        return .init(id: id, name: name, kind: cls.kind, method: method ?? (cls == .accessToken ? SourceFields.reasonName(kind) : nil))
    }
}
