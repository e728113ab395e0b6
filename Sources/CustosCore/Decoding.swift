import Crypto

/// A line a decoder could not turn into an event: where, and why. The reason never quotes
/// the input (it may hold secret values).
public struct DecodeRejection: Sendable, Equatable, CustomStringConvertible {
    public var line: Int
    public var reason: String
    /// Which input the line was in, when not the one being decoded (a request emitted late,
    /// after later inputs were read): the decoder's `input` at the time the line was read.
    public var input: Int?
    public init(line: Int, reason: String, input: Int? = nil) { self.line = line; self.reason = reason; self.input = input }
    public var description: String { "line \(line): \(reason)" }
}

/// What a decoder makes of its input.
public enum DecodeOutput: Sendable {
    case event(AccessEvent, line: Int)
    case rejected(DecodeRejection)
    /// Valid records that are not accesses worth keeping (UI look-ups, routine self look-ups).
    case ignored(line: Int, reason: String)
}

public enum EventID {
    /// Deterministic event id: 32 hex digits of SHA-256 over the instance and the
    /// source's own request id (or, lacking one, the record's bytes).
    public static func make(instance: String, key: UnsafeRawBufferPointer) -> String {
        make(prefix: prefix(instance: instance), key: key)
    }

    /// What every id of `instance` hashes first (callers making many ids keep it).
    public static func prefix(instance: String) -> [UInt8] {
        Array(("custos.event/v1\u{0}" + instance + "\u{0}").utf8)
    }

    public static func make(prefix: [UInt8], key: UnsafeRawBufferPointer) -> String {
        var h = SHA256()
        prefix.withUnsafeBytes { h.update(bufferPointer: $0) }
        h.update(bufferPointer: key)
        let d = h.finalize()
        return d.withUnsafeBytes { raw in
            String(unsafeUninitializedCapacity: 32) { out in
                let digits: StaticString = "0123456789abcdef"
                let hex = digits.utf8Start
                for i in 0..<16 {
                    out[2 * i] = hex[Int(raw[i] >> 4)]
                    out[2 * i + 1] = hex[Int(raw[i] & 15)]
                }
                return 32
            }
        }
    }

    public static func make(instance: String, key: String) -> String {
        var k = key
        return k.withUTF8 { make(instance: instance, key: UnsafeRawBufferPointer($0)) }
    }
}

/// Environment inferred from a secret's path when no policy says otherwise: the first path
/// segment that names one (prod/production/prd, staging/stage/stg, dev/development, test/qa).
public enum EnvironmentGuess {
    public static func from(path: String) -> String? {
        var path = path
        return path.withUTF8 { u -> String? in
            var start = 0
            var i = 0
            while i <= u.count {
                if i == u.count || u[i] == 0x2F {
                    if let env = match(UnsafeBufferPointer(rebasing: u[start..<i])) { return env }
                    start = i + 1
                }
                i += 1
            }
            return nil
        }
    }

    static let names: [(String, String)] = [
        ("prod", "prod"), ("production", "prod"), ("prd", "prod"),
        ("staging", "staging"), ("stage", "staging"), ("stg", "staging"),
        ("dev", "dev"), ("development", "dev"), ("test", "test"), ("qa", "test"),
    ]

    /// Case-insensitive ASCII comparison of one path segment with the known names.
    static func match(_ seg: UnsafeBufferPointer<UInt8>) -> String? {
        guard (2...11).contains(seg.count) else { return nil }
        for (name, env) in names where name.utf8.count == seg.count {
            var equal = true
            for (a, b) in zip(name.utf8, seg) where a != (b | 0x20) { equal = false; break }
            if equal { return env }
        }
        return nil
    }
}
