import CustosCore
import Foundation
import Logging
import NIOPosix
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Follows files written by the Vault/OpenBao `file` audit device (or any file of
/// newline-delimited records), config `file_tail:`.
///
/// Each path is polled (`poll_interval_ms`). Only complete lines are read: a last line
/// without its newline waits for it. What one poll reads (at most 4 MiB and
/// `limits.max_batch` events) is committed through the same group committer as every other
/// input, and only once those events are durable is the file's offset written to
/// `<data>/tail/<hash of the path>.json` (temporary file, fsync, rename, fsync of the
/// directory). After a crash between the two, the lines since the last offset are read
/// again and their events are recognised as duplicates (same id), so nothing is lost and
/// nothing is stored twice.
///
/// The offset is that of the first line not yet read whole. A request line whose response
/// line is still to come is not needed (the response repeats it, and alone makes the
/// event), so it does not hold the offset back: the file device's own `sys/audit/test`
/// record, for one, never gets a response.
///
/// - Rotation by rename (`create` in logrotate, or moving the file and sending OpenBao
///   SIGHUP): when the path names another file (device and inode), the old file is read to
///   its end first (it stays open; a line the writer completes shortly after the rename is
///   still read), then the new one from its start. A restart while the old file was still
///   being read finds it again in the same directory by its device and inode.
/// - Truncation (`copytruncate`): when the file is shorter than what was read, or its first
///   bytes changed, it is read again from the start.
/// - On start, the saved offset is used when the file at the path is the same one (device,
///   inode, and a hash of its first bytes up to 256); otherwise the file is read from the
///   start.
/// - Lines longer than `limits.max_line_bytes` are rejected (counted, logged with their
///   byte offset) and skipped without being buffered whole.
public struct FileTailer: Service {
    /// One followed file (config `file_tail:`).
    public struct Source: Sendable, Equatable {
        public var path: String
        public var format = WireFormat.openbao
        /// The same instance name as the socket listener of the same OpenBao: event ids are
        /// derived from the instance and the request id, so the two copies are one event.
        public var instance = "default"
        public var pollIntervalMs = 250
        public init(path: String) { self.path = path }
    }

    let state: ServeState
    let sources: [Source]
    let offsetsDirectory: String
    let logger: Logger
    /// Test hook: runs after a poll's events are durable and before its offset is written
    /// (with the path); an error it throws stops the tailer as a crash at that point would.
    let afterCommit: (@Sendable (String) throws -> Void)?

    public init(state: ServeState, sources: [Source], offsetsDirectory: String? = nil, logger: Logger,
                afterCommit: (@Sendable (String) throws -> Void)? = nil) {
        self.state = state
        self.sources = sources
        self.offsetsDirectory = offsetsDirectory ?? Self.defaultOffsetsDirectory(data: state.config.data)
        self.logger = logger
        self.afterCommit = afterCommit
        for s in sources { state.metrics.fileTail.register(s.path) }
    }

    public static func defaultOffsetsDirectory(data: String) -> String { data + "/tail" }

    /// Where the offset of `path` is kept.
    public static func offsetsFile(directory: String, path: String) -> String {
        directory + "/" + EventID.make(instance: "custos.file-tail", key: path) + ".json"
    }

    public func run() async throws {
        try FileManager.default.createDirectory(atPath: offsetsDirectory, withIntermediateDirectories: true)
        for s in sources {
            logger.info("file tail: following \(s.path) (format \(s.format.rawValue), instance \(s.instance))")
        }
        try await withThrowingDiscardingTaskGroup { group in
            for s in sources {
                group.addTask {
                    let f = TailFollower(source: s, tailer: self)
                    try await f.run()
                }
            }
        }
    }
}

/// What the offsets file of one path says: which file (device, inode, first bytes) and
/// how far into it every event is durable.
struct TailOffset: Codable, Equatable, Sendable {
    var path: String
    var device: UInt64
    var inode: UInt64
    var offset: Int64
    /// SHA-256 (first 128 bits, hex) of the file's first `headLength` bytes.
    var headLength: Int
    var headHash: String

    enum CodingKeys: String, CodingKey {
        case path, device, inode, offset
        case headLength = "head_length", headHash = "head_sha256_128"
    }

    static func hash(_ bytes: [UInt8]) -> String {
        bytes.withUnsafeBytes { EventID.make(prefix: Array("custos.file-tail.head\u{0}".utf8), key: $0) }
    }

    static func load(_ file: String) -> TailOffset? {
        guard let data = FileManager.default.contents(atPath: file), data.count <= 65_536 else { return nil }
        return try? JSONDecoder().decode(TailOffset.self, from: data)
    }

    /// Temporary file, fsync, rename over the old one, fsync of the directory.
    func write(to file: String) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        var bytes = Array(try enc.encode(self))
        bytes.append(0x0A)
        let tmp = file + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw TailError("cannot create \(tmp): \(String(cString: strerror(errno)))") }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { sysWrite(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { let e = errno; close(fd); throw TailError("cannot write \(tmp): \(String(cString: strerror(e)))") }
            done += n
        }
        guard fsync(fd) == 0 else { let e = errno; close(fd); throw TailError("cannot sync \(tmp): \(String(cString: strerror(e)))") }
        close(fd)
        guard rename(tmp, file) == 0 else { throw TailError("cannot rename \(tmp): \(String(cString: strerror(errno)))") }
        let dir = (file as NSString).deletingLastPathComponent
        let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_CLOEXEC)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
    }
}

struct TailError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// A failure of the test hook (a simulated crash): not retried.
struct TailHookFailure: Error { var underlying: any Error }

/// Follows one path; lives in one task.
final class TailFollower {
    /// An open file and how far it has been read.
    final class Handle {
        let fd: Int32
        let device: UInt64
        let inode: UInt64
        /// The name it was opened by (the followed path, or a rotated file found at start).
        let name: String
        /// Changes with every file and truncation; the decoder's `input` while reading it.
        var generation: Int
        /// The next byte to read.
        var readPos: Int64 = 0
        /// The start of the first line not yet complete (everything before it was decoded).
        var lineStart: Int64 = 0
        var partial: [UInt8] = []
        var skipping = false
        /// The file's first bytes (up to 256) as they were read: a change means truncation.
        var head: [UInt8] = []
        var idlePolls = 0

        init(fd: Int32, device: UInt64, inode: UInt64, name: String, generation: Int) {
            self.fd = fd; self.device = device; self.inode = inode; self.name = name; self.generation = generation
        }
        deinit { close(fd) }
    }

    static let headBytes = 256
    static let readBudget = 4 << 20

    let source: FileTailer.Source
    let state: ServeState
    let logger: Logger
    let afterCommit: (@Sendable (String) throws -> Void)?
    let offsetsPath: String
    let maxLine: Int
    let stats: FileTailStats
    var decoder: VaultAuditDecoder
    var generation = 0
    var cur: Handle?
    var old: Handle?
    /// The last read stopped at its budget (readBudget bytes or limits.max_batch events).
    var stoppedAtBudget = false
    var persisted: TailOffset?
    var outputs: [DecodeOutput] = []
    var chunk = [UInt8](repeating: 0, count: 64 << 10)
    var rejectedLogged = 0
    var lastProblem: String?

    /// Logs why a file cannot be followed, once until it changes (it is retried every poll).
    func problem(_ what: String) {
        guard what != lastProblem else { return }
        lastProblem = what
        logger.warning("file tail \(source.path): \(what); retrying")
    }

    init(source: FileTailer.Source, tailer: FileTailer) {
        self.source = source
        self.state = tailer.state
        self.logger = tailer.logger
        self.afterCommit = tailer.afterCommit
        self.offsetsPath = FileTailer.offsetsFile(directory: tailer.offsetsDirectory, path: source.path)
        self.maxLine = tailer.state.config.limits.maxLineBytes
        self.stats = tailer.state.metrics.fileTail
        self.decoder = Self.makeDecoder(source)
    }

    static func makeDecoder(_ s: FileTailer.Source) -> VaultAuditDecoder {
        VaultAuditDecoder(sourceKind: s.format == .openbao ? "openbao" : "vault", instance: s.instance)
    }

    func run() async throws {
        restore()
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            var progressed = false
            do {
                progressed = try await step()
            } catch let e as TailHookFailure {
                throw e.underlying
            } catch {
                // Nothing after the saved offset counts as done: start again from it.
                logger.error("file tail \(source.path): \(error); reading again from the saved offset in 1 s")
                try? await Task.sleep(for: .seconds(1))
                restore()
                continue
            }
            updateLag()
            if !progressed { try? await Task.sleep(for: .milliseconds(source.pollIntervalMs)) }
        }
    }

    // MARK: Files

    struct Identity { var device: UInt64; var inode: UInt64; var size: Int64; var regular: Bool }

    static func identity(path: String) -> Identity? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return Identity(st)
    }

    static func identity(fd: Int32) -> Identity? {
        var st = stat()
        guard fstat(fd, &st) == 0 else { return nil }
        return Identity(st)
    }

    func open(_ name: String) -> Handle? {
        let fd = Glibc_open(name)
        guard fd >= 0 else {
            let e = errno
            if e != ENOENT { problem("cannot open \(name): \(String(cString: strerror(e)))") }
            return nil
        }
        guard let id = Self.identity(fd: fd), id.regular else {
            problem("\(name) is not a regular file")
            close(fd)
            return nil
        }
        lastProblem = nil
        generation += 1
        return Handle(fd: fd, device: id.device, inode: id.inode, name: name, generation: generation)
    }

    func pread(_ h: Handle, _ count: Int, at offset: Int64) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = out.withUnsafeMutableBytes { Glibc_pread(h.fd, $0.baseAddress! + got, count - got, offset + Int64(got)) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw TailError("cannot read \(h.name): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            got += n
        }
        out.removeLast(count - got)
        return out
    }

    /// Is `h` (with `saved` read from disk) the file the offset was saved for?
    func matches(_ h: Handle, _ saved: TailOffset) -> Bool {
        guard h.device == saved.device, h.inode == saved.inode, let id = Self.identity(fd: h.fd), id.size >= saved.offset,
              let head = try? pread(h, saved.headLength, at: 0), head.count == saved.headLength,
              TailOffset.hash(head) == saved.headHash else { return false }
        h.head = head
        h.readPos = saved.offset
        h.lineStart = saved.offset
        return true
    }

    /// (Re)starts from the offsets file: a fresh decoder, the saved file at its offset.
    func restore() {
        decoder = Self.makeDecoder(source)
        cur = nil
        old = nil
        let saved = TailOffset.load(offsetsPath)
        persisted = saved
        stats.setOffset(source.path, saved?.offset ?? 0)
        guard let saved else {
            cur = open(source.path)
            if cur == nil { logger.info("file tail \(source.path): not there yet; waiting for it") }
            return
        }
        if let h = open(source.path) {
            if h.device == saved.device && h.inode == saved.inode {
                if matches(h, saved) {
                    logger.info("file tail \(source.path): resuming at byte \(saved.offset)")
                } else {
                    stats.truncated(source.path)
                    logger.warning("file tail \(source.path): the file was truncated or rewritten since byte \(saved.offset) was saved; reading it from the start")
                }
                cur = h
                return
            }
            cur = h
        }
        // The path names another file now: it was rotated while Custos was not reading.
        // Finish the old one first if it is still beside it (same device and inode).
        let dir = (source.path as NSString).deletingLastPathComponent
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.isEmpty ? "." : dir)) ?? []
        for n in names.sorted() {
            let p = (dir.isEmpty ? "" : dir + "/") + n
            guard p != source.path, let id = Self.identity(path: p), id.regular, id.device == saved.device, id.inode == saved.inode,
                  let h = open(p) else { continue }
            if matches(h, saved) {
                logger.info("file tail \(source.path): rotated while stopped; finishing \(p) from byte \(saved.offset) first")
                stats.rotated(source.path)
                old = h
                return
            }
        }
        logger.warning("file tail \(source.path): the file last read (up to byte \(saved.offset)) is no longer there; reading \(source.path) from the start")
    }

    // MARK: Polling

    /// One poll: finish a rotated file, notice rotation or truncation, read and commit.
    /// True when it made progress (poll again at once).
    func step() async throws -> Bool {
        if let o = old {
            if try await readAndCommit(o) > 0 { o.idlePolls = 0; return true }
            o.idlePolls += 1
            if o.idlePolls < 2 { return false }
            if o.skipping || !o.partial.isEmpty {
                stats.rejected(source.path, 1)
                logger.warning("file tail \(source.path): \(o.name) ended with an incomplete line at byte \(o.lineStart) (rotated); skipped")
            }
            old = nil
            if let c = cur { try await persist(c) }
            return true
        }
        if let id = Self.identity(path: source.path) {
            if let c = cur {
                if id.device != c.device || id.inode != c.inode, let n = open(source.path) {
                    logger.info("file tail \(source.path): rotated; reading the old file to its end, then the new one")
                    stats.rotated(source.path)
                    old = c
                    cur = n
                    return true
                }
            } else if let n = open(source.path) {
                cur = n
            }
        }
        guard let c = cur else { return false }
        if try truncated(c) {
            stats.truncated(source.path)
            logger.warning("file tail \(source.path): truncated (at byte \(c.readPos)); reading it from the start")
            generation += 1
            c.generation = generation
            c.readPos = 0; c.lineStart = 0; c.partial = []; c.skipping = false; c.head = []
        }
        // Poll again at once only when this read stopped at its budget (more is waiting);
        // a file read to its end is polled again after the interval, so that a busy audit
        // device costs one commit and one offset write per interval, not one per record.
        _ = try await readAndCommit(c)
        return stoppedAtBudget
    }

    func truncated(_ h: Handle) throws -> Bool {
        guard let id = Self.identity(fd: h.fd) else { throw TailError("cannot stat \(h.name): \(String(cString: strerror(errno)))") }
        if id.size < h.readPos { return true }
        if !h.head.isEmpty, try pread(h, h.head.count, at: 0) != h.head { return true }
        return false
    }

    /// Reads what `h` has (bounded), decodes complete lines, commits their events, then
    /// saves the offset. Returns the number of bytes read.
    func readAndCommit(_ h: Handle) async throws -> Int {
        var events: [AccessEvent] = []
        var rejected = 0
        var total = 0
        decoder.input = h.generation
        stoppedAtBudget = false
        while total < Self.readBudget && events.count < state.config.limits.maxBatch {
            let base = h.readPos
            let n = chunk.withUnsafeMutableBytes { Glibc_pread(h.fd, $0.baseAddress!, $0.count, base) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw TailError("cannot read \(h.name): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            // The first bytes as read (not read again later: the file may have changed by then).
            if h.head.count < Self.headBytes && base <= Int64(h.head.count) && base + Int64(n) > Int64(h.head.count) {
                let from = Int(Int64(h.head.count) - base)
                h.head.append(contentsOf: chunk[from..<min(n, from + Self.headBytes - h.head.count)])
            }
            chunk.withUnsafeBytes { raw in
                split(h, UnsafeRawBufferPointer(rebasing: raw[0..<n]), base: base) { line, offset in
                    guard let line else {
                        rejected += 1
                        note("line at byte \(offset) of \(h.name) is longer than limits.max_line_bytes (\(maxLine)); skipped")
                        return
                    }
                    decode(line, at: offset, events: &events, rejected: &rejected)
                }
            }
            h.readPos += Int64(n)
            total += n
        }
        stoppedAtBudget = total >= Self.readBudget || events.count >= state.config.limits.maxBatch
        if total == 0 { return 0 }
        stats.rejected(source.path, rejected)
        state.metrics.rejected(source.format.rawValue, rejected)
        if !events.isEmpty { try await commit(events) }
        do { try afterCommit?(source.path) } catch { throw TailHookFailure(underlying: error) }
        if old == nil || old === h { try await persist(h) }
        return total
    }

    /// Splits `bytes` (which start at file offset `base`) into complete lines with their
    /// offsets; a line longer than `maxLine` is reported as nil and never held whole.
    func split(_ h: Handle, _ bytes: UnsafeRawBufferPointer, base: Int64, _ line: (UnsafeRawBufferPointer?, Int64) -> Void) {
        var start = 0
        while start < bytes.count {
            guard let nl = bytes[start...].firstIndex(of: 0x0A) else {
                if !h.skipping {
                    h.partial.append(contentsOf: bytes[start...])
                    if h.partial.count > maxLine { h.partial = []; h.skipping = true }
                }
                return
            }
            let at = h.lineStart
            if h.skipping {
                h.skipping = false
                line(nil, at)
            } else if h.partial.count + (nl - start) > maxLine {
                h.partial = []
                line(nil, at)
            } else if h.partial.isEmpty {
                line(UnsafeRawBufferPointer(rebasing: bytes[start..<nl]), at)
            } else {
                h.partial.append(contentsOf: bytes[start..<nl])
                h.partial.withUnsafeBytes { line($0, at) }
                h.partial.removeAll(keepingCapacity: h.partial.capacity <= 1 << 20)
            }
            h.lineStart = base + Int64(nl) + 1
            start = nl + 1
        }
    }

    func decode(_ line: UnsafeRawBufferPointer, at offset: Int64, events: inout [AccessEvent], rejected: inout Int) {
        if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { return }
        if source.format == .custos || (source.format == .auto && BodyDecoder.shape(line).hasSchema) {
            do {
                let e = try AccessEvent.decode(line)
                guard !e.id.isEmpty, e.id.utf8.count <= 256, e.canonicalJSON().count <= AccessEvent.maxEncodedSize else {
                    rejected += 1
                    note("line at byte \(offset): event id must be 1...256 bytes and the event at most \(AccessEvent.maxEncodedSize) bytes")
                    return
                }
                events.append(e)
            } catch {
                rejected += 1
                note("line at byte \(offset): not a custos.event/v1 object: \(error)")
            }
            return
        }
        decoder.decode(line: line, lineNumber: Int(offset), into: &outputs)
        for o in outputs {
            switch o {
            case .event(let e, _): events.append(e)
            case .ignored: break
            case .rejected(let r):
                rejected += 1
                note("line at byte \(r.line)\(r.input.map { $0 != decoder.input ? " of an earlier file" : "" } ?? ""): \(r.reason)")
            }
        }
        outputs.removeAll(keepingCapacity: true)
    }

    /// Logs a rejected line (the first 100, then every 1000th: a file of garbage must not flood the log).
    func note(_ what: String) {
        rejectedLogged += 1
        if rejectedLogged <= 100 || rejectedLogged % 1000 == 0 {
            logger.warning("file tail \(source.path): rejected \(what) (\(rejectedLogged) rejected so far)")
        }
    }

    /// Waits (reading nothing more) until there is room in the commit queue, then commits.
    func commit(_ events: [AccessEvent]) async throws {
        let r = try await state.commitFromListener(events, source: source.format.rawValue)
        stats.accepted(source.path, r.accepted, duplicates: r.duplicates)
    }

    /// Saves how far `h` is durable: the start of its first incomplete line.
    func persist(_ h: Handle) async throws {
        let offset = h.lineStart
        let want = Int(min(Int64(Self.headBytes), offset))
        guard h.head.count >= want else { throw TailError("internal: \(h.head.count) first bytes of \(h.name) known, \(want) needed") }
        let head = Array(h.head.prefix(want))
        let o = TailOffset(path: source.path, device: h.device, inode: h.inode, offset: offset, headLength: head.count, headHash: TailOffset.hash(head))
        guard o != persisted else { return }
        let file = offsetsPath
        try await NIOThreadPool.singleton.runIfActive { try o.write(to: file) }
        persisted = o
        stats.setOffset(source.path, offset)
    }

    func updateLag() {
        var lag: Int64 = 0
        for h in [old, cur].compactMap({ $0 }) {
            guard let size = Self.identity(fd: h.fd)?.size else { continue }
            let done = (persisted.map { $0.device == h.device && $0.inode == h.inode } ?? false) ? persisted!.offset : 0
            lag += max(0, size - done)
        }
        stats.setLag(source.path, lag)
    }
}

extension TailFollower.Identity {
    init(_ st: stat) {
        device = UInt64(truncatingIfNeeded: st.st_dev)
        inode = UInt64(truncatingIfNeeded: st.st_ino)
        size = Int64(st.st_size)
        regular = (st.st_mode & S_IFMT) == S_IFREG
    }
}

@inline(__always) private func sysWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { write(fd, p, n) }
@inline(__always) private func Glibc_open(_ path: String) -> Int32 { open(path, O_RDONLY | O_CLOEXEC) }
@inline(__always) private func Glibc_pread(_ fd: Int32, _ p: UnsafeMutableRawPointer, _ n: Int, _ off: Int64) -> Int {
    pread(fd, p, n, off_t(off))
}

/// The file tail's metrics, one label set per configured path (fixed at start).
public final class FileTailStats: @unchecked Sendable {
    struct Path {
        var accepted = 0, duplicates = 0, rejected = 0, rotations = 0, truncations = 0
        var offset: Int64 = 0, lag: Int64 = 0
    }
    private let lock = NSLock()
    private var paths: [String: Path] = [:]
    private var order: [String] = []

    func register(_ p: String) { lock.withLock { if paths[p] == nil { paths[p] = Path(); order.append(p) } } }
    func accepted(_ p: String, _ n: Int, duplicates d: Int) { lock.withLock { paths[p]?.accepted += n; paths[p]?.duplicates += d } }
    func rejected(_ p: String, _ n: Int) { guard n > 0 else { return }; lock.withLock { paths[p]?.rejected += n } }
    func rotated(_ p: String) { lock.withLock { paths[p]?.rotations += 1 } }
    func truncated(_ p: String) { lock.withLock { paths[p]?.truncations += 1 } }
    func setOffset(_ p: String, _ o: Int64) { lock.withLock { paths[p]?.offset = o } }
    func setLag(_ p: String, _ l: Int64) { lock.withLock { paths[p]?.lag = l } }

    static func label(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }

    /// Prometheus text for the families below (nothing when no file is followed).
    public func exposition() -> String {
        lock.withLock {
            guard !order.isEmpty else { return "" }
            var s = ""
            func family(_ name: String, _ type: String, _ help: String, _ value: (Path) -> String) {
                s += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
                for p in order { s += "\(name){path=\"\(Self.label(p))\"} \(value(paths[p]!))\n" }
            }
            family("custos_file_tail_events_accepted_total", "counter", "Events from a followed file made durable in the trail.") { "\($0.accepted)" }
            family("custos_file_tail_events_duplicate_total", "counter", "Events from a followed file already in the trail (same id).") { "\($0.duplicates)" }
            family("custos_file_tail_lines_rejected_total", "counter", "Lines of a followed file rejected (malformed or longer than limits.max_line_bytes).") { "\($0.rejected)" }
            family("custos_file_tail_rotations_total", "counter", "Times a followed path was found to name a new file.") { "\($0.rotations)" }
            family("custos_file_tail_truncations_total", "counter", "Times a followed file was found truncated and read again from the start.") { "\($0.truncations)" }
            family("custos_file_tail_offset_bytes", "gauge", "The saved offset: every event before it is durable.") { "\($0.offset)" }
            family("custos_file_tail_lag_bytes", "gauge", "Bytes of the followed file(s) after the saved offset.") { "\($0.lag)" }
            return s
        }
    }
}
