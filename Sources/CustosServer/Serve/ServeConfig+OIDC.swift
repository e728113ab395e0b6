import CustosCore
import Foundation

extension ServeConfig {
    static let oidcKeys: Set<String> = ["issuer", "audience", "jwks_file", "jwks", "repositories", "repository_owners", "leeway"]

    /// `oidc:` — a list of trusted ID-token issuers (or one mapping):
    /// `{issuer: https://…, audience: NAME, jwks_file: FILE | jwks: {keys: […]} | jwks: '<JSON>',
    /// repositories: [owner/*], repository_owners: [owner], leeway: 60s}`. The JWK Set is read
    /// and checked here, so a missing file or a bad key stops `custos serve` before it starts.
    static func parseOIDC(_ node: ConfigNode, _ r: inout ConfigReader, _ resolve: (String) -> String) -> [OIDCIssuer] {
        var items: [(ConfigNode, String)] = []
        if case .mapping = node { items = [(node, "oidc")] } else {
            items = r.sequence(node, "oidc").enumerated().map { ($1, ConfigReader.join("oidc", $0)) }
        }
        var out: [OIDCIssuer] = []
        for (item, at) in items {
            let entries = r.mapping(item, at, allowed: oidcKeys)
            guard case .mapping = item else { continue }
            let before = r.problems.count
            var issuer: String?, audience: String?, jwks: JWKS?, source = "inline", file: String?
            var repos: [String] = [], owners: [String] = []
            var leeway = OIDCIssuer.defaultLeeway
            for key in ["issuer", "audience"] where item[key] == nil { r.problem(at + "." + key, item, "is required") }
            if item["jwks_file"] == nil && item["jwks"] == nil {
                r.problem(at, item, "needs jwks_file (a JWK Set file) or jwks (the JWK Set inline)")
            } else if item["jwks_file"] != nil && item["jwks"] != nil {
                r.problem(at + ".jwks", item["jwks"], "give jwks_file or jwks, not both")
            }
            for l in entries {
                let p = at + "." + l.key
                switch l.key {
                case "issuer":
                    guard let v = r.string(l.value, p, required: true) else { break }
                    if let why = Self.issuerProblem(v) { r.problem(p, l.value, why) } else { issuer = v }
                case "audience":
                    guard let v = r.string(l.value, p, required: true) else { break }
                    if v.utf8.count > 256 || v.unicodeScalars.contains(where: { $0.value < 0x21 || $0.value == 0x7F }) {
                        r.problem(p, l.value, "must be 1...256 bytes without spaces or control characters")
                    } else { audience = v }
                case "jwks_file":
                    guard let v = r.string(l.value, p, required: true) else { break }
                    let path = resolve(v)
                    source = path
                    file = path
                    guard let data = FileManager.default.contents(atPath: path) else {
                        r.problem(p, l.value, "cannot read \(path)")
                        break
                    }
                    do { jwks = try JWKS.parse(json: Array(data)) } catch { r.problem(p, l.value, "\(path): \(error.description)") }
                case "jwks":
                    let value: JOSEValue
                    if case .scalar(let s, _, _) = l.value {
                        // A JSON document as a string (a YAML block scalar).
                        do { value = try JOSEValue.parse(Array(s.utf8)) } catch {
                            r.problem(p, l.value, "not a JWK Set: not JSON: \(error.reason)")
                            break
                        }
                    } else { value = l.value.joseValue }
                    do { jwks = try JWKS.parse(value) } catch { r.problem(p, l.value, error.description) }
                case "repositories", "repository_owners":
                    let list = r.strings(l.value, p)
                    for (i, s) in list.enumerated() where s.isEmpty || s.utf8.count > 256 || s.contains(" ") || (l.key == "repository_owners" && s.contains("/")) {
                        r.problem(ConfigReader.join(p, i), l.value, l.key == "repositories" ? "expected OWNER/NAME, * matching any run of characters but /" : "expected an owner (organisation or user) name")
                    }
                    if list.isEmpty { r.problem(p, l.value, "an empty allow-list would refuse every token: leave it out to allow any") }
                    if l.key == "repositories" { repos = list } else { owners = list }
                case "leeway": if let v = r.duration(l.value, p, range: 0...300) { leeway = v }
                default: break
                }
            }
            if issuer == Self.githubIssuer && repos.isEmpty && owners.isEmpty && r.problems.count == before {
                r.problem(at, item, "GitHub.com's issuer signs tokens for every repository on GitHub: give repositories or repository_owners (who may send events)")
            }
            if let issuer, out.contains(where: { $0.issuer == issuer }) {
                r.problem(at + ".issuer", item["issuer"], "issuer \(issuer) is configured twice")
                continue
            }
            guard r.problems.count == before, let issuer, let audience, let jwks else { continue }
            out.append(OIDCIssuer(issuer: issuer, audience: audience, jwks: jwks, jwksSource: source, jwksFile: file, repositories: repos,
                                  repositoryOwners: owners, leeway: leeway))
        }
        return out
    }

    /// GitHub.com's Actions issuer: any workflow of any repository can get a token from it.
    static let githubIssuer = "https://token.actions.githubusercontent.com"

    /// Nil when `s` is an acceptable issuer identifier: an https URL with a host and no
    /// query or fragment (OpenID Connect Discovery §3), compared with `iss` exactly.
    static func issuerProblem(_ s: String) -> String? {
        guard s.utf8.count <= 512, let u = URL(string: s), u.scheme == "https", let host = u.host, !host.isEmpty,
              u.query == nil, u.fragment == nil, u.user == nil, !s.contains(" ") else {
            return "expected an https:// URL without query or fragment (e.g. https://token.actions.githubusercontent.com)"
        }
        return nil
    }
}
