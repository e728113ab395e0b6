import CustosCore
import Foundation

/// Appends entries to the trail on disk and signs a checkpoint per commit.
///
/// Durability: each `append` writes the new entry bundles and tiles, and the signed
/// checkpoint and its history copy under temporary names; makes all of them durable (on
/// Linux one syncfs per file system: `trail/`, and `checkpoints/` if mounted elsewhere); then
/// renames the checkpoint into place and then its history copy, each followed by an fsync
/// of its directory. Only then does it return.
/// A crash at any point leaves the last checkpoint and every file it needs intact, so the
/// trail always verifies as a prefix; files written past the checkpoint are overwritten by
/// the next append.
///
/// A commit can also run in two steps (`prepare`, then `complete`), so that the next group's
/// hashing and file writes overlap the current group's sync: `prepare` builds on everything
/// prepared before it (the tip), `complete` makes prepared commits durable and signs the
/// checkpoint of the last. Files a prepared commit writes never replace a file the current
/// checkpoint needs (a partial tile or bundle is named by its width; a level whose partial
/// tile did not change is not rewritten), so a crash at any point still leaves the last
/// checkpoint intact.
///
/// One writer owns a data directory (see `GroupCommitter` for concurrent callers). `prepare`
/// and `append` run on one thread at a time; `complete` may run on another thread while the
/// next `prepare` runs, in the order the commits were prepared.
public final class TrailWriter: @unchecked Sendable {
    public let layout: TrailLayout
    let signer: NoteSigner
    /// Guards `durableSize`, `durableCheckpoint` and `isPoisoned` (read from any thread).
    private let stateLock = NSLock()
    private var durableSize: UInt64
    private var durableCheckpoint: SignedCheckpoint
    private var isPoisoned = false
    /// The size signed in the current checkpoint: every entry below it is durable.
    public var size: UInt64 { stateLock.withLock { durableSize } }
    public var checkpoint: SignedCheckpoint { stateLock.withLock { durableCheckpoint } }
    /// The size once every prepared commit is complete (the `prepare` thread's view).
    public private(set) var tipSize: UInt64
    var partials: [[MerkleHash]]
    var bundle: [UInt8]
    var bundleCount: Int
    var poisoned: Bool {
        get { stateLock.withLock { isPoisoned } }
        set { stateLock.withLock { isPoisoned = newValue } }
    }
    /// Working space for the files of one commit.
    var commitBuffer: [UInt8] = []

    public var origin: String { signer.name }

    init(layout: TrailLayout, signer: NoteSigner, size: UInt64, checkpoint: SignedCheckpoint,
         partials: [[MerkleHash]], bundle: [UInt8], bundleCount: Int) {
        self.layout = layout; self.signer = signer; self.durableSize = size; self.durableCheckpoint = checkpoint
        self.tipSize = size
        self.partials = partials; self.bundle = bundle; self.bundleCount = bundleCount
    }

    /// A commit whose files are written but not yet durable (`prepare`), for `complete`.
    public struct Prepared: @unchecked Sendable {
        public let range: Range<UInt64>
        let root: MerkleHash
        let files: [String]
        let directories: Set<String>
        /// Tiles (level -1: entry bundles) this commit completed: their partial versions go
        /// once its checkpoint is published.
        let fullTiles: [(level: Int, index: UInt64)]
    }

    /// Opens the trail in `layout`, creating an empty one (a signed size-0 checkpoint) if
    /// there is none. Refuses a trail whose checkpoint was not signed by `signer` or whose
    /// rightmost tiles don't hash to the checkpoint's root.
    public static func open(layout: TrailLayout, signer: NoteSigner) throws -> TrailWriter {
        try FileIO.mkdirs(layout.trailDirectory)
        try FileIO.mkdirs(layout.historyDirectory)
        let verifier = try NoteVerifier(vkey: signer.vkey)
        guard let note = try FileIO.readFile(layout.checkpointPath, limit: 1 << 20) else {
            if FileIO.exists(layout.trailDirectory + "/tile") {
                throw TrailError(.damaged, "\(layout.checkpointPath) is missing but the trail has tiles; run `custos verify` and restore the checkpoint")
            }
            if FileIO.listDirectory(layout.historyDirectory).contains(where: { Self.isHistoryName($0) && $0 != String(repeating: "0", count: 20) }) {
                throw TrailError(.damaged, "the trail is missing but \(layout.historyDirectory) holds checkpoints signed earlier: the trail was deleted; refusing to start a new one over its history")
            }
            let cp = try SignedCheckpoint.sign(Checkpoint(origin: signer.name, size: 0, rootHash: Merkle.emptyRoot), signer: signer)
            let w = TrailWriter(layout: layout, signer: signer, size: 0, checkpoint: cp, partials: [], bundle: [], bundleCount: 0)
            try w.publish(cp)
            return w
        }
        let cp: SignedCheckpoint
        do {
            cp = try SignedCheckpoint.open(note, verifier: verifier)
        } catch {
            throw TrailError(.damaged, "\(layout.checkpointPath) does not verify with this data directory's key (\(error))")
        }
        let size = cp.checkpoint.size
        // A kept checkpoint larger than the current one means the checkpoint was put back.
        if let newest = FileIO.listDirectory(layout.historyDirectory).filter(isHistoryName).max(),
           let kept = UInt64(newest), kept > size {
            throw TrailError(.damaged, "the checkpoint (size \(size)) is older than one signed earlier (size \(kept)): the trail was rolled back; refusing to append; run `custos verify`")
        }
        var partials = [[MerkleHash]]()
        for level in 0..<TreeEdge.levelCount(size: size) {
            let width = Int((size >> (8 * UInt64(level))) & 255)
            guard width > 0 else { partials.append([]); continue }
            let path = layout.tilePath(level: level, index: size >> (8 * UInt64(level + 1)), width: width)
            guard let bytes = try FileIO.readFile(path), bytes.count == width * 32 else {
                throw TrailError(.damaged, "\(path) is missing or has the wrong size for the checkpoint of size \(size); run `custos verify`")
            }
            partials.append((0..<width).map { MerkleHash(bytes: bytes[($0 * 32)..<($0 * 32 + 32)])! })
        }
        let root = TreeEdge.root(partials: partials.map { $0[...] })
        guard root == cp.checkpoint.rootHash else {
            throw TrailError(.damaged, "the rightmost tiles don't hash to the checkpoint's root; the trail was altered; run `custos verify`")
        }
        var bundle = [UInt8]()
        let bundleCount = Int(size & 255)
        if bundleCount > 0 {
            let path = layout.bundlePath(index: size >> 8, width: bundleCount)
            guard let b = try FileIO.readFile(path) else {
                throw TrailError(.damaged, "\(path) is missing; run `custos verify`")
            }
            // The bundle must hold exactly the entries the level-0 partial tile hashes.
            var pos = 0
            for k in 0..<bundleCount {
                guard pos + 2 <= b.count else { throw TrailError(.damaged, "\(path) is truncated; run `custos verify`") }
                let len = Int(b[pos]) << 8 | Int(b[pos + 1])
                guard pos + 2 + len <= b.count else { throw TrailError(.damaged, "\(path) is truncated; run `custos verify`") }
                let leaf = b.withUnsafeBytes { Merkle.leafHash(UnsafeRawBufferPointer(rebasing: $0[(pos + 2)..<(pos + 2 + len)])) }
                guard partials.first?[k] == leaf else {
                    throw TrailError(.damaged, "\(path) entry \(k) does not match its tile; the trail was altered; run `custos verify`")
                }
                pos += 2 + len
            }
            guard pos == b.count else { throw TrailError(.damaged, "\(path) has trailing bytes; run `custos verify`") }
            bundle = b
        }
        return TrailWriter(layout: layout, signer: signer, size: size, checkpoint: cp, partials: partials,
                           bundle: bundle, bundleCount: bundleCount)
    }

    /// Appends entries (canonical bytes, at most 65,535 each) and returns their indices once
    /// they are durable and covered by a new signed checkpoint.
    @discardableResult
    public func append(_ entries: [[UInt8]]) throws -> Range<UInt64> {
        let p = try prepare(entries)
        try complete([p])
        return p.range
    }

    /// `prepare(buffer:entries:)` for entries given one by one.
    public func prepare(_ entries: [[UInt8]]) throws -> Prepared {
        var buffer = [UInt8]()
        buffer.reserveCapacity(entries.reduce(0) { $0 + $1.count })
        var ranges = [Range<Int>]()
        ranges.reserveCapacity(entries.count)
        for e in entries {
            ranges.append(buffer.count..<(buffer.count + e.count))
            buffer.append(contentsOf: e)
        }
        return try buffer.withUnsafeBytes { try prepare(buffer: $0, entries: ranges) }
    }

    /// `append(_:)` for entries given as ranges of one buffer (no copy per entry).
    @discardableResult
    public func append(buffer: UnsafeRawBufferPointer, entries: [Range<Int>]) throws -> Range<UInt64> {
        let p = try prepare(buffer: buffer, entries: entries)
        try complete([p])
        return p.range
    }

    /// The first step of a commit: hashes `entries` onto the tip and writes their bundles and
    /// tiles, without syncing. Nothing is durable or signed until `complete`.
    public func prepare(buffer: UnsafeRawBufferPointer, entries: [Range<Int>]) throws -> Prepared {
        guard !poisoned else {
            throw TrailError(.io, "an earlier commit failed part-way; reopen the trail before appending again")
        }
        do {
            return try prepareUnchecked(buffer: buffer, entries: entries)
        } catch let e as TrailError where e.code == .entryTooLarge {
            throw e
        } catch {
            // The disk may now hold files past the tip: never prepare from a stale state.
            poisoned = true
            throw error
        }
    }

    /// Marks the writer failed (prepared commits are then never completed): for a caller that
    /// cannot finish what it prepared. Reopen the trail to append again.
    public func abandon() { poisoned = true }

    /// The second step: makes `commits` (prepared in this order, none completed yet) durable
    /// with one sync, then signs and publishes the checkpoint of the last one.
    public func complete(_ commits: [Prepared]) throws {
        let commits = commits.filter { !$0.range.isEmpty }
        guard let last = commits.last else { return }
        guard !poisoned else {
            throw TrailError(.io, "an earlier commit failed part-way; reopen the trail before appending again")
        }
        precondition(commits.first!.range.lowerBound == size, "commits completed out of order")
        do {
            try fault(.beforeSync)
            var dirs = Set<String>()
            for c in commits { dirs.formUnion(c.directories) }
            // The new checkpoint is signed and written under temporary names first, so that
            // the one sync makes it durable with the entries; publishing it is then two renames.
            let cp = try SignedCheckpoint.sign(Checkpoint(origin: signer.name, size: last.range.upperBound, rootHash: last.root), signer: signer)
            let staged = try stageCheckpoint(cp)
            try FileIO.syncAll(under: [layout.trailDirectory, layout.historyDirectory], files: commits.flatMap(\.files) + staged.temporaryFiles,
                               directories: dirs.union([layout.historyDirectory]))
            try fault(.afterSync)
            try publishStaged(staged)
            stateLock.withLock { durableSize = last.range.upperBound; durableCheckpoint = cp }
        } catch {
            // The disk may now hold a newer checkpoint than memory does: never append from a
            // stale state. Reopening reads the truth back from disk.
            poisoned = true
            throw error
        }
        do { try fault(.beforeCleanup) } catch { poisoned = true; throw error }
        // Partial tiles superseded by a full tile are no longer needed (tlog-tiles allows it).
        for c in commits {
            for (level, index) in c.fullTiles {
                let full = level < 0 ? layout.bundlePath(index: index, width: 256) : layout.tilePath(level: level, index: index, width: 256)
                FileIO.removeTree(full + ".p")
            }
        }
    }

    func prepareUnchecked(buffer: UnsafeRawBufferPointer, entries: [Range<Int>]) throws -> Prepared {
        let start = tipSize
        guard !entries.isEmpty else { return Prepared(range: start..<start, root: Merkle.emptyRoot, files: [], directories: [], fullTiles: []) }
        for (i, e) in entries.enumerated() where e.count > 65_535 || e.isEmpty {
            throw TrailError(.entryTooLarge, "entry \(i) of the batch is \(e.count) bytes; entries must be 1...65535 bytes")
        }
        precondition(entries.allSatisfy { $0.lowerBound >= 0 && $0.upperBound <= buffer.count }, "entry outside the buffer")
        // Work on copies so that a failed commit leaves the writer at the last checkpoint.
        var partials = self.partials
        var bundleCount = self.bundleCount
        var newSize = tipSize
        var fullTiles: [(level: Int, index: UInt64)] = []
        // Every file of the commit is a range of one buffer, reused from commit to commit
        // (no allocation, and no fresh pages to fault in, per bundle or tile).
        var out: [UInt8] = []
        swap(&out, &commitBuffer)
        out.removeAll(keepingCapacity: true)
        defer { out.removeAll(keepingCapacity: true); swap(&out, &commitBuffer) }
        var writes: [(String, Range<Int>)] = []
        // The bundle being filled is `out[bundleStart...]`, starting with the partial one.
        out.append(contentsOf: self.bundle)
        var bundleStart = 0

        // Levels whose rightmost partial tile changes in this commit. An unchanged level's
        // partial tile is the very file the current checkpoint needs: never rewrite it.
        var changed: UInt64 = 0   // bit `level` set (a tree of 2^64 entries has 8 tile levels)
        func push(_ h: MerkleHash, level: Int) {
            if partials.count <= level { partials.append([]) }
            partials[level].append(h)
            changed |= 1 << UInt64(level)
            if partials[level].count == 256 {
                let index = (newSize >> (8 * UInt64(level + 1))) - 1
                let at = out.count
                Self.appendTile(partials[level][...], to: &out)
                writes.append((layout.tilePath(level: level, index: index, width: 256), at..<out.count))
                fullTiles.append((level, index))
                let up = TreeEdge.perfectRoot(partials[level][...])
                partials[level].removeAll(keepingCapacity: true)
                push(up, level: level + 1)
            }
        }

        for r in entries {
            let e = UnsafeRawBufferPointer(rebasing: buffer[r])
            out.append(UInt8(e.count >> 8)); out.append(UInt8(e.count & 255))
            out.append(contentsOf: e)
            bundleCount += 1
            newSize += 1
            // A bundle completes exactly when the level-0 tile does (both every 256 entries):
            // its tiles go after it in `out`, and its write after theirs, as before.
            let bundleEnd = out.count
            push(Merkle.leafHash(e), level: 0)
            if bundleCount == 256 {
                writes.append((layout.bundlePath(index: (newSize >> 8) - 1, width: 256), bundleStart..<bundleEnd))
                fullTiles.append((-1, (newSize >> 8) - 1))
                bundleStart = out.count
                bundleCount = 0
            }
        }
        let bundle = Array(out[bundleStart...])
        if bundleCount > 0 {
            let at = out.count
            out.append(contentsOf: bundle)
            writes.append((layout.bundlePath(index: newSize >> 8, width: bundleCount), at..<out.count))
        }
        for (level, hashes) in partials.enumerated() where !hashes.isEmpty && changed & (1 << UInt64(level)) != 0 {
            let at = out.count
            Self.appendTile(hashes[...], to: &out)
            writes.append((layout.tilePath(level: level, index: newSize >> (8 * UInt64(level + 1)), width: hashes.count),
                           at..<out.count))
        }
        var dirs = Set<String>()
        try out.withUnsafeBytes { all in
            for (n, (path, range)) in writes.enumerated() {
                try FileIO.writeFile(path, UnsafeRawBufferPointer(rebasing: all[range]))
                dirs.insert(FileIO.directory(of: path))
                if n == 0 { try fault(.afterFirstFile) }
            }
        }
        let root = TreeEdge.root(partials: partials.map { $0[...] })
        self.partials = partials
        self.bundle = bundle
        self.bundleCount = bundleCount
        self.tipSize = newSize
        return Prepared(range: start..<newSize, root: root, files: writes.map(\.0), directories: dirs, fullTiles: fullTiles)
    }

    /// The checkpoint first, then its copy in the history: a crash between the two leaves a
    /// history that is a subset of what was signed, never one that looks like a rollback.
    func publish(_ cp: SignedCheckpoint) throws {
        let note = Array(cp.note.utf8)
        try FileIO.replaceAtomically(layout.checkpointPath, note)
        try fault(.afterCheckpoint)
        let historyPath = layout.historyPath(size: cp.checkpoint.size)
        try checkHistory(historyPath, note, cp)
        try FileIO.replaceAtomically(historyPath, note)
    }

    /// `publish` in two steps around a sync the caller makes anyway: `stageCheckpoint` writes
    /// the checkpoint and its history copy under temporary names (unsynced); after the sync,
    /// `publishStaged` renames them into place, each made durable by an fsync of its
    /// directory, in the same order as `publish`. Two fsyncs fewer per commit than `publish`.
    func stageCheckpoint(_ cp: SignedCheckpoint) throws -> StagedCheckpoint {
        let note = Array(cp.note.utf8)
        let staged = StagedCheckpoint(checkpoint: layout.checkpointPath, history: layout.historyPath(size: cp.checkpoint.size))
        try checkHistory(staged.history, note, cp)
        try FileIO.writeFile(staged.checkpoint + ".tmp", note)
        try FileIO.writeFile(staged.history + ".tmp", note)
        return staged
    }

    func publishStaged(_ staged: StagedCheckpoint) throws {
        try FileIO.renameDurably(staged.checkpoint + ".tmp", to: staged.checkpoint)
        try fault(.afterCheckpoint)
        try FileIO.renameDurably(staged.history + ".tmp", to: staged.history)
    }

    /// Where `stageCheckpoint` wrote (each path plus ".tmp") and `publishStaged` renames to.
    struct StagedCheckpoint {
        let checkpoint: String
        let history: String
        var temporaryFiles: [String] { [checkpoint + ".tmp", history + ".tmp"] }
    }

    /// Refuses to overwrite `historyPath` if it holds a different checkpoint of the same size.
    func checkHistory(_ historyPath: String, _ note: [UInt8], _ cp: SignedCheckpoint) throws {
        if let existing = try FileIO.readFile(historyPath, limit: 1 << 20), existing != note {
            // Same size, different tree: only possible if the trail was rewritten. Keep the
            // evidence; the next `verify` reports the fork.
            if let existingCp = try? SignedCheckpoint.open(existing, verifier: NoteVerifier(vkey: signer.vkey)),
               existingCp.checkpoint.rootHash != cp.checkpoint.rootHash {
                throw TrailError(.damaged, "\(historyPath) holds a different checkpoint of the same size: the trail was rewritten; refusing to overwrite that evidence")
            }
        }
    }

    static func isHistoryName(_ name: String) -> Bool { name.count == 20 && name.allSatisfy(\.isNumber) }

    /// Test hook: throw from it to simulate a crash at that point of a commit.
    package var faultHook: ((TrailFaultPoint) throws -> Void)?

    func fault(_ p: TrailFaultPoint) throws { try faultHook?(p) }

    static func appendTile(_ hashes: ArraySlice<MerkleHash>, to out: inout [UInt8]) {
        for h in hashes { h.withUnsafeBytes { out.append(contentsOf: $0) } }
    }

    static func tileBytes(_ hashes: ArraySlice<MerkleHash>) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(hashes.count * 32)
        for h in hashes { h.withUnsafeBytes { out.append(contentsOf: $0) } }
        return out
    }
}

extension TrailWriter {
    /// This trail's verifier key (signed-note vkey).
    public var checkpointVerifierKey: String { signer.vkey }
}

/// Points in a commit where tests simulate a crash.
package enum TrailFaultPoint: CaseIterable, Sendable {
    case afterFirstFile, beforeSync, afterSync, afterCheckpoint, beforeCleanup
}
