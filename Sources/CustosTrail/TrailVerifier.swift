import CustosCore
import Foundation

/// Audits a trail on disk from scratch, trusting nothing but the verifier key.
///
/// It checks the checkpoint's signature; recomputes every entry's leaf hash (rejecting
/// non-canonical entries, short or over-long bundles and trailing bytes), every tile at every
/// level and the root; and checks every checkpoint kept in `<data>/checkpoints/` against the
/// same tree (a kept checkpoint larger than the current one means a rollback, a different
/// root at its size means a fork).
public struct TrailVerifier: Sendable {
    public struct Problem: Sendable, CustomStringConvertible {
        /// A file path relative to the data directory, or a logical place ("entry 41").
        public var location: String
        public var message: String
        public var description: String { "\(location): \(message)" }
    }

    public struct Report: Sendable {
        public var origin: String = ""
        public var size: UInt64 = 0
        public var root: MerkleHash?
        public var entriesChecked: UInt64 = 0
        /// The trail's minimum index (`trail/pruned`): entries below it were pruned. Their
        /// bundles are not required; their level-0 tiles stand in for them and must still
        /// hash to the signed root.
        public var minimumIndex: UInt64 = 0
        /// Entry bundles below the minimum index that are gone (the rest were still there and checked).
        public var prunedBundles = 0
        public var tilesChecked = 0
        public var checkpointsChecked = 0
        public var problems: [Problem] = []
        public var isValid: Bool { problems.isEmpty }
    }

    public var layout: TrailLayout
    public var verifier: NoteVerifier
    /// Worker threads for hashing entry bundles (defaults to the number of cores).
    public var parallelism: Int

    public init(layout: TrailLayout, verifier: NoteVerifier, parallelism: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.layout = layout; self.verifier = verifier; self.parallelism = max(1, parallelism)
    }

    func rel(_ path: String) -> String {
        path.hasPrefix(layout.dataDirectory + "/") ? String(path.dropFirst(layout.dataDirectory.count + 1)) : path
    }

    public func verify() -> Report {
        var report = Report()
        // 1. The checkpoint.
        let note: [UInt8]
        do {
            guard let n = try FileIO.readFile(layout.checkpointPath, limit: 1 << 20) else {
                report.problems.append(.init(location: rel(layout.checkpointPath), message: "missing"))
                return report
            }
            note = n
        } catch {
            report.problems.append(.init(location: rel(layout.checkpointPath), message: "\(error)"))
            return report
        }
        let cp: SignedCheckpoint
        do {
            cp = try SignedCheckpoint.open(note, verifier: verifier)
        } catch {
            report.problems.append(.init(location: rel(layout.checkpointPath), message: "signature or format invalid for key \(verifier.name): \(error)"))
            return report
        }
        let size = cp.checkpoint.size
        report.origin = cp.checkpoint.origin
        report.size = size
        report.root = cp.checkpoint.rootHash

        // 1b. The minimum index (pruning), signed with the same key.
        var minimumIndex: UInt64 = 0
        do {
            minimumIndex = try TrailPruning.minimumIndex(layout: layout, verifier: verifier)
            if minimumIndex > size {
                report.problems.append(.init(location: rel(layout.prunedPath), message: "minimum index \(minimumIndex) is beyond the checkpoint (size \(size))"))
                minimumIndex = 0
            }
        } catch {
            report.problems.append(.init(location: rel(layout.prunedPath), message: "\(error)"))
        }
        report.minimumIndex = minimumIndex
        let prunedBundleCount = minimumIndex / 256

        // 2. Entry bundles → leaf hashes (in parallel).
        let bundleCount = Int((size + 255) / 256)
        var leaves = [MerkleHash](repeating: MerkleHash(storage: .init()), count: Int(size))
        let workers = min(parallelism, max(1, bundleCount))
        let perWorker = (bundleCount + workers - 1) / max(1, workers)
        let problemsBox = ProblemsBox(workers: workers)
        // The level-0 tile over each bundle's entries is checked by the same thread right after
        // the bundle (its leaf hashes are those entries'); step 3 reports these results in
        // tile order and checks whatever a thread did not get to.
        var tile0 = [TileCheck](repeating: .notChecked, count: bundleCount)
        leaves.withUnsafeMutableBufferPointer { buf in
            tile0.withUnsafeMutableBufferPointer { t0 in
                nonisolated(unsafe) let out = buf
                nonisolated(unsafe) let tileOut = t0
                DispatchQueue.concurrentPerform(iterations: workers) { w in
                    let lo = w * perWorker, hi = min(bundleCount, lo + perWorker)
                    guard lo < hi else { return }
                    var local = [Problem]()
                    let buffer = FileIO.ReadBuffer()
                    for b in lo..<hi {
                        let width = (UInt64(b) + 1) * 256 <= size ? 256 : Int(size & 255)
                        if UInt64(b) < prunedBundleCount, !FileIO.exists(layout.bundlePath(index: UInt64(b), width: 256)) {
                            // Pruned: the level-0 tile stands in for the entries; the levels
                            // above and the root check it.
                            let path = layout.tilePath(level: 0, index: UInt64(b), width: 256)
                            if let bytes = try? buffer.read(path), bytes.count == 256 * 32 {
                                for k in 0..<256 {
                                    out[b * 256 + k] = MerkleHash(bytes: UnsafeRawBufferPointer(rebasing: bytes[(k * 32)..<(k * 32 + 32)]))!
                                }
                            } else {
                                local.append(.init(location: rel(path), message: "missing or not 8192 bytes (entry bundle \(b) was pruned: this tile is all that is left of it)"))
                            }
                            tileOut[b] = .pruned
                            continue
                        }
                        checkBundle(index: UInt64(b), width: width, buffer: buffer, into: out, problems: &local)
                        if local.count > 100 { break }
                        let path = layout.tilePath(level: 0, index: UInt64(b), width: width)
                        let expected = UnsafeRawBufferPointer(UnsafeMutableBufferPointer(rebasing: out[(b * 256)..<(b * 256 + width)]))
                        let bytes = try? buffer.read(path)
                        tileOut[b] = TileCheck(tileProblem(path: path, width: width, bytes: bytes, expected: expected))
                    }
                    problemsBox.set(w, local)
                }
            }
        }
        report.problems += problemsBox.all()
        let prunedGone = tile0.reduce(0) { n, t in if case .pruned = t { return n + 1 }; return n }
        report.prunedBundles = prunedGone
        report.entriesChecked = size - UInt64(prunedGone) * 256

        // 3. Tiles at every level, and the root.
        let levels = TreeLevels(leaves: leaves, parallelism: parallelism)
        for ref in TileMath.tiles(forTreeSize: size) {
            let path = layout.tilePath(level: ref.level, index: ref.index, width: ref.width)
            report.tilesChecked += 1
            if ref.level == 0, ref.index < UInt64(bundleCount),
               ref.width == ((ref.index + 1) * 256 <= size ? 256 : Int(size & 255)) {
                switch tile0[Int(ref.index)] {
                case .ok, .pruned: continue
                case .problem(let p): report.problems.append(p); continue
                case .notChecked: break
                }
            }
            let expected = levels.tile(level: ref.level, index: ref.index, size: size)
            let bytes = try? FileIO.readFile(path)
            let problem = expected.withUnsafeBytes { e in
                bytes.withUnsafeBytes_ { tileProblem(path: path, width: ref.width, bytes: $0, expected: e) }
            }
            if let problem { report.problems.append(problem) }
        }
        let root = levels.root(size: size)
        if root != cp.checkpoint.rootHash {
            report.problems.append(.init(location: rel(layout.checkpointPath), message: "root hash \(cp.checkpoint.rootHash.base64) does not match the entries (they hash to \(root.base64))"))
        }

        // 4. Every checkpoint kept earlier must be a prefix of this tree.
        for name in FileIO.listDirectory(layout.historyDirectory).sorted() where !name.hasSuffix(".tmp") {
            let path = layout.historyDirectory + "/" + name
            report.checkpointsChecked += 1
            let bytes: [UInt8]
            do {
                guard let b = try FileIO.readFile(path, limit: 1 << 20) else { continue }
                bytes = b
            } catch {
                report.problems.append(.init(location: rel(path), message: "kept checkpoint cannot be read: \(error)"))
                continue
            }
            let old: SignedCheckpoint
            do { old = try SignedCheckpoint.open(bytes, verifier: verifier) } catch {
                report.problems.append(.init(location: rel(path), message: "kept checkpoint does not verify: \(error)"))
                continue
            }
            if layout.historyPath(size: old.checkpoint.size) != path {
                report.problems.append(.init(location: rel(path), message: "file name does not match its checkpoint size \(old.checkpoint.size)"))
            }
            if old.checkpoint.size > size {
                report.problems.append(.init(location: rel(layout.checkpointPath), message: "rolled back: a checkpoint of size \(old.checkpoint.size) was signed earlier (\(rel(path))) but the current checkpoint has size \(size)"))
            } else if levels.root(size: old.checkpoint.size) != old.checkpoint.rootHash {
                report.problems.append(.init(location: rel(path), message: "fork: the checkpoint of size \(old.checkpoint.size) signed earlier has a different root than this trail's first \(old.checkpoint.size) entries"))
            }
        }
        return report
    }

    enum TileCheck {
        case notChecked, ok, pruned, problem(Problem)
        init(_ p: Problem?) { self = p.map { .problem($0) } ?? .ok }
    }

    /// Why the tile file at `path` (`bytes`, nil when it cannot be read) does not hold the
    /// `width` hashes `expected` (32 bytes each, in order), or nil when it does.
    func tileProblem(path: String, width: Int, bytes: UnsafeRawBufferPointer?, expected: UnsafeRawBufferPointer) -> Problem? {
        guard let bytes else { return .init(location: rel(path), message: "missing") }
        guard bytes.count == width * 32 else {
            return .init(location: rel(path), message: "is \(bytes.count) bytes; a tile of width \(width) is \(width * 32)")
        }
        precondition(expected.count == width * 32)
        if width == 0 || memcmp(bytes.baseAddress!, expected.baseAddress!, width * 32) == 0 { return nil }
        var k = 0
        while k < width && memcmp(bytes.baseAddress! + k * 32, expected.baseAddress! + k * 32, 32) == 0 { k += 1 }
        return .init(location: rel(path), message: "hash \(k) does not match the entries it covers")
    }

    func checkBundle(index: UInt64, width: Int, buffer: FileIO.ReadBuffer, into leaves: UnsafeMutableBufferPointer<MerkleHash>, problems: inout [Problem]) {
        let path = layout.bundlePath(index: index, width: width)
        let raw: UnsafeRawBufferPointer
        do {
            guard let b = try buffer.read(path) else {
                problems.append(.init(location: rel(path), message: "missing (entries \(index * 256)..<\(index * 256 + UInt64(width)))"))
                return
            }
            raw = b
        } catch {
            problems.append(.init(location: rel(path), message: "\(error)"))
            return
        }
        do {
            var pos = 0
            var n = 0
            while pos < raw.count && n < width {
                guard pos + 2 <= raw.count else { break }
                let len = Int(raw[pos]) << 8 | Int(raw[pos + 1])
                pos += 2
                guard pos + len <= raw.count else {
                    problems.append(.init(location: rel(path), message: "entry \(index * 256 + UInt64(n)) is truncated (\(len) bytes declared, \(raw.count - pos) present)"))
                    return
                }
                let entry = UnsafeRawBufferPointer(rebasing: raw[pos..<(pos + len)])
                if let problem = EntryCheck.canonicalProblem(entry) {
                    problems.append(.init(location: rel(path), message: "entry \(index * 256 + UInt64(n)) \(problem)"))
                }
                leaves[Int(index) * 256 + n] = Merkle.leafHash(entry)
                pos += len
                n += 1
            }
            if n < width {
                problems.append(.init(location: rel(path), message: "holds \(n) entries; the checkpoint needs \(width)"))
            } else if pos != raw.count {
                problems.append(.init(location: rel(path), message: "\(raw.count - pos) trailing bytes after entry \(index * 256 + UInt64(width) - 1)"))
            }
        }
    }
}

extension Optional where Wrapped == [UInt8] {
    /// `body` with the bytes, or with nil.
    fileprivate func withUnsafeBytes_<R>(_ body: (UnsafeRawBufferPointer?) -> R) -> R {
        switch self {
        case .some(let a): return a.withUnsafeBytes { body($0) }
        case .none: return body(nil)
        }
    }
}

/// Entry-level checks shared by verification and ingest.
public enum EntryCheck {
    /// nil when `entry` is a canonical `custos.event/v1` object (or a canonical entry of
    /// one of the trail's other schemas: alerts, silences), else why not.
    public static func canonicalProblem(_ entry: UnsafeRawBufferPointer) -> String? {
        // Same verdict as `AccessEvent.decode(entry, requireCanonical: true)`, without decoding.
        guard let problem = CanonicalValidator.problem(entry) else { return nil }
        let other = GenericCanonical.check(entry)
        if let schema = other.schema, GenericCanonical.otherSchemas.contains(schema) {
            guard let p = other.problem else { return nil }
            return "is not a canonical \(schema) object (\(p))"
        }
        return "is not a canonical custos.event/v1 object (\(problem))"
    }
}

final class ProblemsBox: @unchecked Sendable {
    private let lock = NSLock()
    private var slots: [[TrailVerifier.Problem]]
    init(workers: Int) { slots = Array(repeating: [], count: workers) }
    func set(_ w: Int, _ p: [TrailVerifier.Problem]) { lock.lock(); slots[w] = p; lock.unlock() }
    func all() -> [TrailVerifier.Problem] { lock.lock(); defer { lock.unlock() }; return slots.flatMap { $0 } }
}
