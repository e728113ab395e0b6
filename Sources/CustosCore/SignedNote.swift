import Crypto

// C2SP signed notes (c2sp.org/signed-note), Ed25519 only (signature type 0x01).
//
// Key encodings follow golang.org/x/mod/sumdb/note:
//   vkey: <name>+<hex key ID, 8 lowercase digits>+base64(0x01 || 32-byte public key)
//   skey: PRIVATE+KEY+<name>+<hex key ID>+base64(0x01 || 32-byte seed)
// Base64 may itself contain '+', so both are split on the first '+' separators only.

// MARK: - Errors

/// Why a key, note or checkpoint was rejected. The message says what and where
/// (1-based line numbers within the note); it never contains key material or signatures.
public struct NoteError: Error, CustomStringConvertible, Equatable, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// The note's syntax is wrong (UTF-8, control characters, blank line, signature lines, base64).
        public static let malformed = Code("malformed")
        /// The note exceeds the size limit or the signature-count limit.
        public static let tooLarge = Code("tooLarge")
        /// A signature from a known key (name and key ID match) does not verify.
        public static let badSignature = Code("badSignature")
        /// No signature from any of the given verifiers was present.
        public static let noVerifiedSignature = Code("noVerifiedSignature")
        /// Several different verifiers share the name and key ID of a signature.
        public static let ambiguousKey = Code("ambiguousKey")
        /// A vkey or skey string could not be parsed or is inconsistent.
        public static let invalidKey = Code("invalidKey")
        /// A key name is empty or contains spaces, '+' or control characters.
        public static let invalidName = Code("invalidName")
        /// Text to be signed is not a valid note text (empty, no final newline, control characters).
        public static let invalidText = Code("invalidText")
        /// The note text is not a well-formed checkpoint (c2sp.org/tlog-checkpoint).
        public static let malformedCheckpoint = Code("malformedCheckpoint")
        /// The checkpoint origin does not equal the log key's name.
        public static let originMismatch = Code("originMismatch")
    }

    public let code: Code
    public let message: String
    /// 1-based line within the note or checkpoint text, when the problem has one.
    public let line: Int?

    public init(_ code: Code, _ message: String, line: Int? = nil) {
        self.code = code
        self.message = message
        self.line = line
    }

    public var description: String {
        if let line { return "\(code): line \(line): \(message)" }
        return "\(code): \(message)"
    }
}

// MARK: - Shared helpers

enum NoteFormat {
    static let newline: UInt8 = 0x0A
    /// "— " (U+2014 EM DASH, U+0020 SPACE) in UTF-8.
    static let sigPrefix: [UInt8] = [0xE2, 0x80, 0x94, 0x20]
    static let ed25519Type: UInt8 = 0x01

    /// nil if `name` is a valid key name; otherwise the reason.
    /// Valid: non-empty, no Unicode White_Space, no '+', no control characters (Cc).
    static func nameProblem(_ name: some StringProtocol) -> String? {
        if name.isEmpty { return "key name is empty" }
        for s in name.unicodeScalars {
            if s == "+" { return "key name contains '+'" }
            if s.properties.isWhitespace { return "key name contains a space character" }
            if s.properties.generalCategory == .control { return "key name contains a control character" }
        }
        return nil
    }

    static func keyID(name: String, type: UInt8, publicKey: [UInt8]) -> UInt32 {
        var h = SHA256()
        h.update(data: Array(name.utf8))
        h.update(data: [newline, type])
        h.update(data: publicKey)
        let d = Array(h.finalize())
        return UInt32(d[0]) << 24 | UInt32(d[1]) << 16 | UInt32(d[2]) << 8 | UInt32(d[3])
    }

    static func bigEndian(_ v: UInt32) -> [UInt8] {
        [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)]
    }

    static func hexID(_ v: UInt32) -> String { Hex.encode(bigEndian(v)) }

    /// Exactly 8 lowercase hex digits.
    static func parseHexID(_ s: Substring) -> UInt32? {
        let u = Array(s.utf8)
        guard u.count == 8 else { return nil }
        var v: UInt32 = 0
        for c in u {
            switch c {
            case 48...57: v = v << 4 | UInt32(c - 48)
            case 97...102: v = v << 4 | UInt32(c - 87)
            default: return nil
            }
        }
        return v
    }

    /// Splits on the first `n` '+' characters; the last part keeps any further '+'.
    static func splitPlus(_ s: String, parts n: Int) -> [Substring]? {
        let out = s.split(separator: "+", maxSplits: n - 1, omittingEmptySubsequences: false)
        return out.count == n ? out : nil
    }
}

// MARK: - Verifier

/// An Ed25519 note verifier key (signature type 0x01).
public struct NoteVerifier: Sendable, Equatable {
    public let name: String
    public let keyID: UInt32
    /// The 32-byte Ed25519 public key.
    public let publicKey: [UInt8]

    /// Parses `<name>+<8 lowercase hex digits>+base64(0x01 || 32-byte public key)`.
    /// The key ID must equal SHA-256(name || 0x0A || 0x01 || key)[:4].
    public init(vkey: String) throws {
        guard let parts = NoteFormat.splitPlus(vkey, parts: 3) else {
            throw NoteError(.invalidKey, "verifier key must have three '+'-separated parts")
        }
        if let p = NoteFormat.nameProblem(parts[0]) { throw NoteError(.invalidKey, "verifier key: \(p)") }
        guard let id = NoteFormat.parseHexID(parts[1]) else {
            throw NoteError(.invalidKey, "verifier key ID must be 8 lowercase hex digits")
        }
        guard let raw = Base64.decode(parts[2]) else {
            throw NoteError(.invalidKey, "verifier key material is not valid base64")
        }
        guard raw.first == NoteFormat.ed25519Type else {
            throw NoteError(.invalidKey, "verifier key has an unsupported signature type (only 0x01 Ed25519)")
        }
        guard raw.count == 33 else {
            throw NoteError(.invalidKey, "Ed25519 verifier key must be 32 bytes, got \(raw.count - 1)")
        }
        try self.init(name: String(parts[0]), publicKey: Array(raw.dropFirst()))
        guard keyID == id else {
            throw NoteError(.invalidKey, "verifier key ID does not match the key name and public key")
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
        self.keyID = NoteFormat.keyID(name: name, type: NoteFormat.ed25519Type, publicKey: publicKey)
    }

    /// `<name>+<hex key ID>+base64(0x01 || public key)`.
    public var vkey: String {
        "\(name)+\(NoteFormat.hexID(keyID))+\(Base64.encode([NoteFormat.ed25519Type] + publicKey))"
    }

    /// Verifies a raw Ed25519 signature (without the 4-byte key ID) over `text`.
    public func verify(text: String, signature: [UInt8]) -> Bool {
        verify(text: Array(text.utf8), signature: signature)
    }

    func verify(text: [UInt8], signature: [UInt8]) -> Bool {
        guard signature.count == 64,
              let key = try? Curve25519.Signing.PublicKey(rawRepresentation: publicKey) else { return false }
        return key.isValidSignature(signature, for: text)
    }
}

// MARK: - Signer

/// An Ed25519 note signer (signature type 0x01).
public struct NoteSigner: Sendable {
    public let name: String
    public let keyID: UInt32
    private let key: Curve25519.Signing.PrivateKey

    private init(name: String, key: Curve25519.Signing.PrivateKey) {
        self.name = name
        self.key = key
        self.keyID = NoteFormat.keyID(name: name, type: NoteFormat.ed25519Type,
                                      publicKey: Array(key.publicKey.rawRepresentation))
    }

    /// A fresh random key. The name must be non-empty, without spaces, '+' or control characters.
    public static func generate(name: String) throws -> NoteSigner {
        if let p = NoteFormat.nameProblem(name) { throw NoteError(.invalidName, p) }
        return NoteSigner(name: name, key: Curve25519.Signing.PrivateKey())
    }

    /// Parses `PRIVATE+KEY+<name>+<8 lowercase hex digits>+base64(0x01 || 32-byte seed)`
    /// (the golang.org/x/mod/sumdb/note format); the key ID must match the derived public key.
    public init(skey: String) throws {
        guard let parts = NoteFormat.splitPlus(skey, parts: 5), parts[0] == "PRIVATE", parts[1] == "KEY" else {
            throw NoteError(.invalidKey, "signer key must be PRIVATE+KEY+<name>+<id>+<key>")
        }
        if let p = NoteFormat.nameProblem(parts[2]) { throw NoteError(.invalidKey, "signer key: \(p)") }
        guard let id = NoteFormat.parseHexID(parts[3]) else {
            throw NoteError(.invalidKey, "signer key ID must be 8 lowercase hex digits")
        }
        guard let raw = Base64.decode(parts[4]) else {
            throw NoteError(.invalidKey, "signer key material is not valid base64")
        }
        guard raw.first == NoteFormat.ed25519Type else {
            throw NoteError(.invalidKey, "signer key has an unsupported signature type (only 0x01 Ed25519)")
        }
        guard raw.count == 33, let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: raw.dropFirst()) else {
            throw NoteError(.invalidKey, "Ed25519 signer key seed must be 32 bytes")
        }
        self.init(name: String(parts[2]), key: key)
        guard keyID == id else {
            throw NoteError(.invalidKey, "signer key ID does not match the key name and public key")
        }
    }

    /// `PRIVATE+KEY+<name>+<hex key ID>+base64(0x01 || seed)`. Secret: handle with care.
    public var skey: String {
        "PRIVATE+KEY+\(name)+\(NoteFormat.hexID(keyID))+\(Base64.encode([NoteFormat.ed25519Type] + Array(key.rawRepresentation)))"
    }

    /// The matching verifier.
    public var verifier: NoteVerifier {
        // The name was validated and the key is a valid Ed25519 key, so this cannot fail.
        try! NoteVerifier(name: name, publicKey: Array(key.publicKey.rawRepresentation))
    }

    public var vkey: String { verifier.vkey }

    /// Signs `text` (non-empty, ending in "\n") and returns the complete signed note:
    /// `text + "\n" + "— <name> base64(keyID || signature)\n"`.
    public func sign(_ text: String) throws -> String {
        try SignedNote.sign(text, signers: [self])
    }

    /// The raw 64-byte Ed25519 signature of `text`.
    func rawSignature(_ text: [UInt8]) throws -> [UInt8] {
        do { return Array(try key.signature(for: text)) } catch {
            throw NoteError(.invalidKey, "Ed25519 signing failed")
        }
    }

    /// `— <name> base64(keyID || signature)\n`
    func signatureLine(for text: [UInt8]) throws -> String {
        let sig = try rawSignature(text)
        return "— \(name) \(Base64.encode(NoteFormat.bigEndian(keyID) + sig))\n"
    }
}

// MARK: - Notes

/// A signature line that was not verified (its key is not among the given verifiers),
/// e.g. a witness cosignature (type 0x04) or a rotated log key.
public struct NoteSignature: Sendable, Equatable {
    public let name: String
    public let keyID: UInt32
    /// The signature bytes after the 4-byte key ID.
    public let bytes: [UInt8]

    public init(name: String, keyID: UInt32, bytes: [UInt8]) {
        self.name = name
        self.keyID = keyID
        self.bytes = bytes
    }

    /// The signature line: `— <name> base64(keyID || bytes)\n`.
    public var line: String { "— \(name) \(Base64.encode(NoteFormat.bigEndian(keyID) + bytes))\n" }
}

/// A note whose text was verified by at least one trusted key.
public struct OpenedNote: Sendable, Equatable {
    /// The note text, including its final newline, excluding the separating blank line.
    public let text: String
    /// Names of the verifiers whose signatures verified, in order of first appearance.
    public let verifiedBy: [String]
    /// Signatures from keys not among the verifiers (ignored, unverified), duplicates removed.
    public let otherSignatures: [NoteSignature]
}

public enum SignedNote {
    /// Notes larger than this are rejected.
    public static let maxNoteSize = 1 << 20
    /// Notes with more signature lines than this are rejected.
    public static let maxSignatures = 100

    /// Signs `text` with every signer, in order, and returns the signed note.
    public static func sign(_ text: String, signers: [NoteSigner]) throws -> String {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty, bytes.last == NoteFormat.newline else {
            throw NoteError(.invalidText, "note text must be non-empty and end in a newline")
        }
        guard !signers.isEmpty else { throw NoteError(.invalidText, "no signers given") }
        var line = 1
        for b in bytes {
            if b == NoteFormat.newline { line += 1 } else if b < 0x20 {
                throw NoteError(.invalidText, "note text contains control character 0x\(Hex.encode([b]))", line: line)
            }
        }
        var out = text + "\n"
        for s in signers { out += try s.signatureLine(for: bytes) }
        guard out.utf8.count <= maxNoteSize, signers.count <= maxSignatures else {
            throw NoteError(.tooLarge, "signed note would exceed the size or signature limits")
        }
        return out
    }

    /// Opens and verifies a signed note (see the `[UInt8]` overload).
    public static func open(_ note: String, verifiers: [NoteVerifier]) throws -> OpenedNote {
        try open(Array(note.utf8), verifiers: verifiers)
    }

    /// Opens and verifies a signed note, strictly per c2sp.org/signed-note:
    /// valid UTF-8, no control characters but newline, text separated from the signature
    /// lines by the last blank line, each signature line `— <name> <base64>` with at least
    /// 4 decoded bytes, at most `maxSignatures` lines and `maxNoteSize` bytes.
    /// Signatures whose (name, key ID) match no verifier are ignored; a matching signature
    /// that fails to verify rejects the whole note; at least one must verify.
    public static func open(_ note: [UInt8], verifiers: [NoteVerifier]) throws -> OpenedNote {
        let parsed = try parse(note)
        var verifiedBy: [String] = []
        var others: [NoteSignature] = []
        for (sig, lineNo) in zip(parsed.signatures, parsed.signatureLines) {
            let matches = verifiers.filter { $0.name == sig.name && $0.keyID == sig.keyID }
            guard let v = matches.first else {
                if !others.contains(sig) { others.append(sig) }
                continue
            }
            if matches.contains(where: { $0 != v }) {
                throw NoteError(.ambiguousKey,
                                "several verifiers have key name \"\(sig.name)\" and ID \(NoteFormat.hexID(sig.keyID))",
                                line: lineNo)
            }
            guard v.verify(text: parsed.text, signature: sig.bytes) else {
                throw NoteError(.badSignature,
                                "signature by key \"\(sig.name)\" (ID \(NoteFormat.hexID(sig.keyID))) does not verify",
                                line: lineNo)
            }
            if !verifiedBy.contains(v.name) { verifiedBy.append(v.name) }
        }
        guard !verifiedBy.isEmpty else {
            throw NoteError(.noVerifiedSignature, "no signature from a known key (\(parsed.signatures.count) signature line(s) checked)")
        }
        return OpenedNote(text: String(decoding: parsed.text, as: UTF8.self),
                          verifiedBy: verifiedBy, otherSignatures: others)
    }

    /// A note split into its text and signature lines, nothing verified yet.
    public struct Parsed: Sendable, Equatable {
        /// The note text, including its final newline, excluding the separating blank line.
        public let text: [UInt8]
        /// Every signature line, in order (duplicates kept).
        public let signatures: [NoteSignature]
        /// The 1-based line number of each signature within the note.
        public let signatureLines: [Int]
    }

    /// Splits a note strictly per c2sp.org/signed-note (the syntax checks of `open`) without
    /// verifying any signature: for verifiers of other signature types (cosignatures).
    public static func parse(_ note: [UInt8]) throws -> Parsed {
        guard note.count <= maxNoteSize else {
            throw NoteError(.tooLarge, "note is \(note.count) bytes, more than the \(maxNoteSize)-byte limit")
        }
        try checkCharacters(note)

        // The text ends at the last "\n\n": text = note[...i], signatures = note[(i+2)...].
        var split: Int? = nil
        var i = note.count - 2
        while i >= 0 {
            if note[i] == NoteFormat.newline && note[i + 1] == NoteFormat.newline { split = i; break }
            i -= 1
        }
        guard let split else {
            throw NoteError(.malformed, "no blank line separating the text from the signatures")
        }
        let textBytes = Array(note[...split])
        let sigBytes = note[(split + 2)...]
        var lineNo = textBytes.reduce(0) { $0 + ($1 == NoteFormat.newline ? 1 : 0) } + 2
        guard !sigBytes.isEmpty else {
            throw NoteError(.malformed, "no signature lines after the blank line", line: lineNo)
        }
        guard sigBytes.last == NoteFormat.newline else {
            throw NoteError(.malformed, "the last signature line does not end in a newline",
                            line: lineNo + sigBytes.reduce(0) { $0 + ($1 == NoteFormat.newline ? 1 : 0) })
        }
        let lines = sigBytes.dropLast().split(separator: NoteFormat.newline, omittingEmptySubsequences: false)
        guard lines.count <= maxSignatures else {
            throw NoteError(.tooLarge, "note has \(lines.count) signature lines, more than \(maxSignatures)")
        }
        var sigs: [NoteSignature] = []
        var numbers: [Int] = []
        for line in lines {
            sigs.append(try parseSignatureLine(line, lineNo: lineNo))
            numbers.append(lineNo)
            lineNo += 1
        }
        return Parsed(text: textBytes, signatures: sigs, signatureLines: numbers)
    }

    /// Valid UTF-8 and no control characters other than newline.
    static func checkCharacters(_ note: [UInt8]) throws {
        var line = 1
        var it = note.makeIterator()
        var decoder = UTF8()
        loop: while true {
            switch decoder.decode(&it) {
            case .scalarValue(let s):
                if s == "\n" { line += 1 } else if s.value < 0x20 {
                    throw NoteError(.malformed, "control character U+\(Hex.encode([UInt8(0), UInt8(s.value)]).uppercased())",
                                    line: line)
                }
            case .emptyInput: break loop
            case .error: throw NoteError(.malformed, "invalid UTF-8", line: line)
            }
        }
    }

    /// Parses one signature line `— <name> <base64>`, with or without its final newline.
    public static func parseSignatureLine(_ line: String) throws -> NoteSignature {
        var bytes = Array(line.utf8)
        if bytes.last == NoteFormat.newline { bytes.removeLast() }
        if let c = bytes.first(where: { $0 < 0x20 }) {
            throw NoteError(.malformed, "control character 0x\(Hex.encode([c])) in a signature line")
        }
        return try parseSignatureLine(bytes[...], lineNo: 1)
    }

    static func parseSignatureLine(_ line: ArraySlice<UInt8>, lineNo: Int) throws -> NoteSignature {
        guard line.starts(with: NoteFormat.sigPrefix) else {
            throw NoteError(.malformed, "signature line does not start with an em dash and a space", line: lineNo)
        }
        let rest = line.dropFirst(NoteFormat.sigPrefix.count)
        let fields = rest.split(separator: 0x20, omittingEmptySubsequences: false)
        guard fields.count == 2 else {
            throw NoteError(.malformed, "signature line must be \"— <name> <signature>\" with single spaces",
                            line: lineNo)
        }
        let name = String(decoding: fields[0], as: UTF8.self)
        if let p = NoteFormat.nameProblem(name) { throw NoteError(.malformed, "signature line: \(p)", line: lineNo) }
        guard let raw = Base64.decode(String(decoding: fields[1], as: UTF8.self)) else {
            throw NoteError(.malformed, "signature is not valid base64", line: lineNo)
        }
        guard raw.count >= 4 else {
            throw NoteError(.malformed, "signature is shorter than its 4-byte key ID", line: lineNo)
        }
        let id = UInt32(raw[0]) << 24 | UInt32(raw[1]) << 16 | UInt32(raw[2]) << 8 | UInt32(raw[3])
        return NoteSignature(name: name, keyID: id, bytes: Array(raw.dropFirst(4)))
    }
}
