import CustosCore
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The trail's *minimum index* (C2SP tlog-tiles, "Pruning"): entries below it are no longer
/// published and their entry bundles may have been deleted. Tiles are never pruned, so the
/// tree, its root and inclusion proofs of every entry at or above the minimum index stay
/// verifiable.
///
/// Stored in `trail/pruned` as a signed note (same key as the checkpoints) so that nobody
/// without the signing key can hide deleted bundles behind a forged minimum index:
///
/// ```
/// custos.pruned/v1
/// <origin>
/// <minimum index>
///
/// — <origin> <signature>
/// ```
///
/// The minimum index is always a multiple of 256 (whole entry bundles) and only grows.
public enum TrailPruning {
    public static let header = "custos.pruned/v1"

    /// The minimum index recorded in `layout` (0 when the trail was never pruned). Throws
    /// when the file exists but does not verify with `verifier` or is malformed.
    public static func minimumIndex(layout: TrailLayout, verifier: NoteVerifier) throws -> UInt64 {
        guard let bytes = try FileIO.readFile(layout.prunedPath, limit: 1 << 16) else { return 0 }
        let opened: OpenedNote
        do {
            opened = try SignedNote.open(bytes, verifiers: [verifier])
        } catch {
            throw TrailError(.damaged, "\(layout.prunedPath) does not verify with key \(verifier.name): \(error)")
        }
        let lines = opened.text.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count == 4, lines[0] == header, lines[1] == verifier.name, lines[3].isEmpty,
              let n = UInt64(lines[2]), String(n) == lines[2], n % 256 == 0 else {
            throw TrailError(.damaged, "\(layout.prunedPath) is not a \(header) note for \(verifier.name)")
        }
        return n
    }

    /// Note text for `minimumIndex`.
    static func text(origin: String, minimumIndex: UInt64) -> String {
        "\(header)\n\(origin)\n\(minimumIndex)\n"
    }

    public struct Result: Sendable, Equatable {
        /// The minimum index before and after.
        public var previous: UInt64
        public var minimumIndex: UInt64
        /// Entry bundle files deleted (full bundles and any partial bundles of the same index).
        public var deletedFiles: [String]
    }

    /// Raises the minimum index to `newMinimum` (a multiple of 256, at most the number of
    /// entries in full bundles under the current checkpoint) and deletes the entry bundles
    /// below it. The new minimum index is made durable *before* any bundle is deleted, so a
    /// crash in between leaves a trail that verifies (bundles below the minimum index are
    /// allowed to still exist). Never lowers the minimum index. Tiles are not touched.
    ///
    /// The caller decides what may be pruned (retention, archive verified): this only does it.
    public static func prune(layout: TrailLayout, signer: NoteSigner, below newMinimum: UInt64, dryRun: Bool = false) throws -> Result {
        let reader = try TrailReader(layout: layout, verifier: signer.verifier)
        let size = reader.size
        guard newMinimum % 256 == 0 else {
            throw TrailError(.invalidArgument, "the minimum index must be a multiple of 256 (whole entry bundles), not \(newMinimum)")
        }
        guard newMinimum <= (size / 256) * 256 else {
            throw TrailError(.invalidArgument, "cannot prune below \(newMinimum): only \((size / 256) * 256) entries are in full bundles (size \(size))")
        }
        let previous = reader.minimumIndex
        var result = Result(previous: previous, minimumIndex: max(previous, newMinimum), deletedFiles: [])
        guard newMinimum > previous else { return result }
        var files: [String] = []
        for b in (previous / 256)..<(newMinimum / 256) {
            let full = layout.bundlePath(index: b, width: 256)
            if FileIO.exists(full) { files.append(full) }
            let partialDir = full + ".p"
            for name in FileIO.listDirectory(partialDir) { files.append(partialDir + "/" + name) }
        }
        result.deletedFiles = files
        if dryRun { return result }
        let note = try signer.sign(text(origin: signer.name, minimumIndex: newMinimum))
        try FileIO.replaceAtomically(layout.prunedPath, Array(note.utf8))
        var dirs = Set<String>()
        for f in files {
            if unlink(f) != 0 && errno != ENOENT {
                throw TrailError(.io, "cannot delete \(f): \(FileIO.errnoText())")
            }
            dirs.insert(FileIO.directory(of: f))
        }
        for d in dirs where d.hasSuffix(".p") {
            _ = rmdir(d)
            dirs.insert(FileIO.directory(of: d))
        }
        for d in dirs where FileIO.exists(d) { try FileIO.fsyncPath(d) }
        return result
    }
}
