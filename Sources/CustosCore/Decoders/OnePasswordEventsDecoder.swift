/// 1Password Events API records into access events: item usages (`POST /api/v1|v2/
/// itemusages`) and sign-in attempts (`/signinattempts`), one record at a time or a whole
/// response page (`{"cursor", "has_more", "items": [...]}`). README "Azure Key Vault,
/// Kubernetes and SaaS vault logs".
///
/// - Item usage → `read` of `1password/<vault_uuid>/<item_uuid>` (store `1password`; the
///   record names no item title). Actions `fill`, `reveal`, `secure-copy`, `copy`, `export`,
///   `share`, `enter-item-edit-mode`, `server-fetch`, `sso-fill`, `other` and a missing
///   `action` (older API versions) all expose the item's value: `read`. `server-create`,
///   `server-update` → `write`. `select-sso-provider` (no secret used) is ignored.
///   Item usages record only successful uses: there is no denied item usage.
/// - Sign-in attempt → `login`: `category` `success` a success, `credentials_failed`,
///   `mfa_failed`, `sso_failed`, `firewall_failed`, … denied (the reason is the category).
/// - Identity: `user` (item usage) or `target_user` (sign-in): `uuid`, `email`. A person,
///   unless the user is marked as a service account (`user.type`/`user_type` containing
///   `service`) or the client is a service account or Connect server (`client.app_name`
///   containing `Service Account` or `Connect`): a service account. (No public record of a
///   service account's item usage was found: this rule is an assumption, see README.)
/// - Origin `client.ip_address`; id the record's `uuid`; time `timestamp` (RFC 3339 with
///   any offset).
public struct OnePasswordEventsDecoder: SourceRecordDecoder {
    public static let kind = "1password"
    public var sourceKind: String { Self.kind }
    public let instance: String
    let builder: SourceEventBuilder

    public init(instance: String = "default") {
        self.instance = instance
        self.builder = SourceEventBuilder(kind: Self.kind, instance: instance)
    }

    public static func recognizes(_ r: JSONNode) -> Bool {
        if let items = r["items"]?.arrayValue, r["has_more"] != nil || r["cursor"] != nil {
            return items.first.map { isItemUsage($0) || isSignIn($0) } ?? true
        }
        return isItemUsage(r) || isSignIn(r)
    }

    static func isItemUsage(_ r: JSONNode) -> Bool {
        r["item_uuid"]?.stringValue != nil && r["vault_uuid"]?.stringValue != nil && r["timestamp"] != nil
    }

    static func isSignIn(_ r: JSONNode) -> Bool {
        r["category"]?.stringValue != nil && r["target_user"]?.isObject == true && r["timestamp"] != nil && r["uuid"] != nil
    }

    public func decode(_ r: JSONNode, line: Int, into out: inout [DecodeOutput]) {
        if r["uuid"] == nil, let items = r["items"]?.arrayValue {
            RecordWrapper.decode(items, key: "items", line: line, empty: "empty 1Password events page", into: &out) {
                decodeOne($0, line: line, into: &$1)
            }
            return
        }
        decodeOne(r, line: line, into: &out)
    }

    func decodeOne(_ r: JSONNode, line: Int, into out: inout [DecodeOutput]) {
        guard let uuid = SourceFields.bounded(r["uuid"], max: 128) else {
            out.append(.rejected(.init(line: line, reason: r["uuid"] == nil ? "missing \"uuid\"" : "\"uuid\" is not a string of at most 128 bytes")))
            return
        }
        guard let time = SourceTime.parse(r["timestamp"]) else {
            out.append(.rejected(.init(line: line, reason: r["timestamp"] == nil ? "missing \"timestamp\"" : "\"timestamp\" is not a time (RFC 3339)")))
            return
        }
        let origin = SourceIP.origin(r["client"]?["ip_address"])
        if r["item_uuid"] == nil, let category = r["category"]?.stringValue {
            signIn(r, category: category, uuid: uuid, time: time, origin: origin, line: line, into: &out)
            return
        }
        guard let vault = SourceFields.segment(r["vault_uuid"], max: 128) else {
            out.append(.rejected(.init(line: line, reason: "missing or invalid \"vault_uuid\"")))
            return
        }
        guard let item = SourceFields.segment(r["item_uuid"], max: 128) else {
            out.append(.rejected(.init(line: line, reason: "missing or invalid \"item_uuid\"")))
            return
        }
        let actionName = r["action"]?.stringValue
        let action: Action
        switch actionName {
        case nil, "fill"?, "reveal"?, "secure-copy"?, "copy"?, "export"?, "share"?, "enter-item-edit-mode"?, "server-fetch"?, "sso-fill"?, "other"?:
            action = .read
        case "server-create"?, "server-update"?:
            action = .write
        case "select-sso-provider"?:
            out.append(.ignored(line: line, reason: "1Password item usage select-sso-provider (no secret value used)"))
            return
        default:
            out.append(.ignored(line: line, reason: "1Password item usage action \(SourceFields.reasonName(actionName)) is not known"))
            return
        }
        let identity = Self.identity(r["user"], client: r["client"])
        let event = AccessEvent(
            id: builder.id(["uuid", uuid]), time: time, source: builder.source, action: action, outcome: .success,
            secret: .init(store: "1password", path: "1password/\(vault)/\(item)"), identity: identity, origin: origin, requestID: uuid)
        builder.emit(event, line: line, into: &out)
    }

    func signIn(_ r: JSONNode, category: String, uuid: String, time: EventTime, origin: AccessEvent.Origin?, line: Int,
                into out: inout [DecodeOutput]) {
        let outcome: Outcome
        let reason: String?
        switch category {
        case "success": outcome = .success; reason = nil
        case "modern_version_required": outcome = .error; reason = "client version refused"
        default: outcome = .denied; reason = SourceFields.reasonName(category) == category ? "sign-in " + category : "sign-in refused"
        }
        var identity = Self.identity(r["target_user"], client: r["client"])
        identity.method = SourceFields.bounded(r["type"], max: 64) ?? identity.method
        let event = AccessEvent(
            id: builder.id(["uuid", uuid]), time: time, source: builder.source, action: .login, outcome: outcome, reason: reason,
            identity: identity, origin: origin, requestID: uuid)
        builder.emit(event, line: line, into: &out)
    }

    static func identity(_ u: JSONNode?, client: JSONNode?) -> AccessEvent.Identity {
        let app = SourceFields.bounded(client?["app_name"], max: 128)
        let id = SourceFields.bounded(u?["uuid"], max: 128)
        let name = SourceFields.bounded(u?["email"], max: 256) ?? SourceFields.bounded(u?["name"], max: 256)
        guard id != nil || name != nil else { return .init(kind: PrincipalClass.anonymous.kind, method: app) }
        let userType = u?["type"]?.stringValue ?? u?["user_type"]?.stringValue ?? ""
        let machine = userType.lowercased().contains("service") || app.map { $0.contains("Service Account") || $0.contains("Connect") } == true
        return .init(id: id, name: name, kind: (machine ? PrincipalClass.serviceAccount : .person).kind, method: app)
    }
}
