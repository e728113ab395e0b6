import _CryptoExtras
import Crypto
import CustosCore
@testable import CustosServer
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// GitHub Actions OIDC ID tokens as ingest credentials: JWS/JWKS parsing and verification
/// with locally generated keys, the claims' mapping to pipeline context, the `oidc:` config,
/// and the whole path through the HTTP API.
@Suite struct OIDCTests {
    static let gh = TestIssuer.shared
    static let now = Date(timeIntervalSince1970: 1_795_000_000)   // 2026-11-18

    static func refusal(_ token: String, _ v: OIDCVerifier = gh.verifier(), now: Date = now) -> OIDCRefusal? {
        switch v.verify(token, now: now) {
        case .success: return nil
        case .failure(let r): return r
        }
    }

    // MARK: Verification

    @Test func validTokensAreAccepted() throws {
        let v = Self.gh.verifier()
        for signer in [TestIssuer.Signer.rsa, .ec] {
            let t = Self.gh.token(TestIssuer.claims(now: Self.now), signer: signer)
            let ok = try v.verify(t, now: Self.now).get()
            #expect(ok.issuer == TestIssuer.issuer && ok.string("repository") == "octo-org/octo-repo")
            #expect(ok.algorithm == (signer == .rsa ? .RS256 : .ES256))
        }
        // aud as a list containing ours; within the leeway after exp.
        let list = Self.gh.token(TestIssuer.claims(now: Self.now) { $0["aud"] = ["https://github.com/octo-org", TestIssuer.audience] })
        #expect(Self.refusal(list) == nil)
        let late = Self.gh.token(TestIssuer.claims(now: Self.now) { $0["exp"] = Int(Self.now.timeIntervalSince1970) - 30 })
        #expect(Self.refusal(late) == nil)
        #expect(Self.refusal(late, Self.gh.verifier(leeway: 0))?.code == .expired)
        // Allow-lists that match.
        let t = Self.gh.token(TestIssuer.claims(now: Self.now))
        #expect(Self.refusal(t, Self.gh.verifier(repositories: ["octo-org/*"], owners: ["Octo-Org"])) == nil)
        #expect(Self.refusal(t, Self.gh.verifier(repositories: ["other/x", "octo-org/octo-repo"])) == nil)
    }

    /// Each refusal with its own class and a sentence that says what was wrong.
    @Test func refusalsSayWhy() throws {
        let gh = Self.gh
        let t = Int(Self.now.timeIntervalSince1970)
        func claims(_ change: (inout [String: Any]) -> Void) -> [String: Any] { TestIssuer.claims(now: Self.now, change) }
        let rsaPublicPEM = Array(gh.rsa.publicKey.pemRepresentation.utf8)
        let nBytes = try #require(Base64URL.decode(gh.rsaJWK["n"] as! String))
        let cases: [(String, String, OIDCRefusal.Code, String)] = [
            ("wrong audience", gh.token(claims { $0["aud"] = "https://x" }), .audience, "audience https://x is not custos-ingest"),
            ("wrong audience list", gh.token(claims { $0["aud"] = ["a", "b"] }), .audience, "audience [a, b] does not include custos-ingest"),
            ("no audience", gh.token(claims { $0["aud"] = nil }), .audience, "the token has no aud claim"),
            ("wrong issuer", gh.token(claims { $0["iss"] = "https://evil.example" }), .issuer,
             "issuer https://evil.example is not https://token.actions.githubusercontent.com"),
            ("expired", gh.token(claims { $0["exp"] = t - 3600 }), .expired, "token expired at 2026-11-18T"),
            ("not yet valid", gh.token(claims { $0["nbf"] = t + 3600 }), .not_yet_valid, "token not valid before 2026-11-18T"),
            ("issued in the future", gh.token(claims { $0["iat"] = t + 3600 }), .not_yet_valid, "token issued in the future"),
            ("no exp", gh.token(claims { $0["exp"] = nil }), .claims, "the token has no exp claim"),
            ("exp not a number", gh.token(claims { $0["exp"] = "tomorrow" }), .claims, "exp is not a NumericDate"),
            ("bad signature", gh.token(claims { _ in }, signer: .otherEC), .signature, "signature does not verify with key kid=ec-1"),
            ("unknown kid", gh.token(claims { _ in }, kid: "rotated-away"), .unknown_key, "unknown key id rotated-away"),
            ("no kid", gh.token(claims { _ in }, header: { $0["kid"] = nil }), .unknown_key, "the token header has no kid"),
            ("alg none", gh.token(claims { _ in }, signer: .none), .algorithm, "algorithm none is not allowed"),
            ("HS256, the RSA public key as the HMAC secret", gh.token(claims { _ in }, signer: .hmac(key: rsaPublicPEM)), .algorithm,
             "algorithm HS256 is not allowed"),
            ("HS256, the modulus as the HMAC secret", gh.token(claims { _ in }, signer: .hmac(key: nBytes)), .algorithm, "algorithm HS256 is not allowed"),
            ("RS256 claimed for the EC key", gh.token(claims { _ in }, signer: .rsa, kid: "ec-1"), .algorithm,
             "key kid=ec-1 is an EC P-256 key, not usable with RS256"),
            ("ES256 claimed for the RSA key", gh.token(claims { _ in }, signer: .ec, kid: "rsa-1"), .algorithm,
             "key kid=rsa-1 is an RSA key, not usable with ES256"),
            ("the encryption key", gh.token(claims { _ in }, signer: .ec, kid: "enc-1"), .unknown_key, "unknown key id enc-1"),
            ("the symmetric key", gh.token(claims { _ in }, signer: .hmac(key: Array("secret".utf8)), kid: "hmac-1"), .algorithm,
             "algorithm HS256 is not allowed"),
            ("crit", gh.token(claims { _ in }, header: { $0["crit"] = ["exp"] }), .malformed, "crit"),
            ("embedded jwk is not trusted", gh.token(claims { _ in }, signer: .otherEC, header: { h in
                let raw = Array(gh.otherEC.publicKey.rawRepresentation)
                h["jwk"] = ["kty": "EC", "crv": "P-256", "x": TestIssuer.b64(raw[0..<32]), "y": TestIssuer.b64(raw[32..<64])]
            }), .signature, "signature does not verify with key kid=ec-1"),
        ]
        for (what, token, code, reason) in cases {
            let r = try #require(Self.refusal(token), "\(what): accepted")
            #expect(r.code == code, "\(what): \(r.code) \(r.reason)")
            #expect(r.reason.contains(reason), "\(what): \(r.reason)")
            // Never the token, nor any of its parts.
            for part in token.split(separator: ".") where part.count > 8 { #expect(!r.reason.contains(part), "\(what) echoes the token") }
        }
        // Repository allow-lists.
        let tok = gh.token(TestIssuer.claims(now: Self.now))
        let r1 = try #require(Self.refusal(tok, gh.verifier(repositories: ["octo-org/other", "acme/*"])))
        #expect(r1.code == .repository && r1.reason == "repository octo-org/octo-repo is not in the allow-list (octo-org/other, acme/*)")
        let r2 = try #require(Self.refusal(tok, gh.verifier(owners: ["acme"])))
        #expect(r2.code == .repository && r2.reason.contains("repository owner octo-org is not in the allow-list"))
        let noRepo = gh.token(TestIssuer.claims(now: Self.now) { $0["repository"] = nil })
        #expect(Self.refusal(noRepo, gh.verifier(repositories: ["octo-org/*"]))?.code == .repository)
        // `*` does not cross `/`.
        #expect(OIDCIssuer.matches("octo-org/*", "octo-org/a") && !OIDCIssuer.matches("octo-org/*", "octo-org/a/b"))
        #expect(!OIDCIssuer.matches("octo-*", "octo-org/a") && OIDCIssuer.matches("*/*", "a/b") && !OIDCIssuer.matches("octo-org/a", "octo-org/ab"))
        // Unverified claim contents are shortened and made printable in a reason.
        let weird = gh.token(TestIssuer.claims(now: Self.now) { $0["iss"] = "https://e\u{1b}[31m" + String(repeating: "a", count: 500) })
        let r3 = try #require(Self.refusal(weird))
        #expect(r3.code == .issuer && !r3.reason.contains("\u{1b}") && r3.reason.count < 300)
    }

    @Test func malformedTokens() throws {
        let good = Self.gh.token(TestIssuer.claims(now: Self.now))
        let parts = good.split(separator: ".").map(String.init)
        let cases: [(String, String)] = [
            ("", "not a compact JWS"),
            ("abc", "not a compact JWS"),
            (parts[0] + "." + parts[1], "not a compact JWS"),
            (good + ".x.y", "encrypted token"),
            (good + "=", "signature is not base64url"),
            ("=" + good, "header is not base64url"),
            (parts[0] + "." + parts[1] + "+." + parts[2], "payload is not base64url"),
            (TestIssuer.b64(Array("not json".utf8)) + "." + parts[1] + "." + parts[2], "header is not a JSON object"),
            (TestIssuer.b64(Array("[1]".utf8)) + "." + parts[1] + "." + parts[2], "header is not a JSON object"),
            (parts[0] + "." + TestIssuer.b64(Array("{\"iss\":1,\"iss\":2}".utf8)) + "." + parts[2], "payload is not a JSON object"),
            (parts[0] + "." + parts[1] + ".", "signature is not base64url"),
            (String(repeating: "a", count: OIDCVerifier.maxTokenBytes + 1), "longer than 16384 bytes"),
        ]
        for (t, reason) in cases {
            let r = try #require(Self.refusal(t), "accepted \(t.prefix(40))")
            #expect(r.reason.contains(reason), "\(t.prefix(40)): \(r.reason)")
        }
        // typ other than JWT.
        let typ = Self.gh.token(TestIssuer.claims(now: Self.now), header: { $0["typ"] = "at+jwt" })
        #expect(Self.refusal(typ)?.reason == "the token's typ is not JWT")
    }

    /// Mutations of a valid token, random bytes, huge and deeply nested headers: every one
    /// refused cleanly (a value, no crash), and only the untouched token accepted.
    @Test func fuzzedTokensAreRefusedCleanly() throws {
        var rng = SeededRandom(state: 0xC0FFEE)
        let v = Self.gh.verifier()
        for signer in [TestIssuer.Signer.rsa, .ec] {
            let good = Array(Self.gh.token(TestIssuer.claims(now: Self.now), signer: signer).utf8)
            #expect(Self.refusal(String(decoding: good, as: UTF8.self), v) == nil)
            let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ \u{0}".utf8)
            for i in 0..<600 {
                var t = good
                switch i % 5 {
                case 0: t[Int(rng.next() % UInt64(t.count))] = alphabet[Int(rng.next() % UInt64(alphabet.count))]
                case 1: t.removeSubrange(Int(rng.next() % UInt64(t.count))...)
                case 2: t.insert(alphabet[Int(rng.next() % UInt64(alphabet.count))], at: Int(rng.next() % UInt64(t.count)))
                case 3: t.remove(at: Int(rng.next() % UInt64(t.count)))
                default: t[Int(rng.next() % UInt64(t.count))] ^= UInt8(1 << (rng.next() % 8))
                }
                let s = String(decoding: t, as: UTF8.self)
                guard t != good else { continue }
                // A change in the last character's unused bits has no other encoding: refused too.
                #expect(Self.refusal(s, v) != nil, "mutation \(i) accepted")
            }
        }
        for _ in 0..<300 {
            let n = Int(rng.next() % 3000)
            let bytes = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            #expect(Self.refusal(String(decoding: bytes, as: UTF8.self), v) != nil)
            let dotted = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            #expect(Self.refusal(TestIssuer.b64(dotted) + "." + TestIssuer.b64(bytes) + "." + TestIssuer.b64(dotted), v) != nil)
        }
        // Huge header (over the size limit) and one just under it, padded with a long member.
        let parts = Self.gh.token(TestIssuer.claims(now: Self.now)).split(separator: ".").map(String.init)
        let huge = TestIssuer.b64(Array(TestIssuer.json(["alg": "RS256", "kid": "rsa-1", "pad": String(repeating: "x", count: 40_000)]).utf8))
        #expect(Self.refusal(huge + "." + parts[1] + "." + parts[2], v)?.code == .malformed)
        let big = TestIssuer.b64(Array(TestIssuer.json(["alg": "RS256", "kid": "rsa-1", "pad": String(repeating: "x", count: 9_000)]).utf8))
        #expect(Self.refusal(big + "." + parts[1] + "." + parts[2], v)?.code == .signature)
        // Deep JSON in the header and the payload, and directly into the parser.
        for deep in [String(repeating: "[", count: 9_000), String(repeating: "{\"a\":", count: 2_000) + "1" + String(repeating: "}", count: 2_000)] {
            let d = TestIssuer.b64(Array(deep.utf8))
            #expect(Self.refusal(d + "." + parts[1] + "." + parts[2], v)?.code == .malformed)
            #expect(Self.refusal(parts[0] + "." + d + "." + parts[2], v)?.code == .malformed)
        }
        // Mutated JWK Sets: parsed or refused with a Problem, never a crash.
        let jwks = Array(Self.gh.jwksJSON.utf8)
        var parsed = 0
        for i in 0..<400 {
            var b = jwks
            let at = Int(rng.next() % UInt64(b.count))
            switch i % 3 {
            case 0: b[at] = UInt8(truncatingIfNeeded: rng.next())
            case 1: b.removeSubrange(at...)
            default: b.insert(contentsOf: Array("{[\"".utf8).shuffled(using: &rng).prefix(1), at: at)
            }
            if (try? JWKS.parse(json: b)) != nil { parsed += 1 }
        }
        #expect(parsed < 400)
        let abyss = String(repeating: "[", count: 1_000_000)
        #expect(throws: JOSEValue.ParseError.self) { try JOSEValue.parse(Array(abyss.utf8)) }
        #expect(throws: JOSEValue.ParseError.self) { try JOSEValue.parse(Array(("[" + String(repeating: "1,", count: 5000) + "1]").utf8)) }
        #expect(throws: JOSEValue.ParseError.self) { try JOSEValue.parse(Array("{\"a\":1e999}".utf8)) }
        #expect(try JOSEValue.parse(Array("{\"a\":[1.5,null,true,\"x\\u00e9\"]}".utf8)) == .object(["a": .array([.number(1.5), .null, .bool(true), .string("xé")])]))
    }

    @Test func base64urlIsStrict() {
        var rng = SeededRandom(state: 7)
        for n in 0..<70 {
            let b = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let e = Base64URL.encode(b)
            #expect(!e.contains("=") && !e.contains("+") && !e.contains("/"))
            #expect(Base64URL.decode(e) == b)
        }
        #expect(Base64URL.decode("") == [])
        // Padding, the standard alphabet, whitespace, a 4k+1 length, non-zero unused bits.
        for bad in ["QQ==", "QQ=", "Q", "QUJDR", "QR", "QUF", "a+b/", "a b", "QQ\n", "-_-_-"] {
            #expect(Base64URL.decode(bad) == nil, "\(bad)")
        }
        #expect(Base64URL.decode("QQ") == [0x41] && Base64URL.decode("QUI") == [0x41, 0x42] && Base64URL.decode("QUE") == [0x41, 0x41])
    }

    // MARK: JWK Sets

    @Test func jwksKeepsOnlyUsableSigningKeys() throws {
        let set = try JWKS.parse(json: Array(Self.gh.jwksJSON.utf8))
        #expect(set.keys.map(\.kid) == ["rsa-1", "ec-1"] && set.ignored == 2)
        #expect(set.key(kid: "rsa-1")?.alg == .RS256 && set.key(kid: "ec-1")?.alg == nil)
        func problem(_ keys: [[String: Any]]) -> String? {
            do { _ = try JWKS.parse(json: Array(TestIssuer.json(["keys": keys]).utf8)); return nil } catch { return "\(error)" }
        }
        var rsa = Self.gh.rsaJWK, ec = Self.gh.ecJWK
        #expect(problem([rsa, rsa])?.contains("kid rsa-1 appears twice") == true)
        rsa["kid"] = nil
        #expect(problem([rsa])?.contains("keys[0]: kid is required") == true)
        rsa = Self.gh.rsaJWK
        rsa["alg"] = "ES256"
        #expect(problem([rsa])?.contains("alg ES256 does not fit an RSA key") == true)
        rsa["alg"] = "RS512"   // another algorithm: left out, and then nothing is left
        #expect(problem([rsa])?.contains("no usable signing key") == true)
        ec["y"] = ec["x"]
        #expect(problem([ec])?.contains("not a point on P-256") == true)
        ec = Self.gh.ecJWK
        ec["x"] = "AAAA"
        #expect(problem([ec])?.contains("32 bytes") == true)
        ec = Self.gh.ecJWK
        ec["x"] = "not base64url!"
        #expect(problem([ec])?.contains("keys[0].x: not base64url") == true)
        let small = try _RSA.Signing.PrivateKey(unsafeKeySize: .init(bitCount: 1024))
        let prim = try small.publicKey.getKeyPrimitives()
        #expect(problem([["kty": "RSA", "kid": "s", "n": TestIssuer.b64(prim.modulus), "e": TestIssuer.b64(prim.publicExponent)]])?
            .contains("at least 2048 bits") == true)
        #expect(problem([])?.contains("no usable signing key") == true)
        #expect(throws: JWKS.Problem.self) { try JWKS.parse(json: Array("{\"keys\":{}}".utf8)) }
        #expect(throws: JWKS.Problem.self) { try JWKS.parse(json: Array("not json".utf8)) }
    }

    // MARK: Pipeline context

    @Test func githubClaimsMapToPipelineContext() throws {
        let tok = try Self.gh.verifier().verify(Self.gh.token(TestIssuer.claims(now: Self.now)), now: Self.now).get()
        let p = GitHubPipeline.pipeline(tok, runnerIP: "192.0.2.10")
        #expect(p == AccessEvent.Pipeline(provider: "github", repository: "octo-org/octo-repo", name: "example-workflow",
                                          id: "octo-org/octo-automation/.github/workflows/oidc.yml@refs/heads/main", runID: "example-run-id",
                                          attempt: 2, environment: "prod", trigger: .manual, triggerIdentity: "octocat", runnerIP: "192.0.2.10"))
        func mapped(_ change: (inout [String: Any]) -> Void) throws -> AccessEvent.Pipeline {
            let t = try Self.gh.verifier().verify(Self.gh.token(TestIssuer.claims(now: Self.now, change)), now: Self.now).get()
            return GitHubPipeline.pipeline(t, runnerIP: nil)
        }
        let push = try mapped { $0["event_name"] = "push"; $0["job_workflow_ref"] = nil; $0["run_attempt"] = "x1"; $0["environment"] = nil }
        #expect(push.trigger == .automated && push.id == "octo-org/octo-repo/.github/workflows/deploy.yml@refs/heads/main")
        #expect(push.attempt == nil && push.environment == nil && push.runnerIP == nil)
        #expect(try mapped { $0["run_attempt"] = "99999999" }.attempt == nil)
        #expect(try mapped { $0["event_name"] = nil }.trigger == nil)

        // Stamping: the token replaces the body's pipeline but for job, step and scope.
        var e = ev(1)
        e.identity = .unauthenticated
        e.pipeline = .init(provider: "gitlab", repository: "evil/claim", runID: "1", job: "build", step: "fetch", runnerIP: "10.0.0.1", scope: ["secret/data/ci/*"])
        GitHubPipeline.stamp(&e, with: p, token: tok)
        #expect(e.pipeline?.provider == "github" && e.pipeline?.repository == "octo-org/octo-repo" && e.pipeline?.runID == "example-run-id")
        #expect(e.pipeline?.job == "build" && e.pipeline?.step == "fetch" && e.pipeline?.scope == ["secret/data/ci/*"] && e.pipeline?.runnerIP == "192.0.2.10")
        #expect(e.identity == .init(id: "repo:octo-org/octo-repo:environment:prod", name: "octo-org/octo-repo", kind: .pipeline, method: "oidc"))
        var known = ev(2)
        GitHubPipeline.stamp(&known, with: p, token: tok)
        #expect(known.identity == ev(2).identity && known.pipeline == p)
    }

    // MARK: Configuration

    @Test func configReadsAndChecksTheJWKS() throws {
        let dir = TempDir()
        _ = dir.write("jwks.json", Self.gh.jwksJSON)
        let yaml = """
            oidc:
              - issuer: https://token.actions.githubusercontent.com
                audience: custos-ingest
                jwks_file: jwks.json
                repositories: [octo-org/*]
                repository_owners: [octo-org]
                leeway: 30s
              - issuer: https://ghes.example.com/_services/token
                audience: custos
                jwks: { keys: [ { kty: EC, kid: e1, crv: P-256, x: "\(Self.gh.ecJWK["x"]!)", y: "\(Self.gh.ecJWK["y"]!)" } ] }
              - issuer: https://third.example
                audience: custos
                jwks: '\(Self.gh.jwksJSON)'
            """
        let c = try ServeConfig.parse(yaml: yaml, baseDirectory: dir.path)
        #expect(c.oidc.count == 3)
        #expect(c.oidc[0].jwksSource == dir.path + "/jwks.json" && c.oidc[0].jwks.keys.count == 2 && c.oidc[0].leeway == 30)
        #expect(c.oidc[0].repositories == ["octo-org/*"] && c.oidc[0].repositoryOwners == ["octo-org"])
        #expect(c.oidc[1].jwks.keys.map(\.kid) == ["e1"] && c.oidc[1].jwksSource == "inline" && c.oidc[1].leeway == 60)
        #expect(c.oidc[2].jwks.keys.count == 2)
        // The same key under two issuers: a token verifies only under its own issuer's audience.
        let v = OIDCVerifier(issuers: c.oidc)
        let ghes = Self.gh.token(TestIssuer.claims(now: Self.now) { $0["iss"] = "https://ghes.example.com/_services/token"; $0["aud"] = "custos" },
                                 signer: .ec, kid: "e1")
        #expect(Self.refusal(ghes, v) == nil)

        func problems(_ yaml: String) -> [ConfigProblem] {
            do { _ = try ServeConfig.parse(yaml: yaml, baseDirectory: dir.path); return [] } catch { return error.problems }
        }
        _ = dir.write("bad.json", "{\"keys\": [{\"kty\": \"RSA\", \"kid\": \"k\", \"n\": \"AQAB\", \"e\": \"AQAB\"}]}")
        let ok = "issuer: https://i.example, audience: a"
        let cases: [(String, String, String)] = [
            ("oidc: [{\(ok), jwks_file: missing.json}]", "oidc[0].jwks_file", "cannot read \(dir.path)/missing.json"),
            ("oidc: [{\(ok), jwks_file: bad.json}]", "oidc[0].jwks_file", "\(dir.path)/bad.json: keys[0]: not a usable RSA public key"),
            ("oidc: [{issuer: http://i.example, audience: a, jwks_file: jwks.json}]", "oidc[0].issuer", "expected an https:// URL"),
            ("oidc: [{issuer: 'https://i.example?x=1', audience: a, jwks_file: jwks.json}]", "oidc[0].issuer", "expected an https:// URL"),
            ("oidc: [{issuer: https://i.example, jwks_file: jwks.json}]", "oidc[0].audience", "is required"),
            ("oidc: [{audience: a, jwks_file: jwks.json}]", "oidc[0].issuer", "is required"),
            ("oidc: [{\(ok)}]", "oidc[0]", "needs jwks_file"),
            ("oidc: [{\(ok), jwks_file: jwks.json, jwks: {keys: []}}]", "oidc[0].jwks", "not both"),
            ("oidc: [{\(ok), jwks: 'nope'}]", "oidc[0].jwks", "not a JWK Set"),
            ("oidc: [{\(ok), jwks: {keys: []}}]", "oidc[0].jwks", "no usable signing key"),
            ("oidc: [{\(ok), jwks_file: jwks.json, repositories: []}]", "oidc[0].repositories", "empty allow-list"),
            ("oidc: [{\(ok), jwks_file: jwks.json, repository_owners: [a/b]}]", "oidc[0].repository_owners[0]", "expected an owner"),
            ("oidc: [{\(ok), jwks_file: jwks.json, leeway: 1h}]", "oidc[0].leeway", "must be between"),
            ("oidc: [{\(ok), jwks_file: jwks.json, colour: red}]", "oidc[0].colour", "unknown key"),
            ("oidc: [{\(ok), jwks_file: jwks.json}, {\(ok), jwks_file: jwks.json}]", "oidc[1].issuer", "configured twice"),
            ("oidc: nope", "oidc", "expected a list"),
            ("oidc: [{issuer: \(ServeConfig.githubIssuer), audience: a, jwks_file: jwks.json}]", "oidc[0]", "give repositories or repository_owners"),
        ]
        for (yaml, path, expected) in cases {
            let p = problems(yaml)
            #expect(p.contains { $0.path == path && $0.message.contains(expected) }, "\(yaml): \(p)")
        }
        // A single mapping is one issuer.
        let one = try ServeConfig.parse(yaml: "oidc: {issuer: https://i.example, audience: a, jwks_file: jwks.json}", baseDirectory: dir.path)
        #expect(one.oidc.count == 1)
    }

    /// A rotated key: the `jwks_file` is reread when a token names a kid the set lacks, at
    /// most once per interval, and a broken file leaves the keys as they were.
    @Test func keyringRereadsTheJWKSFileOnAnUnknownKid() throws {
        let dir = TempDir()
        let gh = Self.gh
        let only = { (keys: [[String: Any]]) in TestIssuer.json(["keys": keys]) }
        let path = dir.write("jwks.json", only([gh.ecJWK]))
        let c = try ServeConfig.parse(yaml: "oidc: {issuer: \(TestIssuer.issuer), audience: \(TestIssuer.audience), jwks_file: jwks.json, repository_owners: [octo-org]}",
                                      baseDirectory: dir.path)
        #expect(c.oidc.first?.jwksFile == path)
        let ring = OIDCKeyring(issuers: c.oidc, minReloadInterval: 60)
        let rsaToken = gh.token(TestIssuer.claims(now: Self.now))
        func code(_ t: String, _ at: Date) -> OIDCRefusal.Code? {
            if case .failure(let r) = ring.verify(t, now: at) { return r.code }
            return nil
        }
        #expect(code(rsaToken, Self.now) == .unknown_key)     // read once: no change
        _ = dir.write("jwks.json", only([gh.ecJWK, gh.rsaJWK]))
        #expect(code(rsaToken, Self.now.addingTimeInterval(10)) == .unknown_key)   // too soon to read again
        #expect(code(rsaToken, Self.now.addingTimeInterval(61)) == nil)            // reread: the new key verifies
        _ = dir.write("jwks.json", "{ broken")
        #expect(code(gh.token(TestIssuer.claims(now: Self.now), kid: "gone"), Self.now.addingTimeInterval(200)) == .unknown_key)
        #expect(code(rsaToken, Self.now.addingTimeInterval(200)) == nil)           // the keys stayed
        #expect(ring.issuers.first?.jwks.keys.count == 2)
        // Inline keys are never reread.
        let inline = OIDCKeyring(issuers: [gh.issuerConfig()], minReloadInterval: 0)
        #expect(!inline.reload(TestIssuer.issuer, now: Self.now))
    }

    // MARK: Through the HTTP API

    static func json(_ b: ByteBuffer) -> Any? { try? JSONSerialization.jsonObject(with: Data(String(buffer: b).utf8)) }

    /// A valid token ingests, and its events carry the token's pipeline context; each kind
    /// of bad token gets 401 with its reason; an OIDC token reads nothing.
    @Test func ingestWithAnOIDCTokenOverHTTP() async throws {
        let dir = TempDir()
        let gh = Self.gh
        let (state, t) = try ServeTests.make(dir) { $0.oidc = [gh.issuerConfig(repositories: ["octo-org/*"])] }
        let now = Date()
        let good = gh.token(TestIssuer.claims(now: now))
        let claimed = AccessEvent(id: EventID.make(instance: "ci", key: "x1"), time: EventTime(seconds: 1_795_000_000), source: .init(kind: "custos", instance: "ci"),
                                  action: .read, outcome: .success, secret: .init(path: "secret/data/ci/deploy"), identity: .unauthenticated,
                                  pipeline: .init(provider: "gitlab", repository: "evil/claim", runID: "666", job: "deploy", step: "fetch",
                                                  runnerIP: "203.0.113.9", scope: ["secret/data/ci/*"]))
        let custosBody = String(decoding: claimed.canonicalJSON(), as: UTF8.self) + "\n"
        let bearer: @Sendable (String) -> HTTPFields = { tok in [.authorization: "Bearer \(tok)"] }
        try await buildApplication(state: state).test(.live) { client in
            try await client.execute(uri: "/v1/ingest?format=custos", method: .post, headers: bearer(good), body: ByteBuffer(string: custosBody)) { r in
                #expect(r.status == .ok, "\(String(buffer: r.body))")
                #expect((Self.json(r.body) as? [String: Any])?["accepted"] as? Int == 1)
            }
            try await client.execute(uri: "/v1/ingest?format=vault&instance=v1", method: .post, headers: bearer(good),
                                     body: ByteBuffer(string: vaultPair(id: "g1", path: "secret/data/prod/db", name: "alice"))) { r in
                #expect(r.status == .ok && (Self.json(r.body) as? [String: Any])?["accepted"] as? Int == 1)
            }
            try await client.execute(uri: "/v1/events", method: .get, headers: bearer(t.auditor)) { r in
                let rows = try #require(Self.json(r.body) as? [[String: Any]])
                #expect(rows.count == 2)
                for row in rows {
                    let p = try #require(row["pipeline"] as? [String: Any])
                    #expect(p["provider"] as? String == "github" && p["repository"] as? String == "octo-org/octo-repo")
                    #expect(p["name"] as? String == "example-workflow" && p["run_id"] as? String == "example-run-id" && p["attempt"] as? Int == 2)
                    #expect(p["id"] as? String == "octo-org/octo-automation/.github/workflows/oidc.yml@refs/heads/main")
                    #expect(p["environment"] as? String == "prod" && p["trigger"] as? String == "manual" && p["trigger_identity"] as? String == "octocat")
                    #expect(p["runner_ip"] as? String == "127.0.0.1")
                    let identity = try #require(row["identity"] as? [String: Any])
                    if (row["source"] as? [String: Any])?["kind"] as? String == "custos" {
                        // The body's job, step and scope are kept; its other pipeline claims are not.
                        #expect(p["job"] as? String == "deploy" && p["step"] as? String == "fetch" && p["scope"] as? [String] == ["secret/data/ci/*"])
                        #expect(identity["kind"] as? String == "pipeline" && identity["name"] as? String == "octo-org/octo-repo")
                        #expect(identity["id"] as? String == "repo:octo-org/octo-repo:environment:prod" && identity["method"] as? String == "oidc")
                    } else {
                        #expect(p["job"] == nil && identity["name"] as? String == "alice")
                    }
                }
            }
            // Refused tokens: 401, the reason in the JSON error, an invalid_token challenge.
            let t0 = Int(now.timeIntervalSince1970)
            let refused: [(String, String, OIDCRefusal.Code)] = [
                (gh.token(TestIssuer.claims(now: now) { $0["aud"] = "https://x" }), "audience https://x is not custos-ingest", .audience),
                (gh.token(TestIssuer.claims(now: now) { $0["iss"] = "https://evil.example" }), "issuer https://evil.example is not", .issuer),
                (gh.token(TestIssuer.claims(now: now) { $0["exp"] = t0 - 600 }), "token expired at", .expired),
                (gh.token(TestIssuer.claims(now: now) { $0["nbf"] = t0 + 600 }), "token not valid before", .not_yet_valid),
                (gh.token(TestIssuer.claims(now: now), signer: .otherEC), "signature does not verify with key kid=ec-1", .signature),
                (gh.token(TestIssuer.claims(now: now), kid: "k9"), "unknown key id k9", .unknown_key),
                (gh.token(TestIssuer.claims(now: now), signer: .none), "algorithm none is not allowed", .algorithm),
                (gh.token(TestIssuer.claims(now: now), signer: .hmac(key: Array(gh.rsa.publicKey.pemRepresentation.utf8))), "algorithm HS256 is not allowed", .algorithm),
                (gh.token(TestIssuer.claims(now: now) { $0["repository"] = "acme/x" }), "repository acme/x is not in the allow-list (octo-org/*)", .repository),
            ]
            for (tok, reason, _) in refused {
                try await client.execute(uri: "/v1/ingest?format=custos", method: .post, headers: bearer(tok), body: ByteBuffer(string: custosBody)) { r in
                    #expect(r.status == .unauthorized)
                    let msg = (Self.json(r.body) as? [String: Any])?["error"] as? String ?? ""
                    #expect(msg.hasPrefix("the OIDC token is refused: ") && msg.contains(reason), "\(msg)")
                    #expect(!msg.contains(tok.split(separator: ".")[1]))
                    #expect(r.headers[.wwwAuthenticate]?.contains("error=\"invalid_token\"") == true)
                }
            }
            // An OIDC token is an ingest credential, nothing more.
            for (m, uri, body) in [(HTTPRequest.Method.get, "/v1/events", ""), (.get, "/v1/alerts", ""), (.get, "/metrics", ""),
                                   (.get, "/trail/checkpoint", ""), (.get, "/v1/incidents", ""), (.get, "/v1/evidence?from=2026-01-01&to=2027-01-01", ""),
                                   (.get, "/v1/blast-radius?secret=secret/data/prod/db", ""),
                                   (.post, "/v1/silences", "{\"reason\":\"r\",\"expires\":\"1h\",\"class\":\"off_hours\"}"),
                                   (.post, "/v1/incidents/abcdef/steps", "{\"step\":\"acknowledged\"}")] {
                try await client.execute(uri: uri, method: m, headers: bearer(good), body: ByteBuffer(string: body)) { r in
                    #expect(r.status == .forbidden, "\(m) \(uri): \(r.status)")
                    #expect(String(buffer: r.body).contains("an OIDC token is an ingest credential only"))
                }
            }
            // API tokens work as before, and the metrics count acceptances and refusals by class.
            try await client.execute(uri: "/metrics", method: .get, headers: bearer(t.admin)) { r in
                let text = String(buffer: r.body)
                #expect(text.contains("custos_oidc_tokens_accepted_total 11"), "\(text)")
                for (_, _, code) in refused {
                    let n = refused.filter { $0.2 == code }.count
                    #expect(text.contains("custos_oidc_tokens_refused_total{reason=\"\(code.rawValue)\"} \(n)"))
                }
                #expect(text.contains("custos_oidc_tokens_refused_total{reason=\"malformed\"} 0"))
            }
        }
    }

    /// Without `oidc:` a JWT is just an unknown bearer token.
    @Test func withoutIssuersAJWTIsNotACredential() async throws {
        let dir = TempDir()
        let (state, _) = try ServeTests.make(dir)
        let good = Self.gh.token(TestIssuer.claims(now: Date()))
        try await buildApplication(state: state).test(.live) { client in
            try await client.execute(uri: "/v1/ingest?format=vault", method: .post, headers: [.authorization: "Bearer \(good)"],
                                     body: ByteBuffer(string: ServeTests.pairs)) { r in
                #expect(r.status == .unauthorized)
                #expect(String(buffer: r.body).contains("a valid API token is required"))
            }
        }
    }
}
