import ArgumentParser
import CustosAlerting
import CustosCore
import CustosServer
import Foundation
import NIOSSL
import Logging
import ServiceLifecycle

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run Custos as a service: HTTP ingest, the read API for auditors, metrics.",
        discussion: """
            With no arguments it runs on embedded defaults: ./custos-data (trail, keys, SQLite \
            index), listening on 127.0.0.1:8420, detecting with the example policy \
            (examples/policy.yaml of a source checkout, or $CUSTOS_EXAMPLES/policy.yaml; alerts \
            are recorded in the trail, nothing is sent; without that folder, no detection). \
            Any of --config, --data, --listen or --policy means no example policy: detection \
            then runs only with the policy you give. On first start it creates the trail \
            key (the verifier key is printed once) and, when no API token exists yet, one token \
            per role (ingest, auditor, admin), printed once: only their hashes are kept, in \
            DIR/keys/tokens. More tokens: `custos token add`. --config FILE reads a YAML file \
            (README "custos serve"); --data, --listen and --policy override it. Its \
            `audit_socket:` section adds a TCP or Unix-socket listener (`listen: unix:PATH`) for \
            the OpenBao/Vault socket audit device; `tls: {cert, key}` (PEM files) serves HTTPS, and a listener's own `tls:` \
            turns it on there. Its `syslog:` section adds syslog listeners (TCP and/or UDP; \
            RFC 5424/3164, octet-counted or newline framing); `file_tail:` follows the files \
            of its file device (offsets kept in DIR/tail); `witnesses:` lists tlog witnesses \
            whose cosignatures it collects for its checkpoints (README "Witnesses"). Ingest is acknowledged only once \
            the events are durable in the trail. SIGTERM or SIGINT stop \
            it gracefully: requests in flight finish, their events committed.
            Exit 0 after a graceful stop; 2 for a bad configuration; 3 when it cannot start.
            """)

    @Option(help: ArgumentHelp("Configuration file (YAML).", valueName: "FILE")) var config: String?
    @Option(help: ArgumentHelp("Data directory (overrides the config).", valueName: "DIR")) var data: String?
    @Option(help: ArgumentHelp("HOST:PORT to listen on (overrides the config; default 127.0.0.1:8420).", valueName: "ADDR")) var listen: String?
    @Option(help: ArgumentHelp("Alerting policy for live detection (overrides the config).", valueName: "FILE")) var policy: String?
    @Option(help: ArgumentHelp("Trail entries replayed silently before detection starts.", valueName: "N")) var warmup: Int = 1_000_000

    func loadConfig() throws -> ServeConfig {
        var c = ServeConfig()
        if let config {
            guard FileManager.default.isReadableFile(atPath: config) else { throw CLIError.usage("cannot read \(config)") }
            do { c = try ServeConfig.load(path: config) } catch {
                for p in error.problems { stderrPrint("\(config): \(p)") }
                throw CLIError.usage("\(config): \(error.problems.count) problem\(error.problems.count == 1 ? "" : "s"); not started")
            }
        } else if let env = ProcessInfo.processInfo.environment["CUSTOS_DATA"] {
            c.data = env
        }
        if let data { c.data = data }
        if let listen {
            guard let (h, p) = ServeConfig.hostPort(listen) else { throw CLIError.usage("--listen: expected HOST:PORT, e.g. 127.0.0.1:8420") }
            c.host = h; c.port = p
        }
        if let policy { c.policy = policy }
        return c
    }

    func run() throws {
        var c = try loadConfig()
        if config == nil && data == nil && listen == nil && policy == nil {
            // No arguments: the embedded defaults include the example policy.
            if let ex = try? Demo.locateExamples(nil) {
                c.policy = ex + "/policy.yaml"
                stderrPrint("custos: no arguments: detecting with the example policy \(ex)/policy.yaml (its networks, hours and owners are examples; give yours with --policy or `policy:` in --config)")
            } else {
                stderrPrint("custos: no arguments and no examples folder (examples/policy.yaml, or CUSTOS_EXAMPLES): running without detection")
            }
        }
        // TLS files are checked before anything is created or printed.
        let httpTLS = try c.tls.map { try tlsConfiguration($0, "tls") }
        let socketTLS = try c.auditSocket?.tls.map { try tlsContext($0, "audit_socket.tls") }
        let syslogTLS = try c.syslog?.tls.map { try tlsContext($0, "syslog.tls") }
        var loaded: LoadedPolicy?
        if let p = c.policy {
            do { loaded = try PolicyLoader.load(path: p) } catch {
                for x in error.problems { stderrPrint("\(p): \(x)") }
                throw CLIError.usage("\(p): the policy has problems; not started (see `custos policy check`)")
            }
        }
        let store = try DataStore(directory: c.data, origin: c.origin)
        if let s = store.createdSigner {
            stderrPrint("custos: created a new trail in \(c.data); its verifier key (give it to your auditors):")
            print(s.vkey)
        }
        var tokens = try TokenStore.load(path: c.resolvedTokensFile)
        if tokens.entries.isEmpty {
            stderrPrint("custos: no API tokens yet; created one per role. They are shown once and stored only as hashes in \(c.resolvedTokensFile):")
            for role in Role.allCases {
                let t = TokenStore.generate()
                try TokenStore.append(TokenStore.entry(token: t, role: role, name: "initial-\(role.rawValue)"), path: c.resolvedTokensFile)
                print("\(role.rawValue) token: \(t)")
            }
            tokens = try TokenStore.load(path: c.resolvedTokensFile)
        }
        var detector: Detector?
        if let loaded {
            let d = Detector(engine: DetectionEngine(policy: loaded.policy, geo: loaded.locator))
            let n = try d.warmUp(store: store, limit: warmup)
            stderrPrint("custos: detection with \(c.policy!) (replayed \(n) earlier events silently)")
            detector = d
        }
        fflush(nil)
        // Delivery (config `notify: true`): off the commit thread, one task per commit's alerts;
        // each outcome is recorded in the trail like `ingest --notify` does.
        let stateBox = BlockingBox<ServeState>()
        var onAlerts: (@Sendable ([Alert]) -> Void)?
        if c.notify, let loaded {
            let notifier = AlertNotifier(policy: loaded.policy)
            onAlerts = { alerts in
                Task.detached {
                    let outcomes = await notifier.deliver(alerts)
                    guard !outcomes.isEmpty, let state = stateBox.value else { return }
                    let now = EventTime(unixTime: Date().timeIntervalSince1970)
                    let records = outcomes.map {
                        TrailEntry.delivery(DeliveryRecord(alertID: $0.alertID, owner: $0.ownerKey, targetKind: $0.target.kind,
                                                           endpoint: $0.target.endpoint, delivered: $0.delivered, attempts: $0.attempts,
                                                           error: $0.error, notice: $0.isFailureNotice, time: now))
                    }
                    state.metrics.notifierFailed(outcomes.filter { !$0.delivered && !$0.isFailureNotice }.count)
                    _ = try? await state.committer.appendEntries(records)
                }
            }
        }
        let state = ServeState(config: c, store: store, tokens: tokens, detector: detector, policy: loaded?.policy, onAlerts: onAlerts)
        stateBox.value = state
        var logger = Logger(label: "custos")
        logger.logLevel = .info
        var services: [any Service] = []
        if let a = c.auditSocket {
            services.append(AuditSocketListener(state: state, host: a.host, port: a.port, format: a.format, instance: a.instance,
                                                maxConnections: 64, tls: socketTLS, unixPath: a.unixPath, unixMode: a.unixMode, logger: logger))
        }
        if let s = c.syslog {
            if let t = s.tcp {
                services.append(SyslogTCPListener(state: state, host: t.host, port: t.port, format: s.format, instance: s.instance,
                                                  maxMessageBytes: s.maxMessageBytes, maxConnections: s.maxConnections,
                                                  frameTimeout: .seconds(s.frameTimeout), tls: syslogTLS, logger: logger))
            }
            if let u = s.udp {
                services.append(SyslogUDPListener(state: state, host: u.host, port: u.port, format: s.format, instance: s.instance,
                                                  maxMessageBytes: s.maxMessageBytes, logger: logger))
            }
        }
        if !c.fileTail.isEmpty {
            services.append(FileTailer(state: state, sources: c.fileTail, logger: logger))
        }
        services.append(SpoolAbsorber(state: state, logger: logger))
        if let loaded {
            services.append(IncidentEscalator(state: state, policy: loaded.policy, notifier: c.notify ? AlertNotifier(policy: loaded.policy) : nil, logger: logger))
        }
        if !c.witnesses.isEmpty {
            // Checkpoints go to the witnesses from a task of their own: ingest never waits for them.
            services.append(WitnessSubmitter(witnesses: c.witnesses, layout: store.layout,
                                             verifier: try NoteVerifier(vkey: store.trail.checkpointVerifierKey), logger: logger))
            stderrPrint("custos: submitting checkpoints to \(c.witnesses.count) witness(es): \(c.witnesses.map(\.verifier.name).joined(separator: ", "))")
        }
        for t in c.forward {
            // Each target reads committed events back from the trail at its own pace: ingest never waits for a SIEM.
            do {
                services.append(try Forwarder(target: t, layout: store.layout, verifier: try NoteVerifier(vkey: store.trail.checkpointVerifierKey),
                                              stats: state.metrics.forward, logger: logger))
            } catch let e as ForwardError { throw CLIError.usage(e.description) }
            stderrPrint("custos: forwarding events to \(t.name) (\(t.format.rawValue) over \(t.transport.rawValue))")
        }
        for o in c.oidc {
            stderrPrint("custos: accepting OIDC ID tokens from \(o.issuer) for audience \(o.audience) (\(o.jwks.keys.count) key(s) from \(o.jwksSource)\(o.repositories.isEmpty ? "" : "; repositories \(o.repositories.joined(separator: ", "))"))")
        }
        let app = try buildApplication(state: state, services: services, logger: logger, tls: httpTLS)
        stderrPrint("custos: serving \(c.data) on \(c.tls == nil ? "http" : "https")://\(c.host.contains(":") ? "[\(c.host)]" : c.host):\(c.port)")
        let failure = runBlocking { () async -> String? in
            do { try await app.runService(); return nil } catch { return "\(error)" }
        }
        // Folds still open are closed and recorded, as at the end of an ingest.
        try detector?.finish(store: store)
        if let failure { throw CLIError.operational("the server stopped: \(failure)") }
        stderrPrint("custos: stopped; trail size \(store.trail.size)")
    }
}

struct TokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Manage API tokens for `custos serve`.",
        subcommands: [TokenAdd.self, TokenList.self])
}

struct TokenAdd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Create an API token; print it once and keep only its hash.",
        discussion: """
            Roles: ingest (append events only), auditor (read events, alerts, the trail, \
            metrics), admin (silences, metrics). The token is printed once on standard output; \
            DIR/keys/tokens keeps its SHA-256 (mode 0600). A running server reads tokens at \
            start: restart it to use a new one.
            """)
    @OptionGroup var data: DataOptions
    @Option(help: ArgumentHelp("ingest, auditor or admin.", valueName: "ROLE")) var role: String
    @Option(help: ArgumentHelp("A name for the token (who or what uses it): letters, digits, . _ -", valueName: "NAME")) var name: String

    func validate() throws {
        guard Role(rawValue: role) != nil else { throw ValidationError("--role must be one of \(Role.allCases.map(\.rawValue).joined(separator: ", "))") }
        guard (1...64).contains(name.count), name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }) else {
            throw ValidationError("--name must be 1...64 letters, digits, '.', '_' or '-'")
        }
    }

    func run() throws {
        let path = TokenStore.defaultPath(data: data.data)
        let existing = try TokenStore.load(path: path)
        guard !existing.entries.contains(where: { $0.name == name }) else { throw CLIError.usage("a token named \(name) exists already") }
        let t = TokenStore.generate()
        try TokenStore.append(TokenStore.entry(token: t, role: Role(rawValue: role)!, name: name), path: path)
        print(t)
        stderrPrint("custos: \(role) token \(name) added to \(path) (hash only); this is the only time it is shown")
    }
}

struct TokenList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List token names and roles (never the tokens).")
    @OptionGroup var data: DataOptions
    func run() throws {
        let s = try TokenStore.load(path: TokenStore.defaultPath(data: data.data))
        printTextTable(header: ["NAME", "ROLE"], rows: s.entries.map { [$0.name, $0.role.rawValue] })
    }
}

func tlsConfiguration(_ files: TLSFiles, _ label: String) throws -> TLSConfiguration {
    do { return try files.serverConfiguration(label: label) } catch { throw CLIError.usage("\(error)") }
}

func tlsContext(_ files: TLSFiles, _ label: String) throws -> NIOSSLContext {
    do { return try files.serverContext(label: label) } catch { throw CLIError.usage("\(error)") }
}
