import AsyncHTTPClient
import CustosAlerting
@testable import CustosCore
import Foundation
import Testing

/// Delivery to a real Prometheus Alertmanager (Debian's `prometheus-alertmanager`, installed
/// by .ci/run), started by the test on a loopback port with a null receiver. Skipped when
/// the binary is absent, unless CUSTOS_REQUIRE_ALERTMANAGER=1 (CI), where that fails.
@Suite struct NotifierAlertmanagerTests {
    static let required = ProcessInfo.processInfo.environment["CUSTOS_REQUIRE_ALERTMANAGER"] == "1"

    /// CUSTOS_ALERTMANAGER_BIN, else Debian's path, else an upstream install.
    static let binary: String? = {
        var candidates = ["/usr/bin/prometheus-alertmanager", "/usr/local/bin/alertmanager"]
        if let b = ProcessInfo.processInfo.environment["CUSTOS_ALERTMANAGER_BIN"], !b.isEmpty { candidates.insert(b, at: 0) }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    static let config = """
        route:
          receiver: "null"
          group_wait: 1s
        receivers:
          - name: "null"
        """

    @Test(.enabled(if: binary != nil || required, "prometheus-alertmanager is not installed (apt-get install prometheus-alertmanager; CI sets CUSTOS_REQUIRE_ALERTMANAGER=1)"),
          .timeLimit(.minutes(1)))
    func theAlertIsListedByTheAlertmanagerAPIWithItsLabels() async throws {
        guard let binary = Self.binary else {
            Issue.record("CUSTOS_REQUIRE_ALERTMANAGER=1 but no Alertmanager binary: looked for /usr/bin/prometheus-alertmanager (Debian package prometheus-alertmanager), /usr/local/bin/alertmanager and CUSTOS_ALERTMANAGER_BIN")
            return
        }
        let dir = try ScratchDir("alertmanager")
        defer { dir.remove() }
        try Self.config.write(toFile: dir.path("alertmanager.yml"), atomically: true, encoding: .utf8)
        let (am, port) = try await Self.start(binary, dir: dir)
        defer { am.stop() }
        let base = "http://127.0.0.1:\(port)"

        let closed = try unusedLoopbackPort()
        let policy = try NotifierSamples.policy("""
            owners:
              sec: { name: Security team, notify: [ { alertmanager: "\(base)" } ] }
              ops: { name: Platform on-call, notify: [ { webhook: "http://127.0.0.1:\(closed)/hook" } ] }
            fallback_owner: sec
            """)
        let notifier = AlertNotifier(policy: policy, retry: RetryPolicy(attempts: 1, timeout: .seconds(8), sleep: { _ in }))
        // Times relative to now: Alertmanager refuses a startsAt after its own endsAt.
        let now = Int64(Date().timeIntervalSince1970)
        var alert = NotifierSamples.alert()
        alert.raisedAt = EventTime(seconds: now)
        alert.time = EventTime(seconds: now - 90, nanos: 250_000_000, digits: 3)
        alert.lastTime = EventTime(seconds: now - 30)
        alert.slaDeadline = EventTime(seconds: now + 3600)
        var other = NotifierSamples.alert(id: "7e57000000000000000000000000beef", alertClass: .break_glass, severity: .critical, owner: "ops",
                                          ownerName: "Platform on-call", summary: "root token read secret/data/prod/payments/db")
        other.raisedAt = EventTime(seconds: now)
        other.time = EventTime(seconds: now - 10)

        let outcomes = await notifier.deliver([alert, other])
        #expect(outcomes.count == 3)
        #expect(outcomes[0].delivered && outcomes[0].target == DeliveryTarget(kind: "alertmanager", endpoint: base), "\(outcomes)")
        #expect(!outcomes[1].delivered && outcomes[1].ownerKey == "ops")
        #expect(outcomes[2].delivered && outcomes[2].isFailureNotice && outcomes[2].ownerKey == "sec", "\(outcomes)")

        let listed = try await Self.alerts(base)
        let mine = try #require(listed.first { ($0["labels"] as? [String: String])?["alertname"] == "custos_failed_threshold" },
                                "not listed: \(listed)")
        let labels = try #require(mine["labels"] as? [String: String])
        #expect(labels["class"] == "failed_threshold")
        #expect(labels["owner"] == "sec")
        #expect(labels["secret"] == "secret/data/prod/payments/db")
        #expect(labels["severity"] == "high")
        #expect(labels["environment"] == "prod")
        #expect(labels["identity"] == "token-payment-processor")
        let annotations = try #require(mine["annotations"] as? [String: String])
        #expect(annotations["alert_id"] == alert.id)
        #expect(annotations["playbook"] == "PB-SEC-01")
        #expect(annotations["sla_deadline"] == alert.slaDeadline?.description)
        let startsAt = try #require(mine["startsAt"] as? String)
        #expect(EventTime(rfc3339: startsAt).map { $0.seconds } == now - 90, "\(startsAt)")
        let state = (mine["status"] as? [String: Any])?["state"] as? String
        #expect(state == "active" || state == "unprocessed", "\(state ?? "nil")")

        // The failure of the other alert's webhook, as the fallback owner's Alertmanager sees it.
        let notice = try #require(listed.first { ($0["labels"] as? [String: String])?["alertname"] == "custos_delivery_failure" },
                                  "no failure notice listed: \(listed)")
        let nl = try #require(notice["labels"] as? [String: String])
        #expect(nl["alert_id"] == other.id && nl["class"] == "break_glass" && nl["owner"] == "ops")
        #expect(nl["target_kind"] == "webhook" && nl["target"] == "http://127.0.0.1:\(closed)")
        #expect(!"\(notice)".contains("/hook"))
    }

    /// Starts Alertmanager on a free loopback port (a few tries, as the port is picked
    /// before Alertmanager binds it) and waits for /-/ready.
    static func start(_ binary: String, dir: ScratchDir) async throws -> (ChildProcess, Int) {
        var lastError = ""
        for attempt in 1...3 {
            let port = try unusedLoopbackPort()
            let storage = dir.path("data-\(attempt)")
            try FileManager.default.createDirectory(atPath: storage, withIntermediateDirectories: true)
            let am = try ChildProcess(binary, [
                "--config.file=\(dir.path("alertmanager.yml"))",
                "--storage.path=\(storage)",
                "--web.listen-address=127.0.0.1:\(port)",
                "--cluster.listen-address=",
                "--log.level=warn",
            ], logDir: dir, name: "alertmanager-\(attempt)")
            // 200 looks 100 ms apart (at least 20 s; longer when a full parallel run keeps
            // this task waiting between looks, which a wall-clock deadline would count).
            for _ in 0..<200 where am.process.isRunning {
                if (try? await get("http://127.0.0.1:\(port)/-/ready").0) == 200 { return (am, port) }
                try await Task.sleep(for: .milliseconds(100))
            }
            lastError = "alertmanager (\(binary)) did not become ready on 127.0.0.1:\(port) (running: \(am.process.isRunning))\n--- stderr ---\n\(am.stderr)"
            am.stop()
        }
        throw NotifierTestFailure(lastError)
    }

    static func get(_ url: String) async throws -> (Int, [UInt8]) {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(2))
        var body = try await response.body.collect(upTo: 4 << 20)
        return (Int(response.status.code), body.readBytes(length: body.readableBytes) ?? [])
    }

    static func alerts(_ base: String) async throws -> [[String: Any]] {
        let (status, body) = try await get("\(base)/api/v2/alerts")
        guard status == 200 else { throw NotifierTestFailure("GET /api/v2/alerts: HTTP \(status)") }
        guard let list = try JSONSerialization.jsonObject(with: Data(body)) as? [[String: Any]] else {
            throw NotifierTestFailure("GET /api/v2/alerts: not a JSON array")
        }
        return list
    }
}
