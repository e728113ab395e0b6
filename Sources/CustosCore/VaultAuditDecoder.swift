/// Decodes HashiCorp Vault / OpenBao audit device records (one JSON object per line) into
/// access events.
///
/// - Each access is logged twice (a `request` and a `response` line sharing `request.id`);
///   it becomes one event, built from the response line alone so that the result does not
///   depend on whether the request line was seen. A request whose response never arrives
///   becomes an `error` event ("no response logged") when `finish` is called or when more
///   than `maxPending` requests (or `maxPendingBytes` of them) are waiting.
/// - `request.data` and `response.data` are never read: with `log_raw` they hold plain
///   secret values, and integers and booleans are plain even without it.
/// - Error texts are classified (permission denied, invalid token, ...) rather than copied.
///
/// A line is read into byte ranges (no `String` per field). The common event — a secret
/// engine access whose path, error, display name, policies and role are ASCII — is then
/// built from those ranges (`Draft`) and, when decoding into an `EventBatch`, written as
/// canonical JSON straight away. Every other event goes through the `String`-based rules
/// below (`emitReference`), which define the result: the fast path computes exactly what
/// they compute for the records it takes (tests compare the two on every fixture and fuzz
/// line).
public struct VaultAuditDecoder: Sendable {
    public let sourceKind: String
    public let instance: String
    public var maxPending: Int
    public static let maxLineBytes = 1 << 20
    static let maxFieldBytes = 4096

    var pending: [RequestKey: Pending] = [:]
    /// Request lines still waiting for their response line.
    public var waitingRequests: Int { pending.count }
    var pendingOrder: [RequestKey] = []
    var pendingOrderHead = 0

    /// A request id as the key of `pending`, equal exactly when the ids are equal `String`s
    /// (canonically equivalent). Ids of up to 40 ASCII bytes without `K`, `;` or `` ` `` are held
    /// inline and compared as bytes: no other string is canonically equivalent to such an id
    /// (only U+212A, U+037E and U+1FEF decompose to ASCII, to those three characters), so the
    /// two cases never equal each other. Any other id is kept as its `String`.
    enum RequestKey: Hashable, Sendable {
        case inline(UInt64, UInt64, UInt64, UInt64, UInt64, UInt8)
        case string(String)

        init(_ b: UnsafeBufferPointer<UInt8>) {
            if b.count <= 40 {
                var w: (UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0)
                withUnsafeMutableBytes(of: &w) { $0.copyMemory(from: UnsafeRawBufferPointer(b)) }
                // Any byte >= 0x80, `K`, `;` or `` ` ``? (The zero padding is none of these.)
                @inline(__always) func has(_ x: UInt64, _ c: UInt64) -> UInt64 {
                    let y = x ^ (0x0101_0101_0101_0101 &* c)
                    return (y &- 0x0101_0101_0101_0101) & ~y
                }
                @inline(__always) func bad(_ x: UInt64) -> Bool {
                    let v = UInt64(littleEndian: x)
                    return (v | has(v, 0x4B) | has(v, 0x3B) | has(v, 0x60)) & 0x8080_8080_8080_8080 != 0
                }
                if !(bad(w.0) || bad(w.1) || bad(w.2) || bad(w.3) || bad(w.4)) {
                    self = .inline(w.0, w.1, w.2, w.3, w.4, UInt8(b.count))
                    return
                }
            }
            self = .string(String(decoding: b, as: UTF8.self))
        }
    }

    /// A request waiting for its response: only its raw bytes are kept, in `arena` (parsed
    /// fully only if the response never comes).
    struct Pending: Sendable {
        var line: Int
        var offset: Int
        var length: Int
        var input: Int
    }

    /// A number for the input being decoded (the caller's file index), kept with waiting
    /// requests so that a late rejection names the right input.
    public var input = 0

    /// Raw bytes of waiting requests, appended in one buffer (no allocation per line) and
    /// compacted when mostly dead. Holds at most `maxPending` requests.
    var arena: [UInt8] = []
    /// Bound on the bytes of waiting requests (besides `maxPending` requests).
    public static let maxPendingBytes = 64 << 20
    var liveBytes = 0

    mutating func keep(_ line: UnsafeRawBufferPointer) -> (Int, Int) {
        if arena.count > 8 << 20 && arena.count > liveBytes * 2 { compactArena() }
        let offset = arena.count
        arena.append(contentsOf: line.bindMemory(to: UInt8.self))
        liveBytes += line.count
        return (offset, line.count)
    }

    mutating func release(_ p: Pending) { liveBytes -= p.length }

    /// Moves the waiting requests to the front of the arena, in place (its capacity stays,
    /// so it does not grow again from small), in offset order so that no move overwrites a
    /// request still to be moved.
    mutating func compactArena() {
        let live = pending.sorted { $0.value.offset < $1.value.offset }
        var end = 0
        arena.withUnsafeMutableBytes { buf in
            for (rid, p) in live {
                precondition(p.offset >= end && p.offset + p.length <= buf.count, "arena out of order")
                if p.offset != end {
                    (buf.baseAddress! + end).copyMemory(from: buf.baseAddress! + p.offset, byteCount: p.length)
                    pending[rid] = Pending(line: p.line, offset: end, length: p.length, input: p.input)
                }
                end += p.length
            }
        }
        arena.removeLast(arena.count - end)
        // After a burst of waiting requests, give most of the memory back.
        if arena.capacity > 32 << 20 && arena.capacity > 4 * end {
            var smaller = [UInt8]()
            smaller.reserveCapacity(max(2 * end, 16 << 20))
            smaller.append(contentsOf: arena)
            arena = smaller
        }
    }

    /// The bytes every event id of this instance starts its hash with.
    let idPrefix: [UInt8]
    /// `"source":{…}` of every event, encoded once.
    let sourceJSON: SourceJSON
    /// Reused for every line: unescaped string values and string-array elements.
    var buffers = ParseBuffers()
    /// Reused for every event: the identity's policies.
    var policyWork: [Text] = []
    /// Working space for writing one entry (`EventBatch.append(_:_:buffer:)`).
    var entryBuffer: [UInt8] = []
    /// Test hook: every event through the `String`-based reference path.
    var referenceOnly = false

    static func parseTime(_ text: String) -> EventTime? {
        var t = text
        return t.withUTF8 { EventTime(rfc3339UTF8: $0) }
    }

    public init(sourceKind: String = "vault", instance: String = "default", maxPending: Int = 50_000) {
        self.sourceKind = sourceKind
        self.instance = instance
        self.idPrefix = EventID.prefix(instance: instance)
        self.sourceJSON = SourceJSON(kind: sourceKind, instance: instance)
        self.maxPending = max(1, maxPending)
    }

    public var pendingCount: Int { pending.count }

    // MARK: - Records as read from a line: byte ranges of the fields Custos keeps

    typealias Text = JSONScanner.Span

    /// Elements `start..<start+count` of `ParseBuffers.texts`.
    struct TextList: Sendable {
        var start = 0
        var count = 0
        var isEmpty: Bool { count == 0 }
    }

    struct RawAuth: Sendable {
        var accessor: Text?
        var displayName: Text?
        var entityID: Text?
        var policies = TextList()
        var tokenPolicies = TextList()
        var identityPolicies = TextList()
        var tokenType: Text?
        var allowed: Bool?
        /// Selected metadata keys only, used to infer the kind of identity.
        var metaRole: Text?
        var metaHints = false
        /// The CI claims of `PipelineMeta.keys` that the metadata has (by key index); nil, and
        /// no allocation, for the usual token without them.
        var metaValues: [Text?]?
        var isEmpty: Bool { accessor == nil && displayName == nil && entityID == nil && policies.isEmpty && tokenPolicies.isEmpty }
    }

    struct RawRequest: Sendable {
        var id: Text?
        var operation: Text?
        var mountType: Text?
        var mountPoint: Text?
        var path: Text?
        var namespacePath: Text?
        var remoteAddress: Text?
        var remotePort: Int?
    }

    struct RawRecord: Sendable {
        var time: Text?
        var type: Text?
        var auth = RawAuth()
        var request = RawRequest()
        var responseAuth: RawAuth?
        var responseMountType: Text?
        var error: Text?
    }

    struct ParseBuffers: Sendable {
        var scratch: [UInt8] = []
        var texts: [Text] = []
        mutating func reset() {
            scratch.removeAll(keepingCapacity: true)
            texts.removeAll(keepingCapacity: true)
        }
    }

    /// The bytes `Text`s point into while a record is turned into an event.
    struct Bytes {
        let line: UnsafeBufferPointer<UInt8>
        let scratch: UnsafeBufferPointer<UInt8>
        let texts: UnsafeBufferPointer<Text>

        @inline(__always) func bytes(_ t: Text) -> UnsafeBufferPointer<UInt8> {
            let start = Int(t.start)
            return UnsafeBufferPointer(rebasing: (t.inScratch ? scratch : line)[start..<(start + Int(t.count))])
        }
        func string(_ t: Text) -> String { String(decoding: bytes(t), as: UTF8.self) }
        func string(_ t: Text?) -> String? { t.map(string) }
        func strings(_ l: TextList) -> [String] { (l.start..<(l.start + l.count)).map { string(texts[$0]) } }
        func allASCII(_ l: TextList) -> Bool {
            for i in l.start..<(l.start + l.count) where !texts[i].isASCII { return false }
            return true
        }
        @inline(__always) func equals(_ t: Text, _ s: StaticString) -> Bool {
            guard Int(t.count) == s.utf8CodeUnitCount else { return false }
            let b = bytes(t)
            let p = s.utf8Start
            for i in 0..<b.count where b[i] != p[i] { return false }
            return true
        }
        @inline(__always) func hasPrefix(_ t: Text, _ s: StaticString) -> Bool {
            guard Int(t.count) >= s.utf8CodeUnitCount else { return false }
            let b = bytes(t)
            let p = s.utf8Start
            for i in 0..<s.utf8CodeUnitCount where b[i] != p[i] { return false }
            return true
        }
        @inline(__always) func same(_ a: Text, _ b: Text) -> Bool {
            guard a.count == b.count else { return false }
            let x = bytes(a), y = bytes(b)
            for i in 0..<x.count where x[i] != y[i] { return false }
            return true
        }
    }

    // MARK: - Decoding

    /// Decodes one line (without its newline). Blank lines are skipped silently.
    public mutating func decode(line: UnsafeRawBufferPointer, lineNumber: Int, into out: inout [DecodeOutput]) {
        var sink = OutputSink()
        swap(&sink.out, &out)
        decode(line: line, lineNumber: lineNumber, sink: &sink)
        swap(&sink.out, &out)
    }

    public mutating func decode(line: [UInt8], lineNumber: Int, into out: inout [DecodeOutput]) {
        line.withUnsafeBytes { decode(line: $0, lineNumber: lineNumber, into: &out) }
    }

    /// Decodes one line, writing its event (if any) into `batch` and anything else (rejected
    /// and ignored lines) to `out`: the same results as `decode(line:lineNumber:into:)`, with
    /// each event as the canonical JSON `AccessEvent.canonicalJSON()` would give.
    public mutating func decode(line: UnsafeRawBufferPointer, lineNumber: Int, into batch: inout EventBatch, other out: inout [DecodeOutput]) {
        var sink = BatchSink()
        swap(&sink.batch, &batch); swap(&sink.out, &out); swap(&sink.entry, &entryBuffer)
        decode(line: line, lineNumber: lineNumber, sink: &sink)
        swap(&sink.batch, &batch); swap(&sink.out, &out); swap(&sink.entry, &entryBuffer)
    }

    /// Emits every request still waiting for its response (end of input).
    public mutating func finish(into out: inout [DecodeOutput]) {
        var sink = OutputSink()
        swap(&sink.out, &out)
        finish(sink: &sink)
        swap(&sink.out, &out)
    }

    /// `finish(into:)` for batches (see `decode(line:lineNumber:into:other:)`).
    public mutating func finish(into batch: inout EventBatch, other out: inout [DecodeOutput]) {
        var sink = BatchSink()
        swap(&sink.batch, &batch); swap(&sink.out, &out); swap(&sink.entry, &entryBuffer)
        finish(sink: &sink)
        swap(&sink.batch, &batch); swap(&sink.out, &out); swap(&sink.entry, &entryBuffer)
    }

    mutating func decode<S: DecodeSink>(line: UnsafeRawBufferPointer, lineNumber: Int, sink: inout S) {
        var isBlank = true
        for b in line where !(b == 0x20 || b == 0x09 || b == 0x0D) { isBlank = false; break }
        if isBlank { return }
        guard line.count <= Self.maxLineBytes else {
            sink.output(.rejected(.init(line: lineNumber, reason: "line longer than \(Self.maxLineBytes) bytes")))
            return
        }
        // Request lines are only held until their response (which repeats everything they
        // say) arrives: read just enough of them to pair them.
        let light = Self.looksLikeRequest(line)
        buffers.reset()
        let record: RawRecord
        do throws(JSONScanner.Failure) {
            record = try Self.parse(line, light: light, &buffers)
        } catch {
            sink.output(.rejected(.init(line: lineNumber, reason: "invalid JSON: \(error.description)")))
            return
        }
        let scratch = buffers.scratch, texts = buffers.texts
        scratch.withUnsafeBufferPointer { sb in
            texts.withUnsafeBufferPointer { tb in
                let b = Bytes(line: line.bindMemory(to: UInt8.self), scratch: sb, texts: tb)
                let type = record.type
                if let type, b.equals(type, "request") {
                    // Checked here, not only when the request is emitted: a bad request line is
                    // reported at its own line even when its response arrives.
                    guard let t = record.time, EventTime(rfc3339UTF8: b.bytes(t)) != nil else {
                        sink.output(.rejected(.init(line: lineNumber, reason: record.time == nil ? "missing \"time\"" : "\"time\" is not RFC 3339")))
                        return
                    }
                    guard let ridText = record.request.id, ridText.count > 0 else {
                        // Without a request id it cannot be paired; its response line records the access.
                        sink.output(.ignored(line: lineNumber, reason: "request record without request.id (its response records the access)"))
                        return
                    }
                    let rid = RequestKey(b.bytes(ridText))
                    let (offset, length) = keep(line)
                    if let old = pending.updateValue(Pending(line: lineNumber, offset: offset, length: length, input: input), forKey: rid) {
                        release(old)
                    } else {
                        pendingOrder.append(rid)
                    }
                    while pending.count > maxPending || (liveBytes > Self.maxPendingBytes && pending.count > 1) { evictOldest(sink: &sink) }
                    compactOrder()
                } else if let type, b.equals(type, "response") {
                    if let rid = record.request.id, !pending.isEmpty, let p = pending.removeValue(forKey: RequestKey(b.bytes(rid))) { release(p) }
                    emit(record, line: lineNumber, bytes: b, raw: line, responded: true, sink: &sink)
                } else {
                    sink.output(.rejected(.init(line: lineNumber, reason: "\"type\" must be \"request\" or \"response\"")))
                }
            }
        }
    }

    mutating func finish<S: DecodeSink>(sink: inout S) {
        while !pending.isEmpty { evictOldest(sink: &sink) }
        pendingOrder.removeAll(); pendingOrderHead = 0
        arena.removeAll(); liveBytes = 0
    }

    mutating func evictOldest<S: DecodeSink>(sink: inout S) {
        while pendingOrderHead < pendingOrder.count {
            let rid = pendingOrder[pendingOrderHead]
            pendingOrderHead += 1
            if let p = pending.removeValue(forKey: rid) {
                release(p)
                let line = Array(arena[p.offset..<(p.offset + p.length)])
                line.withUnsafeBytes { raw in
                    buffers.reset()
                    let record: RawRecord
                    do throws(JSONScanner.Failure) {
                        record = try Self.parse(raw, light: false, &buffers)
                    } catch {
                        sink.output(.rejected(.init(line: p.line, reason: "invalid JSON: \(error.description)", input: p.input)))
                        return
                    }
                    let scratch = buffers.scratch, texts = buffers.texts
                    scratch.withUnsafeBufferPointer { sb in
                        texts.withUnsafeBufferPointer { tb in
                            let b = Bytes(line: raw.bindMemory(to: UInt8.self), scratch: sb, texts: tb)
                            emit(record, line: p.line, bytes: b, raw: nil, responded: false, sink: &sink)
                        }
                    }
                }
                return
            }
        }
    }

    mutating func compactOrder() {
        if pendingOrderHead > 4096 && pendingOrderHead * 2 > pendingOrder.count {
            pendingOrder.removeFirst(pendingOrderHead)
            pendingOrderHead = 0
            // Drop ids already answered.
            if pendingOrder.count > pending.count * 2 + 1024 {
                pendingOrder = pendingOrder.filter { pending[$0] != nil }
            }
        }
    }

    /// Vault writes `{"time":"…","type":"request",…`: a cheap look at the first bytes.
    static func looksLikeRequest(_ line: UnsafeRawBufferPointer) -> Bool {
        let needle: StaticString = "\"type\":\"request\""
        let n = needle.utf8CodeUnitCount
        let limit = min(line.count, 96)
        guard limit >= n, let base = line.baseAddress else { return false }
        let p = needle.utf8Start
        @inline(__always) func match(_ i: Int) -> Bool {
            var k = 0
            while k < n && line[i + k] == p[k] { k += 1 }
            return k == n
        }
        var i = 0
        // Vault starts with the time: no quote can follow before the end of its value.
        let head: StaticString = "{\"time\":\""
        if limit >= 9 + n, line[0] == 0x7B, line[1] == 0x22, line[2] == 0x74, line[3] == 0x69, line[4] == 0x6D,
           line[5] == 0x65, line[6] == 0x22, line[7] == 0x3A, line[8] == 0x22 {
            if match(8) { return true }
            i = JSONScanner.plainRunEnd(base.assumingMemoryBound(to: UInt8.self), head.utf8CodeUnitCount, limit)
        }
        while i + n <= limit {
            // Skip eight bytes at a time to the next quote (the lowest flagged byte is exact).
            if i + 8 <= limit {
                let w = base.loadUnaligned(fromByteOffset: i, as: UInt64.self).littleEndian ^ 0x2222_2222_2222_2222
                let quotes = (w &- 0x0101_0101_0101_0101) & ~w & 0x8080_8080_8080_8080
                if quotes == 0 { i += 8; continue }
                i += quotes.trailingZeroBitCount >> 3
                if i + n > limit { break }
            }
            if line[i] == 0x22 && line[i + 1] == 0x74 && match(i) { return true }
            i += 1
        }
        return false
    }

    // MARK: - Parsing

    /// Parses a record. `light` reads only what pairing needs (time, type, request.id, error)
    /// and skips the rest, still checking that the whole line is valid JSON.
    static func parse(_ line: UnsafeRawBufferPointer, light: Bool, _ b: inout ParseBuffers) throws(JSONScanner.Failure) -> RawRecord {
        var s = JSONScanner(line)
        var r = RawRecord()
        guard s.peek() == 0x7B else { throw s.fail("expected a JSON object") }
        try s.readObject { (s: inout JSONScanner, k: JSONScanner.Key) throws(JSONScanner.Failure) in
            if k.equals("time") { r.time = try text(&s, &b) }
            else if k.equals("type") { r.type = try text(&s, &b) }
            else if k.equals("auth") { if !s.isNull() { if light { try s.skipValue() } else { r.auth = try parseAuth(&s, &b) } } }
            else if k.equals("request") {
                if s.isNull() { return }
                if light {
                    try s.readObject { (s: inout JSONScanner, k: JSONScanner.Key) throws(JSONScanner.Failure) in
                        if k.equals("id") { r.request.id = try bounded(&s, &b) } else { try s.skipValue() }
                    }
                } else {
                    r.request = try parseRequest(&s, &b)
                }
            }
            else if k.equals("response") { if !s.isNull() { if light { try s.skipValue() } else { try parseResponse(&s, &b, into: &r) } } }
            else if k.equals("error") { r.error = try text(&s, &b) }
            else { try s.skipValue() }
        }
        try s.expectEnd()
        if light {
            let isRequest: Bool = r.type.map { t in
                b.scratch.withUnsafeBufferPointer { sb in
                    Bytes(line: line.bindMemory(to: UInt8.self), scratch: sb, texts: .init(start: nil, count: 0)).equals(t, "request")
                }
            } ?? false
            if !isRequest {
                b.reset()
                return try parse(line, light: false, &b)
            }
        }
        return r
    }

    /// A string or null (`readStringOrNull`).
    @inline(__always)
    static func text(_ s: inout JSONScanner, _ b: inout ParseBuffers) throws(JSONScanner.Failure) -> Text? {
        if s.isNull() { return nil }
        return try s.readStringSpan(scratch: &b.scratch)
    }

    static func bounded(_ s: inout JSONScanner, _ b: inout ParseBuffers) throws(JSONScanner.Failure) -> Text? {
        guard let v = try text(&s, &b) else { return nil }
        guard v.count <= maxFieldBytes else { throw s.fail("field longer than \(maxFieldBytes) bytes") }
        return v
    }

    /// An array of strings, null counting as empty (`readStringArray(limit: 256)`).
    static func textList(_ s: inout JSONScanner, _ b: inout ParseBuffers) throws(JSONScanner.Failure) -> TextList {
        if s.isNull() { return TextList() }
        let start = b.texts.count
        var n = 0
        try s.readArray { (s: inout JSONScanner) throws(JSONScanner.Failure) in
            guard n < 256 else { throw s.fail("array too long") }
            b.texts.append(try s.readStringSpan(scratch: &b.scratch))
            n += 1
        }
        return TextList(start: start, count: n)
    }

    static func parseAuth(_ s: inout JSONScanner, _ b: inout ParseBuffers) throws(JSONScanner.Failure) -> RawAuth {
        var a = RawAuth()
        try s.readObject { (s: inout JSONScanner, k: JSONScanner.Key) throws(JSONScanner.Failure) in
            if k.equals("accessor") { a.accessor = try bounded(&s, &b) }
            else if k.equals("display_name") { a.displayName = try bounded(&s, &b) }
            else if k.equals("entity_id") { a.entityID = try bounded(&s, &b) }
            else if k.equals("policies") { a.policies = try textList(&s, &b) }
            else if k.equals("token_policies") { a.tokenPolicies = try textList(&s, &b) }
            else if k.equals("identity_policies") { a.identityPolicies = try textList(&s, &b) }
            else if k.equals("token_type") { a.tokenType = try bounded(&s, &b) }
            else if k.equals("policy_results") {
                if s.isNull() { return }
                try s.readObject { (s: inout JSONScanner, k: JSONScanner.Key) throws(JSONScanner.Failure) in
                    if k.equals("allowed") { a.allowed = try s.readBool() } else { try s.skipValue() }
                }
            }
            else if k.equals("metadata") {
                if s.isNull() { return }
                try s.readObject { (s: inout JSONScanner, k: JSONScanner.Key) throws(JSONScanner.Failure) in
                    // (An escaped key reads as empty: it is neither a role nor a hint.)
                    if k.equals("role_name") || k.equals("role") {
                        if s.peek() == 0x22 { a.metaRole = try bounded(&s, &b) } else { try s.skipValue() }
                    } else {
                        if isPipelineHint(k) { a.metaHints = true }
                        if let i = PipelineMeta.index(k), s.peek() == 0x22 {
                            if a.metaValues == nil { a.metaValues = Array(repeating: nil, count: PipelineMeta.keys.count) }
                            a.metaValues![i] = try bounded(&s, &b)
                        } else {
                            try s.skipValue()
                        }
                    }
                }
            }
            else { try s.skipValue() }
        }
        return a
    }

    /// Whether a metadata key names a CI claim (repository, repository_owner, workflow,
    /// workflow_ref, job_workflow_ref, run_id, project_path, pipeline_id, ci_config_ref_uri,
    /// namespace_path, runner_environment). Compared as bytes: none of these has another
    /// canonically equivalent spelling, so this is what comparing `String`s gives.
    static func isPipelineHint(_ k: JSONScanner.Key) -> Bool {
        k.equals("repository") || k.equals("repository_owner") || k.equals("workflow") || k.equals("workflow_ref")
            || k.equals("job_workflow_ref") || k.equals("run_id") || k.equals("project_path") || k.equals("pipeline_id")
            || k.equals("ci_config_ref_uri") || k.equals("namespace_path") || k.equals("runner_environment")
    }

    static func parseRequest(_ s: inout JSONScanner, _ b: inout ParseBuffers) throws(JSONScanner.Failure) -> RawRequest {
        var q = RawRequest()
        try s.readObject { (s: inout JSONScanner, k: JSONScanner.Key) throws(JSONScanner.Failure) in
            if k.equals("id") { q.id = try bounded(&s, &b) }
            else if k.equals("operation") { q.operation = try bounded(&s, &b) }
            else if k.equals("mount_type") { q.mountType = try bounded(&s, &b) }
            else if k.equals("mount_point") { q.mountPoint = try bounded(&s, &b) }
            else if k.equals("path") { q.path = try bounded(&s, &b) }
            else if k.equals("remote_address") { q.remoteAddress = try bounded(&s, &b) }
            else if k.equals("remote_port") {
                if s.isNull() { return }
                let p = try s.readInt()
                guard (0...65535).contains(p) else { throw s.fail("remote_port out of range") }
                q.remotePort = Int(p)
            }
            else if k.equals("namespace") {
                if s.isNull() { return }
                try s.readObject { (s: inout JSONScanner, k: JSONScanner.Key) throws(JSONScanner.Failure) in
                    if k.equals("path") { q.namespacePath = try bounded(&s, &b) } else { try s.skipValue() }
                }
            }
            else { try s.skipValue() }   // data, headers, client_token, ...: never read
        }
        return q
    }

    static func parseResponse(_ s: inout JSONScanner, _ b: inout ParseBuffers, into r: inout RawRecord) throws(JSONScanner.Failure) {
        try s.readObject { (s: inout JSONScanner, k: JSONScanner.Key) throws(JSONScanner.Failure) in
            if k.equals("auth") { if !s.isNull() { r.responseAuth = try parseAuth(&s, &b) } }
            else if k.equals("mount_type") { r.responseMountType = try bounded(&s, &b) }
            else { try s.skipValue() }   // data, secret, wrap_info, headers: never read
        }
    }

    // MARK: - Records to events

    mutating func emit<S: DecodeSink>(_ r: RawRecord, line: Int, bytes b: Bytes, raw: UnsafeRawBufferPointer?, responded: Bool, sink: inout S) {
        guard let timeText = r.time, let time = EventTime(rfc3339UTF8: b.bytes(timeText)) else {
            sink.output(.rejected(.init(line: line, reason: r.time == nil ? "missing \"time\"" : "\"time\" is not RFC 3339")))
            return
        }
        if !referenceOnly, let d = draft(r, time: time, bytes: b, raw: raw, responded: responded) {
            let source = DraftSource(bytes: b, policies: policyWork, kind: sourceKind, instance: instance, json: sourceJSON)
            sink.draft(d, source, line: line)
            return
        }
        emitReference(record(r, b), line: line, raw: raw, responded: responded, sink: &sink)
    }

    /// The record with `String`s, for the reference path.
    func record(_ r: RawRecord, _ b: Bytes) -> Record {
        func auth(_ a: RawAuth) -> Auth {
            Auth(accessor: b.string(a.accessor), displayName: b.string(a.displayName), entityID: b.string(a.entityID),
                 policies: b.strings(a.policies), tokenPolicies: b.strings(a.tokenPolicies),
                 identityPolicies: b.strings(a.identityPolicies), tokenType: b.string(a.tokenType), allowed: a.allowed,
                 metaRole: b.string(a.metaRole), metaHints: a.metaHints,
                 meta: a.metaValues.map { $0.map { b.string($0) } } ?? [])
        }
        let q = r.request
        return Record(time: b.string(r.time), type: b.string(r.type), auth: auth(r.auth),
                      request: Request(id: b.string(q.id), operation: b.string(q.operation), mountType: b.string(q.mountType),
                                       mountPoint: b.string(q.mountPoint), path: b.string(q.path),
                                       namespacePath: b.string(q.namespacePath), remoteAddress: b.string(q.remoteAddress),
                                       remotePort: q.remotePort),
                      responseAuth: r.responseAuth.map(auth), responseMountType: b.string(r.responseMountType),
                      error: b.string(r.error))
    }

    // MARK: - The fast path

    /// An event as the fast path builds it: byte ranges of the record and constants.
    struct Draft {
        var time: EventTime
        /// The source's time text when it is exactly how `time` prints (UTC, `Z`, `T`).
        var timeText: Text?
        var idHi: UInt64
        var idLo: UInt64
        var action: StaticString
        var outcome: Outcome
        var reason: StaticString?
        var identityID: Text?
        var name: Text?
        var kind: IdentityKind
        /// A prefix of `name`, or a constant.
        var methodText: Text?
        var methodLiteral: StaticString?
        var hasSecret: Bool
        var path: Text?
        var store: Text?
        /// `store` is a path segment, to be followed by "/".
        var storeAddsSlash: Bool
        var environment: StaticString?
        var namespace: Text?
        var ipText: Text?
        var ipString: String?
        var port: Int?
        var requestID: Text?
    }

    /// What a `Draft`'s ranges point into, and the event's constants.
    struct DraftSource {
        let bytes: Bytes
        let policies: [Text]
        let kind: String
        let instance: String
        let json: SourceJSON
    }

    /// The fast path: nil when the record is not one it takes (the reference path decides).
    /// Takes secret engine accesses (a path outside `sys/` and `auth/`, a read, list, create,
    /// update, patch or delete) whose path, error, display name, policies and metadata role
    /// are ASCII. For ASCII text, the `String` operations of the reference path (canonical
    /// equivalence, grapheme clusters, lower-casing) are plain byte operations, and the
    /// constants compared with contain none of the characters (K, ;, `) that have another
    /// canonically equivalent spelling, so byte equality is `String` equality.
    mutating func draft(_ r: RawRecord, time: EventTime, bytes b: Bytes, raw: UnsafeRawBufferPointer?, responded: Bool) -> Draft? {
        // The path (never redacted here: only `auth/` and `sys/` paths are).
        let path = r.request.path
        if let path {
            guard path.isASCII else { return nil }
            let p = b.bytes(path)
            if p.count >= 4 && p[0] == 0x73 && p[1] == 0x79 && p[2] == 0x73 && p[3] == 0x2F { return nil }
            if p.count >= 5 && p[0] == 0x61 && p[1] == 0x75 && p[2] == 0x74 && p[3] == 0x68 && p[4] == 0x2F { return nil }
        }
        let action: StaticString
        if let op = r.request.operation {
            if b.equals(op, "read") { action = "read" }
            else if b.equals(op, "list") { action = "list" }
            else if b.equals(op, "create") || b.equals(op, "update") || b.equals(op, "patch") { action = "write" }
            else if b.equals(op, "delete") { action = "delete" }
            else { return nil }
        } else {
            return nil
        }
        let a = r.auth
        // Tokens with CI claims in their metadata (rare) carry a pipeline context: the reference path builds it.
        if a.metaValues != nil { return nil }
        if let n = a.displayName, !n.isASCII { return nil }
        if let m = a.metaRole, !m.isASCII { return nil }
        guard b.allASCII(a.policies), b.allASCII(a.tokenPolicies), b.allASCII(a.identityPolicies) else { return nil }

        // Outcome (`outcome(_:responded:)`).
        var outcome = Outcome.success
        var reason: StaticString? = nil
        if let e = r.error, e.count > 0 {
            guard e.isASCII else { return nil }
            (outcome, reason) = Self.classifyError(b.bytes(e), auth: a)
        } else if a.allowed == false {
            outcome = .denied; reason = "permission denied"
        } else if !responded {
            outcome = .error; reason = "no response logged"
        }

        // Identity (`identity(_:loginMountType:loginPath:)`, not a login).
        policyWork.removeAll(keepingCapacity: true)
        let chosen = a.policies.isEmpty ? a.tokenPolicies : a.policies
        for i in chosen.start..<(chosen.start + chosen.count) { policyWork.append(b.texts[i]) }
        for i in a.identityPolicies.start..<(a.identityPolicies.start + a.identityPolicies.count) {
            let p = b.texts[i]
            if !policyWork.contains(where: { b.same($0, p) }) { policyWork.append(p) }
        }
        let name = a.displayName.flatMap { $0.count == 0 ? nil : $0 }
        let identityID = a.entityID.flatMap { $0.count == 0 ? nil : $0 } ?? a.accessor.flatMap { $0.count == 0 ? nil : $0 }
        var kind = IdentityKind.unknown
        var methodText: Text? = nil
        var methodLiteral: StaticString? = nil
        if name == nil && identityID == nil && policyWork.isEmpty {
            // Unauthenticated: no identity, no method.
        } else {
            if let n = name {
                if b.equals(n, "root") {
                    methodLiteral = "token"
                } else {
                    // The first non-empty "-"-separated part, or the whole name.
                    let u = b.bytes(n)
                    var i = 0
                    while i < u.count && u[i] == 0x2D { i += 1 }
                    if i == u.count {
                        methodText = n
                    } else {
                        var j = i
                        while j < u.count && u[j] != 0x2D { j += 1 }
                        methodText = Text(start: n.start + Int32(i), count: Int32(j - i), inScratch: n.inScratch, isASCII: true)
                    }
                }
            }
            if policyWork.contains(where: { b.equals($0, "root") }) || (name.map { b.equals($0, "root") } ?? false) {
                kind = .root
            } else if let m = methodText {
                if b.equals(m, "userpass") || b.equals(m, "ldap") || b.equals(m, "oidc") || b.equals(m, "okta")
                    || b.equals(m, "radius") || b.equals(m, "github") || b.equals(m, "saml") {
                    kind = .human
                } else if b.equals(m, "approle") || b.equals(m, "kubernetes") || b.equals(m, "cert") || b.equals(m, "aws")
                    || b.equals(m, "gcp") || b.equals(m, "azure") || b.equals(m, "alicloud") || b.equals(m, "oci")
                    || b.equals(m, "cf") || b.equals(m, "kerberos") {
                    kind = .service
                } else if b.equals(m, "jwt") || b.equals(m, "github-actions") || b.equals(m, "gitlab") {
                    var pipeline = a.metaHints
                    if !pipeline, let role = a.metaRole {
                        let u = b.bytes(role)
                        pipeline = Self.containsLowercased(u, "ci") || Self.containsLowercased(u, "pipeline")
                            || Self.containsLowercased(u, "github") || Self.containsLowercased(u, "gitlab")
                    }
                    kind = pipeline ? .pipeline : .service
                } else if b.equals(m, "token") {
                    kind = .api_key
                }
            }
        }

        // Secret.
        var store: Text? = nil
        var storeAddsSlash = false
        var environment: StaticString? = nil
        var namespace: Text? = nil
        let hasSecret = (path?.count ?? 0) > 0
        if hasSecret, let path {
            if let mp = r.request.mountPoint, mp.count > 0 {
                store = mp
            } else {
                // The first non-empty "/"-separated segment, followed by "/".
                let u = b.bytes(path)
                var i = 0
                while i < u.count && u[i] == 0x2F { i += 1 }
                if i < u.count {
                    var j = i
                    while j < u.count && u[j] != 0x2F { j += 1 }
                    store = Text(start: path.start + Int32(i), count: Int32(j - i), inScratch: path.inScratch, isASCII: true)
                    storeAddsSlash = true
                }
            }
            environment = EnvironmentGuess.fromUTF8(b.bytes(path))
            namespace = r.request.namespacePath.flatMap { $0.count == 0 ? nil : $0 }
        }

        // Origin.
        var ipText: Text? = nil
        var ipString: String? = nil
        var port: Int? = nil
        if let addr = r.request.remoteAddress {
            if Self.isDottedQuad(b.bytes(addr)) {
                ipText = addr; port = r.request.remotePort
            } else if let o = Self.origin(b.string(addr), port: r.request.remotePort) {
                ipString = o.ip; port = o.port
            }
        }

        // Id.
        let words: (UInt64, UInt64)
        let rid = r.request.id.flatMap { $0.count == 0 ? nil : $0 }
        if let rid {
            words = EventID.words(prefix: idPrefix, key: UnsafeRawBufferPointer(b.bytes(rid)))
        } else if let raw {
            words = EventID.words(prefix: idPrefix, key: raw)
        } else {
            return nil
        }
        // `fastUTC` takes only `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z` with a second below 60: the
        // form `EventTime.appendRFC3339` prints, digit for digit.
        let timeText = r.time.flatMap { EventTime.fastUTC(b.bytes($0)) != nil ? $0 : nil }
        return Draft(time: time, timeText: timeText, idHi: words.0, idLo: words.1, action: action, outcome: outcome, reason: reason,
                     identityID: identityID, name: name, kind: kind, methodText: methodText, methodLiteral: methodLiteral,
                     hasSecret: hasSecret, path: path, store: store, storeAddsSlash: storeAddsSlash, environment: environment,
                     namespace: namespace, ipText: ipText, ipString: ipString, port: port, requestID: rid)
    }

    /// `outcome(_:responded:)` for a non-empty ASCII error on a path outside `auth/`.
    static func classifyError(_ e: UnsafeBufferPointer<UInt8>, auth: RawAuth) -> (Outcome, StaticString?) {
        @inline(__always) func has(_ s: StaticString) -> Bool { containsLowercased(e, s) }
        if has("permission denied") {
            // A token Vault does not know leaves only `auth: {"token_type": "default"}`.
            return auth.isEmpty ? (.denied, "invalid or missing token") : (.denied, "permission denied")
        }
        if has("invalid token") || has("bad token") { return (.denied, "invalid token") }
        if has("missing client token") { return (.denied, "missing client token") }
        if auth.allowed == false { return (.denied, "permission denied") }
        if has("unsupported path") || has("no handler for route") { return (.error, "unsupported path") }
        if has("unsupported operation") { return (.error, "unsupported operation") }
        if has("invalid request") { return (.error, "invalid request") }
        if has("rate limit") || has("quota exceeded") { return (.error, "rate limited") }
        if has("not found") || has("no value found") { return (.error, "not found") }
        if has("invalid credentials") || has("invalid username or password")
            || has("invalid role or secret id") || has("invalid secret id")
            || has("invalid role id") { return (.denied, "invalid credentials") }
        if has("internal error") { return (.error, "internal error") }
        return (.error, "error (details withheld: the source's error text is not copied)")
    }

    /// Whether ASCII `u`, lower-cased, contains `needle` (lower-case ASCII).
    static func containsLowercased(_ u: UnsafeBufferPointer<UInt8>, _ needle: StaticString) -> Bool {
        let n = needle.utf8CodeUnitCount
        guard n <= u.count else { return false }
        let p = needle.utf8Start
        @inline(__always) func lower(_ c: UInt8) -> UInt8 { c >= 0x41 && c <= 0x5A ? c | 0x20 : c }
        var i = 0
        while i + n <= u.count {
            if lower(u[i]) == p[0] {
                var k = 1
                while k < n && lower(u[i + k]) == p[k] { k += 1 }
                if k == n { return true }
            }
            i += 1
        }
        return false
    }

    // MARK: - The reference path

    struct Auth: Sendable {
        var accessor: String?
        var displayName: String?
        var entityID: String?
        var policies: [String] = []
        var tokenPolicies: [String] = []
        var identityPolicies: [String] = []
        var tokenType: String?
        var allowed: Bool?
        /// Selected metadata keys only, used to infer the kind of identity.
        var metaRole: String?
        /// Whether the metadata has a CI claim key (`isPipelineHint`).
        var metaHints = false
        /// The metadata's CI claims by `PipelineMeta.keys` index (empty: none).
        var meta: [String?] = []
        var isEmpty: Bool { accessor == nil && displayName == nil && entityID == nil && policies.isEmpty && tokenPolicies.isEmpty }
    }

    struct Request: Sendable {
        var id: String?
        var operation: String?
        var mountType: String?
        var mountPoint: String?
        var path: String?
        var namespacePath: String?
        var remoteAddress: String?
        var remotePort: Int?
    }

    struct Record: Sendable {
        var time: String?
        var type: String?
        var auth = Auth()
        var request = Request()
        var responseAuth: Auth?
        var responseMountType: String?
        var error: String?
    }

    mutating func emitReference<S: DecodeSink>(_ r: Record, line: Int, raw: UnsafeRawBufferPointer?, responded: Bool, sink: inout S) {
        guard let timeText = r.time, let time = Self.parseTime(timeText) else {
            sink.output(.rejected(.init(line: line, reason: r.time == nil ? "missing \"time\"" : "\"time\" is not RFC 3339")))
            return
        }
        let path = Self.redactCredentialInPath(r.request.path ?? "")
        let (outcome, reason) = Self.outcome(r, responded: responded)
        let classified = Self.classify(path: path, operation: r.request.operation ?? "", outcome: outcome)
        guard let action = classified.action else {
            sink.output(.ignored(line: line, reason: classified.ignoreReason ?? "not an access"))
            return
        }
        let isLogin = action == .login
        // A login's identity is the one it produced (response.auth); otherwise the caller's.
        let auth: Auth = (isLogin && r.responseAuth.map { !$0.isEmpty } == true) ? r.responseAuth! : r.auth
        let identity = Self.identity(auth, loginMountType: isLogin ? (r.request.mountType ?? r.responseMountType) : nil,
                                     loginPath: isLogin ? path : nil)

        var secret: AccessEvent.Secret?
        if !path.isEmpty {
            let store = r.request.mountPoint.flatMap { $0.isEmpty ? nil : $0 }
                ?? path.split(separator: "/", maxSplits: 1).first.map { $0 + "/" }
            let ns = r.request.namespacePath.flatMap { $0.isEmpty ? nil : $0 }
            secret = .init(store: store, path: path, environment: EnvironmentGuess.from(path: path), namespace: ns)
        }
        let origin = r.request.remoteAddress.flatMap { Self.origin($0, port: r.request.remotePort) }
        let id: String
        if let rid = r.request.id, !rid.isEmpty {
            var key = rid
            id = key.withUTF8 { EventID.make(prefix: idPrefix, key: UnsafeRawBufferPointer($0)) }
        } else if let raw {
            id = EventID.make(instance: instance, key: raw)
        } else {
            id = EventID.make(instance: instance, key: "line \(line) \(timeText)")
        }
        let event = AccessEvent(
            id: id, time: time, source: .init(kind: sourceKind, instance: instance), action: action,
            outcome: outcome, reason: reason, secret: secret, identity: identity, origin: origin,
            requestID: r.request.id.flatMap { $0.isEmpty ? nil : $0 },
            pipeline: PipelineMeta.pipeline(auth.meta, runnerIP: origin?.ip))
        Self.checked(event, line: line, sink: &sink)
    }

    /// Hands `event` on, or rejects its line when it would not fit the trail.
    static func checked<S: DecodeSink>(_ event: AccessEvent, line: Int, sink: inout S) {
        // The trail refuses larger entries (and would stop the whole ingest): reject the line.
        guard event.fitsTrailEntry else {
            sink.output(.rejected(.init(line: line, reason: Self.tooLarge)))
            return
        }
        sink.event(event, line: line)
    }

    static let tooLarge = "event would encode to more than \(AccessEvent.maxEncodedSize) bytes"

    static func outcome(_ r: Record, responded: Bool) -> (Outcome, String?) {
        if let e = r.error, !e.isEmpty {
            let lower = e.lowercased()
            if lower.contains("permission denied") {
                // A token Vault does not know leaves only `auth: {"token_type": "default"}`.
                if r.auth.isEmpty && !(r.request.path ?? "").hasPrefix("auth/") { return (.denied, "invalid or missing token") }
                return (.denied, "permission denied")
            }
            if lower.contains("invalid token") || lower.contains("bad token") { return (.denied, "invalid token") }
            if lower.contains("missing client token") { return (.denied, "missing client token") }
            if r.auth.allowed == false { return (.denied, "permission denied") }
            if lower.contains("unsupported path") || lower.contains("no handler for route") { return (.error, "unsupported path") }
            if lower.contains("unsupported operation") { return (.error, "unsupported operation") }
            if lower.contains("invalid request") { return (.error, "invalid request") }
            if lower.contains("rate limit") || lower.contains("quota exceeded") { return (.error, "rate limited") }
            if lower.contains("not found") || lower.contains("no value found") { return (.error, "not found") }
            if lower.contains("invalid credentials") || lower.contains("invalid username or password")
                || lower.contains("invalid role or secret id") || lower.contains("invalid secret id")
                || lower.contains("invalid role id") { return (.denied, "invalid credentials") }
            if lower.contains("internal error") { return (.error, "internal error") }
            return (.error, "error (details withheld: the source's error text is not copied)")
        }
        if r.auth.allowed == false { return (.denied, "permission denied") }
        if !responded { return (.error, "no response logged") }
        return (.success, nil)
    }

    /// Paths that are not secret accesses when they succeed: the UI's mount look-ups and the
    /// CLI's routine self look-ups. A denied one is kept (it may be probing).
    static let routineSelfPaths: Set<String> = [
        "auth/token/lookup-self", "sys/capabilities-self", "sys/health", "sys/seal-status",
        "sys/leader", "sys/internal/counters/activity/monthly", "sys/mounts", "sys/auth",
    ]

    /// Whether `path` starts with `sys/` or `auth/` (the only paths with special meaning).
    static func isSystemOrAuth(_ path: String) -> Bool {
        var p = path
        return p.withUTF8 { u in
            (u.count >= 4 && u[0] == 0x73 && u[1] == 0x79 && u[2] == 0x73 && u[3] == 0x2F)
                || (u.count >= 5 && u[0] == 0x61 && u[1] == 0x75 && u[2] == 0x74 && u[3] == 0x68 && u[4] == 0x2F)
        }
    }

    static func classify(path: String, operation: String, outcome: Outcome) -> (action: Action?, ignoreReason: String?) {
        if !isSystemOrAuth(path) {
            // Secret engines: the operation says it all.
            switch operation {
            case "read": return (.read, nil)
            case "list": return (.list, nil)
            case "create", "update", "patch": return (.write, nil)
            case "delete": return (.delete, nil)
            default: break
            }
        }
        if path == "sys/audit/test" { return (nil, "audit device self-test") }
        if path.hasPrefix("sys/internal/ui/") { return (nil, "UI look-up (\(path.split(separator: "/").prefix(4).joined(separator: "/")))") }
        if routineSelfPaths.contains(path) && outcome == .success
            && (operation == "read" || operation == "list" || (path == "sys/capabilities-self" && operation == "update")) {
            return (nil, "routine self look-up")
        }
        switch operation {
        case "help", "alias-lookahead", "header", "resolve-role", "rollback", "periodic", "renew":
            if operation == "renew" { break }
            return (nil, "non-access operation \(operation)")
        default: break
        }
        let write = operation == "create" || operation == "update" || operation == "patch" || operation == "delete"
        let segs = path.split(separator: "/", omittingEmptySubsequences: false)
        if segs.first == "auth", segs.count >= 3 {
            let rest = segs.dropFirst(2)
            if rest.first?.hasPrefix("login") == true || path.hasSuffix("/oidc/callback") || path.hasSuffix("/callback") {
                return (.login, nil)
            }
            if segs[1] == "token" {
                if rest.first?.hasPrefix("create") == true { return (.tokenCreate, nil) }
                if rest.first?.hasPrefix("revoke") == true { return (.tokenRevoke, nil) }
            }
            if write { return (.authChange, nil) }
        }
        if segs.first == "sys", segs.count >= 2 {
            if segs[1] == "policy" || segs[1] == "policies" {
                if write { return (.policyChange, nil) }
            } else if segs[1] == "audit" {
                if write { return (.auditChange, nil) }
            } else if segs[1] == "auth" {
                if write { return (.authChange, nil) }
            } else if write {
                return (.admin, nil)
            }
        }
        switch operation {
        case "read": return (.read, nil)
        case "list": return (.list, nil)
        case "create", "update", "patch": return (.write, nil)
        case "delete": return (.delete, nil)
        case "renew": return (Action("renew"), nil)
        case "": return (Action("unknown"), nil)
        default: return (Action(operation), nil)
        }
    }

    static let humanMethods: Set<String> = ["userpass", "ldap", "oidc", "okta", "radius", "github", "saml"]
    static let serviceMethods: Set<String> = ["approle", "kubernetes", "cert", "aws", "gcp", "azure", "alicloud", "oci", "cf", "kerberos"]

    static func identity(_ a: Auth, loginMountType: String?, loginPath: String?) -> AccessEvent.Identity {
        var policies = a.policies.isEmpty ? a.tokenPolicies : a.policies
        for p in a.identityPolicies where !policies.contains(p) { policies.append(p) }
        let name = a.displayName.flatMap { $0.isEmpty ? nil : $0 }
        let id = a.entityID.flatMap { $0.isEmpty ? nil : $0 } ?? a.accessor.flatMap { $0.isEmpty ? nil : $0 }
        if name == nil && id == nil && policies.isEmpty {
            // Unauthenticated (`auth: {"token_type": "default"}` or none) or a failed login.
            var method: String?
            if let lp = loginPath { method = loginMountType ?? lp.split(separator: "/").dropFirst().first.map(String.init) }
            return .init(id: nil, name: nil, kind: .unknown, method: method, policies: [])
        }
        // Method: the login's mount type, else the display-name prefix (Vault prefixes
        // display names with the auth mount path: userpass-alice, approle, oidc-..., token-...).
        var method = loginMountType
        if method == nil, let n = name {
            if n == "root" { method = "token" }
            else {
                let prefix = n.split(separator: "-", maxSplits: 1).first.map(String.init) ?? n
                method = prefix.isEmpty ? nil : prefix
            }
        }
        let kind: IdentityKind
        if policies.contains("root") || name == "root" {
            kind = .root
        } else if let m = method, humanMethods.contains(m) {
            kind = .human
        } else if let m = method, serviceMethods.contains(m) {
            kind = .service
        } else if method == "jwt" || method == "github-actions" || method == "gitlab" {
            let role = a.metaRole?.lowercased() ?? ""
            kind = (a.metaHints || role.contains("ci") || role.contains("pipeline") || role.contains("github") || role.contains("gitlab")) ? .pipeline : .service
        } else if method == "token" {
            // A token minted for a CI run with its claims as metadata (a CI broker, `token
            // create -metadata`) is the pipeline's; such records never take the fast path.
            kind = PipelineMeta.pipeline(a.meta, runnerIP: nil) != nil ? .pipeline : .api_key
        } else {
            kind = .unknown
        }
        return .init(id: id, name: name, kind: kind, method: method, policies: policies)
    }

    /// Token endpoints that also accept the token or accessor itself as the last path
    /// segment (`auth/token/lookup/<token>`): that segment is a credential and never kept.
    static let credentialPathPrefixes = [
        "auth/token/lookup/", "auth/token/revoke/", "auth/token/revoke-orphan/", "auth/token/renew/",
        "auth/token/lookup-accessor/", "auth/token/revoke-accessor/", "auth/token/renew-accessor/",
        "sys/wrapping/unwrap/", "sys/wrapping/lookup/", "sys/wrapping/rewrap/",
    ]

    static func redactCredentialInPath(_ path: String) -> String {
        guard path.hasPrefix("auth/token/") || path.hasPrefix("sys/wrapping/") else { return path }
        for prefix in credentialPathPrefixes where path.hasPrefix(prefix) && path.utf8.count > prefix.utf8.count {
            return prefix + "<redacted>"
        }
        return path
    }

    /// `ip`, `ip:port`, `[v6]:port` or a bare IPv6 address; nil when it is none of these.
    static func origin(_ address: String, port explicitPort: Int?) -> AccessEvent.Origin? {
        if isDottedQuad(address.utf8) { return .init(ip: address, port: explicitPort) }   // the common case, cheaply
        var host = Substring(address)
        var port: Int? = nil
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return nil }
            let after = host[host.index(after: close)...]
            host = host[host.index(after: host.startIndex)..<close]
            if after.hasPrefix(":") { port = Int(after.dropFirst()) ; if port == nil { return nil } }
            else if !after.isEmpty { return nil }
        } else if host.filter({ $0 == ":" }).count == 1, let colon = host.firstIndex(of: ":") {
            guard let p = Int(host[host.index(after: colon)...]) else { return nil }
            port = p
            host = host[..<colon]
        }
        guard !host.isEmpty, host.utf8.count <= 64, isIPAddress(host) else { return nil }
        if let p = port, !(0...65535).contains(p) { return nil }
        return .init(ip: String(host), port: explicitPort ?? port)
    }

    /// Dotted-quad IPv4, or IPv6 text (ASCII hex digits, `:`, `.`, optional `%zone`).
    /// `a.b.c.d` with each part 0...255 written in 1–3 digits.
    static func isDottedQuad(_ u: some Collection<UInt8>) -> Bool {
        guard u.count >= 7 && u.count <= 15 else { return false }
        var parts = 0, digits = 0, value = 0
        for c in u {
            if c == 0x2E {
                guard digits > 0 else { return false }
                parts += 1; digits = 0; value = 0
            } else if c >= 0x30 && c <= 0x39 {
                digits += 1; value = value * 10 + Int(c - 0x30)
                guard digits <= 3, value <= 255 else { return false }
            } else {
                return false
            }
        }
        return parts == 3 && digits > 0
    }

    static func isIPAddress(_ host: Substring) -> Bool {
        func isDigit(_ c: Character) -> Bool { c >= "0" && c <= "9" }
        if host.contains(":") {
            var addr = host
            if let pct = host.firstIndex(of: "%") {
                let zone = host[host.index(after: pct)...]
                guard !zone.isEmpty, zone.allSatisfy({ $0.isASCII && ($0.isLetter || isDigit($0) || $0 == "." || $0 == "_" || $0 == "-") }) else { return false }
                addr = host[..<pct]
            }
            return addr.allSatisfy { $0.isASCII && ($0.isHexDigit || $0 == ":" || $0 == ".") }
        }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { p in
            (1...3).contains(p.count) && p.allSatisfy(isDigit) && Int(p).map { $0 <= 255 } == true
        }
    }
}
