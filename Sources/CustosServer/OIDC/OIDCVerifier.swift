import CustosCore
import Foundation

/// One trusted issuer of ID tokens (`oidc:` in the serve config; README "GitHub Actions OIDC").
public struct OIDCIssuer: Sendable, Equatable {
    /// The exact `iss` its tokens carry (`https://token.actions.githubusercontent.com`).
    public var issuer: String
    /// The `aud` a token must contain to be for Custos (`custos-ingest`).
    public var audience: String
    public var jwks: JWKS
    /// Where the keys came from, for messages: the file's path, or `inline`.
    public var jwksSource: String
    /// The `jwks_file`, read again when a token names a key it does not hold (`OIDCKeyring`).
    public var jwksFile: String?
    /// Allowed `repository` values (`octo-org/*`, `octo-org/octo-repo`); empty: any.
    public var repositories: [String]
    /// Allowed `repository_owner` values; empty: any.
    public var repositoryOwners: [String]
    /// Seconds of clock skew tolerated on `exp`, `nbf` and `iat`.
    public var leeway: Int64

    public static let defaultLeeway: Int64 = 60

    public init(issuer: String, audience: String, jwks: JWKS, jwksSource: String = "inline", jwksFile: String? = nil, repositories: [String] = [],
                repositoryOwners: [String] = [], leeway: Int64 = defaultLeeway) {
        self.issuer = issuer; self.audience = audience; self.jwks = jwks; self.jwksSource = jwksSource; self.jwksFile = jwksFile
        self.repositories = repositories; self.repositoryOwners = repositoryOwners; self.leeway = leeway
    }

    /// `*` stands for any run of characters other than `/`; comparison ignores ASCII case
    /// (GitHub owner and repository names are case-insensitive).
    public static func matches(_ pattern: String, _ value: String) -> Bool {
        let p = Array(pattern.lowercased().utf8), v = Array(value.lowercased().utf8)
        func m(_ i: Int, _ j: Int) -> Bool {
            if i == p.count { return j == v.count }
            if p[i] == UInt8(ascii: "*") {
                var k = j
                while true {
                    if m(i + 1, k) { return true }
                    guard k < v.count, v[k] != UInt8(ascii: "/") else { return false }
                    k += 1
                }
            }
            return j < v.count && p[i] == v[j] && m(i + 1, j + 1)
        }
        return m(0, 0)
    }
}

/// Why a token was refused: a reason class (fixed: a metric label) and a sentence for the
/// client. The sentence names what was wrong and, at most, short identifiers (issuer,
/// audience, kid, repository, times), never the token or other claim contents.
public struct OIDCRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, CaseIterable {
        case malformed, algorithm, unknown_key, signature, issuer, audience, expired, not_yet_valid, repository, claims
    }
    public var code: Code
    public var reason: String
    /// The configured issuer the token named, once known (for `unknown_key`: whose keys to reread).
    public var issuer: String?
    public init(_ code: Code, _ reason: String, issuer: String? = nil) { self.code = code; self.reason = reason; self.issuer = issuer }
    public var description: String { reason }
}

/// A token whose signature and claims verified.
public struct OIDCToken: Sendable, Equatable {
    public var issuer: String
    public var kid: String
    public var algorithm: JWSAlgorithm
    public var claims: [String: JOSEValue]

    public func string(_ name: String) -> String? { claims[name]?.string }
    public var subject: String? { string("sub") }
}

/// Verifies compact-JWS ID tokens (RFC 7515/7519) against the configured issuers: the
/// header's `alg` from an allow-list (RS256, ES256), the key by `kid` from that issuer's JWK
/// Set only (a `jwk`, `jku` or `x5u` in the header is never used), the signature, then the
/// claims `iss`, `aud`, `exp`, `nbf`, `iat` and the repository allow-lists.
public struct OIDCVerifier: Sendable {
    public var issuers: [OIDCIssuer]
    public static let maxTokenBytes = 16 << 10

    public init(issuers: [OIDCIssuer]) { self.issuers = issuers }

    /// A bearer credential that has the shape of a JWS (two dots), as opposed to an API token.
    public static func looksLikeJWT(_ s: String) -> Bool { s.utf8.lazy.filter { $0 == UInt8(ascii: ".") }.count >= 2 }

    public func verify(_ token: String, now: Date = Date()) -> Result<OIDCToken, OIDCRefusal> {
        do throws(OIDCRefusal) { return .success(try check(token, now: now)) } catch { return .failure(error) }
    }

    func check(_ token: String, now: Date) throws(OIDCRefusal) -> OIDCToken {
        let bytes = Array(token.utf8)
        guard bytes.count <= Self.maxTokenBytes else { throw OIDCRefusal(.malformed, "the token is longer than \(Self.maxTokenBytes) bytes") }
        let parts = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        if parts.count == 5 { throw OIDCRefusal(.malformed, "an encrypted token (JWE) is not accepted: expected a signed JWS") }
        guard parts.count == 3 else { throw OIDCRefusal(.malformed, "not a compact JWS: expected three base64url parts separated by dots") }
        guard let headerBytes = Base64URL.decode(parts[0]), !headerBytes.isEmpty else {
            throw OIDCRefusal(.malformed, "the token header is not base64url")
        }
        guard case .object(let header)? = try? JOSEValue.parse(headerBytes) else {
            throw OIDCRefusal(.malformed, "the token header is not a JSON object")
        }
        // The algorithm first: nothing else of a token with an unacceptable one is looked at.
        guard case .string(let algName)? = header["alg"] else { throw OIDCRefusal(.algorithm, "the token header has no alg") }
        guard let alg = JWSAlgorithm(rawValue: algName) else {
            throw OIDCRefusal(.algorithm, "algorithm \(JOSEValue.short(algName, max: 16)) is not allowed (\(JWSAlgorithm.allCases.map(\.rawValue).joined(separator: " or ")))")
        }
        if header["crit"] != nil { throw OIDCRefusal(.malformed, "the token header has crit: no JWS extension is supported") }
        guard case .string(let kid)? = header["kid"], !kid.isEmpty else { throw OIDCRefusal(.unknown_key, "the token header has no kid") }
        if let typ = header["typ"] {
            guard let t = typ.string, t.uppercased() == "JWT" else { throw OIDCRefusal(.malformed, "the token's typ is not JWT") }
        }
        guard let payload = Base64URL.decode(parts[1]), !payload.isEmpty else { throw OIDCRefusal(.malformed, "the token payload is not base64url") }
        guard case .object(let claims)? = try? JOSEValue.parse(payload) else {
            throw OIDCRefusal(.malformed, "the token payload is not a JSON object")
        }
        guard let signature = Base64URL.decode(parts[2]), !signature.isEmpty else { throw OIDCRefusal(.malformed, "the token signature is not base64url") }

        // The issuer picks the key set; its claim is checked again, signed, below.
        guard case .string(let iss)? = claims["iss"] else { throw OIDCRefusal(.issuer, "the token has no iss claim") }
        guard let cfg = issuers.first(where: { $0.issuer == iss }) else {
            throw OIDCRefusal(.issuer, "issuer \(JOSEValue.short(iss, max: 100)) is not \(issuers.map(\.issuer).joined(separator: " or "))")
        }
        guard let key = cfg.jwks.key(kid: kid) else {
            throw OIDCRefusal(.unknown_key, "unknown key id \(JOSEValue.short(kid)) (not in the JWK Set of \(cfg.issuer) from \(cfg.jwksSource))",
                              issuer: cfg.issuer)
        }
        guard key.algorithm == alg else {
            throw OIDCRefusal(.algorithm, "key kid=\(JOSEValue.short(kid)) is \(key.typeName), not usable with \(alg.rawValue)")
        }
        if let a = key.alg, a != alg {
            throw OIDCRefusal(.algorithm, "algorithm \(alg.rawValue) does not match key kid=\(JOSEValue.short(kid)) (alg \(a.rawValue))")
        }
        let signingInput = Array(bytes[..<parts[1].endIndex])
        guard key.verify(signature: signature, signingInput: signingInput) else {
            throw OIDCRefusal(.signature, "signature does not verify with key kid=\(JOSEValue.short(kid))")
        }

        // Signed claims.
        switch claims["aud"] {
        case .string(let a)?:
            guard a == cfg.audience else { throw OIDCRefusal(.audience, "audience \(JOSEValue.short(a, max: 100)) is not \(cfg.audience)") }
        case .array(let list)?:
            let auds = list.compactMap(\.string)
            guard auds.count == list.count, !auds.isEmpty else { throw OIDCRefusal(.audience, "aud must be a string or a list of strings") }
            guard auds.contains(cfg.audience) else {
                throw OIDCRefusal(.audience, "audience [\(auds.prefix(5).map { JOSEValue.short($0, max: 60) }.joined(separator: ", "))\(auds.count > 5 ? ", …" : "")] does not include \(cfg.audience)")
            }
        case nil: throw OIDCRefusal(.audience, "the token has no aud claim")
        default: throw OIDCRefusal(.audience, "aud must be a string or a list of strings")
        }
        let t = now.timeIntervalSince1970
        let leeway = Double(cfg.leeway)
        guard let exp = try Self.numericDate(claims, "exp") else { throw OIDCRefusal(.claims, "the token has no exp claim") }
        guard t <= exp + leeway else { throw OIDCRefusal(.expired, "token expired at \(Self.time(exp))") }
        if let nbf = try Self.numericDate(claims, "nbf"), nbf > t + leeway {
            throw OIDCRefusal(.not_yet_valid, "token not valid before \(Self.time(nbf))")
        }
        if let iat = try Self.numericDate(claims, "iat"), iat > t + leeway {
            throw OIDCRefusal(.not_yet_valid, "token issued in the future (iat \(Self.time(iat)))")
        }
        if !cfg.repositories.isEmpty || !cfg.repositoryOwners.isEmpty {
            for name in ["repository", "repository_owner"] where claims[name] != nil && claims[name]?.string == nil {
                throw OIDCRefusal(.claims, "\(name) must be a string")
            }
        }
        if !cfg.repositories.isEmpty {
            guard let repo = claims["repository"]?.string else { throw OIDCRefusal(.repository, "the token has no repository claim (the issuer has a repository allow-list)") }
            guard cfg.repositories.contains(where: { OIDCIssuer.matches($0, repo) }) else {
                throw OIDCRefusal(.repository, "repository \(JOSEValue.short(repo, max: 140)) is not in the allow-list (\(cfg.repositories.joined(separator: ", ")))")
            }
        }
        if !cfg.repositoryOwners.isEmpty {
            guard let owner = claims["repository_owner"]?.string else { throw OIDCRefusal(.repository, "the token has no repository_owner claim (the issuer has an owner allow-list)") }
            guard cfg.repositoryOwners.contains(where: { OIDCIssuer.matches($0, owner) }) else {
                throw OIDCRefusal(.repository, "repository owner \(JOSEValue.short(owner, max: 100)) is not in the allow-list (\(cfg.repositoryOwners.joined(separator: ", ")))")
            }
        }
        return OIDCToken(issuer: iss, kid: kid, algorithm: alg, claims: claims)
    }

    /// A NumericDate claim (seconds since the epoch), nil when absent.
    static func numericDate(_ claims: [String: JOSEValue], _ name: String) throws(OIDCRefusal) -> Double? {
        switch claims[name] {
        case nil: return nil
        case .number(let d)? where d >= 0 && d < 1e11: return d
        default: throw OIDCRefusal(.claims, "\(name) is not a NumericDate (seconds since 1970)")
        }
    }

    static func time(_ d: Double) -> String { EventTime(seconds: Int64(d.rounded(.down))).description }
}

/// The verifier `custos serve` uses: the configured issuers, whose `jwks_file` is read again
/// when a token names a key id the set does not hold (GitHub rotates its signing keys; the
/// operator replaces the file, no restart needed). At most one read per issuer per
/// `minReloadInterval`, so a stream of tokens with made-up key ids costs nothing; a file that
/// no longer reads or parses leaves the keys as they were.
public final class OIDCKeyring: @unchecked Sendable {
    private let lock = NSLock()
    private var verifier: OIDCVerifier
    private var lastRead: [String: Date] = [:]
    public let minReloadInterval: TimeInterval

    public init(issuers: [OIDCIssuer], minReloadInterval: TimeInterval = 60) {
        self.verifier = OIDCVerifier(issuers: issuers)
        self.minReloadInterval = minReloadInterval
    }

    public var issuers: [OIDCIssuer] { lock.withLock { verifier.issuers } }

    public func verify(_ token: String, now: Date = Date()) -> Result<OIDCToken, OIDCRefusal> {
        let result = lock.withLock { verifier }.verify(token, now: now)
        guard case .failure(let refusal) = result, refusal.code == .unknown_key, let issuer = refusal.issuer,
              reload(issuer, now: now) else { return result }
        return lock.withLock { verifier }.verify(token, now: now)
    }

    /// Rereads the issuer's `jwks_file` if it is time to; true when its keys changed.
    func reload(_ issuer: String, now: Date) -> Bool {
        let file: String? = lock.withLock {
            guard let cfg = verifier.issuers.first(where: { $0.issuer == issuer }), let f = cfg.jwksFile else { return nil }
            if let last = lastRead[issuer], now.timeIntervalSince(last) < minReloadInterval, now >= last { return nil }
            lastRead[issuer] = now
            return f
        }
        guard let file, let data = FileManager.default.contents(atPath: file), let jwks = try? JWKS.parse(json: Array(data)) else { return false }
        return lock.withLock {
            guard let i = verifier.issuers.firstIndex(where: { $0.issuer == issuer }), verifier.issuers[i].jwks != jwks else { return false }
            verifier.issuers[i].jwks = jwks
            return true
        }
    }
}
