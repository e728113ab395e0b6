import CustosCore
import CustosStore
import CustosTrail
import Foundation

/// Evidence for a query over a period (`custos evidence`): the count (zero is the point), the
/// query, the signed checkpoints around the period, and the proof that the query ran over the
/// entire verified log.
///
/// How: every entry of the trail up to its current checkpoint (size N) is read, hashed, and
/// matched; the Merkle root of what was read must equal the signed root of size N, so no entry
/// was skipped or altered. Matching uses the event itself, not the index (the index's count is
/// reported next to it and must agree). Late events (recorded after the period, with times in
/// it) count too, because the scan runs to N, not to the end of the period.
///
/// The checkpoints: `before` is the newest checkpoint kept in `<data>/checkpoints` that covers
/// only entries recorded before the period; `after` is the first one that covers an entry
/// recorded at or after the period's end (the current checkpoint if none does yet). The
/// consistency proofs before→after→current show that the log the auditor sees now extends,
/// unchanged, the one that existed when the period began — checkable by anyone holding one of
/// those checkpoints (from a witness, or from the previous review) with `EvidenceCheck`.
public struct EvidenceReport: Sendable {
    public struct Match: Sendable {
        public var index: UInt64
        /// The entry's exact bytes (canonical `custos.event/v1`), so its leaf hash can be recomputed.
        public var entry: [UInt8]
        public var event: AccessEvent
        /// Inclusion of the entry in the current checkpoint.
        public var inclusionProof: [MerkleHash]
    }

    public struct Consistency: Sendable {
        public var from: UInt64
        public var to: UInt64
        public var proof: [MerkleHash]
    }

    public var query: EventQuery
    public var count: Int
    /// The first `maxEvents` matches, in trail order.
    public var matches: [Match]
    public var indexCount: Int?
    public var entriesScanned: UInt64
    /// Entries below this index were pruned (archived, then removed): their hashes come from
    /// the tiles, and the count covers entries from here on. 0 when nothing was pruned.
    public var prunedBelow: UInt64 = 0
    public var eventsScanned: UInt64
    public var scannedRoot: MerkleHash
    /// Nil when the period begins with the log (no checkpoint older than it was kept).
    public var before: SignedCheckpoint?
    public var after: SignedCheckpoint
    public var head: SignedCheckpoint
    public var consistency: [Consistency]
    public var verifierKey: String
    public var generatedAt: EventTime
    public var truncated: Bool { matches.count < count }
}

public struct EvidenceError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

public enum Evidence {
    /// Scans the trail of `directory` (checked against `verifier`) for `query`; `query.from`
    /// and `query.to` bound the period and are required.
    public static func run(directory: String, verifier: NoteVerifier, query: EventQuery, maxEvents: Int = 10_000,
                           now: EventTime = EventTime(unixTime: Date().timeIntervalSince1970)) throws -> EvidenceReport {
        guard let from = query.from, let to = query.to, from < to else {
            throw EvidenceError("evidence needs a period: --from and --to, with --from before --to")
        }
        let layout = TrailLayout(dataDirectory: directory)
        let trail = try TrailReader(layout: layout, verifier: verifier)
        let head = trail.checkpoint
        let n = head.checkpoint.size
        let nodes = TileNodeReader(treeSize: n) { ref in
            let path = layout.tilePath(level: ref.level, index: ref.index, width: ref.width)
            guard let bytes = try FileIO.readFile(path), bytes.count == ref.width * 32 else {
                throw EvidenceError("\(path) is missing or has the wrong size; run `custos verify`")
            }
            return (0..<ref.width).map { MerkleHash(bytes: bytes[($0 * 32)..<($0 * 32 + 32)])! }
        }
        // A pruned trail (`custos prune`) no longer holds the entries below its minimum index:
        // their part of the tree is taken from the tiles that stay, and the root check below
        // still covers it. The count then covers the entries kept; the report says so.
        let pruned = min(trail.minimumIndex, n)
        var range = CompactRange()
        if pruned > 0 {
            var hashes: [MerkleHash] = []
            var start: UInt64 = 0
            for bit in (0..<64).reversed() where pruned & (UInt64(1) << UInt64(bit)) != 0 {
                let size = UInt64(1) << UInt64(bit)
                hashes.append(try Merkle.subtreeRoot(start: start, end: start + size, node: nodes.node))
                start += size
            }
            range = CompactRange(size: pruned, hashes: hashes)!
        }
        // Kept checkpoint sizes up to the head, ascending. One larger than the head means the
        // trail was rolled back (or the file is not genuine): no count over it.
        let all = FileIO.listDirectory(layout.historyDirectory).compactMap { name -> UInt64? in
            guard name.count == 20, name.allSatisfy(\.isNumber) else { return nil }
            return UInt64(name)
        }
        if let larger = all.filter({ $0 > n }).max() {
            throw EvidenceError("a checkpoint of size \(larger) is kept (\(layout.historyPath(size: larger))) but the current checkpoint has size \(n): the trail was rolled back, or that file is not genuine; run `custos verify`")
        }
        let kept = all.sorted()
        // The newest recorded time among entries [0, size), at each kept size.
        var newestAt: [UInt64: Int64] = [:]
        var nextKept = kept.makeIterator()
        var pending = nextKept.next()
        // Pruned entries were past retention: recorded before any period evidence is asked for.
        while let p = pending, p <= pruned { newestAt[p] = Int64.min; pending = nextKept.next() }

        var newest = Int64.min
        var count = 0, events: UInt64 = 0
        var matched: [(UInt64, [UInt8], AccessEvent)] = []
        try trail.forEachEntry(in: pruned..<n) { i, bytes in
            range.append(Merkle.leafHash(bytes))
            let entry: TrailEntry
            do { entry = try TrailEntry.decode(bytes) } catch {
                throw EvidenceError("trail entry \(i) cannot be read (\(error)); run `custos verify`")
            }
            newest = max(newest, entry.recordedTime.unixNanos)
            if case .event(let e) = entry {
                events += 1
                if query.matches(e) {
                    count += 1
                    if matched.count < maxEvents { matched.append((i, Array(bytes), e)) }
                }
            }
            while let p = pending, p == i + 1 { newestAt[p] = newest; pending = nextKept.next() }
        }
        guard range.size == n else { throw EvidenceError("the trail holds \(range.size) entries, its checkpoint \(n); run `custos verify`") }
        guard range.root() == head.checkpoint.rootHash else {
            throw EvidenceError("the entries read do not hash to the signed root of size \(n): the trail was altered; run `custos verify`")
        }

        // The period's checkpoints, by the recorded times of the entries they cover.
        let beforeSize = kept.last { (newestAt[$0] ?? .max) < from.unixNanos } ?? 0
        let afterSize = kept.first { $0 >= beforeSize && (newestAt[$0] ?? .min) >= to.unixNanos } ?? n
        func keptCheckpoint(_ size: UInt64) throws -> SignedCheckpoint {
            if size == n { return head }
            guard let note = try FileIO.readFile(layout.historyPath(size: size), limit: 1 << 20) else {
                throw EvidenceError("\(layout.historyPath(size: size)) disappeared while evidence was gathered")
            }
            do { return try SignedCheckpoint.open(note, verifier: verifier) } catch {
                throw EvidenceError("\(layout.historyPath(size: size)) does not verify with \(verifier.name): \(error)")
            }
        }
        // Witness cosignatures kept for these sizes ride along: their timestamps show when
        // each checkpoint existed (`custos verify --witness` checks them).
        func cosigned(_ c: SignedCheckpoint) -> SignedCheckpoint {
            let attached = CosignatureStore.attach(note: Array(c.note.utf8), data: directory)
            return (try? SignedCheckpoint.open(attached, verifier: verifier)) ?? c
        }
        let before = kept.contains(beforeSize) ? cosigned(try keptCheckpoint(beforeSize)) : nil
        let after = cosigned(try keptCheckpoint(afterSize))
        let headCosigned = cosigned(head)

        var consistency: [EvidenceReport.Consistency] = []
        for (a, b) in [(before, after), (after, head)] {
            guard let a else { continue }
            let s1 = a.checkpoint.size, s2 = b.checkpoint.size
            guard s1 > 0, s1 < s2 else { continue }
            let proof = try Merkle.consistencyProof(size1: s1, size2: s2, node: nodes.node)
            do {
                try Merkle.verifyConsistency(size1: s1, size2: s2, root1: a.checkpoint.rootHash, root2: b.checkpoint.rootHash, proof: proof)
            } catch {
                throw EvidenceError("the checkpoint of size \(s1) is not consistent with the one of size \(s2) (\(error)): the trail was rewritten; run `custos verify`")
            }
            consistency.append(.init(from: s1, to: s2, proof: proof))
        }
        let matches = try matched.map { i, bytes, e in
            EvidenceReport.Match(index: i, entry: bytes, event: e,
                                 inclusionProof: try Merkle.inclusionProof(index: i, size: n, node: nodes.node))
        }
        var indexCount: Int?
        if let reader = try? EventReader(directory: directory, verifier: verifier), reader.lag == 0 {
            var unlimited = query
            unlimited.limit = nil
            indexCount = try reader.count(unlimited)
        }
        return EvidenceReport(query: query, count: count, matches: matches, indexCount: indexCount, entriesScanned: n,
                              prunedBelow: pruned, eventsScanned: events, scannedRoot: range.root(), before: before, after: after, head: headCosigned,
                              consistency: consistency, verifierKey: verifier.vkey, generatedAt: now)
    }
}
