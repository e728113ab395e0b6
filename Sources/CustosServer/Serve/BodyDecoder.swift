import CustosCore
import Foundation

/// Record formats `POST /v1/ingest` accepts (`?format=`).
public enum WireFormat: String, Sendable, CaseIterable {
    /// Vault / OpenBao audit records (file or socket device), source kind `vault`.
    case vault
    /// The same records, source kind `openbao`.
    case openbao
    /// `custos.event/v1` objects (any key order; stored in canonical form).
    case custos
    /// Per record: a `schema` member means custos; a record a source decoder recognizes
    /// (GitHub, GitLab, CloudTrail, GCP, Azure, Kubernetes, Infisical, 1Password, Doppler:
    /// `SourceFormat.detect`) goes to that decoder; anything else is
    /// Vault/OpenBao (source kind `vault`).
    case auto
    /// GitHub audit log records (README "Other sources"). The body may also be
    /// pretty-printed objects back to back.
    case github
    /// GitLab audit events, framed like `github`.
    case gitlab
    /// AWS CloudTrail records (Secrets Manager, SSM Parameter Store), framed like `github`,
    /// or a CloudTrail log file (`{"Records": [...]}`).
    case cloudtrail
    /// Google Cloud audit log entries (Secret Manager), framed like `github`.
    case gcp
    /// Azure Key Vault resource logs, framed like `github`.
    case azure
    /// Kubernetes audit events (webhook EventLists too), framed like `github`.
    case kubernetes
    /// Infisical audit logs, framed like `github`.
    case infisical
    /// 1Password Events API item usages and sign-in attempts, framed like `github`.
    case onepassword
    /// Doppler activity log stream documents, framed like `github`.
    case doppler

    /// The decoder-framework format behind this one (nil for vault, openbao, custos, auto).
    public var sourceFormat: SourceFormat? { SourceFormat(rawValue: rawValue) }

    /// Formats a line-oriented listener (syslog, file tail) can take: one record per line
    /// or message, Vault pairing state per connection.
    public static let lineFormats: [WireFormat] = [.vault, .openbao, .custos, .auto]
}

/// Turns one request body into events and per-record rejections.
///
/// Bodies are NDJSON (one record per line) or a JSON array of records — what Fluent Bit's
/// `http` output (`json_lines`, `json`) and Vector's `http` sink (`ndjson`, `json`) send.
/// A record is the audit object itself, or an envelope from a log shipper whose `log`
/// (Fluent Bit tail) or `message` (Vector file source) string holds the original line.
/// Vault request lines are paired with their response within the body; a response line
/// alone is a complete event (it repeats the request), so a request whose response is not
/// in the same body is not needed and is counted in `waitingRequests`, not stored.
public struct BodyDecoder {
    public struct Result: Sendable {
        public var events: [AccessEvent] = []
        /// With `batched`, the Vault/OpenBao and custos events, already in canonical form
        /// (what `GroupCommitter.encode(events)` would give), in record order; `events` is
        /// then empty for formats vault, openbao and custos.
        public var batch = EventBatch()
        /// Events decoded, in `events` and `batch` together.
        public var eventCount: Int { events.count + batch.count }
        public var records = 0
        public var ignored = 0
        public var rejected = 0
        /// The first `maxRejections` rejections (record number, 1-based, and reason).
        public var rejections: [DecodeRejection] = []
        public var waitingRequests = 0
        /// Set when the body as a whole is unusable (e.g. an invalid JSON array).
        public var bodyError: String?

        mutating func reject(_ r: DecodeRejection) {
            rejected += 1
            if rejections.count < BodyDecoder.maxRejections { rejections.append(r) }
        }
    }
    public static let maxRejections = 100

    public var format: WireFormat
    public var instance: String
    public var maxRecordBytes: Int
    /// Formats vault, openbao and custos decode straight into `Result.batch` (canonical JSON,
    /// no `AccessEvent` values in between where the record allows: a custos record that
    /// already is canonical is taken as it is): the ingest endpoint's fast path. Off, every
    /// event is in `Result.events` (for callers that change the events before committing them).
    public var batched: Bool
    /// Applied to each event as it is decoded (an OIDC caller's token claims), before its size
    /// is checked again: an event the stamp makes larger than `AccessEvent.maxEncodedSize` is
    /// that record's rejection, never a failure of the commit it would have joined. Implies
    /// not `batched`.
    public var stamp: ((inout AccessEvent) -> Void)?

    public init(format: WireFormat, instance: String, maxRecordBytes: Int, batched: Bool = false,
                stamp: ((inout AccessEvent) -> Void)? = nil) {
        self.format = format; self.instance = instance; self.maxRecordBytes = maxRecordBytes
        self.batched = stamp == nil && batched && (format == .vault || format == .openbao || format == .custos)
        self.stamp = stamp
    }

    static let stampedTooLarge = "event would encode to more than \(AccessEvent.maxEncodedSize) bytes with the token's pipeline context"

    /// Takes one decoder output into `result`: an event (stamped, and rejected when the stamp
    /// made it too large for the trail), an ignored record, or a rejection.
    func take(_ output: DecodeOutput, into result: inout Result) {
        switch output {
        case .event(var e, let line):
            if let stamp {
                stamp(&e)
                guard e.fitsTrailEntry else { result.reject(DecodeRejection(line: line, reason: Self.stampedTooLarge)); return }
            }
            result.events.append(e)
        case .ignored: result.ignored += 1
        case .rejected(let r): result.reject(r)
        }
    }

    public func decode(_ body: [UInt8]) -> Result {
        if let source = format.sourceFormat { return decodeSource(body, decoder: source.decoder(instance: instance)) }
        var result = Result()
        var vault = VaultAuditDecoder(sourceKind: format == .openbao ? "openbao" : "vault", instance: instance)
        var outputs: [DecodeOutput] = []
        func reject(_ n: Int, _ reason: String) { result.reject(DecodeRejection(line: n, reason: reason)) }
        func handle(_ record: UnsafeRawBufferPointer, _ n: Int) {
            if CustosRecord.isBlank(record) { return }
            result.records += 1
            guard record.count <= maxRecordBytes else { reject(n, "record longer than \(maxRecordBytes) bytes"); return }
            // A canonical custos event (it has `schema`, so it is no envelope) goes in as it is.
            if batched && format == .custos && result.batch.appendIfCanonical(record) { return }
            // With format vault or openbao, a record that starts as the devices write them
            // (`{"time":"…","type":"…`) has a top-level `type`, so it is no envelope (and
            // `schema` does not matter): no need to scan it twice. (`auto` scans: a `schema`
            // member there makes it a custos event.)
            let explicit = format == .vault || format == .openbao
            let shape = explicit && Self.isAuditDeviceRecord(record) ? Shape() : Self.shape(record)
            if let inner = shape.envelope {
                // The shipper's string holds the original line: unescape it and decode that.
                inner.withUnsafeBytes { decodeRecord($0, n, hasSchema: Self.shape($0).hasSchema) }
            } else {
                decodeRecord(record, n, hasSchema: shape.hasSchema)
            }
        }
        func decodeRecord(_ record: UnsafeRawBufferPointer, _ n: Int, hasSchema: Bool) {
            let custos = format == .custos || (format == .auto && hasSchema)
            if custos {
                switch CustosRecord.decode(record) {
                case .success(let e): if batched { result.batch.append(e) } else { take(.event(e, line: n), into: &result) }
                case .failure(let r): reject(n, r.reason)
                }
                return
            }
            if format == .auto, !Self.isAuditDeviceRecord(record), let value = try? JSONNode.parse(record),
               let source = SourceFormat.detect(value) {
                // A GitHub, GitLab, CloudTrail or GCP record (Vault's audit devices start every record with
                // `{"time":…,"type":`, so theirs never get here).
                SourceStreamDecoder.decodeValue(value, line: n, decoder: source.decoder(instance: instance), into: &outputs)
            } else if batched {
                vault.decode(line: record, lineNumber: n, into: &result.batch, other: &outputs)
            } else {
                vault.decode(line: record, lineNumber: n, into: &outputs)
            }
            for o in outputs { take(o, into: &result) }
            outputs.removeAll(keepingCapacity: true)
        }

        body.withUnsafeBytes { raw in
            var first = 0
            while first < raw.count, raw[first] == 0x20 || raw[first] == 0x0A || raw[first] == 0x0D || raw[first] == 0x09 { first += 1 }
            if first < raw.count, raw[first] == UInt8(ascii: "[") {
                // A JSON array of records: find each element's bytes, then decode them one by one.
                var s = JSONScanner(raw)
                var ranges: [Range<Int>] = []
                do throws(JSONScanner.Failure) {
                    try s.readArray { (s: inout JSONScanner) throws(JSONScanner.Failure) in
                        s.skipWhitespace()
                        let start = s.pos
                        try s.skipValue()
                        ranges.append(start..<s.pos)
                    }
                    try s.expectEnd()
                } catch {
                    result.bodyError = "the body starts with '[' but is not a JSON array: \(error.description)"
                    return
                }
                for (i, r) in ranges.enumerated() { handle(UnsafeRawBufferPointer(rebasing: raw[r]), i + 1) }
            } else {
                var n = 0
                var start = 0
                while start <= raw.count {
                    var end = raw.count
                    if start < raw.count, let base = raw.baseAddress, let nl = memchr(base + start, 0x0A, raw.count - start) {
                        end = base.distance(to: UnsafeRawPointer(nl))
                    }
                    n += 1
                    if end > start { handle(UnsafeRawBufferPointer(rebasing: raw[start..<end]), n) }
                    start = end + 1
                }
            }
        }
        result.waitingRequests = vault.waitingRequests
        return result
    }

    /// A body of a decoder-framework source: NDJSON, a JSON array, or pretty-printed objects
    /// back to back (`JSONRecordSplitter`). Rejections are numbered by array element in an
    /// array, else by the line the record starts on.
    func decodeSource(_ body: [UInt8], decoder: any SourceRecordDecoder) -> Result {
        var result = Result()
        var splitter = JSONRecordSplitter(maxRecordBytes: maxRecordBytes)
        var outputs: [DecodeOutput] = []
        func handle(_ item: JSONRecordSplitter.Item) {
            result.records += 1
            switch item {
            case .rejected(let r, let index, let inArray):
                outputs.append(.rejected(.init(line: inArray ? index : r.line, reason: r.reason)))
            case .record(let bytes, let line, let index, let inArray):
                var mine: [DecodeOutput] = []
                SourceStreamDecoder.decodeRecord(bytes, line: inArray ? index : line, decoder: decoder, into: &mine)
                outputs.append(contentsOf: mine)
            }
            for o in outputs { take(o, into: &result) }
            outputs.removeAll(keepingCapacity: true)
        }
        body.withUnsafeBytes { raw in
            // A CloudTrail log file: its records, one by one (numbered by element).
            if decoder is CloudTrailDecoder, let r = CloudTrailDecoder.logFileArray(raw) {
                splitter.feed(UnsafeRawBufferPointer(rebasing: raw[r])) { handle($0) }
            } else {
                splitter.feed(raw) { handle($0) }
            }
        }
        splitter.finish { handle($0) }
        return result
    }

    struct Shape {
        var hasSchema = false
        var envelope: [UInt8]?
    }

    /// True when `record` starts as the Vault/OpenBao audit devices write every record:
    /// `{"time":"<no quote or backslash>","type":"` (whitespace allowed before the brace).
    static func isAuditDeviceRecord(_ record: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        while i < record.count, record[i] == 0x20 || record[i] == 0x09 || record[i] == 0x0D { i += 1 }
        func expect(_ s: StaticString) -> Bool {
            let n = s.utf8CodeUnitCount
            guard i + n <= record.count else { return false }
            for k in 0..<n where record[i + k] != s.utf8Start[k] { return false }
            i += n
            return true
        }
        guard expect("{\"time\":\"") else { return false }
        while i < record.count, record[i] != 0x22 {
            if record[i] == 0x5C { return false }
            i += 1
        }
        return expect("\",\"type\":\"")
    }

    /// Which top-level members a record has: `schema` (a custos event), or no `type`/`schema`
    /// but a `log` or `message` string (a shipper's envelope around the original line).
    static func shape(_ record: UnsafeRawBufferPointer) -> Shape {
        var s = JSONScanner(record)
        var shape = Shape()
        var hasType = false
        var wrapped: String?
        do throws(JSONScanner.Failure) {
            try s.readObject { (s: inout JSONScanner, k: JSONScanner.Key) throws(JSONScanner.Failure) in
                if k.equals("schema") { shape.hasSchema = true; try s.skipValue() }
                else if k.equals("type") { hasType = true; try s.skipValue() }
                else if (k.equals("log") || k.equals("message")) && wrapped == nil && s.peek() == 0x22 { wrapped = try s.readString() }
                else { try s.skipValue() }
            }
        } catch {
            return shape   // the decoder reports what is wrong with it
        }
        if !shape.hasSchema && !hasType, let w = wrapped {
            var bytes = Array(w.utf8)
            while let last = bytes.last, last == 0x0A || last == 0x0D { bytes.removeLast() }
            shape.envelope = bytes
        }
        return shape
    }
}
