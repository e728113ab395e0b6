import CustosCore
import Foundation

extension ServeConfig {
    static let forwardKeys: Set<String> = ["name", "url", "format", "transport", "address", "batch", "headers_env", "hostname",
                                           "initial_backoff_ms", "max_backoff_ms", "timeout"]

    /// `forward: [{name: siem, url: https://siem.example/ingest, format: ocsf, batch: 500,
    /// headers_env: {Authorization: SIEM_AUTH}}, {name: syslog, transport: tcp, address: HOST:PORT,
    /// format: syslog5424 | cef}]` (README "Out to SIEMs").
    static func parseForward(_ node: ConfigNode?, _ r: inout ConfigReader) -> [ForwardTarget] {
        var out: [ForwardTarget] = []
        for (i, item) in r.sequence(node, "forward").enumerated() {
            let p = ConfigReader.join("forward", i)
            var t = ForwardTarget(name: "")
            var named = false, address = false
            for l in r.mapping(item, p, allowed: forwardKeys) {
                let k = p + "." + l.key
                switch l.key {
                case "name":
                    if let v = r.string(l.value, k, required: true) {
                        if ForwardTarget.validName(v) { t.name = v; named = true } else { r.problem(k, l.value, "1...64 letters, digits, '-' or '_'") }
                    }
                case "url":
                    if let v = r.string(l.value, k) {
                        if let u = URL(string: v), let s = u.scheme?.lowercased(), ["http", "https"].contains(s), u.host != nil {
                            if u.user != nil || u.password != nil {
                                r.problem(k, l.value, "a user or password in the URL is not allowed (URLs are logged): give credentials with headers_env")
                            } else { t.url = v }
                        } else {
                            r.problem(k, l.value, "expected an http:// or https:// URL")
                        }
                    }
                case "format":
                    if let v = r.string(l.value, k) {
                        if let f = ForwardTarget.Format(rawValue: v) { t.format = f } else { r.problem(k, l.value, "expected ocsf, syslog5424 or cef") }
                    }
                case "transport":
                    if let v = r.string(l.value, k) {
                        if let f = ForwardTarget.Transport(rawValue: v) { t.transport = f } else { r.problem(k, l.value, "expected http, tcp or udp") }
                    }
                case "address":
                    address = true
                    if let v = r.string(l.value, k) {
                        if let (h, port) = hostPort(v) { t.host = h; t.port = port } else { r.problem(k, l.value, "expected HOST:PORT") }
                    }
                case "batch": if let v = r.integer(l.value, k, range: 1...10_000) { t.batch = v }
                case "hostname": t.hostname = r.string(l.value, k)
                case "initial_backoff_ms": if let v = r.integer(l.value, k, range: 1...600_000) { t.initialBackoffMs = v }
                case "max_backoff_ms": if let v = r.integer(l.value, k, range: 1...3_600_000) { t.maxBackoffMs = v }
                case "timeout": if let v = r.duration(l.value, k, range: 1...600) { t.timeout = v }
                case "headers_env":
                    for h in r.mapping(l.value, k) {
                        if let v = r.string(h.value, ConfigReader.join(k, h.key)) { t.headersEnv[h.key] = v }
                    }
                default: break
                }
            }
            if !named { r.problem(p, item, "each forward target needs a name (it names its cursor file)"); continue }
            if out.contains(where: { $0.name == t.name }) { r.problem(p + ".name", item["name"], "two forward targets are named \(t.name)"); continue }
            switch t.transport {
            case .http:
                if t.url == nil { r.problem(p, item, "transport http needs url"); continue }
            case .tcp, .udp:
                if !address { r.problem(p, item, "transport \(t.transport.rawValue) needs address: HOST:PORT"); continue }
                if t.format == .ocsf { r.problem(p + ".format", item["format"], "transport \(t.transport.rawValue) carries syslog5424 or cef"); continue }
            }
            out.append(t)
        }
        return out
    }
}
