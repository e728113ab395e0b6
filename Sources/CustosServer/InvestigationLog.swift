import CustosCore
import CustosStore
import CustosTrail
import Foundation

/// Records investigations (`custos.investigation/v1`) and incident steps (`custos.incident/v1`)
/// made on the command line in the trail.
///
/// A command-line query records itself directly when no other process writes to the data
/// directory. When one does (a running `custos serve` holds the directory's lock), the record
/// is written durably to `<data>/spool/investigations/` and the writer appends it to the trail
/// (the server within a second or two, any other writer when it opens the directory). Either
/// way the record is on disk, fsynced, before the command prints its results.
public enum InvestigationLog {
    public enum Recorded: Sendable, Equatable {
        /// Appended to the trail at this index.
        case trail(UInt64)
        /// Waiting in the spool for the directory's writer.
        case spooled(String)
    }

    public static func spoolDirectory(_ layout: TrailLayout) -> String { layout.dataDirectory + "/spool/investigations" }

    /// Records `record` for the data directory `directory` (see the type's comment).
    public static func record(_ record: InvestigationRecord, directory: String) throws -> Recorded {
        try Self.record(entry: .investigation(record), name: spoolName(record.time, record.id), what: record.action.rawValue, directory: directory)
    }

    /// Records an incident step like an investigation.
    public static func record(_ step: IncidentStep, directory: String) throws -> Recorded {
        let bytes = step.canonicalJSON()
        let id = "inc-" + String(Hex.encode(SHA256Bytes.of(bytes)).prefix(16))
        return try Self.record(entry: .incident(step), name: spoolName(step.time, id), what: "incident step", directory: directory)
    }

    static func record(entry: TrailEntry, name: String, what: String, directory: String) throws -> Recorded {
        let layout = TrailLayout(dataDirectory: directory)
        if FileIO.exists(layout.signingKeyPath), let lock = try? DirectoryLock(directory: directory) {
            defer { withExtendedLifetime(lock) {} }
            let writer = try TrailWriter.open(layout: layout, signer: try TrailKeys.load(layout: layout))
            let index = try SQLiteEventIndex(path: layout.indexPath)
            // A lagging index is caught up by the next writer (or `reindex`); never skip ahead.
            let inStep = try index.indexedSize() == writer.size
            let range = try writer.append([entry.canonicalJSON()])
            if inStep { try index.append(entries: [entry], firstIndex: range.lowerBound, origin: writer.origin) }
            return .trail(range.lowerBound)
        }
        let dir = spoolDirectory(layout)
        let path = dir + "/" + name
        do {
            try FileIO.mkdirs(dir)
            try FileIO.replaceAtomically(path, entry.canonicalJSON(), mode: 0o600)
        } catch {
            throw IngestError("cannot record this \(what) in \(directory): the trail is locked by another process and the spool cannot be written (\(error)); nothing was shown")
        }
        return .spooled(path)
    }

    /// Time-ordered, unique names: nanoseconds since 1970, then the record id.
    static func spoolName(_ time: EventTime, _ id: String) -> String {
        let ns = String(max(0, time.unixNanos))
        return String(repeating: "0", count: max(0, 20 - ns.count)) + ns + "-" + id + ".json"
    }

    /// A record waiting in the spool, and its file.
    public struct Spooled: Sendable {
        public var path: String
        public var entry: TrailEntry
    }

    /// The spooled records in time order. A file that is not a canonical investigation record or incident step
    /// (it can only have been put there by hand) is moved to `spool/rejected/` and reported
    /// through `rejected`, never appended.
    public static func pending(_ layout: TrailLayout, limit: Int = 1000, rejected: (String) -> Void = { _ in }) -> [Spooled] {
        let dir = spoolDirectory(layout)
        var out: [Spooled] = []
        for name in FileIO.listDirectory(dir).filter({ $0.hasSuffix(".json") }).sorted().prefix(limit) {
            let path = dir + "/" + name
            guard let bytes = try? FileIO.readFile(path, limit: 1 << 20), let entry = try? TrailEntry.decode(bytes),
                  entry.schema == InvestigationRecord.schema || entry.schema == IncidentStep.schema else {
                let bad = layout.dataDirectory + "/spool/rejected"
                try? FileIO.mkdirs(bad)
                _ = rename(path, bad + "/" + name)
                rejected(path)
                continue
            }
            out.append(Spooled(path: path, entry: entry))
        }
        return out
    }

    /// Removes spooled files once their records are durable in the trail.
    public static func remove(_ spooled: [Spooled]) {
        for s in spooled { unlink(s.path) }
        if let first = spooled.first { try? FileIO.fsyncPath(FileIO.directory(of: first.path)) }
    }

    /// The spooled records not already in the trail: a writer that crashed between appending
    /// them and removing their files appended them once already (they are at the trail's end).
    public static func notYetRecorded(_ spooled: [Spooled], index: any EventIndex, reader: TrailReader) throws -> [Spooled] {
        guard !spooled.isEmpty else { return [] }
        var recent = Set<[UInt8]>()
        for schema in [InvestigationRecord.schema, IncidentStep.schema] {
            for e in try EventReader.entries(Array(try index.entries(schema: schema).suffix(4096)), from: reader) {
                recent.insert(e.entry.canonicalJSON())
            }
        }
        return spooled.filter { !recent.contains($0.entry.canonicalJSON()) }
    }
}

extension DataStore {
    /// Appends what waits in the investigation spool (see `InvestigationLog`); returns how many.
    @discardableResult
    public func absorbInvestigationSpool() throws -> Int {
        let spooled = InvestigationLog.pending(layout)
        guard !spooled.isEmpty else { return 0 }
        let fresh = try InvestigationLog.notYetRecorded(spooled, index: index, reader: try reader())
        if !fresh.isEmpty { try appendEntries(fresh.map(\.entry)) }
        InvestigationLog.remove(spooled)
        return fresh.count
    }
}
