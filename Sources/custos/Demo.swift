import ArgumentParser
import CustosAlerting
import CustosCore
import CustosServer
import CustosTrail
import Foundation
import AsyncHTTPClient
import NIOCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import ServiceLifecycle

/// `custos demo`: a newcomer's first run. It starts Custos in this process on embedded
/// defaults (a new trail and key, generated API tokens, loopback on an ephemeral port, the
/// example policy with its GeoIP test database), posts a scenario built from the real
/// OpenBao 2.7.2 records of `examples/openbao-audit.log` to the HTTP ingest endpoint, prints
/// each alert as its owner's channels would present it (rendered by the notifiers' own
/// builders; nothing is sent), verifies the trail as `custos verify` does, and says what to
/// try next.
///
/// Secrets: events carry no secret values. The API tokens the demo generates are used in
/// this process only and never printed (their hashes are in DIR/keys/tokens, like any token);
/// the PagerDuty routing key and target URL paths of the policy are not printed either. The
/// verifier key is printed: it is public, and it is what `custos verify` needs.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Try Custos: a realistic scenario from real OpenBao records, every alert class, a verified trail.",
        discussion: """
            Starts Custos in this process (a new trail, generated API tokens, 127.0.0.1 on a \
            free port, examples/policy.yaml with its GeoIP test database), posts a scenario \
            built from the real OpenBao records of examples/openbao-audit.log (re-timed to \
            the last week, with varied addresses, identities and paths) to the HTTP ingest \
            endpoint, prints each alert grouped by owner as that owner's channels would get it \
            (nothing is sent: no notification leaves the machine), and verifies the trail. \
            The data directory is a fresh temporary one, removed at the end unless --keep; \
            --data DIR uses DIR (which must be new or empty) and keeps it. \
            Exit 0 when every alert class fired and the trail verifies; 1 otherwise; 2 usage; \
            3 operational errors.
            """)

    @Option(help: ArgumentHelp("Data directory to create (must be new or empty); kept afterwards.", valueName: "DIR"))
    var data: String?
    @Flag(help: "Keep the temporary data directory (to explore it with `custos alerts`, `query`, `verify`).")
    var keep = false
    @Option(help: ArgumentHelp("The examples folder (policy.yaml, openbao-audit.log, geoip/); found automatically in a source checkout.", valueName: "DIR"))
    var examples: String?

    func run() throws {
        let started = Date()
        let ex = try Self.locateExamples(examples)
        let policyPath = ex + "/policy.yaml"
        let loaded: LoadedPolicy
        do { loaded = try PolicyLoader.load(path: policyPath) } catch {
            for p in error.problems { stderrPrint("\(policyPath): \(p)") }
            throw CLIError.operational("\(policyPath): the example policy does not load")
        }
        guard loaded.locator != nil else { throw CLIError.operational("\(policyPath): no GeoIP database; the demo needs examples/geoip") }
        let records = try DemoScenario.decodeRecords(path: ex + "/openbao-audit.log")
        let scenario = try DemoScenario.build(records: records, now: Date())

        // The data directory: new or empty.
        let dir: String
        let removeAtEnd: Bool
        if let data {
            let fm = FileManager.default
            var isDir: ObjCBool = false
            if fm.fileExists(atPath: data, isDirectory: &isDir) {
                guard isDir.boolValue, (try? fm.contentsOfDirectory(atPath: data))?.isEmpty == true else {
                    throw CLIError.usage("--data \(data): must be a new or empty directory (the demo creates a fresh trail)")
                }
            }
            dir = data
            removeAtEnd = false
        } else {
            dir = FileManager.default.temporaryDirectory.appendingPathComponent("custos-demo-\(UUID().uuidString.prefix(8).lowercased())").path
            removeAtEnd = !keep
        }

        print("Custos demo")
        print("===========")
        print("")
        let store = try DataStore(directory: dir)
        guard let signer = store.createdSigner else { throw CLIError.operational("\(dir): expected a new trail") }
        print("Data directory   \(dir)\(removeAtEnd ? " (temporary; removed at the end, --keep keeps it)" : " (kept)")")
        print("Policy           \(policyPath) (GeoIP: \(loaded.geoDatabasePath ?? "-"))")
        print("Verifier key     \(signer.vkey)")
        print("                 (public: auditors check the trail with it; the signing key stays in \(dir)/keys)")

        // API tokens: one for ingest, one to read alerts back. Used here only, never printed.
        let tokensPath = TokenStore.defaultPath(data: dir)
        let ingestToken = TokenStore.generate(), auditorToken = TokenStore.generate()
        try TokenStore.append(TokenStore.entry(token: ingestToken, role: .ingest, name: "demo-ingest"), path: tokensPath)
        try TokenStore.append(TokenStore.entry(token: auditorToken, role: .auditor, name: "demo-auditor"), path: tokensPath)
        let tokens = try TokenStore.load(path: tokensPath)
        print("API tokens       demo-ingest, demo-auditor: generated for this run and not shown (only their hashes")
        print("                 are kept, in \(tokensPath)); `custos token add` makes your own")

        var config = ServeConfig()
        config.data = dir
        config.host = "127.0.0.1"
        config.port = try Self.freePort()
        config.policy = policyPath
        config.notify = false   // nothing leaves the machine: messages are rendered below, not sent
        let detector = Detector(engine: DetectionEngine(policy: loaded.policy, geo: loaded.locator))
        let state = ServeState(config: config, store: store, tokens: tokens, detector: detector)
        let base = "http://127.0.0.1:\(config.port)"
        print("Custos serve     \(base) (in this process; loopback only; notifications off)")
        print("")
        print("Scenario: \(scenario.steps.count) steps, \(scenario.eventCount) events built from the real OpenBao 2.7.2 records of")
        print("examples/openbao-audit.log (re-timed to \(DemoScenario.dayText(scenario.day)) and the four weeks before it,")
        print("with varied addresses, identities and paths), posted to POST \(base)/v1/ingest?format=custos")
        print("")

        var quiet = Logger(label: "custos-demo")
        quiet.logLevel = .warning
        let logger = quiet
        let steps = scenario.steps
        let posted = runBlocking { () async -> DemoRun in
            await DemoServer.run(state: state, base: base, logger: logger, steps: steps, ingestToken: ingestToken, auditorToken: auditorToken)
        }
        if let failure = posted.failure { throw CLIError.operational("the demo server failed: \(failure)") }
        for (step, reply) in zip(steps, posted.replies) {
            let what = step.expect.map(\.rawValue).joined(separator: ", ")
            print("  \(step.title.padding(toLength: 52, withPad: " ", startingAt: 0)) \(String(repeating: " ", count: max(0, 3 - String(step.events.count).count)) + String(step.events.count)) event\(step.events.count == 1 ? " " : "s") -> \(what)")
            print("      from \(step.source)")
            if reply.accepted != step.events.count {
                print("      !! the server accepted \(reply.accepted) of \(step.events.count) (duplicates \(reply.duplicates), rejected \(reply.rejected))")
            }
        }
        // Folds still open are closed and recorded, as when `custos serve` stops.
        try detector.finish(store: store)

        let all = detector.recordedAlerts
        let raised = all.filter { $0.status == .raised }
        var evidence = Set<UInt64>()
        for a in all { evidence.formUnion(a.evidence) }
        let accepted = posted.replies.reduce(0) { $0 + $1.accepted }
        let loggedOnly = accepted - evidence.count
        print("")
        print("\(accepted) events logged, \(raised.count) alerts: \(loggedOnly) events were routine and only logged (alert fatigue is a")
        print("failure mode), \(evidence.count) are the evidence of an alert. Logged by class: " +
              AlertClass.allCases.compactMap { c in detector.logged[c].flatMap { $0 > 0 ? "\(c.rawValue) \($0)" : nil } }.joined(separator: ", "))
        print("The read API (GET /v1/alerts, auditor token) listed \(posted.apiRaised) raised alert entries.")
        print("")

        Self.printByOwner(raised, policy: loaded.policy)

        // The same verification as `custos verify`, against the key created above.
        print("Verification (as `custos verify --data DIR --vkey \(dir)/keys/trail.vkey`)")
        print("------------")
        let verifier = try NoteVerifier(vkey: signer.vkey)
        let t0 = Date()
        let report = TrailVerifier(layout: TrailLayout(dataDirectory: dir), verifier: verifier).verify()
        if report.isValid {
            print("trail OK: \(report.origin) size \(report.size) root \(report.root?.base64 ?? "-")")
            print("checked \(report.entriesChecked) entries, \(report.tilesChecked) tiles, \(report.checkpointsChecked) kept checkpoints in \(String(format: "%.2f", Date().timeIntervalSince(t0))) s")
        } else {
            print("TRAIL NOT VALID: \(report.problems.count) problem(s)")
            for p in report.problems.prefix(20) { print("  \(p)") }
        }
        print("")

        // Every class must have done its job, or the demo fails loudly.
        var missing: [String] = []
        let alerting = AlertClass.allCases.filter { !$0.isRoutine }
        let fired = Set(raised.map(\.alertClass))
        for c in alerting where !fired.contains(c) { missing.append("\(c.rawValue) (no alert)") }
        for c in AlertClass.allCases where c.isRoutine && (detector.logged[c] ?? 0) == 0 { missing.append("\(c.rawValue) (nothing logged)") }
        if posted.apiRaised != raised.count { missing.append("the read API listed \(posted.apiRaised) raised alerts, the detector \(raised.count)") }
        if accepted != scenario.eventCount { missing.append("\(scenario.eventCount - accepted) events not accepted") }

        let ok = missing.isEmpty && report.isValid
        if ok {
            print("Every alert class fired: \(alerting.map(\.rawValue).joined(separator: ", ")); routine classes logged: access_known_ip, failed_single.")
        } else {
            for m in missing { print("DEMO FAILED: \(m)") }
            if !report.isValid { print("DEMO FAILED: the trail does not verify") }
        }
        print("Done in \(String(format: "%.1f", Date().timeIntervalSince(started))) s. Nothing was sent: each message above was rendered by the notifier that")
        print("would deliver it (`custos serve` with `notify: true`, or `custos ingest --policy FILE --notify`).")
        print("")
        let keptDir = !removeAtEnd || !ok
        print("What next")
        print("---------")
        if keptDir {
            print("  custos alerts --data \(dir)                  # the alerts, one row each")
            print("  custos alerts --data \(dir) --format json --class break_glass")
            print("  custos query  --data \(dir) --outcome denied # the events themselves, read back from the trail")
            print("  custos verify --data \(dir) --vkey \(dir)/keys/trail.vkey")
            print("  custos proof  --data \(dir) 0 > entry-0.tlog-proof   # an offline proof for one entry")
        } else {
            print("  custos demo --keep                   # keep the data directory, then explore it:")
            print("  custos alerts --data DIR             # the alerts, one row each (--format json for all fields)")
            print("  custos query  --data DIR --outcome denied")
            print("  custos verify --data DIR --vkey DIR/keys/trail.vkey")
        }
        print("  custos policy check \(policyPath)")
        print("  custos serve --policy \(policyPath)   # the service itself (README \"custos serve\")")
        if removeAtEnd && ok {
            try? FileManager.default.removeItem(atPath: dir)
        } else if removeAtEnd {
            stderrPrint("custos: the demo failed; its data directory is kept for inspection: \(dir)")
        }
        if !ok { throw ExitCode(1) }
    }

    // MARK: Output per owner

    static func printByOwner(_ alerts: [Alert], policy: Policy) {
        var order: [String] = []
        var byOwner: [String: [Alert]] = [:]
        for a in alerts {
            let k = a.owner?.key ?? policy.fallbackOwner ?? "-"
            if byOwner[k] == nil { order.append(k) }
            byOwner[k, default: []].append(a)
        }
        print("Alerts by owner, as each owner's channels would present them (rendered, not sent)")
        print("=================================================================================")
        for key in order {
            let list = byOwner[key]!
            let owner = policy.owners[key]
            let channels = owner?.notify.map { DeliveryTarget($0, smtp: policy.smtp).description } ?? []
            print("")
            print("## \(owner?.name ?? key) (\(key)): \(list.count) alert\(list.count == 1 ? "" : "s"); channels: \(channels.isEmpty ? "none" : channels.joined(separator: "; "))")
            for (n, a) in list.enumerated() {
                print("")
                print("[\(n + 1)] \(a.severity.rawValue.uppercased()) \(a.alertClass.rawValue)   SLA deadline \(a.slaDeadline?.description ?? "-")   playbook \(a.playbook ?? "-")")
                print("    \(a.summary)")
                for t in owner?.notify ?? [] { printTarget(t, alert: a, policy: policy) }
            }
        }
        print("")
    }

    static func printTarget(_ t: Policy.NotifyTarget, alert a: Alert, policy: Policy) {
        let where_ = DeliveryTarget(t, smtp: policy.smtp).endpoint
        switch t {
        case .webhook(_, let secretEnv):
            let body = NotificationPayload.webhookBody(a)
            print("    -> webhook \(where_): POST, X-Custos-Alert-Id: \(a.id)\(secretEnv != nil ? ", X-Custos-Signature: sha256=<HMAC of the body>" : ""), body (custos.alert/v1):")
            print("       " + String(decoding: body, as: UTF8.self))
        case .slack:
            let text = (jsonObject(NotificationPayload.slack(a))?["text"] as? String) ?? NotificationPayload.slackText(a)
            print("    -> Slack \(where_): " + text)
        case .pagerduty(let routingKey, _):
            let o = jsonObject(NotificationPayload.pagerDuty(a, routingKey: routingKey))
            let p = o?["payload"] as? [String: Any]
            print("    -> PagerDuty Events v2 \(where_): trigger, severity \(p?["severity"] as? String ?? "?"), dedup_key \(o?["dedup_key"] as? String ?? "?") (routing key from the policy, not shown)")
            print("       summary: \(p?["summary"] as? String ?? "?")")
        case .alertmanager:
            let arr = (try? JSONSerialization.jsonObject(with: Data(NotificationPayload.alertmanager(a)))) as? [[String: Any]]
            let labels = (arr?.first?["labels"] as? [String: String]) ?? [:]
            let ann = (arr?.first?["annotations"] as? [String: String]) ?? [:]
            let keys = ["alertname", "severity", "owner", "secret", "environment", "identity"]
            print("    -> Alertmanager \(where_)/api/v2/alerts: "
                  + keys.compactMap { k in labels[k].map { "\(k)=\($0)" } }.joined(separator: " "))
            print("       description: \(ann["description"] ?? "-")")
        case .email(let to):
            print("    -> email to \(to) via \(where_)")
            print("       Subject: \(NotificationPayload.emailSubject(a))")
            for line in NotificationPayload.emailText(a).split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
                print("       | \(line)")
            }
        }
    }

    static func jsonObject(_ bytes: [UInt8]) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any]
    }

    // MARK: Set-up helpers

    /// The examples folder: --examples, $CUSTOS_EXAMPLES, ./examples, or next to the
    /// executable or this source file in a checkout (…/.build/debug/custos, Sources/custos).
    static func locateExamples(_ given: String?) throws -> String {
        func ok(_ d: String) -> Bool {
            let fm = FileManager.default
            return fm.fileExists(atPath: d + "/policy.yaml") && fm.fileExists(atPath: d + "/openbao-audit.log")
        }
        if let given {
            guard ok(given) else { throw CLIError.usage("--examples \(given): no policy.yaml and openbao-audit.log there") }
            return given
        }
        var candidates: [URL] = []
        if let env = ProcessInfo.processInfo.environment["CUSTOS_EXAMPLES"] { candidates.append(URL(fileURLWithPath: env)) }
        candidates.append(URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent("examples"))
        var exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<6 {
            candidates.append(exe.appendingPathComponent("examples"))
            exe = exe.deletingLastPathComponent()
        }
        candidates.append(URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("examples"))
        for c in candidates where ok(c.standardizedFileURL.path) { return c.standardizedFileURL.path }
        throw CLIError.usage("cannot find the examples folder (policy.yaml, openbao-audit.log, geoip/); run from a Custos checkout or pass --examples DIR")
    }

    /// A free loopback TCP port (bound, read back, released; the server binds it right after).
    static func freePort() throws -> Int {
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw CLIError.operational("cannot open a socket to find a free port") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard bound else { throw CLIError.operational("cannot bind a loopback port") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}

// MARK: - The server run

struct DemoReply: Sendable {
    var accepted = 0
    var duplicates = 0
    var rejected = 0
}

struct DemoRun: Sendable {
    var replies: [DemoReply] = []
    var apiRaised = 0
    var failure: String?
}

final class DemoFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value: String?
    func set(_ s: String) { lock.withLock { value = s } }
    var get: String? { lock.withLock { value } }
}

enum DemoServer {
    static func run(state: ServeState, base: String, logger: Logger, steps: [DemoStep], ingestToken: String, auditorToken: String) async -> DemoRun {
        var result = DemoRun()
        let app: any Service
        do { app = try buildApplication(state: state, services: [], logger: logger) } catch {
            result.failure = "cannot build the server: \(error)"
            return result
        }
        let group = ServiceGroup(services: [app], gracefulShutdownSignals: [], cancellationSignals: [], logger: logger)
        let ended = DemoFlag()
        let server = Task {
            do { try await group.run(); ended.set("stopped") } catch { ended.set("\(error)") }
        }
        do {
            // Wait until it listens (at most 20 s).
            var ready = false
            for _ in 0..<200 {
                if let why = ended.get { throw DemoError("the server stopped before it was ready: \(why)") }
                if let r = try? await http("GET", base + "/healthz", token: nil), r.0 == 200 { ready = true; break }
                try await Task.sleep(for: .milliseconds(100))
            }
            guard ready else { throw DemoError("the server did not answer on \(base)/healthz") }
            for step in steps {
                var body = [UInt8]()
                for e in step.events { body += e.canonicalJSON(); body.append(0x0A) }
                let (code, data) = try await http("POST", base + "/v1/ingest?format=custos&instance=bao-demo", token: ingestToken, body: Data(body))
                guard code == 200, let o = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
                    throw DemoError("POST /v1/ingest answered \(code): \(String(decoding: data.prefix(300), as: UTF8.self))")
                }
                result.replies.append(DemoReply(accepted: o["accepted"] as? Int ?? 0, duplicates: o["duplicates"] as? Int ?? 0,
                                                rejected: o["rejected"] as? Int ?? 0))
            }
            let (code, data) = try await http("GET", base + "/v1/alerts?limit=100000", token: auditorToken)
            guard code == 200, let arr = (try? JSONSerialization.jsonObject(with: data)) as? [[String: Any]] else {
                throw DemoError("GET /v1/alerts answered \(code)")
            }
            result.apiRaised = arr.filter { $0["status"] as? String == "raised" }.count
        } catch {
            result.failure = "\(error)"
        }
        await group.triggerGracefulShutdown()
        await server.value
        return result
    }

    /// Through AsyncHTTPClient (SwiftNIO), not URLSession: the binary links no libcurl.
    static func http(_ method: String, _ url: String, token: String?, body: Data? = nil) async throws -> (Int, Data) {
        var req = HTTPClientRequest(url: url)
        req.method = .init(rawValue: method)
        if let body { req.body = .bytes(ByteBuffer(bytes: body)) }
        if let token { req.headers.add(name: "Authorization", value: "Bearer \(token)") }
        let resp = try await HTTPClient.shared.execute(req, timeout: .seconds(30))
        var buf = try await resp.body.collect(upTo: 64 << 20)
        return (Int(resp.status.code), Data(buf.readBytes(length: buf.readableBytes) ?? []))
    }
}

struct DemoError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

// MARK: - The scenario

/// One step of the scenario: what it shows, which real record it comes from, the classes it
/// trips (or logs), and its events.
struct DemoStep: Sendable {
    var title: String
    var source: String
    var expect: [AlertClass]
    var events: [AccessEvent]
}

/// The scenario, built from the real OpenBao 2.7.2 records of `examples/openbao-audit.log`
/// (captured from `scripts/openbao-scenario.sh`): each record is decoded by the real
/// decoder, then re-timed, and where the step needs it re-addressed, renamed (a new identity
/// id with it) or pointed at another path. Each copy gets a fresh request id (and so a fresh
/// event id), as a new access would.
///
/// Times: day D is the most recent Tuesday before today (UTC); the volume baseline is on
/// the four Tuesdays before it. Alert times in the policy's schedule (Europe/London,
/// Mon–Fri 08:00–19:00) are chosen to be inside or outside it under both GMT and BST.
/// Addresses come from the policy's networks (office 203.0.113.0/24, vpn 198.51.100.0/26,
/// cluster 10.0.0.0/8) or from the GeoIP test database (examples/geoip/README.md:
/// 81.2.69.142 London GB, 175.16.199.0/24 Changchun CN).
enum DemoScenario {
    struct Record: Sendable {
        var line: Int
        var event: AccessEvent
    }

    struct Built: Sendable {
        var day: Int64
        var steps: [DemoStep]
        var eventCount: Int { steps.reduce(0) { $0 + $1.events.count } }
    }

    static let instance = "bao-demo"

    static func decodeRecords(path: String) throws -> [Record] {
        guard let data = FileManager.default.contents(atPath: path) else { throw CLIError.operational("cannot read \(path)") }
        var d = VaultAuditDecoder(sourceKind: "openbao", instance: instance)
        var out: [DecodeOutput] = []
        for (i, line) in data.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated() where !line.isEmpty {
            d.decode(line: Array(line), lineNumber: i + 1, into: &out)
        }
        d.finish(into: &out)
        return out.compactMap { if case .event(let e, let line) = $0 { return Record(line: line, event: e) } else { return nil } }
    }

    static func dayText(_ day: Int64) -> String {
        String(EventTime(seconds: day).description.prefix(10)) + " (a Tuesday)"
    }

    static func build(records: [Record], now: Date) throws -> Built {
        func find(_ what: String, _ f: (AccessEvent) -> Bool) throws -> Record {
            guard let r = records.first(where: { f($0.event) }) else {
                throw CLIError.operational("examples/openbao-audit.log has no record of \(what)")
            }
            return r
        }
        // The real records the scenario is made of.
        let serviceRead = try find("token-payment-processor reading secret/data/dev/app/config") {
            $0.identity.name == "token-payment-processor" && $0.action == .read && $0.outcome == .success && $0.secret?.path == "secret/data/dev/app/config"
        }
        let deniedRead = try find("token-payment-processor denied secret/data/prod/payments/db") {
            $0.identity.name == "token-payment-processor" && $0.outcome == .denied && $0.secret?.path == "secret/data/prod/payments/db"
        }
        let aliceRead = try find("userpass-alice reading secret/data/dev/app/config") {
            $0.identity.name == "userpass-alice" && $0.action == .read && $0.outcome == .success
        }
        let approleRead = try find("an approle login reading secret/data/dev/app/config") {
            $0.identity.name == "approle" && $0.action == .read && $0.outcome == .success
        }
        let rootRead = try find("the root token reading secret/data/prod/payments/db") {
            $0.identity.kind == .root && $0.action == .read && $0.secret?.path == "secret/data/prod/payments/db"
        }
        func src(_ r: Record, _ what: String) -> String { "openbao-audit.log line \(r.line) (\(what))" }

        // Day D: the most recent Tuesday strictly before today, 00:00 UTC.
        let nowS = Int64(now.timeIntervalSince1970)
        var day = nowS - ((nowS % 86_400) + 86_400) % 86_400 - 86_400
        while ((day / 86_400 + 4) % 7 + 7) % 7 != 2 { day -= 86_400 }
        var port = 41_000
        func at(_ r: Record, _ dayOffset: Int64, _ hms: String, ip: String, name: String? = nil, path: String? = nil) -> AccessEvent {
            var e = r.event
            let p = hms.split(separator: ":").map { Int64($0)! }
            e.time = EventTime(seconds: day + dayOffset * 86_400 + p[0] * 3600 + p[1] * 60 + p[2], nanos: e.time.nanos, digits: e.time.digits)
            port += 7
            e.origin = .init(ip: ip, port: port)
            if let name {
                e.identity.name = name
                e.identity.id = "demo-entity-" + name   // a distinct identity needs its own id
            }
            if let path {
                e.secret?.path = path
                e.secret?.environment = EnvironmentGuess.from(path: path)   // as the decoder infers it
            }
            let rid = UUID().uuidString.lowercased()
            e.requestID = rid
            e.id = Array(rid.utf8).withUnsafeBytes { EventID.make(instance: instance, key: $0) }
            return e
        }
        func mmss(_ i: Int) -> String { String(format: "%02d:%02d", i / 60 % 60, i % 60) }

        let pod = "token-payment-processor-pod-7d4f"   // matches the policy's service rule (scope secret/data/payments/*)
        let podIP = "10.42.3.17", office = "203.0.113.24", vpn = "198.51.100.12"
        let stripe = "secret/data/payments/stripe/api-key"
        var steps: [DemoStep] = []

        // 1. The pod's ordinary week: 5, 6, 5, 7 reads of its Stripe key at 10:00 UTC on the four
        //    Tuesdays before D. In scope, from the cluster: logged only; it is the baseline of step 5.
        var history: [AccessEvent] = []
        for (week, n) in [(-28, 5), (-21, 6), (-14, 5), (-7, 7)] {
            for i in 0..<n { history.append(at(serviceRead, Int64(week), "10:\(mmss(i * 97))", ip: podIP, name: pod, path: stripe)) }
        }
        steps.append(DemoStep(title: "history: the pod reads its Stripe key, 4 Tuesdays",
                              source: src(serviceRead, "token-payment-processor reads secret/data/dev/app/config") + ", as \(pod), path \(stripe), from \(podIP)",
                              expect: [.access_known_ip], events: history))
        // 2. Routine morning on D: office and VPN reads within business hours, in scope.
        steps.append(DemoStep(title: "routine: alice, the approle app and the pod at work",
                              source: "lines \(aliceRead.line), \(approleRead.line), \(serviceRead.line) (alice, approle, the pod) from the office, VPN, cluster",
                              expect: [.access_known_ip],
                              events: [at(aliceRead, 0, "09:05:12", ip: office), at(approleRead, 0, "09:12:40", ip: vpn),
                                       at(serviceRead, 0, "09:15:03", ip: podIP, name: pod, path: stripe)]))
        // 3. One denial is routine (a typo, a stale token): failed_single, logged.
        steps.append(DemoStep(title: "routine: one denied read (a typo)",
                              source: src(deniedRead, "token-payment-processor denied secret/data/prod/payments/db") + ", path secret/data/prod/ledger/db",
                              expect: [.failed_single],
                              events: [at(deniedRead, 0, "09:31:50", ip: office, path: "secret/data/prod/ledger/db")]))
        // 4. volume_anomaly: the pod reads its key 40 times in one hour at 10:00-10:58 UTC, the hour of its baseline (median 5.5;
        //    it alerts at read 20, min_count). Each read is in scope and from the cluster.
        steps.append(DemoStep(title: "the pod reads its Stripe key 40 times in an hour",
                              source: src(serviceRead, "token-payment-processor reads secret/data/dev/app/config") + ", as \(pod), 40 times",
                              expect: [.volume_anomaly],
                              events: (0..<40).map { at(serviceRead, 0, "10:\(mmss($0 * 89))", ip: podIP, name: pod, path: stripe) }))
        // 5. failed_threshold: three denials of the prod payments DB within 3 minutes (count 3, window 5m).
        steps.append(DemoStep(title: "three denials on the prod payments DB in 3 min",
                              source: src(deniedRead, "token-payment-processor denied secret/data/prod/payments/db") + ", 3 times",
                              expect: [.failed_threshold],
                              events: ["11:02:10", "11:03:41", "11:05:05"].map { at(deniedRead, 0, $0, ip: "203.0.113.40") }))
        // 6. out_of_scope: the pod (scope secret/data/payments/*) reads the prod payments DB.
        steps.append(DemoStep(title: "the pod reads the prod payments DB (out of scope)",
                              source: src(serviceRead, "token-payment-processor reads secret/data/dev/app/config") + ", as \(pod), path secret/data/prod/payments/db",
                              expect: [.out_of_scope],
                              events: [at(serviceRead, 0, "13:20:31", ip: podIP, name: pod, path: "secret/data/prod/payments/db")]))
        // 7. break_glass: the root token reads the prod payments DB (the record as it is, re-timed).
        steps.append(DemoStep(title: "the root token reads the prod payments DB",
                              source: src(rootRead, "root reads secret/data/prod/payments/db") + ", from the office",
                              expect: [.break_glass],
                              events: [at(rootRead, 0, "14:10:02", ip: "203.0.113.5")]))
        // 8. unknown_ip twice and impossible_travel: bob reads from London, then from Changchun
        //    (CN, outside the policy's GB/US) 40 minutes later: ~8,000 km.
        steps.append(DemoStep(title: "bob reads from London, then from China 40 min later",
                              source: src(aliceRead, "userpass-alice reads secret/data/dev/app/config") + ", as userpass-bob, from 81.2.69.142 and 175.16.199.7",
                              expect: [.unknown_ip, .impossible_travel],
                              events: [at(aliceRead, 0, "15:00:07", ip: "81.2.69.142", name: "userpass-bob"),
                                       at(aliceRead, 0, "15:40:19", ip: "175.16.199.7", name: "userpass-bob")]))
        // 9. off_hours: alice reads at 21:45 UTC (21:45 GMT / 22:45 BST), from the VPN.
        steps.append(DemoStep(title: "alice reads at 21:45, after hours",
                              source: src(aliceRead, "userpass-alice reads secret/data/dev/app/config") + ", from the VPN",
                              expect: [.off_hours],
                              events: [at(aliceRead, 0, "21:45:33", ip: vpn)]))
        // 10-13. CI/CD pipelines. octo-org/payments logs in to OpenBao with its GitHub Actions ID
        //    token (jwt auth; the role copies the CI claims into the token metadata, which the
        //    decoder turns into the pipeline context); the policy's pipelines: section scopes it.
        func ci(_ r: Record, _ hms: String, path: String, workflow: String, run: String, environment: String? = nil,
                trigger: AccessEvent.Pipeline.Trigger = .automated, by: String = "octocat", runner: String) -> AccessEvent {
            var e = at(r, 0, hms, ip: runner, name: "jwt-octo-org/payments", path: path)
            e.identity.kind = .pipeline
            e.identity.method = "jwt"
            e.pipeline = .init(provider: "github", repository: "octo-org/payments", name: workflow,
                               id: "octo-org/payments/.github/workflows/\(workflow).yml@refs/heads/main", runID: run, attempt: 1,
                               job: workflow == "deploy" ? "release" : "test", environment: environment, trigger: trigger,
                               triggerIdentity: by, runnerIP: runner)
            return e
        }
        let runner = "10.42.9.5", prodDB = "secret/data/prod/payments/db"
        let ciSource = src(approleRead, "an approle login reads secret/data/dev/app/config") + ", as a jwt login of octo-org/payments with its CI claims"
        // 10. pipeline_out_of_scope: the ci workflow (scope secret/data/payments/*, secret/data/dev/*) reads its Stripe key, then the prod DB.
        steps.append(DemoStep(title: "the CI run reads the prod payments DB (out of scope)",
                              source: ciSource + ", run 7001 on runner \(runner)",
                              expect: [.pipeline_out_of_scope],
                              events: [ci(approleRead, "16:00:05", path: stripe, workflow: "ci", run: "7001", runner: runner),
                                       ci(approleRead, "16:00:09", path: prodDB, workflow: "ci", run: "7001", runner: runner)]))
        // 11. runner_unknown_ip: the deploy workflow (prod: in scope) runs on a machine outside the runner networks.
        steps.append(DemoStep(title: "a prod deploy runs outside the runner networks",
                              source: ciSource + ", run 7002 from 192.0.2.77",
                              expect: [.runner_unknown_ip],
                              events: [ci(approleRead, "16:10:30", path: prodDB, workflow: "deploy", run: "7002", environment: "prod", runner: "192.0.2.77")]))
        // 12. manual_prod_trigger: mallory (not in pipelines.manual_triggers) starts the prod deploy by hand.
        steps.append(DemoStep(title: "mallory starts the prod deploy by hand",
                              source: ciSource + ", run 7003 (workflow_dispatch by mallory)",
                              expect: [.manual_prod_trigger],
                              events: [ci(approleRead, "16:20:41", path: prodDB, workflow: "deploy", run: "7003", environment: "prod",
                                          trigger: .manual, by: "mallory", runner: runner)]))
        // 13. leaked_secret: `custos scan-log --report` found the prod DB password base64-encoded in run 7003's log.
        var leak = AccessEvent(id: "", time: EventTime(seconds: day + 16 * 3600 + 25 * 60 + 3), source: .init(kind: "custos", instance: "scan-log"),
                               action: .leak, outcome: .success, reason: "base64 at 212:18, 100% of the secret",
                               secret: .init(path: prodDB, environment: "prod"),
                               identity: .init(id: "github:octo-org/payments", name: "github:octo-org/payments", kind: .pipeline))
        leak.pipeline = .init(provider: "github", repository: "octo-org/payments", name: "deploy", runID: "7003", attempt: 1, job: "release",
                              environment: "prod", trigger: .manual, triggerIdentity: "mallory")
        leak.id = Array("leak 7003 \(prodDB)".utf8).withUnsafeBytes { EventID.make(instance: instance, key: $0) }
        steps.append(DemoStep(title: "the deploy log leaks the prod DB password (base64)",
                              source: "a leak report as `custos scan-log --report` posts it for run 7003",
                              expect: [.leaked_secret], events: [leak]))
        return Built(day: day, steps: steps)
    }
}
