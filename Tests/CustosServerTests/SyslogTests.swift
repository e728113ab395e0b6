import CustosCore
@testable import CustosServer
import CustosStore
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Testing

/// Deterministic pseudo-random numbers for the fuzz tests (SplitMix64; the seed is printed
/// in failures so a case can be replayed).
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The syslog message parser (RFC 5424, RFC 3164) and the RFC 6587 framer: fixed cases from
/// the RFCs and from rsyslog's templates, then mutated, truncated and random inputs.
@Suite struct SyslogParserTests {
    static let bom = "\u{FEFF}"
    static let json = #"{"time":"2026-01-02T03:04:05Z","type":"response"}"#

    func ok(_ s: String, sourceLocation: SourceLocation = #_sourceLocation) -> SyslogMessage? {
        switch SyslogParser.parse(Array(s.utf8)) {
        case .success(let m): return m
        case .failure(let e): Issue.record("rejected: \(e)", sourceLocation: sourceLocation); return nil
        }
    }

    func fails(_ bytes: [UInt8], _ code: SyslogParseError.Code, sourceLocation: SourceLocation = #_sourceLocation) {
        switch SyslogParser.parse(bytes) {
        case .success(let m): Issue.record("accepted: \(m)", sourceLocation: sourceLocation)
        case .failure(let e): #expect(e.code == code, "\(e)", sourceLocation: sourceLocation)
        }
    }

    @Test func rfc5424ExamplesFromTheRFC() throws {
        // RFC 5424 6.5, example 1 (with BOM) and example 3 (structured data, then MSG).
        let m1 = try #require(ok("<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \(Self.bom)'su root' failed for lonvick on /dev/pts/8"))
        #expect(m1.kind == .rfc5424 && m1.facility == 4 && m1.severity == 2)
        #expect(m1.timestamp == "2003-10-11T22:14:15.003Z" && m1.hostname == "mymachine.example.com" && m1.appName == "su")
        #expect(m1.procID == nil && m1.msgID == "ID47" && m1.structuredData.isEmpty)
        #expect(String(decoding: m1.message, as: UTF8.self) == "'su root' failed for lonvick on /dev/pts/8")

        let m3 = try #require(ok(#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] "# + Self.bom + "An application event log entry..."))
        #expect(m3.facility == 20 && m3.severity == 5)
        #expect(m3.structuredData == [SyslogSDElement(id: "exampleSDID@32473", params: [
            .init(name: "iut", value: "3"), .init(name: "eventSource", value: "Application"), .init(name: "eventID", value: "1011")])])
        #expect(String(decoding: m3.message, as: UTF8.self) == "An application event log entry...")

        // Example 4: two SD elements and no MSG.
        let m4 = try #require(ok(#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]"#))
        #expect(m4.structuredData.count == 2 && m4.structuredData[1].params == [.init(name: "class", value: "high")] && m4.message.isEmpty)

        // Example 2: every optional field NILVALUE, a time zone offset.
        let m2 = try #require(ok("<165>1 2003-08-24T05:14:15.000003-07:00 - - - - - %% It's time to make the do-nuts."))
        #expect(m2.hostname == nil && m2.appName == nil && String(decoding: m2.message, as: UTF8.self) == "%% It's time to make the do-nuts.")
        // Escapes in PARAM-VALUE.
        let m5 = try #require(ok(#"<13>1 - - - - - [x@1 a="q\"b\\c\]d" e=""] m"#))
        #expect(m5.timestamp == nil && m5.structuredData[0].params == [.init(name: "a", value: #"q"b\c]d"#), .init(name: "e", value: "")])
    }

    @Test func rsyslogTemplates() throws {
        // RSYSLOG_SyslogProtocol23Format over octet-counted TCP: the trailing LF is inside the frame.
        let m = try #require(ok("<133>1 2026-11-28T12:00:00.123456+00:00 bao-host openbao - - - \(Self.json)\n"))
        #expect(m.kind == .rfc5424 && m.appName == "openbao" && String(decoding: m.message, as: UTF8.self) == Self.json)
        // RSYSLOG_ForwardFormat (RFC 3164 header, RFC 3339 time, TAG, space).
        let f = try #require(ok("<133>2026-11-28T12:00:00.123456+00:00 bao-host openbao: \(Self.json)"))
        #expect(f.kind == .rfc3164 && f.hostname == "bao-host" && f.appName == "openbao" && String(decoding: f.message, as: UTF8.self) == Self.json)
        // RSYSLOG_TraditionalForwardFormat.
        let t = try #require(ok("<133>Nov 28 12:00:00 bao-host openbao: \(Self.json)\r\n"))
        #expect(t.timestamp == "Nov 28 12:00:00" && t.hostname == "bao-host" && String(decoding: t.message, as: UTF8.self) == Self.json)
    }

    @Test func rfc3164Variants() throws {
        let a = try #require(ok("<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8"))
        #expect(a.facility == 4 && a.severity == 2 && a.hostname == "mymachine" && a.appName == "su")
        #expect(String(decoding: a.message, as: UTF8.self) == "'su root' failed for lonvick on /dev/pts/8")
        let b = try #require(ok("<13>Nov  8 01:02:03 host vault[123]: \(Self.json)"))
        #expect(b.timestamp == "Nov  8 01:02:03" && b.appName == "vault" && b.procID == "123" && String(decoding: b.message, as: UTF8.self) == Self.json)
        // No hostname (a local sender), a year, milliseconds, [pid] without colon, no TAG.
        let c = try #require(ok("<13>Nov 28 12:00:00 openbao: \(Self.json)"))
        #expect(c.hostname == nil && c.appName == "openbao" && String(decoding: c.message, as: UTF8.self) == Self.json)
        let d = try #require(ok("<13>Nov 28 2026 12:00:00.123 host app[7] \(Self.json)"))
        #expect(d.timestamp == "Nov 28 2026 12:00:00.123" && d.hostname == "host" && d.procID == "7")
        let e = try #require(ok("<13>Nov 28 12:00:00 host \(Self.json)"))
        let e1 = try #require(ok("<13>Nov 28 12:00:00 host openbao  \(Self.json)"))
        #expect(e1.hostname == "host" && e1.appName == "openbao" && String(decoding: e1.message, as: UTF8.self) == Self.json)
        #expect(e.hostname == "host" && e.appName == nil && String(decoding: e.message, as: UTF8.self) == Self.json)
        let e2 = try #require(ok("<13>Nov 28 12:00:00 \(Self.json)"))
        #expect(e2.hostname == nil && String(decoding: e2.message, as: UTF8.self) == Self.json)
        // No timestamp; no PRI at all (RFC 3164 4.3.3: the whole frame is the content).
        let f = try #require(ok("<13>openbao: \(Self.json)"))
        #expect(f.timestamp == nil && f.appName == "openbao" && String(decoding: f.message, as: UTF8.self) == Self.json)
        let g = try #require(ok(Self.json))
        #expect(g.kind == .rfc3164 && g.facility == 1 && g.severity == 5 && String(decoding: g.message, as: UTF8.self) == Self.json)
        let h = try #require(ok("<0>\(Self.json)\u{0}"))
        #expect(h.facility == 0 && String(decoding: h.message, as: UTF8.self) == Self.json)
    }

    @Test func rejectionsNameTheRule() {
        fails([], .empty)
        fails(Array("<192>1 - - - - - -".utf8), .badPriority)
        fails(Array("<01>x".utf8), .badPriority)
        fails(Array("<1234>x".utf8), .badPriority)
        fails(Array("<13 x".utf8), .badPriority)
        fails(Array("<>x".utf8), .badPriority)
        fails(Array("<13>2 - - - - - -".utf8), .badVersion)
        fails(Array("<13>1x - - - - -".utf8), .badVersion)
        fails(Array("<13>1 2026-13-01T00:00:00Z h a - - -".utf8), .badTimestamp)
        fails(Array("<13>1 2026-01-01T00:00:00 h a - - -".utf8), .badTimestamp)
        fails(Array("<13>1 yesterday h a - - -".utf8), .badTimestamp)
        fails(Array("<13>1 - h a - -".utf8), .badHeader)
        fails(Array("<13>1 -  a - - -".utf8), .badHeader)
        fails(Array("<13>1 - \(String(repeating: "h", count: 256)) a - - -".utf8), .badHeader)
        fails(Array("<13>1 - - - - - [x a=b]".utf8), .badStructuredData)
        fails(Array("<13>1 - - - - - [x a=\"b\"".utf8), .badStructuredData)
        fails(Array("<13>1 - - - - - [x a=\"b".utf8), .badStructuredData)
        fails(Array("<13>1 - - - - - x".utf8), .badStructuredData)
        fails(Array("<13>1 - - - - - -x".utf8), .badStructuredData)
        fails(Array("<13>1 - - - - - - ".utf8) + [0xFF, 0xFE], .invalidUTF8)
        fails(Array("<13>1 - - - - - [x a=\"".utf8) + [0xC0, 0x80] + Array("\"]".utf8), .invalidUTF8)
        fails(Array("<13>Nov 28 12:00:00 h a: ".utf8) + [0xED, 0xA0, 0x80], .invalidUTF8)
        fails([0x7B, 0x80], .invalidUTF8)
        // The description names the rule and the offset, never the content.
        if case .failure(let e) = SyslogParser.parse(Array("<13>1 - - - - - [x a=SECRET]".utf8)) {
            #expect(e.description.hasPrefix("bad STRUCTURED-DATA at byte "), "\(e)")
            #expect(!e.description.contains("SECRET"))
        }
    }

    static let samples: [[UInt8]] = [
        "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \(bom)'su root' failed",
        #"<165>1 2003-10-11T22:14:15.003Z h evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="App"][p@1 c="h\]i"] m"#,
        "<133>1 2026-11-28T12:00:00.123456+00:00 bao-host openbao - - - \(json)\n",
        "<133>Nov 28 12:00:00 bao-host openbao[12]: \(json)",
        "<133>2026-11-28T12:00:00.123+01:00 bao-host openbao: \(json)",
        json,
    ].map { Array($0.utf8) }

    /// Mutations (byte flips, insertions, deletions, truncations, splices) of valid messages
    /// and random bytes: the parser never traps, every rejection has a reason, and every
    /// accepted message has sane fields and UTF-8 content.
    @Test func fuzzNeverCrashesAndRejectsWithReasons() {
        var rng = SeededRandom(state: 0x5EED_5150_1065)
        let interesting: [UInt8] = Array("<>[]=\" \\-:0123456789T.Z+\n\r\u{0}".utf8) + [0xEF, 0xBB, 0xBF, 0xFF, 0xC3, 0x80]
        var accepted = 0, rejected = 0
        for i in 0..<30_000 {
            var b: [UInt8]
            if i % 5 == 4 {
                b = (0..<Int.random(in: 0...80, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            } else {
                b = Self.samples[Int.random(in: 0..<Self.samples.count, using: &rng)]
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    let pos = b.isEmpty ? 0 : Int.random(in: 0..<b.count, using: &rng)
                    let byte = Bool.random(using: &rng) ? interesting.randomElement(using: &rng)! : UInt8.random(in: 0...255, using: &rng)
                    switch Int.random(in: 0..<5, using: &rng) {
                    case 0 where !b.isEmpty: b[pos] = byte
                    case 1: b.insert(byte, at: pos)
                    case 2 where !b.isEmpty: b.remove(at: pos)
                    case 3: b = Array(b.prefix(pos))
                    default:
                        let other = Self.samples[Int.random(in: 0..<Self.samples.count, using: &rng)]
                        b = Array(b.prefix(pos)) + other.suffix(Int.random(in: 0...other.count, using: &rng))
                    }
                }
            }
            switch SyslogParser.parse(b) {
            case .success(let m):
                accepted += 1
                #expect((0...23).contains(m.facility) && (0...7).contains(m.severity), "case \(i)")
                #expect(String(validating: m.message, as: UTF8.self) != nil, "case \(i)")
                #expect(m.message.count <= b.count, "case \(i)")
            case .failure(let e):
                rejected += 1
                #expect(!e.detail.isEmpty && e.offset >= 0 && e.offset <= b.count, "case \(i): \(e)")
            }
        }
        // Both outcomes are exercised.
        #expect(accepted > 1000 && rejected > 1000, "accepted \(accepted), rejected \(rejected)")
    }
}

@Suite struct SyslogFramerTests {
    func frames(_ chunks: [[UInt8]], max: Int = 64) -> ([SyslogFramer.Frame], SyslogFramer.Failure?) {
        var f = SyslogFramer(maxMessage: max)
        var out: [SyslogFramer.Frame] = []
        for c in chunks {
            var failure: SyslogFramer.Failure?
            c.withUnsafeBytes { raw in
                do throws(SyslogFramer.Failure) { try f.feed(raw) { out.append($0) } } catch { failure = error }
            }
            if let failure { return (out, failure) }
        }
        let end = f.finish { out.append($0) }
        return (out, end)
    }

    func msg(_ s: String) -> SyslogFramer.Frame { .message(Array(s.utf8)) }

    @Test func autoDetectsPerFrameAndAcceptsTrailers() {
        let stream = "5 hello\n\r\u{0}world\n5 a\nb c\u{0}crlf\r\n3 xyz3 abc\nlast"
        let (got, end) = frames([Array(stream.utf8)])
        #expect(got == [msg("hello"), msg("world"), msg("a\nb c"), msg("crlf"), msg("xyz"), msg("abc"), msg("last")])
        #expect(end == nil)
        // The same stream cut at every position gives the same frames.
        let bytes = Array(stream.utf8)
        for cut in 0...bytes.count {
            let (g, e) = frames([Array(bytes[..<cut]), Array(bytes[cut...])])
            #expect(g == got && e == nil, "cut at \(cut)")
        }
        // One byte at a time.
        #expect(frames(bytes.map { [$0] }).0 == got)
    }

    @Test func oversizedFramesAreSkippedInStep() {
        // An octet-counted frame over the limit is skipped by its count; a long line up to its LF.
        let long = String(repeating: "x", count: 100)
        let (got, end) = frames([Array("100 \(long)2 ok\(long)\nnext\n".utf8)], max: 64)
        #expect(got == [.tooLarge(100), msg("ok"), .tooLarge(nil), msg("next")])
        #expect(end == nil)
        let (g2, _) = frames(Array("\(long)\(long)\nnext\n".utf8).chunks(7), max: 64)
        #expect(g2 == [.tooLarge(nil), msg("next")])
        // Exactly the limit is fine.
        let exact = String(repeating: "y", count: 64)
        #expect(frames([Array("64 \(exact)\(exact)\n".utf8)], max: 64).0 == [msg(exact), msg(exact)])
    }

    @Test func badOctetCountsAndTruncationAreReported() {
        #expect(frames([Array("05 hello".utf8)]).1?.reason == "octet count starts with 0")
        #expect(frames([Array("1234567890 x".utf8)]).1?.reason == "octet count longer than 9 digits")
        #expect(frames([Array("12x hello".utf8)]).1?.reason == "octet count not followed by a space")
        let (g, e) = frames([Array("3 abc10 abc".utf8)])
        #expect(g == [msg("abc")] && e?.reason.contains("7 bytes before the end") == true)
        #expect(frames([Array("3 abc12".utf8)]).1?.reason == "the connection ended inside an octet count")
    }

    /// Random streams in random chunks: no trap, frames never over the limit, and feeding the
    /// same bytes in other chunks gives the same frames.
    @Test func fuzzChunkingIsInvisible() {
        var rng = SeededRandom(state: 0xF4A3_E5)
        let alphabet: [UInt8] = Array("0123456789 \n\r\u{0}ab<>".utf8)
        for i in 0..<3000 {
            let n = Int.random(in: 0...300, using: &rng)
            let bytes = (0..<n).map { _ in Bool.random(using: &rng) ? alphabet.randomElement(using: &rng)! : UInt8.random(in: 0...255, using: &rng) }
            let whole = frames([bytes], max: 32)
            var chunks: [[UInt8]] = []
            var p = 0
            while p < bytes.count { let k = Int.random(in: 1...20, using: &rng); chunks.append(Array(bytes[p..<min(p + k, bytes.count)])); p += k }
            let split = frames(chunks, max: 32)
            #expect(whole.0 == split.0 && whole.1 == split.1, "case \(i)")
            for f in whole.0 { if case .message(let m) = f { #expect(m.count <= 32, "case \(i)") } }
        }
    }
}

extension Array {
    func chunks(_ n: Int) -> [[Element]] { stride(from: 0, to: count, by: n).map { Array(self[$0..<Swift.min($0 + n, count)]) } }
}

@Suite struct SyslogPayloadTests {
    @Test func decodesVaultAndCustosPayloads() throws {
        let lines = vaultPair(id: "p1", path: "secret/data/a", name: "alice").split(separator: "\n").map(String.init)
        var d = SyslogPayloadDecoder(format: .auto, instance: "sys", maxRecordBytes: 1 << 20)
        var events: [AccessEvent] = [], rejections: [SyslogPayloadDecoder.Rejection] = []
        d.decode(frame: Array("<110>1 2026-01-02T03:04:05Z h openbao - - - \(lines[0])\n".utf8), events: &events, rejections: &rejections)
        #expect(events.isEmpty && rejections.isEmpty)  // the request waits for its response
        d.decode(frame: Array("<110>Jan  2 03:04:05 h openbao:  \(lines[1])".utf8), events: &events, rejections: &rejections)
        #expect(events.count == 1 && rejections.isEmpty && events[0].identity.name == "alice" && events[0].source.instance == "sys")
        let e = AccessEvent(id: "ext-1", time: EventTime(rfc3339: "2026-01-02T03:04:05Z")!, source: .init(kind: "aws", instance: "acct"),
                            action: .read, outcome: .success, secret: .init(path: "arn:aws:x"), identity: .init(name: "svc", kind: .service))
        d.decode(frame: Array("<13>1 - - - - - - ".utf8) + e.canonicalJSON(), events: &events, rejections: &rejections)
        #expect(events.count == 2 && events[1] == e)
        for (frame, expected) in [("<13>1 - - - - - -", "empty MSG"), ("<13>1 - - - - - - {nope", "invalid JSON"), ("<13>2 - - - - - - {}", "not a syslog message: bad VERSION")] {
            rejections = []
            d.decode(frame: Array(frame.utf8), events: &events, rejections: &rejections)
            #expect(rejections.count == 1 && rejections[0].reason.contains(expected), "\(frame): \(rejections)")
        }
        var small = SyslogPayloadDecoder(format: .openbao, instance: "sys", maxRecordBytes: 16)
        rejections = []
        small.decode(frame: Array("<13>1 - - - - - - \(lines[1])".utf8), events: &events, rejections: &rejections)
        #expect(rejections == [.record("record longer than 16 bytes (limits.max_line_bytes)")])
        // A request never answered becomes an error event at the end of the input.
        var f = SyslogPayloadDecoder(format: .openbao, instance: "sys", maxRecordBytes: 1 << 20)
        events = []
        f.decode(frame: Array("<13>1 - - - - - - \(lines[0])".utf8), events: &events, rejections: &rejections)
        f.finish(events: &events, rejections: &rejections)
        #expect(events.count == 1 && events[0].outcome == .error && events[0].source.kind == "openbao")
    }
}

/// The listeners over real loopback sockets.
@Suite struct SyslogListenerTests {
    final class Box<T: Sendable>: @unchecked Sendable {
        let lock = NSLock(); var value: T?
        func set(_ v: T) { lock.withLock { value = v } }
        func get() -> T? { lock.withLock { value } }
    }

    static func connect(_ port: Int) async throws -> any Channel {
        try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: port).get()
    }

    static func send(_ port: Int, _ chunks: [[UInt8]]) async throws {
        let channel = try await connect(port)
        for c in chunks { try await channel.writeAndFlush(ByteBuffer(bytes: c)).get() }
        try await channel.close().get()
    }

    static func octets(_ s: String) -> [UInt8] { Array("\(s.utf8.count) \(s)".utf8) }

    static func waitFor(_ state: ServeState, _ needle: String, _ timeout: Int = 1000) async throws -> Bool {
        for _ in 0..<timeout { if state.metrics.exposition().contains(needle) { return true }; try await Task.sleep(for: .milliseconds(10)) }
        return false
    }

    /// Runs `body` with the given listeners bound on free loopback ports, then stops them gracefully.
    static func withListeners(_ state: ServeState, tcp: Bool = true, udp: Bool = false, maxConnections: Int = 64, frameTimeout: Duration = .seconds(60),
                              maxMessageBytes: Int = 4096, _ body: (Int?, Int?) async throws -> Void) async throws {
        let tcpPort = Box<Int>(), udpPort = Box<Int>()
        var services: [any Service] = []
        let logger = Logger(label: "test")
        if tcp {
            services.append(SyslogTCPListener(state: state, host: "127.0.0.1", port: 0, format: .auto, instance: "sys", maxMessageBytes: maxMessageBytes,
                                              maxConnections: maxConnections, frameTimeout: frameTimeout, logger: logger, onBound: { tcpPort.set($0) }))
        }
        if udp {
            services.append(SyslogUDPListener(state: state, host: "127.0.0.1", port: 0, format: .auto, instance: "sys", maxMessageBytes: maxMessageBytes,
                                              logger: logger, onBound: { udpPort.set($0) }))
        }
        let group = ServiceGroup(services: services, gracefulShutdownSignals: [], logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            for _ in 0..<3000 where (tcp && tcpPort.get() == nil) || (udp && udpPort.get() == nil) { try await Task.sleep(for: .milliseconds(10)) }
            try await body(tcpPort.get(), udpPort.get())
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    @Test func tcpBothFramingsAndBadInputOnOneConnection() async throws {
        let dir = TempDir()
        let (state, _) = try ServeTests.make(dir, configure: { $0.limits.maxLineBytes = 2048 })
        let l1 = vaultPair(id: "t1", path: "secret/data/a", name: "alice").split(separator: "\n").map(String.init)
        let l2 = vaultPair(id: "t2", path: "secret/data/b", name: "bob", error: "permission denied").split(separator: "\n").map(String.init)
        let l3 = vaultPair(id: "t3", path: "secret/data/c", name: "carol").split(separator: "\n").map(String.init)
        try await Self.withListeners(state) { port, _ in
            let p = try #require(port)
            var stream: [UInt8] = []
            // RFC 5424 octet-counted (rsyslog: LF inside the count), RFC 3164 newline-framed with CRLF,
            stream += Self.octets("<134>1 2026-01-02T03:04:05.000001+00:00 h openbao - - - \(l1[0])\n")
            stream += Self.octets("<134>1 2026-01-02T03:04:05.000001+00:00 h openbao - - [meta@1 x=\"y\"] \u{FEFF}\(l1[1])\n")
            stream += Array("<134>Jan  2 03:04:05 h openbao: \(l2[0])\r\n<134>Jan  2 03:04:05 h openbao: \(l2[1])\n".utf8)
            // then an invalid syslog line, invalid UTF-8, a frame over the limit, a non-JSON MSG, and a good NUL-terminated pair.
            stream += Array("<999>bad\n".utf8) + Array("<13>1 - - - - - - ".utf8) + [0xFF, 0x0A]
            stream += Self.octets("<13>1 - - - - - - " + String(repeating: "z", count: 5000))
            stream += Array("<13>1 - - - - - - not json\n".utf8)
            stream += Array("<134>Jan  2 03:04:05 h openbao: \(l3[0])\u{0}<134>Jan  2 03:04:05 h openbao: \(l3[1])\u{0}".utf8)
            // Cut into 997-byte writes: frames and octet counts split at arbitrary points.
            try await Self.send(p, stream.chunks(997))
            #expect(try await Self.waitFor(state, "custos_events_accepted_total{source=\"syslog_tcp\"} 3"))
            let m = state.metrics.exposition()
            #expect(m.contains("custos_events_rejected_total{source=\"syslog_tcp\"} 4"), "\(m)")
            #expect(m.contains("custos_input_errors_total{source=\"syslog_tcp\",reason=\"invalid_syslog\"} 2"))
            #expect(m.contains("custos_input_errors_total{source=\"syslog_tcp\",reason=\"too_large\"} 1"))
            #expect(state.store.trail.size == 3)
        }
        let events = try EventReader(directory: dir.path).events(EventQuery())
        #expect(Set(events.map { $0.event.identity.name ?? "" }) == ["alice", "bob", "carol"])
        #expect(events.allSatisfy { $0.event.source.instance == "sys" && $0.event.source.kind == "vault" })
    }

    @Test func badFramesCloseOnlyTheirConnection() async throws {
        let dir = TempDir()
        let (state, _) = try ServeTests.make(dir)
        try await Self.withListeners(state, frameTimeout: .seconds(2)) { port, _ in
            let p = try #require(port)
            // A malformed octet count: the connection is closed by the server.
            let bad = try await Self.connect(p)
            try await bad.writeAndFlush(ByteBuffer(string: "12x <13>1 - - - - - - x")).get()
            try await bad.closeFuture.get()
            #expect(try await Self.waitFor(state, "reason=\"bad_frame\"} 1"))
            // A frame cut by the end of the connection.
            try await Self.send(p, [Array("40 <13>1 - - - - - - short".utf8)])
            #expect(try await Self.waitFor(state, "reason=\"truncated_frame\"} 1"))
            // A slow client: half a frame, then nothing: closed after frame_timeout.
            let slow = try await Self.connect(p)
            try await slow.writeAndFlush(ByteBuffer(string: "<13>1 - - - - - - {\"partial\":")).get()
            try await slow.closeFuture.get()
            #expect(try await Self.waitFor(state, "reason=\"frame_timeout\"} 1"))
            // A client trickling one byte every 100 ms would take about 10 s for its frame: closed after 2 s.
            let trickle = try await Self.connect(p)
            let start = ContinuousClock.now
            for b in Array("<13>1 - - - - - - {\"a\":\"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\"}".utf8) {
                guard trickle.isActive else { break }
                try? await trickle.writeAndFlush(ByteBuffer(bytes: [b])).get()
                try await Task.sleep(for: .milliseconds(100))
            }
            try await trickle.closeFuture.get()
            #expect(ContinuousClock.now - start < .seconds(8))  // the whole frame would take about 10 s
            #expect(try await Self.waitFor(state, "reason=\"frame_timeout\"} 2"))
            // An idle connection between frames stays open; a good message still arrives.
            let idle = try await Self.connect(p)
            try await Task.sleep(for: .milliseconds(2500))
            #expect(idle.isActive)
            let pair = vaultPair(id: "g1", path: "secret/data/g", name: "gina").split(separator: "\n")
            try await idle.writeAndFlush(ByteBuffer(bytes: pair.flatMap { Self.octets("<13>1 - - - - - - \($0)") })).get()
            try await idle.close().get()
            #expect(try await Self.waitFor(state, "custos_events_accepted_total{source=\"syslog_tcp\"} 1"))
        }
        #expect(state.store.trail.size == 1)
    }

    /// Random and mutated byte streams on many connections at once: every connection's
    /// trouble stays its own, and a good message afterwards is accepted.
    @Test(.timeLimit(.minutes(2))) func randomStreamsLeaveTheServerWorking() async throws {
        let dir = TempDir()
        let (state, _) = try ServeTests.make(dir)
        try await Self.withListeners(state, frameTimeout: .seconds(2)) { port, _ in
            let p = try #require(port)
            var rng = SeededRandom(state: 0xBAD_5EED)
            var streams: [[UInt8]] = []
            for i in 0..<24 {
                var b: [UInt8] = []
                while b.count < Int.random(in: 0...20_000, using: &rng) {
                    if i % 2 == 0 {
                        b += (0..<Int.random(in: 1...500, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                    } else {
                        var s = SyslogParserTests.samples.randomElement(using: &rng)!
                        if !s.isEmpty { s[Int.random(in: 0..<s.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
                        b += Bool.random(using: &rng) ? Self.octets(String(decoding: s, as: UTF8.self)) : s + [0x0A]
                    }
                }
                streams.append(b)
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for s in streams {
                    group.addTask { try? await Self.send(p, s.chunks(1000)) }
                }
                try await group.waitForAll()
            }
            let pair = vaultPair(id: "ok1", path: "secret/data/ok", name: "olga").split(separator: "\n")
            try await Self.send(p, [pair.flatMap { Self.octets("<13>1 - - - - - - \($0)\n") }])
            var found = false
            for _ in 0..<3000 where !found {
                found = try EventReader(directory: dir.path).events(EventQuery()).contains { $0.event.identity.name == "olga" }
                if !found { try await Task.sleep(for: .milliseconds(10)) }
            }
            #expect(found, "the good message after the random streams was not accepted")
        }
        // Some mutated samples are still valid records (the sample set includes a bare Vault
        // response line), so more than the good message may have been stored.
        #expect(state.store.trail.size >= 1)
    }

    /// A connection reset by the sender (RST): its request still waiting for a response is
    /// recorded (outcome error), as after a clean close.
    @Test func resetConnectionStillEndsCleanly() async throws {
        let dir = TempDir()
        let (state, _) = try ServeTests.make(dir)
        try await Self.withListeners(state) { port, _ in
            let c = try await Self.connect(try #require(port))
            let request = vaultPair(id: "rst1", path: "secret/data/r", name: "rita").split(separator: "\n")[0]
            try await c.writeAndFlush(ByteBuffer(bytes: Self.octets("<13>1 - - - - - - \(request)"))).get()
            try await Task.sleep(for: .milliseconds(200))
            try await (c as! any SocketOptionProvider).setSoLinger(linger(l_onoff: 1, l_linger: 0)).get()
            try await c.close().get()
            #expect(try await Self.waitFor(state, "custos_events_accepted_total{source=\"syslog_tcp\"} 1"))
        }
        let events = try EventReader(directory: dir.path).events(EventQuery())
        #expect(events.count == 1 && events.first?.event.outcome == .error && events.first?.event.identity.name == "rita")
    }

    @Test func connectionLimitRefusesExtraConnections() async throws {
        let dir = TempDir()
        let (state, _) = try ServeTests.make(dir)
        try await Self.withListeners(state, maxConnections: 1) { port, _ in
            let p = try #require(port)
            let first = try await Self.connect(p)
            try await first.writeAndFlush(ByteBuffer(string: "<13>1 - - - - - - not json\n")).get()
            #expect(try await Self.waitFor(state, "custos_events_rejected_total{source=\"syslog_tcp\"} 1"))
            let second = try await Self.connect(p)
            try await second.closeFuture.get()  // refused: closed by the server
            #expect(try await Self.waitFor(state, "reason=\"connection_limit\"} 1"))
            #expect(first.isActive)
            try await first.close().get()
        }
    }

    /// A sender that never disconnects (rsyslog keeps its connection) does not hold up a
    /// graceful shutdown; what it sent is committed.
    @Test(.timeLimit(.minutes(1))) func shutdownClosesOpenConnections() async throws {
        let dir = TempDir()
        let (state, _) = try ServeTests.make(dir)
        let box = Box<any Channel>()
        try await Self.withListeners(state) { port, _ in
            let c = try await Self.connect(try #require(port))
            box.set(c)
            let pair = vaultPair(id: "s1", path: "secret/data/s", name: "sam").split(separator: "\n")
            try await c.writeAndFlush(ByteBuffer(bytes: pair.flatMap { Array("<13>1 - - - - - - \($0)\n".utf8) })).get()
            #expect(try await Self.waitFor(state, "custos_events_accepted_total{source=\"syslog_tcp\"} 1"))
        }
        let c = try #require(box.get())
        try await c.closeFuture.get()
        #expect(state.store.trail.size == 1)
    }

    /// While a commit is pending the connection is not read: the sender's writes stall (TCP
    /// flow control) until the commit completes, then everything is read and nothing is lost.
    @Test(.timeLimit(.minutes(2))) func tcpStopsReadingWhileTheCommitIsPending() async throws {
        let dir = TempDir()
        let gate = DispatchSemaphore(value: 0)
        let (state, _) = try ServeTests.make(dir, beforeCommit: { _ in gate.wait() })
        try await Self.withListeners(state, maxMessageBytes: 8192) { port, _ in
            let p = try #require(port)
            let c = try await Self.connect(p)
            let pair = vaultPair(id: "w1", path: "secret/data/w", name: "wes").split(separator: "\n")
            try await c.writeAndFlush(ByteBuffer(bytes: pair.flatMap { Self.octets("<13>1 - - - - - - \($0)\n") })).get()
            for _ in 0..<3000 where !state.metrics.exposition().contains("custos_queue_events 1") { try await Task.sleep(for: .milliseconds(10)) }
            #expect(state.metrics.exposition().contains("custos_queue_events 1"), "the first event waits for its commit")
            // 48 MiB of (rejected) frames: far more than the socket buffers hold.
            let junk = Self.octets("<13>1 - - - - - - " + String(repeating: "x", count: 4000))
            let frames = 48 << 20 / junk.count
            let block = Array((0..<256).map { _ in junk }.joined())
            let written = Box<Bool>()
            let writer = Task {
                var sent = 0
                while sent < frames {
                    let n = min(256, frames - sent)
                    try await c.writeAndFlush(ByteBuffer(bytes: n == 256 ? block : Array(block.prefix(n * junk.count)))).get()
                    sent += n
                }
                written.set(true)
            }
            try await Task.sleep(for: .seconds(1))
            #expect(written.get() == nil, "all writes completed while the listener should not be reading")
            #expect(state.metrics.exposition().contains("custos_events_rejected_total{source=\"syslog_tcp\"} 0"))
            for _ in 0..<1000 { gate.signal() }  // this commit and any later one
            try await writer.value
            #expect(written.get() == true)
            try await c.close().get()
            #expect(try await Self.waitFor(state, "custos_events_rejected_total{source=\"syslog_tcp\"} \(frames)", 6000))
            #expect(state.metrics.exposition().contains("custos_events_accepted_total{source=\"syslog_tcp\"} 1"))
        }
    }

    /// A slow trail (every commit takes 50 ms more): the listener stops reading while a commit is
    /// pending, the sender's writes back up, and every event still arrives exactly once.
    @Test func slowTrailAppliesBackpressureWithoutLoss() async throws {
        let dir = TempDir()
        let (state, _) = try ServeTests.make(dir, beforeCommit: { _ in Thread.sleep(forTimeInterval: 0.05) })
        try await Self.withListeners(state) { port, _ in
            let p = try #require(port)
            var stream: [UInt8] = []
            for i in 0..<400 {
                for line in vaultPair(id: "b\(i)", path: "secret/data/b\(i)", name: "u\(i)").split(separator: "\n") {
                    stream += Self.octets("<13>1 - - - - - - \(line)\n")
                }
            }
            try await Self.send(p, stream.chunks(4096))
            #expect(try await Self.waitFor(state, "custos_events_accepted_total{source=\"syslog_tcp\"} 400", 3000))
        }
        #expect(state.store.trail.size == 400)
        #expect(state.committer.commits > 1)
    }

    /// UDP cannot slow a sender down: when `limits.max_pending_events` events wait for a
    /// commit, further datagrams are dropped and counted.
    @Test(.timeLimit(.minutes(1))) func udpDropsAndCountsWhenTheQueueIsFull() async throws {
        let dir = TempDir()
        let gate = DispatchSemaphore(value: 0)
        let (state, _) = try ServeTests.make(dir, configure: { $0.limits.maxPendingEvents = 2 }, beforeCommit: { _ in gate.wait() })
        try await Self.withListeners(state, tcp: false, udp: true) { _, port in
            let p = try #require(port)
            let client = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
            let to = try SocketAddress(ipAddress: "127.0.0.1", port: p)
            func send(_ i: Int) async throws {
                let response = vaultPair(id: "q\(i)", path: "secret/data/q", name: "q\(i)").split(separator: "\n")[1]
                try await client.writeAndFlush(AddressedEnvelope(remoteAddress: to, data: ByteBuffer(string: "<13>1 - - - - - - \(response)"))).get()
            }
            try await send(1)
            #expect(try await Self.waitFor(state, "custos_queue_events 1"))  // its commit is pending
            try await send(2)
            try await Task.sleep(for: .milliseconds(200))
            try await send(3)
            #expect(try await Self.waitFor(state, "custos_input_errors_total{source=\"syslog_udp\",reason=\"overloaded\"} 1"))
            for _ in 0..<1000 { gate.signal() }
            #expect(try await Self.waitFor(state, "custos_events_accepted_total{source=\"syslog_udp\"} 2"))
            #expect(state.metrics.exposition().contains("custos_events_rejected_total{source=\"syslog_udp\"} 1"))
            try await client.close().get()
        }
        #expect(state.store.trail.size == 2)
    }

    @Test func udpDatagrams() async throws {
        let dir = TempDir()
        let (state, _) = try ServeTests.make(dir)
        try await Self.withListeners(state, tcp: false, udp: true) { _, port in
            let p = try #require(port)
            let client = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
            let to = try SocketAddress(ipAddress: "127.0.0.1", port: p)
            func send(_ b: [UInt8]) async throws { try await client.writeAndFlush(AddressedEnvelope(remoteAddress: to, data: ByteBuffer(bytes: b))).get() }
            // A request and its response in separate datagrams pair up; a response alone is an event.
            let a = vaultPair(id: "u1", path: "secret/data/u", name: "uma").split(separator: "\n")
            try await send(Array("<13>1 2026-01-02T03:04:05Z h openbao - - - \(a[0])".utf8))
            try await send(Array("<13>Jan  2 03:04:05 h openbao: \(a[1])\n".utf8))
            let b = vaultPair(id: "u2", path: "secret/data/v", name: "vic").split(separator: "\n")
            try await send(Array("<13>1 - - - - - - \(b[1])".utf8))
            try await send(Array("garbage".utf8))
            try await send(Array("<13>1 - - - - - - ".utf8) + Array(repeating: 0x78, count: 5000))
            #expect(try await Self.waitFor(state, "custos_events_accepted_total{source=\"syslog_udp\"} 2"))
            #expect(try await Self.waitFor(state, "custos_events_rejected_total{source=\"syslog_udp\"} 2"))
            #expect(state.metrics.exposition().contains("custos_input_errors_total{source=\"syslog_udp\",reason=\"too_large\"} 1"))
            try await client.close().get()
        }
        #expect(state.store.trail.size == 2)
    }
}

@Suite struct SyslogConfigTests {
    @Test func parsesTheSectionAndNamesProblemsByKeyPath() throws {
        let c = try ServeConfig.parse(yaml: """
            syslog: { tcp: "127.0.0.1:6514", udp: "[::1]:6515", format: openbao, instance: bao-1, max_message_bytes: 65536, max_connections: 8, frame_timeout: 2m }
            """, baseDirectory: ".")
        let s = try #require(c.syslog)
        #expect(s.tcp == .init(host: "127.0.0.1", port: 6514) && s.udp == .init(host: "::1", port: 6515))
        #expect(s.format == .openbao && s.instance == "bao-1" && s.maxMessageBytes == 65536 && s.maxConnections == 8 && s.frameTimeout == 120)
        let d = try #require(try ServeConfig.parse(yaml: "syslog: { udp: 0.0.0.0:514 }", baseDirectory: ".").syslog)
        #expect(d.tcp == nil && d.format == .auto && d.instance == "default" && d.maxMessageBytes == ServeConfig.Syslog.defaultMaxMessageBytes)
        #expect(try ServeConfig.parse(yaml: "data: x", baseDirectory: ".").syslog == nil)

        func problems(_ yaml: String) -> [String] {
            do { _ = try ServeConfig.parse(yaml: yaml, baseDirectory: "."); return [] } catch { return error.problems.map { "\($0.path): \($0.message)" } }
        }
        let p = problems("syslog: { tcp: nowhere, udp: \"1.2.3.4:0\", format: xml, instance: \"\", max_message_bytes: 10, max_connections: 0, frame_timeout: 5, colour: red }")
        for key in ["syslog.tcp", "syslog.udp", "syslog.format", "syslog.instance", "syslog.max_message_bytes", "syslog.max_connections", "syslog.frame_timeout", "syslog.colour"] {
            #expect(p.contains { $0.hasPrefix(key + ":") }, "\(key) in \(p)")
        }
        #expect(p.first { $0.hasPrefix("syslog.format:") }?.contains("openbao") == true)
        #expect(problems("syslog: { format: auto }") == ["syslog: needs tcp: HOST:PORT and/or udp: HOST:PORT"])
    }
}
