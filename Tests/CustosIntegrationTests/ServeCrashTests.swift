// `custos serve` killed with SIGKILL while HTTP ingest goes on, 20 times: after each restart
// every acknowledged event is in the trail exactly once and the trail verifies (over HTTP,
// with `custos verify --url`). And `verify --url --state` catches a server whose trail was
// rolled back or forked.

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

/// A `custos serve` (or `custos witness serve`) child process on loopback, its standard output
/// and error in `serve-<tag>.out` and `.err` under `logs`.
final class ServeProcess: @unchecked Sendable {
    let process = Process()
    let port: Int
    let stdoutPath: String
    let stderrPath: String
    var base: String { "http://127.0.0.1:\(port)" }

    convenience init(custos: URL, config: String, port: Int, logs dir: TempDir, tag: String) throws {
        try self.init(custos: custos, arguments: ["serve", "--config", config], port: port, logs: dir, tag: tag)
    }

    /// Runs `custos arguments` listening on `port`, with `environment` (default: the test's
    /// own, less `CUSTOS_DATA`) in `directory` (default: the test's).
    init(custos: URL, arguments: [String], port: Int, logs dir: TempDir, tag: String,
         environment: [String: String]? = nil, directory: URL? = nil) throws {
        self.port = port
        stdoutPath = dir.path("serve-\(tag).out")
        stderrPath = dir.path("serve-\(tag).err")
        _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.executableURL = custos
        process.arguments = arguments
        if let environment {
            process.environment = environment
        } else {
            var env = ProcessInfo.processInfo.environment
            env.removeValue(forKey: "CUSTOS_DATA")
            process.environment = env
        }
        if let directory { process.currentDirectoryURL = directory }
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: stdoutPath))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    /// Waits until /healthz answers (at most 30 s, while the process runs).
    func waitUp() async throws {
        for _ in 0..<300 {
            if let (code, _) = try? await ServeIntegrationTests.http("GET", base + "/healthz", token: nil), code == 200 { return }
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw Failure("\(name) did not come up on \(base): \(stdout) \(stderr)")
    }

    /// "custos serve" or "custos witness serve".
    var name: String { "custos " + (process.arguments ?? []).prefix { !$0.hasPrefix("-") }.joined(separator: " ") }

    /// The token printed for `role` on the first start.
    func token(_ role: String) throws -> String {
        let out = try String(contentsOfFile: stdoutPath, encoding: .utf8)
        guard let line = out.split(separator: "\n").first(where: { $0.hasPrefix("\(role) token: ") }) else {
            throw Failure("no \(role) token in \(out)")
        }
        return String(line.dropFirst("\(role) token: ".count))
    }

    func kill9() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    func stop() async throws {
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
        for _ in 0..<200 where process.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        if process.isRunning { kill9(); throw Failure("\(name) did not stop within 10 s of SIGTERM") }
    }
}

/// A Vault response record (a complete event on its own) for secret `path`.
func vaultResponse(id: String, path: String) -> String {
    let auth = #"{"display_name":"token-crash","policies":["default"],"token_type":"service"}"#
    let req = #"{"id":"\#(id)","operation":"read","mount_point":"secret/","path":"\#(path)","remote_address":"192.0.2.7","remote_port":5555}"#
    return #"{"time":"2026-01-02T03:04:05.123456789Z","type":"response","auth":\#(auth),"request":\#(req),"response":{"data":{"password":"hmac-sha256:11"}}}"# + "\n"
}

final class Acked: @unchecked Sendable {
    private let lock = NSLock()
    private var paths: [String] = []
    private var unacked = 0
    func add(_ p: [String]) { lock.withLock { paths += p } }
    func lost(_ n: Int) { lock.withLock { unacked += n } }
    var all: [String] { lock.withLock { paths } }
    var unacknowledged: Int { lock.withLock { unacked } }
}

@Suite(
    "custos serve under kill -9",
    .enabled(
        if: ProcessInfo.processInfo.environment["CUSTOS_SKIP_OPENBAO"] != "1",
        "CUSTOS_SKIP_OPENBAO=1 is set: skipping the process-level serve tests"))
struct ServeCrashTests {
    static func config(_ dir: TempDir, data: String, port: Int) throws -> String {
        let path = dir.path("serve-\(port).yaml")
        try "data: \(data)\nlisten: 127.0.0.1:\(port)\n".write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Counts of each secret path in the trail's events (through `custos query`).
    static func pathCounts(_ custos: URL, data: String) async throws -> [String: Int] {
        let q = try await run(custos, ["query", "--data", data, "--format", "csv", "--limit", "10000000"], timeout: 300)
        try q.expect(0, "query")
        var counts: [String: Int] = [:]
        for line in q.stdout.split(separator: "\n") {
            guard let r = line.range(of: "secret/data/crash/") else { continue }
            let p = line[r.lowerBound...].prefix { $0 != "," && $0 != "\"" }
            counts[String(p), default: 0] += 1
        }
        return counts
    }

    @Test("kill -9 during sustained HTTP ingest, 20 rounds: acknowledged events are there once; verify --url passes")
    func killNineTwentyTimes() async throws {
        let custos = try locateCustos()
        let dir = try TempDir("crash")
        defer { dir.remove() }
        let data = dir.path("data")
        let acked = Acked()
        var ingestToken = "", auditorToken = ""
        var rng = SystemRandomNumberGenerator()
        for round in 0..<20 {
            let port = try ServeIntegrationTests.freePort()
            let server = try ServeProcess(custos: custos, config: try Self.config(dir, data: data, port: port), port: port, logs: dir, tag: "\(round)")
            defer { server.kill9() }
            try await server.waitUp()
            if round == 0 {
                ingestToken = try server.token("ingest")
                auditorToken = try server.token("auditor")
                try auditorToken.write(toFile: dir.path("auditor.token"), atomically: true, encoding: .utf8)
            } else {
                // After the previous kill: the trail verifies over HTTP and every acknowledged event is there once.
                let v = try await run(custos, ["verify", "--url", server.base, "--vkey", data + "/keys/trail.vkey",
                                               "--token-file", dir.path("auditor.token")], timeout: 300)
                try v.expect(0, "verify --url after kill -9 number \(round)")
                let counts = try await Self.pathCounts(custos, data: data)
                let missing = acked.all.filter { counts[$0] == nil }
                #expect(missing.isEmpty, "round \(round): \(missing.count) acknowledged events are missing, e.g. \(missing.prefix(3))")
                let twice = counts.filter { $0.value > 1 }
                #expect(twice.isEmpty, "round \(round): \(twice.count) events are in the trail more than once, e.g. \(twice.keys.sorted().prefix(3))")
                if !missing.isEmpty || !twice.isEmpty { return }
            }
            // Two clients post batches until the server dies.
            let base = server.base, token = ingestToken
            let killAfter = Int.random(in: 200...1200, using: &rng)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for client in 0..<2 {
                    group.addTask {
                        var batch = 0
                        while true {
                            let paths = (0..<100).map { "secret/data/crash/r\(round)-c\(client)-b\(batch)-\($0)" }
                            let body = paths.enumerated().map { vaultResponse(id: "r\(round)-c\(client)-b\(batch)-\($0.offset)", path: $0.element) }.joined()
                            batch += 1
                            guard let (code, resp) = try? await ServeIntegrationTests.http("POST", base + "/v1/ingest?format=vault&instance=crash",
                                                                                          token: token, body: Data(body.utf8)) else {
                                acked.lost(paths.count)
                                return      // the server is gone
                            }
                            if code == 200, let o = try? JSONSerialization.jsonObject(with: resp) as? [String: Any],
                               (o["accepted"] as? Int ?? 0) + (o["duplicates"] as? Int ?? 0) == paths.count {
                                acked.add(paths)
                            } else if code == 503 {
                                acked.lost(paths.count)
                                try await Task.sleep(for: .milliseconds(50))
                            } else {
                                throw Failure("ingest answered \(code): \(String(decoding: resp, as: UTF8.self).prefix(300))")
                            }
                        }
                    }
                }
                group.addTask {
                    try await Task.sleep(for: .milliseconds(killAfter))
                    server.kill9()
                }
                try await group.waitForAll()
            }
        }
        // Last restart, then a final check.
        let port = try ServeIntegrationTests.freePort()
        let server = try ServeProcess(custos: custos, config: try Self.config(dir, data: data, port: port), port: port, logs: dir, tag: "last")
        defer { server.kill9() }
        try await server.waitUp()
        let counts = try await Self.pathCounts(custos, data: data)
        #expect(acked.all.count > 2000, "too little was acknowledged to mean anything: \(acked.all.count)")
        #expect(acked.all.allSatisfy { counts[$0] == 1 })
        #expect(counts.values.allSatisfy { $0 == 1 })
        try await server.stop()
        let v = try await run(custos, ["verify", "--data", data, "--vkey", data + "/keys/trail.vkey"], timeout: 300)
        try v.expect(0, "verify after the last round")
        print("kill -9 x20: \(acked.all.count) events acknowledged, \(acked.unacknowledged) sent without an acknowledgement, \(counts.count) in the trail")
    }

    @Test("verify --url --state: a server whose trail was rolled back or forked fails verification")
    func verifyURLCatchesRollbackAndFork() async throws {
        let custos = try locateCustos()
        let dir = try TempDir("vurl")
        defer { dir.remove() }
        let data = dir.path("data"), copy = dir.path("copy")
        let state = dir.path("state"), vkey = data + "/keys/trail.vkey"
        func ingest(_ base: String, _ token: String, _ tag: String, _ n: Int) async throws {
            let body = (0..<n).map { vaultResponse(id: "\(tag)-\($0)", path: "secret/data/crash/\(tag)-\($0)") }.joined()
            let (code, resp) = try await ServeIntegrationTests.http("POST", base + "/v1/ingest?format=vault&instance=v", token: token, body: Data(body.utf8))
            #expect(code == 200, "\(String(decoding: resp, as: UTF8.self))")
        }
        func verify(_ base: String, _ extra: [String] = []) async throws -> CommandResult {
            try await run(custos, ["verify", "--url", base, "--vkey", vkey, "--state", state] + extra, timeout: 120)
        }

        var port = try ServeIntegrationTests.freePort()
        var server = try ServeProcess(custos: custos, config: try Self.config(dir, data: data, port: port), port: port, logs: dir, tag: "a")
        try await server.waitUp()
        let ingestToken = try server.token("ingest"), auditor = try server.token("auditor")
        try auditor.write(toFile: dir.path("auditor.token"), atomically: true, encoding: .utf8)
        let tokenArgs = ["--token-file", dir.path("auditor.token")]
        // 300 events: a full tile and bundle plus partial ones.
        try await ingest(server.base, ingestToken, "a", 300)
        // Without a token, and with the ingest token: refused (exit 2), nothing verified.
        let noToken = try await verify(server.base)
        #expect(noToken.status == 2 && noToken.stderr.contains("auditor token"), "\(noToken.stdout)\(noToken.stderr)")
        try ingestToken.write(toFile: dir.path("ingest.token"), atomically: true, encoding: .utf8)
        #expect(try await verify(server.base, ["--token-file", dir.path("ingest.token")]).status == 2)
        let first = try await verify(server.base, tokenArgs)
        try first.expect(0, "verify --url")
        #expect(first.stdout.contains("trail OK") && first.stdout.contains("size 300 "), "\(first.stdout)")
        #expect(FileManager.default.fileExists(atPath: state))
        try await server.stop()
        try FileManager.default.copyItem(atPath: data, toPath: copy)

        // The real server goes on; the state moves forward with it.
        port = try ServeIntegrationTests.freePort()
        server = try ServeProcess(custos: custos, config: try Self.config(dir, data: data, port: port), port: port, logs: dir, tag: "b")
        try await server.waitUp()
        try await ingest(server.base, ingestToken, "b", 10)
        try await verify(server.base, tokenArgs).expect(0, "verify --url after growth")
        try await server.stop()

        // The copy (same key, 300 entries) plays an operator who rolled the trail back.
        port = try ServeIntegrationTests.freePort()
        server = try ServeProcess(custos: custos, config: try Self.config(dir, data: copy, port: port), port: port, logs: dir, tag: "c")
        defer { server.kill9() }
        try await server.waitUp()
        let rolledBack = try await verify(server.base, tokenArgs)
        #expect(rolledBack.status == 1 && rolledBack.stdout.contains("rolled back"), "\(rolledBack.stdout)\(rolledBack.stderr)")
        // ... and then wrote other entries past the remembered size: a fork.
        try await ingest(server.base, ingestToken, "c", 20)
        let forked = try await verify(server.base, tokenArgs)
        #expect(forked.status == 1 && forked.stdout.contains("fork"), "\(forked.stdout)\(forked.stderr)")
        // Without the state it is a valid trail on its own: the state is what catches it.
        try await run(custos, ["verify", "--url", server.base, "--vkey", vkey] + tokenArgs, timeout: 120).expect(0, "verify --url without state")
        try await server.stop()
    }

    @Test("serve with TLS: HTTPS only; verify --url https with --ca-file")
    func tlsServeAndVerify() async throws {
        let custos = try locateCustos()
        let dir = try TempDir("tls")
        defer { dir.remove() }
        let cert = dir.path("server.crt"), key = dir.path("server.key")
        try await run(URL(fileURLWithPath: "/usr/bin/env"), ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                                                            "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
                                                            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], timeout: 60).expect(0, "openssl req")
        let data = dir.path("data"), port = try ServeIntegrationTests.freePort()
        let config = dir.path("tls.yaml")
        // A key file other users can read is refused before anything starts (exit 2, the key named).
        chmod(key, 0o644)
        try "data: \(data)\nlisten: 127.0.0.1:\(port)\ntls: { cert: \(cert), key: \(key) }\n".write(toFile: config, atomically: true, encoding: .utf8)
        let refused = try await run(custos, ["serve", "--config", config], timeout: 60)
        #expect(refused.status == 2 && refused.stderr.contains("tls.key") && refused.stderr.contains("readable by other users"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: data + "/keys/tokens"), "tokens were created before the TLS files were checked")
        chmod(key, 0o600)
        let server = try ServeProcess(custos: custos, config: config, port: port, logs: dir, tag: "tls")
        defer { server.kill9() }
        // Plain HTTP gets no answer; curl with the CA gets one.
        var up = false
        for _ in 0..<300 where !up {
            let r = try await run(URL(fileURLWithPath: "/usr/bin/env"), ["curl", "-sf", "--cacert", cert, "https://127.0.0.1:\(port)/healthz"], timeout: 10)
            if r.status == 0 { up = true } else { try await Task.sleep(for: .milliseconds(100)) }
        }
        try #require(up, "custos serve with TLS did not answer https")
        let plain = try await run(URL(fileURLWithPath: "/usr/bin/env"), ["curl", "-sf", "--max-time", "5", "http://127.0.0.1:\(port)/healthz"], timeout: 10)
        #expect(plain.status != 0)
        let ingest = try server.token("ingest"), auditor = try server.token("auditor")
        let body = (0..<5).map { vaultResponse(id: "t-\($0)", path: "secret/data/crash/t-\($0)") }.joined()
        try body.write(toFile: dir.path("body.ndjson"), atomically: true, encoding: .utf8)
        try await run(URL(fileURLWithPath: "/usr/bin/env"), ["curl", "-sf", "--cacert", cert, "-H", "Authorization: Bearer \(ingest)",
                                                            "--data-binary", "@" + dir.path("body.ndjson"),
                                                            "https://127.0.0.1:\(port)/v1/ingest?format=vault"], timeout: 30).expect(0, "curl ingest over https")
        try auditor.write(toFile: dir.path("auditor.token"), atomically: true, encoding: .utf8)
        let base = "https://127.0.0.1:\(port)"
        let v = try await run(custos, ["verify", "--url", base, "--vkey", data + "/keys/trail.vkey", "--token-file", dir.path("auditor.token"),
                                       "--ca-file", cert], timeout: 120)
        try v.expect(0, "verify --url https --ca-file")
        #expect(v.stdout.contains("size 5 "), "\(v.stdout)")
        // Without the CA the certificate is not trusted: exit 3, nothing verified.
        let untrusted = try await run(custos, ["verify", "--url", base, "--vkey", data + "/keys/trail.vkey", "--token-file", dir.path("auditor.token")], timeout: 120)
        #expect(untrusted.status == 3, "\(untrusted.stdout)\(untrusted.stderr)")
        try await server.stop()
        // The server gone: exit 3, and the error names the failure plainly (not NIO's
        // "connection reset (error set): Connection refused) (errno: 111)").
        let gone = try await run(custos, ["verify", "--url", "http://127.0.0.1:\(port)", "--vkey", data + "/keys/trail.vkey",
                                          "--token-file", dir.path("auditor.token")], timeout: 120)
        #expect(gone.status == 3, "\(gone.stdout)\(gone.stderr)")
        #expect(gone.stderr.contains("cannot read the trail from http://127.0.0.1:\(port)") && gone.stderr.contains("connection refused"), "\(gone.stderr)")
        #expect(!gone.stderr.contains("errno"), "\(gone.stderr)")
    }
}
