import CustosCore
import Foundation
import GRDB
import GRDBSQLite

/// The index in SQLite (WAL mode). It is derived data: `synchronous = NORMAL` is enough,
/// since a lost tail is re-read from the trail on the next open.
public final class SQLiteEventIndex: EventIndex {
    let db: DatabaseQueue

    public init(path: String) throws {
        var config = Configuration()
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            try db.execute(sql: "PRAGMA cache_size = -65536")
            try db.execute(sql: "PRAGMA temp_store = MEMORY")
        }
        do {
            db = try DatabaseQueue(path: path, configuration: config)
            _ = try db.writeWithoutTransaction { try $0.execute(sql: "PRAGMA journal_mode = WAL") }
            try Self.migrator.migrate(db)
        } catch let e as DatabaseError {
            throw IndexError("cannot open the index at \(path): \(e.message ?? "\(e.resultCode)")")
        }
    }

    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                CREATE TABLE events (
                    idx INTEGER PRIMARY KEY,
                    id TEXT NOT NULL,
                    time_ns INTEGER NOT NULL,
                    action TEXT NOT NULL,
                    outcome TEXT NOT NULL,
                    source_kind TEXT NOT NULL,
                    source_instance TEXT NOT NULL,
                    secret_path TEXT,
                    environment TEXT,
                    identity_id TEXT,
                    identity_name TEXT,
                    identity_kind TEXT NOT NULL,
                    origin_ip TEXT
                );
                CREATE INDEX events_time ON events(time_ns);
                """)
        }
        // Entries that are not events: alerts (with the columns `custos alerts` filters
        // on) and the rest by schema (silences, deliveries).
        m.registerMigration("v2-alerts") { db in
            try db.execute(sql: """
                CREATE TABLE alerts (
                    idx INTEGER PRIMARY KEY,
                    id TEXT NOT NULL,
                    status TEXT NOT NULL,
                    class TEXT NOT NULL,
                    severity TEXT NOT NULL,
                    owner TEXT,
                    time_ns INTEGER NOT NULL,
                    secret_path TEXT,
                    identity_id TEXT,
                    identity_name TEXT,
                    silenced INTEGER NOT NULL
                );
                CREATE INDEX alerts_id ON alerts(id);
                CREATE TABLE records (idx INTEGER PRIMARY KEY, schema TEXT NOT NULL);
                CREATE INDEX records_schema ON records(schema);
                """)
        }
        return m
    }

    public func indexedSize() throws -> UInt64 {
        try wrap { try db.read { db in try UInt64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'size'") ?? 0 } }
    }

    public func origin() throws -> String? {
        try wrap { try db.read { db in try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'origin'") } }
    }

    /// Adds rows `rows` of `batch` (in this order) at `firstIndex...`, like `append(entries:firstIndex:origin:)`.
    public func append(_ batch: EventBatch, rows: [Int], firstIndex: UInt64, origin: String) throws {
        try wrap {
            try db.write { db in
                try Self.checkAppend(db, firstIndex: firstIndex, origin: origin)
                let end = try Self.insertEvents(db, batch, rows: rows, firstIndex: firstIndex)
                try Self.setSize(db, end, origin: origin)
            }
        }
    }

    public func append(entries: [TrailEntry], firstIndex: UInt64, origin: String) throws {
        try wrap {
            try db.write { db in
                try Self.checkAppend(db, firstIndex: firstIndex, origin: origin)
                var i = firstIndex
                var k = 0
                var run = EventBatch()
                while k < entries.count {
                    if case .event = entries[k] {
                        run.removeAll(keepingCapacity: true)
                        while k < entries.count, case .event(let e) = entries[k] { run.append(e); k += 1 }
                        i = try Self.insertEvents(db, run, rows: Array(0..<run.count), firstIndex: i)
                        continue
                    }
                    switch entries[k] {
                    case .alert(let a):
                        try db.execute(sql: """
                            INSERT INTO alerts (idx, id, status, class, severity, owner, time_ns, secret_path, identity_id, identity_name, silenced)
                            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                            """, arguments: [Int64(i), a.id, a.status.rawValue, a.alertClass.rawValue, a.severity.rawValue,
                                             a.owner?.key, a.time.unixNanos, a.secret?.path, a.identity.id, a.identity.name,
                                             a.silencedBy == nil ? 0 : 1])
                    default:
                        try db.execute(sql: "INSERT INTO records (idx, schema) VALUES (?, ?)", arguments: [Int64(i), entries[k].schema])
                    }
                    i += 1
                    k += 1
                }
                try Self.setSize(db, i, origin: origin)
            }
        }
    }

    static func checkAppend(_ db: Database, firstIndex: UInt64, origin: String) throws {
        let size = try UInt64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'size'") ?? 0
        guard size == firstIndex else {
            throw IndexError("index holds \(size) entries; cannot add at \(firstIndex)")
        }
        if let o = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'origin'"), o != origin {
            throw IndexError("index was built from trail \(o), not \(origin)")
        }
    }

    static func setSize(_ db: Database, _ size: UInt64, origin: String) throws {
        try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('size', ?), ('origin', ?)",
                       arguments: [String(size), origin])
    }

    /// Inserts rows `rows` of `batch` at `firstIndex...`; returns the index after the last.
    static func insertEvents(_ db: Database, _ batch: EventBatch, rows: [Int], firstIndex: UInt64) throws -> UInt64 {
        // Rows go in `chunk` at a time (one statement execution per chunk, not per row),
        // bound through SQLite's C API straight from the batch's buffer (which outlives
        // each step): this runs for every event ingested.
        let chunk = Self.rowsPerInsert
        let many = try db.cachedStatement(sql: Self.insertSQL(rows: chunk)).sqliteStatement
        let one = try db.cachedStatement(sql: Self.insertSQL(rows: 1)).sqliteStatement
        var i = firstIndex
        try batch.bytes.withUnsafeBufferPointer { buf in
            let all = batch.rows
            var k = 0
            while k < rows.count {
                let n = rows.count - k >= chunk ? chunk : 1
                let stmt = n == chunk ? many : one
                sqlite3_reset(stmt)
                for j in 0..<n {
                    let e = all[rows[k + j]]
                    let base = buf.baseAddress! + e.offset
                    let p = Int32(13 * j)
                    @inline(__always) func text(_ c: Int32, _ s: EventBatch.Span) {
                        if s.isNull {
                            sqlite3_bind_null(stmt, p + c)
                        } else {
                            precondition(s.offset >= 0 && e.offset + Int(s.offset) + Int(s.count) <= buf.count, "column outside the batch")
                            _ = (base + Int(s.offset)).withMemoryRebound(to: CChar.self, capacity: Int(s.count)) {
                                sqlite3_bind_text(stmt, p + c, $0, s.count, nil)   // SQLITE_STATIC
                            }
                        }
                    }
                    sqlite3_bind_int64(stmt, p + 1, Int64(i) + Int64(j))
                    text(2, e.id)
                    sqlite3_bind_int64(stmt, p + 3, e.timeNanos)
                    text(4, e.action)
                    text(5, e.outcome)
                    text(6, e.sourceKind)
                    text(7, e.sourceInstance)
                    text(8, e.secretPath)
                    text(9, e.environment)
                    text(10, e.identityID)
                    text(11, e.identityName)
                    text(12, e.identityKind)
                    text(13, e.originIP)
                }
                let rc = sqlite3_step(stmt)
                guard rc == SQLITE_DONE else {
                    let message = String(cString: sqlite3_errmsg(db.sqliteConnection))
                    sqlite3_reset(stmt)
                    sqlite3_clear_bindings(stmt)
                    throw IndexError("cannot index trail entries \(i)..<\(i + UInt64(n)): \(message)")
                }
                i += UInt64(n)
                k += n
            }
            for stmt in [many, one] {
                sqlite3_reset(stmt)
                sqlite3_clear_bindings(stmt)
            }
        }
        return i
    }

    /// Rows per INSERT statement in bulk appends (13 parameters each: 416 in all, under any SQLite limit).
    static let rowsPerInsert = 32

    static func insertSQL(rows: Int) -> String {
        "INSERT INTO events (idx, id, time_ns, action, outcome, source_kind, source_instance, "
            + "secret_path, environment, identity_id, identity_name, identity_kind, origin_ip) VALUES "
            + Array(repeating: "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", count: rows).joined(separator: ", ")
    }

    func whereClause(_ q: EventQuery) -> (String, StatementArguments) {
        var parts: [String] = []
        var args = StatementArguments()
        if let s = q.secret { parts.append("secret_path GLOB ?"); _ = args.append(contentsOf: [s]) }
        if let s = q.identity { parts.append("(identity_name GLOB ? OR identity_id GLOB ?)"); _ = args.append(contentsOf: [s, s]) }
        func inList(_ column: String, _ values: [String]) {
            guard !values.isEmpty else { return }
            parts.append("\(column) IN (\(values.map { _ in "?" }.joined(separator: ",")))")
            _ = args.append(contentsOf: StatementArguments(values))
        }
        inList("identity_kind", q.kinds.map(\.rawValue))
        inList("outcome", q.outcomes.map(\.rawValue))
        inList("environment", q.environments)
        inList("action", q.actions)
        if let f = q.from { parts.append("time_ns >= ?"); _ = args.append(contentsOf: [f.unixNanos]) }
        if let t = q.to { parts.append("time_ns < ?"); _ = args.append(contentsOf: [t.unixNanos]) }
        return (parts.isEmpty ? "" : " WHERE " + parts.joined(separator: " AND "), args)
    }

    public func query(_ q: EventQuery) throws -> [UInt64] {
        let (w, args) = whereClause(q)
        var sql = "SELECT idx FROM events" + w + " ORDER BY idx"
        if let l = q.limit { sql += " LIMIT \(max(0, l))" }
        return try wrap {
            try db.read { db in try Int64.fetchAll(db, sql: sql, arguments: args).map { UInt64($0) } }
        }
    }

    public func count(_ q: EventQuery) throws -> Int {
        let (w, args) = whereClause(q)
        return try wrap { try db.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM events" + w, arguments: args) ?? 0 } }
    }

    public func alertEntries(_ q: AlertQuery) throws -> [UInt64] {
        var parts: [String] = []
        var args = StatementArguments()
        func inList(_ column: String, _ values: [String]) {
            guard !values.isEmpty else { return }
            parts.append("\(column) IN (\(values.map { _ in "?" }.joined(separator: ",")))")
            _ = args.append(contentsOf: StatementArguments(values))
        }
        inList("class", q.classes.map(\.rawValue))
        inList("severity", q.severities.map(\.rawValue))
        inList("owner", q.owners)
        inList("status", q.statuses.map(\.rawValue))
        inList("id", q.ids)
        if let s = q.secret { parts.append("secret_path GLOB ?"); _ = args.append(contentsOf: [s]) }
        if let s = q.identity { parts.append("(identity_name GLOB ? OR identity_id GLOB ?)"); _ = args.append(contentsOf: [s, s]) }
        if let s = q.silenced { parts.append("silenced = ?"); _ = args.append(contentsOf: [s ? 1 : 0]) }
        if let f = q.from { parts.append("time_ns >= ?"); _ = args.append(contentsOf: [f.unixNanos]) }
        if let t = q.to { parts.append("time_ns < ?"); _ = args.append(contentsOf: [t.unixNanos]) }
        var sql = "SELECT idx FROM alerts" + (parts.isEmpty ? "" : " WHERE " + parts.joined(separator: " AND ")) + " ORDER BY idx"
        if let l = q.limit { sql += " LIMIT \(max(0, l))" }
        return try wrap { try db.read { db in try Int64.fetchAll(db, sql: sql, arguments: args).map { UInt64($0) } } }
    }

    public func entries(schema: String) throws -> [UInt64] {
        try wrap {
            try db.read { db in
                try Int64.fetchAll(db, sql: "SELECT idx FROM records WHERE schema = ? ORDER BY idx", arguments: [schema]).map { UInt64($0) }
            }
        }
    }

    public func allEventIDs() throws -> [String] {
        try wrap { try db.read { db in try String.fetchAll(db, sql: "SELECT id FROM events") } }
    }

    /// Deletes the rows below `below` from every table keyed by trail index (tables added
    /// later included), and moves the indexed size up to `below` when it is smaller.
    public func prune(below: UInt64) throws {
        try wrap {
            try db.write { db in
                let tables = try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'grdb_%'")
                for t in tables where t != "meta" {
                    let columns = try Row.fetchAll(db, sql: "SELECT name FROM pragma_table_info(?)", arguments: [t]).map { $0["name"] as String? }
                    if columns.contains("idx") {
                        try db.execute(sql: "DELETE FROM \"\(t.replacingOccurrences(of: "\"", with: "\"\""))\" WHERE idx < ?", arguments: [Int64(below)])
                    }
                }
                let size = try UInt64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'size'") ?? 0
                if size < below {
                    try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('size', ?)", arguments: [String(below)])
                }
            }
        }
    }

    public func reset() throws {
        try wrap {
            try db.write { db in
                try db.execute(sql: "DELETE FROM events; DELETE FROM alerts; DELETE FROM records; DELETE FROM meta;")
            }
        }
    }

    func wrap<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as DatabaseError {
            throw IndexError("index error: \(e.message ?? "\(e.resultCode)")")
        }
    }
}
