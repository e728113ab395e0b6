/// A single-pass check that bytes are a canonical `custos.event/v1` object.
///
/// `problem(_:)` returns nil exactly when `AccessEvent.decode(_:requireCanonical: true)`
/// succeeds, but without decoding: it walks the fixed schema over the bytes and allocates
/// nothing on success (verification runs it on every trail entry). What it checks, which is
/// what re-encoding with `CanonicalWriter` and comparing bytes amounts to:
/// - no whitespace; members in the writer's (ascending byte) key order, each key from the
///   schema, so no unknown or duplicate keys; `index` is not part of a stored entry;
/// - required members: top level `action id identity outcome schema source time`;
///   `identity.kind`, `origin.ip`, `secret.path`, `source.instance` and `source.kind`
///   (`pipeline` may be `{}`);
/// - strings as the writer emits them: valid UTF-8 (no overlongs, surrogates or code points
///   above U+10FFFF), no raw byte below 0x20, and only the escapes `\" \\ \b \t \n \f \r`
///   and `\u00xx` (lower-case hex) for the other code points below U+0020;
/// - enum values verbatim (`outcome`, `identity.kind`, `pipeline.trigger`), `schema` equal
///   to `custos.event/v1`;
/// - `origin.port` an integer 0...65535 and `pipeline.attempt` 0...1000000, in shortest form;
/// - string arrays (`policies`, `scope`) non-empty (empty ones are omitted) and at most 1024
///   elements long (the decoder's limit);
/// - `time` exactly as `EventTime` prints it: `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z`, a real
///   calendar date (years 0000–9999), hour < 24, minute < 60, second < 60.
/// Errors name the member and the 1-based byte offset, never the content.
public enum CanonicalValidator {
    public static func problem(_ entry: UnsafeRawBufferPointer) -> String? {
        guard let raw = entry.baseAddress, entry.count > 0 else { return "empty entry" }
        var w = Walker(p: raw.assumingMemoryBound(to: UInt8.self), n: entry.count)
        do {
            try w.event()
            return nil
        } catch {
            return error.description
        }
    }

    public static func problem(_ entry: [UInt8]) -> String? {
        entry.withUnsafeBytes { problem($0) }
    }

    struct Failure: Error, CustomStringConvertible {
        var reason: StaticString
        var field: StaticString
        var offset: Int
        var description: String { "\(reason) in \(field) at byte \(offset + 1)" }
    }

    /// Where the index columns of a canonical event are (offsets from the entry's start, the
    /// string contents without quotes), filled while walking when `capturing`.
    struct Captures {
        var action = EventBatch.Span.null, id = EventBatch.Span.null, outcome = EventBatch.Span.null
        var identityID = EventBatch.Span.null, identityKind = EventBatch.Span.null, identityName = EventBatch.Span.null
        var originIP = EventBatch.Span.null, secretEnvironment = EventBatch.Span.null, secretPath = EventBatch.Span.null
        var sourceInstance = EventBatch.Span.null, sourceKind = EventBatch.Span.null, time = EventBatch.Span.null
        /// A captured string had an escape: its span is JSON, not the value.
        var escaped = false
    }

    /// The columns a `Captures` has.
    enum Slot {
        case none, action, id, outcome, identityID, identityKind, identityName, originIP, secretEnvironment, secretPath,
             sourceInstance, sourceKind, time
    }

    struct Walker {
        let p: UnsafePointer<UInt8>
        let n: Int
        var i = 0
        var capturing = false
        var caps = Captures()

        @inline(__always) mutating func capture(_ slot: Slot, from start: Int, escaped: Bool) {
            guard capturing else { return }
            let s = EventBatch.Span(offset: Int32(start), count: Int32(i - 1 - start))
            if escaped { caps.escaped = true }
            switch slot {
            case .none: break
            case .action: caps.action = s
            case .id: caps.id = s
            case .outcome: caps.outcome = s
            case .identityID: caps.identityID = s
            case .identityKind: caps.identityKind = s
            case .identityName: caps.identityName = s
            case .originIP: caps.originIP = s
            case .secretEnvironment: caps.secretEnvironment = s
            case .secretPath: caps.secretPath = s
            case .sourceInstance: caps.sourceInstance = s
            case .sourceKind: caps.sourceKind = s
            case .time: caps.time = s
            }
        }

        @inline(__always) func fail(_ reason: StaticString, _ field: StaticString) -> Failure {
            Failure(reason: reason, field: field, offset: i)
        }

        @inline(__always) mutating func byte(_ c: UInt8, _ reason: StaticString, _ field: StaticString) throws(Failure) {
            guard i < n, p[i] == c else { throw fail(reason, field) }
            i += 1
        }

        /// Consumes `,"k":` (`"k":` for the first member) when the next member has key `k`.
        @inline(__always) mutating func member(_ k: StaticString, _ first: inout Bool) -> Bool {
            var j = i
            if !first {
                guard j < n, p[j] == 0x2C else { return false }
                j += 1
            }
            let len = k.utf8CodeUnitCount
            guard j + len + 3 <= n, p[j] == 0x22, p[j + len + 1] == 0x22, p[j + len + 2] == 0x3A else { return false }
            guard Self.equal(p + j + 1, k.utf8Start, len) else { return false }
            i = j + len + 3
            first = false
            return true
        }

        /// `len` bytes at `a` and `b` are equal (both readable for `len` bytes).
        @inline(__always) static func equal(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ len: Int) -> Bool {
            @inline(__always) func load64(_ p: UnsafePointer<UInt8>, _ k: Int) -> UInt64 {
                UnsafeRawPointer(p + k).loadUnaligned(as: UInt64.self)
            }
            @inline(__always) func load32(_ p: UnsafePointer<UInt8>, _ k: Int) -> UInt32 {
                UnsafeRawPointer(p + k).loadUnaligned(as: UInt32.self)
            }
            if len >= 8 {
                // Two (possibly overlapping) words cover 8...16 bytes; keys and values are shorter.
                var k = 0
                while k &+ 8 < len {
                    guard load64(a, k) == load64(b, k) else { return false }
                    k &+= 8
                }
                return load64(a, len &- 8) == load64(b, len &- 8)
            }
            if len >= 4 { return load32(a, 0) == load32(b, 0) && load32(a, len &- 4) == load32(b, len &- 4) }
            for t in 0..<len where a[t] != b[t] { return false }
            return true
        }

        @inline(__always) mutating func required(_ k: StaticString, _ first: inout Bool, _ field: StaticString) throws(Failure) {
            guard member(k, &first) else { throw fail("missing or misplaced member", field) }
        }

        @inline(__always) mutating func endObject(_ field: StaticString) throws(Failure) {
            guard i < n, p[i] == 0x7D else { throw fail("unexpected member or byte", field) }
            i += 1
        }

        /// Consumes `"v"` when it is next, verbatim.
        @inline(__always) mutating func literal(_ v: StaticString) -> Bool {
            let len = v.utf8CodeUnitCount
            guard i + len + 2 <= n, p[i] == 0x22, p[i + len + 1] == 0x22 else { return false }
            guard Self.equal(p + i + 1, v.utf8Start, len) else { return false }
            i += len + 2
            return true
        }

        mutating func event() throws(Failure) {
            try byte(0x7B, "expected '{'", "event")
            var first = true
            try required("action", &first, "action"); try string("action", .action)
            try required("id", &first, "id"); try string("id", .id)
            try required("identity", &first, "identity"); try identity()
            if member("origin", &first) { try origin() }
            try required("outcome", &first, "outcome")
            let outcomeStart = i + 1
            guard literal("success") || literal("denied") || literal("error") else { throw fail("unknown value", "outcome") }
            capture(.outcome, from: outcomeStart, escaped: false)
            if member("pipeline", &first) { try pipeline() }
            if member("reason", &first) { try string("reason") }
            if member("request_id", &first) { try string("request_id") }
            try required("schema", &first, "schema")
            guard literal("custos.event/v1") else { throw fail("unknown value", "schema") }
            if member("secret", &first) { try secret() }
            try required("source", &first, "source"); try source()
            try required("time", &first, "time"); try time()
            try endObject("event")
            guard i == n else { throw fail("trailing bytes", "event") }
        }

        mutating func identity() throws(Failure) {
            try byte(0x7B, "expected an object", "identity")
            var first = true
            if member("id", &first) { try string("identity.id", .identityID) }
            try required("kind", &first, "identity.kind")
            let kindStart = i + 1
            guard literal("human") || literal("service") || literal("api_key") || literal("root")
                || literal("pipeline") || literal("unknown") else { throw fail("unknown value", "identity.kind") }
            capture(.identityKind, from: kindStart, escaped: false)
            if member("method", &first) { try string("identity.method") }
            if member("name", &first) { try string("identity.name", .identityName) }
            if member("policies", &first) { try stringArray("identity.policies") }
            try endObject("identity")
        }

        mutating func origin() throws(Failure) {
            try byte(0x7B, "expected an object", "origin")
            var first = true
            try required("ip", &first, "origin.ip"); try string("origin.ip", .originIP)
            if member("port", &first) { try port() }
            try endObject("origin")
        }

        mutating func pipeline() throws(Failure) {
            try byte(0x7B, "expected an object", "pipeline")
            var first = true
            if member("attempt", &first) { try attempt() }
            if member("environment", &first) { try string("pipeline.environment") }
            if member("id", &first) { try string("pipeline.id") }
            if member("job", &first) { try string("pipeline.job") }
            if member("name", &first) { try string("pipeline.name") }
            if member("provider", &first) { try string("pipeline.provider") }
            if member("repository", &first) { try string("pipeline.repository") }
            if member("run_id", &first) { try string("pipeline.run_id") }
            if member("runner_ip", &first) { try string("pipeline.runner_ip") }
            if member("scope", &first) { try stringArray("pipeline.scope") }
            if member("step", &first) { try string("pipeline.step") }
            if member("trigger", &first) {
                guard literal("manual") || literal("automated") else { throw fail("unknown value", "pipeline.trigger") }
            }
            if member("trigger_identity", &first) { try string("pipeline.trigger_identity") }
            try endObject("pipeline")
        }

        mutating func secret() throws(Failure) {
            try byte(0x7B, "expected an object", "secret")
            var first = true
            if member("environment", &first) { try string("secret.environment", .secretEnvironment) }
            if member("namespace", &first) { try string("secret.namespace") }
            try required("path", &first, "secret.path"); try string("secret.path", .secretPath)
            if member("store", &first) { try string("secret.store") }
            try endObject("secret")
        }

        mutating func source() throws(Failure) {
            try byte(0x7B, "expected an object", "source")
            var first = true
            try required("instance", &first, "source.instance"); try string("source.instance", .sourceInstance)
            try required("kind", &first, "source.kind"); try string("source.kind", .sourceKind)
            try endObject("source")
        }

        /// 0...65535, shortest form.
        mutating func port() throws(Failure) { try boundedInt(65_535, "origin.port", "port out of range") }
        mutating func attempt() throws(Failure) { try boundedInt(1_000_000, "pipeline.attempt", "attempt out of range") }

        /// A non-negative integer without leading zeros, at most `max`.
        mutating func boundedInt(_ max: Int, _ field: StaticString, _ range: StaticString) throws(Failure) {
            guard i < n else { throw fail("expected an integer", field) }
            let c = p[i]
            if c == 0x30 { i += 1; return }  // a digit after it fails the closing '}' or ','
            guard c >= 0x31, c <= 0x39 else { throw fail("expected an integer", field) }
            var v = Int(c) - 48
            i += 1
            while i < n, p[i] >= 0x30, p[i] <= 0x39 {
                v = v * 10 + Int(p[i]) - 48
                guard v <= max else { throw fail(range, field) }
                i += 1
            }
        }

        mutating func stringArray(_ field: StaticString) throws(Failure) {
            try byte(0x5B, "expected an array", field)
            var count = 0
            while true {
                try string(field)  // also rejects `[]`: empty arrays are omitted
                count += 1
                guard count <= 1024 else { throw fail("array too long", field) }
                guard i < n else { throw fail("unterminated array", field) }
                let c = p[i]
                i += 1
                if c == 0x2C { continue }
                if c == 0x5D { return }
                i -= 1
                throw fail("expected ',' or ']'", field)
            }
        }

        /// A string exactly as `CanonicalWriter.string` writes it.
        mutating func string(_ field: StaticString, _ slot: Slot = .none) throws(Failure) {
            guard i < n, p[i] == 0x22 else { throw fail("expected a string", field) }
            i += 1
            let start = i
            var escaped = false
            while true {
                // Skip plain bytes (printable ASCII other than `"` and `\`) eight at a time. The
                // lowest flagged byte of `special` is exactly the first byte that is not plain
                // (borrows in the zero-byte tests only spill into higher bytes).
                while i &+ 8 <= n {
                    let x = UInt64(littleEndian: UnsafeRawPointer(p + i).loadUnaligned(as: UInt64.self))
                    let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
                    let q = x ^ (ones &* 0x22), b = x ^ (ones &* 0x5C)
                    let special = (x | ((x &- ones &* 0x20) & ~x) | ((q &- ones) & ~q) | ((b &- ones) & ~b)) & highs
                    if special != 0 { i &+= special.trailingZeroBitCount &>> 3; break }
                    i &+= 8
                }
                guard i < n else { throw fail("unterminated string", field) }
                let c = p[i]
                if c >= 0x20 && c < 0x80 {
                    if c == 0x22 {
                        i += 1
                        if slot != .none { capture(slot, from: start, escaped: escaped) }
                        return
                    }
                    if c == 0x5C { escaped = true; try escape(field) } else { i += 1 }
                } else if c < 0x20 {
                    throw fail("raw control byte", field)
                } else {
                    try utf8(field)
                }
            }
        }

        /// One of `\" \\ \b \t \n \f \r`, or `\u00xx` (lower-case) for another code point below 0x20.
        @inline(__always) mutating func escape(_ field: StaticString) throws(Failure) {
            guard i + 1 < n else { throw fail("unterminated string", field) }
            switch p[i + 1] {
            case 0x22, 0x5C, 0x62, 0x74, 0x6E, 0x66, 0x72:
                i += 2
            case 0x75:
                guard i + 5 < n, p[i + 2] == 0x30, p[i + 3] == 0x30 else { throw fail("non-canonical escape", field) }
                let h = p[i + 4], l = p[i + 5]
                let lv: UInt8
                if l >= 0x30 && l <= 0x39 { lv = l - 0x30 } else if l >= 0x61 && l <= 0x66 { lv = l - 0x57 } else {
                    throw fail("non-canonical escape", field)
                }
                guard h == 0x30 || h == 0x31 else { throw fail("non-canonical escape", field) }
                let v = (h - 0x30) << 4 | lv
                guard v != 0x08, v != 0x09, v != 0x0A, v != 0x0C, v != 0x0D else { throw fail("non-canonical escape", field) }
                i += 6
            default:
                throw fail("non-canonical escape", field)
            }
        }

        /// One multi-byte UTF-8 sequence starting at `p[i]` (>= 0x80), per Unicode Table 3-7.
        @inline(__always) mutating func utf8(_ field: StaticString) throws(Failure) {
            let c = p[i]
            if c >= 0xC2 && c <= 0xDF {
                guard i + 1 < n, p[i + 1] & 0xC0 == 0x80 else { throw fail("invalid UTF-8", field) }
                i += 2
            } else if c >= 0xE0 && c <= 0xEF {
                guard i + 2 < n else { throw fail("invalid UTF-8", field) }
                let c1 = p[i + 1]
                let lo: UInt8 = c == 0xE0 ? 0xA0 : 0x80, hi: UInt8 = c == 0xED ? 0x9F : 0xBF
                guard c1 >= lo, c1 <= hi, p[i + 2] & 0xC0 == 0x80 else { throw fail("invalid UTF-8", field) }
                i += 3
            } else if c >= 0xF0 && c <= 0xF4 {
                guard i + 3 < n else { throw fail("invalid UTF-8", field) }
                let c1 = p[i + 1]
                let lo: UInt8 = c == 0xF0 ? 0x90 : 0x80, hi: UInt8 = c == 0xF4 ? 0x8F : 0xBF
                guard c1 >= lo, c1 <= hi, p[i + 2] & 0xC0 == 0x80, p[i + 3] & 0xC0 == 0x80 else {
                    throw fail("invalid UTF-8", field)
                }
                i += 4
            } else {
                throw fail("invalid UTF-8", field)
            }
        }

        /// `"YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z"`, as `EventTime` prints a time it parsed.
        mutating func time() throws(Failure) {
            // The shortest form, quotes included, is 22 bytes.
            guard i + 22 <= n, p[i] == 0x22 else { throw fail("expected a time string", "time") }
            let i0 = i
            let q = p + i + 1
            @inline(__always) func d(_ k: Int) -> Int? {
                let v = q[k] &- 0x30
                return v <= 9 ? Int(v) : nil
            }
            guard let y0 = d(0), let y1 = d(1), let y2 = d(2), let y3 = d(3), q[4] == 0x2D,
                  let m0 = d(5), let m1 = d(6), q[7] == 0x2D, let d0 = d(8), let d1 = d(9), q[10] == 0x54,
                  let h0 = d(11), let h1 = d(12), q[13] == 0x3A, let n0 = d(14), let n1 = d(15), q[16] == 0x3A,
                  let s0 = d(17), let s1 = d(18)
            else { throw fail("invalid time", "time") }
            let year = y0 * 1000 + y1 * 100 + y2 * 10 + y3
            let month = m0 * 10 + m1, day = d0 * 10 + d1
            guard month >= 1, month <= 12, day >= 1, day <= EventTime.daysIn(month: month, year: year),
                  h0 * 10 + h1 < 24, n0 * 10 + n1 < 60, s0 * 10 + s1 < 60
            else { throw fail("invalid time", "time") }
            var j = i + 20  // p[j] follows the seconds
            if p[j] == 0x2E {
                j += 1
                let start = j
                while j < n, p[j] &- 0x30 <= 9 { j += 1 }
                guard j - start >= 1, j - start <= 9 else { throw fail("invalid time", "time") }
            }
            guard j + 1 < n, p[j] == 0x5A, p[j + 1] == 0x22 else { throw fail("invalid time", "time") }
            i = j + 2
            capture(.time, from: i0 + 1, escaped: false)
        }
    }
}

extension EventBatch {
    /// Appends `line` as it is when it already is a canonical `custos.event/v1` entry (what
    /// Custos itself writes: `custos export`, `custos ci report`, a forwarder), taking the index
    /// columns from where the walk found them: no decoding, no re-encoding. Returns false and
    /// appends nothing otherwise (not canonical, an `index` member, an id outside 1...256
    /// bytes, an index column with an escape): the caller then decodes the line as any other
    /// (`AccessEvent.decode`, `append(_:)`), which gives the same entry and columns for a line
    /// this takes.
    public mutating func appendIfCanonical(_ line: UnsafeRawBufferPointer) -> Bool {
        guard let raw = line.baseAddress, line.count > 0, line.count <= AccessEvent.maxEncodedSize else { return false }
        var w = CanonicalValidator.Walker(p: raw.assumingMemoryBound(to: UInt8.self), n: line.count)
        w.capturing = true
        do { try w.event() } catch { return false }
        let c = w.caps
        guard !c.escaped, c.id.count >= 1, c.id.count <= 256,
              let time = EventTime(rfc3339UTF8: UnsafeBufferPointer(start: w.p + Int(c.time.offset), count: Int(c.time.count)))
        else { return false }
        let (hi, lo) = EventKeyWords.of(idUTF8: UnsafeRawBufferPointer(rebasing: line[Int(c.id.offset)..<Int(c.id.offset + c.id.count)]))
        let start = bytes.count
        bytes.append(contentsOf: line)
        rows.append(Row(offset: start, length: line.count, keyHi: hi, keyLo: lo, timeNanos: time.unixNanos,
                        id: c.id, action: c.action, outcome: c.outcome, sourceKind: c.sourceKind,
                        sourceInstance: c.sourceInstance, secretPath: c.secretPath, environment: c.secretEnvironment,
                        identityID: c.identityID, identityName: c.identityName, identityKind: c.identityKind,
                        originIP: c.originIP))
        return true
    }
}
