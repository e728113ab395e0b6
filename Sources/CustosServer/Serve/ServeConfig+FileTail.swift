import CustosCore

extension ServeConfig {
    static let fileTailKeys: Set<String> = ["path", "format", "instance", "poll_interval_ms"]

    /// `file_tail:` — a list of `{path, format, instance, poll_interval_ms}` mappings, or
    /// one such mapping. `path` is required (relative to the config file's directory);
    /// a path may be followed once.
    static func parseFileTail(_ node: ConfigNode, _ r: inout ConfigReader, _ resolve: (String) -> String) -> [FileTailer.Source] {
        var items: [(ConfigNode, String)] = []
        if case .mapping = node { items = [(node, "file_tail")] } else {
            items = r.sequence(node, "file_tail").enumerated().map { ($1, ConfigReader.join("file_tail", $0)) }
        }
        var out: [FileTailer.Source] = []
        var seen: [String: String] = [:]
        for (item, at) in items {
            var path: String?
            var s = FileTailer.Source(path: "")
            let entries = r.mapping(item, at, allowed: fileTailKeys)
            if case .mapping = item, item["path"] == nil {
                r.problem(at + ".path", item, "is required (the file the audit device writes)")
            }
            for l in entries {
                let p = at + "." + l.key
                switch l.key {
                case "path":
                    if let v = r.string(l.value, p, required: true) {
                        let full = resolve(v)
                        if let first = seen[full] { r.problem(p, l.value, "\(v) is already followed by \(first)") } else { seen[full] = at; path = full }
                    }
                case "format":
                    if let v = r.string(l.value, p) {
                        if let f = WireFormat(rawValue: v), WireFormat.lineFormats.contains(f) { s.format = f } else { r.problem(p, l.value, "expected vault, openbao, custos or auto") }
                    }
                case "instance":
                    if let v = r.string(l.value, p) {
                        if v.isEmpty || v.utf8.count > 256 { r.problem(p, l.value, "must be 1...256 bytes") } else { s.instance = v }
                    }
                case "poll_interval_ms":
                    if let v = r.integer(l.value, p, range: 10...60_000) { s.pollIntervalMs = v }
                default: break
                }
            }
            if let path {
                s.path = path
                out.append(s)
            }
        }
        return out
    }
}
