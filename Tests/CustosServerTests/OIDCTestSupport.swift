import _CryptoExtras
import Crypto
import CustosCore
@testable import CustosServer
import Foundation

/// A local stand-in for GitHub's token service: an RSA-2048 key (kid `rsa-1`, RS256) and a
/// P-256 key (kid `ec-1`, ES256), their JWK Set, and a signer for ID tokens.
struct TestIssuer: Sendable {
    static let issuer = "https://token.actions.githubusercontent.com"
    static let audience = "custos-ingest"
    /// Generated once per test process (RSA key generation is slow in a debug build).
    static let shared = TestIssuer()

    let rsa: _RSA.Signing.PrivateKey
    let ec: P256.Signing.PrivateKey
    /// A key nobody trusts, to make signatures that do not verify.
    let otherEC: P256.Signing.PrivateKey

    init() {
        rsa = try! _RSA.Signing.PrivateKey(keySize: .bits2048)
        ec = P256.Signing.PrivateKey()
        otherEC = P256.Signing.PrivateKey()
    }

    static func b64(_ d: some DataProtocol) -> String { Base64URL.encode(Array(d)) }

    var rsaJWK: [String: Any] {
        let prim = try! rsa.publicKey.getKeyPrimitives()
        return ["kty": "RSA", "kid": "rsa-1", "use": "sig", "alg": "RS256", "n": Self.b64(prim.modulus), "e": Self.b64(prim.publicExponent)]
    }
    var ecJWK: [String: Any] {
        let raw = Array(ec.publicKey.rawRepresentation)
        return ["kty": "EC", "kid": "ec-1", "crv": "P-256", "x": Self.b64(raw[0..<32]), "y": Self.b64(raw[32..<64])]
    }

    /// The JWK Set, with two keys that must be left out: one for encryption, one symmetric.
    var jwksJSON: String {
        let enc: [String: Any] = ["kty": "EC", "kid": "enc-1", "use": "enc", "crv": "P-256", "x": ecJWK["x"]!, "y": ecJWK["y"]!]
        let oct: [String: Any] = ["kty": "oct", "kid": "hmac-1", "k": Self.b64(Array("secret".utf8))]
        return Self.json(["keys": [rsaJWK, ecJWK, enc, oct]])
    }

    static func json(_ o: Any) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: o, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self)
    }

    func verifier(repositories: [String] = [], owners: [String] = [], leeway: Int64 = 60) -> OIDCVerifier {
        OIDCVerifier(issuers: [issuerConfig(repositories: repositories, owners: owners, leeway: leeway)])
    }

    func issuerConfig(repositories: [String] = [], owners: [String] = [], leeway: Int64 = 60) -> OIDCIssuer {
        OIDCIssuer(issuer: Self.issuer, audience: Self.audience, jwks: try! JWKS.parse(json: Array(jwksJSON.utf8)),
                   jwksSource: "test", repositories: repositories, repositoryOwners: owners, leeway: leeway)
    }

    /// GitHub's documented claim set (../shared/fixtures/sources/github-3.txt), valid at `now`.
    static func claims(now: Date = Date(), _ change: (inout [String: Any]) -> Void = { _ in }) -> [String: Any] {
        let t = Int(now.timeIntervalSince1970)
        var c: [String: Any] = [
            "jti": "example-id", "sub": "repo:octo-org/octo-repo:environment:prod", "environment": "prod",
            "aud": audience, "ref": "refs/heads/main", "sha": "example-sha", "repository": "octo-org/octo-repo",
            "repository_owner": "octo-org", "actor_id": "12", "repository_visibility": "private", "repository_id": "74",
            "repository_owner_id": "65", "run_id": "example-run-id", "run_number": "10", "run_attempt": "2",
            "runner_environment": "github-hosted", "actor": "octocat", "workflow": "example-workflow", "head_ref": "",
            "base_ref": "", "event_name": "workflow_dispatch", "ref_type": "branch",
            "workflow_ref": "octo-org/octo-repo/.github/workflows/deploy.yml@refs/heads/main",
            "job_workflow_ref": "octo-org/octo-automation/.github/workflows/oidc.yml@refs/heads/main",
            "iss": issuer, "nbf": t - 5, "exp": t + 300, "iat": t - 5,
        ]
        change(&c)
        return c
    }

    enum Signer: Equatable { case rsa, ec, otherEC, none, hmac(key: [UInt8]) }

    /// A compact JWS over `claims` (header `alg`/`kid` as given; `typ: JWT`).
    func token(_ claims: [String: Any], signer: Signer = .rsa, alg: String? = nil, kid: String? = nil,
               header change: (inout [String: Any]) -> Void = { _ in }) -> String {
        var header: [String: Any] = ["typ": "JWT"]
        switch signer {
        case .rsa: header["alg"] = "RS256"; header["kid"] = "rsa-1"
        case .ec, .otherEC: header["alg"] = "ES256"; header["kid"] = "ec-1"
        case .none: header["alg"] = "none"; header["kid"] = "rsa-1"
        case .hmac: header["alg"] = "HS256"; header["kid"] = "rsa-1"
        }
        if let alg { header["alg"] = alg }
        if let kid { header["kid"] = kid }
        change(&header)
        let input = Self.b64(Array(Self.json(header).utf8)) + "." + Self.b64(Array(Self.json(claims).utf8))
        let data = Array(input.utf8)
        let sig: [UInt8]
        switch signer {
        case .rsa: sig = Array(try! rsa.signature(for: data, padding: .insecurePKCS1v1_5).rawRepresentation)
        case .ec: sig = Array(try! ec.signature(for: data).rawRepresentation)
        case .otherEC: sig = Array(try! otherEC.signature(for: data).rawRepresentation)
        case .none: sig = []
        case .hmac(let key): sig = Array(HMAC<SHA256>.authenticationCode(for: data, using: SymmetricKey(data: key)))
        }
        return input + "." + Self.b64(sig)
    }
}
