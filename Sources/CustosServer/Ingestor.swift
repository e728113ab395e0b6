import CustosCore
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Input formats `custos ingest` understands.
public enum IngestFormat: String, Sendable, CaseIterable {
    /// HashiCorp Vault audit device (file or socket), JSON lines.
    case vault
    /// OpenBao audit device: the same format, recorded with source kind `openbao`.
    case openbao
    /// `custos.event/v1` objects, one per line (any key order; stored in canonical form), as
    /// `POST /v1/ingest?format=custos` takes them.
    case custos
    /// GitHub organization/enterprise audit log (REST pages, streaming, JSON export): NDJSON,
    /// JSON arrays or pretty-printed objects back to back (README "Other sources").
    case github
    /// GitLab audit events (`audit_json.log`, streaming, REST API), same framing as `github`.
    case gitlab
    /// AWS CloudTrail records (Secrets Manager, SSM Parameter Store), same framing as
    /// `github`, or CloudTrail log files (`{"Records": [...]}`, gzipped or not).
    case cloudtrail
    /// Google Cloud audit log entries (Secret Manager), same framing as `github`.
    case gcp
    /// Azure Key Vault resource logs (`AuditEvent`), same framing as `github`.
    case azure
    /// Kubernetes API server audit events (log backend lines, webhook EventLists).
    case kubernetes
    /// Infisical audit logs (API rows or pages, audit log streams).
    case infisical
    /// 1Password Events API item usages and sign-in attempts (records or response pages).
    case onepassword
    /// Doppler activity log stream documents.
    case doppler

    /// The decoder-framework format behind this one (nil for vault, openbao and custos).
    public var sourceFormat: SourceFormat? { SourceFormat(rawValue: rawValue) }
}

/// One `custos.event/v1` record as an input gives it (HTTP body, file): decoded, with the
/// limits every input applies, or why it is rejected.
enum CustosRecord {
    struct Rejection: Error { var reason: String }

    static func decode(_ record: UnsafeRawBufferPointer) -> Result<AccessEvent, Rejection> {
        do {
            let e = try AccessEvent.decode(record)
            guard !e.id.isEmpty, e.id.utf8.count <= 256 else { return .failure(.init(reason: "event id must be 1...256 bytes")) }
            guard e.canonicalJSON().count <= AccessEvent.maxEncodedSize else {
                return .failure(.init(reason: "event encodes to more than \(AccessEvent.maxEncodedSize) bytes"))
            }
            return .success(e)
        } catch {
            return .failure(.init(reason: "not a custos.event/v1 object: \(error)"))
        }
    }

    /// `decode(_:)` into a batch: a record that already is a canonical entry goes in as it is
    /// (`EventBatch.appendIfCanonical`), any other is decoded and encoded. Returns why a
    /// record is rejected (nothing appended), or nil.
    static func append(_ record: UnsafeRawBufferPointer, to batch: inout EventBatch) -> Rejection? {
        if batch.appendIfCanonical(record) { return nil }
        switch decode(record) {
        case .success(let e): batch.append(e); return nil
        case .failure(let r): return r
        }
    }

    static func isBlank(_ record: UnsafeRawBufferPointer) -> Bool {
        record.allSatisfy { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }
    }
}

public struct IngestSummary: Sendable {
    public var lines = 0
    public var bytes: UInt64 = 0
    public var accepted = 0
    public var duplicates = 0
    public var ignored = 0
    public var rejected = 0
    /// The first rejections (at most `maxKeptRejections`), with file and line.
    public var rejections: [(file: String, rejection: DecodeRejection)] = []
    public static let maxKeptRejections = 100
    public var trailSize: UInt64 = 0
}

/// Reads audit logs, decodes them and appends the events to a data store in batches
/// (each batch one durable commit).
public final class Ingestor {
    /// Where events go; nil decodes only (`--check`): nothing is written.
    public let store: DataStore?
    public var decoder: VaultAuditDecoder
    public let format: IngestFormat
    public var batchSize: Int
    public private(set) var summary = IngestSummary()
    /// Events decoded since the last commit, encoded for the trail and the index.
    var pendingEvents: EventBatch
    /// Rejected and ignored lines, drained after each line.
    var outputs: [DecodeOutput] = []
    /// The files ingested so far, in order (the decoder tags waiting requests with an index here).
    var inputs: [String] = []

    let committer: BackgroundCommitter

    var checkOnly: Bool { store == nil }

    /// Runs detection on what is appended (alerts go into the trail right after the events
    /// that raised them).
    public let detector: Detector?

    public init(store: DataStore?, format: IngestFormat, instance: String, batchSize: Int = 16_384, detector: Detector? = nil) {
        self.store = store
        self.detector = store == nil ? nil : detector
        self.committer = BackgroundCommitter(store: store, detector: store == nil ? nil : detector)
        self.decoder = VaultAuditDecoder(sourceKind: format.rawValue, instance: instance)
        self.format = format
        self.batchSize = max(1, batchSize)
        self.pendingEvents = EventBatch(capacity: self.batchSize)
    }

    /// Ingests one file (or standard input for "-"). `progress` gets (bytes read, total
    /// bytes or nil) now and then.
    public func ingest(path: String, progress: ((UInt64, UInt64?) -> Void)? = nil) throws {
        inputs.append(path)
        decoder.input = inputs.count - 1
        let fd: Int32 = path == "-" ? 0 : open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw IngestError("cannot open \(path): \(String(cString: strerror(errno)))")
        }
        defer { if fd != 0 { close(fd) } }
        var st = stat()
        let total: UInt64? = (fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG) ? UInt64(st.st_size) : nil
        if let source = format.sourceFormat {
            try ingestSource(fd: fd, format: source, total: total, progress: progress)
            return
        }
        var lineNumber = 0
        var read: UInt64 = 0
        // The decoder and the batch being filled are moved into locals for the loop: every
        // access to a class's stored property costs a dynamic exclusivity check.
        var decoder = VaultAuditDecoder(sourceKind: self.decoder.sourceKind, instance: self.decoder.instance)
        swap(&decoder, &self.decoder)
        var batch = EventBatch()
        swap(&batch, &pendingEvents)
        var others: [DecodeOutput] = []
        let custos = format == .custos
        defer {
            swap(&decoder, &self.decoder)
            swap(&batch, &pendingEvents)
        }
        func onLine(_ line: UnsafeRawBufferPointer, _ tooLong: Bool) throws {
            lineNumber += 1
            if tooLong {
                record(.rejected(.init(line: lineNumber, reason: "line longer than \(VaultAuditDecoder.maxLineBytes) bytes")))
            } else if custos {
                if !CustosRecord.isBlank(line) {
                    if let r = CustosRecord.append(line, to: &batch) {
                        record(.rejected(.init(line: lineNumber, reason: r.reason)))
                    }
                }
            } else {
                decoder.decode(line: line, lineNumber: lineNumber, into: &batch, other: &others)
                if !others.isEmpty {
                    for o in others { record(o) }
                    others.removeAll(keepingCapacity: true)
                }
            }
            read += UInt64(line.count + 1)
            if batch.count >= batchSize {
                swap(&batch, &pendingEvents)
                defer { swap(&batch, &pendingEvents) }
                try commit()
                progress?(read, total)
            }
        }
        if total != nil {
            try LineReader.forEachLineReadAhead(fd: fd, maxLine: VaultAuditDecoder.maxLineBytes) { try onLine($0, $1) }
        } else {
            try LineReader.forEachLine(fd: fd, maxLine: VaultAuditDecoder.maxLineBytes) { try onLine($0, $1) }
        }
        summary.lines += lineNumber
        summary.bytes += read
        progress?(read, total)
    }

    /// A source on the decoder framework (GitHub, GitLab, …): the input is a stream of JSON
    /// records in any framing (`JSONRecordSplitter`), read in chunks; a rejection's line is
    /// where its record starts. A gzipped input (told by its magic bytes, not its name: S3
    /// downloads of CloudTrail files are `.json.gz`) and a CloudTrail log file
    /// (`{"Records": [...]}`) are read whole, up to `maxWholeInputBytes` (compressed and
    /// expanded), and decoded at once.
    func ingestSource(fd: Int32, format: SourceFormat, total: UInt64?, progress: ((UInt64, UInt64?) -> Void)?) throws {
        var stream = SourceStreamDecoder(format: format, instance: decoder.instance, maxRecordBytes: VaultAuditDecoder.maxLineBytes)
        var outputs: [DecodeOutput] = []
        var bytesRead: UInt64 = 0
        var newlines = 0
        var lastByte: UInt8 = 0x0A
        var whole: [UInt8]?
        let chunk = 1 << 20
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 16)
        defer { buf.deallocate() }
        func drain() throws {
            for o in outputs {
                if case .event(let e, _) = o { pendingEvents.append(e) } else { record(o) }
            }
            outputs.removeAll(keepingCapacity: true)
            if pendingEvents.count >= batchSize {
                try commit()
                progress?(bytesRead, total)
            }
        }
        while true {
            let n = read(fd, buf.baseAddress!, chunk)
            if n < 0 {
                if errno == EINTR { continue }
                throw IngestError("read failed: \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            let piece = UnsafeRawBufferPointer(start: buf.baseAddress!, count: n)
            if bytesRead == 0, whole == nil, Self.isGzip(piece) || (format == .cloudtrail && CloudTrailDecoder.startsLogFile(piece)) {
                whole = []
            }
            bytesRead += UInt64(n)
            if whole != nil {
                guard bytesRead <= UInt64(Self.maxWholeInputBytes) else {
                    record(.rejected(.init(line: 1, reason: "gzipped or log-file input longer than \(Self.maxWholeInputBytes) bytes (decompress or split it)")))
                    summary.bytes += bytesRead
                    return
                }
                whole!.append(contentsOf: piece)
                continue
            }
            for b in piece where b == 0x0A { newlines += 1 }
            lastByte = piece[n - 1]
            stream.feed(piece, into: &outputs)
            try drain()
        }
        if var data = whole {
            if Self.isGzip(data) {
                do throws(GzipError) {
                    data = try Gzip.decompress(data, maxOutput: Self.maxWholeInputBytes)
                } catch {
                    record(.rejected(.init(line: 1, reason: "gzip: \(error.description)")))
                    summary.bytes += bytesRead
                    return
                }
            }
            for b in data where b == 0x0A { newlines += 1 }
            lastByte = data.last ?? 0x0A
            data.withUnsafeBytes { stream.feedWhole($0, into: &outputs) }
        }
        stream.finish(into: &outputs)
        try drain()
        summary.lines += newlines + (lastByte == 0x0A ? 0 : 1)
        summary.bytes += bytesRead
        progress?(bytesRead, total)
    }

    /// The most a gzipped input or a CloudTrail log file may hold (read whole, expanded).
    static let maxWholeInputBytes = 256 << 20

    /// gzip's magic bytes (RFC 1952): `1f 8b`, method 8 (deflate).
    static func isGzip(_ b: UnsafeRawBufferPointer) -> Bool {
        b.count >= 3 && b[0] == 0x1F && b[1] == 0x8B && b[2] == 0x08
    }

    static func isGzip(_ b: [UInt8]) -> Bool {
        b.withUnsafeBytes { isGzip($0) }
    }

    func record(_ o: DecodeOutput) {
        switch o {
        case .event(let e, _): pendingEvents.append(e)   // (the decoder writes events into the batch itself)
        case .ignored: summary.ignored += 1
        case .rejected(let r):
            summary.rejected += 1
            if summary.rejections.count < IngestSummary.maxKeptRejections {
                let file = r.input.flatMap { inputs.indices.contains($0) ? inputs[$0] : nil } ?? inputs.last ?? "-"
                summary.rejections.append((file, r))
            }
        }
    }

    func drainOutputs() {
        for o in outputs { record(o) }
        outputs.removeAll(keepingCapacity: true)
    }

    /// Hands the decoded batch to the commit threads and goes on decoding the next one (at
    /// most one batch per stage in flight, so memory stays bounded by a few batches).
    func commit() throws {
        try committer.rethrow()
        guard !pendingEvents.isEmpty else { return }
        if checkOnly {
            summary.accepted += pendingEvents.count
            pendingEvents.removeAll(keepingCapacity: true)
            return
        }
        var batch = committer.emptyBatch(capacity: batchSize)
        swap(&batch, &pendingEvents)
        committer.submit(batch)
    }

    /// Flushes requests still waiting for their responses, commits what is left and waits
    /// until everything is durable.
    public func finish() throws -> IngestSummary {
        decoder.finish(into: &pendingEvents, other: &outputs)
        drainOutputs()
        try commit()
        committer.wait()
        try committer.rethrow()
        if let store, let detector { try detector.finish(store: store) }
        if !checkOnly {
            let (accepted, duplicates) = committer.totals()
            summary.accepted = accepted
            summary.duplicates = duplicates
        }
        summary.trailSize = store?.trail.size ?? 0
        return summary
    }

    /// Accepted events so far (durable; decoded, with `--check`), for progress display.
    public var acceptedSoFar: Int { checkOnly ? summary.accepted : committer.totals().0 }
}

public struct IngestError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Splits a file descriptor's bytes into lines ("\n", with a trailing "\r" kept for the
/// decoder to ignore) using a bounded buffer: a line longer than `maxLine` is reported as
/// too long and skipped without being buffered whole.
enum LineReader {
    /// `forEachLine`, with the reading (the copy out of the page cache) and the search for
    /// line ends done on a thread of their own, a few chunks ahead of `body` (which runs on
    /// the calling thread, in order). The same lines, the same `tooLong` flags. For regular
    /// files only (a read there never blocks for long: the reader is joined on return).
    static func forEachLineReadAhead(fd: Int32, maxLine: Int, chunk: Int = 4 << 20, buffers: Int = 3,
                                     _ body: (UnsafeRawBufferPointer, _ tooLong: Bool) throws -> Void) throws {
        let ahead = ReadAhead(fd: fd, maxLine: maxLine, chunk: chunk, buffers: max(2, buffers))
        let thread = Thread { ahead.run() }
        thread.name = "custos-read"
        thread.start()
        defer { ahead.stop() }
        while let c = ahead.next() {
            defer { ahead.giveBack(c.buffer) }
            for l in c.lines {
                try body(UnsafeRawBufferPointer(start: c.buffer.baseAddress! + l.offset, count: l.count), l.tooLong)
            }
            if let error = c.error { throw error }
        }
    }

    /// The reader side of `forEachLineReadAhead`: `forEachLine`'s loop, where moving the
    /// unfinished last line to the front of the buffer becomes copying it to the front of
    /// the next buffer and handing the full one over with the lines found in it.
    final class ReadAhead: @unchecked Sendable {
        struct Line { var offset: Int; var count: Int; var tooLong: Bool }
        struct Chunk { var buffer: UnsafeMutableRawBufferPointer; var lines: [Line]; var error: (any Error)? }

        let fd: Int32, maxLine: Int, chunk: Int, capacity: Int
        private let lock = NSLock()
        private var free: [UnsafeMutableRawBufferPointer] = []
        private var all: [UnsafeMutableRawBufferPointer] = []
        private var ready: [Chunk] = []
        private var cancelled = false
        private let freeCount: DispatchSemaphore
        private let readyCount = DispatchSemaphore(value: 0)
        private let done = DispatchSemaphore(value: 0)

        init(fd: Int32, maxLine: Int, chunk: Int, buffers: Int) {
            self.fd = fd; self.maxLine = maxLine; self.chunk = chunk
            capacity = max(chunk, maxLine + 1) * 2
            for _ in 0..<buffers {
                let b = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 16)
                free.append(b); all.append(b)
            }
            // Created at 0 and signalled: libdispatch traps when a semaphore is released
            // holding less than its initial value.
            freeCount = DispatchSemaphore(value: 0)
            for _ in 0..<buffers { freeCount.signal() }
        }

        deinit { for b in all { b.deallocate() } }

        /// The next chunk in order, or nil after the last.
        func next() -> Chunk? {
            readyCount.wait()
            return lock.withLock { ready.isEmpty ? nil : ready.removeFirst() }
        }

        func giveBack(_ b: UnsafeMutableRawBufferPointer) {
            lock.withLock { free.append(b) }
            freeCount.signal()
        }

        /// Stops the reader (if it is still going) and waits until it has.
        func stop() {
            lock.withLock { cancelled = true }
            // Unblock the reader if it waits for a buffer, then wait for it to finish.
            freeCount.signal()
            done.wait()
            // Buffers still queued are simply dropped (deallocated with `all`).
        }

        private func take() -> UnsafeMutableRawBufferPointer? {
            freeCount.wait()
            return lock.withLock { cancelled || free.isEmpty ? nil : free.removeLast() }
        }

        private func publish(_ c: Chunk) {
            lock.withLock { ready.append(c) }
            readyCount.signal()
        }

        func run() {
            defer {
                readyCount.signal()   // the end (next() returns nil once `ready` is empty)
                done.signal()
            }
            guard var buf = take() else { return }
            var lines: [Line] = []
            var start = 0, end = 0
            var skipping = false
            while true {
                if start > 0 && (capacity - end) < chunk {
                    // The full buffer goes to the consumer; the unfinished line moves on.
                    guard let fresh = take() else { return }
                    if end > start { fresh.baseAddress!.copyMemory(from: buf.baseAddress! + start, byteCount: end - start) }
                    publish(Chunk(buffer: buf, lines: lines, error: nil))
                    lines = []
                    buf = fresh
                    end -= start; start = 0
                }
                let n = read(fd, buf.baseAddress! + end, capacity - end)
                if n < 0 {
                    if errno == EINTR { continue }
                    publish(Chunk(buffer: buf, lines: lines, error: IngestError("read failed: \(String(cString: strerror(errno)))")))
                    return
                }
                if n == 0 { break }
                var scan = end
                end += n
                while let nl = memchr(buf.baseAddress! + scan, 0x0A, end - scan) {
                    let pos = buf.baseAddress!.distance(to: UnsafeMutableRawPointer(nl))
                    if skipping {
                        lines.append(Line(offset: pos, count: 0, tooLong: true))
                        skipping = false
                    } else {
                        lines.append(Line(offset: start, count: pos - start, tooLong: pos - start > maxLine))
                    }
                    start = pos + 1
                    scan = start
                }
                if end - start > maxLine {
                    // Drop the unfinished over-long line; report it when its newline arrives.
                    skipping = true
                    start = end
                }
            }
            if skipping {
                lines.append(Line(offset: 0, count: 0, tooLong: true))
            } else if end > start {
                lines.append(Line(offset: start, count: end - start, tooLong: end - start > maxLine))
            }
            publish(Chunk(buffer: buf, lines: lines, error: nil))
        }
    }

    static func forEachLine(fd: Int32, maxLine: Int, chunk: Int = 4 << 20,
                            _ body: (UnsafeRawBufferPointer, _ tooLong: Bool) throws -> Void) throws {
        let capacity = max(chunk, maxLine + 1) * 2
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 16)
        defer { buf.deallocate() }
        var start = 0, end = 0
        var skipping = false
        while true {
            if start > 0 && (capacity - end) < chunk {
                if end > start { memmove(buf.baseAddress!, buf.baseAddress! + start, end - start) }
                end -= start; start = 0
            }
            let n = read(fd, buf.baseAddress! + end, capacity - end)
            if n < 0 {
                if errno == EINTR { continue }
                throw IngestError("read failed: \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            var scan = end
            end += n
            while let nl = memchr(buf.baseAddress! + scan, 0x0A, end - scan) {
                let pos = buf.baseAddress!.distance(to: UnsafeMutableRawPointer(nl))
                if skipping {
                    try body(UnsafeRawBufferPointer(start: buf.baseAddress! + pos, count: 0), true)
                    skipping = false
                } else {
                    try body(UnsafeRawBufferPointer(start: buf.baseAddress! + start, count: pos - start), pos - start > maxLine)
                }
                start = pos + 1
                scan = start
            }
            if end - start > maxLine {
                // Drop the unfinished over-long line; report it when its newline arrives.
                skipping = true
                start = end
            }
        }
        if skipping {
            try body(UnsafeRawBufferPointer(start: buf.baseAddress!, count: 0), true)
        } else if end > start {
            try body(UnsafeRawBufferPointer(start: buf.baseAddress! + start, count: end - start), end - start > maxLine)
        }
    }
}

/// Makes batches durable off the decoding thread, in two stages on two threads: the trail
/// commit (which waits on the disk) and the index update, so that decoding the next batch,
/// syncing this one and indexing the previous one overlap. One batch in flight per stage keeps
/// memory bounded. After the first failure it commits nothing more and reports the error.
final class BackgroundCommitter: @unchecked Sendable {
    private let store: DataStore?
    private let detector: Detector?
    private let trailQueue = DispatchQueue(label: "custos.ingest.trail")
    private let indexQueue = DispatchQueue(label: "custos.ingest.index")
    private let trailSlot = DispatchSemaphore(value: 1)
    private let indexSlot = DispatchSemaphore(value: 1)
    private let lock = NSLock()
    private var error: (any Error)?
    private var accepted = 0
    private var duplicates = 0

    init(store: DataStore?, detector: Detector? = nil) { self.store = store; self.detector = detector }

    private var failed: Bool { lock.withLock { error != nil } }
    private func fail(_ e: any Error) { lock.withLock { if error == nil { error = e } } }

    /// The one reference to a batch between the stages, so that the last stage can reuse its
    /// memory for a later batch (no fresh pages to fault in and zero per batch).
    private final class Handoff: @unchecked Sendable {
        var staged: DataStore.Staged?
        init(_ staged: DataStore.Staged) { self.staged = staged }
    }
    private var recycled: [EventBatch] = []

    /// An empty batch, reusing the memory of one already indexed when there is one.
    func emptyBatch(capacity: Int) -> EventBatch {
        lock.withLock { recycled.popLast() } ?? EventBatch(capacity: capacity)
    }

    func submit(_ batch: EventBatch) {
        trailSlot.wait()
        trailQueue.async { [self] in
            defer { trailSlot.signal() }
            guard let store, !failed else { return }
            do {
                let staged = try store.appendToTrail(batch, detector: detector)
                let handoff = Handoff(staged)
                let result = handoff.staged!.result
                lock.withLock { accepted += result.accepted; duplicates += result.duplicates }
                indexSlot.wait()
                indexQueue.async { [self] in
                    defer { indexSlot.signal() }
                    guard !failed, let staged = handoff.staged.take() else { return }
                    do { try self.store?.index(staged) } catch { fail(error); return }
                    var done = (consume staged).batch
                    done.removeAll(keepingCapacity: true)
                    lock.withLock { if recycled.count < 2 { recycled.append(done) } }
                }
            } catch {
                fail(error)
            }
        }
    }

    /// Returns when every submitted batch is durable and indexed (or failed).
    func wait() {
        trailQueue.sync {}
        indexQueue.sync {}
    }

    func rethrow() throws {
        if let e = lock.withLock({ error }) { throw e }
    }

    func totals() -> (Int, Int) { lock.withLock { (accepted, duplicates) } }
}
