import CustosAlerting
import CustosCore
import Foundation

/// Everything `custos serve` needs, with the embedded defaults: a local data directory,
/// SQLite, keys and API tokens generated on first start, loopback only.
/// Loaded from YAML (`custos serve --config FILE`; README "custos serve").
public struct ServeConfig: Sendable, Equatable {
    public var data = "custos-data"
    /// Origin for a newly created trail key (default `custos.local/<hostname>`).
    public var origin: String?
    public var host = "127.0.0.1"
    public var port = 8420
    /// Alerting policy (YAML); none = no detection.
    public var policy: String?
    /// Deliver alerts raised by live ingest to their owners.
    public var notify = false
    /// API tokens (hashes only): default `<data>/keys/tokens`.
    public var tokensFile: String?
    public var limits = Limits()
    /// `/readyz` fails when events have waited for a durable commit longer than this, or
    /// the last commit failed.
    public var maxCommitAge: Int64 = 60
    /// A TCP listener for the Vault/OpenBao `socket` audit device (off unless configured).
    public var auditSocket: AuditSocket?
    /// TLS for the HTTP listener (off unless configured).
    public var tls: TLSFiles?
    /// Syslog listeners over TCP and/or UDP (off unless configured; README "Syslog input").
    public var syslog: Syslog?
    /// Files followed by the file tail (off unless configured; `FileTailer`).
    public var fileTail: [FileTailer.Source] = []
    /// Witnesses the server asks to cosign its checkpoints (README "Witnesses"; none by default).
    public var witnesses: [WitnessTarget] = []
    /// Issuers whose ID tokens (GitHub Actions OIDC) are accepted as ingest credentials
    /// (README "GitHub Actions OIDC"; none by default).
    public var oidc: [OIDCIssuer] = []
    /// SIEMs the committed events are streamed to (README "Out to SIEMs"; none by default).
    public var forward: [ForwardTarget] = []

    /// A tlog-witness to submit checkpoints to: its submission URL prefix and cosigning key.
    public struct WitnessTarget: Sendable, Equatable {
        /// `http(s)://host:port[/prefix]`, without a trailing slash; `/add-checkpoint` is appended.
        public var url: String
        public var verifier: CosignatureVerifier
        public init(url: String, verifier: CosignatureVerifier) { self.url = url; self.verifier = verifier }
    }

    public struct AuditSocket: Sendable, Equatable {
        public var host = "127.0.0.1"
        public var port = 8421
        /// A Unix domain socket instead of TCP (`listen: unix:/path`; the device's
        /// `socket_type = "unix"`): no TCP stack on either side, and only the processes the
        /// file's permissions let in can write audit records to Custos.
        public var unixPath: String?
        /// Permissions of the Unix socket file (`unix_mode`, octal; default 0600: the user
        /// Custos runs as; 0660 lets a group such as `openbao` in).
        public var unixMode: Int = 0o600
        public var format = WireFormat.openbao
        public var instance = "default"
        /// TLS on this listener (OpenBao's socket device speaks plain TCP: leave it off for that).
        public var tls: TLSFiles?
        public init() {}
    }

    public struct Syslog: Sendable, Equatable {
        public static let defaultMaxMessageBytes = 256 << 10
        public struct Endpoint: Sendable, Equatable {
            public var host: String
            public var port: Int
            public init(host: String, port: Int) { self.host = host; self.port = port }
        }
        public var tcp: Endpoint?
        public var udp: Endpoint?
        public var format = WireFormat.auto
        public var instance = "default"
        /// Largest frame (TCP) or datagram (UDP), header included.
        public var maxMessageBytes = defaultMaxMessageBytes
        /// TCP connections at once.
        public var maxConnections = 64
        /// Seconds a TCP frame may stay unfinished while Custos waits for its bytes.
        public var frameTimeout: Int64 = 60
        /// TLS on the TCP listener (RFC 5425; rsyslog's gtls/ossl stream drivers).
        public var tls: TLSFiles?
        public init() {}
        static let keys: Set<String> = ["tcp", "udp", "format", "instance", "max_message_bytes", "max_connections", "frame_timeout", "tls"]
    }

    public struct Limits: Sendable, Equatable {
        /// Largest request body (after gzip decompression too).
        public var maxBodyBytes = 16 << 20
        /// Largest record (one NDJSON line or array element).
        public var maxLineBytes = VaultAuditDecoder.maxLineBytes
        /// Events accepted but not yet durable, across all requests; beyond it ingest
        /// answers 503 with Retry-After.
        public var maxPendingEvents = 262_144
        /// Events per durable commit.
        public var maxBatch = 65_536
        /// Milliseconds that events from an input without a per-record acknowledgement (the
        /// audit socket) may wait for others to share their durable commit; 0 commits each
        /// read's events at once. One fsync and one signed checkpoint per interval instead of
        /// per read is what keeps Custos's CPU cost small under a busy OpenBao.
        public var commitLingerMs = 100
        /// Concurrent connections to the HTTP listener.
        public var maxConnections = 256
        /// An HTTP connection that sends nothing for this long (seconds) is closed: a slow or
        /// stalled client cannot hold a connection slot for ever.
        public var idleTimeout: Int64 = 30
        public init() {}
    }

    public init() {}

    public var resolvedTokensFile: String { tokensFile ?? TokenStore.defaultPath(data: data) }

    static let keys: Set<String> = ["data", "origin", "listen", "policy", "notify", "tokens_file", "limits", "readiness", "audit_socket", "tls", "syslog",
                                     "file_tail", "witnesses", "oidc", "forward"]
    static let limitKeys: Set<String> = ["max_body_bytes", "max_line_bytes", "max_pending_events", "max_batch", "max_connections", "idle_timeout", "commit_linger_ms"]

    /// Parses a config file's YAML. Relative paths are relative to `baseDirectory`.
    public static func parse(yaml: String, baseDirectory: String) throws(ConfigProblems) -> ServeConfig {
        let root = try PolicyLoader.parseYAML(yaml)
        var r = ConfigReader()
        var c = ServeConfig()
        func path(_ p: String) -> String { p.hasPrefix("/") ? p : baseDirectory + "/" + p }
        for e in r.mapping(root, "", allowed: keys) {
            switch e.key {
            case "data": if let v = r.string(e.value, "data") { c.data = path(v) }
            case "origin": c.origin = r.string(e.value, "origin")
            case "listen":
                if let v = r.string(e.value, "listen") {
                    if let (h, p) = Self.hostPort(v) { c.host = h; c.port = p } else {
                        r.problem("listen", e.value, "expected HOST:PORT (e.g. 127.0.0.1:8420 or [::1]:8420), port 1...65535")
                    }
                }
            case "policy": if let v = r.string(e.value, "policy") { c.policy = path(v) }
            case "notify": if let v = r.bool(e.value, "notify") { c.notify = v }
            case "tokens_file": if let v = r.string(e.value, "tokens_file") { c.tokensFile = path(v) }
            case "limits":
                for l in r.mapping(e.value, "limits", allowed: limitKeys) {
                    let p = "limits." + l.key
                    switch l.key {
                    case "max_body_bytes": if let v = r.integer(l.value, p, range: 1024...(1 << 30)) { c.limits.maxBodyBytes = v }
                    case "max_line_bytes": if let v = r.integer(l.value, p, range: 1024...(16 << 20)) { c.limits.maxLineBytes = v }
                    case "max_pending_events": if let v = r.integer(l.value, p, range: 1...10_000_000) { c.limits.maxPendingEvents = v }
                    case "max_batch": if let v = r.integer(l.value, p, range: 1...1_000_000) { c.limits.maxBatch = v }
                    case "max_connections": if let v = r.integer(l.value, p, range: 1...100_000) { c.limits.maxConnections = v }
                    case "idle_timeout": if let v = r.duration(l.value, p, range: 1...3600) { c.limits.idleTimeout = v }
                    case "commit_linger_ms": if let v = r.integer(l.value, p, range: 0...10_000) { c.limits.commitLingerMs = v }
                    default: break
                    }
                }
            case "audit_socket":
                var a = AuditSocket()
                for l in r.mapping(e.value, "audit_socket", allowed: ["listen", "format", "instance", "tls", "unix_mode"]) {
                    let p = "audit_socket." + l.key
                    switch l.key {
                    case "listen":
                        if let v = r.string(l.value, p) {
                            if v.hasPrefix("unix:") {
                                let file = String(v.dropFirst(5))
                                // sockaddr_un holds 107 bytes of path (and a NUL); the listener binds
                                // PATH.new first and renames it into place (4 bytes more).
                                if file.isEmpty || file.hasSuffix("/") || file.utf8.contains(0) {
                                    r.problem(p, l.value, "expected unix:PATH (the socket file to create)")
                                } else if path(file).utf8.count > 103 {
                                    r.problem(p, l.value, "the socket path is \(path(file).utf8.count) bytes; at most 103 here (Unix sockets allow 107, Custos binds PATH.new first)")
                                } else {
                                    a.unixPath = path(file)
                                }
                            } else if let (h, port) = Self.hostPort(v) {
                                a.host = h; a.port = port
                            } else {
                                r.problem(p, l.value, "expected HOST:PORT or unix:PATH")
                            }
                        }
                    case "unix_mode":
                        if let v = r.string(l.value, p) {
                            if let m = Int(v, radix: 8), (0...0o777).contains(m), m & 0o600 == 0o600, m & 0o007 == 0 {
                                a.unixMode = m
                            } else {
                                r.problem(p, l.value, "expected an octal mode such as 0600 or 0660 (owner read and write; nothing for others)")
                            }
                        }
                    case "format":
                        if let v = r.string(l.value, p) {
                            if let f = WireFormat(rawValue: v), f == .vault || f == .openbao { a.format = f } else { r.problem(p, l.value, "expected vault or openbao") }
                        }
                    case "instance":
                        if let v = r.string(l.value, p) {
                            if v.isEmpty || v.utf8.count > 256 { r.problem(p, l.value, "must be 1...256 bytes") } else { a.instance = v }
                        }
                    case "tls": a.tls = TLSFiles.parse(l.value, p, &r, resolve: path)
                    default: break
                    }
                }
                c.auditSocket = a
            case "tls": c.tls = TLSFiles.parse(e.value, "tls", &r, resolve: path)
            case "syslog": c.syslog = Self.parseSyslog(e.value, &r, resolve: path)
            case "file_tail": c.fileTail = Self.parseFileTail(e.value, &r, path)
            case "witnesses": c.witnesses = Self.parseWitnesses(e.value, &r)
            case "oidc": c.oidc = Self.parseOIDC(e.value, &r, path)
            case "forward": c.forward = Self.parseForward(e.value, &r)
            case "readiness":
                for l in r.mapping(e.value, "readiness", allowed: ["max_commit_age"]) {
                    if let v = r.duration(l.value, "readiness.max_commit_age", range: 1...86_400) { c.maxCommitAge = v }
                }
            default: break
            }
        }
        if c.notify && c.policy == nil { r.problem("notify", root["notify"], "notify needs a policy (the policy names the owners)") }
        if c.limits.maxLineBytes > c.limits.maxBodyBytes {
            r.problem("limits.max_line_bytes", root["limits"]?["max_line_bytes"], "must not exceed limits.max_body_bytes")
        }
        if !r.problems.isEmpty { throw ConfigProblems(r.problems) }
        return c
    }

    public static func load(path: String) throws(ConfigProblems) -> ServeConfig {
        guard let data = FileManager.default.contents(atPath: path), data.count <= 1 << 20 else {
            throw ConfigProblems([ConfigProblem(path: "", message: "cannot read \(path) (or it is larger than 1 MiB)")])
        }
        let base = (path as NSString).deletingLastPathComponent
        return try parse(yaml: String(decoding: data, as: UTF8.self), baseDirectory: base.isEmpty ? "." : base)
    }

    /// `127.0.0.1:8420`, `localhost:80`, `[::1]:8420`.
    public static func hostPort(_ s: String) -> (String, Int)? {
        var host: Substring, port: Substring
        if s.hasPrefix("[") {
            guard let close = s.firstIndex(of: "]"), s[s.index(after: close)...].hasPrefix(":") else { return nil }
            host = s[s.index(after: s.startIndex)..<close]
            port = s[s.index(close, offsetBy: 2)...]
        } else {
            guard let colon = s.lastIndex(of: ":") else { return nil }
            host = s[..<colon]; port = s[s.index(after: colon)...]
            if host.contains(":") { return nil }
        }
        guard !host.isEmpty, let p = Int(port), (1...65535).contains(p) else { return nil }
        return (String(host), p)
    }
}

extension ServeConfig {
    /// `syslog: { tcp: HOST:PORT, udp: HOST:PORT, format: auto, instance: NAME,
    /// max_message_bytes: N, max_connections: N, frame_timeout: 60s }` (tcp and/or udp).
    static func parseSyslog(_ node: ConfigNode?, _ r: inout ConfigReader, resolve: (String) -> String = { $0 }) -> Syslog {
        var s = Syslog()
        for l in r.mapping(node, "syslog", allowed: Syslog.keys) {
            let p = "syslog." + l.key
            switch l.key {
            case "tcp", "udp":
                if let v = r.string(l.value, p) {
                    if let (h, port) = hostPort(v) {
                        if l.key == "tcp" { s.tcp = .init(host: h, port: port) } else { s.udp = .init(host: h, port: port) }
                    } else {
                        r.problem(p, l.value, "expected HOST:PORT (e.g. 127.0.0.1:6514 or [::1]:6514), port 1...65535")
                    }
                }
            case "format":
                if let v = r.string(l.value, p) {
                    if let f = WireFormat(rawValue: v), WireFormat.lineFormats.contains(f) { s.format = f } else {
                        r.problem(p, l.value, "expected \(WireFormat.lineFormats.map(\.rawValue).joined(separator: ", "))")
                    }
                }
            case "instance":
                if let v = r.string(l.value, p) {
                    if v.isEmpty || v.utf8.count > 256 { r.problem(p, l.value, "must be 1...256 bytes") } else { s.instance = v }
                }
            case "max_message_bytes": if let v = r.integer(l.value, p, range: 480...(16 << 20)) { s.maxMessageBytes = v }
            case "max_connections": if let v = r.integer(l.value, p, range: 1...10_000) { s.maxConnections = v }
            case "frame_timeout": if let v = r.duration(l.value, p, range: 1...3600) { s.frameTimeout = v }
            case "tls": s.tls = TLSFiles.parse(l.value, p, &r, resolve: resolve)
            default: break
            }
        }
        if s.tcp == nil && s.udp == nil && node?["tcp"] == nil && node?["udp"] == nil {
            r.problem("syslog", node, "needs tcp: HOST:PORT and/or udp: HOST:PORT")
        }
        if s.tls != nil && s.tcp == nil && node?["tcp"] == nil { r.problem("syslog.tls", node?["tls"], "TLS applies to the TCP listener: give syslog.tcp too") }
        return s
    }
}

extension ServeConfig {
    /// `witnesses: [{url: http://witness.example:7380, vkey: <name+id+key, type 0x04>}, ...]`.
    static func parseWitnesses(_ node: ConfigNode?, _ r: inout ConfigReader) -> [WitnessTarget] {
        var out: [WitnessTarget] = []
        for (i, item) in r.sequence(node, "witnesses").enumerated() {
            let p = ConfigReader.join("witnesses", i)
            var url: String?, vkey: String?
            for l in r.mapping(item, p, allowed: ["url", "vkey"]) {
                switch l.key {
                case "url": url = r.string(l.value, p + ".url", required: true)
                case "vkey": vkey = r.string(l.value, p + ".vkey", required: true)
                default: break
                }
            }
            guard var url, let vkey else { r.problem(p, item, "each witness needs url and vkey"); continue }
            while url.hasSuffix("/") { url.removeLast() }
            guard let u = URL(string: url), let scheme = u.scheme?.lowercased(), ["http", "https"].contains(scheme), u.host != nil,
                  u.query == nil, u.fragment == nil else {
                r.problem(p + ".url", item["url"], "expected an http:// or https:// URL (the witness's submission prefix)")
                continue
            }
            guard u.user == nil, u.password == nil else {
                r.problem(p + ".url", item["url"], "a user or password in the URL is not allowed (URLs are logged): a witness needs none")
                continue
            }
            do {
                let v = try CosignatureVerifier(vkey: vkey)
                if out.contains(where: { $0.verifier == v }) { r.problem(p + ".vkey", item["vkey"], "this witness is listed twice") }
                else { out.append(WitnessTarget(url: url, verifier: v)) }
            } catch {
                r.problem(p + ".vkey", item["vkey"], "not a witness verifier key (name+id+key, signature type 0x04): \(error)")
            }
        }
        return out
    }
}
