import CustosCore
import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle

/// A TCP listener for the Vault/OpenBao `socket` audit device (newline-delimited JSON, one
/// audit record per line; `socket_type = "tcp"`).
///
/// Each connection has its own decoder, so a request and its response (which the device
/// writes on the same connection) pair up as in a file. Reads are gathered for up to 10 ms
/// (`ReadCoalescer`) and their events handed to the group committer without waiting
/// (`CommitPipeline`, sharing commits for up to `limits.commit_linger_ms`); when too many
/// are in flight the listener stops reading, TCP's window fills and the sender slows down
/// (backpressure, never loss). Lines longer than `maxLineBytes` are rejected (counted) and skipped up to their
/// newline; one bad client affects only its own connection.
public struct AuditSocketListener: Service {
    let state: ServeState
    let host: String
    let port: Int
    let format: WireFormat
    let instance: String
    let maxConnections: Int
    let logger: Logger
    let onBound: (@Sendable (Int) -> Void)?
    let tls: NIOSSLContext?

    /// `tls`: serve TLS on this port (for forwarders that speak it; OpenBao's socket device does not).
    public init(state: ServeState, host: String, port: Int, format: WireFormat = .openbao, instance: String = "default",
                maxConnections: Int = 64, tls: NIOSSLContext? = nil, logger: Logger, onBound: (@Sendable (Int) -> Void)? = nil) {
        self.state = state; self.host = host; self.port = port; self.format = format; self.instance = instance
        self.maxConnections = maxConnections; self.tls = tls; self.logger = logger; self.onBound = onBound
    }

    public func run() async throws {
        // Reads are gathered for up to 10 ms (at most limits.commit_linger_ms: the events
        // wait that long for a shared commit anyway), see ReadCoalescer.
        let coalesce = min(Duration.milliseconds(10), .milliseconds(state.config.limits.commitLingerMs))
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.autoRead, value: true)
            .bind(host: host, port: port) { [tls, coalesce] child in
                child.eventLoop.makeCompletedFuture {
                    if let tls { try child.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    if coalesce > .zero { try child.pipeline.syncOperations.addHandler(ReadCoalescer(delay: coalesce, limit: 64 << 10)) }
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                        wrappingChannelSynchronously: child,
                        configuration: .init(inboundType: ByteBuffer.self, outboundType: ByteBuffer.self))
                }
            }
        let bound = server.channel.localAddress?.port ?? port
        onBound?(bound)
        logger.info("audit socket listener on \(host):\(bound)\(tls == nil ? "" : " (TLS)") (format \(format.rawValue), instance \(instance))")
        let active = ManagedCounter()
        try await withGracefulShutdownHandler {
            try await server.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await connection in inbound {
                        guard active.increment(limit: maxConnections) else {
                            logger.warning("audit socket: more than \(maxConnections) connections; refusing one")
                            try? await connection.executeThenClose { _, _ in }
                            continue
                        }
                        group.addTask {
                            defer { active.decrement() }
                            await handle(connection)
                        }
                    }
                }
            }
        } onGracefulShutdown: {
            server.channel.close(promise: nil)
        }
    }

    func handle(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async {
        let peer = connection.channel.remoteAddress?.description ?? "?"
        var framer = LineFramer(maxLine: state.config.limits.maxLineBytes)
        var decoder = VaultAuditDecoder(sourceKind: format == .vault ? "vault" : "openbao", instance: instance)
        var lineNumber = 0
        var outputs: [DecodeOutput] = []
        // On graceful shutdown the device keeps its connection open: stop reading (what was
        // already received is still committed), so that the server can stop.
        let stopping = ManagedFlag()
        let pipeline = CommitPipeline(state: state, source: format.rawValue, limit: state.config.limits.maxBatch)
        do {
            try await withGracefulShutdownHandler {
                try await connection.executeThenClose { inbound, _ in
                    for try await var chunk in inbound {
                        var events: [AccessEvent] = []
                        var rejected = 0
                        framer.feed(&chunk) { line in
                            lineNumber += 1
                            guard let line else { rejected += 1; return }
                            line.withUnsafeBytes { decoder.decode(line: $0, lineNumber: lineNumber, into: &outputs) }
                            for o in outputs {
                                switch o {
                                case .event(let e, _): events.append(e)
                                case .ignored: break
                                case .rejected: rejected += 1
                                }
                            }
                            outputs.removeAll(keepingCapacity: true)
                        }
                        state.metrics.rejected(format.rawValue, rejected)
                        if !events.isEmpty { try await pipeline.submit(events) }
                    }
                    try await pipeline.drain()
                }
            } onGracefulShutdown: {
                stopping.set()
                let channel = connection.channel
                channel.close(mode: .input).whenFailure { _ in channel.close(promise: nil) }
            }
            // Our own shutdown: requests still waiting for their response are not recorded
            // (their response comes on the device's next connection, or from the file device).
            try await pipeline.drain()
            if stopping.value { return }
            // The connection ended: requests still waiting for a response are recorded as
            // such (outcome error, "no response logged"), as at the end of a file.
            decoder.finish(into: &outputs)
            let rest = outputs.compactMap { if case .event(let e, _) = $0 { return e } else { return nil } }
            if !rest.isEmpty { try await commit(rest) }
        } catch {
            logger.warning("audit socket connection from \(peer) ended: \(error)")
        }
    }

    /// The events left at the end of a connection: waits for room, then for their commit.
    func commit(_ events: [AccessEvent]) async throws {
        try await state.commitFromListener(events, source: format.rawValue)
    }
}

/// Splits a byte stream into lines of at most `maxLine` bytes. A longer line is reported as
/// `nil` (once, when its newline arrives) and its bytes are dropped as they come, so memory
/// stays bounded by `maxLine`.
struct LineFramer {
    let maxLine: Int
    private var partial: [UInt8] = []
    private var skipping = false

    init(maxLine: Int) { self.maxLine = maxLine }

    mutating func feed(_ buffer: inout ByteBuffer, _ line: ([UInt8]?) -> Void) {
        buffer.withUnsafeReadableBytes { raw in
            var start = 0
            while start < raw.count {
                guard let nl = raw[start...].firstIndex(of: 0x0A) else {
                    if !skipping {
                        partial.append(contentsOf: raw[start...])
                        if partial.count > maxLine { partial = []; skipping = true }
                    }
                    return
                }
                if skipping {
                    skipping = false
                    line(nil)
                } else if partial.count + (nl - start) > maxLine {
                    partial = []
                    line(nil)
                } else {
                    partial.append(contentsOf: raw[start..<nl])
                    line(partial)
                    partial.removeAll(keepingCapacity: true)
                }
                start = nl + 1
            }
        }
        buffer.moveReaderIndex(to: buffer.writerIndex)
    }
}

final class ManagedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var on = false
    func set() { lock.withLock { on = true } }
    var value: Bool { lock.withLock { on } }
}

final class ManagedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func increment(limit: Int) -> Bool { lock.withLock { guard n < limit else { return false }; n += 1; return true } }
    func decrement() { lock.withLock { n -= 1 } }
}

/// Gathers what a connection reads for up to `delay` (or until `limit` bytes) and passes it on
/// as one buffer; while it holds bytes it does not read from the socket (the kernel gathers
/// what arrives). The audit device writes each record with its own write, so a busy OpenBao
/// would otherwise cost one wake-up of the event loop and of the listener's task per record;
/// gathered, it is one per `delay`. Runs on the connection's event loop; what it holds
/// is bounded by `limit` plus one read, and is passed on before the end of input, an error, or
/// the channel closing, so nothing is lost.
final class ReadCoalescer: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let delay: TimeAmount
    let limit: Int
    private var held: ByteBuffer?
    private var timer: Scheduled<Void>?
    /// A read asked for while bytes are held: issued when they are passed on, so that the
    /// socket is not polled meanwhile (the kernel gathers what arrives into one larger read).
    private var readPending = false

    init(delay: Duration, limit: Int) {
        self.delay = .nanoseconds(delay.nanoseconds)
        self.limit = limit
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        if held == nil { held = buffer } else { held!.writeBuffer(&buffer) }
        if held!.readableBytes >= limit {
            flush(context)
        } else if timer == nil {
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            timer = context.eventLoop.scheduleTask(in: delay) {
                let (handler, context) = loopBound.value
                handler.timer = nil
                handler.flush(context)
            }
        }
    }

    /// Read completion is reported with the held bytes, when they are passed on.
    func channelReadComplete(context: ChannelHandlerContext) {}

    func read(context: ChannelHandlerContext) {
        if held != nil { readPending = true } else { context.read() }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        flush(context)
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        flush(context)
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        flush(context)
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel(); timer = nil
    }

    private func flush(_ context: ChannelHandlerContext) {
        timer?.cancel(); timer = nil
        guard let b = held else { return }
        held = nil
        context.fireChannelRead(wrapInboundOut(b))
        context.fireChannelReadComplete()
        if readPending { readPending = false; context.read() }
    }
}
