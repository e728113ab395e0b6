/// Where the decoder's results go: `DecodeOutput`s (events as `AccessEvent`s), or an
/// `EventBatch` (events as canonical JSON) plus `DecodeOutput`s for everything else.
protocol DecodeSink {
    /// A rejected or ignored line.
    mutating func output(_ o: DecodeOutput)
    /// An event of the reference path, already checked to fit the trail.
    mutating func event(_ e: AccessEvent, line: Int)
    /// An event of the fast path.
    mutating func draft(_ d: VaultAuditDecoder.Draft, _ s: VaultAuditDecoder.DraftSource, line: Int)
}

struct OutputSink: DecodeSink {
    var out: [DecodeOutput] = []
    mutating func output(_ o: DecodeOutput) { out.append(o) }
    mutating func event(_ e: AccessEvent, line: Int) { out.append(.event(e, line: line)) }
    mutating func draft(_ d: VaultAuditDecoder.Draft, _ s: VaultAuditDecoder.DraftSource, line: Int) {
        VaultAuditDecoder.checked(d.event(s), line: line, sink: &self)
    }
}

struct BatchSink: DecodeSink {
    var batch = EventBatch()
    var out: [DecodeOutput] = []
    /// Where each fast-path entry is written before it is appended to the batch (the
    /// decoder's, reused).
    var entry: [UInt8] = []
    mutating func output(_ o: DecodeOutput) { out.append(o) }
    mutating func event(_ e: AccessEvent, line: Int) { batch.append(e) }
    mutating func draft(_ d: VaultAuditDecoder.Draft, _ s: VaultAuditDecoder.DraftSource, line: Int) {
        if !batch.append(d, s, buffer: &entry) {
            out.append(.rejected(.init(line: line, reason: VaultAuditDecoder.tooLarge)))
        }
    }
}

extension StaticString {
    var string: String { withUTF8Buffer { String(decoding: $0, as: UTF8.self) } }
    var buffer: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(start: utf8Start, count: utf8CodeUnitCount) }
}

extension VaultAuditDecoder.Draft {
    /// The draft as an `AccessEvent` (what the reference path would have built).
    func event(_ s: VaultAuditDecoder.DraftSource) -> AccessEvent {
        let b = s.bytes
        let method = methodText.map(b.string) ?? methodLiteral?.string
        let identity = AccessEvent.Identity(id: b.string(identityID), name: b.string(name), kind: kind, method: method,
                                            policies: s.policies.map(b.string))
        var secret: AccessEvent.Secret?
        if hasSecret, let path {
            secret = .init(store: store.map { b.string($0) + (storeAddsSlash ? "/" : "") }, path: b.string(path),
                           environment: environment?.string, namespace: b.string(namespace))
        }
        var origin: AccessEvent.Origin?
        if let ipText { origin = .init(ip: b.string(ipText), port: port) } else if let ipString { origin = .init(ip: ipString, port: port) }
        return AccessEvent(id: EventID.hex(idHi, idLo), time: time, source: .init(kind: s.kind, instance: s.instance),
                           action: Action(action.string), outcome: outcome, reason: reason?.string, secret: secret,
                           identity: identity, origin: origin, requestID: b.string(requestID))
    }
}

/// `"source":{"instance":…,"kind":…}`, the same for every event of a decoder, encoded once.
struct SourceJSON: Sendable {
    let json: [UInt8]
    /// Where the instance and kind are in `json`, unless escaping changed them.
    let instanceAt: Int?
    let kindAt: Int?
    let instance: [UInt8]
    let kind: [UInt8]

    init(kind: String, instance: String) {
        self.instance = Array(instance.utf8)
        self.kind = Array(kind.utf8)
        var j = Array(#""source":{"instance":"#.utf8)
        var at = j.count + 1
        let escapedInstance = self.instance.withUnsafeBufferPointer { CanonicalWriter.appendString($0, to: &j) }
        instanceAt = escapedInstance ? nil : at
        j.append(contentsOf: #","kind":"#.utf8)
        at = j.count + 1
        let escapedKind = self.kind.withUnsafeBufferPointer { CanonicalWriter.appendString($0, to: &j) }
        kindAt = escapedKind ? nil : at
        j.append(0x7D)
        json = j
    }
}

extension EventBatch {
    enum Column { case id, action, outcome, sourceKind, sourceInstance, secretPath, environment, identityID, identityName, identityKind, originIP }

    /// Appends the canonical JSON of a fast-path event: `AccessEvent.encode(into:)` member by
    /// member, for the members the decoder fills. Returns false, appending nothing, when the
    /// entry would exceed `AccessEvent.maxEncodedSize`. `buffer` is working space.
    mutating func append(_ d: VaultAuditDecoder.Draft, _ s: VaultAuditDecoder.DraftSource, buffer: inout [UInt8]) -> Bool {
        let bound = d.encodedBound(s)
        if buffer.count < bound { buffer = [UInt8](repeating: 0, count: max(bound, 2 * buffer.count, 4096)) }
        var row = Row(offset: bytes.count, length: 0, keyHi: d.idHi, keyLo: d.idLo, timeNanos: d.time.unixNanos)
        var extra: [UInt8] = []
        var deferred: [(Column, Int, Int)] = []
        let length = buffer.withUnsafeMutableBufferPointer { buf -> Int in
            var w = RawWriter(p: buf.baseAddress!)
            d.write(s, &w, &row, &extra, &deferred)
            // `encodedBound` is an upper bound of what `write` can write, by construction.
            precondition(w.n <= bound && bound <= buf.count, "entry larger than its bound")
            guard w.n <= AccessEvent.maxEncodedSize else { return -1 }
            bytes.append(contentsOf: UnsafeBufferPointer(start: buf.baseAddress!, count: w.n))
            return w.n
        }
        guard length >= 0 else { return false }
        row.length = length
        if !deferred.isEmpty {
            // Raw values of columns whose JSON had escapes follow the entry.
            for (c, offset, count) in deferred { row.set(c, Span(offset: Int32(length + offset), count: Int32(count))) }
            bytes.append(contentsOf: extra)
        }
        rows.append(row)
        return true
    }
}

/// Writes into memory known to be large enough (see `Draft.encodedBound`).
struct RawWriter {
    let p: UnsafeMutablePointer<UInt8>
    var n = 0

    @inline(__always) mutating func byte(_ c: UInt8) { p[n] = c; n += 1 }

    @inline(__always) mutating func lit(_ s: StaticString) {
        (p + n).update(from: s.utf8Start, count: s.utf8CodeUnitCount)
        n += s.utf8CodeUnitCount
    }

    @inline(__always) mutating func raw(_ u: UnsafeBufferPointer<UInt8>) {
        if let b = u.baseAddress, u.count > 0 { (p + n).update(from: b, count: u.count) }
        n += u.count
    }

    /// `CanonicalWriter.appendContent`: the bytes of `u` with `"`, `\` and control
    /// characters escaped (at most six bytes out per byte in). Returns whether any was.
    mutating func content(_ u: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = u.baseAddress else { return false }
        let count = u.count
        var escaped = false
        var run = 0
        while true {
            let i = JSONScanner.plainRunEnd(base, run, count)
            raw(UnsafeBufferPointer(start: base + run, count: i - run))
            if i == count { return escaped }
            escaped = true
            let c = base[i]
            byte(0x5C)
            switch c {
            case 0x22: byte(0x22)
            case 0x5C: byte(0x5C)
            case 0x08: byte(0x62)
            case 0x09: byte(0x74)
            case 0x0A: byte(0x6E)
            case 0x0C: byte(0x66)
            case 0x0D: byte(0x72)
            default:
                let hex: StaticString = "0123456789abcdef"
                byte(0x75); byte(0x30); byte(0x30)
                byte(hex.utf8Start[Int(c >> 4)]); byte(hex.utf8Start[Int(c & 15)])
            }
            run = i + 1
        }
    }

    @inline(__always) mutating func string(_ u: UnsafeBufferPointer<UInt8>) -> Bool {
        byte(0x22)
        let escaped = content(u)
        byte(0x22)
        return escaped
    }

    mutating func hex(_ v: UInt64) {
        let digits: StaticString = "0123456789abcdef"
        let h = digits.utf8Start
        for k in 0..<16 { p[n + k] = h[Int((v >> UInt64(60 - 4 * k)) & 15)] }
        n += 16
    }

    /// A port (0...65535), shortest form.
    mutating func port(_ v: Int) {
        var div = 1
        while div * 10 <= v { div *= 10 }
        while div > 0 { byte(UInt8(48 + v / div % 10)); div /= 10 }
    }
}

extension VaultAuditDecoder.Draft {
    /// An upper bound of the bytes `write` writes: every string byte may become six, plus
    /// quotes and a key each; everything else is fixed and well under the constant.
    func encodedBound(_ s: VaultAuditDecoder.DraftSource) -> Int {
        var n = 1024 + s.json.json.count
        @inline(__always) func add(_ t: VaultAuditDecoder.Text?) { if let t { n += 6 * Int(t.count) + 32 } }
        add(identityID); add(name); add(methodText); add(path); add(store); add(namespace); add(ipText); add(requestID)
        for p in s.policies { n += 6 * Int(p.count) + 4 }
        if let ipString { n += 6 * ipString.utf8.count + 32 }
        return n
    }

    /// The canonical JSON (`AccessEvent.encode(into:)`, member by member), with the index
    /// columns' positions in `row` (escaped values raw in `extra`, listed in `deferred`).
    func write(_ s: VaultAuditDecoder.DraftSource, _ w: inout RawWriter, _ row: inout EventBatch.Row,
               _ extra: inout [UInt8], _ deferred: inout [(EventBatch.Column, Int, Int)]) {
        let b = s.bytes
        // A string read without escapes (not in the scratch buffer) has no `"`, `\` or
        // control character, and neither have the constants: their bytes are their JSON.
        @inline(__always) func string(_ u: UnsafeBufferPointer<UInt8>, plain: Bool) -> Bool {
            guard plain else { return w.string(u) }
            w.byte(0x22); w.raw(u); w.byte(0x22)
            return false
        }
        @inline(__always) func string(_ t: VaultAuditDecoder.Text) { _ = string(b.bytes(t), plain: !t.inScratch) }
        @inline(__always) func column(_ u: UnsafeBufferPointer<UInt8>, _ c: EventBatch.Column, plain: Bool) {
            let at = w.n + 1
            if string(u, plain: plain) {
                deferred.append((c, extra.count, u.count))
                extra.append(contentsOf: u)
            } else {
                row.set(c, EventBatch.Span(offset: Int32(at), count: Int32(u.count)))
            }
        }
        @inline(__always) func column(_ t: VaultAuditDecoder.Text, _ c: EventBatch.Column) {
            column(b.bytes(t), c, plain: !t.inScratch)
        }
        @inline(__always) func column(_ literal: StaticString, _ c: EventBatch.Column) {
            column(literal.buffer, c, plain: true)
        }
        w.lit(#"{"action":"#)
        column(action, .action)
        w.lit(#","id":""#)
        row.id = EventBatch.Span(offset: Int32(w.n), count: 32)
        w.hex(idHi); w.hex(idLo)
        w.lit(#"","identity":{"#)
        if let id = identityID {
            w.lit(#""id":"#); column(id, .identityID); w.byte(0x2C)
        }
        w.lit(#""kind":"#); column(kind.literal, .identityKind)
        if let m = methodText {
            w.lit(#","method":"#); string(m)
        } else if let m = methodLiteral {
            w.lit(#","method":"#); _ = string(m.buffer, plain: true)
        }
        if let n = name { w.lit(#","name":"#); column(n, .identityName) }
        if !s.policies.isEmpty {
            w.lit(#","policies":["#)
            for (i, p) in s.policies.enumerated() {
                if i > 0 { w.byte(0x2C) }
                string(p)
            }
            w.byte(0x5D)
        }
        w.byte(0x7D)
        if let ip = ipText {
            w.lit(#","origin":{"ip":"#); column(ip, .originIP)
            if let port { w.lit(#","port":"#); w.port(port) }
            w.byte(0x7D)
        } else if var ip = ipString {
            w.lit(#","origin":{"ip":"#)
            ip.withUTF8 { column($0, .originIP, plain: false) }
            if let port { w.lit(#","port":"#); w.port(port) }
            w.byte(0x7D)
        }
        w.lit(#","outcome":"#); column(outcome.literal, .outcome)
        if let r = reason { w.lit(#","reason":"#); _ = string(r.buffer, plain: true) }
        if let rid = requestID { w.lit(#","request_id":"#); string(rid) }
        w.lit(#","schema":"custos.event/v1""#)
        if hasSecret, let path {
            w.lit(#","secret":{"#)
            if let e = environment { w.lit(#""environment":"#); column(e, .environment); w.byte(0x2C) }
            if let ns = namespace { w.lit(#""namespace":"#); string(ns); w.byte(0x2C) }
            w.lit(#""path":"#); column(path, .secretPath)
            if let store {
                w.lit(#","store":""#)
                if store.inScratch { _ = w.content(b.bytes(store)) } else { w.raw(b.bytes(store)) }
                if storeAddsSlash { w.byte(0x2F) }
                w.byte(0x22)
            }
            w.byte(0x7D)
        }
        w.byte(0x2C)
        let sourceAt = w.n
        s.json.json.withUnsafeBufferPointer { w.raw($0) }
        if let at = s.json.instanceAt {
            row.sourceInstance = EventBatch.Span(offset: Int32(sourceAt + at), count: Int32(s.json.instance.count))
        } else {
            deferred.append((.sourceInstance, extra.count, s.json.instance.count))
            extra.append(contentsOf: s.json.instance)
        }
        if let at = s.json.kindAt {
            row.sourceKind = EventBatch.Span(offset: Int32(sourceAt + at), count: Int32(s.json.kind.count))
        } else {
            deferred.append((.sourceKind, extra.count, s.json.kind.count))
            extra.append(contentsOf: s.json.kind)
        }
        w.lit(#","time":""#)
        if let t = timeText {
            // Already in canonical form (`EventTime.fastUTC` read it): the same bytes.
            w.raw(b.bytes(t))
        } else {
            var tmp = [UInt8]()
            time.appendRFC3339(to: &tmp)
            tmp.withUnsafeBufferPointer { w.raw($0) }
        }
        w.lit(#""}"#)
    }
}

extension EventBatch.Row {
    mutating func set(_ c: EventBatch.Column, _ s: EventBatch.Span) {
        switch c {
        case .id: id = s
        case .action: action = s
        case .outcome: outcome = s
        case .sourceKind: sourceKind = s
        case .sourceInstance: sourceInstance = s
        case .secretPath: secretPath = s
        case .environment: environment = s
        case .identityID: identityID = s
        case .identityName: identityName = s
        case .identityKind: identityKind = s
        case .originIP: originIP = s
        }
    }
}

extension Outcome {
    var literal: StaticString {
        switch self {
        case .success: "success"
        case .denied: "denied"
        case .error: "error"
        }
    }
}

extension IdentityKind {
    var literal: StaticString {
        switch self {
        case .human: "human"
        case .service: "service"
        case .api_key: "api_key"
        case .root: "root"
        case .pipeline: "pipeline"
        case .unknown: "unknown"
        }
    }
}
