/// Infisical audit logs (`GET /api/v1/organization/audit-logs` rows, the `{"auditLogs":
/// [...]}` page itself, or audit log streams) into access events. README "Azure Key Vault,
/// Kubernetes and SaaS vault logs".
///
/// A row: `id`, `createdAt`, `projectId`, `ipAddress`, `userAgentType`, `event {type,
/// metadata}`, `actor {type, metadata}`.
/// - `get-secret`, `reveal-secret` → `read` of `metadata.secretKey`; `get-secrets` → `read`
///   of every secret at `metadata.secretPath` (the record holds only a count, no keys: the
///   path ends in `*`); `create-secret(s)`, `update-secret(s)` → `write`; `delete-secret(s)`
///   → `delete` (the batch forms: one event per `metadata.secrets[]` entry).
/// - `login-identity-<method>-auth` → `login` (success), `…-auth-failed` → `login` denied:
///   Infisical logs no denied secret access, only failed machine identity logins.
/// - Everything else is ignored.
/// - Path (store `infisical`): `infisical/<projectId>/<environment><secretPath>/<KEY>`, e.g.
///   `infisical/6f1…/prod/db/DB_PASSWORD` for folder `/db` (root folder `/`:
///   `infisical/<projectId>/prod/DB_PASSWORD`). The environment slug is also
///   `secret.environment` (normalised: `production` → `prod`).
/// - Actor: `user` a person; `identity` (machine identity) and `machine` a service account;
///   `service` (a legacy service token, no identity behind it) an api_key; `platform`,
///   `scimClient`, `kmipClient`, `acme…` an application; `unknownUser` anonymous.
public struct InfisicalAuditDecoder: SourceRecordDecoder {
    public static let kind = "infisical"
    public var sourceKind: String { Self.kind }
    public let instance: String
    let builder: SourceEventBuilder

    public init(instance: String = "default") {
        self.instance = instance
        self.builder = SourceEventBuilder(kind: Self.kind, instance: instance)
    }

    /// An audit row: `event.type` and `actor.type` strings; or an `auditLogs` page.
    public static func recognizes(_ r: JSONNode) -> Bool {
        if let logs = r["auditLogs"]?.arrayValue { return logs.first.map(isRow) ?? true }
        return isRow(r)
    }

    static func isRow(_ r: JSONNode) -> Bool {
        r["event"]?["type"]?.stringValue != nil && r["actor"]?["type"]?.stringValue != nil
    }

    public func decode(_ r: JSONNode, line: Int, into out: inout [DecodeOutput]) {
        if r["event"] == nil, let rows = r["auditLogs"]?.arrayValue {
            RecordWrapper.decode(rows, key: "auditLogs", line: line, empty: "empty Infisical \"auditLogs\" page", into: &out) {
                decodeOne($0, line: line, into: &$1)
            }
            return
        }
        decodeOne(r, line: line, into: &out)
    }

    func decodeOne(_ r: JSONNode, line: Int, into out: inout [DecodeOutput]) {
        guard let type = r["event"]?["type"]?.stringValue else {
            out.append(.rejected(.init(line: line, reason: "missing \"event.type\"")))
            return
        }
        let timeValue = r["createdAt"] ?? r["created_at"] ?? r["timestamp"]
        guard let time = SourceTime.parse(timeValue) else {
            out.append(.rejected(.init(line: line, reason: timeValue == nil ? "missing \"createdAt\"" : "\"createdAt\" is not a time (RFC 3339 or epoch)")))
            return
        }
        let meta = r["event"]?["metadata"]
        let identity = Self.actor(r["actor"], userAgentType: r["userAgentType"])
        let origin = SourceIP.origin(r["ipAddress"])
        let rowID = SourceFields.bounded(r["id"], max: 128)

        if type.hasPrefix("login-identity-"), type.hasSuffix("-auth") || type.hasSuffix("-auth-failed") {
            let failed = type.hasSuffix("-failed")
            var who = identity
            // A failed login has no authenticated actor: the identity it tried is in the metadata.
            if let idID = SourceFields.bounded(meta?["identityId"], max: 128), who.id == nil || who.kind == .unknown {
                who = .init(id: idID, name: who.name ?? idID, kind: PrincipalClass.serviceAccount.kind, method: who.method)
            }
            let method = String(type.dropFirst("login-identity-".count).dropLast(failed ? "-auth-failed".count : "-auth".count))
            who.method = SourceFields.reasonName(method) == method ? method : who.method
            let key = rowID.map { ["id", $0] } ?? ["login", type, who.id ?? "", String(time.unixNanos)]
            let event = AccessEvent(
                id: builder.id(key), time: time, source: builder.source, action: .login, outcome: failed ? .denied : .success,
                reason: failed ? "authentication failed" : nil, identity: who, origin: origin, requestID: rowID)
            builder.emit(event, line: line, into: &out)
            return
        }

        let action: Action
        let batch: Bool
        switch type {
        case "get-secret", "reveal-secret": action = .read; batch = false
        case "get-secrets": action = .read; batch = false
        case "create-secret", "update-secret": action = .write; batch = false
        case "create-secrets", "update-secrets": action = .write; batch = true
        case "delete-secret": action = .delete; batch = false
        case "delete-secrets": action = .delete; batch = true
        default:
            out.append(.ignored(line: line, reason: "Infisical audit event without secret access (\(SourceFields.reasonName(type)))"))
            return
        }
        guard let project = SourceFields.segment(r["projectId"] ?? meta?["projectId"] ?? r["workspaceId"], max: 128) else {
            out.append(.rejected(.init(line: line, reason: "missing or invalid \"projectId\"")))
            return
        }
        guard let env = SourceFields.segment(meta?["environment"], max: 64) else {
            out.append(.rejected(.init(line: line, reason: "missing or invalid \"event.metadata.environment\"")))
            return
        }
        let environment = EnvironmentGuess.from(path: env) ?? env
        // (key, folder, version) per secret.
        var secrets: [(key: String, folder: String?, id: String?)] = []
        if batch {
            guard let list = meta?["secrets"]?.arrayValue else {
                out.append(.rejected(.init(line: line, reason: "\"event.metadata.secrets\" is not an array")))
                return
            }
            for s in list {
                guard let key = Self.secretKey(s["secretKey"]) else {
                    out.append(.rejected(.init(line: line, reason: "an entry of \"event.metadata.secrets\" has no valid \"secretKey\"")))
                    return
                }
                secrets.append((key, s["secretPath"]?.stringValue, SourceFields.bounded(s["secretId"], max: 128)))
            }
            if secrets.isEmpty {
                out.append(.ignored(line: line, reason: "Infisical batch event without secrets"))
                return
            }
        } else if type == "get-secrets" {
            secrets = [("*", nil, nil)]
        } else {
            guard let key = Self.secretKey(meta?["secretKey"]) else {
                out.append(.rejected(.init(line: line, reason: "missing or invalid \"event.metadata.secretKey\"")))
                return
            }
            secrets = [(key, nil, SourceFields.bounded(meta?["secretId"], max: 128))]
        }
        for s in secrets {
            guard let folder = Self.folder(s.folder ?? meta?["secretPath"]?.stringValue ?? "/") else {
                out.append(.rejected(.init(line: line, reason: "invalid \"secretPath\" (a folder path like /a/b)")))
                return
            }
            let path = "infisical/\(project)/\(env)\(folder)/\(s.key)"
            let key = rowID.map { ["id", $0, s.key, folder] } ?? ["row", type, path, identity.id ?? "", String(time.unixNanos)]
            let event = AccessEvent(
                id: builder.id(key), time: time, source: builder.source, action: action, outcome: .success,
                secret: .init(store: "infisical", path: path, environment: environment), identity: identity, origin: origin,
                requestID: rowID)
            builder.emit(event, line: line, into: &out)
        }
    }

    /// A secret key: 1–256 bytes, a path segment.
    static func secretKey(_ v: JSONNode?) -> String? { SourceFields.segment(v, max: 256) }

    /// A folder path (`/`, `/a`, `/a/b/`) as written into paths: `""` for the root, `/a/b`
    /// otherwise; nil when a segment is not valid.
    static func folder(_ s: String) -> String? {
        guard s.utf8.count <= 1024, s.hasPrefix("/") || s.isEmpty else { return nil }
        let segs = s.split(separator: "/", omittingEmptySubsequences: true)
        guard segs.allSatisfy({ SourceFields.isSegment(String($0)) }) else { return nil }
        return segs.map { "/" + $0 }.joined()
    }

    static func actor(_ a: JSONNode?, userAgentType: JSONNode?) -> AccessEvent.Identity {
        let type = a?["type"]?.stringValue ?? ""
        let m = a?["metadata"]
        let method = SourceFields.bounded(userAgentType, max: 64)
        switch type {
        case "user":
            let name = SourceFields.bounded(m?["email"], max: 256) ?? SourceFields.bounded(m?["username"], max: 256)
            return .init(id: SourceFields.bounded(m?["userId"], max: 128), name: name, kind: PrincipalClass.person.kind, method: method)
        case "identity", "machine":
            return .init(id: SourceFields.bounded(m?["identityId"], max: 128), name: SourceFields.bounded(m?["name"], max: 256),
                         kind: PrincipalClass.serviceAccount.kind, method: method)
        case "service":
            return .init(id: SourceFields.bounded(m?["serviceId"], max: 128), name: SourceFields.bounded(m?["name"], max: 256),
                         kind: PrincipalClass.accessToken.kind, method: "service_token")
        case "unknownUser", "":
            return .init(kind: PrincipalClass.anonymous.kind, method: method)
        default:
            // platform (automated syncs), scimClient, kmipClient, acme/est/scep accounts.
            let name = SourceFields.bounded(m?["name"], max: 256) ?? SourceFields.reasonName(type)
            return .init(id: SourceFields.bounded(m?["clientId"] ?? m?["id"], max: 128), name: name,
                         kind: PrincipalClass.application.kind, method: method)
        }
    }
}
