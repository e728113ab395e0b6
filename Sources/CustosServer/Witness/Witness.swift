import CustosCore
import CustosTrail
import Foundation

/// A refusal of `add-checkpoint`, with the HTTP status c2sp.org/tlog-witness assigns to it.
public struct WitnessError: Error, Sendable, Equatable, CustomStringConvertible {
    /// 400 malformed request, 403 no valid log signature, 404 unknown origin, 409 old size is
    /// not the cosigned size, 422 not consistent, 500 the witness's own state is unusable.
    public var status: Int
    public var message: String
    /// With 409: the size of the latest cosigned checkpoint (the response body).
    public var cosignedSize: UInt64?

    public init(_ status: Int, _ message: String, cosignedSize: UInt64? = nil) {
        self.status = status
        self.message = message
        self.cosignedSize = cosignedSize
    }

    public var description: String { "\(status): \(message)" }
}

/// One log a witness cosigns: its origin line and the key its checkpoints must be signed with.
public struct WitnessedLog: Sendable, Equatable {
    public var origin: String
    public var verifier: NoteVerifier
    public init(origin: String, verifier: NoteVerifier) { self.origin = origin; self.verifier = verifier }
}

/// The witness of c2sp.org/tlog-witness, without HTTP: checks an `add-checkpoint` request
/// against the latest checkpoint it cosigned for that log, and cosigns only a checkpoint
/// that extends it. A cosigned size is never rolled back and a cosigned tree never forked:
/// every new checkpoint must come with a consistency proof from exactly the stored size and
/// root.
///
/// State: one file per log, `<state>/<hex SHA-256 of the origin>`, holding the latest
/// cosigned checkpoint note (the log's signature and the witness's cosignature). It is
/// replaced atomically (temp file, fsync, rename, fsync directory) before the cosignature is
/// returned; check and update happen under one lock, so two requests cannot race each other
/// into a rollback.
public final class Witness: @unchecked Sendable {
    /// Largest `add-checkpoint` body: 63 proof lines and a note with many signatures.
    public static let maxBodyBytes = 256 << 10
    /// Proof lines allowed (c2sp.org/tlog-witness: a client sends at most 63).
    public static let maxProofLines = 63

    public let signer: CosignatureSigner
    public let logs: [String: WitnessedLog]
    public let stateDirectory: String
    /// POSIX seconds for the cosignature timestamp (tests inject a clock).
    let now: @Sendable () -> UInt64
    private let lock = NSLock()
    /// Cosigned checkpoints read or written so far, by origin.
    private var cache: [String: SignedState] = [:]

    struct SignedState {
        var size: UInt64
        var root: MerkleHash
        var note: [UInt8]
    }

    public init(signer: CosignatureSigner, logs: [WitnessedLog], stateDirectory: String,
                now: @escaping @Sendable () -> UInt64 = { UInt64(max(1, Date().timeIntervalSince1970)) }) throws {
        self.signer = signer
        var byOrigin: [String: WitnessedLog] = [:]
        for l in logs {
            guard byOrigin[l.origin] == nil else { throw WitnessError(500, "log \(l.origin) is configured twice") }
            byOrigin[l.origin] = l
        }
        self.logs = byOrigin
        self.stateDirectory = stateDirectory
        self.now = now
        try DurableFile.makeDirectories(stateDirectory)
    }

    /// `<state>/<hex SHA-256 of origin>`: the origin is untrusted text, the file name is not.
    public func statePath(origin: String) -> String {
        stateDirectory + "/" + Self.originHash(origin)
    }

    /// Lowercase hex SHA-256 of the origin (also the monitoring path of tlog-witness).
    public static func originHash(_ origin: String) -> String { Checkpoint.originHash(origin) }

    /// Handles an `add-checkpoint` body; returns the cosignature line(s) to answer 200 with.
    public func addCheckpoint(_ body: [UInt8]) throws(WitnessError) -> String {
        guard body.count <= Self.maxBodyBytes else {
            throw WitnessError(413, "the request is \(body.count) bytes, more than \(Self.maxBodyBytes)")
        }
        let request = try Self.parseRequest(body)
        // The note's syntax, then its text as a checkpoint: malformed is 400.
        let parsed: SignedNote.Parsed
        let cp: Checkpoint
        do {
            parsed = try SignedNote.parse(request.note)
            cp = try Checkpoint.parse(text: String(decoding: parsed.text, as: UTF8.self))
        } catch {
            throw WitnessError(400, "the checkpoint note is malformed: \(error)")
        }
        guard let log = logs[cp.origin] else {
            throw WitnessError(404, "this witness does not witness the log \"\(cp.origin.prefix(200))\"")
        }
        do { _ = try SignedNote.open(request.note, verifiers: [log.verifier]) } catch {
            throw WitnessError(403, "the checkpoint is not signed by the key of \(log.origin) (\(log.verifier.name)): \(error)")
        }
        guard request.oldSize <= cp.size else {
            throw WitnessError(400, "old size \(request.oldSize) is larger than the checkpoint size \(cp.size)")
        }
        lock.lock()
        defer { lock.unlock() }
        let stored = try state(log)
        let storedSize = stored?.size ?? 0
        guard request.oldSize == storedSize else {
            throw WitnessError(409, "old size \(request.oldSize) is not the size this witness last cosigned for \(log.origin) (\(storedSize))",
                               cosignedSize: storedSize)
        }
        if cp.size == 0 && cp.rootHash != Merkle.emptyRoot {
            throw WitnessError(422, "a checkpoint of size 0 must have the empty tree's root hash")
        }
        if request.oldSize == 0 {
            guard request.proof.isEmpty else { throw WitnessError(422, "old size 0 takes no consistency proof, got \(request.proof.count) line(s)") }
        } else if let stored {
            do {
                try Merkle.verifyConsistency(size1: stored.size, size2: cp.size, root1: stored.root, root2: cp.rootHash, proof: request.proof)
            } catch {
                let what = cp.size == stored.size ? "a different root hash at the cosigned size \(stored.size) (a fork)"
                                                  : "no proof that size \(cp.size) extends the cosigned size \(stored.size)"
                throw WitnessError(422, "refused for \(log.origin): \(what): \(error)")
            }
        }
        let line: String
        do { line = try signer.cosign(text: String(decoding: parsed.text, as: UTF8.self), timestamp: now()) } catch {
            throw WitnessError(500, "cannot cosign: \(error)")
        }
        // Persist before answering: the log's note with this witness's cosignature added.
        if stored == nil || cp.size > storedSize {
            var note = request.note
            let own = parsed.signatures.filter { $0.name == signer.name && $0.keyID == signer.keyID }
            if own.isEmpty, note.count + line.utf8.count <= SignedNote.maxNoteSize,
               parsed.signatures.count < SignedNote.maxSignatures { note += Array(line.utf8) }
            do { try DurableFile.replace(statePath(origin: log.origin), note) } catch {
                throw WitnessError(500, "cannot record the cosigned checkpoint: \(error)")
            }
            cache[log.origin] = SignedState(size: cp.size, root: cp.rootHash, note: note)
        }
        return line
    }

    /// The latest cosigned checkpoint note of `origin` (the monitoring endpoint), or nil.
    public func cosignedCheckpoint(origin: String) throws(WitnessError) -> [UInt8]? {
        guard let log = logs[origin] else { return nil }
        lock.lock()
        defer { lock.unlock() }
        return try state(log)?.note
    }

    /// The log whose origin hashes to `hash` (lowercase hex), if witnessed.
    public func origin(hash: String) -> String? {
        logs.keys.first { Self.originHash($0) == hash }
    }

    /// Under the lock. Reads and checks the stored checkpoint once; a state file that does
    /// not verify stops cosigning for that log (500) rather than starting again from zero,
    /// which would let a rolled-back log through.
    private func state(_ log: WitnessedLog) throws(WitnessError) -> SignedState? {
        if let s = cache[log.origin] { return s }
        let path = statePath(origin: log.origin)
        let bytes: [UInt8]?
        do { bytes = try DurableFile.read(path, limit: SignedNote.maxNoteSize) } catch {
            throw WitnessError(500, "the witness state \(path) cannot be read: \(error)")
        }
        guard let bytes else { return nil }
        do {
            let opened = try SignedNote.open(bytes, verifiers: [log.verifier])
            let cp = try Checkpoint.parse(text: opened.text)
            guard cp.origin == log.origin else { throw NoteError(.originMismatch, "origin \(cp.origin)") }
            let s = SignedState(size: cp.size, root: cp.rootHash, note: bytes)
            cache[log.origin] = s
            return s
        } catch {
            throw WitnessError(500, "the witness state \(path) for \(log.origin) does not verify with the log's key (\(error)); refusing to cosign until an operator looks")
        }
    }

    // MARK: Request syntax

    struct Request {
        var oldSize: UInt64
        var proof: [MerkleHash]
        var note: [UInt8]
    }

    /// `old <N>\n`, up to 63 base64 hash lines, an empty line, then the checkpoint note.
    static func parseRequest(_ body: [UInt8]) throws(WitnessError) -> Request {
        var pos = 0
        var lineNo = 0
        func nextLine() throws(WitnessError) -> ArraySlice<UInt8> {
            lineNo += 1
            guard let nl = body[pos...].firstIndex(of: 0x0A) else {
                throw WitnessError(400, "line \(lineNo): missing, or not terminated by a newline")
            }
            defer { pos = nl + 1 }
            return body[pos..<nl]
        }
        let first = try nextLine()
        let prefix = Array("old ".utf8)
        guard first.starts(with: prefix), let old = Checkpoint.parseSize(first.dropFirst(prefix.count)) else {
            throw WitnessError(400, "line 1 must be \"old <size>\" (decimal, no leading zeros)")
        }
        var proof: [MerkleHash] = []
        while true {
            let line = try nextLine()
            if line.isEmpty { break }
            guard proof.count < maxProofLines else {
                throw WitnessError(400, "more than \(maxProofLines) consistency proof lines")
            }
            guard let h = MerkleHash(base64: String(decoding: line, as: UTF8.self)) else {
                throw WitnessError(400, "line \(lineNo): a consistency proof line must be the base64 of a 32-byte hash")
            }
            proof.append(h)
        }
        guard pos < body.count else { throw WitnessError(400, "no checkpoint after the empty line") }
        return Request(oldSize: old, proof: proof, note: Array(body[pos...]))
    }
}
