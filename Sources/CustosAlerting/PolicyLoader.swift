import CustosCore
import Foundation
import Yams

/// A policy read from its YAML file, with its GeoIP database opened.
public struct LoadedPolicy: Sendable {
    public var policy: Policy
    public var path: String
    /// The GeoIP database named by `geoip.database` (resolved against the policy's folder).
    public var geoDatabase: MaxMindDB?
    public var geoDatabasePath: String?

    /// A locator for the detection engine (nil without a database).
    public var locator: GeoLocator? {
        guard let db = geoDatabase else { return nil }
        return { ip in (try? db.location(ip)) ?? nil }
    }
}

public enum PolicyLoader {
    /// Policy files larger than this are refused (a policy is a few KB).
    public static let maxBytes = 1 << 20

    /// Reads, parses and checks a policy file. Every problem is reported by key path; the
    /// GeoIP database must open.
    public static func load(path: String) throws(ConfigProblems) -> LoadedPolicy {
        let text: String
        do {
            let url = URL(fileURLWithPath: path)
            let attrs = try FileManager.default.attributesOfItem(atPath: path)
            if let size = attrs[.size] as? Int, size > maxBytes {
                throw ConfigProblems([ConfigProblem(path: "", message: "\(path): file is larger than \(maxBytes) bytes")])
            }
            let data = try Data(contentsOf: url)
            guard let s = String(data: data, encoding: .utf8) else {
                throw ConfigProblems([ConfigProblem(path: "", message: "\(path): not UTF-8 text")])
            }
            text = s
        } catch let p as ConfigProblems {
            throw p
        } catch {
            throw ConfigProblems([ConfigProblem(path: "", message: "cannot read \(path): \(Self.describe(error))")])
        }
        let base = URL(fileURLWithPath: path).deletingLastPathComponent().path
        return try load(yaml: text, path: path, baseDirectory: base)
    }

    public static func load(yaml: String, path: String = "(policy)", baseDirectory: String) throws(ConfigProblems) -> LoadedPolicy {
        let root = try parseYAML(yaml)
        var policy = try Policy.parse(root)
        var loaded = LoadedPolicy(policy: policy, path: path)
        if let g = policy.geoip {
            let dbPath = g.database.hasPrefix("/") ? g.database : URL(fileURLWithPath: baseDirectory).appendingPathComponent(g.database).standardizedFileURL.path
            do {
                loaded.geoDatabase = try MaxMindDB(contentsOf: dbPath)
                loaded.geoDatabasePath = dbPath
            } catch {
                throw ConfigProblems([ConfigProblem(path: "geoip.database", position: root["geoip"]?["database"]?.position ?? .unknown,
                                                    message: "cannot open \(dbPath): \(error)")])
            }
            policy.geoip?.database = dbPath
            loaded.policy = policy
        }
        return loaded
    }

    /// YAML text → `ConfigNode`, with line and column on every node.
    public static func parseYAML(_ yaml: String) throws(ConfigProblems) -> ConfigNode {
        // The YAML composer recurses per level: refuse absurd flow nesting before it runs.
        var depth = 0, deepest = 0
        for b in yaml.utf8 {
            if b == UInt8(ascii: "[") || b == UInt8(ascii: "{") { depth += 1; deepest = max(deepest, depth) }
            else if (b == UInt8(ascii: "]") || b == UInt8(ascii: "}")) && depth > 0 { depth -= 1 }
        }
        guard deepest <= 64 else {
            throw ConfigProblems([ConfigProblem(path: "", message: "brackets nested more than 64 deep; a policy needs a few levels")])
        }
        let node: Node?
        do {
            node = try Yams.compose(yaml: yaml)
        } catch let y as YamlError {
            throw ConfigProblems([yamlProblem(y)])
        } catch {
            throw ConfigProblems([ConfigProblem(path: "", message: "not valid YAML")])
        }
        guard let node else { return .null(.unknown) }
        var problems: [ConfigProblem] = []
        let converted = convert(node, path: "", depth: 0, problems: &problems)
        if !problems.isEmpty { throw ConfigProblems(problems) }
        return converted
    }

    static func position(_ m: Mark?) -> ConfigNode.Position {
        guard let m else { return .unknown }
        return .init(line: m.line, column: m.column)
    }

    static func convert(_ node: Node, path: String, depth: Int, problems: inout [ConfigProblem]) -> ConfigNode {
        guard depth < 32 else {
            problems.append(ConfigProblem(path: path, position: position(node.mark), message: "nested more than 32 levels deep"))
            return .null(position(node.mark))
        }
        switch node {
        case .scalar(let s):
            let pos = position(s.mark)
            if s.style == .plain && (s.string == "~" || s.string == "null" || s.string.isEmpty) { return .null(pos) }
            return .scalar(s.string, pos, quoted: s.style != .plain)
        case .sequence(let seq):
            return .sequence(seq.enumerated().map { convert($1, path: ConfigReader.join(path, $0), depth: depth + 1, problems: &problems) }, position(seq.mark))
        case .mapping(let map):
            var entries: [ConfigNode.Entry] = []
            for (k, v) in map {
                guard case .scalar(let ks) = k else {
                    problems.append(ConfigProblem(path: path, position: position(k.mark), message: "mapping keys must be plain values"))
                    continue
                }
                let p = ConfigReader.join(path, ks.string)
                entries.append(.init(key: ks.string, keyPosition: position(ks.mark), value: convert(v, path: p, depth: depth + 1, problems: &problems)))
            }
            return .mapping(entries, position(map.mark))
        case .alias(let a):
            problems.append(ConfigProblem(path: path, position: position(a.mark), message: "YAML aliases (*name) are not supported in policy files"))
            return .null(position(a.mark))
        }
    }

    /// The parser's complaint and where, without the snippet of the file that Yams quotes
    /// (a policy file holds routing keys and webhook URLs).
    static func yamlProblem(_ e: YamlError) -> ConfigProblem {
        switch e {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            return ConfigProblem(path: "", position: position(mark), message: "not valid YAML: \(problem)")
        case .reader(let problem, _, _, _):
            return ConfigProblem(path: "", message: "not valid YAML: \(problem)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            return ConfigProblem(path: "", position: position(context.mark),
                                 message: "duplicate key\(duplicates.count == 1 ? "" : "s") \(duplicates.sorted().joined(separator: ", "))")
        default:
            return ConfigProblem(path: "", message: "not valid YAML")
        }
    }

    static func describe(_ error: any Error) -> String {
        (error as NSError).localizedDescription
    }
}
