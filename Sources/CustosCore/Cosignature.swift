import Crypto

// Checkpoint cosignatures (c2sp.org/tlog-cosignature), the Ed25519 type only: signature
// type 0x04, `cosignature/v1`.
//
// A cosignature line is an ordinary signed-note signature line,
//   — <witness name> base64(key ID || u64 big-endian timestamp || 64-byte Ed25519 signature)
// over the message
//   "cosignature/v1\n" + "time <timestamp>\n" + <checkpoint note text>.
// Key ID = SHA-256(name || 0x0A || 0x04 || public key)[:4].
//
// Key encodings:
//   vkey: <name>+<hex key ID>+base64(0x04 || 32-byte public key)
//   skey: PRIVATE+KEY+<name>+<hex key ID>+base64(0x04 || 32-byte seed)
// Ed25519 note keys (type 0x01, as golang.org/x/mod/sumdb/note generates them) are accepted
// too, as transparency-dev's NewSignerForCosignatureV1 / NewVerifierForCosignatureV1 take
// them; the cosignatures' key ID is then derived with 0x04.

enum CosignatureFormat {
    static let type: UInt8 = 0x04
    static let header = "cosignature/v1\n"
    /// The timestamp MUST NOT exceed 2^63 - 1.
    static let maxTimestamp = UInt64(Int64.max)

    /// "cosignature/v1\ntime <t>\n" + text.
    static func message(text: [UInt8], timestamp: UInt64) -> [UInt8] {
        Array((header + "time \(timestamp)\n").utf8) + text
    }

    static func bigEndian64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (56 - 8 * UInt64($0))) } }
}

/// A witness's public key for Ed25519 checkpoint cosignatures (signature type 0x04).
public struct CosignatureVerifier: Sendable, Equatable, Hashable {
    public let name: String
    public let keyID: UInt32
    /// The 32-byte Ed25519 public key.
    public let publicKey: [UInt8]

    /// Parses `<name>+<8 lowercase hex digits>+base64(0x04 || 32-byte public key)`; the key
    /// ID must equal SHA-256(name || 0x0A || 0x04 || key)[:4].
    public init(vkey: String) throws {
        guard let parts = NoteFormat.splitPlus(vkey, parts: 3) else {
            throw NoteError(.invalidKey, "witness verifier key must have three '+'-separated parts")
        }
        if let p = NoteFormat.nameProblem(parts[0]) { throw NoteError(.invalidKey, "witness verifier key: \(p)") }
        guard let id = NoteFormat.parseHexID(parts[1]) else {
            throw NoteError(.invalidKey, "witness verifier key ID must be 8 lowercase hex digits")
        }
        guard let raw = Base64.decode(parts[2]) else {
            throw NoteError(.invalidKey, "witness verifier key material is not valid base64")
        }
        guard let type = raw.first, type == CosignatureFormat.type || type == NoteFormat.ed25519Type else {
            throw NoteError(.invalidKey, "witness verifier key has signature type 0x\(Hex.encode(Array(raw.prefix(1)))), expected 0x04 (cosignature/v1) or 0x01 (Ed25519)")
        }
        guard raw.count == 33 else {
            throw NoteError(.invalidKey, "Ed25519 witness verifier key must be 32 bytes, got \(raw.count - 1)")
        }
        try self.init(name: String(parts[0]), publicKey: Array(raw.dropFirst()))
        // A type 0x01 vkey (what transparency-dev's NewVerifierForCosignatureV1 takes) carries
        // the 0x01 key ID; the cosignatures' key ID is then derived with 0x04.
        let expected = type == CosignatureFormat.type ? keyID : NoteFormat.keyID(name: name, type: type, publicKey: publicKey)
        guard expected == id else {
            throw NoteError(.invalidKey, "witness verifier key ID does not match the key name and public key")
        }
    }

    /// A verifier from a name and a raw 32-byte Ed25519 public key; the key ID is computed.
    public init(name: String, publicKey: [UInt8]) throws {
        if let p = NoteFormat.nameProblem(name) { throw NoteError(.invalidName, p) }
        guard publicKey.count == 32,
              (try? Curve25519.Signing.PublicKey(rawRepresentation: publicKey)) != nil else {
            throw NoteError(.invalidKey, "Ed25519 public key must be 32 valid bytes")
        }
        self.name = name
        self.publicKey = publicKey
        self.keyID = NoteFormat.keyID(name: name, type: CosignatureFormat.type, publicKey: publicKey)
    }

    /// `<name>+<hex key ID>+base64(0x04 || public key)`.
    public var vkey: String {
        "\(name)+\(NoteFormat.hexID(keyID))+\(Base64.encode([CosignatureFormat.type] + publicKey))"
    }

    /// Whether `signature` (the bytes after the key ID: timestamp and Ed25519 signature) is
    /// this key's cosignature of `text`; its timestamp when it is.
    public func timestamp(ofSignature signature: [UInt8], text: [UInt8]) -> UInt64? {
        guard signature.count == 72 else { return nil }
        let t = signature.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard t <= CosignatureFormat.maxTimestamp,
              let key = try? Curve25519.Signing.PublicKey(rawRepresentation: publicKey) else { return nil }
        return key.isValidSignature(Array(signature.suffix(64)), for: CosignatureFormat.message(text: text, timestamp: t)) ? t : nil
    }

    /// Checks the note for this witness's cosignature and returns its timestamp (POSIX
    /// seconds). Throws `noVerifiedSignature` when no signature line has this key's name and
    /// ID, `badSignature` when one has and does not verify (the note is then invalid, per
    /// c2sp.org/signed-note), and the note's syntax errors. Other signatures are ignored:
    /// the log's own signature is not checked here.
    public func verify(_ note: [UInt8]) throws -> UInt64 {
        let parsed = try SignedNote.parse(note)
        var found: UInt64?
        for (sig, line) in zip(parsed.signatures, parsed.signatureLines) where sig.name == name && sig.keyID == keyID {
            guard let t = timestamp(ofSignature: sig.bytes, text: parsed.text) else {
                throw NoteError(.badSignature, "cosignature by witness \"\(name)\" (ID \(NoteFormat.hexID(keyID))) does not verify", line: line)
            }
            found = max(found ?? 0, t)
        }
        guard let found else {
            throw NoteError(.noVerifiedSignature, "no cosignature by witness \"\(name)\" (ID \(NoteFormat.hexID(keyID)))")
        }
        return found
    }

    public func verify(_ note: String) throws -> UInt64 { try verify(Array(note.utf8)) }
}

/// A witness's Ed25519 cosigning key (signature type 0x04).
public struct CosignatureSigner: Sendable {
    public let name: String
    public let keyID: UInt32
    private let key: Curve25519.Signing.PrivateKey

    private init(name: String, key: Curve25519.Signing.PrivateKey) {
        self.name = name
        self.key = key
        self.keyID = NoteFormat.keyID(name: name, type: CosignatureFormat.type, publicKey: Array(key.publicKey.rawRepresentation))
    }

    /// A fresh random key. The name must be non-empty, without spaces, '+' or control characters.
    public static func generate(name: String) throws -> CosignatureSigner {
        if let p = NoteFormat.nameProblem(name) { throw NoteError(.invalidName, p) }
        return CosignatureSigner(name: name, key: Curve25519.Signing.PrivateKey())
    }

    /// Parses `PRIVATE+KEY+<name>+<8 lowercase hex digits>+base64(0x04 || 32-byte seed)`, or
    /// the same with type 0x01 (an Ed25519 note key); the key ID must match the type given.
    public init(skey: String) throws {
        guard let parts = NoteFormat.splitPlus(skey, parts: 5), parts[0] == "PRIVATE", parts[1] == "KEY" else {
            throw NoteError(.invalidKey, "witness key must be PRIVATE+KEY+<name>+<id>+<key>")
        }
        if let p = NoteFormat.nameProblem(parts[2]) { throw NoteError(.invalidKey, "witness key: \(p)") }
        guard let id = NoteFormat.parseHexID(parts[3]) else {
            throw NoteError(.invalidKey, "witness key ID must be 8 lowercase hex digits")
        }
        guard let raw = Base64.decode(parts[4]) else {
            throw NoteError(.invalidKey, "witness key material is not valid base64")
        }
        guard let type = raw.first, type == CosignatureFormat.type || type == NoteFormat.ed25519Type else {
            throw NoteError(.invalidKey, "witness key has an unsupported signature type (0x04 cosignature/v1, or 0x01 Ed25519)")
        }
        guard raw.count == 33, let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: raw.dropFirst()) else {
            throw NoteError(.invalidKey, "Ed25519 witness key seed must be 32 bytes")
        }
        let name = String(parts[2])
        let expected = NoteFormat.keyID(name: name, type: type, publicKey: Array(key.publicKey.rawRepresentation))
        guard expected == id else {
            throw NoteError(.invalidKey, "witness key ID does not match the key name and public key")
        }
        self.init(name: name, key: key)
    }

    /// `PRIVATE+KEY+<name>+<hex key ID>+base64(0x04 || seed)`. Secret: handle with care.
    public var skey: String {
        "PRIVATE+KEY+\(name)+\(NoteFormat.hexID(keyID))+\(Base64.encode([CosignatureFormat.type] + Array(key.rawRepresentation)))"
    }

    /// The matching verifier.
    public var verifier: CosignatureVerifier {
        // The name was validated and the key is a valid Ed25519 key, so this cannot fail.
        try! CosignatureVerifier(name: name, publicKey: Array(key.publicKey.rawRepresentation))
    }

    public var vkey: String { verifier.vkey }

    /// The cosignature line `— <name> base64(keyID || timestamp || signature)\n` for a
    /// checkpoint's note text (which must be a valid checkpoint), at `timestamp` (POSIX
    /// seconds, 1...2^63-1: a witness never omits the time).
    public func cosign(text: String, timestamp: UInt64) throws -> String {
        _ = try Checkpoint.parse(text: text)
        guard timestamp > 0, timestamp <= CosignatureFormat.maxTimestamp else {
            throw NoteError(.invalidText, "cosignature timestamp must be 1...2^63-1, got \(timestamp)")
        }
        let message = CosignatureFormat.message(text: Array(text.utf8), timestamp: timestamp)
        let sig: [UInt8]
        do { sig = Array(try key.signature(for: message)) } catch {
            throw NoteError(.invalidKey, "Ed25519 signing failed")
        }
        return "— \(name) \(Base64.encode(NoteFormat.bigEndian(keyID) + CosignatureFormat.bigEndian64(timestamp) + sig))\n"
    }
}

extension Checkpoint {
    /// Lowercase hex SHA-256 of an origin line (without its newline): the `<origin hash>` of
    /// the tlog-witness monitoring path, and a safe file name for per-log state.
    public static func originHash(_ origin: String) -> String {
        Hex.encode(Array(SHA256.hash(data: Array(origin.utf8))))
    }
}
