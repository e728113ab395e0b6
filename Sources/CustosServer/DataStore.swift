import CustosCore
import CustosStore
import CustosTrail
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A Custos data directory opened for writing: the trail, its signing key and the index,
/// kept in step (the index is caught up from the trail on open).
public final class DataStore {
    public let layout: TrailLayout
    public let trail: TrailWriter
    public let index: any EventIndex
    var knownIDs: EventKeySet
    /// Held for the store's lifetime: one writer per data directory, across processes.
    let lock: DirectoryLock

    /// The signer created on this open (first use of the directory), if any.
    public let createdSigner: NoteSigner?

    /// Opens `directory`. With `createIfMissing`, a missing signing key is generated with
    /// `origin` (so the embedded default works with no set-up).
    public init(directory: String, origin: String? = nil, createIfMissing: Bool = true) throws {
        layout = TrailLayout(dataDirectory: directory)
        lock = try DirectoryLock(directory: directory)
        let signer: NoteSigner
        if createIfMissing {
            let (s, created) = try TrailKeys.loadOrGenerate(layout: layout, origin: origin ?? DataStore.defaultOrigin())
            signer = s
            createdSigner = created ? s : nil
        } else {
            signer = try TrailKeys.load(layout: layout)
            createdSigner = nil
        }
        trail = try TrailWriter.open(layout: layout, signer: signer)
        index = try SQLiteEventIndex(path: layout.indexPath)
        knownIDs = EventKeySet()
        try catchUp()
        // Investigations recorded while another process held the directory (InvestigationLog).
        try absorbInvestigationSpool()
    }

    /// The default checkpoint origin: `custos.local/<hostname>` (a schema-less URL with no
    /// spaces or `+`, as signed-note key names require).
    public static func defaultOrigin() -> String {
        let host = ProcessInfo.processInfo.hostName
        let cleaned = String(host.unicodeScalars.filter { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-" || $0 == ".") })
        return "custos.local/" + (cleaned.isEmpty ? "trail" : cleaned)
    }

    /// Brings the index up to the trail (after a crash between the two, or a `reindex`).
    @discardableResult
    public func catchUp() throws -> UInt64 {
        if let o = try index.origin(), o != trail.origin {
            throw IndexError("the index at \(layout.indexPath) belongs to trail \(o), not \(trail.origin); run `custos reindex`")
        }
        var have = try index.indexedSize()
        if have > trail.size {
            // The index is ahead of the trail: it cannot be trusted. Rebuild.
            try index.reset()
            have = 0
        }
        if have < trail.size {
            let reader = try TrailReader(layout: layout, verifier: NoteVerifier(vkey: trail.checkpointVerifierKey))
            try EventReader.fill(index, from: reader, range: have..<trail.size)
        }
        let ids = try index.allEventIDs()
        knownIDs = EventKeySet(minimumCapacity: ids.count)
        for id in ids { knownIDs.insert(EventKey(id)) }
        return trail.size - have
    }

    /// The events matching `q`, read back from the trail.
    public func events(_ q: EventQuery) throws -> [IndexedEvent] {
        let reader = try TrailReader(layout: layout, verifier: NoteVerifier(vkey: trail.checkpointVerifierKey))
        return try EventReader.materialize(try index.query(q), from: reader)
    }

    /// Drops the index and rebuilds it from the trail.
    public func reindex() throws -> UInt64 {
        try index.reset()
        return try catchUp()
    }

    /// Seconds spent appending: de-duplication (events arrive encoded from the decoder), the durable trail commit, and
    /// the index update (each written by one stage only, so the two stages of a pipelined
    /// ingest can run on two threads).
    public struct Timings: Sendable {
        public var prepare = 0.0, trail = 0.0, index = 0.0, detect = 0.0
        public init() {}
    }
    private var detectSeconds = 0.0
    private var prepareSeconds = 0.0
    private var trailSeconds = 0.0
    private var indexSeconds = 0.0
    private var syncSeconds = 0.0
    public var timings: Timings {
        var t = Timings()
        t.prepare = prepareSeconds; t.trail = trailSeconds + syncSeconds; t.index = indexSeconds; t.detect = detectSeconds
        return t
    }

    public struct AppendResult: Sendable {
        public var accepted: Int
        public var duplicates: Int
        public var range: Range<UInt64>
        /// Per input event: its trail index, or nil when it was a duplicate.
        public var indices: [UInt64?]
    }

    /// Events made durable in the trail and not indexed yet (`appendToTrail` → `index`).
    public struct Staged: Sendable {
        /// The batch as given, duplicates included.
        public var batch: EventBatch
        /// The rows of `batch` appended to the trail (at `result.range`, in this order).
        public var fresh: [Int]
        public var result: AppendResult
        /// Entries appended right after the events (the alerts detection raised on them),
        /// at `extrasStart...`.
        public var extras: [TrailEntry] = []
        public var extrasStart: UInt64 = 0

        /// The appended events (decoded back from their entries).
        public var events: [AccessEvent] {
            get throws { try fresh.map { i in try AccessEvent.decode(Array(batch.entry(i))) } }
        }
    }

    /// Appends the events that are not already in the trail (by id), durably, then indexes
    /// them. Returns when the trail's new checkpoint is on disk.
    @discardableResult
    public func append(_ events: [AccessEvent]) throws -> AppendResult {
        let staged = try appendToTrail(events)
        try index(staged)
        return staged.result
    }

    /// `appendToTrail(_:)` for events (encoded with `AccessEvent.canonicalJSON()`).
    public func appendToTrail(_ events: [AccessEvent]) throws -> Staged {
        var batch = EventBatch(capacity: events.count)
        for e in events { batch.append(e) }
        return try appendToTrail(batch)
    }

    /// The first half of `append`: de-duplicate and commit to the trail. Call `index(_:)`
    /// with the result, in order; a crash in between is caught up on next open.
    /// With `detector`, the alerts it raises on the new events are appended right after them,
    /// in the same commit.
    public func appendToTrail(_ batch: EventBatch, detector: Detector? = nil) throws -> Staged {
        try complete(try stage(batch, detector: detector))
    }

    /// Events de-duplicated (and alerts raised on them) with their trail files written, not
    /// yet durable: `stage` → `complete`.
    public struct Pending: @unchecked Sendable {
        public var staged: Staged
        var prepared: [TrailWriter.Prepared]
    }

    /// The first step of a pipelined commit (the thread that stages, in order): de-duplicates
    /// `batch` against everything staged before, runs `detector` over the new events (their
    /// alerts go into the same commit, right after them) and writes the trail files on the
    /// tip, without syncing. `complete` (possibly on another thread, while the next group is
    /// staged) makes it durable. Undone (keys and all) if it throws.
    public func stage(_ batch: EventBatch, detector: Detector? = nil) throws -> Pending {
        let t0 = DispatchTime.now().uptimeNanoseconds
        let rows = batch.rows
        var fresh: [Int] = []
        var entries: [Range<Int>] = []
        fresh.reserveCapacity(rows.count)
        entries.reserveCapacity(rows.count)
        // Keys go straight into `knownIDs` (one hash per event); if the commit fails they
        // are taken out again, so that a retried event is not counted as a duplicate.
        knownIDs.reserveCapacity(forAdding: rows.count)
        var added: [EventKey] = []
        added.reserveCapacity(rows.count)
        var committed = false
        defer { if !committed { for k in added { knownIDs.remove(k) } } }
        var indices = [UInt64?]()
        indices.reserveCapacity(rows.count)
        let base = trail.tipSize
        for i in rows.indices {
            let row = rows[i]
            let key = EventKey(hi: row.keyHi, lo: row.keyLo)
            guard knownIDs.insert(key) else { indices.append(nil); continue }
            added.append(key)
            guard row.length <= AccessEvent.maxEncodedSize else {
                throw TrailError(.entryTooLarge, "event \(batch.id(i)) encodes to \(row.length) bytes (limit \(AccessEvent.maxEncodedSize))")
            }
            indices.append(base + UInt64(fresh.count))
            fresh.append(i)
            entries.append(row.offset..<(row.offset + row.length))
        }
        let t1 = DispatchTime.now().uptimeNanoseconds
        var prepared = [try batch.bytes.withUnsafeBytes { try trail.prepare(buffer: $0, entries: entries) }]
        var staged = Staged(batch: batch, fresh: fresh,
                            result: AppendResult(accepted: fresh.count, duplicates: rows.count - fresh.count,
                                                 range: prepared[0].range, indices: indices))
        let t2 = DispatchTime.now().uptimeNanoseconds
        if let detector, !fresh.isEmpty {
            // The events are on the tip now: a failure from here on must not leave them there.
            do {
                let alerts = detector.process(try staged.events, firstIndex: staged.result.range.lowerBound)
                if !alerts.isEmpty {
                    let extras = alerts.map { TrailEntry.alert($0) }
                    let p = try trail.prepare(extras.map { $0.canonicalJSON() })
                    prepared.append(p)
                    staged.extras = extras
                    staged.extrasStart = p.range.lowerBound
                    detector.recorded(alerts)
                }
            } catch {
                trail.abandon()
                throw error
            }
            detectSeconds += Double(DispatchTime.now().uptimeNanoseconds - t2) / 1e9
        }
        committed = true
        prepareSeconds += Double(t1 - t0) / 1e9
        trailSeconds += Double(t2 - t1) / 1e9
        return Pending(staged: staged, prepared: prepared)
    }

    /// The second step: makes a staged group durable under a new signed checkpoint (one sync
    /// for its events and alerts). Groups are completed in the order they were staged.
    public func complete(_ p: Pending) throws -> Staged {
        try complete([p])[0]
    }

    /// `complete(_:)` for several groups staged in this order: one sync and one signed
    /// checkpoint (the last group's) make them all durable.
    public func complete(_ groups: [Pending]) throws -> [Staged] {
        let t0 = DispatchTime.now().uptimeNanoseconds
        try trail.complete(groups.flatMap(\.prepared))
        syncSeconds += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        return groups.map(\.staged)
    }

    /// The second half of `append`: index what `appendToTrail` committed.
    public func index(_ staged: Staged) throws {
        let t0 = DispatchTime.now().uptimeNanoseconds
        if let sqlite = index as? SQLiteEventIndex {
            try sqlite.append(staged.batch, rows: staged.fresh, firstIndex: staged.result.range.lowerBound, origin: trail.origin)
        } else {
            try index.append(try staged.events, firstIndex: staged.result.range.lowerBound, origin: trail.origin)
        }
        if !staged.extras.isEmpty {
            try index.append(entries: staged.extras, firstIndex: staged.extrasStart, origin: trail.origin)
        }
        indexSeconds += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    }

    /// Appends entries that are not events (alerts, silences, deliveries) durably and
    /// indexes them. Returns their trail indices.
    @discardableResult
    public func appendEntries(_ entries: [TrailEntry]) throws -> Range<UInt64> {
        precondition(entries.allSatisfy { if case .event = $0 { return false } else { return true } },
                     "events go through append(_:), which de-duplicates them")
        guard !entries.isEmpty else { return trail.size..<trail.size }
        let range = try trail.append(entries.map { $0.canonicalJSON() })
        try index.append(entries: entries, firstIndex: range.lowerBound, origin: trail.origin)
        return range
    }

    /// A reader over this directory's trail (checked against its own key).
    func reader() throws -> TrailReader {
        try TrailReader(layout: layout, verifier: NoteVerifier(vkey: trail.checkpointVerifierKey))
    }

    /// Every silence recorded in the trail.
    public func silences() throws -> [Silence] {
        try EventReader.entries(try index.entries(schema: Silence.schema), from: try reader()).compactMap {
            if case .silence(let s) = $0.entry { return s } else { return nil }
        }
    }
}

/// A compact de-duplication key for an event id (128 bits): the id's 32 hex digits, or
/// for ids of another shape (other sources) 128 bits of their SHA-256 (`EventKeyWords`).
struct EventKey: Hashable {
    var hi: UInt64
    var lo: UInt64

    init(hi: UInt64, lo: UInt64) { self.hi = hi; self.lo = lo }

    init(_ id: String) {
        (hi, lo) = EventKeyWords.of(id: id)
    }
}

/// An exclusive `flock(2)` on `<data>/lock`: a second writer fails at once with a clear error
/// instead of interleaving its tiles with the first one's.
final class DirectoryLock {
    let fd: Int32
    init(directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/lock"
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw IngestError("cannot open \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw IngestError("another custos process is writing to \(directory) (\(path) is locked); wait for it to finish")
        }
    }
    deinit {
        _ = flock(fd, LOCK_UN)
        close(fd)
    }
}

