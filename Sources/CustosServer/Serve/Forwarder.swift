import AsyncHTTPClient
import CustosAlerting
import CustosCore
import CustosTrail
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// A SIEM that `custos serve` streams committed events to (`forward:`; README "Out to SIEMs").
public struct ForwardTarget: Sendable, Equatable {
    public enum Format: String, Sendable, CaseIterable { case ocsf, syslog5424, cef }
    public enum Transport: String, Sendable, CaseIterable { case http, tcp, udp }

    /// Names the cursor file `<data>/forward/<name>.cursor` and the metrics' label.
    public var name: String
    public var format = Format.ocsf
    public var transport = Transport.http
    /// http(s) URL the batches are POSTed to (transport http).
    public var url: String?
    /// HOST and PORT of a syslog receiver (transport tcp or udp).
    public var host: String?
    public var port: Int?
    /// Trail entries read per delivery (events per request at most).
    public var batch = 500
    /// Request headers whose values are read from environment variables at start
    /// (header name → variable name), e.g. `Authorization: SIEM_TOKEN`; never in the config.
    public var headersEnv: [String: String] = [:]
    /// HOSTNAME of syslog messages (default: this host's name).
    public var hostname: String?
    public var initialBackoffMs = 500
    public var maxBackoffMs = 60_000
    /// Seconds per delivery attempt.
    public var timeout: Int64 = 15
    public init(name: String) { self.name = name }

    public static func validName(_ s: String) -> Bool {
        (1...64).contains(s.utf8.count) && s.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D || $0 == 0x5F }
    }
}

public struct ForwardError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ d: String) { description = d }
}

/// Per-target counters and gauges (`custos_forward_*`).
public final class ForwardStats: @unchecked Sendable {
    public struct Snapshot: Sendable, Equatable {
        public var forwarded = 0
        public var failures = 0
        public var lag: UInt64 = 0
        public var cursor: UInt64 = 0
    }
    private let lock = NSLock()
    private var byName: [String: Snapshot] = [:]
    public init() {}

    func update(_ name: String, _ f: (inout Snapshot) -> Void) { lock.withLock { f(&byName[name, default: Snapshot()]) } }
    public func snapshot(_ name: String) -> Snapshot { lock.withLock { byName[name] ?? Snapshot() } }

    public func exposition() -> String {
        lock.withLock {
            guard !byName.isEmpty else { return "" }
            let names = byName.keys.sorted()
            var s = ""
            func family(_ n: String, _ type: String, _ help: String, _ v: (Snapshot) -> String) {
                s += "# HELP \(n) \(help)\n# TYPE \(n) \(type)\n"
                for k in names { s += "\(n){target=\"\(k)\"} \(v(byName[k]!))\n" }
            }
            family("custos_forward_events_total", "counter", "Events delivered to a forward target.") { "\($0.forwarded)" }
            family("custos_forward_failures_total", "counter", "Delivery attempts to a forward target that failed (each is retried).") { "\($0.failures)" }
            family("custos_forward_lag_entries", "gauge", "Trail entries not yet forwarded to a target (trail size minus its cursor).") { "\($0.lag)" }
            family("custos_forward_cursor", "gauge", "The target's saved cursor: every trail entry before it was delivered.") { "\($0.cursor)" }
            return s
        }
    }
}

/// Streams the trail's committed events to one SIEM: reads them from the trail on disk (only
/// what a signed checkpoint covers, so only durable events), from the target's persisted
/// cursor on, in batches of `target.batch` entries; delivers each batch, retrying with
/// exponential backoff until it is delivered (nothing is dropped: a target that is down
/// makes the lag grow, not the memory), then saves the cursor. Delivery is at least once:
/// after a crash between a delivery and its cursor save, that batch is sent again (the
/// OCSF `metadata.uid` is the event id to deduplicate on).
public struct Forwarder: Service {
    public let target: ForwardTarget
    let layout: TrailLayout
    let verifier: NoteVerifier
    let stats: ForwardStats
    let logger: Logger
    let client: HTTPClient
    let poll: Duration
    let headers: [(String, String)]

    /// Throws when a header's environment variable is not set.
    public init(target: ForwardTarget, layout: TrailLayout, verifier: NoteVerifier, stats: ForwardStats, logger: Logger,
                client: HTTPClient = .shared, poll: Duration = .milliseconds(250),
                environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        self.target = target; self.layout = layout; self.verifier = verifier; self.stats = stats
        self.logger = logger; self.client = client; self.poll = poll
        var h: [(String, String)] = []
        for (name, variable) in target.headersEnv.sorted(by: { $0.key < $1.key }) {
            guard let v = environment[variable], !v.isEmpty else {
                throw ForwardError("forward \(target.name): header \(name) names environment variable \(variable), which is not set")
            }
            h.append((name, v))
        }
        headers = h
        stats.update(target.name) { _ in }
    }

    public static func cursorPath(layout: TrailLayout, name: String) -> String { layout.dataDirectory + "/forward/" + name + ".cursor" }

    /// The saved cursor (0 when none was saved yet: everything is forwarded).
    public static func loadCursor(layout: TrailLayout, name: String) throws -> UInt64 {
        guard let b = try DurableFile.read(cursorPath(layout: layout, name: name), limit: 64) else { return 0 }
        let t = String(decoding: b, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let v = UInt64(t) else { throw ForwardError("\(cursorPath(layout: layout, name: name)) does not hold a trail index") }
        return v
    }

    static func shouldStop() -> Bool { Task.isCancelled || Task.isShuttingDownGracefully }

    public func run() async throws {
        var cursor = try Self.loadCursor(layout: layout, name: target.name)
        let path = Self.cursorPath(layout: layout, name: target.name)
        stats.update(target.name) { $0.cursor = cursor }
        while !Self.shouldStop() {
            let batch: (events: [(index: UInt64?, event: AccessEvent)], end: UInt64, size: UInt64)
            do { batch = try read(from: cursor) } catch {
                logger.error("forward \(target.name): reading the trail: \(error)")
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1)) }
                continue
            }
            stats.update(target.name) { $0.lag = batch.size > cursor ? batch.size - cursor : 0 }
            if batch.end <= cursor {
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: poll) }
                continue
            }
            if !batch.events.isEmpty {
                let payload = encode(batch.events.map(\.event))
                var attempt = 0
                while true {
                    do {
                        try await deliver(payload)
                        break
                    } catch {
                        if Self.shouldStop() { return }
                        attempt += 1
                        let wait = backoff(attempt)
                        stats.update(target.name) { $0.failures += 1 }
                        logger.warning("forward \(target.name): delivery of \(batch.events.count) event(s) failed (attempt \(attempt)): \(NetworkErrorClass.describeBriefly(error, timeout: .seconds(target.timeout))); retrying in \(wait)")
                        try? await cancelWhenGracefulShutdown { try await Task.sleep(for: wait) }
                        if Self.shouldStop() { return }
                    }
                }
            }
            cursor = batch.end
            do { try DurableFile.replace(path, Array("\(cursor)\n".utf8)) } catch {
                logger.error("forward \(target.name): saving the cursor: \(error) (the batch may be sent again after a restart)")
            }
            let n = batch.events.count, c = cursor
            stats.update(target.name) { $0.forwarded += n; $0.cursor = c; $0.lag = batch.size > c ? batch.size - c : 0 }
        }
    }

    /// Attempt n (1, 2, ...) waits initial × 2^(n-1), at most the maximum.
    func backoff(_ attempt: Int) -> Duration {
        let ms = min(Double(target.maxBackoffMs), Double(target.initialBackoffMs) * pow(2, Double(min(attempt - 1, 30))))
        return .milliseconds(Int64(ms))
    }

    /// The events among the next `batch` trail entries from `cursor`, the index after them, and the trail's size.
    func read(from cursor: UInt64) throws -> (events: [(index: UInt64?, event: AccessEvent)], end: UInt64, size: UInt64) {
        let reader = try TrailReader(layout: layout, verifier: verifier)
        let size = reader.size
        var start = cursor
        if start < reader.minimumIndex {
            logger.warning("forward \(target.name): entries \(start)..<\(reader.minimumIndex) were pruned before they were forwarded; skipping them")
            start = reader.minimumIndex
        }
        guard start < size else { return ([], start, size) }
        let end = min(size, start + UInt64(target.batch))
        var events: [(index: UInt64?, event: AccessEvent)] = []
        try reader.forEachEntry(in: start..<end) { i, raw in
            if case .event(let e) = try TrailEntry.decode(raw) { events.append((index: i, event: e)) }
        }
        return (events, end, size)
    }

    enum Payload { case body([UInt8], contentType: String), messages([String]) }

    func encode(_ events: [AccessEvent]) -> Payload {
        let host = target.hostname ?? ProcessInfo.processInfo.hostName
        switch (target.format, target.transport) {
        case (.ocsf, _): return .body(OCSF.ndjson(events.map { (index: nil, event: $0) }), contentType: "application/x-ndjson")
        case (.syslog5424, .http): return .body(Array(events.map { SyslogOut.rfc5424($0, hostname: host) + "\n" }.joined().utf8), contentType: "text/plain; charset=utf-8")
        case (.cef, .http): return .body(Array(events.map { SyslogOut.cef($0) + "\n" }.joined().utf8), contentType: "text/plain; charset=utf-8")
        case (.syslog5424, _): return .messages(events.map { SyslogOut.rfc5424($0, hostname: host) })
        case (.cef, _): return .messages(events.map { SyslogOut.cefSyslog($0, hostname: host) })
        }
    }

    func deliver(_ payload: Payload) async throws {
        switch (target.transport, payload) {
        case (.http, .body(let body, let contentType)):
            guard let url = target.url else { throw ForwardError("no url") }
            var req = HTTPClientRequest(url: url)
            req.method = .POST
            req.headers.add(name: "Content-Type", value: contentType)
            for (k, v) in headers { req.headers.add(name: k, value: v) }
            req.body = .bytes(ByteBuffer(bytes: body))
            let resp = try await client.execute(req, timeout: .seconds(target.timeout))
            var drained = 0
            for try await chunk in resp.body {
                drained += chunk.readableBytes
                if drained > 1 << 20 { break }
            }
            guard (200..<300).contains(resp.status.code) else { throw ForwardError("HTTP \(resp.status.code)") }
        case (.tcp, .messages(let messages)):
            guard let host = target.host, let port = target.port else { throw ForwardError("no address") }
            var bytes: [UInt8] = []
            for m in messages { bytes += SyslogOut.octetCounted(m) }
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(target.timeout))
                .connect(host: host, port: port).get()
            do {
                try await channel.writeAndFlush(ByteBuffer(bytes: bytes)).get()
            } catch {
                channel.close(promise: nil)
                throw error
            }
            try await channel.close().get()
        case (.udp, .messages(let messages)):
            guard let host = target.host, let port = target.port else { throw ForwardError("no address") }
            let to = try SocketAddress.makeAddressResolvingHost(host, port: port)
            let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .bind(host: to.protocol == .inet6 ? "::" : "0.0.0.0", port: 0).get()
            do {
                for m in messages {
                    try await channel.writeAndFlush(AddressedEnvelope(remoteAddress: to, data: ByteBuffer(bytes: Array(m.utf8)))).get()
                }
            } catch {
                channel.close(promise: nil)
                throw error
            }
            try await channel.close().get()
        default:
            throw ForwardError("format \(target.format.rawValue) cannot go over \(target.transport.rawValue)")
        }
    }
}
