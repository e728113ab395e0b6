import CustosCore
import Foundation

/// An index held in memory: the reference the SQLite index is tested against, and a
/// backend for tests. `failNextAppend` simulates a storage failure before anything is kept.
public final class InMemoryEventIndex: EventIndex, @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [TrailEntry] = []
    private var trailOrigin: String?
    public var failNextAppend = false

    public init() {}

    public func indexedSize() throws -> UInt64 { lock.withLock { UInt64(entries.count) } }
    public func origin() throws -> String? { lock.withLock { trailOrigin } }

    public func append(entries new: [TrailEntry], firstIndex: UInt64, origin: String) throws {
        try lock.withLock {
            if failNextAppend { failNextAppend = false; throw IndexError("injected failure") }
            guard UInt64(entries.count) == firstIndex else {
                throw IndexError("index holds \(entries.count) entries; cannot add at \(firstIndex)")
            }
            if let o = trailOrigin, o != origin { throw IndexError("index was built from trail \(o), not \(origin)") }
            entries.append(contentsOf: new)
            trailOrigin = origin
        }
    }

    func matches(_ a: Alert, _ q: AlertQuery) -> Bool {
        if !q.classes.isEmpty && !q.classes.contains(a.alertClass) { return false }
        if !q.severities.isEmpty && !q.severities.contains(a.severity) { return false }
        if !q.owners.isEmpty { guard let o = a.owner?.key, q.owners.contains(o) else { return false } }
        if !q.statuses.isEmpty && !q.statuses.contains(a.status) { return false }
        if !q.ids.isEmpty && !q.ids.contains(a.id) { return false }
        if let g = q.secret { guard let p = a.secret?.path, Glob.matches(g, p) else { return false } }
        if let g = q.identity {
            guard (a.identity.name.map { Glob.matches(g, $0) } ?? false) || (a.identity.id.map { Glob.matches(g, $0) } ?? false) else { return false }
        }
        if let s = q.silenced, s != (a.silencedBy != nil) { return false }
        if let f = q.from, a.time.unixNanos < f.unixNanos { return false }
        if let t = q.to, a.time.unixNanos >= t.unixNanos { return false }
        return true
    }

    public func alertEntries(_ q: AlertQuery) throws -> [UInt64] {
        lock.withLock {
            var out = [UInt64]()
            for (i, e) in entries.enumerated() {
                guard case .alert(let a) = e, matches(a, q) else { continue }
                if let l = q.limit, out.count >= l { break }
                out.append(UInt64(i))
            }
            return out
        }
    }

    public func entries(schema: String) throws -> [UInt64] {
        lock.withLock { entries.indices.filter { entries[$0].schema == schema }.map { UInt64($0) } }
    }

    func matches(_ e: AccessEvent, _ q: EventQuery) -> Bool { q.matches(e) }

    public func query(_ q: EventQuery) throws -> [UInt64] {
        lock.withLock {
            var out = [UInt64]()
            for (i, entry) in entries.enumerated() {
                guard case .event(let e) = entry, matches(e, q) else { continue }
                if let l = q.limit, out.count >= l { break }
                out.append(UInt64(i))
            }
            return out
        }
    }

    /// The events held (the in-memory index keeps them; tests compare with them).
    public func event(at index: UInt64) -> AccessEvent? {
        lock.withLock {
            guard index < UInt64(entries.count), case .event(let e) = entries[Int(index)] else { return nil }
            return e
        }
    }

    public func count(_ q: EventQuery) throws -> Int {
        var unlimited = q
        unlimited.limit = nil
        return try query(unlimited).count
    }

    public func allEventIDs() throws -> [String] {
        lock.withLock { entries.compactMap { if case .event(let e) = $0 { return e.id } else { return nil } } }
    }

    public func reset() throws { lock.withLock { entries = []; trailOrigin = nil } }
}
