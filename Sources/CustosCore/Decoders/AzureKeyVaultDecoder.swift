/// Azure Key Vault resource logs (category `AuditEvent`, diagnostic settings to a storage
/// account, Event Hub or a file) into access events. README "Azure Key Vault, Kubernetes and
/// SaaS vault logs".
///
/// A record is one operation, or the `{"records": [...]}` batch Event Hub and storage blobs
/// write (each element decoded as a record).
///
/// - Operations: `SecretGet` and `SecretBackup` → `read` (a backup blob carries the value);
///   `SecretSet`, `SecretUpdate`, `SecretRestore`, `SecretRecover` → `write`; `SecretDelete`,
///   `SecretPurge` → `delete`; `SecretList`, `SecretListVersions`, `SecretListDeleted` →
///   `list`. Every other operation (`VaultGet`, `KeyGet`, `Authentication`, …) is ignored.
/// - Outcome: `properties.httpStatusCode` (401/403 denied, other ≥ 400 error). `resultType`
///   says `Success` even for a 403, so it is only used when no status code is logged (then
///   `resultSignature` first: `Forbidden`/`Unauthorized` → denied).
/// - Path (store `azure`): `azure/<vault>/<secret>`; a vault-wide list `azure/<vault>/*`.
///   The vault is the `VAULTS/<name>` segment of `resourceId` (else the first label of the
///   host in `properties.id`/`requestUri`); vault and secret names are case-insensitive in
///   Azure and are lowercased. The secret version is dropped from the path (a policy on a
///   secret covers all its versions); it is not kept elsewhere.
/// - Identity: `identity.claim` in short (`upn`, `oid`, `appid`) or URI form
///   (`http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn`,
///   `http://schemas.microsoft.com/identity/claims/objectidentifier`): a `upn` is a person
///   (even through an application: delegated access), an `appid` without `upn` an
///   application (service principal, managed identity), no claims anonymous.
/// - Id: `correlationId` with the operation and the secret path.
/// `resultDescription`, `clientInfo` and request headers are never copied.
public struct AzureKeyVaultDecoder: SourceRecordDecoder {
    public static let kind = "azure"
    public var sourceKind: String { Self.kind }
    public let instance: String
    let builder: SourceEventBuilder

    public init(instance: String = "default") {
        self.instance = instance
        self.builder = SourceEventBuilder(kind: Self.kind, instance: instance)
    }

    /// A Key Vault resource log record (`operationName` with category `AuditEvent` or a
    /// Key Vault `resourceId`), or a `records` batch whose first element is one.
    public static func recognizes(_ r: JSONNode) -> Bool {
        if let records = r["records"]?.arrayValue, let first = records.first, r["operationName"] == nil {
            return isRecord(first)
        }
        return isRecord(r)
    }

    static func isRecord(_ r: JSONNode) -> Bool {
        guard r["operationName"]?.stringValue != nil else { return false }
        if r["category"]?.stringValue == "AuditEvent" { return true }
        return r["resourceId"]?.stringValue?.lowercased().contains("/providers/microsoft.keyvault/") == true
    }

    public func decode(_ r: JSONNode, line: Int, into out: inout [DecodeOutput]) {
        if r["operationName"] == nil, let records = r["records"]?.arrayValue {
            RecordWrapper.decode(records, key: "records", line: line, empty: "empty Azure \"records\" batch", into: &out) {
                decodeOne($0, line: line, into: &$1)
            }
            return
        }
        decodeOne(r, line: line, into: &out)
    }

    enum Op { case read, write, delete, list, listVault }

    static func operation(_ name: String) -> Op? {
        switch name {
        case "SecretGet", "SecretBackup": return .read
        case "SecretSet", "SecretUpdate", "SecretRestore", "SecretRecover": return .write
        case "SecretDelete", "SecretPurge": return .delete
        case "SecretListVersions": return .list
        case "SecretList", "SecretListDeleted": return .listVault
        default: return nil
        }
    }

    func decodeOne(_ r: JSONNode, line: Int, into out: inout [DecodeOutput]) {
        guard let opName = r["operationName"]?.stringValue else {
            out.append(.rejected(.init(line: line, reason: r["operationName"] == nil ? "missing \"operationName\"" : "\"operationName\" is not a string")))
            return
        }
        guard let time = SourceTime.parse(r["time"]) else {
            out.append(.rejected(.init(line: line, reason: r["time"] == nil ? "missing \"time\"" : "\"time\" is not a time (RFC 3339)")))
            return
        }
        guard let op = Self.operation(opName) else {
            out.append(.ignored(line: line, reason: "Azure Key Vault operation without secret access (\(SourceFields.reasonName(opName)))"))
            return
        }
        let props = r["properties"]
        guard let vault = Self.vaultName(r) else {
            out.append(.rejected(.init(line: line, reason: "no vault name in \"resourceId\", \"properties.id\" or \"properties.requestUri\"")))
            return
        }
        let path: String
        if op == .listVault {
            path = "azure/\(vault)/*"
        } else {
            guard let name = Self.secretName(props?["id"]) ?? Self.secretName(props?["requestUri"]) else {
                out.append(.rejected(.init(line: line, reason: "no valid secret name in \"properties.id\" or \"properties.requestUri\"")))
                return
            }
            path = "azure/\(vault)/\(name)"
        }
        let action: Action
        switch op {
        case .read: action = .read
        case .write: action = .write
        case .delete: action = .delete
        case .list, .listVault: action = .list
        }
        let (outcome, reason) = Self.outcome(r)
        let identity = Self.identity(r["identity"])
        let origin = SourceIP.origin(r["callerIpAddress"])
        let correlation = SourceFields.bounded(r["correlationId"], max: 128)
        let key = correlation.map { ["corr", $0, opName, path] }
            ?? ["record", opName, path, identity.id ?? identity.name ?? "", String(time.unixNanos)]
        let event = AccessEvent(
            id: builder.id(key), time: time, source: builder.source, action: action, outcome: outcome, reason: reason,
            secret: .init(store: "azure", path: path), identity: identity, origin: origin, requestID: correlation)
        builder.emit(event, line: line, into: &out)
    }

    /// `httpStatusCode` when logged (trusted over `resultType`), else `resultSignature`,
    /// else `resultType`.
    static func outcome(_ r: JSONNode) -> (Outcome, String?) {
        if let code = SourceFields.status(r["properties"]?["httpStatusCode"]) { return SourceFields.outcome(httpStatus: code) }
        switch r["resultSignature"]?.stringValue?.lowercased() {
        case "forbidden"?: return (.denied, "forbidden")
        case "unauthorized"?: return (.denied, "unauthorized")
        case "not found"?, "notfound"?: return (.error, "not found")
        case "ok"?, "accepted"?, "created"?, "no content"?: return (.success, nil)
        default: break
        }
        switch r["resultType"]?.stringValue?.lowercased() {
        case "success"?: return (.success, nil)
        case nil: return (.error, "no result logged")
        default: return (.error, "failure (details withheld)")
        }
    }

    /// The vault: `…/PROVIDERS/MICROSOFT.KEYVAULT/VAULTS/<name>` of `resourceId`, else the
    /// first host label of `properties.id` or `properties.requestUri`. Lowercased.
    static func vaultName(_ r: JSONNode) -> String? {
        if let rid = r["resourceId"]?.stringValue, rid.utf8.count <= 1024 {
            let segs = rid.split(separator: "/")
            if let i = segs.lastIndex(where: { $0.lowercased() == "vaults" }), i + 1 < segs.count {
                let name = segs[i + 1].lowercased()
                if isVaultName(name) { return name }
            }
        }
        for key in ["id", "requestUri"] {
            guard let url = r["properties"]?[key]?.stringValue, url.utf8.count <= 2048,
                  let hostStart = url.firstRange(of: "://")?.upperBound else { continue }
            let host = url[hostStart...].prefix { $0 != "/" && $0 != ":" && $0 != "?" }
            if let label = host.split(separator: ".").first.map({ $0.lowercased() }), isVaultName(label) { return label }
        }
        return nil
    }

    /// Vault names: 3–24 of `[a-z0-9-]`.
    static func isVaultName(_ s: String) -> Bool {
        s.utf8.count >= 3 && s.utf8.count <= 24 && s.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D }
    }

    /// The secret name in `https://<host>/secrets/<name>[/<version>][?…]`, lowercased.
    static func secretName(_ v: JSONNode?) -> String? {
        guard let url = v?.stringValue, url.utf8.count <= 2048, let hostStart = url.firstRange(of: "://")?.upperBound else { return nil }
        let rest = url[hostStart...]
        let pathPart = rest.drop { $0 != "/" }.prefix { $0 != "?" && $0 != "#" }
        let segs = pathPart.split(separator: "/")
        guard segs.count >= 2, segs[0].lowercased() == "secrets" else { return nil }
        let name = segs[1].lowercased()
        // Azure secret names: 1–127 of `[0-9a-zA-Z-]`.
        guard name.utf8.count <= 127, name.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D }) else { return nil }
        return name
    }

    /// A claim in short or URI form (`…/claims/upn`, `…/claims/objectidentifier`).
    static func claim(_ claims: JSONNode?, _ names: [String]) -> String? {
        guard case .object(let members)? = claims else { return nil }
        for n in names {
            for (k, v) in members where k == n || k.hasSuffix("/" + n) {
                if let s = SourceFields.bounded(v, max: 256) { return s }
            }
        }
        return nil
    }

    static func identity(_ id: JSONNode?) -> AccessEvent.Identity {
        let claims = id?["claim"]
        let upn = claim(claims, ["upn"])
        let oid = claim(claims, ["oid", "objectidentifier"])
        let appid = claim(claims, ["appid", "azp"])
        let uniqueName = claim(claims, ["unique_name"])
        if let upn {
            return .init(id: oid, name: upn, kind: PrincipalClass.person.kind, method: appid == nil ? "aad_user" : "aad_delegated")
        }
        if let appid {
            return .init(id: oid, name: appid, kind: PrincipalClass.application.kind, method: "aad_app")
        }
        if oid != nil || uniqueName != nil {
            // An object id without upn or appid: a principal Azure does not describe further.
            return .init(id: oid, name: uniqueName ?? oid, kind: PrincipalClass.serviceAccount.kind, method: "aad")
        }
        return .init(kind: PrincipalClass.anonymous.kind)
    }
}
