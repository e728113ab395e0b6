/// Events as the trail and the index take them, in one growing buffer: each event's
/// canonical JSON (the exact trail entry), its de-duplication key, and where in the buffer the
/// values of the index columns are. Building one costs no allocation per event, and it moves
/// between the ingest threads as a whole.
///
/// The decoder writes its events straight into a batch (`VaultAuditDecoder.decode(line:…into:…)`);
/// `append(_:)` adds an `AccessEvent` through `canonicalJSON()` for everything else.
public struct EventBatch: Sendable {
    /// Entries, each followed by the raw values of those of its columns whose JSON had escapes.
    public internal(set) var bytes: [UInt8] = []
    public internal(set) var rows: [Row] = []

    /// Where a column's value is, relative to its entry's start (`count < 0`: NULL).
    public struct Span: Sendable, Equatable {
        public var offset: Int32
        public var count: Int32
        public static let null = Span(offset: 0, count: -1)
        public var isNull: Bool { count < 0 }
    }

    /// One event: its entry, its key, and its index columns (as `SQLiteEventIndex` stores them).
    public struct Row: Sendable {
        public var offset: Int
        public var length: Int
        /// The first 128 bits of the id (the id's 32 hex digits, as two big-endian words).
        public var keyHi: UInt64
        public var keyLo: UInt64
        public var timeNanos: Int64
        public var id = Span.null
        public var action = Span.null
        public var outcome = Span.null
        public var sourceKind = Span.null
        public var sourceInstance = Span.null
        public var secretPath = Span.null
        public var environment = Span.null
        public var identityID = Span.null
        public var identityName = Span.null
        public var identityKind = Span.null
        public var originIP = Span.null
    }

    public init(capacity: Int = 0) {
        if capacity > 0 {
            rows.reserveCapacity(capacity)
            bytes.reserveCapacity(capacity * 640)
        }
    }

    public var count: Int { rows.count }
    public var isEmpty: Bool { rows.isEmpty }

    public mutating func removeAll(keepingCapacity: Bool = true) {
        bytes.removeAll(keepingCapacity: keepingCapacity)
        rows.removeAll(keepingCapacity: keepingCapacity)
    }

    /// Adds `event` (its `canonicalJSON()`; the column values are copied after it).
    public mutating func append(_ event: AccessEvent) {
        let start = bytes.count
        var w = CanonicalWriter(capacity: 0)
        swap(&w.bytes, &bytes)   // the writer appends to this buffer, without a copy
        event.encode(into: &w)
        swap(&w.bytes, &bytes)
        let length = bytes.count - start
        let (hi, lo) = EventKeyWords.of(id: event.id)
        var row = Row(offset: start, length: length, keyHi: hi, keyLo: lo, timeNanos: event.time.unixNanos)
        func column(_ value: String?) -> Span {
            guard var v = value else { return .null }
            let offset = Int32(bytes.count - start)
            v.withUTF8 { bytes.append(contentsOf: $0) }
            return Span(offset: offset, count: Int32(v.utf8.count))
        }
        row.id = column(event.id)
        row.action = column(event.action.rawValue)
        row.outcome = column(event.outcome.rawValue)
        row.sourceKind = column(event.source.kind)
        row.sourceInstance = column(event.source.instance)
        row.secretPath = column(event.secret?.path)
        row.environment = column(event.secret?.environment)
        row.identityID = column(event.identity.id)
        row.identityName = column(event.identity.name)
        row.identityKind = column(event.identity.kind.rawValue)
        row.originIP = column(event.origin?.ip)
        rows.append(row)
    }

    /// Adds every event of `other`, in order (its bytes copied; its rows shifted).
    public mutating func append(contentsOf other: EventBatch) {
        let base = bytes.count
        bytes.append(contentsOf: other.bytes)
        rows.reserveCapacity(rows.count + other.rows.count)
        for var r in other.rows {
            r.offset += base
            rows.append(r)
        }
    }

    /// The canonical JSON of event `i`.
    public func entry(_ i: Int) -> ArraySlice<UInt8> {
        let r = rows[i]
        return bytes[r.offset..<(r.offset + r.length)]
    }

    /// A column value of event `i` as a string (nil for NULL).
    public func string(_ i: Int, _ column: KeyPath<Row, Span>) -> String? {
        let r = rows[i]
        let s = r[keyPath: column]
        guard !s.isNull else { return nil }
        let a = r.offset + Int(s.offset)
        return String(decoding: bytes[a..<(a + Int(s.count))], as: UTF8.self)
    }

    /// The event id of event `i`.
    public func id(_ i: Int) -> String { string(i, \.id) ?? "" }
}

/// The 128-bit de-duplication key of an event id: its 32 hex digits as two words, or, for
/// ids of another shape, 128 bits of their SHA-256 with the top bit flipped.
public enum EventKeyWords {
    public static func of(id: String) -> (UInt64, UInt64) {
        var id = id
        return id.withUTF8 { of(idUTF8: UnsafeRawBufferPointer($0)) }
    }

    /// `of(id:)` for the id's UTF-8 bytes.
    public static func of(idUTF8 u: UnsafeRawBufferPointer) -> (UInt64, UInt64) {
        let parsed: (UInt64, UInt64)? = {
            guard u.count == 32 else { return nil }
            var words: (UInt64, UInt64) = (0, 0)
            for i in 0..<32 {
                let c = u[i]
                let v: UInt64
                switch c {
                case 48...57: v = UInt64(c - 48)
                case 97...102: v = UInt64(c - 87)
                default: return nil
                }
                if i < 16 { words.0 = words.0 << 4 | v } else { words.1 = words.1 << 4 | v }
            }
            return words
        }()
        if let parsed { return parsed }
        let h = EventID.make(instance: "custos.event-key", key: String(decoding: u, as: UTF8.self))
        var k = of(id: h)
        k.0 ^= 0x8000_0000_0000_0000
        return k
    }
}
