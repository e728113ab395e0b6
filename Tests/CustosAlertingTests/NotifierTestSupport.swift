import CustosAlerting
@testable import CustosCore
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct NotifierTestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

enum NotifierSamples {
    /// The test target's Fixtures folder (the receiver scripts live there).
    static var fixtures: URL { Bundle.module.url(forResource: "Fixtures", withExtension: nil)! }
    static let raisedAt = EventTime(rfc3339: "2026-12-01T12:00:00Z")!

    static func alert(id: String = "3f2a9c0d1e2b4a5f8c7d6e5f4a3b2c1d", alertClass: AlertClass = .failed_threshold,
                      severity: Severity = .high, owner: String? = "sec", ownerName: String = "Security team",
                      summary: String = "3 denied reads of secret/data/prod/payments/db by token-payment-processor within 5 minutes",
                      identityName: String = "token-payment-processor", status: Alert.Status = .raised,
                      silencedBy: String? = nil) -> Alert {
        Alert(id: id, status: status, alertClass: alertClass, severity: severity,
              owner: owner.map { Alert.OwnerRef(key: $0, name: ownerName) }, raisedAt: raisedAt,
              slaDeadline: EventTime(rfc3339: "2026-12-01T13:00:00Z")!, playbook: "PB-SEC-01",
              time: EventTime(rfc3339: "2026-12-01T11:58:10.123456789Z")!, lastTime: EventTime(rfc3339: "2026-12-01T11:59:40Z")!,
              secret: AccessEvent.Secret(store: "secret/", path: "secret/data/prod/payments/db", environment: "prod"),
              identity: .init(id: "hmac-sha256:9dfb00aa", name: identityName, kind: .api_key),
              action: .read, outcome: .denied, origin: .init(ip: "203.0.113.7", country: "GB", city: "London"),
              count: 3, dedupKey: "\(alertClass.rawValue):\(identityName)", evidence: [4, 5, 6], summary: summary,
              details: ["window": "300 s", "threshold": "3"], silencedBy: silencedBy)
    }

    /// A policy with the given owners block (and optional smtp/fallback lines).
    static func policy(_ yaml: String) throws -> Policy {
        try PolicyLoader.load(yaml: yaml, baseDirectory: fixtures.path).policy
    }
}

/// Records the backoff waits instead of waiting.
final class SleepLog: @unchecked Sendable {
    private let lock = NSLock()
    private var _delays: [Duration] = []
    var delays: [Duration] { lock.lock(); defer { lock.unlock() }; return _delays }
    var sleeper: RetryPolicy.Sleeper {
        { [self] d in lock.withLock { _delays.append(d) } }
    }
}

/// A scratch directory under the system's temporary folder, removed by `remove()`.
struct ScratchDir {
    let url: URL
    init(_ name: String) throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("custos-notifier-tests")
            .appendingPathComponent("\(name)-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    func path(_ child: String) -> String { url.appendingPathComponent(child).path }
    func remove() { try? FileManager.default.removeItem(at: url) }
}

/// A program the test starts and stops; its standard output and error go to files.
final class ChildProcess: @unchecked Sendable {
    let process = Process()
    let name: String
    let stdoutPath: String, stderrPath: String

    init(_ executable: String, _ arguments: [String], logDir: ScratchDir, name: String) throws {
        self.name = name
        stdoutPath = logDir.path("\(name).stdout")
        stderrPath = logDir.path("\(name).stderr")
        _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: stdoutPath))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch { throw NotifierTestFailure("cannot start \(name) (\(executable)): \(error)") }
    }

    var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    /// The first `n` complete lines of standard output, waiting for them.
    func lines(_ n: Int, within seconds: Double = 90) async throws -> [String] {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let lines = stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
            if lines.count >= n { return Array(lines.prefix(n)) }
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        // One last look: under a loaded test run the sleep above can overshoot the deadline.
        let last = stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
        if last.count >= n { return Array(last.prefix(n)) }
        throw NotifierTestFailure("\(name) did not print \(n) line(s) (running: \(process.isRunning))\n--- stdout ---\n\(stdout)\n--- stderr ---\n\(stderr)")
    }

    /// SIGTERM, then SIGKILL after `grace` seconds (children of Foundation's Process start
    /// with most signals blocked, so a program that does not unblock them ignores SIGTERM).
    func stop(grace: Double = 3) {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = Date().addingTimeInterval(grace)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

/// What the webhook receiver recorded of one request.
struct RecordedRequest {
    var path: String
    var headers: [String: String]
    var body: [UInt8]
    var status: Int
    var json: Any? { try? JSONSerialization.jsonObject(with: Data(body)) }
}

/// What the SMTP server recorded of one message.
struct RecordedMail {
    var mailFrom: String
    var rcptTos: [String]
    var data: [UInt8]
    var text: String { String(decoding: data, as: UTF8.self) }
}

/// A Python receiver (Fixtures/webhook_receiver.py or smtp_receiver.py) on 127.0.0.1.
struct Receiver {
    let child: ChildProcess
    let port: Int
    let dir: ScratchDir
    let implementation: String?

    static func script(_ name: String) -> String { NotifierSamples.fixtures.appendingPathComponent(name).path }

    static func webhook(statuses: String = "200") async throws -> Receiver {
        let dir = try ScratchDir("webhook")
        try FileManager.default.createDirectory(atPath: dir.path("requests"), withIntermediateDirectories: true)
        let child = try ChildProcess("/usr/bin/env", ["python3", script("webhook_receiver.py"), dir.path("requests"), statuses],
                                     logDir: dir, name: "webhook_receiver")
        return try await started(child, dir: dir, lines: 1)
    }

    static func smtp() async throws -> Receiver {
        let dir = try ScratchDir("smtp")
        try FileManager.default.createDirectory(atPath: dir.path("requests"), withIntermediateDirectories: true)
        let child = try ChildProcess("/usr/bin/env", ["python3", script("smtp_receiver.py"), dir.path("requests")],
                                     logDir: dir, name: "smtp_receiver")
        return try await started(child, dir: dir, lines: 2)
    }

    static func started(_ child: ChildProcess, dir: ScratchDir, lines n: Int) async throws -> Receiver {
        do {
            let lines = try await child.lines(n)
            guard let port = Int(lines[0]) else { throw NotifierTestFailure("\(child.name) printed \(lines[0]) instead of a port") }
            return Receiver(child: child, port: port, dir: dir, implementation: n > 1 ? lines[1] : nil)
        } catch {
            child.stop()
            dir.remove()
            throw error
        }
    }

    var url: String { "http://127.0.0.1:\(port)" }

    func stop() { child.stop(); dir.remove() }

    func files() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir.path("requests"))) ?? []).filter { $0.hasSuffix(".json") }.sorted()
    }

    /// Waits until at least `n` records exist, then returns them all.
    func records(atLeast n: Int, within seconds: Double = 5) async throws -> [[String: Any]] {
        let deadline = Date().addingTimeInterval(seconds)
        while files().count < n && Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        return try files().map { f in
            let data = try Data(contentsOf: URL(fileURLWithPath: dir.path("requests/\(f)")))
            guard let o = try JSONSerialization.jsonObject(with: data) as? [String: Any] else { throw NotifierTestFailure("bad record \(f)") }
            return o
        }
    }

    func requests(atLeast n: Int = 1) async throws -> [RecordedRequest] {
        try await records(atLeast: n).map {
            RecordedRequest(path: $0["path"] as? String ?? "", headers: $0["headers"] as? [String: String] ?? [:],
                            body: Array(Data(base64Encoded: $0["body_b64"] as? String ?? "") ?? Data()),
                            status: $0["status"] as? Int ?? 0)
        }
    }

    func mails(atLeast n: Int = 1) async throws -> [RecordedMail] {
        try await records(atLeast: n).map {
            RecordedMail(mailFrom: $0["mail_from"] as? String ?? "", rcptTos: $0["rcpt_tos"] as? [String] ?? [],
                         data: Array(Data(base64Encoded: $0["data_b64"] as? String ?? "") ?? Data()))
        }
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on (bound, read, closed).
func unusedLoopbackPort() throws -> Int {
    #if canImport(Glibc)
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    #else
    let fd = socket(AF_INET, SOCK_STREAM, 0)
    #endif
    guard fd >= 0 else { throw NotifierTestFailure("socket() failed") }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = 0
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { throw NotifierTestFailure("bind() failed") }
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let got = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
    }
    guard got == 0 else { throw NotifierTestFailure("getsockname() failed") }
    return Int(UInt16(bigEndian: addr.sin_port))
}

/// Splits an RFC 5322 message into unfolded headers (name lowercased, in order) and body.
func parseMessage(_ text: String) -> (headers: [(String, String)], rawHeaderLines: [String], body: String) {
    let parts = text.components(separatedBy: "\r\n\r\n")
    let head = parts[0]
    let body = parts.dropFirst().joined(separator: "\r\n\r\n")
    let raw = head.components(separatedBy: "\r\n")
    var headers: [(String, String)] = []
    for line in raw {
        if line.hasPrefix(" ") || line.hasPrefix("\t"), !headers.isEmpty {
            headers[headers.count - 1].1 += line
        } else if let colon = line.firstIndex(of: ":") {
            headers.append((line[..<colon].lowercased(), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
    }
    return (headers, raw, body)
}

/// Decodes a quoted-printable body (RFC 2045) written with CRLF line ends.
func decodeQuotedPrintable(_ s: String) -> String {
    var out: [UInt8] = []
    let b = Array(s.utf8)
    var i = 0
    func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x41...0x46: return c - 0x41 + 10
        case 0x61...0x66: return c - 0x61 + 10
        default: return nil
        }
    }
    while i < b.count {
        if b[i] == UInt8(ascii: "=") {
            if i + 2 < b.count, b[i + 1] == 0x0D, b[i + 2] == 0x0A { i += 3; continue }
            if i + 2 < b.count, let h = hex(b[i + 1]), let l = hex(b[i + 2]) { out.append(h << 4 | l); i += 3; continue }
        }
        out.append(b[i])
        i += 1
    }
    return String(decoding: out, as: UTF8.self).replacingOccurrences(of: "\r\n", with: "\n")
}

/// Decodes RFC 2047 `=?UTF-8?B?...?=` words (adjacent words joined), leaving other text.
func decodeEncodedWords(_ s: String) -> String {
    var out = ""
    var rest = Substring(s)
    while let start = rest.range(of: "=?UTF-8?B?") {
        out += rest[..<start.lowerBound].trimmingCharacters(in: .whitespaces).isEmpty && !out.isEmpty ? "" : String(rest[..<start.lowerBound])
        rest = rest[start.upperBound...]
        guard let end = rest.range(of: "?=") else { break }
        out += String(decoding: Data(base64Encoded: String(rest[..<end.lowerBound])) ?? Data(), as: UTF8.self)
        rest = rest[end.upperBound...]
    }
    return out + rest
}
