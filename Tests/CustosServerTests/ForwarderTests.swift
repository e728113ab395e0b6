import CustosCore
import CustosServer
import CustosTrail
import Foundation
import Logging
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `forward:` targets of `custos serve` against real local receivers (a python3 process): an
/// HTTP SIEM endpoint that fails the first requests (retries with backoff, nothing dropped,
/// the cursor survives a restart), and syslog receivers over TCP (octet counting) and UDP.
@Suite(.serialized) struct ForwarderTests {
    /// HTTP: answers the next status of STATUSES (last one repeats) and records each request
    /// (body, headers, status) as OUT/NNNN.json. TCP: records each connection's bytes as
    /// OUT/NNNN.tcp. UDP: each datagram as OUT/NNNN.udp. Writes its port to OUT/port.
    static let receiver = #"""
        import base64, json, os, socket, sys, threading, time, signal
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        mode, out = sys.argv[1], sys.argv[2]
        statuses = [int(s) for s in (sys.argv[3] if len(sys.argv) > 3 else "200").split(",")]
        lock = threading.Lock(); count = [0]
        def save(ext, data):
            with lock:
                n = count[0]; count[0] += 1
            tmp = os.path.join(out, ".%04d.tmp" % n)
            with open(tmp, "wb") as f: f.write(data)
            os.rename(tmp, os.path.join(out, "%04d.%s" % (n, ext)))
            return n
        def port(p):
            with open(os.path.join(out, ".port"), "w") as f: f.write(str(p))
            os.rename(os.path.join(out, ".port"), os.path.join(out, "port"))
        def watchdog(parent):
            deadline = time.time() + 120
            while time.time() < deadline and os.getppid() == parent: time.sleep(0.5)
            os._exit(0)
        threading.Thread(target=watchdog, args=(os.getppid(),), daemon=True).start()
        if mode == "http":
            class H(BaseHTTPRequestHandler):
                protocol_version = "HTTP/1.0"
                def do_POST(self):
                    body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                    with lock: n = count[0]
                    status = statuses[min(n, len(statuses) - 1)]
                    save("json", json.dumps({"status": status, "headers": {k.lower(): v for k, v in self.headers.items()},
                                             "body_b64": base64.b64encode(body).decode()}).encode())
                    self.send_response(status); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"ok")
                def log_message(self, *a): pass
            s = ThreadingHTTPServer(("127.0.0.1", 0), H); port(s.server_address[1]); s.serve_forever()
        elif mode == "tcp":
            s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16); port(s.getsockname()[1])
            while True:
                c, _ = s.accept(); data = b""
                while True:
                    b = c.recv(65536)
                    if not b: break
                    data += b
                c.close(); save("tcp", data)
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); port(s.getsockname()[1])
            while True:
                d, _ = s.recvfrom(65536); save("udp", d)
        """#

    struct Receiver {
        let process: Process
        let dir: URL
        let port: Int
        func files(_ ext: String) -> [URL] {
            ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { $0.hasSuffix("." + ext) }.sorted()
                .map { dir.appendingPathComponent($0) }
        }
        func stop() { if process.isRunning { kill(process.processIdentifier, SIGKILL) }; process.waitUntilExit() }
    }

    static func startReceiver(_ mode: String, statuses: String = "200", in base: URL) async throws -> Receiver {
        let dir = base.appendingPathComponent("recv-\(mode)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let script = base.appendingPathComponent("siem_receiver.py")
        try receiver.write(to: script, atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", script.path, mode, dir.path, statuses]
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        for _ in 0..<200 {
            if let s = try? String(contentsOf: dir.appendingPathComponent("port"), encoding: .utf8), let port = Int(s) {
                return Receiver(process: p, dir: dir, port: port)
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        kill(p.processIdentifier, SIGKILL)
        throw ForwardError("the \(mode) receiver did not start")
    }

    static func tempDir() throws -> URL {
        let u = FileManager.default.temporaryDirectory.appendingPathComponent("custos-forward-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
        return u
    }

    static func events(_ range: Range<Int>) -> [AccessEvent] {
        range.map { i in
            AccessEvent(id: String(repeating: "0", count: 24) + String(0xC0FF_EE00 + i, radix: 16), time: EventTime(rfc3339: "2026-11-27T23:18:4\(i % 10).5Z")!,
                        source: .init(kind: "openbao", instance: "dev"), action: i == 1 ? .login : .read,
                        outcome: i % 3 == 2 ? .denied : .success, reason: i % 3 == 2 ? "permission denied" : nil,
                        secret: i == 1 ? nil : .init(store: "secret/", path: "secret/data/prod/app-\(i)", environment: "prod"),
                        identity: .init(id: "ent-\(i)", name: i % 2 == 0 ? "alice" : "svc \"quoted\"", kind: i % 2 == 0 ? .human : .root),
                        origin: .init(ip: "10.0.0.\(i + 1)", port: 40000 + i), requestID: "req-\(i)")
        }
    }

    /// Waits until `target`'s cursor reaches `n` (at most `seconds`).
    static func waitForCursor(_ stats: ForwardStats, _ name: String, _ n: UInt64, seconds: Int = 30) async throws -> Bool {
        for _ in 0..<(seconds * 20) {
            if stats.snapshot(name).cursor >= n { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    static func forwarder(_ t: ForwardTarget, _ store: DataStore, _ stats: ForwardStats, env: [String: String] = [:]) throws -> Forwarder {
        try Forwarder(target: t, layout: store.layout, verifier: try NoteVerifier(vkey: store.trail.checkpointVerifierKey), stats: stats,
                      logger: Logger(label: "forward-test"), poll: .milliseconds(20), environment: env)
    }

    /// The OCSF records the receiver accepted (2xx), in order.
    static func acceptedRecords(_ r: Receiver) throws -> [[String: Any]] {
        var out: [[String: Any]] = []
        for f in r.files("json") {
            let req = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: f)) as? [String: Any])
            guard let status = req["status"] as? Int, (200..<300).contains(status) else { continue }
            let body = try #require(Data(base64Encoded: req["body_b64"] as? String ?? ""))
            for line in body.split(separator: 0x0A) {
                out.append(try #require(try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any]))
            }
        }
        return out
    }

    @Test(.timeLimit(.minutes(2)))
    func httpRetriesUntilDeliveredAndResumesFromTheCursor() async throws {
        let base = try Self.tempDir()
        defer { try? FileManager.default.removeItem(at: base) }
        let recv = try await Self.startReceiver("http", statuses: "500,503,500,200", in: base)
        defer { recv.stop() }
        let store = try DataStore(directory: base.appendingPathComponent("data").path)
        _ = try store.append(Self.events(0..<5))
        var t = ForwardTarget(name: "siem")
        t.url = "http://127.0.0.1:\(recv.port)/ingest"
        t.batch = 3
        t.initialBackoffMs = 20
        t.maxBackoffMs = 100
        t.headersEnv = ["Authorization": "SIEM_AUTH"]
        let stats = ForwardStats()
        #expect(throws: ForwardError.self) { _ = try Self.forwarder(t, store, stats) }  // the header's variable is not set
        let fw = try Self.forwarder(t, store, stats, env: ["SIEM_AUTH": "Bearer test-token"])
        let task = Task { try await fw.run() }
        #expect(try await Self.waitForCursor(stats, "siem", 5))
        task.cancel()
        _ = await task.result

        let snap = stats.snapshot("siem")
        #expect(snap.failures == 3 && snap.forwarded == 5 && snap.lag == 0, "\(snap)")
        let requests = recv.files("json")
        #expect(requests.count == 5, "3 failed + 2 delivered batches")
        let first = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: requests[0])) as? [String: Any])
        let headers = try #require(first["headers"] as? [String: String])
        #expect(headers["authorization"] == "Bearer test-token" && headers["content-type"] == "application/x-ndjson")
        var records = try Self.acceptedRecords(recv)
        #expect(records.compactMap { ($0["metadata"] as? [String: Any])?["uid"] as? String } == Self.events(0..<5).map(\.id))
        #expect(records.allSatisfy { ($0["metadata"] as? [String: Any])?["version"] as? String == "1.3.0" })
        #expect(records.map { $0["class_uid"] as? Int } == [6003, 3002, 6003, 6003, 6003])
        #expect(try Forwarder.loadCursor(layout: store.layout, name: "siem") == 5)
        let cursorFile = try String(contentsOfFile: Forwarder.cursorPath(layout: store.layout, name: "siem"), encoding: .utf8)
        #expect(cursorFile == "5\n")

        // A restart resumes at the saved cursor: only the new events are sent.
        _ = try store.append(Self.events(5..<7))
        let stats2 = ForwardStats()
        let again = try Self.forwarder(t, store, stats2, env: ["SIEM_AUTH": "Bearer test-token"])
        let task2 = Task { try await again.run() }
        #expect(try await Self.waitForCursor(stats2, "siem", 7))
        task2.cancel()
        _ = await task2.result
        records = try Self.acceptedRecords(recv)
        #expect(records.count == 7)
        #expect(records.suffix(2).compactMap { ($0["metadata"] as? [String: Any])?["uid"] as? String } == Self.events(5..<7).map(\.id))
        #expect(stats2.snapshot("siem").failures == 0)
        #expect(stats2.exposition().contains("custos_forward_cursor{target=\"siem\"} 7"))
        #expect(stats2.exposition().contains("custos_forward_lag_entries{target=\"siem\"} 0"))
    }

    @Test(.timeLimit(.minutes(2)))
    func httpReceiverDownMeansLagNotLoss() async throws {
        let base = try Self.tempDir()
        defer { try? FileManager.default.removeItem(at: base) }
        let store = try DataStore(directory: base.appendingPathComponent("data").path)
        _ = try store.append(Self.events(0..<4))
        var t = ForwardTarget(name: "down")
        t.url = "http://127.0.0.1:9/nothing-listens"  // discard port: connection refused
        t.initialBackoffMs = 10
        t.maxBackoffMs = 20
        t.timeout = 2
        let stats = ForwardStats()
        let fw = try Self.forwarder(t, store, stats)
        let task = Task { try await fw.run() }
        for _ in 0..<600 where stats.snapshot("down").failures < 3 { try await Task.sleep(for: .milliseconds(50)) }
        task.cancel()
        _ = await task.result
        let s = stats.snapshot("down")
        #expect(s.failures >= 3 && s.forwarded == 0 && s.cursor == 0 && s.lag == 4, "\(s)")
        #expect(try Forwarder.loadCursor(layout: store.layout, name: "down") == 0)
    }

    @Test(.timeLimit(.minutes(2)))
    func syslogOverTCPIsOctetCountedAndCEFOverUDPIsOneDatagramEach() async throws {
        let base = try Self.tempDir()
        defer { try? FileManager.default.removeItem(at: base) }
        let tcp = try await Self.startReceiver("tcp", in: base)
        defer { tcp.stop() }
        let udp = try await Self.startReceiver("udp", in: base)
        defer { udp.stop() }
        let store = try DataStore(directory: base.appendingPathComponent("data").path)
        let events = Self.events(0..<4)
        _ = try store.append(events)

        var a = ForwardTarget(name: "syslog-tcp")
        a.transport = .tcp; a.format = .syslog5424; a.host = "127.0.0.1"; a.port = tcp.port; a.hostname = "custos-test"
        var b = ForwardTarget(name: "cef-udp")
        b.transport = .udp; b.format = .cef; b.host = "127.0.0.1"; b.port = udp.port; b.hostname = "custos-test"
        let stats = ForwardStats()
        let fa = try Self.forwarder(a, store, stats), fb = try Self.forwarder(b, store, stats)
        let ta = Task { try await fa.run() }, tb = Task { try await fb.run() }
        #expect(try await Self.waitForCursor(stats, "syslog-tcp", 4))
        #expect(try await Self.waitForCursor(stats, "cef-udp", 4))
        ta.cancel(); tb.cancel()
        _ = await ta.result; _ = await tb.result

        // TCP: one connection per batch, RFC 6587 octet-counted frames.
        for _ in 0..<600 where tcp.files("tcp").isEmpty { try await Task.sleep(for: .milliseconds(50)) }
        var bytes: [UInt8] = []
        for f in tcp.files("tcp") { bytes += Array(try Data(contentsOf: f)) }
        var frames: [String] = []
        var i = 0
        while i < bytes.count {
            guard let sp = bytes[i...].firstIndex(of: 0x20), let len = Int(String(decoding: bytes[i..<sp], as: UTF8.self)) else {
                Issue.record("not an octet count at byte \(i)"); break
            }
            frames.append(String(decoding: bytes[(sp + 1)..<(sp + 1 + len)], as: UTF8.self))
            i = sp + 1 + len
        }
        #expect(frames == events.map { SyslogOut.rfc5424($0, hostname: "custos-test") })
        #expect(frames.first?.hasPrefix("<86>1 2026-11-27T23:18:40.5Z custos-test custos - read [custos@32473 ") == true, "\(frames)")
        #expect(frames[1].contains(#"identity="svc \"quoted\"""#), "\(frames[1])")

        // UDP: one datagram per message, CEF in an RFC 5424 envelope.
        for _ in 0..<600 where udp.files("udp").count < 4 { try await Task.sleep(for: .milliseconds(50)) }
        let datagrams = try udp.files("udp").map { String(decoding: try Data(contentsOf: $0), as: UTF8.self) }
        #expect(datagrams.sorted() == events.map { SyslogOut.cefSyslog($0, hostname: "custos-test") }.sorted())
        #expect(datagrams.allSatisfy { $0.contains(" - CEF:0|Custos|Custos|1|") })
    }

    @Test func configParsing() throws {
        let c = try ServeConfig.parse(yaml: """
            forward:
              - name: siem
                url: https://siem.example/ingest
                batch: 200
                headers_env: { Authorization: SIEM_AUTH }
              - name: arcsight
                transport: udp
                address: 127.0.0.1:5514
                format: cef
            """, baseDirectory: "/tmp")
        #expect(c.forward.count == 2)
        #expect(c.forward[0].format == .ocsf && c.forward[0].transport == .http && c.forward[0].batch == 200)
        #expect(c.forward[0].headersEnv == ["Authorization": "SIEM_AUTH"])
        #expect(c.forward[1].transport == .udp && c.forward[1].format == .cef && c.forward[1].port == 5514)
        for (yaml, needle) in [
            ("forward: [{url: http://x.example/}]", "needs a name"),
            ("forward: [{name: a, transport: tcp, address: 127.0.0.1:514}]", "carries syslog5424 or cef"),
            ("forward: [{name: a}]", "needs url"),
            ("forward: [{name: a, url: http://x/}, {name: a, url: http://y/}]", "named a"),
            ("forward: [{name: 'a b', url: http://x/}]", "letters"),
            ("forward: [{name: a, url: http://x/, format: json}]", "ocsf, syslog5424 or cef"),
            ("forward: [{name: a, url: 'https://siem:hunter2@x.example/in'}]", "a user or password in the URL is not allowed"),
        ] {
            do {
                _ = try ServeConfig.parse(yaml: yaml, baseDirectory: "/tmp")
                Issue.record("accepted: \(yaml)")
            } catch {
                #expect("\(error)".contains(needle), "\(yaml): \(error)")
            }
        }
    }
}
