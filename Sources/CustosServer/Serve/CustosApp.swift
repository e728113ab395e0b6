import CustosAlerting
import CustosCore
import CustosStore
import CustosTrail
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle

/// The state `custos serve` shares between requests: the data store behind its group
/// committer, the API tokens, the metrics and the detector.
public final class ServeState: @unchecked Sendable {
    public let config: ServeConfig
    public let store: DataStore
    public let committer: GroupCommitter
    public let tokens: TokenStore
    /// ID-token issuers trusted for ingest (`oidc:`; none: bearer JWTs are not accepted).
    public let oidc: OIDCKeyring
    public let metrics = ServeMetrics()
    let lock = NSLock()
    private var pendingEvents = 0
    private var oldestPending: Date?
    private var lastCommitFailed: String?

    public let detector: Detector?
    /// The policy (playbooks, owners' escalation chains, scopes for `GET /v1/blast-radius`),
    /// when one is loaded: the one given, else the detector's, read once here (the detector
    /// itself belongs to the commit thread).
    public let policy: Policy?

    /// `beforeCommit` and `beforeIndex` are test hooks (see `GroupCommitter`).
    /// `onAlerts` gets the alerts each commit recorded (on the commit thread; hand them off).
    public init(config: ServeConfig, store: DataStore, tokens: TokenStore, detector: Detector? = nil, policy: Policy? = nil,
                beforeCommit: (@Sendable (Int) -> Void)? = nil, onAlerts: (@Sendable ([Alert]) -> Void)? = nil,
                beforeIndex: (@Sendable () throws -> Void)? = nil) {
        self.config = config
        self.detector = detector
        self.policy = policy ?? detector?.policy
        self.store = store
        self.tokens = tokens
        self.oidc = OIDCKeyring(issuers: config.oidc)
        let metrics = self.metrics
        self.committer = GroupCommitter(store: store, maxBatch: config.limits.maxBatch, linger: .milliseconds(config.limits.commitLingerMs), beforeCommit: beforeCommit, detector: detector,
                                        onAlerts: { alerts in
                                            for a in alerts where a.status == .raised { metrics.alert(a.alertClass) }
                                            onAlerts?(alerts)
                                        }, beforeIndex: beforeIndex)
        metrics.setTrailSize(store.trail.size)
    }

    /// Reserves room for `n` events in the commit queue, or nil when it is full.
    func reserve(_ n: Int) -> Bool {
        lock.withLock {
            guard pendingEvents == 0 || pendingEvents + n <= config.limits.maxPendingEvents else { return false }
            if pendingEvents == 0 { oldestPending = Date() }
            pendingEvents += n
            metrics.setQueue(pendingEvents)
            return true
        }
    }

    func release(_ n: Int, failure: String?) {
        lock.withLock {
            pendingEvents -= n
            if pendingEvents == 0 { oldestPending = nil }
            lastCommitFailed = failure
            metrics.setQueue(pendingEvents)
        }
        if failure == nil { metrics.committed(trailSize: store.trailSizeForMetrics) }
    }

    /// How a listener without a per-request answer (syslog, file tail; the socket device's
    /// reads go through `CommitPipeline`) commits: it waits, reading nothing more, until the commit queue has room, then waits
    /// for the durable commit and counts it under `source`.
    @discardableResult
    func commitFromListener(_ events: [AccessEvent], source: String) async throws -> DataStore.AppendResult {
        while !reserve(events.count) { try await Task.sleep(for: .milliseconds(20)) }
        do {
            let r = try await committer.append(events)
            release(events.count, failure: nil)
            metrics.accepted(source, r.accepted, duplicates: r.duplicates)
            return r
        } catch {
            release(events.count, failure: "\(error)")
            throw error
        }
    }

    /// Nil when ready, else why not.
    public func notReady() -> String? {
        lock.withLock {
            if let f = lastCommitFailed { return "the last commit failed: \(f)" }
            if let f = committer.indexFailure { return "the index stopped following the trail (\(f)); restart to rebuild it" }
            if let o = oldestPending, Date().timeIntervalSince(o) > Double(config.maxCommitAge) {
                return "events have waited more than \(config.maxCommitAge) s for a durable commit"
            }
            return nil
        }
    }
}

extension DataStore {
    var trailSizeForMetrics: UInt64 { trail.size }
}

/// Builds the HTTP application of `custos serve` (README "custos serve" lists the routes).
/// `tls` (from `TLSFiles.serverConfiguration`) serves HTTPS instead of HTTP.
public func buildApplication(state: ServeState, services: [any Service] = [], logger: Logger? = nil,
                             tls: TLSConfiguration? = nil) throws -> some ApplicationProtocol {
    let router = buildRouter(state: state)
    let c = state.config
    // Header limits well above what any client of this API sends (a token is < 100 bytes).
    let http1 = HTTPServerBuilder.http1(configuration: .init(
        idleTimeout: .seconds(c.limits.idleTimeout),
        httpDecoderConfiguration: .init(maxHeaderFieldSize: 16 << 10, maxHeaderListSize: 64 << 10, maxHeaderFieldCount: 100)))
    return Application(
        router: router,
        server: try tls.map { try HTTPServerBuilder.tls(http1, tlsConfiguration: $0) } ?? http1,
        configuration: .init(address: .hostname(c.host, port: c.port), serverName: "custos",
                             availableConnectionsDelegate: MaximumAvailableConnections(c.limits.maxConnections)),
        services: services,
        logger: logger)
}

/// The request context of `custos serve`: Hummingbird's basic one plus the peer's address
/// (the runner address stamped on events ingested with an OIDC token).
public struct ServeRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?
    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
    }
}

/// The routes of `custos serve`; openapi.yaml documents each (OpenAPITests checks both ways).
public func buildRouter(state: ServeState) -> Router<ServeRequestContext> {
    let router = Router(context: ServeRequestContext.self)
    let api = ServeAPI(state: state)
    router.get("/openapi.yaml") { _, _ in Response.text(OpenAPIDocument.yaml + "\n", contentType: "application/yaml") }
    router.get("/healthz") { _, _ in Response.text("ok\n") }
    router.get("/readyz") { _, _ in
        if let why = state.notReady() { return Response.text("not ready: \(why)\n", status: .serviceUnavailable) }
        return Response.text("ready\n")
    }
    router.get("/metrics") { req, _ in
        try api.authorize(req, [.auditor, .admin])
        return Response.text(state.metrics.exposition(), contentType: "text/plain; version=0.0.4")
    }
    router.post("/v1/ingest") { req, ctx in try await api.ingest(req, peer: ctx.remoteAddress) }
    router.get("/v1/events") { req, _ in try await api.events(req) }
    router.get("/v1/alerts") { req, _ in try await api.alerts(req) }
    router.get("/v1/evidence") { req, _ in try await api.evidence(req) }
    router.get("/v1/blast-radius") { req, _ in try await api.blastRadius(req) }
    router.post("/v1/silences") { req, _ in try await api.silence(req) }
    router.get("/v1/incidents") { req, _ in try await api.incidents(req) }
    router.get("/v1/incidents/:id") { req, ctx in try await api.incident(req, id: ctx.parameters.get("id") ?? "") }
    router.post("/v1/incidents/:id/steps") { req, ctx in try await api.incidentStep(req, id: ctx.parameters.get("id") ?? "") }
    router.get("/trail/checkpoint") { req, _ in try api.trailFile(req, ["checkpoint"]) }
    router.get("/trail/pruned") { req, _ in try api.trailFile(req, ["pruned"]) }
    router.get("/trail/tile/**") { req, ctx in try api.trailFile(req, ["tile"] + ctx.parameters.getCatchAll().map(String.init)) }
    return router
}

extension Response {
    static func text(_ s: String, status: HTTPResponse.Status = .ok, contentType: String = "text/plain; charset=utf-8") -> Response {
        Response(status: status, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(string: s)))
    }
    static func json(_ bytes: [UInt8], status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}

/// An API error: status and a message for the client (never a secret or a record's content).
struct APIError: HTTPResponseError {
    var status: HTTPResponse.Status
    var message: String
    var headers: HTTPFields = [:]
    func response(from request: Request, context: some RequestContext) throws -> Response {
        var r = Response.json(Array("{\"error\":\(JSONText.quote(message))}\n".utf8), status: status)
        for f in headers { r.headers.append(f) }
        return r
    }
}

enum JSONText {
    static func quote(_ s: String) -> String {
        var w = CanonicalWriter()
        w.string(s)
        return String(decoding: w.bytes, as: UTF8.self)
    }
}

struct ServeAPI: Sendable {
    let state: ServeState

    /// Who is calling: an API token's role and name, or an OIDC ID token (role ingest only)
    /// with its verified claims.
    struct Caller: Sendable {
        var role: Role
        var name: String
        var oidc: OIDCToken?
    }

    /// The caller's role, which must be one of `allowed`: 401 without a valid token, 403
    /// with a token of another role.
    @discardableResult
    func authorize(_ req: Request, _ allowed: Set<Role>) throws -> (Role, String) {
        let c = try authenticate(req, allowed)
        return (c.role, c.name)
    }

    /// An API token (compared by hash with every stored one) or, when issuers are configured
    /// (`oidc:`), an ID token in JWS form, verified by `OIDCVerifier`: a valid one has the
    /// ingest role and no other; an invalid one is answered 401 with the reason.
    func authenticate(_ req: Request, _ allowed: Set<Role>) throws -> Caller {
        let challenge: HTTPFields = [.wwwAuthenticate: "Bearer realm=\"custos\""]
        let missing = APIError(status: .unauthorized, message: "a valid API token is required (Authorization: Bearer <token>)", headers: challenge)
        guard let h = req.headers[.authorization], h.utf8.count <= OIDCVerifier.maxTokenBytes + 64, h.lowercased().hasPrefix("bearer ") else {
            state.metrics.authFailure()
            throw missing
        }
        let presented = String(h.dropFirst(7)).trimmingCharacters(in: .whitespaces)
        let caller: Caller
        if h.count <= 4096, let who = state.tokens.role(of: presented) {
            caller = Caller(role: who.0, name: who.1, oidc: nil)
        } else if !state.config.oidc.isEmpty, OIDCVerifier.looksLikeJWT(presented) {
            switch state.oidc.verify(presented) {
            case .success(let t):
                state.metrics.oidc(nil)
                caller = Caller(role: .ingest, name: "oidc:" + (t.string("repository") ?? t.subject ?? t.issuer), oidc: t)
            case .failure(let refusal):
                state.metrics.oidc(refusal.code)
                state.metrics.authFailure()
                throw APIError(status: .unauthorized, message: "the OIDC token is refused: \(refusal.reason)",
                               headers: [.wwwAuthenticate: "Bearer realm=\"custos\", error=\"invalid_token\""])
            }
        } else {
            state.metrics.authFailure()
            throw missing
        }
        guard allowed.contains(caller.role) else {
            state.metrics.authFailure()
            let how = caller.oidc == nil ? "" : " (an OIDC token is an ingest credential only)"
            throw APIError(status: .forbidden, message: "the \(caller.role.rawValue) role may not do this (needs \(allowed.map(\.rawValue).sorted().joined(separator: " or ")))\(how)")
        }
        return caller
    }

    func collect(_ req: Request) async throws -> [UInt8] {
        let limit = state.config.limits.maxBodyBytes
        // Straight into one array sized by Content-Length (never beyond the limit): one copy
        // of each received chunk, no regrowth of an intermediate buffer.
        var bytes: [UInt8] = []
        if let declared = req.headers[.contentLength].flatMap({ Int($0) }) {
            guard declared <= limit else {
                throw APIError(status: .contentTooLarge, message: "the body is larger than \(limit) bytes (limits.max_body_bytes)")
            }
            bytes.reserveCapacity(declared)
        }
        for try await chunk in req.body {
            guard bytes.count + chunk.readableBytes <= limit else {
                throw APIError(status: .contentTooLarge, message: "the body is larger than \(limit) bytes (limits.max_body_bytes)")
            }
            chunk.withUnsafeReadableBytes { bytes.append(contentsOf: $0) }
        }
        switch req.headers[.contentEncoding]?.lowercased() {
        case nil, "identity": return bytes
        case "gzip", "x-gzip":
            // Decompressed in Swift (no zlib), bounded by the same limit as a plain body.
            do { return try Gzip.decompress(bytes, maxOutput: limit) } catch {
                throw APIError(status: error.reason.contains("exceeds") ? .contentTooLarge : .badRequest,
                               message: "the gzip body cannot be decompressed: \(error.description) (limits.max_body_bytes is \(limit))")
            }
        case let other?:
            throw APIError(status: .unsupportedMediaType, message: "Content-Encoding \(other.prefix(40)) is not supported (identity or gzip)")
        }
    }

    // MARK: Ingest

    func ingest(_ req: Request, peer: SocketAddress? = nil) async throws -> Response {
        let caller = try authenticate(req, [.ingest])
        let q = req.uri.queryParameters
        let formatName = q.get("format") ?? "auto"
        guard let format = WireFormat(rawValue: formatName) else {
            throw APIError(status: .badRequest, message: "format must be one of \(WireFormat.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let instance = q.get("instance") ?? "default"
        guard !instance.isEmpty, instance.utf8.count <= 256 else { throw APIError(status: .badRequest, message: "instance must be 1...256 bytes") }
        let body = try await collect(req)
        // An OIDC caller's events are stamped with the token's claims as they are decoded: the
        // verified token is the truth about the run (GitHubPipeline.stamp has the rule).
        var stamp: ((inout AccessEvent) -> Void)?
        if let token = caller.oidc {
            let p = GitHubPipeline.pipeline(token, runnerIP: peer?.ipAddress)
            stamp = { GitHubPipeline.stamp(&$0, with: p, token: token) }
        }
        let decoded = BodyDecoder(format: format, instance: instance, maxRecordBytes: state.config.limits.maxLineBytes,
                                  batched: true, stamp: stamp).decode(body)
        if let e = decoded.bodyError {
            state.metrics.rejected(format.rawValue, 1)
            throw APIError(status: .badRequest, message: e)
        }
        state.metrics.rejected(format.rawValue, decoded.rejected)
        var result = DataStore.AppendResult(accepted: 0, duplicates: 0, range: 0..<0, indices: [])
        let count = decoded.eventCount
        if count > 0 {
            var batch = decoded.batch
            if !decoded.events.isEmpty { batch.append(contentsOf: GroupCommitter.encode(decoded.events)) }
            guard state.reserve(count) else {
                state.metrics.overloaded()
                throw APIError(status: .serviceUnavailable, message: "the trail is not keeping up: more than \(state.config.limits.maxPendingEvents) events wait for a durable commit; retry later",
                               headers: [.retryAfter: "1"])
            }
            do {
                result = try await state.committer.append(batch: batch)
                state.release(count, failure: nil)
            } catch {
                state.release(count, failure: "\(error)")
                throw APIError(status: .internalServerError, message: "the events could not be made durable (nothing from this request was acknowledged): \(error)")
            }
            state.metrics.accepted(format.rawValue, result.accepted, duplicates: result.duplicates)
        }
        var w = CanonicalWriter()
        w.beginObject()
        w.field("accepted", result.accepted)
        w.field("duplicates", result.duplicates)
        if result.accepted > 0 {
            w.field("first_index", Int(result.range.lowerBound))
            w.field("last_index", Int(result.range.upperBound - 1))
        }
        w.field("ignored", decoded.ignored)
        w.field("records", decoded.records)
        w.field("rejected", decoded.rejected)
        w.key("rejections")
        w.beginArray()
        for r in decoded.rejections {
            w.comma()
            w.beginObject()
            w.field("reason", r.reason)
            w.field("record", r.line)
            w.endObject()
        }
        w.endArray()
        w.field("waiting_requests", decoded.waitingRequests)
        w.endObject()
        w.bytes.append(0x0A)
        return .json(w.bytes)
    }

    // MARK: Reads

    /// The index as of now, once it holds everything acknowledged before this call.
    func reader() async throws -> EventReader {
        try await indexed()
        do { return try EventReader(directory: state.config.data) } catch {
            throw APIError(status: .serviceUnavailable, message: "the trail cannot be read: \(error)")
        }
    }

    /// Waits until every event acknowledged so far is indexed too (the index follows the
    /// trail on its own thread).
    func indexed() async throws {
        do { try await state.committer.waitUntilIndexed() } catch {
            throw APIError(status: .serviceUnavailable, message: "the index stopped following the trail (\(error)); every acknowledged event is in the trail; restart custos serve to rebuild the index from it")
        }
    }

    func time(_ q: Request, _ name: String) throws -> EventTime? {
        guard let s = q.uri.queryParameters.get(name) else { return nil }
        if let t = EventTime(rfc3339: s) { return t }
        if s.utf8.count == 10, let t = EventTime(rfc3339: s + "T00:00:00Z") { return t }
        throw APIError(status: .badRequest, message: "\(name) must be an RFC 3339 time or YYYY-MM-DD")
    }

    func limit(_ req: Request) throws -> Int {
        guard let s = req.uri.queryParameters.get("limit") else { return 1000 }
        guard let n = Int(s), (0...100_000).contains(n) else { throw APIError(status: .badRequest, message: "limit must be 0...100000") }
        return n
    }

    /// Records an auditor's read in the trail (`custos.investigation/v1`) before answering it:
    /// who (the token's name), which role, what was asked (the query parameters), how many results.
    func recordInvestigation(_ who: (Role, String), _ action: InvestigationRecord.Action, _ req: Request, resultCount: Int?,
                             extra: [String: String] = [:], incident: String? = nil) async throws {
        var params: [String: String] = extra
        for (k, v) in req.uri.queryParameters where params.count < 32 {
            let key = String(k.prefix(64)), value = String(v.prefix(1024))
            params[key] = params[key].map { $0 + "," + value } ?? value
        }
        let r = InvestigationRecord(time: EventTime(unixTime: Date().timeIntervalSince1970), actor: who.1, channel: "api:\(who.0.rawValue)",
                                    action: action, parameters: params, resultCount: resultCount, incident: incident)
        do { _ = try await state.committer.appendEntries([.investigation(r)]) } catch {
            throw APIError(status: .serviceUnavailable, message: "the request could not be recorded in the trail, so it is not answered: \(error)")
        }
    }

    /// The event filters of `/v1/events` and `/v1/evidence` (the same as `custos query`).
    func eventQuery(_ req: Request) throws -> EventQuery {
        let p = req.uri.queryParameters
        var q = EventQuery()
        q.secret = p.get("secret")
        q.identity = p.get("identity")
        q.kinds = try p.getAll("kind").map { k in
            guard let v = IdentityKind(rawValue: k) else { throw APIError(status: .badRequest, message: "unknown kind (one of \(IdentityKind.allCases.map(\.rawValue).joined(separator: ", ")))") }
            return v
        }
        q.outcomes = try p.getAll("outcome").map { o in
            guard let v = Outcome(rawValue: o) else { throw APIError(status: .badRequest, message: "outcome must be success, denied or error") }
            return v
        }
        q.environments = p.getAll("env")
        q.actions = p.getAll("action")
        q.from = try time(req, "from")
        q.to = try time(req, "to")
        return q
    }

    func events(_ req: Request) async throws -> Response {
        let who = try authorize(req, [.auditor])
        var q = try eventQuery(req)
        q.limit = try limit(req)
        let rows = try await reader().events(q)
        try await recordInvestigation(who, .query, req, resultCount: rows.count)
        var out = [UInt8]("[".utf8)
        for (i, r) in rows.enumerated() {
            if i > 0 { out.append(contentsOf: Array(",\n".utf8)) }
            out.append(contentsOf: r.event.canonicalJSON(index: r.index))
        }
        out.append(contentsOf: Array("]\n".utf8))
        return .json(out)
    }

    /// `custos evidence` over HTTP: the `custos.evidence/v1` document for a query over a
    /// period (from and to required), recorded as an investigation before it is answered.
    func evidence(_ req: Request) async throws -> Response {
        let who = try authorize(req, [.auditor])
        let q = try eventQuery(req)
        guard let f = q.from, let t = q.to, f < t else {
            throw APIError(status: .badRequest, message: "from and to are required, from before to: evidence is about a period")
        }
        var maxEvents = 1000
        if let s = req.uri.queryParameters.get("max_events") {
            guard let n = Int(s), (0...100_000).contains(n) else { throw APIError(status: .badRequest, message: "max_events must be 0...100000") }
            maxEvents = n
        }
        let report: EvidenceReport
        try await indexed()
        do {
            report = try Evidence.run(directory: state.config.data, verifier: NoteVerifier(vkey: state.store.trail.checkpointVerifierKey),
                                      query: q, maxEvents: maxEvents)
        } catch {
            throw APIError(status: .serviceUnavailable, message: "evidence cannot be gathered: \(error)")
        }
        try await recordInvestigation(who, .evidence, req, resultCount: report.count)
        return .json(report.json(generatedBy: who.1))
    }

    func alerts(_ req: Request) async throws -> Response {
        let who = try authorize(req, [.auditor])
        let p = req.uri.queryParameters
        var q = AlertQuery()
        q.classes = try p.getAll("class").map { c in
            guard let v = AlertClass(rawValue: c) else { throw APIError(status: .badRequest, message: "unknown class (one of \(AlertClass.allCases.map(\.rawValue).joined(separator: ", ")))") }
            return v
        }
        q.owners = p.getAll("owner")
        q.from = try time(req, "from")
        q.to = try time(req, "to")
        q.limit = try limit(req)
        let rows = try await reader().alerts(q)
        try await recordInvestigation(who, .alerts, req, resultCount: rows.count)
        var out = [UInt8]("[".utf8)
        for (i, r) in rows.enumerated() {
            if i > 0 { out.append(contentsOf: Array(",\n".utf8)) }
            out.append(contentsOf: r.alert.canonicalJSON(index: r.index))
        }
        out.append(contentsOf: Array("]\n".utf8))
        return .json(out)
    }

    /// The same JSON as `custos blast-radius --format json` (with the server's policy as
    /// `--policy`, when it has one).
    func blastRadius(_ req: Request) async throws -> Response {
        let who = try authorize(req, [.auditor])
        let p = req.uri.queryParameters
        guard let secret = p.get("secret") else {
            throw APIError(status: .badRequest, message: "secret is required: a secret path or glob (secret=secret/data/prod/*)")
        }
        let from = try time(req, "from"), to = try time(req, "to")
        var limit = BlastRadiusRequest.defaultLimit
        if let s = p.get("limit") {
            guard let n = Int(s), (1...10_000).contains(n) else { throw APIError(status: .badRequest, message: "limit must be 1...10000") }
            limit = n
        }
        let request: BlastRadiusRequest
        do throws(BlastRadiusInputError) { request = try BlastRadiusRequest(secret: secret, from: from, to: to, limit: limit) } catch {
            throw APIError(status: .badRequest, message: error.message)
        }
        let r = try await reader()
        let report: BlastRadiusReport
        do { report = try BlastRadius.compute(request, reader: r, policy: state.policy) } catch {
            throw APIError(status: .serviceUnavailable, message: "the trail cannot be read: \(error)")
        }
        try await recordInvestigation(who, .blastRadius, req, resultCount: report.totals.events)
        return .json(report.json())
    }

    // MARK: Admin

    func silence(_ req: Request) async throws -> Response {
        let (_, who) = try authorize(req, [.admin])
        let body = try await collect(req)
        guard body.count <= 16_384, let o = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
            throw APIError(status: .badRequest, message: "expected a JSON object {reason, expires, class?, identity?, secret?} of at most 16 KiB")
        }
        let allowed: Set<String> = ["reason", "expires", "class", "identity", "secret"]
        if let k = o.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw APIError(status: .badRequest, message: "unknown key \(k.count <= 40 ? k : "(long key)") (expected reason, expires, class, identity, secret)")
        }
        func str(_ k: String) throws -> String? {
            guard let v = o[k] else { return nil }
            guard let s = v as? String, !s.isEmpty, s.utf8.count <= 4096 else { throw APIError(status: .badRequest, message: "\(k) must be a string of 1...4096 bytes") }
            return s
        }
        guard let reason = try str("reason"), let expires = try str("expires") else {
            throw APIError(status: .badRequest, message: "reason and expires are required")
        }
        let cls = try str("class").map { c in
            guard let v = AlertClass(rawValue: c) else { throw APIError(status: .badRequest, message: "unknown class") }
            return v
        }
        let identity = try str("identity"), secret = try str("secret")
        guard cls != nil || identity != nil || secret != nil else {
            throw APIError(status: .badRequest, message: "give at least one of class, identity, secret: a silence of every alert is refused")
        }
        let now = EventTime(unixTime: Date().timeIntervalSince1970)
        let end: EventTime
        if let d = ConfigDuration.parse(expires) {
            guard d > 0, d <= 90 * 86_400 else { throw APIError(status: .badRequest, message: "expires must be more than 0 and at most 90d") }
            end = EventTime(seconds: now.seconds + d, nanos: now.nanos, digits: now.digits)
        } else if let t = EventTime(rfc3339: expires), t > now, t.seconds - now.seconds <= 90 * 86_400 {
            end = t
        } else {
            throw APIError(status: .badRequest, message: "expires must be a duration (30m, 2h, 3d) or an RFC 3339 time within 90 days")
        }
        // The silence's owner is the token's name: who answers for it is who made it.
        let s = Silence(id: Silence.makeID(owner: who, createdAt: now, alertClass: cls, identity: identity, secret: secret),
                        alertClass: cls, identity: identity, secret: secret, owner: who, reason: reason, createdAt: now, expiresAt: end)
        let index = try await state.committer.appendEntries([.silence(s)])
        var bytes = s.canonicalJSON()
        bytes.removeLast()
        bytes.append(contentsOf: Array(",\"index\":\(index.lowerBound)}\n".utf8))
        return .json(bytes, status: .created)
    }

    // MARK: Incidents

    func incidents(_ req: Request) async throws -> Response {
        let who = try authorize(req, [.auditor, .admin])
        let state = req.uri.queryParameters.get("state") ?? "active"
        guard ["active", "all"].contains(state) || Incident.State(rawValue: state) != nil else {
            throw APIError(status: .badRequest, message: "state must be open, acknowledged, investigating, decided, closed, active or all")
        }
        let rows = try IncidentBook.load(await reader()).filter { state == "all" || (state == "active" ? $0.state != .closed : $0.state.rawValue == state) }
        try await recordInvestigation(who, .incident, req, resultCount: rows.count)
        return .json(IncidentJSON.list(rows, playbooks: self.state.policy?.playbooks ?? Playbook.defaults))
    }

    func findIncident(_ id: String) async throws -> Incident {
        guard (6...64).contains(id.count), id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else {
            throw APIError(status: .notFound, message: "no such incident")
        }
        let reader = try await reader()
        do { return try IncidentBook.find(id, in: try IncidentBook.load(reader)) } catch let e as IncidentError {
            throw APIError(status: .notFound, message: e.message)
        }
    }

    func incident(_ req: Request, id: String) async throws -> Response {
        let who = try authorize(req, [.auditor, .admin])
        let i = try await findIncident(id)
        try await recordInvestigation(who, .incident, req, resultCount: 1, extra: ["id": i.id], incident: i.id)
        return .json(IncidentJSON.show(i, playbook: Playbook.resolve(i.alert, in: state.policy?.playbooks ?? Playbook.defaults)))
    }

    /// Records one response step; the actor is the token's name. Escalations are the server's own.
    func incidentStep(_ req: Request, id: String) async throws -> Response {
        let who = try authorize(req, [.admin])
        let body = try await collect(req)
        guard body.count <= 16_384, let o = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
            throw APIError(status: .badRequest, message: "expected a JSON object {step, verdict?, text?} of at most 16 KiB")
        }
        if let k = o.keys.sorted().first(where: { !["step", "verdict", "text"].contains($0) }) {
            throw APIError(status: .badRequest, message: "unknown key \(k.count <= 40 ? k : "(long key)") (expected step, verdict, text)")
        }
        let allowed: [IncidentStep.Kind] = [.acknowledged, .investigating, .verdict, .action, .closed, .note]
        guard let sv = o["step"] as? String, let kind = IncidentStep.Kind(rawValue: sv), allowed.contains(kind) else {
            throw APIError(status: .badRequest, message: "step must be one of \(allowed.map(\.rawValue).joined(separator: ", "))")
        }
        var verdict: IncidentStep.Verdict?
        if let v = o["verdict"] {
            guard let vs = v as? String, let x = IncidentStep.Verdict(rawValue: vs) else { throw APIError(status: .badRequest, message: "verdict must be false_positive or confirmed") }
            verdict = x
        }
        if o["text"] != nil && !(o["text"] is String) { throw APIError(status: .badRequest, message: "text must be a string") }
        let text = o["text"] as? String
        let i = try await findIncident(id)
        do { try IncidentBook.check(i, kind, verdict: verdict, text: text) } catch let e as IncidentError {
            throw APIError(status: .conflict, message: e.message)
        }
        let step = IncidentStep(incident: i.id, step: kind, actor: who.1, channel: "api:\(who.0.rawValue)",
                                time: EventTime(unixTime: Date().timeIntervalSince1970), verdict: verdict, text: text,
                                investigations: kind == .verdict || kind == .closed ? i.investigations.map(\.record.id) : [])
        let index = try await state.committer.appendEntries([.incident(step)])
        var bytes = step.canonicalJSON()
        bytes.removeLast()
        bytes.append(contentsOf: Array(",\"index\":\(index.lowerBound)}\n".utf8))
        return .json(bytes, status: .created)
    }

    // MARK: The trail, for tlog-tiles clients

    /// `checkpoint`, `pruned` (the signed minimum index, once pruned) or `tile/<L>/<N>[.p/<W>]`, `tile/entries/<N>[.p/<W>]`: files under
    /// `<data>/trail/`, each path segment checked against the tlog-tiles grammar.
    func trailFile(_ req: Request, _ segments: [String]) throws -> Response {
        try authorize(req, [.auditor])
        guard Self.validTilePath(segments) else { throw APIError(status: .notFound, message: "no such trail file") }
        let path = state.config.data + "/trail/" + segments.joined(separator: "/")
        guard var data = FileManager.default.contents(atPath: path) else { throw APIError(status: .notFound, message: "no such trail file") }
        // The checkpoint carries the witnesses' cosignatures collected for its size (extra
        // signature lines; README "Witnesses").
        if segments == ["checkpoint"] { data = Data(CosignatureStore.attach(note: [UInt8](data), data: state.config.data)) }
        let isNote = segments == ["checkpoint"] || segments == ["pruned"]
        var r = Response(status: .ok, headers: [.contentType: isNote ? "text/plain; charset=utf-8" : "application/octet-stream"],
                         body: .init(byteBuffer: ByteBuffer(bytes: data)))
        // Full tiles never change; the checkpoint and partial tiles do.
        let immutable = segments.count > 1 && !segments.contains { $0.hasSuffix(".p") }
        r.headers[.cacheControl] = immutable ? "public, max-age=31536000, immutable" : "no-store"
        return r
    }

    static func validTilePath(_ s: [String]) -> Bool {
        if s == ["checkpoint"] || s == ["pruned"] { return true }
        guard s.count >= 3, s[0] == "tile", s[1] == "entries" || (s[1].count == 1 && s[1].allSatisfy(\.isNumber)) else { return false }
        var rest = Array(s[2...])
        if rest.count >= 2, rest[rest.count - 2].hasSuffix(".p") {
            guard let w = Int(rest.last!), (1...255).contains(w), String(w) == rest.last! else { return false }
            rest.removeLast()
            rest[rest.count - 1] = String(rest[rest.count - 1].dropLast(2))
        }
        guard !rest.isEmpty else { return false }
        for (i, seg) in rest.enumerated() {
            guard seg.count == 4 || (i == rest.count - 1 && seg.count == 3), seg.allSatisfy({ $0.isASCII && $0.isNumber || $0 == "x" }) else { return false }
            if i < rest.count - 1 { guard seg.hasPrefix("x"), seg.dropFirst().allSatisfy(\.isNumber) else { return false } }
            else { guard seg.count == 3, seg.allSatisfy(\.isNumber) else { return false } }
        }
        return true
    }
}

/// Prometheus counters and gauges with fixed label sets.
public final class ServeMetrics: @unchecked Sendable {
    private let lock = NSLock()
    private var acceptedBySource: [String: Int] = [:]
    private var rejectedBySource: [String: Int] = [:]
    private var duplicates = 0
    private var alertsByClass: [AlertClass: Int] = [:]
    private var queue = 0
    private var trailSize: UInt64 = 0
    private var lastCommit: Date?
    private var authFailures = 0
    private var oidcAccepted = 0
    private var oidcRefused: [OIDCRefusal.Code: Int] = [:]
    private var overloads = 0
    public private(set) var notifierFailures = 0
    /// Listener errors (framing, limits, overload) by source and reason.
    private var inputErrors: [String: Int] = [:]
    /// Sources of the listeners besides the HTTP input formats, and their error reasons (fixed label sets).
    static let listenerSources: [(source: String, reasons: [String])] = [
        (SyslogInput.tcpSource, SyslogInput.errorReasons), (SyslogInput.udpSource, SyslogInput.errorReasons),
    ]
    /// The file tail's own families (per followed path).
    public let fileTail = FileTailStats()
    /// The forward targets' families (per target).
    public let forward = ForwardStats()

    func accepted(_ source: String, _ n: Int, duplicates d: Int) { lock.withLock { acceptedBySource[source, default: 0] += n; duplicates += d } }
    func rejected(_ source: String, _ n: Int) { guard n > 0 else { return }; lock.withLock { rejectedBySource[source, default: 0] += n } }
    func alert(_ c: AlertClass) { lock.withLock { alertsByClass[c, default: 0] += 1 } }
    func setQueue(_ n: Int) { lock.withLock { queue = n } }
    func setTrailSize(_ n: UInt64) { lock.withLock { trailSize = n } }
    func committed(trailSize n: UInt64) { lock.withLock { trailSize = n; lastCommit = Date() } }
    func authFailure() { lock.withLock { authFailures += 1 } }
    /// An OIDC token accepted (nil) or refused for `code`.
    func oidc(_ code: OIDCRefusal.Code?) {
        lock.withLock {
            if let code { oidcRefused[code, default: 0] += 1 } else { oidcAccepted += 1 }
        }
    }
    func overloaded() { lock.withLock { overloads += 1 } }
    public func notifierFailed(_ n: Int) { lock.withLock { notifierFailures += n } }
    func inputError(_ source: String, _ reason: String, _ n: Int = 1) { lock.withLock { inputErrors[source + " " + reason, default: 0] += n } }

    public func exposition() -> String {
        lock.withLock {
            var s = ""
            func family(_ name: String, _ type: String, _ help: String) { s += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n" }
            family("custos_events_accepted_total", "counter", "Events made durable in the trail, by input format.")
            for f in WireFormat.allCases.map(\.rawValue) + Self.listenerSources.map(\.source) { s += "custos_events_accepted_total{source=\"\(f)\"} \(acceptedBySource[f] ?? 0)\n" }
            family("custos_events_rejected_total", "counter", "Records rejected, by input format.")
            for f in WireFormat.allCases.map(\.rawValue) + Self.listenerSources.map(\.source) { s += "custos_events_rejected_total{source=\"\(f)\"} \(rejectedBySource[f] ?? 0)\n" }
            family("custos_input_errors_total", "counter", "Listener errors (oversized, malformed or unfinished frames, refused connections, drops), by source and reason.")
            for (src, reasons) in Self.listenerSources {
                for r in reasons { s += "custos_input_errors_total{source=\"\(src)\",reason=\"\(r)\"} \(inputErrors[src + " " + r] ?? 0)\n" }
            }
            family("custos_events_duplicate_total", "counter", "Events already in the trail (same id), not added again.")
            s += "custos_events_duplicate_total \(duplicates)\n"
            family("custos_alerts_total", "counter", "Alerts raised, by class.")
            for c in AlertClass.allCases { s += "custos_alerts_total{class=\"\(c.rawValue)\"} \(alertsByClass[c] ?? 0)\n" }
            family("custos_queue_events", "gauge", "Events accepted by a listener and not yet durable.")
            s += "custos_queue_events \(queue)\n"
            family("custos_trail_size", "gauge", "Entries in the trail.")
            s += "custos_trail_size \(trailSize)\n"
            family("custos_checkpoint_age_seconds", "gauge", "Seconds since the last checkpoint this server signed (-1: none yet).")
            s += "custos_checkpoint_age_seconds \(lastCommit.map { String(format: "%.3f", Date().timeIntervalSince($0)) } ?? "-1")\n"
            family("custos_auth_failures_total", "counter", "Requests refused for a missing, unknown or insufficient token.")
            s += "custos_auth_failures_total \(authFailures)\n"
            family("custos_oidc_tokens_accepted_total", "counter", "OIDC ID tokens whose signature and claims verified.")
            s += "custos_oidc_tokens_accepted_total \(oidcAccepted)\n"
            family("custos_oidc_tokens_refused_total", "counter", "OIDC ID tokens refused, by reason class.")
            for c in OIDCRefusal.Code.allCases { s += "custos_oidc_tokens_refused_total{reason=\"\(c.rawValue)\"} \(oidcRefused[c] ?? 0)\n" }
            family("custos_ingest_overloaded_total", "counter", "Ingest requests answered 503 because the commit queue was full.")
            s += "custos_ingest_overloaded_total \(overloads)\n"
            family("custos_notifier_failures_total", "counter", "Alert deliveries that failed after every retry.")
            s += "custos_notifier_failures_total \(notifierFailures)\n"
            s += fileTail.exposition()
            s += forward.exposition()
            return s
        }
    }
}
