// Transparency log checkpoints (c2sp.org/tlog-checkpoint): the text of a signed note.

/// A log's tree head: origin, tree size, root hash and optional extension lines.
public struct Checkpoint: Sendable, Equatable {
    public var origin: String
    public var size: UInt64
    public var rootHash: MerkleHash
    /// Opaque, non-empty extension lines (without newlines). Not recommended.
    public var extensions: [String]

    public init(origin: String, size: UInt64, rootHash: MerkleHash, extensions: [String] = []) {
        self.origin = origin
        self.size = size
        self.rootHash = rootHash
        self.extensions = extensions
    }

    /// The note text: `origin\nsize\nbase64(root)\n` then each extension line and "\n".
    /// Only meaningful for a valid checkpoint; `validate()` checks that it parses back.
    public var text: String {
        var t = "\(origin)\n\(size)\n\(rootHash.base64)\n"
        for e in extensions { t += e + "\n" }
        return t
    }

    /// Throws unless `text` parses back to exactly this checkpoint (origin and extensions
    /// non-empty, without newlines or control characters).
    public func validate() throws {
        guard try Checkpoint.parse(text: text) == self else {
            throw NoteError(.malformedCheckpoint, "checkpoint does not round-trip through its text")
        }
    }

    /// Parses checkpoint note text strictly: at least three lines, every line non-empty and
    /// newline-terminated; origin non-empty; size in decimal without leading zeros (unless
    /// "0") that fits in UInt64; root hash the padded base64 of exactly 32 bytes; any further
    /// lines are extension lines. No control characters other than newline.
    public static func parse(text: String) throws -> Checkpoint {
        let bytes = Array(text.utf8)
        guard bytes.last == 0x0A else {
            throw NoteError(.malformedCheckpoint, "checkpoint text must end in a newline")
        }
        let lines = bytes.dropLast().split(separator: 0x0A, omittingEmptySubsequences: false)
        guard lines.count >= 3 else {
            throw NoteError(.malformedCheckpoint, "checkpoint needs origin, size and root hash lines, got \(lines.count) line(s)")
        }
        for (i, line) in lines.enumerated() {
            guard !line.isEmpty else { throw NoteError(.malformedCheckpoint, "empty line", line: i + 1) }
            if let c = line.first(where: { $0 < 0x20 }) {
                throw NoteError(.malformedCheckpoint, "control character 0x\(Hex.encode([c]))", line: i + 1)
            }
        }
        let origin = String(decoding: lines[0], as: UTF8.self)
        guard let size = parseSize(lines[1]) else {
            throw NoteError(.malformedCheckpoint,
                            "tree size must be a decimal number without leading zeros that fits in 64 bits", line: 2)
        }
        guard let root = MerkleHash(base64: String(decoding: lines[2], as: UTF8.self)) else {
            throw NoteError(.malformedCheckpoint, "root hash must be the base64 encoding of 32 bytes", line: 3)
        }
        let ext = lines.dropFirst(3).map { String(decoding: $0, as: UTF8.self) }
        return Checkpoint(origin: origin, size: size, rootHash: root, extensions: ext)
    }

    /// A tree size as checkpoints (and tlog-witness requests) write it: ASCII decimal, no
    /// leading zeros unless "0", fitting in 64 bits; nil otherwise.
    public static func parseSize(_ d: ArraySlice<UInt8>) -> UInt64? {
        guard !d.isEmpty, d.count <= 20, d.allSatisfy({ (48...57).contains($0) }) else { return nil }
        if d.count > 1 && d.first == 48 { return nil }
        var v: UInt64 = 0
        for c in d {
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(UInt64(c - 48))
            if o1 || o2 { return nil }
            v = a
        }
        return v
    }
}

/// A checkpoint together with the signed note it came from (or was signed into).
public struct SignedCheckpoint: Sendable, Equatable {
    public let checkpoint: Checkpoint
    /// The complete signed note, signature lines included.
    public let note: String

    /// Signs the checkpoint's text with `signer`. The checkpoint must be valid; by convention
    /// (c2sp.org/tlog-checkpoint: the key name SHOULD match the origin) the signer's name must
    /// equal the origin, as `open` will require it.
    public static func sign(_ cp: Checkpoint, signer: NoteSigner) throws -> SignedCheckpoint {
        try cp.validate()
        guard cp.origin == signer.name else {
            throw NoteError(.originMismatch, "checkpoint origin differs from the signer's key name")
        }
        return SignedCheckpoint(checkpoint: cp, note: try signer.sign(cp.text))
    }

    /// Opens a signed checkpoint (see the `[UInt8]` overload).
    public static func open(_ note: String, verifier: NoteVerifier) throws -> SignedCheckpoint {
        try open(Array(note.utf8), verifier: verifier)
    }

    /// Verifies the note with the log's key (other signatures, e.g. witness cosignatures,
    /// are ignored), parses its text as a checkpoint, and requires the checkpoint origin to
    /// equal the verifier's key name — the usual convention, which the tlog-checkpoint spec
    /// recommends (the log's key name SHOULD match the origin line). This stops a key
    /// trusted for one log from vouching for a checkpoint of another origin.
    public static func open(_ note: [UInt8], verifier: NoteVerifier) throws -> SignedCheckpoint {
        let opened = try SignedNote.open(note, verifiers: [verifier])
        let cp = try Checkpoint.parse(text: opened.text)
        guard cp.origin == verifier.name else {
            throw NoteError(.originMismatch, "checkpoint origin is not the log key's name \"\(verifier.name)\"", line: 1)
        }
        return SignedCheckpoint(checkpoint: cp, note: String(decoding: note, as: UTF8.self))
    }
}
