// End-to-end `custos serve`: a real OpenBao (scripts/openbao-scenario.sh --socket) sends its
// audit records to Custos's socket-device listener while its file device writes the same
// records to a file; the file is then posted to the HTTP ingest endpoint. Both paths give
// the same events once each, the server stops gracefully on SIGTERM, and the trail verifies.

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

@Suite(
    "custos serve end to end",
    .enabled(
        if: ProcessInfo.processInfo.environment["CUSTOS_SKIP_OPENBAO"] != "1",
        "CUSTOS_SKIP_OPENBAO=1 is set: not starting a real OpenBao"))
struct ServeIntegrationTests {
    /// A free loopback TCP port (bound, read back, released).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
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

    static func http(_ method: String, _ url: String, token: String?, body: Data? = nil) async throws -> (Int, Data) {
        var req = URLRequest(url: URL(string: url)!)
        req.httpMethod = method
        req.httpBody = body
        req.timeoutInterval = 60
        if let token { req.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        let (data, resp) = try await URLSession.shared.data(for: req)
        return ((resp as? HTTPURLResponse)?.statusCode ?? 0, data)
    }

    /// `socketType` tcp: `socket_type = "tcp"` to `listen: HOST:PORT`; unix: `socket_type =
    /// "unix"` to `listen: unix:PATH` (mode 0600: OpenBao runs as the same user here).
    @Test("socket device and file device of one OpenBao: every request once; SIGTERM stops cleanly; the trail verifies",
          arguments: ["tcp", "unix"])
    func socketAndFileDevices(socketType: String) async throws {
        let custos = try locateCustos()
        let dir = try TempDir("serve")
        defer { dir.remove() }
        let httpPort = try Self.freePort(), sockPort = try Self.freePort()
        let data = dir.path("data")
        let config = dir.path("serve.yaml")
        let socketAddress = socketType == "unix" ? "unix:" + dir.path("audit.sock") : "127.0.0.1:\(sockPort)"
        try """
            data: \(data)
            listen: 127.0.0.1:\(httpPort)
            audit_socket: { listen: "\(socketAddress)", format: openbao, instance: bao }
            """.write(toFile: config, atomically: true, encoding: .utf8)

        let launched = try ServeProcess(custos: custos, config: config, port: httpPort, logs: dir, tag: "bao")
        let server = launched.process
        defer { launched.kill9() }

        // Ready: /healthz answers, and the tokens were printed once.
        try await launched.waitUp()
        let ingestToken = try launched.token("ingest"), auditorToken = try launched.token("auditor")
        #expect(!(try String(contentsOfFile: data + "/keys/tokens", encoding: .utf8)).contains(ingestToken))

        // A real OpenBao with a file and a socket audit device, the socket pointed at Custos.
        let scenario = dir.path("scenario")
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/openbao-scenario.sh").path
        let r = try await run(URL(fileURLWithPath: "/bin/bash"), [script, scenario, "--socket", socketAddress], timeout: 600)
        try r.expect(0, "openbao scenario with a socket device")
        let auditLog = scenario + "/audit.log"
        let canary = try String(contentsOfFile: scenario + "/canary.txt", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)

        // How many events the file holds (decoded, nothing written).
        let check = try await run(custos, ["ingest", "--check", "--format", "openbao", "--instance", "bao", auditLog], timeout: 120)
        try check.expect(0, "ingest --check")
        let expected = try IngestSummary(check.stdout).accepted
        #expect(expected > 10)

        // The socket device's events arrive (OpenBao has stopped; the connection closed).
        var accepted = -1
        for _ in 0..<300 {
            let (code, body) = try await Self.http("GET", "http://127.0.0.1:\(httpPort)/metrics", token: auditorToken)
            #expect(code == 200)
            let text = String(decoding: body, as: UTF8.self)
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("custos_events_accepted_total{source=\"openbao\"}") }),
               let n = Int(line.split(separator: " ").last ?? "") {
                accepted = n
                if n >= expected { break }
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(accepted == expected, "the socket listener accepted \(accepted) events; the file device's log has \(expected)")

        // Records with no request.id (OpenBao's own set-up calls) are keyed by their whole line,
        // which carries each device's own timestamp: the two devices' copies differ (README).
        var idless = 0
        for line in try String(contentsOfFile: auditLog, encoding: .utf8).split(separator: "\n") {
            guard let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], o["type"] as? String == "response" else { continue }
            if ((o["request"] as? [String: Any])?["id"] as? String ?? "").isEmpty { idless += 1 }
        }
        // The file device's log over HTTP, same instance: every event with a request id is already there.
        let (code, body) = try await Self.http("POST", "http://127.0.0.1:\(httpPort)/v1/ingest?format=openbao&instance=bao",
                                               token: ingestToken, body: try Data(contentsOf: URL(fileURLWithPath: auditLog)))
        #expect(code == 200, "\(String(decoding: body, as: UTF8.self))")
        let o = try #require(try JSONSerialization.jsonObject(with: body) as? [String: Any])
        #expect(o["accepted"] as? Int == idless, "\(o); \(idless) responses without a request id")
        #expect((o["duplicates"] as? Int ?? 0) >= expected - idless - 1, "\(o)")
        #expect(o["rejected"] as? Int == 0, "\(o)")

        // An ingest token cannot read.
        let (denied, _) = try await Self.http("GET", "http://127.0.0.1:\(httpPort)/v1/events", token: ingestToken)
        #expect(denied == 403)

        // SIGTERM: a graceful stop, exit 0.
        kill(server.processIdentifier, SIGTERM)
        for _ in 0..<200 where server.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!server.isRunning, "custos serve did not stop within 10 s of SIGTERM")
        if !server.isRunning { #expect(server.terminationStatus == 0) }
        if socketType == "unix" { #expect(!FileManager.default.fileExists(atPath: dir.path("audit.sock")), "the socket file is removed at exit") }

        let verify = try await run(custos, ["verify", "--data", data, "--vkey", data + "/keys/trail.vkey"], timeout: 120)
        try verify.expect(0, "verify")
        #expect(verify.stdout.contains("size \(expected + idless) "), "\(verify.stdout)")

        // log_raw = true put the canary in OpenBao's audit records; none of it reaches Custos's files.
        for rel in Fixture.files(under: data) {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: data + "/" + rel))
            #expect(bytes.range(of: Data(canary.utf8)) == nil, "canary in \(rel)")
        }
    }

    /// `custos serve` with no arguments: ./custos-data, 127.0.0.1:8420, the example policy
    /// (found through CUSTOS_EXAMPLES here, as in a source checkout): the example OpenBao log
    /// posted to it raises alerts, recorded in the trail; SIGTERM stops it.
    @Test("serve with no arguments runs on embedded defaults with the example policy")
    func noArgumentsMeansExamplePolicy() async throws {
        let custos = try locateCustos()
        let dir = try TempDir("serve-noargs")
        defer { dir.remove() }
        let examples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("examples").path
        var env = ProcessInfo.processInfo.environment
        env["CUSTOS_EXAMPLES"] = examples
        env.removeValue(forKey: "CUSTOS_DATA")
        let launched = try ServeProcess(custos: custos, arguments: ["serve"], port: 8420, logs: dir, tag: "noargs",
                                        environment: env, directory: dir.url)
        let server = launched.process
        defer { launched.kill9() }
        try await launched.waitUp()
        #expect(launched.stderr.contains("detecting with the example policy \(examples)/policy.yaml"), "\(launched.stderr)")
        #expect(FileManager.default.fileExists(atPath: dir.path("custos-data/keys/trail.vkey")), "the data directory is ./custos-data")
        let token = launched.token
        let (code, body) = try await Self.http("POST", "http://127.0.0.1:8420/v1/ingest?format=openbao", token: try token("ingest"),
                                               body: try Data(contentsOf: URL(fileURLWithPath: examples + "/openbao-audit.log")))
        #expect(code == 200, "\(String(decoding: body, as: UTF8.self))")
        let (mcode, metrics) = try await Self.http("GET", "http://127.0.0.1:8420/metrics", token: try token("auditor"))
        #expect(mcode == 200)
        let raised = String(decoding: metrics, as: UTF8.self).split(separator: "\n")
            .filter { $0.hasPrefix("custos_alerts_total{") }.compactMap { Int($0.split(separator: " ").last ?? "") }.reduce(0, +)
        #expect(raised > 0, "the example policy raised no alert on the example log")
        kill(server.processIdentifier, SIGTERM)
        for _ in 0..<200 where server.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!server.isRunning)
    }
}
