// `custos ci report` and `custos scan-log --report` end to end: a real `custos serve` (the built
// binary, loopback, a policy alerting on leaked_secret and pipeline_out_of_scope) receives
// what the built binary reports from a GitHub-Actions-like environment; the events and alerts
// are read back over the HTTP API. No OpenBao.

import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs `custos` with exactly this CI environment: the test's own environment without any
/// GitHub, GitLab, Actions or Custos variable, plus `env`.
func runCustos(_ exe: URL, _ args: [String], env: [String: String], timeout: TimeInterval = 120) async throws -> CommandResult {
    var base = ProcessInfo.processInfo.environment.filter { k, _ in
        !(k.hasPrefix("GITHUB_") || k.hasPrefix("GITLAB_") || k.hasPrefix("CI_") || k.hasPrefix("CUSTOS_") || k.hasPrefix("ACTIONS_") || k == "CI")
    }
    for (k, v) in env { base[k] = v }
    var r = try await run(exe, args, environment: base, timeout: timeout)
    r.label = (["custos"] + args).joined(separator: " ")
    return r
}

@Suite("custos ci report and scan-log --report")
struct CIReportCLITests {
    static let policy = """
        owners:
          sec: { name: Security, notify: [ { webhook: "http://127.0.0.1:9/hook" } ] }
        classes:
          leaked_secret:         { action: alert, severity: critical, owner: sec, sla: 15m }
          pipeline_out_of_scope: { action: alert, severity: high,     owner: sec, sla: 1h }
        """

    /// The environment of a GitHub Actions job (run 1001, first attempt, started by hand).
    static let github: [String: String] = [
        "GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "octo-org/payments", "GITHUB_WORKFLOW": "deploy",
        "GITHUB_WORKFLOW_REF": "octo-org/payments/.github/workflows/deploy.yml@refs/heads/main",
        "GITHUB_RUN_ID": "1001", "GITHUB_RUN_ATTEMPT": "1", "GITHUB_JOB": "release",
        "GITHUB_EVENT_NAME": "workflow_dispatch", "GITHUB_ACTOR": "octocat", "GITHUB_TRIGGERING_ACTOR": "hubot",
    ]

    struct Server {
        let process: ServeProcess
        let dir: TempDir
        let data: String
        let ingest: String
        let auditor: String
        var base: String { process.base }

        func get(_ path: String) async throws -> [[String: Any]] {
            let (code, body) = try await ServeIntegrationTests.http("GET", base + path, token: auditor)
            guard code == 200 else { throw Failure("GET \(path): HTTP \(code): \(String(decoding: body, as: UTF8.self))") }
            return try #require(try JSONSerialization.jsonObject(with: body) as? [[String: Any]])
        }

        /// Every byte the server keeps (trail, index, keys), for "the value is not there" checks.
        func allFiles() throws -> [(String, Data)] {
            try Fixture.files(under: data).map { ($0, try Data(contentsOf: URL(fileURLWithPath: data + "/" + $0))) }
        }
    }

    static func startServer(_ tag: String, dir given: TempDir? = nil, extra: String = "") async throws -> Server {
        let custos = try locateCustos()
        let dir = try given ?? TempDir("ci-\(tag)")
        let port = try ServeIntegrationTests.freePort()
        let data = dir.path("data")
        try policy.write(toFile: dir.path("policy.yaml"), atomically: true, encoding: .utf8)
        try ("""
            data: \(data)
            listen: 127.0.0.1:\(port)
            policy: \(dir.path("policy.yaml"))
            """ + extra).write(toFile: dir.path("serve.yaml"), atomically: true, encoding: .utf8)
        let p = try ServeProcess(custos: custos, config: dir.path("serve.yaml"), port: port, logs: dir, tag: tag)
        do { try await p.waitUp() } catch {
            throw Failure("\(error)\n--- serve stderr ---\n\((try? String(contentsOfFile: dir.path("serve-\(tag).err"), encoding: .utf8)) ?? "")")
        }
        return Server(process: p, dir: dir, data: data, ingest: try p.token("ingest"), auditor: try p.token("auditor"))
    }

    @Test("ci report: use events with the GitHub run's context reach the server; again: duplicates; scope; errors; dry run")
    func ciReport() async throws {
        let custos = try locateCustos()
        let s = try await Self.startServer("report")
        defer { s.process.kill9(); s.dir.remove() }
        var env = Self.github
        env["CUSTOS_TOKEN"] = s.ingest
        var outputs: [CommandResult] = []

        try "# secrets the deploy job reads\n\nsecret/data/prod/payments/stripe\n  secret/data/prod/payments/db  \n"
            .write(toFile: s.dir.path("secrets.txt"), atomically: true, encoding: .utf8)
        let args = ["ci", "report", "--url", s.base, "--secret", "secret/data/prod/payments/db", "--secrets-file", s.dir.path("secrets.txt"),
                    "--environment", "prod", "--step", "migrate", "--scope", "secret/data/prod/payments/*"]
        let first = try await runCustos(custos, args, env: env).expect(0, "ci report")
        outputs.append(first)
        #expect(first.stdout.contains("reported 2 secret use(s) of github octo-org/payments deploy run 1001 attempt 1 job release step migrate: accepted 2, duplicates 0"), "\(first.stdout)")

        let events = try await s.get("/v1/events?action=use")
        #expect(events.count == 2)
        let paths = Set(events.compactMap { ($0["secret"] as? [String: Any])?["path"] as? String })
        #expect(paths == ["secret/data/prod/payments/db", "secret/data/prod/payments/stripe"])
        for e in events {
            #expect(e["outcome"] as? String == "success")
            #expect((e["secret"] as? [String: Any])?["environment"] as? String == "prod")
            let id = try #require(e["identity"] as? [String: Any])
            #expect(id["kind"] as? String == "pipeline" && id["id"] as? String == "github:octo-org/payments" && id["name"] as? String == "deploy", "\(id)")
            #expect((e["source"] as? [String: Any])?["kind"] as? String == "custos-ci")
            let p = try #require(e["pipeline"] as? [String: Any])
            #expect(p["provider"] as? String == "github" && p["repository"] as? String == "octo-org/payments")
            #expect(p["name"] as? String == "deploy" && p["id"] as? String == "octo-org/payments/.github/workflows/deploy.yml@refs/heads/main")
            #expect(p["run_id"] as? String == "1001" && p["attempt"] as? Int == 1 && p["job"] as? String == "release" && p["step"] as? String == "migrate")
            #expect(p["trigger"] as? String == "manual" && p["trigger_identity"] as? String == "hubot" && p["environment"] as? String == "prod")
            #expect(p["scope"] as? [String] == ["secret/data/prod/payments/*"])
            #expect((e["id"] as? String)?.count == 32)
        }

        // The same step again: the same ids, duplicates only.
        let again = try await runCustos(custos, args, env: env).expect(0, "ci report again")
        outputs.append(again)
        #expect(again.stdout.contains("accepted 0, duplicates 2"), "\(again.stdout)")
        #expect(try await s.get("/v1/events?action=use").count == 2)
        // The next attempt of the run is new.
        var env2 = env
        env2["GITHUB_RUN_ATTEMPT"] = "2"
        let attempt2 = try await runCustos(custos, args, env: env2).expect(0, "attempt 2")
        outputs.append(attempt2)
        #expect(attempt2.stdout.contains("attempt 2 job release step migrate: accepted 2, duplicates 0"), "\(attempt2.stdout)")

        // --dry-run prints the events it would post (the first attempt's: the same ids), no token needed.
        var noToken = Self.github
        noToken["CUSTOS_TOKEN"] = nil
        let dry = try await runCustos(custos, args + ["--dry-run"], env: noToken).expect(0, "dry run")
        outputs.append(dry)
        let lines = dry.stdout.split(separator: "\n")
        #expect(lines.count == 2)
        let dryIDs = Set(try lines.map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])["id"] as? String })
        #expect(dryIDs == Set(events.compactMap { $0["id"] as? String }), "\(dry.stdout)")
        #expect(lines.allSatisfy { $0.hasPrefix("{\"action\":\"use\"") && $0.contains("\"schema\":\"custos.event/v1\"") })

        // GitLab CI's environment (a pipeline started with the Run pipeline button: manual).
        let gitlab = ["GITLAB_CI": "true", "CI_PROJECT_PATH": "acme/shop", "CI_CONFIG_PATH": ".gitlab-ci.yml", "CI_PIPELINE_ID": "4242",
                      "CI_JOB_NAME": "deploy", "CI_PIPELINE_SOURCE": "web", "GITLAB_USER_LOGIN": "alice", "CI_ENVIRONMENT_NAME": "production"]
        let gl = try await runCustos(custos, ["ci", "report", "--dry-run", "--secret", "kv/prod/shop/db", "--time", "2026-11-29T10:00:00Z"], env: gitlab)
            .expect(0, "gitlab dry run")
        let glEvent = try #require(try JSONSerialization.jsonObject(with: gl.stdoutData) as? [String: Any])
        let glp = try #require(glEvent["pipeline"] as? [String: Any])
        #expect(glp["provider"] as? String == "gitlab" && glp["repository"] as? String == "acme/shop" && glp["run_id"] as? String == "4242", "\(glp)")
        #expect(glp["name"] as? String == ".gitlab-ci.yml" && glp["job"] as? String == "deploy" && glp["trigger"] as? String == "manual", "\(glp)")
        #expect(glp["trigger_identity"] as? String == "alice" && glp["environment"] as? String == "production" && glp["attempt"] == nil, "\(glp)")
        #expect(glEvent["time"] as? String == "2026-11-29T10:00:00Z")
        #expect((glEvent["identity"] as? [String: Any])?["id"] as? String == "gitlab:acme/shop")
        // Flags override the environment.
        let over = try await runCustos(custos, ["ci", "report", "--dry-run", "--secret", "kv/x", "--repository", "acme/other", "--trigger", "automated"], env: gitlab)
            .expect(0, "override")
        #expect(over.stdout.contains("\"repository\":\"acme/other\"") && over.stdout.contains("\"trigger\":\"automated\""), "\(over.stdout)")

        // A secret outside the run's declared scope: the server's policy raises pipeline_out_of_scope.
        let hr = try await runCustos(custos, ["ci", "report", "--url", s.base, "--secret", "secret/data/prod/hr/salaries", "--scope", "secret/data/prod/payments/*"],
                                     env: env).expect(0, "out of scope")
        outputs.append(hr)
        var alerts: [[String: Any]] = []
        for _ in 0..<50 {
            alerts = try await s.get("/v1/alerts?class=pipeline_out_of_scope")
            if !alerts.isEmpty { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(alerts.count == 1, "\(alerts)")
        let oosSummary = alerts.first?["summary"] as? String ?? ""
        #expect(oosSummary.contains("secret/data/prod/hr/salaries"), "\(alerts)")

        // No token, a wrong token, an unreachable server: clear errors, non-zero exits.
        let missing = try await runCustos(custos, args, env: noToken)
        outputs.append(missing)
        #expect(missing.status == 2 && missing.stderr.contains("CUSTOS_TOKEN is not set"), "\(missing.stderr)")
        var wrongEnv = Self.github
        let wrongToken = "custos_" + String(repeating: "W", count: 43)
        wrongEnv["CI_REPORT_TOKEN"] = wrongToken
        let wrong = try await runCustos(custos, args + ["--token-env", "CI_REPORT_TOKEN"], env: wrongEnv)
        #expect(wrong.status == 3 && wrong.stderr.contains("refused the credentials (HTTP 401)") && wrong.stderr.contains("a valid API token is required"), "\(wrong.stderr)")
        #expect(!(wrong.stdout + wrong.stderr).contains(wrongToken))
        let closed = try ServeIntegrationTests.freePort()
        let down = try await runCustos(custos, ["ci", "report", "--url", "http://127.0.0.1:\(closed)", "--secret", "secret/data/x", "--timeout", "3"], env: env)
        outputs.append(down)
        #expect(down.status == 3 && down.stderr.contains("cannot reach the custos server at http://127.0.0.1:\(closed): connection refused"), "\(down.stderr)")
        #expect(!down.stderr.contains("errno"), "\(down.stderr)")
        #expect(down.seconds < 30, "gave up after \(down.seconds) s")

        // Bad input: no pipeline context; something that looks like a value (never echoed); control characters.
        let noContext = try await runCustos(custos, ["ci", "report", "--url", s.base, "--secret", "secret/data/x"], env: ["CUSTOS_TOKEN": s.ingest])
        outputs.append(noContext)
        #expect(noContext.status == 2 && noContext.stderr.contains("no pipeline context"), "\(noContext.stderr)")
        let value = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
        let valueRun = try await runCustos(custos, ["ci", "report", "--url", s.base, "--secret", "secret/data/ok", "--secret", value], env: env)
        outputs.append(valueRun)
        #expect(valueRun.status == 2 && valueRun.stderr.contains("--secret #2 looks like a secret's value"), "\(valueRun.stderr)")
        #expect(!(valueRun.stdout + valueRun.stderr).contains(value))
        try "secret/data/ok\nDB_PASSWORD=hunter2hunter2\n".write(toFile: s.dir.path("values.txt"), atomically: true, encoding: .utf8)
        let fileRun = try await runCustos(custos, ["ci", "report", "--url", s.base, "--secrets-file", s.dir.path("values.txt")], env: env)
        outputs.append(fileRun)
        #expect(fileRun.status == 2 && fileRun.stderr.contains("values.txt:2 looks like a secret's value"), "\(fileRun.stderr)")
        #expect(!(fileRun.stdout + fileRun.stderr).contains("hunter2"))
        let ctl = try await runCustos(custos, ["ci", "report", "--url", s.base, "--secret", "secret/data/a\u{1b}[31m"], env: env)
        #expect(ctl.status == 2 && ctl.stderr.contains("control characters"), "\(ctl.stderr)")

        // The ingest token never appears in any output.
        for r in outputs {
            #expect(!(r.stdout + r.stderr).contains(s.ingest), "the token was printed by \(r.label)")
        }
        // Nothing was written by the refused runs: still 4 use events (2 + 2 of attempt 2) and the out-of-scope one.
        #expect(try await s.get("/v1/events?action=use").count == 5)
    }

    @Test("scan-log --report: a base64-encoded secret in the log becomes a leak event and a leaked_secret alert; the value is nowhere")
    func scanLogReport() async throws {
        let custos = try locateCustos()
        let s = try await Self.startServer("scan")
        defer { s.process.kill9(); s.dir.remove() }
        var env = Self.github
        env["CUSTOS_TOKEN"] = s.ingest
        env["CUSTOS_FP_KEY"] = "fingerprint-key-of-the-test"
        let stripe = "rk-Stripe-7Qw2Lp9Zx4Vb8Nm3"
        env["STRIPE_KEY"] = stripe

        let value = "pg-Prod-9f83kL2mQ7vX1zT4"
        let encoded = Data(value.utf8).base64EncodedString()
        try #"{"DB_PASSWORD": {"value": "\#(value)", "path": "secret/data/prod/payments/db"}}"#
            .write(toFile: s.dir.path("secrets.json"), atomically: true, encoding: .utf8)
        // A generic detector's finding too (an AWS access key id): shown, not reported.
        try "2026-11-29T09:00:00.0000000Z Run ./deploy.sh\nconnecting with config \(encoded)\nAWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\nkey=\(stripe)\ndone\n"
            .write(toFile: s.dir.path("build.log"), atomically: true, encoding: .utf8)
        let args = ["scan-log", "--secrets-file", s.dir.path("secrets.json"), "--secret-env", "STRIPE_KEY=secret/data/prod/payments/stripe",
                    "--fingerprint-key-env", "CUSTOS_FP_KEY",
                    "--report", s.base, "--environment", "prod", "--step", "build", s.dir.path("build.log")]
        let r = try await runCustos(custos, args, env: env).expect(1, "scan-log --report")
        #expect(r.stdout.contains("DB_PASSWORD (secret/data/prod/payments/db)"), "\(r.stdout)")
        #expect(r.stdout.contains("detector:aws-access-key-id"), "\(r.stdout)")
        #expect(r.stdout.contains("STRIPE_KEY (secret/data/prod/payments/stripe)"), "\(r.stdout)")
        #expect(r.stderr.contains("reported 2 leak(s) of github octo-org/payments deploy run 1001 attempt 1 job release step build: accepted 2, duplicates 0"), "\(r.stderr)")
        #expect(r.stderr.contains("1 generic-detector finding(s) not reported"), "\(r.stderr)")

        let leaks = try await s.get("/v1/events?action=leak")
        #expect(leaks.count == 2)
        #expect(Set(leaks.compactMap { ($0["secret"] as? [String: Any])?["path"] as? String }) == ["secret/data/prod/payments/db", "secret/data/prod/payments/stripe"])
        let leak = try #require(leaks.first { ($0["secret"] as? [String: Any])?["path"] as? String == "secret/data/prod/payments/db" })
        #expect((leak["secret"] as? [String: Any])?["path"] as? String == "secret/data/prod/payments/db")
        #expect((leak["identity"] as? [String: Any])?["kind"] as? String == "pipeline")
        #expect((leak["pipeline"] as? [String: Any])?["run_id"] as? String == "1001")
        let reason = leak["reason"] as? String ?? ""
        #expect(reason.hasPrefix("base64-std/offset") && reason.contains("at line 2:") && reason.contains("fingerprint hmac-sha256:"), "\(reason)")

        var alerts: [[String: Any]] = []
        for _ in 0..<50 {
            alerts = try await s.get("/v1/alerts?class=leaked_secret")
            if !alerts.isEmpty { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        for _ in 0..<50 where alerts.count < 2 {
            try await Task.sleep(for: .milliseconds(100))
            alerts = try await s.get("/v1/alerts?class=leaked_secret")
        }
        #expect(alerts.count == 2, "\(alerts)")
        let summary = alerts.first { ($0["summary"] as? String ?? "").contains("payments/db") }?["summary"] as? String ?? ""
        #expect(summary.contains("secret/data/prod/payments/db") && summary.contains("octo-org/payments"), "\(summary)")

        // The same log again: a duplicate, and still exit 1 (there are findings).
        let again = try await runCustos(custos, args, env: env).expect(1, "again")
        #expect(again.stderr.contains("accepted 0, duplicates 2"), "\(again.stderr)")

        // A report that fails: exit 2, the findings still printed, the reason on standard error.
        let closed = try ServeIntegrationTests.freePort()
        var failArgs = args
        failArgs[failArgs.firstIndex(of: s.base)!] = "http://127.0.0.1:\(closed)"
        let failed = try await runCustos(custos, failArgs + ["--timeout", "3"], env: env).expect(2, "report to a closed port")
        #expect(failed.stdout.contains("DB_PASSWORD"), "\(failed.stdout)")
        #expect(failed.stderr.contains("the leaks could not be reported") && failed.stderr.contains("cannot reach the custos server"), "\(failed.stderr)")
        // Without a token: refused before scanning.
        var noToken = env
        noToken["CUSTOS_TOKEN"] = nil
        let refused = try await runCustos(custos, args, env: noToken).expect(2, "no token")
        #expect(refused.stdout.isEmpty && refused.stderr.contains("CUSTOS_TOKEN is not set"), "\(refused.stdout) \(refused.stderr)")

        // The value (raw or encoded) and the token: in no output and nowhere in the server's files.
        for out in [r, again, failed, refused] {
            let text = out.stdout + out.stderr
            #expect(!text.contains(value) && !text.contains(encoded) && !text.contains(stripe) && !text.contains(s.ingest), "\(out.label)")
        }
        for (name, bytes) in try s.allFiles() {
            #expect(bytes.range(of: Data(value.utf8)) == nil && bytes.range(of: Data(encoded.utf8)) == nil && bytes.range(of: Data(stripe.utf8)) == nil,
                    "a value is in \(name)")
        }
    }

    static func b64url(_ d: Data) -> String {
        d.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    @Test("ci report --github-oidc: the token comes from a local stand-in for GitHub's token service; the server takes the run from it")
    func githubOIDC() async throws {
        let custos = try locateCustos()
        let dir = try TempDir("ci-oidc")
        defer { dir.remove() }
        // An RSA key (openssl), its JWK Set, and an RS256 ID token with GitHub's claims.
        let openssl = URL(fileURLWithPath: "/usr/bin/openssl")
        guard FileManager.default.isExecutableFile(atPath: openssl.path) else {
            print("no /usr/bin/openssl: skipping the --github-oidc test"); return
        }
        try await run(openssl, ["genrsa", "-out", dir.path("key.pem"), "2048"], timeout: 60).expect(0, "genrsa")
        let mod = try await run(openssl, ["rsa", "-in", dir.path("key.pem"), "-noout", "-modulus"], timeout: 60).expect(0, "modulus")
        let hex = Array(mod.stdout.trimmingCharacters(in: .whitespacesAndNewlines).dropFirst("Modulus=".count))
        var n = Data()
        var i = 0
        while i + 1 < hex.count { n.append(UInt8(String(hex[i...i + 1]), radix: 16)!); i += 2 }
        try #require(n.count == 256)
        try #"{"keys":[{"kty":"RSA","kid":"k1","use":"sig","alg":"RS256","n":"\#(Self.b64url(n))","e":"AQAB"}]}"#
            .write(toFile: dir.path("jwks.json"), atomically: true, encoding: .utf8)
        let now = Int(Date().timeIntervalSince1970)
        let claims: [String: Any] = [
            "iss": "https://token.actions.githubusercontent.com", "aud": "custos-ingest", "sub": "repo:octo-org/octo-repo:environment:prod",
            "repository": "octo-org/octo-repo", "repository_owner": "octo-org", "workflow": "release", "run_id": "777", "run_attempt": "3",
            "event_name": "push", "actor": "octocat", "environment": "prod",
            "workflow_ref": "octo-org/octo-repo/.github/workflows/release.yml@refs/heads/main", "iat": now - 5, "nbf": now - 5, "exp": now + 300,
        ]
        let header = Self.b64url(Data(#"{"alg":"RS256","kid":"k1","typ":"JWT"}"#.utf8))
        let payload = Self.b64url(try JSONSerialization.data(withJSONObject: claims, options: [.sortedKeys]))
        try (header + "." + payload).write(toFile: dir.path("input"), atomically: true, encoding: .utf8)
        try await run(openssl, ["dgst", "-sha256", "-sign", dir.path("key.pem"), "-out", dir.path("sig"), dir.path("input")], timeout: 60).expect(0, "sign")
        let jwt = header + "." + payload + "." + Self.b64url(try Data(contentsOf: URL(fileURLWithPath: dir.path("sig"))))

        // The token service: answers {"value": JWT} to GET /token?...&audience=custos-ingest with the request token.
        let tokenPort = try ServeIntegrationTests.freePort()
        let requestToken = "request-token-" + UUID().uuidString
        try jwt.write(toFile: dir.path("jwt"), atomically: true, encoding: .utf8)
        try """
            import http.server, json, sys
            jwt = open(sys.argv[2]).read()
            class H(http.server.BaseHTTPRequestHandler):
                def do_GET(self):
                    ok = self.headers.get("Authorization") == "Bearer " + sys.argv[3] and "audience=custos-ingest" in self.path and self.path.startswith("/token?api-version=2.0&")
                    body = json.dumps({"value": jwt} if ok else {"message": "no"}).encode()
                    self.send_response(200 if ok else 401)
                    self.send_header("Content-Type", "application/json"); self.send_header("Content-Length", str(len(body)))
                    self.end_headers(); self.wfile.write(body)
                def log_message(self, *a): pass
            http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
            """.write(toFile: dir.path("tokens.py"), atomically: true, encoding: .utf8)
        let py = Process()
        py.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        py.arguments = ["python3", dir.path("tokens.py"), String(tokenPort), dir.path("jwt"), requestToken]
        py.standardOutput = FileHandle.nullDevice
        py.standardError = FileHandle.nullDevice
        try py.run()
        defer { if py.isRunning { kill(py.processIdentifier, SIGKILL) } }

        let s = try await Self.startServer("oidc", dir: dir, extra: """

            oidc:
              - { issuer: "https://token.actions.githubusercontent.com", audience: custos-ingest, jwks_file: \(dir.path("jwks.json")), repository_owners: [octo-org] }
            """)
        defer { s.process.kill9() }
        // The token service is up when it answers (401 to a request without the request token); a loaded machine may take a while.
        var tokenServiceUp = false
        for _ in 0..<600 where !tokenServiceUp && py.isRunning {
            if let (code, _) = try? await ServeIntegrationTests.http("GET", "http://127.0.0.1:\(tokenPort)/", token: nil), code != 0 { tokenServiceUp = true } else {
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        try #require(tokenServiceUp, "the python3 token service did not come up on port \(tokenPort)")
        var env = Self.github
        env["ACTIONS_ID_TOKEN_REQUEST_URL"] = "http://127.0.0.1:\(tokenPort)/token?api-version=2.0"
        env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = requestToken
        let r = try await runCustos(custos, ["ci", "report", "--url", s.base, "--github-oidc", "custos-ingest", "--step", "publish",
                                             "--secret", "secret/data/prod/release/signing-key"], env: env).expect(0, "ci report --github-oidc")
        #expect(r.stdout.contains("accepted 1, duplicates 0"), "\(r.stdout)")
        #expect(!(r.stdout + r.stderr).contains(jwt) && !(r.stdout + r.stderr).contains(requestToken))
        let events = try await s.get("/v1/events?action=use")
        #expect(events.count == 1)
        let e = try #require(events.first)
        let id = try #require(e["identity"] as? [String: Any])
        #expect(id["kind"] as? String == "pipeline" && id["method"] as? String == "oidc" && id["id"] as? String == "repo:octo-org/octo-repo:environment:prod", "\(id)")
        let p = try #require(e["pipeline"] as? [String: Any])
        // The verified token is the truth (not GITHUB_REPOSITORY); the step comes from the report.
        #expect(p["repository"] as? String == "octo-org/octo-repo" && p["run_id"] as? String == "777" && p["attempt"] as? Int == 3, "\(p)")
        #expect(p["step"] as? String == "publish" && p["job"] as? String == "release" && p["trigger"] as? String == "automated", "\(p)")

        // A wrong request token: the token service refuses, and so does the report (exit 3).
        env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = "wrong"
        let refused = try await runCustos(custos, ["ci", "report", "--url", s.base, "--github-oidc", "custos-ingest", "--secret", "secret/data/x"], env: env)
        #expect(refused.status == 3 && refused.stderr.contains("the GitHub OIDC token request answered HTTP 401"), "\(refused.stderr)")
        // Outside GitHub Actions' token service: a usage error.
        env["ACTIONS_ID_TOKEN_REQUEST_URL"] = nil
        let none = try await runCustos(custos, ["ci", "report", "--url", s.base, "--github-oidc", "custos-ingest", "--secret", "secret/data/x"], env: env)
        #expect(none.status == 2 && none.stderr.contains("ACTIONS_ID_TOKEN_REQUEST_URL"), "\(none.stderr)")
    }
}
