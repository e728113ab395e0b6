import CustosCore
import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle

/// Names shared by the syslog listeners: metric sources and the fixed set of error reasons
/// (`custos_input_errors_total{source, reason}`).
public enum SyslogInput {
    public static let tcpSource = "syslog_tcp"
    public static let udpSource = "syslog_udp"
    /// Every reason a syslog listener counts (the label set is fixed, all listed at 0).
    public static let errorReasons = [
        "invalid_syslog",     // not RFC 5424/3164, or MSG not UTF-8
        "too_large",          // a frame or datagram over max_message_bytes
        "bad_frame",          // a malformed octet count: the connection is closed
        "truncated_frame",    // the connection ended inside an octet-counted frame
        "frame_timeout",      // a frame started and not finished within frame_timeout: closed
        "connection_limit",   // a connection refused (max_connections reached)
        "overloaded",         // UDP: a datagram dropped because the commit queue was full
    ]
}

/// Turns syslog frames into events: parses the syslog message (`SyslogParser`), then decodes
/// its MSG as the configured format. One per TCP connection (a Vault request pairs with its
/// response as in a file) and one per UDP listener.
struct SyslogPayloadDecoder {
    let format: WireFormat
    let instance: String
    let maxRecordBytes: Int
    private var vault: VaultAuditDecoder
    private(set) var messages = 0

    init(format: WireFormat, instance: String, maxRecordBytes: Int, maxPending: Int = 50_000) {
        self.format = format; self.instance = instance; self.maxRecordBytes = maxRecordBytes
        vault = VaultAuditDecoder(sourceKind: format == .openbao ? "openbao" : "vault", instance: instance, maxPending: maxPending)
    }

    enum Rejection: Equatable {
        /// Not a syslog message Custos accepts (counted as `invalid_syslog`).
        case syslog(String)
        /// A syslog message whose MSG is not an acceptable record.
        case record(String)
        var reason: String {
            switch self {
            case .syslog(let r): return "not a syslog message: \(r)"
            case .record(let r): return r
            }
        }
    }

    /// Decodes one frame; events (possibly an earlier request completed by this response)
    /// go to `events`, rejections (this frame's or one emitted late) to `rejections`.
    mutating func decode(frame: [UInt8], events: inout [AccessEvent], rejections: inout [Rejection]) {
        messages += 1
        let m: SyslogMessage
        switch SyslogParser.parse(frame) {
        case .success(let v): m = v
        case .failure(let e): rejections.append(.syslog(e.description)); return
        }
        var start = 0
        while start < m.message.count, m.message[start] == 0x20 || m.message[start] == 0x09 { start += 1 }
        guard start < m.message.count else { rejections.append(.record("the syslog message carries no record (empty MSG)")); return }
        guard m.message.count - start <= maxRecordBytes else {
            rejections.append(.record("record longer than \(maxRecordBytes) bytes (limits.max_line_bytes)")); return
        }
        let record = Array(m.message[start...])
        let custos = format == .custos || (format == .auto && record.withUnsafeBytes { BodyDecoder.shape($0).hasSchema })
        if custos {
            do {
                let e = try AccessEvent.decode(record)
                guard !e.id.isEmpty, e.id.utf8.count <= 256 else { rejections.append(.record("event id must be 1...256 bytes")); return }
                guard e.canonicalJSON().count <= AccessEvent.maxEncodedSize else {
                    rejections.append(.record("event encodes to more than \(AccessEvent.maxEncodedSize) bytes")); return
                }
                events.append(e)
            } catch {
                rejections.append(.record("not a custos.event/v1 object: \(error)"))
            }
            return
        }
        var outputs: [DecodeOutput] = []
        vault.decode(line: record, lineNumber: messages, into: &outputs)
        Self.drain(outputs, &events, &rejections)
    }

    /// The end of the input: requests still waiting for their response become events with
    /// outcome `error` ("no response logged").
    mutating func finish(events: inout [AccessEvent], rejections: inout [Rejection]) {
        var outputs: [DecodeOutput] = []
        vault.finish(into: &outputs)
        Self.drain(outputs, &events, &rejections)
    }

    private static func drain(_ outputs: [DecodeOutput], _ events: inout [AccessEvent], _ rejections: inout [Rejection]) {
        for o in outputs {
            switch o {
            case .event(let e, _): events.append(e)
            case .ignored: break
            case .rejected(let r): rejections.append(.record(r.reason))
            }
        }
    }
}

/// Logs the first rejections of one input in full, then every 1000th (no record content is
/// ever logged: reasons only).
struct RejectionLog {
    private(set) var count = 0
    mutating func note(_ logger: Logger, _ message: @autoclosure () -> String) {
        count += 1
        if count <= 10 || count % 1000 == 0 { logger.warning("\(message()) (rejection \(count) of this input)") }
    }
}


/// Syslog over TCP (RFC 6587: octet counting or newline framing, detected per frame),
/// messages in RFC 5424 or RFC 3164 whose MSG is a Vault/OpenBao audit record or a custos
/// event (`format`).
///
/// As in `AuditSocketListener`, what one read brings is decoded and committed before the next
/// read: while the trail catches up nothing more is read from that connection, TCP's window
/// fills and the sender (rsyslog's queue) waits. A frame over `maxMessageBytes` is rejected
/// and skipped; a malformed octet count closes the connection (the stream cannot be
/// resynchronized); a frame left unfinished for `frameTimeout` closes the connection (slow
/// or stuck clients); a connection beyond `maxConnections` is refused. Each is logged and
/// counted under source `syslog_tcp`; other connections are unaffected.
public struct SyslogTCPListener: Service {
    let state: ServeState
    let host: String
    let port: Int
    let format: WireFormat
    let instance: String
    let maxMessageBytes: Int
    let maxConnections: Int
    let frameTimeout: TimeAmount
    let tls: NIOSSLContext?
    let logger: Logger
    let onBound: (@Sendable (Int) -> Void)?
    static let source = SyslogInput.tcpSource

    /// `tls`: syslog over TLS (RFC 5425) on this port.
    public init(state: ServeState, host: String, port: Int, format: WireFormat = .auto, instance: String = "default",
                maxMessageBytes: Int = ServeConfig.Syslog.defaultMaxMessageBytes, maxConnections: Int = 64,
                frameTimeout: Duration = .seconds(60), tls: NIOSSLContext? = nil, logger: Logger, onBound: (@Sendable (Int) -> Void)? = nil) {
        self.tls = tls
        self.state = state; self.host = host; self.port = port; self.format = format; self.instance = instance
        self.maxMessageBytes = maxMessageBytes; self.maxConnections = maxConnections; self.frameTimeout = .nanoseconds(frameTimeout.components.seconds * 1_000_000_000 + frameTimeout.components.attoseconds / 1_000_000_000)
        self.logger = logger; self.onBound = onBound
    }

    public func run() async throws {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.autoRead, value: true)
            .bind(host: host, port: port) { [tls] child in
                child.eventLoop.makeCompletedFuture {
                    if let tls { try child.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                        wrappingChannelSynchronously: child,
                        configuration: .init(inboundType: ByteBuffer.self, outboundType: ByteBuffer.self))
                }
            }
        let bound = server.channel.localAddress?.port ?? port
        onBound?(bound)
        logger.info("syslog TCP listener on \(host):\(bound)\(tls == nil ? "" : " (TLS)") (format \(format.rawValue), instance \(instance))")
        let active = ManagedCounter()
        let refused = EventCounter()
        let open = OpenChannels()
        try await withGracefulShutdownHandler {
            try await server.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await connection in inbound {
                        guard active.increment(limit: maxConnections) else {
                            state.metrics.inputError(Self.source, "connection_limit")
                            let n = refused.next()
                            if n <= 10 || n % 1000 == 0 {
                                logger.warning("syslog TCP: \(maxConnections) connections open (syslog.max_connections); refused one from \(connection.channel.remoteAddress?.description ?? "?")")
                            }
                            try? await connection.executeThenClose { _, _ in }
                            continue
                        }
                        group.addTask {
                            defer { active.decrement() }
                            guard open.add(connection.channel) else { try? await connection.executeThenClose { _, _ in }; return }
                            defer { open.remove(connection.channel) }
                            await handle(connection)
                        }
                    }
                }
            }
        } onGracefulShutdown: {
            // Senders such as rsyslog keep their connection open: close them too (what was
            // read is still committed; a sender learns nothing either way, syslog has no ack).
            server.channel.close(promise: nil)
            open.closeAll()
        }
    }

    func handle(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async {
        let peer = connection.channel.remoteAddress?.description ?? "?"
        var log = logger
        log[metadataKey: "peer"] = "\(peer)"
        var framer = SyslogFramer(maxMessage: maxMessageBytes)
        var decoder = SyslogPayloadDecoder(format: format, instance: instance, maxRecordBytes: state.config.limits.maxLineBytes)
        var rejectionLog = RejectionLog()
        let timer = FrameTimer(channel: connection.channel)
        var events: [AccessEvent] = []
        var rejections: [SyslogPayloadDecoder.Rejection] = []
        var frames: [SyslogFramer.Frame] = []
        var fatal: String?

        func account() {
            var rejected = 0
            for r in rejections {
                rejected += 1
                if case .syslog = r { state.metrics.inputError(Self.source, "invalid_syslog") }
                rejectionLog.note(log, "syslog TCP: message rejected: \(r.reason)")
            }
            rejections.removeAll(keepingCapacity: true)
            state.metrics.rejected(Self.source, rejected)
        }
        func decode() {
            for f in frames {
                switch f {
                case .message(let bytes): decoder.decode(frame: bytes, events: &events, rejections: &rejections)
                case .tooLarge(let n):
                    state.metrics.inputError(Self.source, "too_large")
                    state.metrics.rejected(Self.source, 1)
                    rejectionLog.note(log, "syslog TCP: frame of \(n.map(String.init) ?? "more than \(maxMessageBytes)") bytes rejected (syslog.max_message_bytes is \(maxMessageBytes))")
                }
            }
            frames.removeAll(keepingCapacity: true)
            account()
        }

        do {
            try await connection.executeThenClose { inbound, _ in
                // frame_timeout counts the time spent waiting for the bytes of one frame (not
                // the time this listener spends committing), however they trickle in.
                var budget = frameTimeout
                var budgetFrame = -1
                var armedAt: NIODeadline?
                for try await chunk in inbound {
                    timer.disarm()
                    if let t = armedAt { budget = budget - (NIODeadline.now() - t); armedAt = nil }
                    var failure: SyslogFramer.Failure?
                    chunk.withUnsafeReadableBytes { raw in
                        do throws(SyslogFramer.Failure) { try framer.feed(raw) { frames.append($0) } } catch { failure = error }
                    }
                    decode()
                    if !events.isEmpty {
                        let batch = events
                        events.removeAll(keepingCapacity: true)
                        try await state.commitFromListener(batch, source: Self.source)
                    }
                    if let failure {
                        fatal = failure.reason
                        state.metrics.inputError(Self.source, "bad_frame")
                        state.metrics.rejected(Self.source, 1)
                        break
                    }
                    if framer.inFrame {
                        if framer.framesStarted != budgetFrame { budgetFrame = framer.framesStarted; budget = frameTimeout }
                        timer.arm(in: max(budget, .zero))
                        armedAt = .now()
                    }
                }
            }
        } catch {
            // A reset connection or a failed commit. The end of the connection is still handled
            // below: requests waiting for their response are recorded, as after a clean close.
            log.warning("syslog TCP connection ended: \(error)")
        }
        do {
            timer.disarm()  // fired stays true only if it fired before the connection ended
            if timer.fired {
                state.metrics.inputError(Self.source, "frame_timeout")
                state.metrics.rejected(Self.source, 1)
                log.warning("syslog TCP: closed the connection: a frame was not finished within \(Double(frameTimeout.nanoseconds) / 1e9) s (syslog.frame_timeout)")
            } else if let fatal {
                log.warning("syslog TCP: closed the connection: \(fatal) (the stream cannot be resynchronized)")
            } else if let failure = framer.finish({ frames.append($0) }) {
                state.metrics.inputError(Self.source, "truncated_frame")
                state.metrics.rejected(Self.source, 1)
                log.warning("syslog TCP: \(failure.reason); that frame is dropped")
            }
            decode()
            // The connection ended: requests still waiting for a response are recorded as
            // such (outcome error, "no response logged"), as at the end of a file.
            decoder.finish(events: &events, rejections: &rejections)
            account()
            if !events.isEmpty { try await state.commitFromListener(events, source: Self.source) }
        } catch {
            log.warning("syslog TCP: the events at the end of the connection could not be committed: \(error)")
        }
        timer.disarm()
    }
}

/// The connections of a listener, closed together at shutdown.
final class OpenChannels: @unchecked Sendable {
    private let lock = NSLock()
    private var channels: [ObjectIdentifier: any Channel] = [:]
    private var closing = false
    func add(_ c: any Channel) -> Bool { lock.withLock { guard !closing else { return false }; channels[ObjectIdentifier(c)] = c; return true } }
    func remove(_ c: any Channel) { _ = lock.withLock { channels.removeValue(forKey: ObjectIdentifier(c)) } }
    func closeAll() {
        let all = lock.withLock { closing = true; return Array(channels.values) }
        for c in all { c.close(promise: nil) }
    }
}

final class EventCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func next() -> Int { lock.withLock { n += 1; return n } }
}

/// Closes a connection when the time it was given runs out. The TCP listener arms it with
/// what is left of the current frame's `frame_timeout` only while it waits for the client
/// (never while it is itself waiting for a commit), so backpressure never closes a connection.
final class FrameTimer: @unchecked Sendable {
    private let lock = NSLock()
    private let channel: any Channel
    private var task: Scheduled<Void>?
    private var didFire = false

    init(channel: any Channel) { self.channel = channel }

    var fired: Bool { lock.withLock { didFire } }

    func arm(in timeout: TimeAmount) {
        lock.withLock {
            guard task == nil else { return }
            task = channel.eventLoop.scheduleTask(in: timeout) { [self] in
                // A connection the client already closed was not closed by the timeout: its
                // unfinished frame is a truncated frame, even when the listener has not yet
                // read the end of the stream (a busy machine can take longer than that).
                guard channel.isActive else { return }
                lock.withLock { didFire = true }
                channel.close(promise: nil)
            }
        }
    }

    func disarm() {
        lock.withLock {
            task?.cancel()
            task = nil
        }
    }
}

/// Syslog over UDP (RFC 5426: one message per datagram), RFC 5424 or RFC 3164.
///
/// UDP has no acknowledgement: a sender never learns whether a message arrived, and the
/// kernel drops datagrams when the receive buffer is full. Datagrams are decoded as they come
/// and queued for commit (one commit at a time, each taking everything queued); when
/// `limits.max_pending_events` events are queued, further datagrams are dropped and counted
/// (`custos_input_errors_total{source="syslog_udp",reason="overloaded"}`). One decoder serves
/// all senders, so a request pairs with its response in a later datagram; requests still
/// unanswered at shutdown are recorded with outcome `error`. Use TCP where loss matters.
public struct SyslogUDPListener: Service {
    let state: ServeState
    let host: String
    let port: Int
    let format: WireFormat
    let instance: String
    let maxMessageBytes: Int
    let logger: Logger
    let onBound: (@Sendable (Int) -> Void)?
    static let source = SyslogInput.udpSource

    public init(state: ServeState, host: String, port: Int, format: WireFormat = .auto, instance: String = "default",
                maxMessageBytes: Int = ServeConfig.Syslog.defaultMaxMessageBytes, logger: Logger,
                onBound: (@Sendable (Int) -> Void)? = nil) {
        self.state = state; self.host = host; self.port = port; self.format = format; self.instance = instance
        self.maxMessageBytes = maxMessageBytes; self.logger = logger; self.onBound = onBound
    }

    public func run() async throws {
        let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.socketOption(.so_rcvbuf), value: 4 << 20)
            // A datagram is at most 65,507 bytes: read each whole (the default buffer is 2 KiB).
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536))
            .bind(host: host, port: port) { ch in
                ch.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>(wrappingChannelSynchronously: ch)
                }
            }
        let bound = channel.channel.localAddress?.port ?? port
        onBound?(bound)
        logger.info("syslog UDP listener on \(host):\(bound) (format \(format.rawValue), instance \(instance)); UDP has no acknowledgement")
        let queue = UDPEventQueue(limit: state.config.limits.maxPendingEvents)
        try await withGracefulShutdownHandler {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await commitLoop(queue) }
                var decoder = SyslogPayloadDecoder(format: format, instance: instance, maxRecordBytes: state.config.limits.maxLineBytes,
                                                   maxPending: 10_000)
                var rejectionLog = RejectionLog()
                var overloads = 0
                var events: [AccessEvent] = []
                var rejections: [SyslogPayloadDecoder.Rejection] = []
                func flush() {
                    var rejected = 0
                    for r in rejections {
                        rejected += 1
                        if case .syslog = r { state.metrics.inputError(Self.source, "invalid_syslog") }
                        rejectionLog.note(logger, "syslog UDP: message rejected: \(r.reason)")
                    }
                    rejections.removeAll(keepingCapacity: true)
                    state.metrics.rejected(Self.source, rejected)
                    guard !events.isEmpty else { return }
                    if !queue.push(events) {
                        overloads += 1
                        state.metrics.inputError(Self.source, "overloaded")
                        state.metrics.rejected(Self.source, events.count)
                        if overloads <= 10 || overloads % 1000 == 0 {
                            logger.warning("syslog UDP: the commit queue is full (limits.max_pending_events); dropped a datagram's \(events.count) event(s) (\(overloads) so far)")
                        }
                    }
                    events.removeAll(keepingCapacity: true)
                }
                do {
                    try await channel.executeThenClose { inbound, _ in
                        for try await envelope in inbound {
                            let n = envelope.data.readableBytes
                            guard n <= maxMessageBytes else {
                                state.metrics.inputError(Self.source, "too_large")
                                state.metrics.rejected(Self.source, 1)
                                rejectionLog.note(logger, "syslog UDP: datagram of \(n) bytes from \(envelope.remoteAddress) rejected (syslog.max_message_bytes is \(maxMessageBytes))")
                                continue
                            }
                            decoder.decode(frame: Array(envelope.data.readableBytesView), events: &events, rejections: &rejections)
                            flush()
                        }
                    }
                } catch {
                    logger.warning("syslog UDP listener: \(error)")
                }
                decoder.finish(events: &events, rejections: &rejections)
                flush()
                queue.finish()
                try await group.waitForAll()
            }
        } onGracefulShutdown: {
            channel.channel.close(promise: nil)
        }
    }

    func commitLoop(_ queue: UDPEventQueue) async {
        for await _ in queue.signals {
            await commitQueued(queue)
        }
        await commitQueued(queue)
    }

    func commitQueued(_ queue: UDPEventQueue) async {
        let batch = queue.take()
        guard !batch.isEmpty else { return }
        do { try await state.commitFromListener(batch, source: Self.source) } catch {
            logger.error("syslog UDP: \(batch.count) event(s) could not be made durable and are lost: \(error)")
        }
        queue.done(batch.count)
    }
}

/// Events decoded from datagrams, waiting for the UDP listener's commit loop.
final class UDPEventQueue: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [AccessEvent] = []
    private var inFlight = 0
    let limit: Int
    let signals: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation

    init(limit: Int) {
        self.limit = limit
        let s = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        signals = s.stream
        continuation = s.continuation
    }

    /// False (nothing queued) when the queue and the commit in flight hold `limit` events.
    func push(_ e: [AccessEvent]) -> Bool {
        let ok = lock.withLock {
            guard events.count + inFlight == 0 || events.count + inFlight + e.count <= limit else { return false }
            events.append(contentsOf: e)
            return true
        }
        if ok { continuation.yield(()) }
        return ok
    }

    func take() -> [AccessEvent] {
        lock.withLock {
            let e = events
            events = []
            inFlight += e.count
            return e
        }
    }

    func done(_ n: Int) { lock.withLock { inFlight -= n } }

    func finish() { continuation.finish() }
}
