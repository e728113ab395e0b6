/// Splits a byte stream into JSON records, for sources whose exports are not one record per
/// line: NDJSON, a JSON array of records (a REST API page), and pretty-printed objects back
/// to back (what `jq .` and many exports write) are all accepted, in pieces of any size.
///
/// The splitter only tracks strings and brackets; each record's bytes are then parsed in
/// full (`JSONNode.parse`) by the decoder. Bounded: a record longer than `maxRecordBytes`
/// is rejected without being buffered, and nesting is counted, not recursed into.
///
/// Recovery, so that one bad record does not swallow the rest:
/// - a line break inside a string ends the record (JSON strings cannot hold one): a
///   truncated NDJSON line is rejected and the next line is read afresh;
/// - a `{` in the first column while a record is open starts a new record (the open one was
///   cut off) when the open record's first line held more than its brace (NDJSON: a record
///   never spans lines) or when no value can start there (not after `:`, nor after `[` or
///   `,` in an array). So unindented pretty printing (`json.dumps(indent=0)`), where nested
///   objects may start in column 0, still reads as one record;
/// - bytes between records that are not whitespace are rejected up to the end of their line;
///   in an array, an element that is not an object is rejected up to the next `,` or `]`.
///
/// Every item carries the line its record starts on (1-based) and its ordinal (1-based,
/// rejected ones included); rejections never quote the input.
public struct JSONRecordSplitter: Sendable {
    public enum Item {
        /// A complete record: its bytes (valid only during the call), first line, ordinal,
        /// and whether it is an element of a JSON array.
        case record(UnsafeRawBufferPointer, line: Int, index: Int, inArray: Bool)
        case rejected(DecodeRejection, index: Int, inArray: Bool)
    }

    public let maxRecordBytes: Int
    public let maxDepth: Int
    /// Whether the stream (so far) is a JSON array of records.
    public private(set) var inArray = false
    /// Lines started so far (the current line's number).
    public private(set) var line = 1
    /// Records and rejected pieces so far.
    public private(set) var count = 0

    enum Mode { case between, record, skipLine, skipElement }
    var mode = Mode.between
    var buffer: [UInt8] = []
    var depth = 0
    var deepest = 0
    var inString = false
    var escaped = false
    var oversized = false
    var recordLine = 0
    var column0 = true
    /// The open record's first line holds more than its opening brace (NDJSON style; a pretty
    /// printer breaks the line right after it).
    var firstLineHasContent = false
    /// The last byte outside strings that is not whitespace (a string's closing quote counts).
    var lastSignificant: UInt8 = 0
    /// Whether each open container (up to 512 levels) is an array.
    var arrays: [Bool] = []
    var sawArrayElement = false

    public init(maxRecordBytes: Int = 1 << 20, maxDepth: Int = 64) {
        self.maxRecordBytes = maxRecordBytes
        self.maxDepth = maxDepth
    }

    /// Feeds the next piece of the stream; `body` gets every item completed by it, in order.
    public mutating func feed(_ chunk: UnsafeRawBufferPointer, _ body: (Item) throws -> Void) rethrows {
        for c in chunk { try step(c, body) }
    }

    public mutating func feed(_ chunk: [UInt8], _ body: (Item) throws -> Void) rethrows {
        try chunk.withUnsafeBytes { try feed($0, body) }
    }

    /// The end of the stream: an open record is rejected as cut off.
    public mutating func finish(_ body: (Item) throws -> Void) rethrows {
        if mode == .record { try reject(recordLine, "record cut off by the end of the input", body) }
        mode = .between
    }

    mutating func reject(_ atLine: Int, _ reason: String, _ body: (Item) throws -> Void) rethrows {
        count += 1
        let where_ = inArray ? " (array element \(count))" : ""
        buffer.removeAll(keepingCapacity: buffer.capacity <= 1 << 20)
        try body(.rejected(DecodeRejection(line: atLine, reason: reason + where_), index: count, inArray: inArray))
    }

    mutating func startRecord(_ c: UInt8) {
        mode = .record
        buffer.removeAll(keepingCapacity: true)
        buffer.append(c)
        depth = 1; deepest = 1
        inString = false; escaped = false; oversized = false
        recordLine = line
        firstLineHasContent = false
        lastSignificant = c
        arrays.removeAll(keepingCapacity: true)
        arrays.append(c == 0x5B)
    }

    /// Whether a `{` can continue the open record here: after `:`, or after `[` or `,` in an array.
    var valueMayStart: Bool {
        lastSignificant == 0x3A || ((arrays.last ?? false) && (lastSignificant == 0x2C || lastSignificant == 0x5B))
    }

    @inline(__always) mutating func step(_ c: UInt8, _ body: (Item) throws -> Void) rethrows {
        let atColumn0 = column0
        column0 = c == 0x0A
        switch mode {
        case .skipLine:
            if c == 0x0A { line += 1; mode = .between }
        case .skipElement:
            // The rest of a non-object array element, up to the next `,` or `]`.
            if inString {
                if escaped { escaped = false } else if c == 0x5C { escaped = true } else if c == 0x22 { inString = false }
                if c == 0x0A { line += 1; inString = false }
                return
            }
            switch c {
            case 0x22: inString = true
            case 0x0A: line += 1
            case 0x2C: mode = .between
            case 0x5D: mode = .between; inArray = false
            default: break
            }
        case .between:
            switch c {
            case 0x20, 0x09, 0x0D: break
            case 0x0A: line += 1
            case 0x7B: startRecord(c)
            case 0x5B where !inArray: inArray = true
            case 0x2C where inArray: break
            case 0x5D where inArray: inArray = false
            default:
                try reject(line, inArray ? "array element is not a JSON object" : "expected a JSON object ('{') between records", body)
                mode = inArray ? .skipElement : .skipLine
                inString = c == 0x22; escaped = false
            }
        case .record:
            if !oversized {
                if buffer.count >= maxRecordBytes {
                    oversized = true
                    buffer = []
                } else {
                    buffer.append(c)
                }
            }
            if inString {
                if escaped { escaped = false }
                else if c == 0x5C { escaped = true }
                else if c == 0x22 { inString = false; lastSignificant = c }
                else if c == 0x0A {
                    try reject(recordLine, "record cut off (line break inside a string)", body)
                    line += 1
                    mode = .between
                }
                return
            }
            let space = c == 0x20 || c == 0x09 || c == 0x0D || c == 0x0A
            if !space && line == recordLine { firstLineHasContent = true }
            defer { if !space && c != 0x22 { lastSignificant = c } }
            switch c {
            case 0x22: inString = true
            case 0x7B:
                if atColumn0 && (firstLineHasContent || !valueMayStart) {
                    // A new top-level record while one is open: the open one was cut off.
                    try reject(recordLine, "record cut off (a new record starts in column 1 of line \(line))", body)
                    startRecord(c)
                    return
                }
                depth += 1; deepest = max(deepest, depth)
                if arrays.count < 512 { arrays.append(false) }
            case 0x5B:
                depth += 1; deepest = max(deepest, depth)
                if arrays.count < 512 { arrays.append(true) }
            case 0x7D, 0x5D:
                if arrays.count >= depth { arrays.removeLast() }
                depth -= 1
                if depth == 0 {
                    mode = .between
                    if oversized {
                        try reject(recordLine, "record longer than \(maxRecordBytes) bytes", body)
                    } else if deepest > maxDepth {
                        try reject(recordLine, "record nested more than \(maxDepth) levels", body)
                    } else {
                        count += 1
                        let n = count, a = inArray
                        try buffer.withUnsafeBytes { try body(.record($0, line: recordLine, index: n, inArray: a)) }
                    }
                }
            case 0x0A: line += 1
            default: break
            }
        }
    }
}
