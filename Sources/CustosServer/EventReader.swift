import CustosCore
import CustosStore
import CustosTrail
import Foundation

/// Read-only access to a data directory for queries: the index finds, the trail provides.
/// Opens nothing for writing and needs no signing key.
public struct EventReader {
    public let layout: TrailLayout
    public let index: SQLiteEventIndex
    public let trail: TrailReader

    /// Opens `directory`. The trail's checkpoint is checked against `verifier`, or against
    /// the directory's own `keys/trail.vkey` when none is given.
    public init(directory: String, verifier: NoteVerifier? = nil) throws {
        layout = TrailLayout(dataDirectory: directory)
        let v: NoteVerifier
        if let verifier {
            v = verifier
        } else {
            guard let text = FileManager.default.contents(atPath: layout.verifierKeyPath) else {
                throw IndexError("no verifier key at \(layout.verifierKeyPath)")
            }
            v = try NoteVerifier(vkey: String(decoding: text, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        var trail = try TrailReader(layout: layout, verifier: v)
        guard FileManager.default.fileExists(atPath: layout.indexPath) else {
            throw IndexError("no index in \(directory) (nothing ingested yet?)")
        }
        index = try SQLiteEventIndex(path: layout.indexPath)
        if let o = try index.origin(), o != trail.checkpoint.checkpoint.origin {
            throw IndexError("the index belongs to trail \(o), not \(trail.checkpoint.checkpoint.origin); run `custos reindex`")
        }
        var indexed = try index.indexedSize()
        // A live server commits to the trail first and indexes after: a commit that lands
        // between reading the checkpoint and reading the index puts the index ahead of the
        // checkpoint just read. The newer checkpoint then covers it; only an index that stays
        // ahead of the trail is wrong.
        var reread = 0
        while indexed > trail.size && reread < 5 {
            reread += 1
            trail = try TrailReader(layout: layout, verifier: v)
            indexed = try index.indexedSize()
        }
        if indexed > trail.size {
            throw IndexError("the index holds \(indexed) entries but the trail only \(trail.size); run `custos reindex`")
        }
        self.trail = trail
        lag = trail.size - indexed
    }

    /// Opens `directory`'s trail with an index built from it at `indexPath` (emptied first):
    /// `custos reindex` with the directory's own index path, the evidence pack with a scratch
    /// file, so that its output never rests on a database anyone with write access can edit.
    /// Reads every entry once.
    public init(directory: String, verifier: NoteVerifier, freshIndexAt indexPath: String) throws {
        layout = TrailLayout(dataDirectory: directory)
        trail = try TrailReader(layout: layout, verifier: verifier)
        index = try SQLiteEventIndex(path: indexPath)
        try index.reset()
        try Self.fill(index, from: trail, range: 0..<trail.size)
        lag = 0
    }

    /// Trail entries not in the index yet (after a crash between the two; the next ingest
    /// or `custos reindex` catches up). Queries don't see them.
    public let lag: UInt64

    /// Rebuilds the index of `directory` from its trail, trusting the trail's checkpoint only
    /// if it verifies with the directory's verifier key. Needs no signing key.
    public static func rebuildIndex(directory: String) throws -> UInt64 {
        let layout = TrailLayout(dataDirectory: directory)
        guard let text = FileManager.default.contents(atPath: layout.verifierKeyPath) else {
            throw IndexError("no verifier key at \(layout.verifierKeyPath)")
        }
        let v = try NoteVerifier(vkey: String(decoding: text, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        return try EventReader(directory: directory, verifier: v, freshIndexAt: layout.indexPath).trail.size
    }

    /// Indexes the trail entries in `range` (which must start at the index's size).
    static func fill(_ index: any EventIndex, from reader: TrailReader, range: Range<UInt64>) throws {
        let origin = reader.checkpoint.checkpoint.origin
        // A pruned trail starts at its minimum index (the entries below are in the archive).
        if range.lowerBound < reader.minimumIndex { try index.prune(below: reader.minimumIndex) }
        var batch: [TrailEntry] = []
        var first = range.lowerBound
        try reader.forEachEntry(in: range) { i, bytes in
            if batch.isEmpty { first = i }
            do { batch.append(try TrailEntry.decode(bytes)) } catch {
                throw IndexError("trail entry \(i) cannot be indexed: \(error)")
            }
            if batch.count == 8192 {
                try index.append(entries: batch, firstIndex: first, origin: origin)
                batch.removeAll(keepingCapacity: true)
            }
        }
        if !batch.isEmpty { try index.append(entries: batch, firstIndex: first, origin: origin) }
    }

    public func events(_ q: EventQuery) throws -> [IndexedEvent] {
        try Self.materialize(try index.query(q), from: trail)
    }

    public func count(_ q: EventQuery) throws -> Int { try index.count(q) }

    /// Alert entries matching `q`, read back from the trail, in trail order.
    public func alerts(_ q: AlertQuery) throws -> [(index: UInt64, alert: Alert)] {
        try Self.entries(try index.alertEntries(q), from: trail).compactMap {
            if case .alert(let a) = $0.entry { return ($0.index, a) } else { return nil }
        }
    }

    /// Every silence in the trail, in trail order.
    public func silences() throws -> [Silence] {
        try Self.entries(try index.entries(schema: Silence.schema), from: trail).compactMap {
            if case .silence(let s) = $0.entry { return s } else { return nil }
        }
    }

    /// Every delivery record in the trail, in trail order.
    public func deliveries() throws -> [DeliveryRecord] {
        try Self.entries(try index.entries(schema: DeliveryRecord.schema), from: trail).compactMap {
            if case .delivery(let d) = $0.entry { return d } else { return nil }
        }
    }

    /// Every investigation record in the trail, in trail order.
    public func investigations() throws -> [(index: UInt64, record: InvestigationRecord)] {
        try Self.entries(try index.entries(schema: InvestigationRecord.schema), from: trail).compactMap {
            if case .investigation(let r) = $0.entry { return ($0.index, r) } else { return nil }
        }
    }

    /// Reads the entries at `indices` (ascending) from the trail, any schema, each bundle once.
    static func entries(_ indices: [UInt64], from reader: TrailReader) throws -> [(index: UInt64, entry: TrailEntry)] {
        var out = [(index: UInt64, entry: TrailEntry)]()
        out.reserveCapacity(indices.count)
        var k = 0
        while k < indices.count {
            let bundle = indices[k] >> 8
            var end = k
            while end < indices.count && indices[end] >> 8 == bundle { end += 1 }
            let wanted = Set(indices[k..<end])
            try reader.forEachEntry(in: (bundle << 8)..<min(reader.size, (bundle + 1) << 8)) { i, bytes in
                if wanted.contains(i) { out.append((i, try TrailEntry.decode(bytes))) }
            }
            k = end
        }
        return out
    }

    /// Reads the entries at `indices` (ascending) from the trail, each bundle once.
    static func materialize(_ indices: [UInt64], from reader: TrailReader) throws -> [IndexedEvent] {
        var out = [IndexedEvent]()
        out.reserveCapacity(indices.count)
        var k = 0
        while k < indices.count {
            let bundle = indices[k] >> 8
            var end = k
            while end < indices.count && indices[end] >> 8 == bundle { end += 1 }
            let wanted = Set(indices[k..<end])
            try reader.forEachEntry(in: (bundle << 8)..<((bundle + 1) << 8)) { i, bytes in
                if wanted.contains(i) { out.append(IndexedEvent(index: i, event: try AccessEvent.decode(bytes))) }
            }
            k = end
        }
        return out
    }
}
