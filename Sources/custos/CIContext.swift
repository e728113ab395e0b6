import ArgumentParser
import AsyncHTTPClient
import CustosAlerting
import CustosCore
import Foundation
import NIOCore

// Shared by `custos ci report` and `custos scan-log --report`: the pipeline context (from the
// CI provider's environment, each part overridable by a flag), the credentials (an ingest
// token from an environment variable, or a GitHub Actions OIDC ID token), the events they
// post and the poster (`POST /v1/ingest?format=custos`).

/// The run's context, as flags. Unset flags are read from the provider's environment.
struct PipelineOptions: ParsableArguments {
    @Option(help: ArgumentHelp("CI provider: github, gitlab or any other name (default: github when GITHUB_ACTIONS=true, gitlab when GITLAB_CI=true). The environment of github and gitlab is read; for other names give the context with the flags below.", valueName: "NAME"))
    var provider: String?

    @Option(help: ArgumentHelp("Repository or project (default: GITHUB_REPOSITORY, CI_PROJECT_PATH).", valueName: "OWNER/REPO"))
    var repository: String?

    @Option(help: ArgumentHelp("Workflow or pipeline name (default: GITHUB_WORKFLOW; CI_PIPELINE_NAME, else CI_CONFIG_PATH).", valueName: "NAME"))
    var workflow: String?

    @Option(name: .customLong("workflow-ref"), help: ArgumentHelp("The pipeline definition, the event's pipeline.id (default: GITHUB_WORKFLOW_REF; CI_CONFIG_PATH).", valueName: "REF"))
    var workflowRef: String?

    @Option(name: .customLong("run-id"), help: ArgumentHelp("Run id (default: GITHUB_RUN_ID, CI_PIPELINE_ID).", valueName: "ID"))
    var runID: String?

    @Option(help: ArgumentHelp("Attempt of the run, 1 for the first (default: GITHUB_RUN_ATTEMPT; GitLab has none).", valueName: "N"))
    var attempt: Int?

    @Option(help: ArgumentHelp("Job (default: GITHUB_JOB, CI_JOB_NAME).", valueName: "NAME"))
    var job: String?

    @Option(help: ArgumentHelp("Step within the job (no default: neither provider names steps in the environment).", valueName: "NAME"))
    var step: String?

    @Option(help: ArgumentHelp("Deployment environment the run targets, e.g. prod (default: CI_ENVIRONMENT_NAME; GitHub does not expose the job's environment to steps, so pass it).", valueName: "NAME"))
    var environment: String?

    @Option(help: ArgumentHelp("manual or automated (default: from GITHUB_EVENT_NAME: workflow_dispatch is manual; from CI_PIPELINE_SOURCE: web, api and chat are manual; every other event is automated).", valueName: "HOW"))
    var trigger: String?

    @Option(name: .customLong("trigger-identity"), help: ArgumentHelp("Who started the run (default: GITHUB_TRIGGERING_ACTOR, else GITHUB_ACTOR; GITLAB_USER_LOGIN).", valueName: "LOGIN"))
    var triggerIdentity: String?

    @Option(name: .customLong("runner-ip"), help: ArgumentHelp("The runner's address (no default; with --github-oidc the server records the address the request came from).", valueName: "IP"))
    var runnerIP: String?

    @Option(help: ArgumentHelp("A secret path glob the run is allowed to use (repeatable): the run's declared scope. A policy without pipelines.scopes checks uses against it (pipeline_out_of_scope).", valueName: "GLOB"))
    var scope: [String] = []

    /// Whether any of these flags was given.
    var anyGiven: Bool {
        let texts: [String?] = [provider, repository, workflow, workflowRef, runID, job, step, environment, trigger, triggerIdentity, runnerIP]
        return texts.contains { $0 != nil } || attempt != nil || !scope.isEmpty
    }

    /// The pipeline context: flags first, then the provider's environment. Refuses a context
    /// without provider, repository and run id (the event ids are derived from them), and any
    /// part that is too long or holds control characters.
    func resolve(_ env: [String: String]) throws -> AccessEvent.Pipeline {
        func e(_ name: String) -> String? { env[name].flatMap { $0.isEmpty ? nil : $0 } }
        let provider = provider ?? (e("GITHUB_ACTIONS") == "true" ? "github" : e("GITLAB_CI") == "true" ? "gitlab" : nil)
        guard let provider else {
            throw CLIError.usage("no pipeline context: neither GitHub Actions (GITHUB_ACTIONS=true) nor GitLab CI (GITLAB_CI=true) is in the environment; give --provider NAME, --repository REPO and --run-id ID")
        }
        var p = AccessEvent.Pipeline(provider: provider)
        var attemptText: String?
        switch provider {
        case "github":
            p.repository = e("GITHUB_REPOSITORY")
            p.name = e("GITHUB_WORKFLOW")
            p.id = e("GITHUB_WORKFLOW_REF")
            p.runID = e("GITHUB_RUN_ID")
            attemptText = e("GITHUB_RUN_ATTEMPT")
            p.job = e("GITHUB_JOB")
            p.trigger = e("GITHUB_EVENT_NAME").map(PipelineMeta.githubTrigger)
            p.triggerIdentity = e("GITHUB_TRIGGERING_ACTOR") ?? e("GITHUB_ACTOR")
        case "gitlab":
            p.repository = e("CI_PROJECT_PATH")
            p.name = e("CI_PIPELINE_NAME") ?? e("CI_CONFIG_PATH")
            p.id = e("CI_CONFIG_PATH")
            p.runID = e("CI_PIPELINE_ID")
            p.job = e("CI_JOB_NAME")
            p.environment = e("CI_ENVIRONMENT_NAME")
            p.trigger = e("CI_PIPELINE_SOURCE").map(PipelineMeta.gitlabTrigger)
            p.triggerIdentity = e("GITLAB_USER_LOGIN")
        default:
            break
        }
        if let attemptText, attempt == nil {
            guard let n = Int(attemptText), (1...1_000_000).contains(n) else {
                throw CLIError.usage("GITHUB_RUN_ATTEMPT is not a number from 1 to 1000000")
            }
            p.attempt = n
        }
        if let v = repository { p.repository = v }
        if let v = workflow { p.name = v }
        if let v = workflowRef { p.id = v }
        if let v = runID { p.runID = v }
        if let v = attempt {
            guard (1...1_000_000).contains(v) else { throw CLIError.usage("--attempt must be from 1 to 1000000") }
            p.attempt = v
        }
        if let v = job { p.job = v }
        if let v = step { p.step = v }
        if let v = environment { p.environment = v }
        if let v = trigger {
            guard let t = AccessEvent.Pipeline.Trigger(rawValue: v) else { throw CLIError.usage("--trigger must be manual or automated") }
            p.trigger = t
        }
        if let v = triggerIdentity { p.triggerIdentity = v }
        if let v = runnerIP {
            guard let ip = IPAddress(v) else { throw CLIError.usage("--runner-ip: not an IPv4 or IPv6 address") }
            p.runnerIP = ip.description
        }
        p.scope = scope

        let what = provider == "github" ? " (GITHUB_REPOSITORY)" : provider == "gitlab" ? " (CI_PROJECT_PATH)" : ""
        guard p.repository != nil else { throw CLIError.usage("no repository\(what): give --repository OWNER/REPO") }
        let runWhat = provider == "github" ? " (GITHUB_RUN_ID)" : provider == "gitlab" ? " (CI_PIPELINE_ID)" : ""
        guard p.runID != nil else { throw CLIError.usage("no run id\(runWhat): give --run-id ID") }
        try checkText(p.provider, "provider", max: 64)
        try checkText(p.repository, "repository")
        try checkText(p.name, "workflow")
        try checkText(p.id, "workflow ref")
        try checkText(p.runID, "run id", max: 256)
        try checkText(p.job, "job")
        try checkText(p.step, "step")
        try checkText(p.environment, "environment", max: 256)
        try checkText(p.triggerIdentity, "trigger identity", max: 256)
        guard p.scope.count <= 1000 else { throw CLIError.usage("--scope: at most 1000 globs") }
        for g in p.scope { try checkText(g, "--scope") }
        return p
    }
}

/// Refuses text that is empty, longer than `max` bytes, or holds control characters (it goes
/// into events, ids and log lines). The message names the field, never the text.
func checkText(_ s: String?, _ what: String, max: Int = 1024) throws {
    guard let s else { return }
    guard !s.isEmpty else { throw CLIError.usage("\(what) is empty") }
    guard s.utf8.count <= max else { throw CLIError.usage("\(what) is longer than \(max) bytes") }
    guard !s.unicodeScalars.contains(where: { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }) else {
        throw CLIError.usage("\(what) holds control characters")
    }
}

/// Secret names and paths: what `ci report` reads from `--secret` and `--secrets-file`.
enum SecretNames {
    static let maxCount = 1000
    static let maxBytes = 1024

    /// Why `s` looks like a secret's value rather than its path or name, or nil. A heuristic
    /// for obvious mistakes (a NAME=VALUE line, a token with a well-known prefix, a long
    /// random-looking word), not a guarantee.
    static func looksLikeValue(_ s: String) -> String? {
        if s.contains("=") { return "it holds '=' (a NAME=VALUE line?)" }
        let prefixes = ["-----BEGIN", "ghp_", "gho_", "ghs_", "ghu_", "ghr_", "github_pat_", "glpat-", "gldt-", "glrt-",
                        "AKIA", "ASIA", "xoxb-", "xoxp-", "xoxa-", "xoxs-", "sk_live_", "sk_test_", "rk_live_", "eyJ", "https://hooks.slack.com/"]
        if let p = prefixes.first(where: { s.hasPrefix($0) }) { return "it starts like a credential (\(p.prefix(5))…)" }
        for segment in s.split(separator: "/") where segment.utf8.count >= 24 {
            var lower = false, upper = false, digit = false, separators = false
            for b in segment.utf8 {
                switch b {
                case UInt8(ascii: "a")...UInt8(ascii: "z"): lower = true
                case UInt8(ascii: "A")...UInt8(ascii: "Z"): upper = true
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = true
                case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: " "): separators = true
                default: break
                }
            }
            if lower && upper && digit && !separators { return "a part of it looks random (a token?)" }
        }
        return nil
    }

    /// Checks one path; `where` names where it came from (never quoting it).
    static func check(_ s: String, _ where: String) throws {
        try checkText(s, `where`, max: maxBytes)
        if let why = looksLikeValue(s) {
            throw CLIError.usage("\(`where`) looks like a secret's value, not its path or name: \(why). Give the names or paths the secret store knows (secret/data/prod/db), never values")
        }
    }

    /// One path a line; blank lines and lines starting with `#` are skipped; surrounding
    /// white space is removed.
    static func parseFile(_ path: String) throws -> [String] {
        guard let attrs = try? FileManager.default.attributesOfItem(atPath: path), let size = attrs[.size] as? Int else {
            throw CLIError.usage("--secrets-file: cannot read \(path)")
        }
        guard size <= 1 << 20 else { throw CLIError.usage("--secrets-file: \(path) is larger than 1 MiB") }
        guard let data = FileManager.default.contents(atPath: path) else { throw CLIError.usage("--secrets-file: cannot read \(path)") }
        guard let text = String(data: data, encoding: .utf8) else { throw CLIError.usage("--secrets-file: \(path) is not UTF-8 text") }
        var out: [String] = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces.union(CharacterSet(charactersIn: "\r")))
            if line.isEmpty || line.hasPrefix("#") { continue }
            if i == 0 && (line.hasPrefix("{") || line.hasPrefix("[")) {
                throw CLIError.usage("--secrets-file: \(path) looks like JSON (scan-log's secrets file of names and values?); ci report reads secret paths, one a line, never values")
            }
            try check(line, "--secrets-file \(path):\(i + 1)")
            out.append(line)
        }
        return out
    }

    /// `--secret` values then the file's lines, duplicates dropped (first kept), at most `maxCount`.
    static func collect(flags: [String], file: String?) throws -> [String] {
        var all: [String] = []
        for (i, s) in flags.enumerated() { try check(s, "--secret #\(i + 1)"); all.append(s) }
        if let file { all += try parseFile(file) }
        var seen = Set<String>()
        all = all.filter { seen.insert($0).inserted }
        guard all.count <= maxCount else { throw CLIError.usage("at most \(maxCount) secrets per report (got \(all.count))") }
        return all
    }
}

/// Builds the events a pipeline reports about itself.
struct CIEvents {
    var pipeline: AccessEvent.Pipeline
    /// With a GitHub OIDC token the identity is left unknown: the server attributes the
    /// event to the token (kind pipeline, method oidc, id its `sub`, name the repository).
    var identityFromToken: Bool
    var time: EventTime

    /// Source `custos-ci`/PROVIDER: reported by the run itself through the custos CLI.
    var source: AccessEvent.Source { AccessEvent.Source(kind: "custos-ci", instance: pipeline.provider ?? "unknown") }

    /// Kind `pipeline`, id `PROVIDER:REPOSITORY` (`github:octo-org/payments`), name the
    /// workflow's name else the repository, method `ci-report`.
    var identity: AccessEvent.Identity {
        if identityFromToken { return AccessEvent.Identity(kind: .unknown) }
        return AccessEvent.Identity(id: "\(pipeline.provider ?? "unknown"):\(pipeline.repository ?? "")",
                                    name: pipeline.name ?? pipeline.repository, kind: .pipeline, method: "ci-report")
    }

    /// 32 hex digits of SHA-256 over the length-prefixed parts: `custos.ci/v1`, then the
    /// action, provider, repository, run id, attempt, job, step, secret path and `extra`.
    /// The same step run again reports the same ids (duplicates, not new events); another
    /// attempt of the run reports new ones.
    func eventID(_ action: Action, path: String, extra: [String] = []) -> String {
        var bytes: [UInt8] = []
        let parts = ["custos.ci/v1", action.rawValue, pipeline.provider ?? "", pipeline.repository ?? "", pipeline.runID ?? "",
                     pipeline.attempt.map(String.init) ?? "", pipeline.job ?? "", pipeline.step ?? "", path] + extra
        for p in parts {
            bytes += Array("\(p.utf8.count):".utf8)
            bytes += Array(p.utf8)
        }
        return Hex.encode(SHA256Bytes.of(bytes).prefix(16))
    }

    func secret(_ path: String) -> AccessEvent.Secret {
        AccessEvent.Secret(path: path, environment: pipeline.environment)
    }

    /// `ci report`: the run used `path` (action `use`, outcome success).
    func use(_ path: String) -> AccessEvent {
        AccessEvent(id: eventID(.use, path: path), time: time, source: source, action: .use, outcome: .success,
                    secret: secret(path), identity: identity, pipeline: pipeline)
    }

    /// `scan-log --report`: the value of `path` was found in the run's log (action `leak`);
    /// `reason` says how and where, never the value.
    func leak(_ path: String, variant: String, line: Int, column: Int, fingerprint: String) -> AccessEvent {
        AccessEvent(id: eventID(.leak, path: path, extra: [variant, String(line)]), time: time, source: source, action: .leak,
                    outcome: .success, reason: "\(variant) at line \(line):\(column), fingerprint \(fingerprint)",
                    secret: secret(path), identity: identity, pipeline: pipeline)
    }

    static func now() -> EventTime {
        let t = Date().timeIntervalSince1970
        let s = t.rounded(.down)
        return EventTime(seconds: Int64(s), nanos: Int32(min(999, Int((t - s) * 1000))) * 1_000_000, digits: 3)
    }

    static func parseTime(_ text: String?) throws -> EventTime {
        guard let text else { return now() }
        guard let t = EventTime(rfc3339: text) else { throw CLIError.usage("--time: not an RFC 3339 time (like 2026-11-29T10:00:00Z)") }
        return t
    }
}

/// The credentials of a report.
struct ReportAuthOptions: ParsableArguments {
    @Option(name: .customLong("token-env"), help: ArgumentHelp("Read the server's ingest token from environment variable NAME (default: CUSTOS_TOKEN). Never given on the command line.", valueName: "NAME"))
    var tokenEnv: String?

    @Option(name: .customLong("github-oidc"), help: ArgumentHelp("Instead of a token: request a GitHub Actions OIDC ID token for AUDIENCE (the job needs `permissions: id-token: write`; the server an `oidc:` issuer with that audience) and send it.", valueName: "AUDIENCE"))
    var githubOIDC: String?

    @Option(name: .customLong("ca-file"), help: ArgumentHelp("Trust the CA certificates in FILE (PEM) for an https:// server with a private CA.", valueName: "FILE"))
    var caFile: String?

    @Option(help: ArgumentHelp("Give up on the server after SECONDS per request (an unreachable server is retried until then).", valueName: "SECONDS"))
    var timeout: Int = 30

    /// Whether any of these flags was given (`--timeout` aside, which has a default).
    var anyGiven: Bool { tokenEnv != nil || githubOIDC != nil || caFile != nil }

    enum Credential { case token(String), githubOIDC(audience: String, url: String, requestToken: String) }

    /// Reads the credential from the environment (a usage error when it is missing); the
    /// OIDC token itself is requested only when posting.
    func credential(_ env: [String: String]) throws -> Credential {
        guard (1...600).contains(timeout) else { throw CLIError.usage("--timeout must be from 1 to 600 seconds") }
        if let aud = githubOIDC {
            guard tokenEnv == nil else { throw CLIError.usage("--github-oidc and --token-env exclude each other") }
            try checkText(aud, "--github-oidc audience", max: 512)
            guard let url = env["ACTIONS_ID_TOKEN_REQUEST_URL"], !url.isEmpty, let rt = env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"], !rt.isEmpty else {
                throw CLIError.usage("--github-oidc: ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set (run in GitHub Actions, with `permissions: id-token: write`)")
            }
            return .githubOIDC(audience: aud, url: url, requestToken: rt)
        }
        let name = tokenEnv ?? "CUSTOS_TOKEN"
        guard let t = env[name]?.trimmingCharacters(in: .whitespacesAndNewlines), !t.isEmpty else {
            throw CLIError.usage("no token: environment variable \(name) is not set or empty (an ingest token of the custos server; --token-env NAME reads another variable, --github-oidc AUDIENCE uses the job's OIDC token)")
        }
        guard t.utf8.count <= 16_384, t.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw CLIError.usage("the token in \(name) is longer than 16 KiB or holds spaces or control characters")
        }
        return .token(t)
    }
}

/// Posts events to `POST /v1/ingest?format=custos` of a running `custos serve`.
struct IngestPoster {
    let base: String
    let client: HTTPClient
    let timeout: TimeAmount
    static let batch = 500

    struct Failure: Error, CustomStringConvertible { var description: String }
    struct Answer { var accepted = 0, duplicates = 0, rejected = 0; var rejections: [String] = [] }

    init(url: String, client: HTTPClient, timeoutSeconds: Int) throws {
        base = try Self.baseURL(url)
        self.client = client
        timeout = .seconds(Int64(timeoutSeconds))
    }

    /// `url` without trailing `/` (or `/v1/ingest`); a usage error unless http(s)://HOST[:PORT][/PATH].
    static func baseURL(_ url: String) throws -> String {
        var u = url
        while u.hasSuffix("/") { u.removeLast() }
        if u.hasSuffix("/v1/ingest") { u.removeLast("/v1/ingest".count) }
        guard let parsed = URL(string: u), let scheme = parsed.scheme?.lowercased(), ["http", "https"].contains(scheme), parsed.host != nil,
              parsed.query == nil, parsed.fragment == nil, parsed.user == nil, parsed.password == nil else {
            throw CLIError.usage("the server URL must be http:// or https://HOST[:PORT] of a custos server, without query or credentials")
        }
        return u
    }

    /// The bearer for `credential`: the token, or a freshly requested GitHub OIDC ID token.
    func bearer(_ credential: ReportAuthOptions.Credential) async throws(Failure) -> String {
        switch credential {
        case .token(let t): return t
        case .githubOIDC(let audience, let url, let requestToken):
            return try await Self.githubOIDCToken(audience: audience, url: url, requestToken: requestToken, timeout: timeout)
        }
    }

    /// GitHub Actions' token request: GET `ACTIONS_ID_TOKEN_REQUEST_URL&audience=AUD` with
    /// `Authorization: Bearer ACTIONS_ID_TOKEN_REQUEST_TOKEN`; the answer is `{"value": "<JWT>"}`.
    static func githubOIDCToken(audience: String, url: String, requestToken: String, timeout: TimeAmount) async throws(Failure) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        let aud = audience.addingPercentEncoding(withAllowedCharacters: allowed) ?? audience
        var req = HTTPClientRequest(url: url + (url.contains("?") ? "&" : "?") + "audience=" + aud)
        req.headers.add(name: "Authorization", value: "Bearer \(requestToken)")
        req.headers.add(name: "Accept", value: "application/json")
        let status: UInt
        let body: [UInt8]
        do {
            let resp = try await HTTPClient.shared.execute(req, timeout: timeout)
            status = resp.status.code
            var b = try await resp.body.collect(upTo: 1 << 16)
            body = b.readBytes(length: b.readableBytes) ?? []
        } catch {
            throw Failure(description: "cannot get a GitHub OIDC token from ACTIONS_ID_TOKEN_REQUEST_URL: \(error)")
        }
        guard status == 200 else {
            throw Failure(description: "the GitHub OIDC token request answered HTTP \(status) (does the job have `permissions: id-token: write`?)")
        }
        guard let o = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any], let v = o["value"] as? String, !v.isEmpty,
              v.utf8.count <= 16_384, v.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw Failure(description: "the GitHub OIDC token request did not answer {\"value\": \"<token>\"}")
        }
        return v
    }

    /// Posts `events` (in batches of `batch`); a 503 (the server's commit queue is full) is
    /// retried after its Retry-After, at most 3 times. Events have deterministic ids, so a
    /// batch sent twice is counted as duplicates.
    func post(_ events: [AccessEvent], bearer: String) async throws(Failure) -> Answer {
        var total = Answer()
        var i = 0
        while i < events.count {
            let chunk = events[i..<min(events.count, i + Self.batch)]
            var body: [UInt8] = []
            for e in chunk { body += e.canonicalJSON(); body.append(0x0A) }
            let a = try await postOnce(body, bearer: bearer)
            total.accepted += a.accepted; total.duplicates += a.duplicates; total.rejected += a.rejected
            total.rejections += a.rejections
            i += chunk.count
        }
        return total
    }

    func postOnce(_ body: [UInt8], bearer: String) async throws(Failure) -> Answer {
        var tries = 0
        while true {
            tries += 1
            var req = HTTPClientRequest(url: base + "/v1/ingest?format=custos")
            req.method = .POST
            req.headers.add(name: "Authorization", value: "Bearer \(bearer)")
            req.headers.add(name: "Content-Type", value: "application/x-ndjson")
            req.body = .bytes(ByteBuffer(bytes: body))
            let status: UInt
            let answer: [UInt8]
            var retryAfter = 1
            do {
                let resp = try await client.execute(req, timeout: timeout)
                status = resp.status.code
                if let r = resp.headers.first(name: "Retry-After"), let n = Int(r) { retryAfter = max(1, min(n, 10)) }
                var b = try await resp.body.collect(upTo: 1 << 20)
                answer = b.readBytes(length: b.readableBytes) ?? []
            } catch {
                throw Failure(description: "cannot reach the custos server at \(base): \(Self.clean(NetworkErrorClass.describeBriefly(error, timeout: timeout), bearer))")
            }
            let reason = Self.serverReason(answer, bearer)
            switch status {
            case 200:
                guard let o = try? JSONSerialization.jsonObject(with: Data(answer)) as? [String: Any], let acc = o["accepted"] as? Int else {
                    throw Failure(description: "POST \(base)/v1/ingest answered 200 without the expected JSON (is this a custos server?)")
                }
                var a = Answer(accepted: acc, duplicates: o["duplicates"] as? Int ?? 0, rejected: o["rejected"] as? Int ?? 0)
                for r in (o["rejections"] as? [[String: Any]] ?? []).prefix(10) {
                    a.rejections.append("record \(r["record"] as? Int ?? 0): \(Self.clean(r["reason"] as? String ?? "?", bearer))")
                }
                return a
            case 503 where tries < 4:
                try? await Task.sleep(for: .seconds(retryAfter))
                continue
            case 401, 403:
                throw Failure(description: "the custos server at \(base) refused the credentials (HTTP \(status)): \(reason)")
            default:
                throw Failure(description: "POST \(base)/v1/ingest: HTTP \(status): \(reason)")
            }
        }
    }

    /// The server's `{"error": "..."}`, or a note that it gave none; cleaned.
    static func serverReason(_ body: [UInt8], _ bearer: String) -> String {
        if let o = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any], let e = o["error"] as? String {
            return clean(e, bearer)
        }
        return body.isEmpty ? "(no reason given)" : "(no JSON error; \(body.count) bytes)"
    }

    /// At most 500 characters, control characters replaced, and never the bearer token.
    static func clean(_ s: String, _ bearer: String) -> String {
        var t = s
        if !bearer.isEmpty { t = t.replacingOccurrences(of: bearer, with: "(token)") }
        t = String(t.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? "?" : Character($0) })
        return t.count > 500 ? String(t.prefix(500)) + "…" : t
    }
}

/// Posts `events` with `credential` to `url`, synchronously for the CLI commands.
func postReport(_ events: [AccessEvent], url: String, auth: ReportAuthOptions, credential: ReportAuthOptions.Credential) throws -> IngestPoster.Answer {
    let (client, owned) = try verifyHTTPClient(caFile: auth.caFile)
    defer { if owned { try? client.syncShutdown() } }
    let poster = try IngestPoster(url: url, client: client, timeoutSeconds: auth.timeout)
    let result = runBlocking { () -> Result<IngestPoster.Answer, IngestPoster.Failure> in
        do throws(IngestPoster.Failure) {
            let bearer = try await poster.bearer(credential)
            return .success(try await poster.post(events, bearer: bearer))
        } catch { return .failure(error) }
    }
    switch result {
    case .success(let a): return a
    case .failure(let f): throw CLIError.operational(f.description)
    }
}

/// "github octo-org/payments deploy run 1001 attempt 2 job build"
func runLabel(_ p: AccessEvent.Pipeline) -> String {
    var parts = [p.provider ?? "?", p.repository ?? "?"]
    if let n = p.name { parts.append(n) }
    if let r = p.runID { parts.append("run \(r)") }
    if let a = p.attempt { parts.append("attempt \(a)") }
    if let j = p.job { parts.append("job \(j)") }
    if let s = p.step { parts.append("step \(s)") }
    return parts.joined(separator: " ")
}
