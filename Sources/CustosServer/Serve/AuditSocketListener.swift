import CustosCore
import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle

/// A listener for the Vault/OpenBao `socket` audit device (newline-delimited JSON, one
/// audit record per line): TCP (`socket_type = "tcp"`) or a Unix domain socket
/// (`socket_type = "unix"`; `unixPath`, created with `unixMode`, removed at shutdown).
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
    let unixPath: String?
    let unixMode: Int

    /// `tls`: serve TLS on this port (for forwarders that speak it; OpenBao's socket device does not).
    /// `unixPath`: listen on a Unix domain socket there instead of `host:port`; the file gets
    /// `unixMode` before anyone can connect (bound as `PATH.new`, then renamed into place).
    public init(state: ServeState, host: String, port: Int, format: WireFormat = .openbao, instance: String = "default",
                maxConnections: Int = 64, tls: NIOSSLContext? = nil, unixPath: String? = nil, unixMode: Int = 0o600,
                logger: Logger, onBound: (@Sendable (Int) -> Void)? = nil) {
        self.state = state; self.host = host; self.port = port; self.format = format; self.instance = instance
        self.maxConnections = maxConnections; self.tls = tls; self.logger = logger; self.onBound = onBound
        self.unixPath = unixPath; self.unixMode = unixMode
    }

    public func run() async throws {
        // Reads are gathered for up to 10 ms (at most limits.commit_linger_ms: the events
        // wait that long for a shared commit anyway), see ReadCoalescer.
        let coalesce = min(Duration.milliseconds(10), .milliseconds(state.config.limits.commitLingerMs))
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .childChannelOption(.autoRead, value: true)
        let initialize: @Sendable (any Channel) -> EventLoopFuture<NIOAsyncChannel<ByteBuffer, ByteBuffer>> = { [tls, coalesce] child in
            child.eventLoop.makeCompletedFuture {
                if let tls { try child.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                if coalesce > .zero { try child.pipeline.syncOperations.addHandler(ReadCoalescer(delay: coalesce, limit: 64 << 10)) }
                return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                    wrappingChannelSynchronously: child,
                    configuration: .init(inboundType: ByteBuffer.self, outboundType: ByteBuffer.self))
            }
        }
        let server: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>
        var socketFile: UnixSocketFile?
        if let unixPath {
            var file = try UnixSocketFile.prepare(unixPath)
            server = try await bootstrap.bind(unixDomainSocketPath: file.staging, childChannelInitializer: initialize)
            do { try file.publish(mode: unixMode) } catch { try? await server.channel.close(); throw error }
            socketFile = file
            onBound?(0)
            logger.info("audit socket listener on unix:\(unixPath) (mode \(String(unixMode, radix: 8)), format \(format.rawValue), instance \(instance))")
        } else {
            server = try await bootstrap.serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .bind(host: host, port: port, childChannelInitializer: initialize)
            let bound = server.channel.localAddress?.port ?? port
            onBound?(bound)
            logger.info("audit socket listener on \(host):\(bound)\(tls == nil ? "" : " (TLS)") (format \(format.rawValue), instance \(instance))")
        }
        defer { socketFile?.remove() }
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
                        // Events go straight into canonical form (no AccessEvent values).
                        var batch = EventBatch()
                        var rejected = 0
                        framer.feed(&chunk) { line in
                            lineNumber += 1
                            guard let line else { rejected += 1; return }
                            line.withUnsafeBytes { decoder.decode(line: $0, lineNumber: lineNumber, into: &batch, other: &outputs) }
                            for o in outputs {
                                switch o {
                                case .event(let e, _): batch.append(e)   // (the decoder puts events in the batch itself)
                                case .ignored: break
                                case .rejected: rejected += 1
                                }
                            }
                            outputs.removeAll(keepingCapacity: true)
                        }
                        state.metrics.rejected(format.rawValue, rejected)
                        if !batch.isEmpty { try await pipeline.submit(batch: batch) }
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

/// The file of a Unix domain socket listener. Custos binds `PATH.new`, sets its mode, then
/// renames it to PATH, so nobody connects before the permissions are in place; a stale socket
/// at PATH (left by a process that died) is replaced, anything else there is an error; at
/// shutdown the file is removed if it is still ours.
struct UnixSocketFile {
    let path: String
    var staging: String { path + ".new" }
    private(set) var inode: UInt64 = 0

    static func prepare(_ path: String) throws -> UnixSocketFile {
        let file = UnixSocketFile(path: path)
        var st = stat()
        if lstat(path, &st) == 0 {
            guard st.st_mode & S_IFMT == S_IFSOCK else {
                throw ServeError("audit_socket.listen: \(path) exists and is not a socket; not replacing it")
            }
            if Self.accepting(path) {
                throw ServeError("audit_socket.listen: another process is listening on \(path)")
            }
        }
        if lstat(file.staging, &st) == 0 {
            guard st.st_mode & S_IFMT == S_IFSOCK else {
                throw ServeError("audit_socket.listen: \(file.staging) exists and is not a socket; not replacing it")
            }
            unlink(file.staging)
        }
        return file
    }

    mutating func publish(mode: Int) throws {
        guard chmod(staging, mode_t(mode)) == 0 else {
            let e = errno; unlink(staging)
            throw ServeError("audit_socket: cannot set the mode of \(staging): \(String(cString: strerror(e)))")
        }
        guard rename(staging, path) == 0 else {
            let e = errno; unlink(staging)
            throw ServeError("audit_socket: cannot move \(staging) to \(path): \(String(cString: strerror(e)))")
        }
        var st = stat()
        if lstat(path, &st) == 0 { inode = UInt64(st.st_ino) }
    }

    func remove() {
        var st = stat()
        if inode != 0, lstat(path, &st) == 0, UInt64(st.st_ino) == inode { unlink(path) }
    }

    /// Whether a process accepts connections on the socket at `path`.
    static func accepting(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { return false }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
            raw[bytes.count] = 0
        }
        return withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0 }
        }
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

/// A listener that cannot start, with what to change.
public struct ServeError: Error, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
