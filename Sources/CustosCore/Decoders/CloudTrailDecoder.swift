/// AWS CloudTrail records of Secrets Manager and SSM Parameter Store into access events.
/// README "AWS CloudTrail and Google Cloud audit logs".
///
/// Framing: single records (NDJSON, a JSON array, pretty-printed objects back to back, as
/// EventBridge, CloudWatch Logs subscriptions and SIEM exports give them) and the log-file
/// wrapper `{"Records": [...]}` that CloudTrail writes to S3 (one wrapper → many events).
///
/// - Secrets Manager (`secretsmanager.amazonaws.com`): `GetSecretValue` → `read`;
///   `BatchGetSecretValue` → one `read` per entry of `secretIdList` (a call by `filters`
///   names no secret and is ignored: the per-secret `GetSecretValue` records AWS writes for
///   it name them); `DescribeSecret`, `ListSecretVersionIds`, `GetResourcePolicy` → `list`
///   (metadata, no value), `ListSecrets` → `list` on the region's store; `CreateSecret`,
///   `PutSecretValue`, `UpdateSecret`, `RestoreSecret`, `RotateSecret`,
///   `UpdateSecretVersionStage` → `write`; `DeleteSecret` → `delete`;
///   `PutResourcePolicy`, `DeleteResourcePolicy` → `policy_change`.
/// - SSM Parameter Store (`ssm.amazonaws.com`): `GetParameter`, `GetParameterHistory` → `read`
///   (with or without `withDecryption`: the record does not say whether the parameter is a
///   SecureString, and a String parameter's value is returned either way); `GetParameters`
///   → one `read` per name; `GetParametersByPath` → one `read` on the path (the subtree);
///   `PutParameter` → `write`; `DeleteParameter(s)` → `delete`; `DescribeParameters` →
///   `list`. AWS public parameters (`/aws/service/…`) are ignored.
/// - KMS `Decrypt`/`GenerateDataKey` made by Secrets Manager on the caller's behalf
///   (`sourceIPAddress`/`invokedBy` `secretsmanager.amazonaws.com`, or a `SecretARN`
///   encryption context) is ignored: it is part of the caller's call, not a second access.
/// - Everything else is ignored. `requestParameters` and `responseElements` are never copied:
///   only the secret names/ids are read from them.
///
/// Paths (store `aws/<account>`): `aws/<region>/secretsmanager/<name>` (an ARN's
/// `-XXXXXX` suffix is removed, so an ARN and the name give the same path),
/// `aws/<region>/ssm/<parameter name without its leading />`; the region and account of an
/// ARN win over the record's.
///
/// Event ids: the request id, the action and the secret; so the per-secret `GetSecretValue`
/// records of a `BatchGetSecretValue` (same request) get the ids of the batch's events and
/// are stored once.
public struct CloudTrailDecoder: SourceRecordDecoder {
    public static let kind = "aws"
    public var sourceKind: String { Self.kind }
    public let instance: String
    let builder: SourceEventBuilder

    public init(instance: String = "default") {
        self.instance = instance
        self.builder = SourceEventBuilder(kind: Self.kind, instance: instance)
    }

    /// A CloudTrail record (`eventSource`, `eventName` and `eventTime` or `eventVersion`), or
    /// the log-file wrapper `{"Records": [...]}` whose first record is one.
    public static func recognizes(_ r: JSONNode) -> Bool {
        if let records = r["Records"]?.arrayValue {
            guard let first = records.first else { return r.objectKeys.count == 1 }
            return isRecord(first)
        }
        return isRecord(r)
    }

    static func isRecord(_ r: JSONNode) -> Bool {
        r["eventSource"]?.stringValue != nil && r["eventName"]?.stringValue != nil && (r["eventTime"] != nil || r["eventVersion"] != nil)
    }

    public func decode(_ r: JSONNode, line: Int, into out: inout [DecodeOutput]) {
        if let records = r["Records"], r["eventName"] == nil {
            guard let list = records.arrayValue else {
                out.append(.rejected(.init(line: line, reason: "\"Records\" is not an array")))
                return
            }
            RecordWrapper.decode(list, key: "Records", line: line, empty: "CloudTrail log file without records", into: &out) {
                decodeRecord($0, line: line, into: &$1)
            }
            return
        }
        decodeRecord(r, line: line, into: &out)
    }

    // MARK: - One record

    struct Call {
        let record: JSONNode
        let name: String
        let time: EventTime
        let region: String?
        let account: String?
        let line: Int
    }

    func decodeRecord(_ r: JSONNode, line: Int, into out: inout [DecodeOutput]) {
        guard let source = r["eventSource"]?.stringValue, let name = r["eventName"]?.stringValue, !source.isEmpty, !name.isEmpty else {
            out.append(.rejected(.init(line: line, reason: "missing or invalid \"eventSource\"/\"eventName\"")))
            return
        }
        guard source.utf8.count <= 128, name.utf8.count <= 128 else {
            out.append(.rejected(.init(line: line, reason: "\"eventSource\"/\"eventName\" longer than 128 bytes")))
            return
        }
        guard let time = Self.time(r["eventTime"]) else {
            out.append(.rejected(.init(line: line, reason: r["eventTime"] == nil ? "missing \"eventTime\"" : "\"eventTime\" is not a time")))
            return
        }
        let call = Call(record: r, name: name, time: time, region: Self.region(r["awsRegion"]?.stringValue),
                        account: Self.account(r["recipientAccountId"]?.text) ?? Self.account(r[["userIdentity", "accountId"]]?.text), line: line)
        switch source {
        case "secretsmanager.amazonaws.com": secretsManager(call, into: &out)
        case "ssm.amazonaws.com": parameterStore(call, into: &out)
        case "kms.amazonaws.com":
            if Self.isSecretsManagerKMS(r) {
                out.append(.ignored(line: line, reason: "KMS call made by Secrets Manager for the caller's request (not a second access)"))
            } else {
                out.append(.ignored(line: line, reason: "KMS call without secret access"))
            }
        default:
            out.append(.ignored(line: line, reason: "CloudTrail event without secret access (\(Self.service(source)))"))
        }
    }

    /// `eventTime`: CloudTrail writes `2024-10-17T21:48:45Z`; exports that normalise it
    /// (Panther, Athena) drop the zone (`2024-10-17 21:48:45.000000000`). CloudTrail times are
    /// UTC, so a time without a zone is read as UTC (for this source only).
    static func time(_ v: JSONNode?) -> EventTime? {
        if let t = SourceTime.parse(v) { return t }
        guard let s = v?.stringValue, s.utf8.count >= 19, s.utf8.count <= 40,
              s.utf8.allSatisfy({ SourceTime.isDigit($0) || $0 == 0x2D || $0 == 0x3A || $0 == 0x20 || $0 == 0x54 || $0 == 0x2E }) else { return nil }
        return SourceTime.parse(text: s + "Z")
    }

    /// `secretsmanager` from `secretsmanager.amazonaws.com`, bounded, for ignore reasons.
    static func service(_ source: String) -> String {
        let s = source.hasSuffix(".amazonaws.com") ? String(source.dropLast(".amazonaws.com".count)) : source
        let ok = !s.isEmpty && s.utf8.count <= 40 && s.utf8.allSatisfy(SourceText.isSlug)
        return ok ? s : "unknown service"
    }

    static func isSecretsManagerKMS(_ r: JSONNode) -> Bool {
        let sm = "secretsmanager.amazonaws.com"
        return r["sourceIPAddress"]?.stringValue == sm || r["invokedBy"]?.stringValue == sm
            || r[["userIdentity", "invokedBy"]]?.stringValue == sm
            || r[["requestParameters", "encryptionContext", "SecretARN"]] != nil
    }

    // MARK: - Secrets Manager

    func secretsManager(_ c: Call, into out: inout [DecodeOutput]) {
        let params = c.record["requestParameters"]
        let action: Action
        var ids: [JSONNode] = []
        switch c.name {
        case "GetSecretValue": action = .read
        case "BatchGetSecretValue":
            action = .read
            guard let list = params?["secretIdList"], !list.isNull else {
                out.append(.ignored(line: c.line, reason: "BatchGetSecretValue by filters names no secret (the per-secret GetSecretValue records do)"))
                return
            }
            guard let items = list.arrayValue else {
                out.append(.rejected(.init(line: c.line, reason: "\"secretIdList\" is not an array")))
                return
            }
            guard !items.isEmpty, items.count <= 100 else {
                out.append(.rejected(.init(line: c.line, reason: "\"secretIdList\" holds no secret or more than 100")))
                return
            }
            ids = items
        case "DescribeSecret", "ListSecretVersionIds", "GetResourcePolicy": action = .list
        case "CreateSecret", "PutSecretValue", "UpdateSecret", "RestoreSecret", "RotateSecret", "UpdateSecretVersionStage": action = .write
        case "DeleteSecret": action = .delete
        case "PutResourcePolicy", "DeleteResourcePolicy": action = .policyChange
        case "ListSecrets":
            guard let region = c.region else {
                out.append(.rejected(.init(line: c.line, reason: "ListSecrets without a valid \"awsRegion\"")))
                return
            }
            emit(c, action: .list, path: "aws/\(region)/secretsmanager", account: c.account, key: "ListSecrets", into: &out)
            return
        default:
            out.append(.ignored(line: c.line, reason: "Secrets Manager event without secret access"))
            return
        }
        if ids.isEmpty {
            // CreateSecret names the secret in `name`; every other call in `secretId`.
            guard let id = params?["secretId"] ?? params?["name"] else {
                out.append(.rejected(.init(line: c.line, reason: "Secrets Manager call without \"requestParameters.secretId\"")))
                return
            }
            ids = [id]
        }
        // Every id is checked before any event is made: a record is decoded whole or rejected.
        var secrets: [(path: String, account: String?, name: String)] = []
        for id in ids {
            guard let s = id.stringValue, let secret = Self.secretName(s) else {
                out.append(.rejected(.init(line: c.line, reason: "invalid secret id (not a secret name or a Secrets Manager ARN)")))
                return
            }
            guard let region = secret.region ?? c.region else {
                out.append(.rejected(.init(line: c.line, reason: "secret without a region (\"awsRegion\" or an ARN)")))
                return
            }
            let path = "aws/\(region)/secretsmanager/\(secret.name)"
            if !secrets.contains(where: { $0.path == path }) { secrets.append((path, secret.account ?? c.account, secret.name)) }
        }
        for s in secrets { emit(c, action: action, path: s.path, account: s.account, key: s.name, into: &out) }
    }

    /// The secret's name from a name or an ARN (`arn:aws:secretsmanager:<region>:<account>:secret:<name>-XXXXXX`),
    /// with the ARN's region and account. Names: 1–512 of `[A-Za-z0-9/_+=.@-]`.
    static func secretName(_ id: String) -> (name: String, region: String?, account: String?)? {
        guard !id.isEmpty, id.utf8.count <= 2048 else { return nil }
        var name = id
        var region: String?, account: String?
        if id.hasPrefix("arn:") {
            let parts = id.split(separator: ":", maxSplits: 6, omittingEmptySubsequences: false)
            guard parts.count == 7, parts[2] == "secretsmanager", parts[5] == "secret",
                  let r = Self.region(String(parts[3])), let a = Self.account(String(parts[4])) else { return nil }
            region = r; account = a
            name = String(parts[6])
            // The random suffix AWS appends to a secret's ARN: `-` and six characters.
            let u = Array(name.utf8)
            if u.count > 7, u[u.count - 7] == 0x2D, u.suffix(6).allSatisfy({ SourceText.isWord($0) && $0 != 0x5F }) {
                name = String(decoding: u.prefix(u.count - 7), as: UTF8.self)
            }
        }
        guard isSecretName(name) else { return nil }
        return (name, region, account)
    }

    /// A Secrets Manager secret name: 1–512 of `[A-Za-z0-9/_+=.@-]`, no empty, `.` or `..` segment.
    static func isSecretName(_ s: String) -> Bool {
        guard !s.isEmpty, s.utf8.count <= 512 else { return false }
        let ok = s.utf8.allSatisfy { SourceText.isSlug($0) || $0 == 0x2F || $0 == 0x2B || $0 == 0x3D || $0 == 0x40 }
        return ok && s.split(separator: "/", omittingEmptySubsequences: false).allSatisfy { !$0.isEmpty && $0 != "." && $0 != ".." }
    }

    // MARK: - SSM Parameter Store

    func parameterStore(_ c: Call, into out: inout [DecodeOutput]) {
        let params = c.record["requestParameters"]
        let action: Action
        let names: [JSONNode]
        switch c.name {
        case "GetParameter", "GetParameterHistory", "GetParametersByPath":
            action = .read
            names = [params?[c.name == "GetParametersByPath" ? "path" : "name"]].compactMap { $0 }
        case "GetParameters":
            action = .read
            names = params?["names"]?.arrayValue ?? []
        case "PutParameter": action = .write; names = [params?["name"]].compactMap { $0 }
        case "DeleteParameter": action = .delete; names = [params?["name"]].compactMap { $0 }
        case "DeleteParameters": action = .delete; names = params?["names"]?.arrayValue ?? []
        case "DescribeParameters":
            guard let region = c.region else {
                out.append(.rejected(.init(line: c.line, reason: "DescribeParameters without a valid \"awsRegion\"")))
                return
            }
            emit(c, action: .list, path: "aws/\(region)/ssm", account: c.account, key: "DescribeParameters", into: &out)
            return
        default:
            out.append(.ignored(line: c.line, reason: "SSM event without parameter access"))
            return
        }
        guard !names.isEmpty, names.count <= 100 else {
            out.append(.rejected(.init(line: c.line, reason: "SSM \(c.name) without a parameter name (or more than 100)")))
            return
        }
        var parameters: [(path: String, account: String?, name: String)] = []
        for n in names {
            guard let s = n.stringValue, let p = Self.parameterName(s) else {
                out.append(.rejected(.init(line: c.line, reason: "invalid SSM parameter name")))
                return
            }
            if p.name.hasPrefix("aws/service/") || p.name == "aws/service" { continue }
            guard let region = p.region ?? c.region else {
                out.append(.rejected(.init(line: c.line, reason: "parameter without a region (\"awsRegion\" or an ARN)")))
                return
            }
            let path = "aws/\(region)/ssm/\(p.name)"
            if !parameters.contains(where: { $0.path == path }) { parameters.append((path, p.account ?? c.account, p.name)) }
        }
        if parameters.isEmpty {
            out.append(.ignored(line: c.line, reason: "SSM read of AWS public parameters (/aws/service/…)"))
        }
        for p in parameters { emit(c, action: action, path: p.path, account: p.account, key: p.name, into: &out) }
    }

    /// A parameter's name without its leading `/` and without a `:version`/`:label`
    /// selector, from a name or an ARN (`arn:aws:ssm:<region>:<account>:parameter/<name>`).
    /// Names: 1–2048 of `[A-Za-z0-9/_.-]`.
    static func parameterName(_ id: String) -> (name: String, region: String?, account: String?)? {
        guard !id.isEmpty, id.utf8.count <= 2048 else { return nil }
        var name = Substring(id)
        var region: String?, account: String?
        if id.hasPrefix("arn:") {
            let parts = id.split(separator: ":", maxSplits: 5, omittingEmptySubsequences: false)
            guard parts.count == 6, parts[2] == "ssm", parts[5].hasPrefix("parameter/"),
                  let r = Self.region(String(parts[3])), let a = Self.account(String(parts[4])) else { return nil }
            region = r; account = a
            name = parts[5].dropFirst("parameter".count)
        }
        if let colon = name.firstIndex(of: ":") { name = name[..<colon] }
        while name.hasPrefix("/") { name = name.dropFirst() }
        while name.hasSuffix("/") { name = name.dropLast() }
        let s = String(name)
        guard !s.isEmpty, s.utf8.allSatisfy({ SourceText.isSlug($0) || $0 == 0x2F }),
              s.split(separator: "/", omittingEmptySubsequences: false).allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." }) else { return nil }
        return (s, region, account)
    }

    // MARK: - Events

    func emit(_ c: Call, action: Action, path: String, account: String?, key: String, into out: inout [DecodeOutput]) {
        let r = c.record
        let (outcome, reason) = Self.outcome(r["errorCode"]?.stringValue)
        let requestID = Self.bounded(r["requestID"]?.text)
        // One request, one access per secret: the per-secret GetSecretValue records of a
        // BatchGetSecretValue share its request id and get the same ids as its events.
        let idKey: [String]
        if let requestID { idKey = ["request", requestID, action.rawValue, path] }
        else if let eventID = Self.bounded(r["eventID"]?.text) { idKey = ["event", eventID, path] }
        else { idKey = ["record", c.name, path, Self.bounded(r[["userIdentity", "arn"]]?.stringValue) ?? "", String(c.time.unixNanos)] }
        let name = path.split(separator: "/", maxSplits: 3).dropFirst(3).first.map(String.init) ?? key
        let event = AccessEvent(
            id: builder.id(idKey), time: c.time, source: builder.source, action: action, outcome: outcome, reason: reason,
            secret: .init(store: account.map { "aws/\($0)" } ?? "aws", path: path, environment: EnvironmentGuess.from(path: name)),
            identity: Self.identity(r), origin: SourceIP.origin(r["sourceIPAddress"]), requestID: requestID)
        builder.emit(event, line: c.line, into: &out)
    }

    /// `errorCode`: none → success; `AccessDenied…`, `UnauthorizedOperation`,
    /// `…NotAuthorized…` → denied (permission denied); `UnrecognizedClient…`,
    /// `InvalidClientTokenId`, `ExpiredToken…`, `SignatureDoesNotMatch` → denied
    /// (authentication failed); anything else → error, with a classified reason (never
    /// the `errorMessage`).
    static func outcome(_ code: String?) -> (Outcome, String?) {
        guard let code, !code.isEmpty else { return (.success, nil) }
        let c = code.hasPrefix("Client.") ? String(code.dropFirst(7)) : code
        if c.hasPrefix("AccessDenied") || c == "UnauthorizedOperation" || c.contains("NotAuthorized") || c == "UnauthorizedException" {
            return (.denied, "permission denied")
        }
        if c.hasPrefix("UnrecognizedClient") || c == "InvalidClientTokenId" || c.hasPrefix("ExpiredToken") || c == "SignatureDoesNotMatch" {
            return (.denied, "authentication failed")
        }
        if c.contains("NotFound") { return (.error, "not found") }
        if c.contains("Throttl") || c.contains("TooManyRequests") || c.contains("RateExceeded") { return (.error, "throttled") }
        if c.hasPrefix("Invalid") || c.hasPrefix("Validation") || c.contains("Malformed") { return (.error, "invalid request") }
        if c.contains("Decryption") || c.hasPrefix("KMS") { return (.error, "decryption failed") }
        return (.error, "request failed")
    }

    // MARK: - Identity

    /// `userIdentity` → identity (README table):
    /// - `Root` → root; `IAMUser` → human (an IAM user is a person's or a tool's long-term
    ///   key: the record cannot tell, and a person is the stricter reading);
    /// - `AssumedRole`: a session of an IAM Identity Center role (`AWSReservedSSO_…`) → human,
    ///   named by its session name; a role assumed with a GitHub Actions OIDC token
    ///   (`webIdFederationData.federatedProvider` `token.actions.githubusercontent.com`) →
    ///   pipeline; any other role session → service, named by the role;
    /// - `WebIdentityUser` → pipeline for GitHub Actions' provider, else service;
    /// - `FederatedUser`, `SAMLUser` → human; `AWSService` → service (named by `invokedBy`);
    /// - `AWSAccount` (another account) and `Unknown` → unknown.
    static func identity(_ r: JSONNode) -> AccessEvent.Identity {
        guard let u = r["userIdentity"], u.isObject else { return .init(kind: .unknown) }
        let type = u["type"]?.stringValue ?? ""
        let arn = bounded(u["arn"]?.stringValue)
        let principal = bounded(u["principalId"]?.text)
        let issuer = u[["sessionContext", "sessionIssuer"]]
        let webProvider = bounded(u[["sessionContext", "webIdFederationData", "federatedProvider"]]?.stringValue)
            ?? bounded(u["identityProvider"]?.stringValue)
        let githubOIDC = webProvider?.contains("token.actions.githubusercontent.com") == true
        switch type {
        case "Root":
            return .init(id: arn ?? principal, name: "root", kind: PrincipalClass.superuser.kind, method: "root")
        case "IAMUser":
            return .init(id: arn ?? principal, name: bounded(u["userName"]?.stringValue) ?? arn.map(lastSegment), kind: PrincipalClass.person.kind, method: "iam_user")
        case "AssumedRole":
            let role = bounded(issuer?["userName"]?.stringValue) ?? arn.flatMap(roleOfSession)
            let session = arn.map(lastSegment)
            if githubOIDC {
                return .init(id: arn ?? principal, name: role ?? session, kind: PrincipalClass.ciJob.kind, method: "web_identity")
            }
            if let role, role.hasPrefix("AWSReservedSSO_") {
                return .init(id: arn ?? principal, name: session ?? role, kind: PrincipalClass.person.kind, method: "sso")
            }
            return .init(id: bounded(issuer?["arn"]?.stringValue) ?? arn ?? principal, name: role ?? session,
                         kind: PrincipalClass.application.kind, method: "assumed_role")
        case "WebIdentityUser":
            let name = bounded(u["userName"]?.stringValue) ?? principal
            return .init(id: principal, name: name, kind: (githubOIDC ? PrincipalClass.ciJob : PrincipalClass.application).kind, method: "web_identity")
        case "FederatedUser", "SAMLUser":
            let name = bounded(u["userName"]?.stringValue) ?? arn.map(lastSegment) ?? principal
            return .init(id: arn ?? principal, name: name, kind: PrincipalClass.person.kind, method: type == "SAMLUser" ? "saml" : "federated")
        case "AWSService":
            let by = bounded(u["invokedBy"]?.stringValue) ?? bounded(r["invokedBy"]?.stringValue)
            return .init(id: by, name: by, kind: PrincipalClass.application.kind, method: "aws_service")
        case "AWSAccount":
            let account = Self.account(u["accountId"]?.text)
            return .init(id: principal, name: account.map { "account:\($0)" }, kind: .unknown, method: "aws_account")
        default:
            return .init(id: arn ?? principal, name: arn.map(lastSegment), kind: .unknown)
        }
    }

    /// `alice` from `arn:aws:iam::1:user/dev/alice`, `evil.genius` from `…:assumed-role/R/evil.genius`.
    static func lastSegment(_ arn: String) -> String {
        arn.split(separator: "/").last.map(String.init) ?? arn
    }

    /// `R` from `arn:aws:sts::1:assumed-role/R/session`.
    static func roleOfSession(_ arn: String) -> String? {
        let parts = arn.split(separator: "/")
        guard parts.count >= 3, parts[0].hasSuffix(":assumed-role") else { return nil }
        return String(parts[1])
    }

    // MARK: - Fields

    /// An AWS region (`us-east-1`): 1–32 of `[a-z0-9-]`.
    static func region(_ s: String?) -> String? {
        guard let s, !s.isEmpty, s.utf8.count <= 32,
              s.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || SourceTime.isDigit($0) || $0 == 0x2D }) else { return nil }
        return s
    }

    /// An account id: 1–20 digits (real ids have 12; published samples anonymise them).
    static func account(_ s: String?) -> String? {
        guard let s, !s.isEmpty, s.utf8.count <= 20, s.utf8.allSatisfy(SourceTime.isDigit) else { return nil }
        return s
    }

    /// A non-empty string of at most 512 bytes (longer values are dropped, not cut).
    static func bounded(_ s: String?) -> String? {
        guard let s, !s.isEmpty, s.utf8.count <= 512 else { return nil }
        return s
    }
}

extension CloudTrailDecoder {
    /// When all of `bytes` is a CloudTrail log file, `{"Records": [ … ]}` (whitespace allowed
    /// anywhere between the tokens), the range of its `[ … ]` array; else nil.
    public static func logFileArray(_ bytes: UnsafeRawBufferPointer) -> Range<Int>? {
        func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 }
        var i = 0
        func skip() { while i < bytes.count, isSpace(bytes[i]) { i += 1 } }
        func expect(_ s: StaticString) -> Bool {
            skip()
            let n = s.utf8CodeUnitCount
            guard i + n <= bytes.count else { return false }
            for k in 0..<n where bytes[i + k] != s.utf8Start[k] { return false }
            i += n
            return true
        }
        guard expect("{"), expect("\"Records\""), expect(":"), expect("[") else { return nil }
        let start = i - 1
        var j = bytes.count - 1
        while j > start, isSpace(bytes[j]) { j -= 1 }
        guard j > start, bytes[j] == 0x7D else { return nil }
        j -= 1
        while j > start, isSpace(bytes[j]) { j -= 1 }
        guard j > start, bytes[j] == 0x5D else { return nil }
        return start..<(j + 1)
    }

    /// Whether `prefix` (the start of an input) begins like a CloudTrail log file.
    public static func startsLogFile(_ prefix: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        func skip() { while i < prefix.count, prefix[i] == 0x20 || prefix[i] == 0x0A || prefix[i] == 0x0D || prefix[i] == 0x09 { i += 1 } }
        skip()
        guard i < prefix.count, prefix[i] == 0x7B else { return false }
        i += 1
        skip()
        let key = Array("\"Records\"".utf8)
        guard i + key.count <= prefix.count else { return false }
        return zip(prefix[i..<(i + key.count)], key).allSatisfy { $0 == $1 }
    }
}

extension SourceStreamDecoder {
    /// Feeds a whole input held in memory. A CloudTrail log file (`{"Records": [...]}`, when
    /// the decoder is CloudTrail's) is fed as the array of its records, so each record is
    /// split, bounded and numbered on its own (a log file may be larger than one record may
    /// be); line breaks outside the array are fed too, so line numbers stay the file's.
    public mutating func feedWhole(_ bytes: UnsafeRawBufferPointer, into out: inout [DecodeOutput]) {
        guard decoder is CloudTrailDecoder, let r = CloudTrailDecoder.logFileArray(bytes) else {
            feed(bytes, into: &out)
            return
        }
        let before = bytes[..<r.lowerBound].reduce(0) { $1 == 0x0A ? $0 + 1 : $0 }
        feed([UInt8](repeating: 0x0A, count: before), into: &out)
        feed(UnsafeRawBufferPointer(rebasing: bytes[r]), into: &out)
        let after = bytes[r.upperBound...].reduce(0) { $1 == 0x0A ? $0 + 1 : $0 }
        feed([UInt8](repeating: 0x0A, count: after), into: &out)
    }
}
