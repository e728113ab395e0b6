import CustosCore
import Foundation

/// An index held in memory: the reference the SQLite index is tested against, and a
/// backend for tests. `failNextAppend` simulates a storage failure before anything is kept.
public final class InMemoryEventIndex: EventIndex, @unchecked Sendable {
    private let lock = NSLock()
    private var events: [AccessEvent] = []
    private var trailOrigin: String?
    public var failNextAppend = false

    public init() {}

    public func indexedSize() throws -> UInt64 { lock.withLock { UInt64(events.count) } }
    public func origin() throws -> String? { lock.withLock { trailOrigin } }

    public func append(_ new: [AccessEvent], firstIndex: UInt64, origin: String) throws {
        try lock.withLock {
            if failNextAppend { failNextAppend = false; throw IndexError("injected failure") }
            guard UInt64(events.count) == firstIndex else {
                throw IndexError("index holds \(events.count) entries; cannot add at \(firstIndex)")
            }
            if let o = trailOrigin, o != origin { throw IndexError("index was built from trail \(o), not \(origin)") }
            events.append(contentsOf: new)
            trailOrigin = origin
        }
    }

    func matches(_ e: AccessEvent, _ q: EventQuery) -> Bool {
        if let g = q.secret { guard let p = e.secret?.path, Glob.matches(g, p) else { return false } }
        if let g = q.identity {
            guard (e.identity.name.map { Glob.matches(g, $0) } ?? false) || (e.identity.id.map { Glob.matches(g, $0) } ?? false) else { return false }
        }
        if !q.kinds.isEmpty && !q.kinds.contains(e.identity.kind) { return false }
        if !q.outcomes.isEmpty && !q.outcomes.contains(e.outcome) { return false }
        if !q.environments.isEmpty { guard let env = e.secret?.environment, q.environments.contains(env) else { return false } }
        if !q.actions.isEmpty && !q.actions.contains(e.action.rawValue) { return false }
        if let f = q.from, e.time.unixNanos < f.unixNanos { return false }
        if let t = q.to, e.time.unixNanos >= t.unixNanos { return false }
        return true
    }

    public func query(_ q: EventQuery) throws -> [UInt64] {
        lock.withLock {
            var out = [UInt64]()
            for (i, e) in events.enumerated() where matches(e, q) {
                if let l = q.limit, out.count >= l { break }
                out.append(UInt64(i))
            }
            return out
        }
    }

    /// The events held (the in-memory index keeps them; tests compare with them).
    public func event(at index: UInt64) -> AccessEvent? {
        lock.withLock { index < UInt64(events.count) ? events[Int(index)] : nil }
    }

    public func count(_ q: EventQuery) throws -> Int {
        var unlimited = q
        unlimited.limit = nil
        return try query(unlimited).count
    }

    public func allEventIDs() throws -> [String] { lock.withLock { events.map(\.id) } }

    public func reset() throws { lock.withLock { events = []; trailOrigin = nil } }
}
