import _CryptoExtras
import Crypto
import Foundation

/// The signature algorithms Custos accepts on an ID token. Nothing else: `none`, the HMAC
/// family (whose "key" would be a public key anyone has) and everything not listed are refused.
public enum JWSAlgorithm: String, Sendable, CaseIterable {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (GitHub Actions signs with it).
    case RS256
    /// ECDSA on P-256 with SHA-256, the signature as the 64-byte r‖s.
    case ES256
}

/// One verification key from a JWK Set (RFC 7517): RSA (`n`, `e`, at least 2048 bits) or EC
/// P-256 (`x`, `y`).
public struct JWK: Sendable, Equatable {
    public enum Key: Sendable {
        case rsa(_RSA.Signing.PublicKey)
        case p256(P256.Signing.PublicKey)
    }
    public var kid: String
    /// The key's `alg`, when the set states one: a token must then use exactly it.
    public var alg: JWSAlgorithm?
    public var key: Key
    /// The key's public numbers (n‖e or x‖y), for equality.
    var material: [UInt8]

    public var algorithm: JWSAlgorithm {
        switch key {
        case .rsa: return .RS256
        case .p256: return .ES256
        }
    }
    public var typeName: String {
        switch key {
        case .rsa: return "an RSA key"
        case .p256: return "an EC P-256 key"
        }
    }

    public static func == (a: JWK, b: JWK) -> Bool { a.kid == b.kid && a.alg == b.alg && a.material == b.material }

    public func verify(signature: [UInt8], signingInput: [UInt8]) -> Bool {
        switch key {
        case .rsa(let k):
            return k.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: signingInput, padding: .insecurePKCS1v1_5)
        case .p256(let k):
            guard signature.count == 64, let sig = try? P256.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return k.isValidSignature(sig, for: signingInput)
        }
    }
}

/// A JWK Set: the keys an issuer signs ID tokens with. Keys for another use than `sig`,
/// keys of other types (`oct`, `OKP`, other curves) and keys for other algorithms are left
/// out; a usable key that is malformed, lacks `kid` or repeats one is an error.
public struct JWKS: Sendable, Equatable {
    public var keys: [JWK]
    /// Keys the set holds that were left out (wrong use, type or algorithm).
    public var ignored: Int

    public init(keys: [JWK], ignored: Int = 0) { self.keys = keys; self.ignored = ignored }

    public struct Problem: Error, Sendable, CustomStringConvertible {
        public var description: String
        init(_ d: String) { description = d }
    }

    public static let maxBytes = 1 << 20

    public func key(kid: String) -> JWK? { keys.first { $0.kid == kid } }

    public static func parse(json bytes: [UInt8]) throws(Problem) -> JWKS {
        guard bytes.count <= maxBytes else { throw Problem("a JWK Set larger than 1 MiB") }
        let v: JOSEValue
        do { v = try JOSEValue.parse(bytes) } catch { throw Problem("not JSON: \(error.reason)") }
        return try parse(v)
    }

    public static func parse(_ v: JOSEValue) throws(Problem) -> JWKS {
        guard case .object(let o) = v, case .array(let items)? = o["keys"] else {
            throw Problem("expected a JWK Set: an object with a \"keys\" array")
        }
        var out: [JWK] = []
        var ignored = 0
        for (i, item) in items.enumerated() {
            let at = "keys[\(i)]"
            guard case .object(let k) = item else { throw Problem("\(at): expected an object") }
            func str(_ name: String) throws(Problem) -> String? {
                switch k[name] {
                case nil, .null?: return nil
                case .string(let s)?: return s
                default: throw Problem("\(at).\(name): expected a string")
                }
            }
            func b64(_ name: String) throws(Problem) -> [UInt8] {
                guard let s = try str(name) else { throw Problem("\(at): \(name) is missing") }
                guard let b = Base64URL.decode(s), !b.isEmpty else { throw Problem("\(at).\(name): not base64url (unpadded)") }
                return b
            }
            let kty = try str("kty")
            if let use = try str("use"), use != "sig" { ignored += 1; continue }
            if case .array(let ops)? = k["key_ops"], !ops.contains(.string("verify")) { ignored += 1; continue }
            var alg: JWSAlgorithm?
            if let a = try str("alg") {
                guard let known = JWSAlgorithm(rawValue: a) else { ignored += 1; continue }
                alg = known
            }
            let key: JWK.Key, material: [UInt8]
            switch kty {
            case "RSA":
                if let alg, alg != .RS256 { throw Problem("\(at): alg \(alg.rawValue) does not fit an RSA key") }
                // Some encoders keep a sign byte: the numbers are unsigned, leading zeros dropped.
                let n = Array(try b64("n").drop { $0 == 0 }), e = Array(try b64("e").drop { $0 == 0 })
                guard !n.isEmpty, !e.isEmpty else { throw Problem("\(at): n and e must not be zero") }
                guard e.count <= 4 else { throw Problem("\(at).e: public exponent too large") }
                do { key = .rsa(try _RSA.Signing.PublicKey(n: n, e: e)) } catch {
                    throw Problem("\(at): not a usable RSA public key (at least 2048 bits)")
                }
                material = n + e
            case "EC":
                guard try str("crv") == "P-256" else { ignored += 1; continue }
                if let alg, alg != .ES256 { throw Problem("\(at): alg \(alg.rawValue) does not fit a P-256 key") }
                let x = try b64("x"), y = try b64("y")
                guard x.count == 32, y.count == 32 else { throw Problem("\(at): x and y must be 32 bytes each for P-256") }
                do { key = .p256(try P256.Signing.PublicKey(rawRepresentation: x + y)) } catch {
                    throw Problem("\(at): x, y is not a point on P-256")
                }
                material = x + y
            case nil: throw Problem("\(at): kty is missing")
            default: ignored += 1; continue
            }
            guard let kid = try str("kid"), !kid.isEmpty, kid.utf8.count <= 256 else {
                throw Problem("\(at): kid is required (1...256 bytes): tokens name their key by it")
            }
            guard !out.contains(where: { $0.kid == kid }) else { throw Problem("\(at): kid \(JOSEValue.short(kid)) appears twice") }
            out.append(JWK(kid: kid, alg: alg, key: key, material: material))
        }
        guard !out.isEmpty else {
            throw Problem("no usable signing key (RSA of at least 2048 bits or EC P-256, use sig) among \(items.count) key\(items.count == 1 ? "" : "s")")
        }
        return JWKS(keys: out, ignored: ignored)
    }
}
