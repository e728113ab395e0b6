/// A parsed configuration document (YAML or JSON), independent of the parser that read it:
/// scalars are kept as text with their position so that every problem can say where it is.
/// The loader (CustosAlerting, with Yams) builds it; the policy model reads it here, in the
/// pure core, so that validation is testable without files.
public indirect enum ConfigNode: Sendable, Equatable {
    case scalar(String, Position, quoted: Bool)
    case sequence([ConfigNode], Position)
    case mapping([Entry], Position)
    case null(Position)

    public struct Position: Sendable, Equatable, CustomStringConvertible {
        public var line: Int
        public var column: Int
        public init(line: Int, column: Int) { self.line = line; self.column = column }
        public static let unknown = Position(line: 0, column: 0)
        public var description: String { line > 0 ? "line \(line), column \(column)" : "" }
    }

    public struct Entry: Sendable, Equatable {
        public var key: String
        public var keyPosition: Position
        public var value: ConfigNode
        public init(key: String, keyPosition: Position, value: ConfigNode) {
            self.key = key; self.keyPosition = keyPosition; self.value = value
        }
    }

    public var position: Position {
        switch self {
        case .scalar(_, let p, _), .sequence(_, let p), .mapping(_, let p), .null(let p): return p
        }
    }

    /// What kind of node this is, for error messages.
    public var kindName: String {
        switch self {
        case .scalar: return "a value"
        case .sequence: return "a list"
        case .mapping: return "a mapping"
        case .null: return "empty"
        }
    }

    public subscript(key: String) -> ConfigNode? {
        guard case .mapping(let entries, _) = self else { return nil }
        return entries.first { $0.key == key }?.value
    }
}

/// One problem in a configuration file: the key path (`classes.break_glass.owner`), where
/// it is in the file when known, and what is wrong.
public struct ConfigProblem: Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var position: ConfigNode.Position
    public var message: String
    public init(path: String, position: ConfigNode.Position = .unknown, message: String) {
        self.path = path; self.position = position; self.message = message
    }
    public var description: String {
        let at = position.line > 0 ? " (\(position))" : ""
        return "\(path.isEmpty ? "(top level)" : path)\(at): \(message)"
    }
}

/// Every problem found in a configuration, reported together.
public struct ConfigProblems: Error, Sendable, CustomStringConvertible {
    public var problems: [ConfigProblem]
    public init(_ problems: [ConfigProblem]) { self.problems = problems }
    public var description: String { problems.map(\.description).joined(separator: "\n") }
}

/// Reads typed values out of a `ConfigNode`, collecting problems instead of stopping at
/// the first one.
public struct ConfigReader {
    public private(set) var problems: [ConfigProblem] = []
    public init() {}

    public mutating func problem(_ path: String, _ node: ConfigNode?, _ message: String) {
        problems.append(ConfigProblem(path: path, position: node?.position ?? .unknown, message: message))
    }

    public static func join(_ path: String, _ key: String) -> String {
        let k = safeKey(key)
        return path.isEmpty ? k : "\(path).\(k)"
    }

    /// Keys are echoed in problem paths only when they look like names: a value that a
    /// typo turned into a key (a webhook URL, a routing key) is never printed.
    public static func safeKey(_ key: String) -> String {
        let ok = key.count <= 40 && !key.isEmpty && key.unicodeScalars.allSatisfy {
            ($0.properties.isAlphabetic && $0.isASCII) || ("0"..."9").contains($0) || $0 == "_" || $0 == "-"
        }
        return ok ? key : "(a key that is not a name)"
    }
    public static func join(_ path: String, _ index: Int) -> String { "\(path)[\(index)]" }

    /// The entries of a mapping; reports keys outside `allowed` (typos must not be ignored
    /// in a security policy) and duplicated keys.
    public mutating func mapping(_ node: ConfigNode?, _ path: String, allowed: Set<String>? = nil) -> [ConfigNode.Entry] {
        guard let node else { return [] }
        if case .null = node { return [] }
        guard case .mapping(let entries, _) = node else {
            problem(path, node, "expected a mapping, found \(node.kindName)")
            return []
        }
        var seen = Set<String>()
        var out: [ConfigNode.Entry] = []
        for e in entries {
            let p = Self.join(path, e.key)
            if !seen.insert(e.key).inserted {
                problems.append(ConfigProblem(path: p, position: e.keyPosition, message: "duplicate key"))
                continue
            }
            if let allowed, !allowed.contains(e.key) {
                problems.append(ConfigProblem(path: p, position: e.keyPosition,
                    message: "unknown key (expected one of: \(allowed.sorted().joined(separator: ", ")))"))
                continue
            }
            out.append(e)
        }
        return out
    }

    public mutating func sequence(_ node: ConfigNode?, _ path: String) -> [ConfigNode] {
        guard let node else { return [] }
        switch node {
        case .null: return []
        case .sequence(let items, _): return items
        default:
            problem(path, node, "expected a list, found \(node.kindName)")
            return []
        }
    }

    public mutating func string(_ node: ConfigNode?, _ path: String, required: Bool = false) -> String? {
        guard let node else {
            if required { problems.append(ConfigProblem(path: path, message: "is required")) }
            return nil
        }
        switch node {
        case .scalar(let s, _, _):
            if s.isEmpty && required { problem(path, node, "must not be empty"); return nil }
            return s
        case .null:
            if required { problem(path, node, "is required") }
            return nil
        default:
            problem(path, node, "expected a value, found \(node.kindName)")
            return nil
        }
    }

    public mutating func strings(_ node: ConfigNode?, _ path: String) -> [String] {
        guard let node else { return [] }
        if case .scalar(let s, _, _) = node { return [s] }
        var out: [String] = []
        for (i, item) in sequence(node, path).enumerated() {
            if let s = string(item, Self.join(path, i), required: true) { out.append(s) }
        }
        return out
    }

    public mutating func bool(_ node: ConfigNode?, _ path: String) -> Bool? {
        guard let s = string(node, path) else { return nil }
        switch s.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: problem(path, node, "expected true or false, found \"\(s)\""); return nil
        }
    }

    public mutating func number(_ node: ConfigNode?, _ path: String, range: ClosedRange<Double>) -> Double? {
        guard let s = string(node, path) else { return nil }
        guard let v = Double(s), v.isFinite else { problem(path, node, "expected a number, found \"\(s)\""); return nil }
        guard range.contains(v) else {
            problem(path, node, "must be between \(Self.format(range.lowerBound)) and \(Self.format(range.upperBound)), found \(s)")
            return nil
        }
        return v
    }

    public mutating func integer(_ node: ConfigNode?, _ path: String, range: ClosedRange<Int>) -> Int? {
        guard let s = string(node, path) else { return nil }
        guard let v = Int(s) else { problem(path, node, "expected a whole number, found \"\(s)\""); return nil }
        guard range.contains(v) else { problem(path, node, "must be between \(range.lowerBound) and \(range.upperBound), found \(v)"); return nil }
        return v
    }

    /// `90s`, `5m`, `1h`, `1h30m`, `7d`, `2w` (a bare number is refused: the unit matters).
    public mutating func duration(_ node: ConfigNode?, _ path: String, range: ClosedRange<Int64>) -> Int64? {
        guard let s = string(node, path) else { return nil }
        guard let v = ConfigDuration.parse(s) else {
            problem(path, node, "expected a duration like 30s, 5m, 1h, 1h30m, 7d or 2w, found \"\(s)\"")
            return nil
        }
        guard range.contains(v) else {
            problem(path, node, "must be between \(ConfigDuration.format(range.lowerBound)) and \(ConfigDuration.format(range.upperBound)), found \(s)")
            return nil
        }
        return v
    }

    static func format(_ d: Double) -> String { d == d.rounded() ? String(Int64(d)) : String(d) }
}

/// Durations in configuration files, in seconds.
public enum ConfigDuration {
    public static func parse(_ text: String) -> Int64? {
        let units: [Character: Int64] = ["s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800]
        var total: Int64 = 0
        var digits = ""
        var sawUnit = false
        for c in text {
            if c.isASCII && c.isNumber { digits.append(c); continue }
            guard let u = units[c], !digits.isEmpty, digits.count <= 9, let n = Int64(digits) else { return nil }
            let (m, o1) = n.multipliedReportingOverflow(by: u)
            let (t, o2) = total.addingReportingOverflow(m)
            guard !o1, !o2 else { return nil }
            total = t; digits = ""; sawUnit = true
        }
        guard digits.isEmpty, sawUnit else { return nil }
        return total
    }

    public static func format(_ seconds: Int64) -> String {
        var s = seconds
        if s == 0 { return "0s" }
        var out = ""
        for (u, n) in [("w", Int64(604_800)), ("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] where s >= n {
            out += "\(s / n)\(u)"; s %= n
        }
        return out
    }
}
