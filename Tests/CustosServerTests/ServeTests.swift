import CustosAlerting
import CustosCore
@testable import CustosServer
import CustosStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// `custos serve` over real HTTP on loopback (HummingbirdTesting's live framework).
@Suite struct ServeTests {
    struct Tokens { var ingest: String; var auditor: String; var admin: String }

    /// A server on a fresh data directory with one token per role.
    static func make(_ dir: TempDir, configure: (inout ServeConfig) -> Void = { _ in },
                     policy: String? = nil, beforeCommit: (@Sendable (Int) -> Void)? = nil,
                     beforeIndex: (@Sendable () throws -> Void)? = nil) throws -> (ServeState, Tokens) {
        var c = ServeConfig()
        c.data = dir.path
        c.port = 0
        configure(&c)
        let store = try DataStore(directory: dir.path, origin: "t.example/log")
        let t = Tokens(ingest: TokenStore.generate(), auditor: TokenStore.generate(), admin: TokenStore.generate())
        let tokens = TokenStore(entries: [TokenStore.entry(token: t.ingest, role: .ingest, name: "i"),
                                          TokenStore.entry(token: t.auditor, role: .auditor, name: "a"),
                                          TokenStore.entry(token: t.admin, role: .admin, name: "root-admin")])
        var detector: Detector?
        var loadedPolicy: Policy?
        if let policy {
            let loaded = try PolicyLoader.load(yaml: policy, baseDirectory: dir.path)
            detector = Detector(engine: DetectionEngine(policy: loaded.policy))
            loadedPolicy = loaded.policy
        }
        return (ServeState(config: c, store: store, tokens: tokens, detector: detector, policy: loadedPolicy, beforeCommit: beforeCommit, beforeIndex: beforeIndex), t)
    }

    static func gzip(_ data: [UInt8]) throws -> [UInt8] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", "import sys,gzip; sys.stdout.buffer.write(gzip.compress(sys.stdin.buffer.read()))"]
        let inp = Pipe(), out = Pipe()
        p.standardInput = inp; p.standardOutput = out
        try p.run()
        inp.fileHandleForWriting.write(Data(data))
        try inp.fileHandleForWriting.close()
        let result = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Array(result)
    }

    static func json(_ b: ByteBuffer) -> Any? { try? JSONSerialization.jsonObject(with: Data(String(buffer: b).utf8)) }

    static let pairs = vaultPair(id: "r1", path: "secret/data/prod/db", name: "alice")
        + vaultPair(id: "r2", path: "secret/data/prod/db", name: "bob", error: "permission denied")

    @Test func ingestIsDurableAndReadableBack() async throws {
        let dir = TempDir()
        let (state, t) = try Self.make(dir)
        let dataPath = dir.path
        try await buildApplication(state: state).test(.live) { client in
            let auth: HTTPFields = [.authorization: "Bearer \(t.ingest)"]
            try await client.execute(uri: "/v1/ingest?format=vault&instance=v1", method: .post, headers: auth,
                                     body: ByteBuffer(string: Self.pairs + "{not json\n")) { r in
                #expect(r.status == .ok)
                let o = try #require(Self.json(r.body) as? [String: Any])
                #expect(o["accepted"] as? Int == 2 && o["first_index"] as? Int == 0 && o["last_index"] as? Int == 1)
                #expect(o["rejected"] as? Int == 1)
                let rej = try #require((o["rejections"] as? [[String: Any]])?.first)
                #expect(rej["record"] as? Int == 5 && (rej["reason"] as? String ?? "").contains("invalid JSON"))
            }
            // Acknowledged means durable: the trail on disk has them now.
            #expect(state.store.trail.size == 2)
            // The same records again: duplicates, nothing added.
            try await client.execute(uri: "/v1/ingest?format=vault&instance=v1", method: .post, headers: auth, body: ByteBuffer(string: Self.pairs)) { r in
                let o = try #require(Self.json(r.body) as? [String: Any])
                #expect(o["accepted"] as? Int == 0 && o["duplicates"] as? Int == 2)
            }
            let read: HTTPFields = [.authorization: "Bearer \(t.auditor)"]
            try await client.execute(uri: "/v1/events?outcome=denied", method: .get, headers: read) { r in
                #expect(r.status == .ok)
                let arr = try #require(Self.json(r.body) as? [[String: Any]])
                #expect(arr.count == 1)
                #expect((arr.first?["identity"] as? [String: Any])?["name"] as? String == "bob")
                #expect(arr.first?["index"] as? Int == 1)
            }
            try await client.execute(uri: "/v1/events?kind=wizard", method: .get, headers: read) { r in #expect(r.status == .badRequest) }
            // The trail itself, for tlog-tiles clients.
            try await client.execute(uri: "/trail/checkpoint", method: .get, headers: read) { r in
                #expect(r.status == .ok)
                let lines = String(buffer: r.body).split(separator: "\n")
                // Two events, and the auditor's query above recorded as an investigation.
                #expect(lines.first == "t.example/log" && lines.dropFirst().first == "3")
            }
            try await client.execute(uri: "/trail/tile/entries/000.p/2", method: .get, headers: read) { r in
                #expect(r.status == .ok)
                let onDisk = try Data(contentsOf: URL(fileURLWithPath: dataPath + "/trail/tile/entries/000.p/2"))
                #expect(Data(r.body.readableBytesView) == onDisk)
            }
            for bad in ["/trail/tile/entries/../../keys/trail.key", "/trail/tile/0/x001/002", "/trail/tile/9/000.p/0", "/trail/tile/entries/000.p/02"] {
                try await client.execute(uri: bad, method: .get, headers: read) { r in #expect(r.status == .notFound || r.status == .badRequest, "\(bad)") }
            }
        }
    }

    /// The index is derived and follows the trail: if indexing fails, ingest goes on being
    /// acknowledged (the events are durable in the trail), but reads are refused with 503 (an
    /// answer must not miss an acknowledged event) and /readyz says why, until a restart
    /// rebuilds the index from the trail.
    @Test func anIndexFailureRefusesReadsAndIngestGoesOn() async throws {
        struct DiskFull: Error, CustomStringConvertible { var description: String { "the disk is full" } }
        let dir = TempDir()
        let calls = Counter()
        let (state, t) = try Self.make(dir, beforeIndex: { if calls.next() >= 2 { throw DiskFull() } })
        try await buildApplication(state: state).test(.live) { client in
            let auth: HTTPFields = [.authorization: "Bearer \(t.ingest)"]
            let read: HTTPFields = [.authorization: "Bearer \(t.auditor)"]
            for (k, id) in ["a1", "a2", "a3"].enumerated() {
                try await client.execute(uri: "/v1/ingest?format=vault", method: .post, headers: auth,
                                         body: ByteBuffer(string: vaultPair(id: id, path: "secret/data/x", name: "n\(k)"))) { r in
                    #expect(r.status == .ok)
                    #expect((Self.json(r.body) as? [String: Any])?["accepted"] as? Int == 1)
                }
            }
            #expect(state.store.trail.size == 3)
            try await client.execute(uri: "/v1/events", method: .get, headers: read) { r in
                #expect(r.status == .serviceUnavailable)
                let text = String(buffer: r.body)
                #expect(text.contains("the index stopped following the trail") && text.contains("the disk is full") && text.contains("restart"))
            }
            try await client.execute(uri: "/readyz", method: .get) { r in
                #expect(r.status == .serviceUnavailable)
                #expect(String(buffer: r.body).contains("index"))
            }
        }
        #expect(try state.store.index.indexedSize() == 1)
    }

    @Test func bodiesFromLogShippersAndCustosEvents() async throws {
        let dir = TempDir()
        let (state, t) = try Self.make(dir)
        // Fluent Bit `json` (an array of records, each {"date", "log": original line}),
        // Vector `ndjson` ({"message": original line, ...}), and custos.event/v1 objects.
        let lines = Self.pairs.split(separator: "\n").map(String.init)
        func quote(_ s: String) -> String { JSONText.quote(s) }
        let fluent = "[" + lines.map { "{\"date\":1764300000.1,\"log\":\(quote($0))}" }.joined(separator: ",") + "]"
        let vector = vaultPair(id: "r3", path: "secret/data/dev/x", name: "carol").split(separator: "\n")
            .map { "{\"message\":\(quote(String($0))),\"host\":\"h\",\"timestamp\":\"2026-01-02T03:04:05Z\"}" }.joined(separator: "\n")
        let e = AccessEvent(id: "ext-1", time: EventTime(rfc3339: "2026-01-02T03:04:05Z")!, source: .init(kind: "aws", instance: "acct"),
                            action: .read, outcome: .success, secret: .init(path: "arn:aws:secretsmanager:x"), identity: .init(name: "svc", kind: .service))
        try await buildApplication(state: state).test(.live) { client in
            let auth: HTTPFields = [.authorization: "Bearer \(t.ingest)"]
            for (format, body, accepted) in [("vault", fluent, 2), ("auto", vector, 1), ("custos", String(decoding: e.canonicalJSON(), as: UTF8.self), 1)] {
                try await client.execute(uri: "/v1/ingest?format=\(format)", method: .post, headers: auth, body: ByteBuffer(string: body)) { r in
                    #expect(r.status == .ok, "\(format): \(String(buffer: r.body))")
                    #expect((Self.json(r.body) as? [String: Any])?["accepted"] as? Int == accepted, "\(format): \(String(buffer: r.body))")
                }
            }
            try await client.execute(uri: "/v1/ingest?format=vault", method: .post, headers: auth, body: ByteBuffer(string: "[{\"a\":1},")) { r in
                #expect(r.status == .badRequest)
                #expect(String(buffer: r.body).contains("not a JSON array"))
            }
            // gzip, as Fluent Bit and Vector send it (compressed by python3's gzip module).
            let gz = try Self.gzip(Array(Self.pairs.utf8))
            try await client.execute(uri: "/v1/ingest?format=vault&instance=gz", method: .post,
                                     headers: [.authorization: "Bearer \(t.ingest)", .contentEncoding: "gzip"], body: ByteBuffer(bytes: gz)) { r in
                #expect(r.status == .ok, "\(String(buffer: r.body))")
                #expect((Self.json(r.body) as? [String: Any])?["accepted"] as? Int == 2)
            }
            try await client.execute(uri: "/v1/ingest?format=vault", method: .post,
                                     headers: [.authorization: "Bearer \(t.ingest)", .contentEncoding: "gzip"], body: ByteBuffer(bytes: Array(gz.dropLast(5)))) { r in
                #expect(r.status == .badRequest)
                #expect(String(buffer: r.body).contains("gzip"))
            }
            try await client.execute(uri: "/v1/ingest?format=xml", method: .post, headers: auth, body: ByteBuffer(string: "")) { r in
                #expect(r.status == .badRequest)
            }
        }
        let reader = try EventReader(directory: dir.path)
        let all = try reader.events(EventQuery())
        #expect(all.count == 6)
        #expect(all.contains { $0.event == e })
    }

    @Test func limitsAndBackpressure() async throws {
        let dir = TempDir()
        let (state, t) = try Self.make(dir, configure: {
            $0.limits.maxBodyBytes = 4096
            $0.limits.maxLineBytes = 2048
            $0.limits.maxPendingEvents = 3
        })
        try await buildApplication(state: state).test(.live) { client in
            let auth: HTTPFields = [.authorization: "Bearer \(t.ingest)"]
            try await client.execute(uri: "/v1/ingest", method: .post, headers: auth, body: ByteBuffer(string: String(repeating: "x", count: 5000))) { r in
                #expect(r.status == .contentTooLarge)
                #expect(String(buffer: r.body).contains("4096"))
            }
            try await client.execute(uri: "/v1/ingest", method: .post, headers: auth,
                                     body: ByteBuffer(string: "{\"type\":\"response\",\"x\":\"\(String(repeating: "y", count: 2100))\"}\n")) { r in
                #expect(r.status == .ok)
                #expect(String(buffer: r.body).contains("longer than 2048 bytes"))
            }
            // A small gzip body that inflates past the limit is refused as too large.
            let bomb = try Self.gzip(Array(repeating: 0x20, count: 200_000))
            #expect(bomb.count < 4096)
            try await client.execute(uri: "/v1/ingest", method: .post, headers: [.authorization: "Bearer \(t.ingest)", .contentEncoding: "gzip"],
                                     body: ByteBuffer(bytes: bomb)) { r in
                #expect(r.status == .contentTooLarge, "\(String(buffer: r.body))")
            }
            try await client.execute(uri: "/v1/ingest", method: .post, headers: [.authorization: "Bearer \(t.ingest)", .contentEncoding: "br"], body: ByteBuffer(string: "x")) { r in
                #expect(r.status == .unsupportedMediaType)
            }
            // Two events of another request wait for their commit: two more would exceed the queue.
            #expect(state.reserve(2))
            try await client.execute(uri: "/v1/ingest?format=vault", method: .post, headers: auth, body: ByteBuffer(string: Self.pairs)) { r in
                #expect(r.status == .serviceUnavailable)
                #expect(r.headers[.retryAfter] == "1")
                #expect(String(buffer: r.body).contains("retry later"))
            }
            try await client.execute(uri: "/metrics", method: .get, headers: [.authorization: "Bearer \(t.auditor)"]) { r in
                let text = String(buffer: r.body)
                #expect(text.contains("custos_queue_events 2"))
                #expect(text.contains("custos_ingest_overloaded_total 1"))
            }
            #expect(state.store.trail.size == 0, "a refused request must not be committed")
            state.release(2, failure: nil)
            try await client.execute(uri: "/v1/ingest?format=vault", method: .post, headers: auth, body: ByteBuffer(string: Self.pairs)) { r in
                #expect(r.status == .ok)
            }
            try await client.execute(uri: "/metrics", method: .get, headers: [.authorization: "Bearer \(t.auditor)"]) { r in
                let text = String(buffer: r.body)
                #expect(text.contains("custos_queue_events 0"))
                #expect(text.contains("custos_events_accepted_total{source=\"vault\"} 2"))
                #expect(text.contains("custos_trail_size 2"))
            }
        }
        // A single request larger than the whole queue is still taken when the queue is empty.
        #expect(state.reserve(10))
        state.release(10, failure: nil)
        // Readiness: a failed commit makes the server not ready until the next good one.
        state.release(0, failure: "disk full")
        #expect(state.notReady()?.contains("disk full") == true)
        state.release(0, failure: nil)
        #expect(state.notReady() == nil)
    }

    /// Each role against each endpoint: only what the role is for. A verified GitHub Actions
    /// OIDC token (`oidc`) is an ingest credential and nothing else.
    @Test func authorizationMatrix() async throws {
        let dir = TempDir()
        let (state, t) = try Self.make(dir) { $0.oidc = [TestIssuer.shared.issuerConfig()] }
        let jwt = TestIssuer.shared.token(TestIssuer.claims())
        enum Who: CaseIterable, Sendable { case none, wrong, ingest, auditor, admin, oidc }
        @Sendable func header(_ w: Who) -> HTTPFields {
            switch w {
            case .none: return [:]
            case .wrong: return [.authorization: "Bearer custos_not-a-real-token"]
            case .ingest: return [.authorization: "Bearer \(t.ingest)"]
            case .auditor: return [.authorization: "Bearer \(t.auditor)"]
            case .admin: return [.authorization: "Bearer \(t.admin)"]
            case .oidc: return [.authorization: "Bearer \(jwt)"]
            }
        }
        struct Endpoint { var method: HTTPRequest.Method; var uri: String; var body: String; var allowed: Set<String> }
        let endpoints = [
            Endpoint(method: .post, uri: "/v1/ingest?format=vault", body: Self.pairs, allowed: ["ingest", "oidc"]),
            Endpoint(method: .get, uri: "/v1/events", body: "", allowed: ["auditor"]),
            Endpoint(method: .get, uri: "/v1/alerts", body: "", allowed: ["auditor"]),
            Endpoint(method: .get, uri: "/v1/blast-radius?secret=secret/data/prod/db", body: "", allowed: ["auditor"]),
            Endpoint(method: .get, uri: "/trail/checkpoint", body: "", allowed: ["auditor"]),
            Endpoint(method: .get, uri: "/v1/incidents?state=all", body: "", allowed: ["auditor", "admin"]),
            Endpoint(method: .get, uri: "/v1/evidence?from=2026-01-01&to=2027-01-01", body: "", allowed: ["auditor"]),
            Endpoint(method: .get, uri: "/metrics", body: "", allowed: ["auditor", "admin"]),
            Endpoint(method: .post, uri: "/v1/silences", body: "{\"reason\":\"r\",\"expires\":\"1h\",\"class\":\"off_hours\"}", allowed: ["admin"]),
            Endpoint(method: .get, uri: "/healthz", body: "", allowed: ["none", "wrong", "ingest", "auditor", "admin", "oidc"]),
        ]
        try await buildApplication(state: state).test(.live) { client in
            for e in endpoints {
                for w in Who.allCases {
                    let name = "\(w)"
                    try await client.execute(uri: e.uri, method: e.method, headers: header(w), body: ByteBuffer(string: e.body)) { r in
                        if e.allowed.contains(name) {
                            #expect(r.status.code < 300, "\(name) \(e.method) \(e.uri): \(r.status)")
                        } else if w == .none || w == .wrong {
                            #expect(r.status == .unauthorized, "\(name) \(e.method) \(e.uri): \(r.status)")
                            #expect(r.headers[.wwwAuthenticate] != nil)
                        } else {
                            #expect(r.status == .forbidden, "\(name) \(e.method) \(e.uri): \(r.status)")
                        }
                    }
                }
            }
            // Nothing deletes or rewrites the trail, whoever asks.
            for w in Who.allCases {
                for (m, uri) in [(HTTPRequest.Method.delete, "/v1/events"), (.put, "/trail/checkpoint"), (.delete, "/trail/tile/entries/000.p/2"),
                                 (.patch, "/v1/alerts"), (.post, "/trail/checkpoint")] {
                    try await client.execute(uri: uri, method: m, headers: header(w), body: ByteBuffer(string: "{}")) { r in
                        #expect(r.status == .notFound || r.status == .methodNotAllowed, "\(w) \(m) \(uri): \(r.status)")
                    }
                }
            }
        }
        // The admin's silence is in the trail, owned by the token's name.
        let s = try EventReader(directory: dir.path).silences()
        #expect(s.count == 1 && s.first?.owner == "root-admin" && s.first?.alertClass == .off_hours)
    }

    @Test func liveDetectionRecordsAlertsAfterTheirEvents() async throws {
        let dir = TempDir()
        let policy = """
            owners:
              sec: { name: Security team, notify: [ { webhook: "http://127.0.0.1:9/x" } ] }
            classes:
              failed_threshold: { action: alert, severity: high, owner: sec, sla: 1h, count: 3, window: 5m }
            """
        let (state, t) = try Self.make(dir, policy: policy)
        try await buildApplication(state: state).test(.live) { client in
            for i in 0..<3 {
                let body = vaultPair(id: "d\(i)", path: "secret/data/prod/db", name: "ci", error: "permission denied",
                                     time: "2026-01-02T03:0\(i):00.000000001Z")
                try await client.execute(uri: "/v1/ingest?format=vault", method: .post, headers: [.authorization: "Bearer \(t.ingest)"],
                                         body: ByteBuffer(string: body)) { r in #expect(r.status == .ok) }
            }
            try await client.execute(uri: "/v1/alerts?class=failed_threshold", method: .get, headers: [.authorization: "Bearer \(t.auditor)"]) { r in
                let arr = try #require(Self.json(r.body) as? [[String: Any]])
                #expect(arr.count == 1)
                #expect(arr.first?["evidence"] as? [Int] == [0, 1, 2])
                #expect(arr.first?["index"] as? Int == 3)
            }
            try await client.execute(uri: "/metrics", method: .get, headers: [.authorization: "Bearer \(t.admin)"]) { r in
                #expect(String(buffer: r.body).contains("custos_alerts_total{class=\"failed_threshold\"} 1"))
            }
        }
    }

    @Test func tokensAreHashedAtRestAndCheckedWhole() throws {
        let dir = TempDir()
        let path = dir.path + "/keys/tokens"
        let tok = TokenStore.generate()
        #expect(tok.hasPrefix("custos_") && tok.count == 7 + 43)
        try TokenStore.append(TokenStore.entry(token: tok, role: .auditor, name: "ci"), path: path)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(!text.contains(tok) && !text.contains(String(tok.dropFirst(7))))
        let s = try TokenStore.load(path: path)
        #expect(s.role(of: tok)?.0 == .auditor)
        #expect(s.role(of: String(tok.dropLast())) == nil)
        #expect(s.role(of: tok + "x") == nil)
        #expect(s.role(of: "") == nil)
        // A tokens file others can read is refused.
        chmod(path, 0o644)
        #expect(throws: IngestError.self) { try TokenStore.load(path: path) }
        chmod(path, 0o600)
        try "sha256:zz auditor x\n".write(toFile: path, atomically: false, encoding: .utf8)
        #expect(throws: IngestError.self) { try TokenStore.load(path: path) }
    }

    @Test func configProblemsByKeyPath() throws {
        let c = try ServeConfig.parse(yaml: "listen: \"[::1]:9000\"\ndata: d\npolicy: p.yaml\nlimits: { max_batch: 10 }\nreadiness: { max_commit_age: 2m }\n", baseDirectory: "/etc/custos")
        #expect(c.host == "::1" && c.port == 9000 && c.data == "/etc/custos/d" && c.policy == "/etc/custos/p.yaml")
        #expect(c.limits.maxBatch == 10 && c.maxCommitAge == 120)
        do {
            _ = try ServeConfig.parse(yaml: "listen: nowhere\nlimits: { max_batch: 0, colour: red }\nnotify: true\n", baseDirectory: ".")
            Issue.record("accepted a bad config")
        } catch {
            let paths = error.problems.map(\.path)
            #expect(paths.contains("listen") && paths.contains("limits.max_batch") && paths.contains("limits.colour") && paths.contains("notify"))
        }
    }

    @Test func tilePathGrammar() {
        for ok in [["checkpoint"], ["tile", "0", "000"], ["tile", "entries", "x001", "234"], ["tile", "1", "000.p", "17"], ["tile", "entries", "005.p", "255"]] {
            #expect(ServeAPI.validTilePath(ok), "\(ok)")
        }
        for bad in [["tile"], ["tile", "0"], ["tile", "..", "000"], ["tile", "entries", "000.p", "0"], ["tile", "entries", "000.p", "256"],
                    ["tile", "entries", "0000"], ["tile", "entries", "x1", "000"], ["tile", "10", "000"], ["keys", "trail.key"], ["tile", "0", "000.p", "007"]] {
            #expect(!ServeAPI.validTilePath(bad), "\(bad)")
        }
    }
}

