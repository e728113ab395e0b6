import CustosCore
import Foundation

/// A JSON value from a JOSE header, a claim set or a JWK Set: parsed completely and
/// strictly (CustosCore's `JSONScanner`), bounded in depth, members and size, duplicate
/// member names refused (two `aud` members must not mean whichever a reader picks).
public indirect enum JOSEValue: Sendable, Equatable {
    case string(String)
    /// The number's JSON text (checked by the scanner) and its value as a Double.
    case number(Double)
    case bool(Bool)
    case null
    case array([JOSEValue])
    case object([String: JOSEValue])

    public static let maxDepth = 16
    public static let maxMembers = 4096

    public struct ParseError: Error, Sendable, CustomStringConvertible {
        public var reason: String
        public var description: String { reason }
    }

    /// Parses one JSON document; errors give the reason and byte offset, never the content.
    public static func parse(_ bytes: [UInt8]) throws(ParseError) -> JOSEValue {
        let r: Result<JOSEValue, JSONScanner.Failure> = bytes.withUnsafeBytes { raw in
            var s = JSONScanner(raw)
            s.maxDepth = maxDepth
            var members = 0
            do throws(JSONScanner.Failure) {
                let v = try value(&s, depth: 0, members: &members)
                try s.expectEnd()
                return .success(v)
            } catch { return .failure(error) }
        }
        switch r {
        case .success(let v): return v
        case .failure(let f): throw ParseError(reason: f.description)
        }
    }

    static func value(_ s: inout JSONScanner, depth: Int, members: inout Int) throws(JSONScanner.Failure) -> JOSEValue {
        guard depth < maxDepth else { throw s.fail("nested more than \(maxDepth) levels") }
        members += 1
        guard members <= maxMembers else { throw s.fail("more than \(maxMembers) values") }
        switch s.peek() {
        case 0x7B:
            var o: [String: JOSEValue] = [:]
            try s.readObject { (s: inout JSONScanner, k: JSONScanner.Key) throws(JSONScanner.Failure) in
                // The scanner reports escaped keys as empty: neither is a member name JOSE uses.
                guard k.bytes.count > 0 else { throw s.fail("empty or escaped member name") }
                let key = k.string
                guard o[key] == nil else { throw s.fail("duplicate member name") }
                o[key] = try value(&s, depth: depth + 1, members: &members)
            }
            return .object(o)
        case 0x5B:
            var a: [JOSEValue] = []
            try s.readArray { (s: inout JSONScanner) throws(JSONScanner.Failure) in
                a.append(try value(&s, depth: depth + 1, members: &members))
            }
            return .array(a)
        case 0x22: return .string(try s.readString())
        case 0x74, 0x66: return .bool(try s.readBool())
        case 0x6E:
            guard s.isNull() else { throw s.fail("invalid value") }
            return .null
        case nil: throw s.fail("unexpected end of input")
        default:
            let start = s.pos
            try s.skipValue()
            let text = String(decoding: UnsafeBufferPointer(start: s.base + start, count: s.pos - start), as: UTF8.self)
            guard let d = Double(text), d.isFinite else { throw s.fail("number out of range") }
            return .number(d)
        }
    }

    public var string: String? { if case .string(let s) = self { return s }; return nil }
    public var object: [String: JOSEValue]? { if case .object(let o) = self { return o }; return nil }
    public subscript(key: String) -> JOSEValue? { object?[key] }

    /// A short printable rendering of an untrusted identifier for an error message: ASCII
    /// letters, digits and `-._:/@*+=` kept, anything else `?`, at most `max` characters.
    public static func short(_ s: String, max: Int = 64) -> String {
        var out = ""
        for u in s.unicodeScalars.prefix(max) {
            if u.isASCII, u.properties.isAlphabetic || ("0"..."9").contains(Character(u)) || "-._:/@*+=~".unicodeScalars.contains(u) {
                out.unicodeScalars.append(u)
            } else { out += "?" }
        }
        return s.unicodeScalars.count > max ? out + "…" : out
    }
}

extension ConfigNode {
    /// The node as a JOSE value (every scalar a string): an inline `jwks:` mapping in YAML.
    var joseValue: JOSEValue {
        switch self {
        case .scalar(let s, _, _): return .string(s)
        case .null: return .null
        case .sequence(let items, _): return .array(items.map(\.joseValue))
        case .mapping(let entries, _):
            var o: [String: JOSEValue] = [:]
            for e in entries { o[e.key] = e.value.joseValue }
            return .object(o)
        }
    }
}
