import CustosCore

/// A filter over indexed events. Globs use `*`, `?` and `[...]` (shell style, case-sensitive).
public struct EventQuery: Sendable, Equatable {
    public var secret: String?
    public var identity: String?
    public var kinds: [IdentityKind] = []
    public var outcomes: [Outcome] = []
    public var environments: [String] = []
    public var actions: [String] = []
    /// Inclusive lower bound.
    public var from: EventTime?
    /// Exclusive upper bound.
    public var to: EventTime?
    public var limit: Int?
    public init() {}
}

extension EventQuery {
    /// Whether `e` passes every filter (the limit aside): the same verdict as the index's
    /// query, computed from the event itself (evidence scans the trail with it).
    public func matches(_ e: AccessEvent) -> Bool {
        if let g = secret { guard let p = e.secret?.path, Glob.matches(g, p) else { return false } }
        if let g = identity {
            guard (e.identity.name.map { Glob.matches(g, $0) } ?? false) || (e.identity.id.map { Glob.matches(g, $0) } ?? false) else { return false }
        }
        if !kinds.isEmpty && !kinds.contains(e.identity.kind) { return false }
        if !outcomes.isEmpty && !outcomes.contains(e.outcome) { return false }
        if !environments.isEmpty { guard let env = e.secret?.environment, environments.contains(env) else { return false } }
        if !actions.isEmpty && !actions.contains(e.action.rawValue) { return false }
        if let f = from, e.time < f { return false }
        if let t = to, !(e.time < t) { return false }
        return true
    }
}

/// A filter over indexed alert entries (`custos.alert/v1`). Times are the alert's `time`
/// (its first event); globs as for events.
public struct AlertQuery: Sendable, Equatable {
    public var classes: [AlertClass] = []
    public var severities: [Severity] = []
    public var owners: [String] = []
    public var statuses: [Alert.Status] = []
    public var ids: [String] = []
    public var secret: String?
    public var identity: String?
    /// Only alerts a silence matched (true), only unsilenced ones (false), or both (nil).
    public var silenced: Bool?
    public var from: EventTime?
    public var to: EventTime?
    public var limit: Int?
    public init() {}
}

/// One event with its position in the trail.
public struct IndexedEvent: Sendable {
    public var index: UInt64
    public var event: AccessEvent
    public init(index: UInt64, event: AccessEvent) { self.index = index; self.event = event }
}

/// The query index: derived from the trail, rebuildable from it. It holds the columns
/// queries filter on and the trail index of each event, not the events themselves: the
/// trail is the evidence, and what `query` prints is read back from it.
/// Implementations: `SQLiteEventIndex` (GRDB). A PostgreSQL one can follow behind the same
/// protocol; `EventIndexConformance` in the tests runs the same suite against each.
public protocol EventIndex: AnyObject {
    /// How many trail entries (from index 0) the index holds.
    func indexedSize() throws -> UInt64
    /// The trail origin this index was built from (nil when empty).
    func origin() throws -> String?
    /// Adds trail entries of any schema (events, alerts, silences, deliveries) at
    /// consecutive trail indices starting at `firstIndex`, which must equal `indexedSize()`;
    /// atomically advances the indexed size. Event ids are unique because the data store
    /// de-duplicates before the trail; the index does not check them again (a unique index
    /// on random ids halved SQLite's insert rate).
    func append(entries: [TrailEntry], firstIndex: UInt64, origin: String) throws
    /// Trail indices of the matching alert entries (raised and updated), ascending.
    func alertEntries(_ q: AlertQuery) throws -> [UInt64]
    /// Trail indices of the entries with `schema` (silences, deliveries), ascending.
    func entries(schema: String) throws -> [UInt64]
    /// Trail indices of the matching events, ascending. The events themselves are read from
    /// the trail (the index keeps only what it filters on).
    func query(_ q: EventQuery) throws -> [UInt64]
    func count(_ q: EventQuery) throws -> Int
    /// Every event id (for de-duplication before appending to the trail).
    func allEventIDs() throws -> [String]
    /// Drops everything (before a rebuild).
    func reset() throws
    /// Forgets the trail entries below `below` (pruned from the trail, see `TrailPruning`):
    /// their rows go, and an index holding fewer entries than `below` continues at `below`
    /// (a rebuild of a pruned trail starts there).
    func prune(below: UInt64) throws
}

extension EventIndex {
    public func prune(below: UInt64) throws {
        throw IndexError("this index (\(Self.self)) cannot forget pruned entries")
    }

    /// `append(entries:firstIndex:origin:)` for events only.
    public func append(_ events: [AccessEvent], firstIndex: UInt64, origin: String) throws {
        try append(entries: events.map { .event($0) }, firstIndex: firstIndex, origin: origin)
    }
}

public struct IndexError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
