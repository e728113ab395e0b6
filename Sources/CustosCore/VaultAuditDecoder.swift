/// Decodes HashiCorp Vault / OpenBao audit device records (one JSON object per line) into
/// access events.
///
/// - Each access is logged twice (a `request` and a `response` line sharing `request.id`);
///   it becomes one event, built from the response line alone so that the result does not
///   depend on whether the request line was seen. A request whose response never arrives
///   becomes an `error` event ("no response logged") when `finish` is called or when more
///   than `maxPending` requests (or `maxPendingBytes` of them) are waiting.
/// - `request.data` and `response.data` are never read: with `log_raw` they hold plain
///   secret values, and integers and booleans are plain even without it.
/// - Error texts are classified (permission denied, invalid token, ...) rather than copied.
public struct VaultAuditDecoder: Sendable {
    public let sourceKind: String
    public let instance: String
    public var maxPending: Int
    public static let maxLineBytes = 1 << 20
    static let maxFieldBytes = 4096

    var pending: [String: Pending] = [:]
    var pendingOrder: [String] = []
    var pendingOrderHead = 0

    /// A request waiting for its response: only its raw bytes are kept, in `arena` (parsed
    /// fully only if the response never comes).
    struct Pending: Sendable {
        var line: Int
        var offset: Int
        var length: Int
        var input: Int
    }

    /// A number for the input being decoded (the caller's file index), kept with waiting
    /// requests so that a late rejection names the right input.
    public var input = 0

    /// Raw bytes of waiting requests, appended in one buffer (no allocation per line) and
    /// compacted when mostly dead. Holds at most `maxPending` requests.
    var arena: [UInt8] = []
    /// Bound on the bytes of waiting requests (besides `maxPending` requests).
    public static let maxPendingBytes = 64 << 20
    var liveBytes = 0

    mutating func keep(_ line: UnsafeRawBufferPointer) -> (Int, Int) {
        if arena.count > 8 << 20 && arena.count > liveBytes * 2 { compactArena() }
        let offset = arena.count
        arena.append(contentsOf: line.bindMemory(to: UInt8.self))
        liveBytes += line.count
        return (offset, line.count)
    }

    mutating func release(_ p: Pending) { liveBytes -= p.length }

    mutating func compactArena() {
        var fresh = [UInt8]()
        fresh.reserveCapacity(max(liveBytes * 2, 1 << 20))
        for (rid, p) in pending {
            let offset = fresh.count
            fresh.append(contentsOf: arena[p.offset..<(p.offset + p.length)])
            pending[rid] = Pending(line: p.line, offset: offset, length: p.length, input: p.input)
        }
        arena = fresh
    }

    /// The bytes every event id of this instance starts its hash with.
    let idPrefix: [UInt8]

    static func parseTime(_ text: String) -> EventTime? {
        var t = text
        return t.withUTF8 { EventTime(rfc3339UTF8: $0) }
    }

    public init(sourceKind: String = "vault", instance: String = "default", maxPending: Int = 50_000) {
        self.sourceKind = sourceKind
        self.instance = instance
        self.idPrefix = EventID.prefix(instance: instance)
        self.maxPending = max(1, maxPending)
    }

    public var pendingCount: Int { pending.count }

    // MARK: - Records as read from a line (only the fields Custos keeps)

    struct Auth: Sendable {
        var accessor: String?
        var displayName: String?
        var entityID: String?
        var policies: [String] = []
        var tokenPolicies: [String] = []
        var identityPolicies: [String] = []
        var tokenType: String?
        var allowed: Bool?
        /// Selected metadata keys only, used to infer the kind of identity.
        var metaRole: String?
        var metaHints: Set<String> = []
        var isEmpty: Bool { accessor == nil && displayName == nil && entityID == nil && policies.isEmpty && tokenPolicies.isEmpty }
    }

    struct Request: Sendable {
        var id: String?
        var operation: String?
        var mountType: String?
        var mountPoint: String?
        var path: String?
        var namespacePath: String?
        var remoteAddress: String?
        var remotePort: Int?
    }

    struct Record: Sendable {
        var time: String?
        var type: String?
        var auth = Auth()
        var request = Request()
        var responseAuth: Auth?
        var responseMountType: String?
        var error: String?
    }

    // MARK: - Decoding

    /// Decodes one line (without its newline). Blank lines are skipped silently.
    public mutating func decode(line: UnsafeRawBufferPointer, lineNumber: Int, into out: inout [DecodeOutput]) {
        var isBlank = true
        for b in line where !(b == 0x20 || b == 0x09 || b == 0x0D) { isBlank = false; break }
        if isBlank { return }
        guard line.count <= Self.maxLineBytes else {
            out.append(.rejected(.init(line: lineNumber, reason: "line longer than \(Self.maxLineBytes) bytes")))
            return
        }
        let record: Record
        // Request lines are only held until their response (which repeats everything they
        // say) arrives: read just enough of them to pair them.
        let light = Self.looksLikeRequest(line)
        do {
            record = try Self.parse(line, light: light)
        } catch let f as JSONScanner.Failure {
            out.append(.rejected(.init(line: lineNumber, reason: "invalid JSON: \(f.description)")))
            return
        } catch let e as EventCodingError {
            out.append(.rejected(.init(line: lineNumber, reason: e.reason)))
            return
        } catch {
            out.append(.rejected(.init(line: lineNumber, reason: "invalid record")))
            return
        }
        switch record.type {
        case "request":
            // Checked here, not only when the request is emitted: a bad request line is
            // reported at its own line even when its response arrives.
            guard let t = record.time, Self.parseTime(t) != nil else {
                out.append(.rejected(.init(line: lineNumber, reason: record.time == nil ? "missing \"time\"" : "\"time\" is not RFC 3339")))
                return
            }
            guard let rid = record.request.id, !rid.isEmpty else {
                // Without a request id it cannot be paired; its response line records the access.
                out.append(.ignored(line: lineNumber, reason: "request record without request.id (its response records the access)"))
                return
            }
            if pending[rid] == nil {
                pendingOrder.append(rid)
            }
            if let old = pending[rid] { release(old) }
            let (offset, length) = keep(line)
            pending[rid] = Pending(line: lineNumber, offset: offset, length: length, input: input)
            while pending.count > maxPending || (liveBytes > Self.maxPendingBytes && pending.count > 1) { evictOldest(into: &out) }
            compactOrder()
        case "response":
            if let rid = record.request.id, let p = pending.removeValue(forKey: rid) { release(p) }
            emit(record, line: lineNumber, raw: line, responded: true, into: &out)
        default:
            out.append(.rejected(.init(line: lineNumber, reason: "\"type\" must be \"request\" or \"response\"")))
        }
    }

    public mutating func decode(line: [UInt8], lineNumber: Int, into out: inout [DecodeOutput]) {
        line.withUnsafeBytes { decode(line: $0, lineNumber: lineNumber, into: &out) }
    }

    /// Emits every request still waiting for its response (end of input).
    public mutating func finish(into out: inout [DecodeOutput]) {
        while !pending.isEmpty { evictOldest(into: &out) }
        pendingOrder.removeAll(); pendingOrderHead = 0
        arena.removeAll(); liveBytes = 0
    }

    mutating func evictOldest(into out: inout [DecodeOutput]) {
        while pendingOrderHead < pendingOrder.count {
            let rid = pendingOrder[pendingOrderHead]
            pendingOrderHead += 1
            if let p = pending.removeValue(forKey: rid) {
                do {
                    release(p)
                    let record = try arena.withUnsafeBytes {
                        try Self.parse(UnsafeRawBufferPointer(rebasing: $0[p.offset..<(p.offset + p.length)]), light: false)
                    }
                    emit(record, line: p.line, raw: nil, responded: false, into: &out)
                } catch let f as JSONScanner.Failure {
                    out.append(.rejected(.init(line: p.line, reason: "invalid JSON: \(f.description)", input: p.input)))
                } catch {
                    out.append(.rejected(.init(line: p.line, reason: "invalid record", input: p.input)))
                }
                return
            }
        }
    }

    mutating func compactOrder() {
        if pendingOrderHead > 4096 && pendingOrderHead * 2 > pendingOrder.count {
            pendingOrder.removeFirst(pendingOrderHead)
            pendingOrderHead = 0
            // Drop ids already answered.
            if pendingOrder.count > pending.count * 2 + 1024 {
                pendingOrder = pendingOrder.filter { pending[$0] != nil }
            }
        }
    }

    /// Vault writes `{"time":"…","type":"request",…`: a cheap look at the first bytes.
    static func looksLikeRequest(_ line: UnsafeRawBufferPointer) -> Bool {
        let needle: StaticString = "\"type\":\"request\""
        let n = needle.utf8CodeUnitCount
        let limit = min(line.count, 96)
        guard limit >= n else { return false }
        let p = needle.utf8Start
        var i = 0
        while i + n <= limit {
            if line[i] == 0x22 && line[i + 1] == 0x74 {
                var k = 0
                while k < n && line[i + k] == p[k] { k += 1 }
                if k == n { return true }
            }
            i += 1
        }
        return false
    }

    /// Parses a record. `light` reads only what pairing needs (time, type, request.id, error)
    /// and skips the rest, still checking that the whole line is valid JSON.
    static func parse(_ line: UnsafeRawBufferPointer, light: Bool = false) throws -> Record {
        var s = JSONScanner(line)
        var r = Record()
        guard s.peek() == 0x7B else { throw s.fail("expected a JSON object") }
        try s.readObject { (s: inout JSONScanner, k: JSONScanner.Key) throws(JSONScanner.Failure) in
            if k.equals("time") { r.time = try s.readStringOrNull() }
            else if k.equals("type") { r.type = try s.readStringOrNull() }
            else if k.equals("auth") { if !s.isNull() { if light { try s.skipValue() } else { r.auth = try parseAuth(&s) } } }
            else if k.equals("request") {
                if s.isNull() { return }
                if light {
                    try s.readObject { (s: inout JSONScanner, k: JSONScanner.Key) throws(JSONScanner.Failure) in
                        if k.equals("id") { r.request.id = try bounded(&s) } else { try s.skipValue() }
                    }
                } else {
                    r.request = try parseRequest(&s)
                }
            }
            else if k.equals("response") { if !s.isNull() { if light { try s.skipValue() } else { try parseResponse(&s, into: &r) } } }
            else if k.equals("error") { r.error = try s.readStringOrNull() }
            else { try s.skipValue() }
        }
        try s.expectEnd()
        if light && r.type != "request" { return try parse(line, light: false) }
        return r
    }

    static func bounded(_ s: inout JSONScanner) throws(JSONScanner.Failure) -> String? {
        guard let v = try s.readStringOrNull() else { return nil }
        guard v.utf8.count <= maxFieldBytes else { throw s.fail("field longer than \(maxFieldBytes) bytes") }
        return v
    }

    static func parseAuth(_ s: inout JSONScanner) throws(JSONScanner.Failure) -> Auth {
        var a = Auth()
        try s.readObject { (s: inout JSONScanner, k: JSONScanner.Key) throws(JSONScanner.Failure) in
            if k.equals("accessor") { a.accessor = try bounded(&s) }
            else if k.equals("display_name") { a.displayName = try bounded(&s) }
            else if k.equals("entity_id") { a.entityID = try bounded(&s) }
            else if k.equals("policies") { a.policies = try s.readStringArray(limit: 256) }
            else if k.equals("token_policies") { a.tokenPolicies = try s.readStringArray(limit: 256) }
            else if k.equals("identity_policies") { a.identityPolicies = try s.readStringArray(limit: 256) }
            else if k.equals("token_type") { a.tokenType = try bounded(&s) }
            else if k.equals("policy_results") {
                if s.isNull() { return }
                try s.readObject { (s: inout JSONScanner, k: JSONScanner.Key) throws(JSONScanner.Failure) in
                    if k.equals("allowed") { a.allowed = try s.readBool() } else { try s.skipValue() }
                }
            }
            else if k.equals("metadata") {
                if s.isNull() { return }
                try s.readObject { (s: inout JSONScanner, k: JSONScanner.Key) throws(JSONScanner.Failure) in
                    let key = k.string
                    if key == "role_name" || key == "role" {
                        if s.peek() == 0x22 { a.metaRole = try bounded(&s) } else { try s.skipValue() }
                    } else {
                        if Self.pipelineHints.contains(key) { a.metaHints.insert(key) }
                        try s.skipValue()
                    }
                }
            }
            else { try s.skipValue() }
        }
        return a
    }

    static let pipelineHints: Set<String> = [
        "repository", "repository_owner", "workflow", "workflow_ref", "job_workflow_ref", "run_id",
        "project_path", "pipeline_id", "ci_config_ref_uri", "namespace_path", "runner_environment",
    ]

    static func parseRequest(_ s: inout JSONScanner) throws(JSONScanner.Failure) -> Request {
        var q = Request()
        try s.readObject { (s: inout JSONScanner, k: JSONScanner.Key) throws(JSONScanner.Failure) in
            if k.equals("id") { q.id = try bounded(&s) }
            else if k.equals("operation") { q.operation = try bounded(&s) }
            else if k.equals("mount_type") { q.mountType = try bounded(&s) }
            else if k.equals("mount_point") { q.mountPoint = try bounded(&s) }
            else if k.equals("path") { q.path = try bounded(&s) }
            else if k.equals("remote_address") { q.remoteAddress = try bounded(&s) }
            else if k.equals("remote_port") {
                if s.isNull() { return }
                let p = try s.readInt()
                guard (0...65535).contains(p) else { throw s.fail("remote_port out of range") }
                q.remotePort = Int(p)
            }
            else if k.equals("namespace") {
                if s.isNull() { return }
                try s.readObject { (s: inout JSONScanner, k: JSONScanner.Key) throws(JSONScanner.Failure) in
                    if k.equals("path") { q.namespacePath = try bounded(&s) } else { try s.skipValue() }
                }
            }
            else { try s.skipValue() }   // data, headers, client_token, ...: never read
        }
        return q
    }

    static func parseResponse(_ s: inout JSONScanner, into r: inout Record) throws(JSONScanner.Failure) {
        try s.readObject { (s: inout JSONScanner, k: JSONScanner.Key) throws(JSONScanner.Failure) in
            if k.equals("auth") { if !s.isNull() { r.responseAuth = try parseAuth(&s) } }
            else if k.equals("mount_type") { r.responseMountType = try bounded(&s) }
            else { try s.skipValue() }   // data, secret, wrap_info, headers: never read
        }
    }

    // MARK: - Records to events

    mutating func emit(_ r: Record, line: Int, raw: UnsafeRawBufferPointer?, responded: Bool, into out: inout [DecodeOutput]) {
        guard let timeText = r.time, let time = Self.parseTime(timeText) else {
            out.append(.rejected(.init(line: line, reason: r.time == nil ? "missing \"time\"" : "\"time\" is not RFC 3339")))
            return
        }
        let path = Self.redactCredentialInPath(r.request.path ?? "")
        let (outcome, reason) = Self.outcome(r, responded: responded)
        let classified = Self.classify(path: path, operation: r.request.operation ?? "", outcome: outcome)
        guard let action = classified.action else {
            out.append(.ignored(line: line, reason: classified.ignoreReason ?? "not an access"))
            return
        }
        let isLogin = action == .login
        // A login's identity is the one it produced (response.auth); otherwise the caller's.
        let auth: Auth = (isLogin && r.responseAuth.map { !$0.isEmpty } == true) ? r.responseAuth! : r.auth
        let identity = Self.identity(auth, loginMountType: isLogin ? (r.request.mountType ?? r.responseMountType) : nil,
                                     loginPath: isLogin ? path : nil)

        var secret: AccessEvent.Secret?
        if !path.isEmpty {
            let store = r.request.mountPoint.flatMap { $0.isEmpty ? nil : $0 }
                ?? path.split(separator: "/", maxSplits: 1).first.map { $0 + "/" }
            let ns = r.request.namespacePath.flatMap { $0.isEmpty ? nil : $0 }
            secret = .init(store: store, path: path, environment: EnvironmentGuess.from(path: path), namespace: ns)
        }
        let origin = r.request.remoteAddress.flatMap { Self.origin($0, port: r.request.remotePort) }
        let id: String
        if let rid = r.request.id, !rid.isEmpty {
            var key = rid
            id = key.withUTF8 { EventID.make(prefix: idPrefix, key: UnsafeRawBufferPointer($0)) }
        } else if let raw {
            id = EventID.make(instance: instance, key: raw)
        } else {
            id = EventID.make(instance: instance, key: "line \(line) \(timeText)")
        }
        let event = AccessEvent(
            id: id, time: time, source: .init(kind: sourceKind, instance: instance), action: action,
            outcome: outcome, reason: reason, secret: secret, identity: identity, origin: origin,
            requestID: r.request.id.flatMap { $0.isEmpty ? nil : $0 })
        // The trail refuses larger entries (and would stop the whole ingest): reject the line.
        guard event.encodedSizeBound <= AccessEvent.maxEncodedSize || event.canonicalJSON().count <= AccessEvent.maxEncodedSize else {
            out.append(.rejected(.init(line: line, reason: "event would encode to more than \(AccessEvent.maxEncodedSize) bytes")))
            return
        }
        out.append(.event(event, line: line))
    }

    static func outcome(_ r: Record, responded: Bool) -> (Outcome, String?) {
        if let e = r.error, !e.isEmpty {
            let lower = e.lowercased()
            if lower.contains("permission denied") {
                // A token Vault does not know leaves only `auth: {"token_type": "default"}`.
                if r.auth.isEmpty && !(r.request.path ?? "").hasPrefix("auth/") { return (.denied, "invalid or missing token") }
                return (.denied, "permission denied")
            }
            if lower.contains("invalid token") || lower.contains("bad token") { return (.denied, "invalid token") }
            if lower.contains("missing client token") { return (.denied, "missing client token") }
            if r.auth.allowed == false { return (.denied, "permission denied") }
            if lower.contains("unsupported path") || lower.contains("no handler for route") { return (.error, "unsupported path") }
            if lower.contains("unsupported operation") { return (.error, "unsupported operation") }
            if lower.contains("invalid request") { return (.error, "invalid request") }
            if lower.contains("rate limit") || lower.contains("quota exceeded") { return (.error, "rate limited") }
            if lower.contains("not found") || lower.contains("no value found") { return (.error, "not found") }
            if lower.contains("invalid credentials") || lower.contains("invalid username or password")
                || lower.contains("invalid role or secret id") || lower.contains("invalid secret id")
                || lower.contains("invalid role id") { return (.denied, "invalid credentials") }
            if lower.contains("internal error") { return (.error, "internal error") }
            return (.error, "error (details withheld: the source's error text is not copied)")
        }
        if r.auth.allowed == false { return (.denied, "permission denied") }
        if !responded { return (.error, "no response logged") }
        return (.success, nil)
    }

    /// Paths that are not secret accesses when they succeed: the UI's mount look-ups and the
    /// CLI's routine self look-ups. A denied one is kept (it may be probing).
    static let routineSelfPaths: Set<String> = [
        "auth/token/lookup-self", "sys/capabilities-self", "sys/health", "sys/seal-status",
        "sys/leader", "sys/internal/counters/activity/monthly", "sys/mounts", "sys/auth",
    ]

    /// Whether `path` starts with `sys/` or `auth/` (the only paths with special meaning).
    static func isSystemOrAuth(_ path: String) -> Bool {
        var p = path
        return p.withUTF8 { u in
            (u.count >= 4 && u[0] == 0x73 && u[1] == 0x79 && u[2] == 0x73 && u[3] == 0x2F)
                || (u.count >= 5 && u[0] == 0x61 && u[1] == 0x75 && u[2] == 0x74 && u[3] == 0x68 && u[4] == 0x2F)
        }
    }

    static func classify(path: String, operation: String, outcome: Outcome) -> (action: Action?, ignoreReason: String?) {
        if !isSystemOrAuth(path) {
            // Secret engines: the operation says it all.
            switch operation {
            case "read": return (.read, nil)
            case "list": return (.list, nil)
            case "create", "update", "patch": return (.write, nil)
            case "delete": return (.delete, nil)
            default: break
            }
        }
        if path == "sys/audit/test" { return (nil, "audit device self-test") }
        if path.hasPrefix("sys/internal/ui/") { return (nil, "UI look-up (\(path.split(separator: "/").prefix(4).joined(separator: "/")))") }
        if routineSelfPaths.contains(path) && outcome == .success
            && (operation == "read" || operation == "list" || (path == "sys/capabilities-self" && operation == "update")) {
            return (nil, "routine self look-up")
        }
        switch operation {
        case "help", "alias-lookahead", "header", "resolve-role", "rollback", "periodic", "renew":
            if operation == "renew" { break }
            return (nil, "non-access operation \(operation)")
        default: break
        }
        let write = operation == "create" || operation == "update" || operation == "patch" || operation == "delete"
        let segs = path.split(separator: "/", omittingEmptySubsequences: false)
        if segs.first == "auth", segs.count >= 3 {
            let rest = segs.dropFirst(2)
            if rest.first?.hasPrefix("login") == true || path.hasSuffix("/oidc/callback") || path.hasSuffix("/callback") {
                return (.login, nil)
            }
            if segs[1] == "token" {
                if rest.first?.hasPrefix("create") == true { return (.tokenCreate, nil) }
                if rest.first?.hasPrefix("revoke") == true { return (.tokenRevoke, nil) }
            }
            if write { return (.authChange, nil) }
        }
        if segs.first == "sys", segs.count >= 2 {
            if segs[1] == "policy" || segs[1] == "policies" {
                if write { return (.policyChange, nil) }
            } else if segs[1] == "audit" {
                if write { return (.auditChange, nil) }
            } else if segs[1] == "auth" {
                if write { return (.authChange, nil) }
            } else if write {
                return (.admin, nil)
            }
        }
        switch operation {
        case "read": return (.read, nil)
        case "list": return (.list, nil)
        case "create", "update", "patch": return (.write, nil)
        case "delete": return (.delete, nil)
        case "renew": return (Action("renew"), nil)
        case "": return (Action("unknown"), nil)
        default: return (Action(operation), nil)
        }
    }

    static let humanMethods: Set<String> = ["userpass", "ldap", "oidc", "okta", "radius", "github", "saml"]
    static let serviceMethods: Set<String> = ["approle", "kubernetes", "cert", "aws", "gcp", "azure", "alicloud", "oci", "cf", "kerberos"]

    static func identity(_ a: Auth, loginMountType: String?, loginPath: String?) -> AccessEvent.Identity {
        var policies = a.policies.isEmpty ? a.tokenPolicies : a.policies
        for p in a.identityPolicies where !policies.contains(p) { policies.append(p) }
        let name = a.displayName.flatMap { $0.isEmpty ? nil : $0 }
        let id = a.entityID.flatMap { $0.isEmpty ? nil : $0 } ?? a.accessor.flatMap { $0.isEmpty ? nil : $0 }
        if name == nil && id == nil && policies.isEmpty {
            // Unauthenticated (`auth: {"token_type": "default"}` or none) or a failed login.
            var method: String?
            if let lp = loginPath { method = loginMountType ?? lp.split(separator: "/").dropFirst().first.map(String.init) }
            return .init(id: nil, name: nil, kind: .unknown, method: method, policies: [])
        }
        // Method: the login's mount type, else the display-name prefix (Vault prefixes
        // display names with the auth mount path: userpass-alice, approle, oidc-..., token-...).
        var method = loginMountType
        if method == nil, let n = name {
            if n == "root" { method = "token" }
            else {
                let prefix = n.split(separator: "-", maxSplits: 1).first.map(String.init) ?? n
                method = prefix.isEmpty ? nil : prefix
            }
        }
        let kind: IdentityKind
        if policies.contains("root") || name == "root" {
            kind = .root
        } else if let m = method, humanMethods.contains(m) {
            kind = .human
        } else if let m = method, serviceMethods.contains(m) {
            kind = .service
        } else if method == "jwt" || method == "github-actions" || method == "gitlab" {
            let role = a.metaRole?.lowercased() ?? ""
            kind = (!a.metaHints.isEmpty || role.contains("ci") || role.contains("pipeline") || role.contains("github") || role.contains("gitlab")) ? .pipeline : .service
        } else if method == "token" {
            kind = .api_key
        } else {
            kind = .unknown
        }
        return .init(id: id, name: name, kind: kind, method: method, policies: policies)
    }

    /// Token endpoints that also accept the token or accessor itself as the last path
    /// segment (`auth/token/lookup/<token>`): that segment is a credential and never kept.
    static let credentialPathPrefixes = [
        "auth/token/lookup/", "auth/token/revoke/", "auth/token/revoke-orphan/", "auth/token/renew/",
        "auth/token/lookup-accessor/", "auth/token/revoke-accessor/", "auth/token/renew-accessor/",
        "sys/wrapping/unwrap/", "sys/wrapping/lookup/", "sys/wrapping/rewrap/",
    ]

    static func redactCredentialInPath(_ path: String) -> String {
        guard path.hasPrefix("auth/token/") || path.hasPrefix("sys/wrapping/") else { return path }
        for prefix in credentialPathPrefixes where path.hasPrefix(prefix) && path.utf8.count > prefix.utf8.count {
            return prefix + "<redacted>"
        }
        return path
    }

    /// `ip`, `ip:port`, `[v6]:port` or a bare IPv6 address; nil when it is none of these.
    static func origin(_ address: String, port explicitPort: Int?) -> AccessEvent.Origin? {
        if isDottedQuad(address.utf8) { return .init(ip: address, port: explicitPort) }   // the common case, cheaply
        var host = Substring(address)
        var port: Int? = nil
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return nil }
            let after = host[host.index(after: close)...]
            host = host[host.index(after: host.startIndex)..<close]
            if after.hasPrefix(":") { port = Int(after.dropFirst()) ; if port == nil { return nil } }
            else if !after.isEmpty { return nil }
        } else if host.filter({ $0 == ":" }).count == 1, let colon = host.firstIndex(of: ":") {
            guard let p = Int(host[host.index(after: colon)...]) else { return nil }
            port = p
            host = host[..<colon]
        }
        guard !host.isEmpty, host.utf8.count <= 64, isIPAddress(host) else { return nil }
        if let p = port, !(0...65535).contains(p) { return nil }
        return .init(ip: String(host), port: explicitPort ?? port)
    }

    /// Dotted-quad IPv4, or IPv6 text (ASCII hex digits, `:`, `.`, optional `%zone`).
    /// `a.b.c.d` with each part 0...255 written in 1–3 digits.
    static func isDottedQuad(_ u: some Collection<UInt8>) -> Bool {
        guard u.count >= 7 && u.count <= 15 else { return false }
        var parts = 0, digits = 0, value = 0
        for c in u {
            if c == 0x2E {
                guard digits > 0 else { return false }
                parts += 1; digits = 0; value = 0
            } else if c >= 0x30 && c <= 0x39 {
                digits += 1; value = value * 10 + Int(c - 0x30)
                guard digits <= 3, value <= 255 else { return false }
            } else {
                return false
            }
        }
        return parts == 3 && digits > 0
    }

    static func isIPAddress(_ host: Substring) -> Bool {
        func isDigit(_ c: Character) -> Bool { c >= "0" && c <= "9" }
        if host.contains(":") {
            var addr = host
            if let pct = host.firstIndex(of: "%") {
                let zone = host[host.index(after: pct)...]
                guard !zone.isEmpty, zone.allSatisfy({ $0.isASCII && ($0.isLetter || isDigit($0) || $0 == "." || $0 == "_" || $0 == "-") }) else { return false }
                addr = host[..<pct]
            }
            return addr.allSatisfy { $0.isASCII && ($0.isHexDigit || $0 == ":" || $0 == ".") }
        }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { p in
            (1...3).contains(p.count) && p.allSatisfy(isDigit) && Int(p).map { $0 <= 255 } == true
        }
    }
}
