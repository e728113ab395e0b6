import CustosCore
import CustosTrail
import Foundation

/// Witness cosignatures a server collected for its checkpoints:
/// `<data>/cosignatures/<size, 20 digits>` holds the cosignature lines for the checkpoint of
/// that size, one per witness (signed-note signature lines). They are added to the served
/// checkpoint (`GET /trail/checkpoint`) as extra signature lines, the standard place for them,
/// and `custos verify --witness` checks them.
public enum CosignatureStore {
    public static func directory(data: String) -> String { data + "/cosignatures" }

    public static func path(data: String, size: UInt64) -> String {
        let s = String(size)
        return directory(data: data) + "/" + String(repeating: "0", count: max(0, 20 - s.count)) + s
    }

    /// The stored cosignature lines for `size` (each ending in a newline); none if no file.
    public static func lines(data: String, size: UInt64) -> [String] {
        guard let bytes = try? DurableFile.read(path(data: data, size: size), limit: 1 << 20) else { return [] }
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n").map { String($0) + "\n" }
    }

    /// Records `signature` (a verified cosignature) for `size`, replacing an earlier one by
    /// the same key. Callers serialize writes (one submitter per server).
    public static func add(data: String, size: UInt64, signature: NoteSignature) throws {
        let prefix = "— \(signature.name) "
        var kept = lines(data: data, size: size).filter { line in
            // Another key's line stays; this key's older line (same name and key ID) goes.
            guard line.hasPrefix(prefix), let sig = try? SignedNote.parseSignatureLine(line) else { return true }
            return !(sig.name == signature.name && sig.keyID == signature.keyID)
        }
        kept.append(signature.line)
        try DurableFile.replace(path(data: data, size: size), Array(kept.joined().utf8))
    }

    /// The checkpoint note with the cosignatures stored for its size appended (lines it
    /// already carries are not repeated; the note's signature limits are kept).
    public static func attach(note: [UInt8], data: String) -> [UInt8] {
        guard let parsed = try? SignedNote.parse(note),
              let cp = try? Checkpoint.parse(text: String(decoding: parsed.text, as: UTF8.self)) else { return note }
        var out = note
        var count = parsed.signatures.count
        let existing = Set(parsed.signatures.map(\.line))
        for line in lines(data: data, size: cp.size) where !existing.contains(line) {
            guard count < SignedNote.maxSignatures, out.count + line.utf8.count <= SignedNote.maxNoteSize,
                  (try? SignedNote.parseSignatureLine(line)) != nil else { break }
            out += Array(line.utf8)
            count += 1
        }
        return out
    }
}
