// End-to-end syslog input: a REAL rsyslogd (Debian package `rsyslog`, run in the foreground
// with its own config and work directory) tails a file of real OpenBao 2.7.2 audit lines
// (imfile) and forwards them to `custos serve`:
//   run 1: TCP, octet-counted framing, RFC 5424 (RSYSLOG_SyslogProtocol23Format);
//   run 2: the same file again over UDP (RFC 3164 header, RSYSLOG_ForwardFormat) and over
//          TCP with newline framing (RSYSLOG_TraditionalForwardFormat).
// Every record becomes exactly the event `custos ingest` makes of the file (same ids, each
// once: run 2 only brings duplicates), and `custos verify` passes.
// A missing rsyslogd skips the test, unless CUSTOS_REQUIRE_RSYSLOG=1 (CI), where it fails.

import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@Suite("rsyslog → custos serve syslog input")
struct RsyslogIntegrationTests {
    static let required = ProcessInfo.processInfo.environment["CUSTOS_REQUIRE_RSYSLOG"] == "1"
    static let binary: String? = {
        let env = ProcessInfo.processInfo.environment["CUSTOS_RSYSLOGD_BIN"]
        return ([env].compactMap { $0 } + ["/usr/sbin/rsyslogd", "/sbin/rsyslogd", "/usr/local/sbin/rsyslogd"])
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    static var repoRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// A free loopback UDP port (bound, read back, released).
    static func freeUDPPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw Failure("socket() failed") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard ok else { throw Failure("bind() failed") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// An rsyslogd in the foreground (`-n`) with its own config, pid file and work directory.
    final class Rsyslog: @unchecked Sendable {
        let process = Process()
        let err: String
        init(binary: String, dir: TempDir, name: String, config: String) throws {
            let work = dir.path("\(name)-work")
            try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
            let conf = dir.path("\(name).conf")
            try ("global(workDirectory=\"\(work)\" maxMessageSize=\"64k\")\n" + config).write(toFile: conf, atomically: true, encoding: .utf8)
            err = dir.path("\(name).err")
            _ = FileManager.default.createFile(atPath: err, contents: nil)
            // Check the config first (-N1): a syntax error should fail the test with rsyslog's message.
            // Started through python3 (which CI has) to clear the signal mask: spawned directly
            // from the test process, rsyslogd ignored SIGTERM here (a child inherits blocked
            // signals, and rsyslogd uses plain signal handlers).
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", "-c", "import os, signal, sys; signal.pthread_sigmask(signal.SIG_SETMASK, []); os.execv(sys.argv[1], sys.argv[1:])",
                                 binary, "-n", "-f", conf, "-i", dir.path("\(name).pid")]
            process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
            process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
            process.standardInput = FileHandle.nullDevice
            let check = Process()
            check.executableURL = URL(fileURLWithPath: binary)
            check.arguments = ["-N1", "-f", conf]
            let checkLog = dir.path("\(name).check")
            _ = FileManager.default.createFile(atPath: checkLog, contents: nil)
            check.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: checkLog))
            check.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: checkLog))
            try check.run()
            check.waitUntilExit()
            guard check.terminationStatus == 0 else {
                throw Failure("rsyslogd -N1 rejects \(conf): \((try? String(contentsOfFile: checkLog, encoding: .utf8)) ?? "")")
            }
            try process.run()
        }
        var log: String { (try? String(contentsOfFile: err, encoding: .utf8)) ?? "" }
        /// SIGTERM, then wait: rsyslog sends what its queues hold and closes its connections.
        func stop() async throws {
            guard process.isRunning else { return }
            kill(process.processIdentifier, SIGTERM)
            for _ in 0..<200 where process.isRunning { try await Task.sleep(for: .milliseconds(50)) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL); throw Failure("rsyslogd did not stop within 10 s of SIGTERM") }
        }
        deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
    }

    @Test(.enabled(if: binary != nil || required,
                   "rsyslogd is not installed (apt-get install rsyslog; CI sets CUSTOS_REQUIRE_RSYSLOG=1)"),
          .timeLimit(.minutes(5)))
    func rsyslogForwardsOpenBaoAuditLinesExactlyOnce() async throws {
        guard let rsyslogd = Self.binary else {
            Issue.record("CUSTOS_REQUIRE_RSYSLOG=1 but no rsyslogd: looked for /usr/sbin/rsyslogd (Debian package rsyslog), /usr/local/sbin/rsyslogd and CUSTOS_RSYSLOGD_BIN")
            return
        }
        let custos = try locateCustos()
        let dir = try TempDir("rsyslog")
        defer { dir.remove() }
        let fixture = Self.repoRoot.appendingPathComponent("Tests/CustosCoreTests/Fixtures/openbao/audit-2.7.2.log").path
        let lines = try String(contentsOfFile: fixture, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 59)

        // What the file holds, by `custos ingest` into its own data directory: the reference.
        let refData = dir.path("ref")
        try await run(custos, ["ingest", "--data", refData, "--format", "openbao", "--instance", "bao", fixture], timeout: 120)
            .expect(0, "ingest (reference)")
        let reference = try await Self.ids(custos, refData)
        let expected = reference.count
        #expect(expected > 20)
        // Requests whose response is not in the file (if they make events at all: an audit
        // device self-test does not): over TCP they are emitted when the connection closes,
        // over UDP (one decoder for the listener) when the server stops.
        var requests = Set<String>(), responses = Set<String>()
        for line in lines {
            guard let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let id = (o["request"] as? [String: Any])?["id"] as? String, !id.isEmpty else { continue }
            if o["type"] as? String == "request" { requests.insert(id) } else { responses.insert(id) }
        }
        let unanswered = requests.subtracting(responses).count

        // custos serve with both syslog listeners.
        let httpPort = try ServeIntegrationTests.freePort(), tcpPort = try ServeIntegrationTests.freePort(), udpPort = try Self.freeUDPPort()
        let data = dir.path("data")
        let config = dir.path("serve.yaml")
        try """
            data: \(data)
            listen: 127.0.0.1:\(httpPort)
            syslog: { tcp: "127.0.0.1:\(tcpPort)", udp: "127.0.0.1:\(udpPort)", format: openbao, instance: bao, max_message_bytes: 65536 }
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let launched = try ServeProcess(custos: custos, config: config, port: httpPort, logs: dir, tag: "syslog")
        let server = launched.process
        defer { launched.kill9() }
        try await launched.waitUp()
        let auditor = try launched.token("auditor")
        func metric(_ name: String) async throws -> Int {
            let (code, body) = try await ServeIntegrationTests.http("GET", "http://127.0.0.1:\(httpPort)/metrics", token: auditor)
            guard code == 200 else { throw Failure("/metrics answered \(code)") }
            let text = String(decoding: body, as: UTF8.self)
            guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(name + " ") }), let n = Int(line.split(separator: " ").last ?? "") else {
                throw Failure("no \(name) in /metrics")
            }
            return n
        }
        /// Waits until the metric reaches `want`; it must then be exactly `want` (or, with
        /// `atLeast`, not less).
        func waitMetric(_ name: String, _ want: Int, _ what: String, atLeast: Bool = false) async throws {
            var n = -1
            for _ in 0..<600 {
                n = try await metric(name)
                if n >= want { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            if atLeast { #expect(n >= want, "\(what): \(name) is \(n), wanted at least \(want)") } else {
                #expect(n == want, "\(what): \(name) is \(n), wanted \(want)")
            }
        }

        // Run 1: imfile → omfwd TCP, octet-counted RFC 5424 frames. The file is written before
        // rsyslog starts and read from its beginning (no state file yet).
        let log1 = dir.path("audit-1.log")
        try FileManager.default.copyItem(atPath: fixture, toPath: log1)
        let run1 = try Rsyslog(binary: rsyslogd, dir: dir, name: "run1", config: """
            module(load="imfile")
            input(type="imfile" File="\(log1)" Tag="openbao" ruleset="fwd" freshStartTail="off")
            ruleset(name="fwd") {
              action(type="omfwd" target="127.0.0.1" port="\(tcpPort)" protocol="tcp" TCP_Framing="octet-counted"
                     template="RSYSLOG_SyslogProtocol23Format" action.resumeRetryCount="-1")
            }
            """)
        // All but (at most) the unanswered requests arrive while rsyslog runs; those may come
        // only when its connection closes (as at the end of a file).
        try await waitMetric("custos_events_accepted_total{source=\"syslog_tcp\"}", expected - unanswered, "run 1 (rsyslog running)", atLeast: true)
        try await run1.stop()
        try await waitMetric("custos_events_accepted_total{source=\"syslog_tcp\"}", expected, "run 1 (rsyslog stopped): \(run1.log)")
        #expect(try await metric("custos_events_rejected_total{source=\"syslog_tcp\"}") == 0)

        // Run 2: the same records again (a copy of the file), over UDP (RFC 3164 header with an
        // RFC 3339 time) and over TCP with newline framing (traditional RFC 3164): every one
        // is a duplicate, nothing is added.
        let log2 = dir.path("audit-2.log")
        try FileManager.default.copyItem(atPath: fixture, toPath: log2)
        let run2 = try Rsyslog(binary: rsyslogd, dir: dir, name: "run2", config: """
            module(load="imfile")
            input(type="imfile" File="\(log2)" Tag="openbao:" ruleset="fwd" freshStartTail="off")
            ruleset(name="fwd") {
              action(type="omfwd" target="127.0.0.1" port="\(udpPort)" protocol="udp" template="RSYSLOG_ForwardFormat")
              action(type="omfwd" target="127.0.0.1" port="\(tcpPort)" protocol="tcp" template="RSYSLOG_TraditionalForwardFormat"
                     action.resumeRetryCount="-1")
            }
            """)
        try await waitMetric("custos_events_duplicate_total", 2 * expected - 2 * unanswered, "run 2 (rsyslog running)", atLeast: true)
        try await run2.stop()
        // TCP's unanswered requests (if they make events) are in; UDP's wait for the server to stop.
        try await waitMetric("custos_events_duplicate_total", 2 * expected - unanswered, "run 2 (rsyslog stopped): \(run2.log)", atLeast: true)
        #expect(try await metric("custos_events_duplicate_total") <= 2 * expected)
        #expect(try await metric("custos_events_accepted_total{source=\"syslog_udp\"}") == 0)
        #expect(try await metric("custos_events_accepted_total{source=\"syslog_tcp\"}") == expected)
        for source in ["syslog_tcp", "syslog_udp"] {
            #expect(try await metric("custos_events_rejected_total{source=\"\(source)\"}") == 0, "\(source)")
        }

        // SIGTERM: a graceful stop (UDP's unanswered requests are recorded then: duplicates too).
        kill(server.processIdentifier, SIGTERM)
        for _ in 0..<200 where server.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!server.isRunning, "custos serve did not stop within 10 s of SIGTERM")
        if !server.isRunning { #expect(server.terminationStatus == 0, "\(launched.stderr)") }

        // The trail holds exactly the events (verified before the queries below, which record
        // themselves in the trail as investigations).
        let verify = try await run(custos, ["verify", "--data", data, "--vkey", data + "/keys/trail.vkey"], timeout: 120).expect(0, "verify")
        #expect(verify.stdout.contains("size \(expected) "), "\(verify.stdout)")
        // Every record exactly once: the same events as `custos ingest` of the file (ids and
        // every field but the trail index), no more.
        let got = try await Self.ids(custos, data)
        #expect(got.count == expected, "\(got.count) events in the trail, \(expected) in the reference")
        #expect(Set(got) == Set(reference))
        #expect(try await Self.events(custos, data) == (try await Self.events(custos, refData)))
    }

    /// The events of a data directory without their trail index, as sorted-key JSON, by id.
    static func events(_ custos: URL, _ data: String) async throws -> [String: String] {
        let r = try await run(custos, ["query", "--data", data, "--format", "json", "--limit", "100000"], timeout: 120).expect(0, "query")
        guard let arr = try JSONSerialization.jsonObject(with: r.stdoutData) as? [[String: Any]] else {
            throw Failure("query json is not an array of objects: \(r.stdout)")
        }
        var out: [String: String] = [:]
        for var o in arr {
            o["index"] = nil
            let id = o["id"] as? String ?? ""
            out[id] = String(decoding: try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), as: UTF8.self)
        }
        return out
    }

    /// The event ids in a data directory, in trail order (`custos query --format json`).
    static func ids(_ custos: URL, _ data: String) async throws -> [String] {
        let r = try await run(custos, ["query", "--data", data, "--format", "json", "--limit", "100000"], timeout: 120).expect(0, "query")
        guard let arr = try JSONSerialization.jsonObject(with: r.stdoutData) as? [[String: Any]] else {
            throw Failure("query json is not an array of objects: \(r.stdout)")
        }
        return arr.compactMap { $0["id"] as? String }
    }
}
