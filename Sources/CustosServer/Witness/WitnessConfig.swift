import CustosAlerting
import CustosCore
import Foundation

/// `custos witness serve --config FILE` (README "Witnesses"):
///
///     listen: 127.0.0.1:7380          # default
///     state: witness-state            # one file per log: the latest cosigned checkpoint
///     key: witness.key                # from `custos witness keygen`
///     logs:
///       - origin: custos.example/prod
///         vkey: custos.example/prod+1a2b3c4d+AX...
///
/// Relative paths are relative to the config file's directory.
public struct WitnessConfig: Sendable, Equatable {
    public var host = "127.0.0.1"
    public var port = 7380
    public var state = "witness-state"
    public var key = "witness.key"
    public var logs: [WitnessedLog] = []

    public init() {}

    static let keys: Set<String> = ["listen", "state", "key", "logs"]

    public static func parse(yaml: String, baseDirectory: String) throws(ConfigProblems) -> WitnessConfig {
        let root = try PolicyLoader.parseYAML(yaml)
        var r = ConfigReader()
        var c = WitnessConfig()
        func path(_ p: String) -> String { p.hasPrefix("/") ? p : baseDirectory + "/" + p }
        c.state = path(c.state)
        c.key = path(c.key)
        for e in r.mapping(root, "", allowed: keys) {
            switch e.key {
            case "listen":
                if let v = r.string(e.value, "listen") {
                    if let (h, p) = ServeConfig.hostPort(v) { c.host = h; c.port = p } else {
                        r.problem("listen", e.value, "expected HOST:PORT (e.g. 127.0.0.1:7380 or [::1]:7380), port 1...65535")
                    }
                }
            case "state": if let v = r.string(e.value, "state", required: true) { c.state = path(v) }
            case "key": if let v = r.string(e.value, "key", required: true) { c.key = path(v) }
            case "logs":
                for (i, item) in r.sequence(e.value, "logs").enumerated() {
                    let p = ConfigReader.join("logs", i)
                    var origin: String?, vkey: String?
                    for l in r.mapping(item, p, allowed: ["origin", "vkey"]) {
                        switch l.key {
                        case "origin": origin = r.string(l.value, p + ".origin", required: true)
                        case "vkey": vkey = r.string(l.value, p + ".vkey", required: true)
                        default: break
                        }
                    }
                    guard let origin, let vkey else {
                        r.problem(p, item, "each log needs origin and vkey")
                        continue
                    }
                    if origin.isEmpty || origin.contains("\n") { r.problem(p + ".origin", item["origin"], "must be one non-empty line"); continue }
                    do {
                        let v = try NoteVerifier(vkey: vkey)
                        if c.logs.contains(where: { $0.origin == origin }) {
                            r.problem(p + ".origin", item["origin"], "log \(origin) is listed twice")
                        } else {
                            c.logs.append(WitnessedLog(origin: origin, verifier: v))
                        }
                    } catch {
                        r.problem(p + ".vkey", item["vkey"], "not an Ed25519 verifier key (name+id+key): \(error)")
                    }
                }
            default: break
            }
        }
        if root["logs"] == nil { r.problem("logs", nil, "is required: the logs this witness cosigns (origin and vkey each)") }
        if !r.problems.isEmpty { throw ConfigProblems(r.problems) }
        return c
    }

    public static func load(path: String) throws(ConfigProblems) -> WitnessConfig {
        guard let data = FileManager.default.contents(atPath: path), data.count <= 1 << 20 else {
            throw ConfigProblems([ConfigProblem(path: "", message: "cannot read \(path) (or it is larger than 1 MiB)")])
        }
        let base = (path as NSString).deletingLastPathComponent
        return try parse(yaml: String(decoding: data, as: UTF8.self), baseDirectory: base.isEmpty ? "." : base)
    }
}
