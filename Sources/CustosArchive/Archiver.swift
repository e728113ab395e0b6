import CustosCore
import CustosTrail
import Crypto
import Foundation

/// What the data directory remembers about one archive target (`<data>/archive/<name>.json`):
/// how many full entry bundles (from bundle 0) were copied there, how many of them the last
/// `archive verify` read back and found intact and protected, and when.
public struct ArchiveState: Codable, Sendable, Equatable {
    public var target: String
    public var archivedBundles: UInt64 = 0
    public var verifiedBundles: UInt64 = 0
    public var verifiedAt: String?
    /// The earliest retain-until date any archived object was written with (RFC 3339).
    public var retainUntil: String?

    enum CodingKeys: String, CodingKey {
        case target, archivedBundles = "archived_bundles", verifiedBundles = "verified_bundles"
        case verifiedAt = "verified_at", retainUntil = "retain_until"
    }

    public init(target: String) { self.target = target }

    static func fileName(_ target: String) -> String {
        SigV4.hex(SHA256.hash(data: Array(target.utf8)).prefix(8)) + ".json"
    }
    public static func directory(_ layout: TrailLayout) -> String { layout.dataDirectory + "/archive" }

    public static func load(layout: TrailLayout, target: String) throws -> ArchiveState? {
        let p = directory(layout) + "/" + fileName(target)
        guard let d = FileManager.default.contents(atPath: p) else { return nil }
        do { return try JSONDecoder().decode(ArchiveState.self, from: d) } catch {
            throw ArchiveError("\(p) is not a readable archive state: \(error)")
        }
    }

    /// Every target this data directory has archived to.
    public static func all(layout: TrailLayout) -> [ArchiveState] {
        let dir = directory(layout)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.filter { $0.hasSuffix(".json") }.sorted().compactMap {
            FileManager.default.contents(atPath: dir + "/" + $0).flatMap { try? JSONDecoder().decode(ArchiveState.self, from: $0) }
        }
    }

    public func save(layout: TrailLayout) throws {
        let dir = Self.directory(layout)
        let p = dir + "/" + Self.fileName(target)
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys, .prettyPrinted]
            try enc.encode(self).write(to: URL(fileURLWithPath: p), options: .atomic)
        } catch {
            throw ArchiveError("cannot write \(p): \(error)")
        }
    }
}

/// Copies full entry bundles to an archive and checks them there.
///
/// Archive layout (under the target's root or prefix):
/// ```
/// tile/entries/<N>                 full entry bundles, as in the trail (tlog-tiles paths)
/// tile/0/<N>                       the level-0 tile over each bundle (its entries' leaf hashes)
/// checkpoint/<20-digit size>       the signed checkpoint current when they were archived
/// manifest/<first>-<end>.json      per run: each bundle's and tile's SHA-256, the checkpoint
/// ```
public struct Archiver: Sendable {
    public var layout: TrailLayout
    public var verifier: NoteVerifier
    public var store: any ArchiveStore
    /// The target as the operator named it (`local:PATH`, `s3://bucket/prefix`).
    public var target: String

    public init(layout: TrailLayout, verifier: NoteVerifier, store: any ArchiveStore, target: String) {
        self.layout = layout; self.verifier = verifier; self.store = store; self.target = target
    }

    public struct Run: Sendable {
        public var bundles: Range<UInt64>
        public var checkpointSize: UInt64
        public var notes: [String]
    }

    static func pad(_ n: UInt64) -> String {
        let s = String(n)
        return String(repeating: "0", count: max(0, 20 - s.count)) + s
    }

    /// Archives every full entry bundle not archived to this target yet.
    public func archive(now: Date, lockFor seconds: Int64) async throws -> Run {
        let reader = try TrailReader(layout: layout, verifier: verifier)
        var state = try ArchiveState.load(layout: layout, target: target) ?? ArchiveState(target: target)
        let full = reader.size / 256
        let start = state.archivedBundles
        if start * 256 < reader.minimumIndex {
            throw ArchiveError("entries below \(reader.minimumIndex) were pruned before they were archived to \(target); they can only come from the archive they went to")
        }
        let retainUntil = now.addingTimeInterval(TimeInterval(seconds))
        var notes = Set<String>()
        guard full > start else { return Run(bundles: start..<start, checkpointSize: reader.size, notes: []) }
        var manifest: [[String: Any]] = []
        for b in start..<full {
            let bundlePath = layout.bundlePath(index: b, width: 256)
            let tilePath = layout.tilePath(level: 0, index: b, width: 256)
            guard let bundle = FileManager.default.contents(atPath: bundlePath) else { throw ArchiveError("\(bundlePath) is missing") }
            guard let tile = FileManager.default.contents(atPath: tilePath), tile.count == 256 * 32 else {
                throw ArchiveError("\(tilePath) is missing or not 8192 bytes")
            }
            let bundleBytes = [UInt8](bundle), tileBytes = [UInt8](tile)
            // Only bundles that match their tile leave the trail.
            if let problem = Self.bundleProblem(bundleBytes, tile: tileBytes) { throw ArchiveError("\(bundlePath): \(problem)") }
            if let n = try await store.put(TilePath.entries(index: b, width: 256), bundleBytes, retainUntil: retainUntil) { notes.insert(n) }
            if let n = try await store.put(TilePath.tile(level: 0, index: b, width: 256), tileBytes, retainUntil: retainUntil) { notes.insert(n) }
            manifest.append(["index": Int(b), "entries": "\(b * 256)..<\((b + 1) * 256)",
                             "bundle_sha256": SigV4.sha256Hex(bundleBytes), "tile0_sha256": SigV4.sha256Hex(tileBytes)])
        }
        let cpKey = "checkpoint/" + Self.pad(reader.size)
        if let n = try await store.put(cpKey, Array(reader.checkpoint.note.utf8), retainUntil: retainUntil) { notes.insert(n) }
        let doc: [String: Any] = [
            "schema": "custos.archive/v1", "origin": reader.checkpoint.checkpoint.origin,
            "checkpoint": cpKey, "checkpoint_size": Int(reader.size), "root": reader.checkpoint.checkpoint.rootHash.base64,
            "retain_until": S3Client.iso8601(retainUntil), "archived_at": S3Client.iso8601(now), "bundles": manifest,
        ]
        let json = try JSONSerialization.data(withJSONObject: doc, options: [.sortedKeys, .prettyPrinted])
        if let n = try await store.put("manifest/\(Self.pad(start))-\(Self.pad(full)).json", [UInt8](json), retainUntil: retainUntil) { notes.insert(n) }
        state.archivedBundles = full
        let until = S3Client.iso8601(retainUntil)
        if state.retainUntil.map({ until < $0 }) ?? true { state.retainUntil = until }
        try state.save(layout: layout)
        return Run(bundles: start..<full, checkpointSize: reader.size, notes: notes.sorted())
    }

    /// Why `bundle` is not exactly 256 entries whose leaf hashes are `tile`, or nil.
    static func bundleProblem(_ bundle: [UInt8], tile: [UInt8]) -> String? {
        guard tile.count == 256 * 32 else { return "its level-0 tile is \(tile.count) bytes, not 8192" }
        return bundle.withUnsafeBytes { raw -> String? in
            var pos = 0
            for k in 0..<256 {
                guard pos + 2 <= raw.count else { return "holds \(k) entries, not 256" }
                let len = Int(raw[pos]) << 8 | Int(raw[pos + 1])
                pos += 2
                guard pos + len <= raw.count else { return "entry \(k) is truncated" }
                let leaf = Merkle.leafHash(UnsafeRawBufferPointer(rebasing: raw[pos..<(pos + len)]))
                if leaf.bytes != Array(tile[(k * 32)..<(k * 32 + 32)]) { return "entry \(k) does not hash to the trail's level-0 tile" }
                pos += len
            }
            return pos == raw.count ? nil : "\(raw.count - pos) trailing bytes"
        }
    }

    public struct Verification: Sendable {
        public var bundlesChecked: UInt64 = 0
        public var problems: [String] = []
        public var isValid: Bool { problems.isEmpty }
    }

    /// Reads back every archived bundle, re-hashes its entries against the trail's level-0
    /// tiles (which `custos verify` ties to the signed root), checks the archived tile copy,
    /// and checks each object's protection (read-only file; S3: COMPLIANCE retention until
    /// at least the date it was written with). Records the result in the archive state.
    public func verify(now: Date) async throws -> Verification {
        guard var state = try ArchiveState.load(layout: layout, target: target), state.archivedBundles > 0 else {
            throw ArchiveError("nothing was archived to \(target) from \(layout.dataDirectory) yet (run `custos archive --to \(target)`)")
        }
        var v = Verification()
        let retainUntil = state.retainUntil.flatMap(S3Client.parseISO8601) ?? now
        for b in 0..<state.archivedBundles {
            if v.problems.count >= 100 { break }
            let bundleKey = TilePath.entries(index: b, width: 256)
            let tileKey = TilePath.tile(level: 0, index: b, width: 256)
            let trailTilePath = layout.tilePath(level: 0, index: b, width: 256)
            guard let trailTile = FileManager.default.contents(atPath: trailTilePath) else {
                v.problems.append("\(trailTilePath): missing in the trail (needed to check archived bundle \(b))"); continue
            }
            guard let bundle = try await store.get(bundleKey) else { v.problems.append("\(store.description)/\(bundleKey): missing"); continue }
            if let p = Self.bundleProblem(bundle, tile: [UInt8](trailTile)) { v.problems.append("\(store.description)/\(bundleKey): \(p)") }
            let tileCopy = try await store.get(tileKey)
            if tileCopy != [UInt8](trailTile) { v.problems.append("\(store.description)/\(tileKey): \(tileCopy == nil ? "missing" : "differs from the trail's tile")") }
            for key in [bundleKey, tileKey] {
                if let p = try await store.protectionProblem(key, retainUntil: retainUntil, now: now) {
                    v.problems.append("\(store.description)/\(key): \(p)")
                }
            }
            v.bundlesChecked += 1
        }
        if v.isValid {
            state.verifiedBundles = state.archivedBundles
            state.verifiedAt = S3Client.iso8601(now)
        } else {
            state.verifiedBundles = 0
            state.verifiedAt = nil
        }
        try state.save(layout: layout)
        return v
    }
}

/// Prunes what retention allows: expired, archived, and verified in the archive.
public enum Pruner {
    public struct Plan: Sendable {
        public var size: UInt64
        public var previousMinimum: UInt64
        /// Index of the first entry (at or after the previous minimum) still within retention.
        public var firstUnexpired: UInt64
        /// Entries below this are archived and were verified in the archive just now.
        public var verifiedEnd: UInt64
        public var newMinimum: UInt64
        public var deletedFiles: [String]
        /// Entries in the pruned range by retention class.
        public var classes: [RetentionClass: Int]
        public var dryRun: Bool
    }

    struct Stop: Error {}

    /// Index of the first entry in `range` that has not expired at `now` (range end when all have).
    public static func firstUnexpired(reader: TrailReader, in range: Range<UInt64>, policy: RetentionPolicy, now: EventTime,
                                      classes: inout [RetentionClass: Int]) throws -> UInt64 {
        var first = range.upperBound
        var counts: [RetentionClass: Int] = [:]
        do {
            try reader.forEachEntry(in: range) { i, entry in
                let (c, t) = RetentionClass.classify(entry)
                if !policy.isExpired(c, time: t, now: now) { first = i; throw Stop() }
                counts[c, default: 0] += 1
            }
        } catch is Stop {}
        classes = counts
        return first
    }

    /// Verifies the trail, verifies the archive (reading every archived object back), then
    /// raises the minimum index as far as retention, the archive and whole bundles allow.
    /// Throws when the trail or the archive does not verify, or nothing was archived.
    public static func run(layout: TrailLayout, signer: NoteSigner, policy: RetentionPolicy, archiver: Archiver,
                           now: EventTime, dryRun: Bool) async throws -> Plan {
        let trailReport = TrailVerifier(layout: layout, verifier: signer.verifier).verify()
        guard trailReport.isValid else {
            throw ArchiveError("the trail does not verify (\(trailReport.problems.count) problem(s), first: \(trailReport.problems.first.map { "\($0)" } ?? "")); run `custos verify`; nothing pruned")
        }
        let check = try await archiver.verify(now: Date(timeIntervalSince1970: TimeInterval(now.seconds)))
        guard check.isValid else {
            throw ArchiveError("the archive \(archiver.target) does not verify (\(check.problems.count) problem(s)):\n  " + check.problems.prefix(20).joined(separator: "\n  ") + "\nnothing pruned")
        }
        guard let state = try ArchiveState.load(layout: layout, target: archiver.target) else { throw ArchiveError("no archive state") }
        let reader = try TrailReader(layout: layout, verifier: signer.verifier)
        let verifiedEnd = state.verifiedBundles * 256
        let scanEnd = min(verifiedEnd, (reader.size / 256) * 256)
        var classes: [RetentionClass: Int] = [:]
        let first = scanEnd > reader.minimumIndex
            ? try firstUnexpired(reader: reader, in: reader.minimumIndex..<scanEnd, policy: policy, now: now, classes: &classes)
            : reader.minimumIndex
        let point = PrunePoint.compute(firstUnexpired: first, verifiedEnd: verifiedEnd, size: reader.size, minimumIndex: reader.minimumIndex)
        // Count only what falls below the new minimum index.
        if point < first {
            classes = [:]
            _ = try firstUnexpired(reader: reader, in: reader.minimumIndex..<point, policy: policy, now: now, classes: &classes)
        }
        let result = try TrailPruning.prune(layout: layout, signer: signer, below: point, dryRun: dryRun)
        return Plan(size: reader.size, previousMinimum: reader.minimumIndex, firstUnexpired: first, verifiedEnd: verifiedEnd,
                    newMinimum: point, deletedFiles: result.deletedFiles, classes: classes, dryRun: dryRun)
    }
}
