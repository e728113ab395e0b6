import Crypto

/// A line a decoder could not turn into an event: where, and why. The reason never quotes
/// the input (it may hold secret values).
public struct DecodeRejection: Sendable, Equatable, CustomStringConvertible {
    public var line: Int
    public var reason: String
    public init(line: Int, reason: String) { self.line = line; self.reason = reason }
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
        var h = SHA256()
        h.update(data: Array("custos.event/v1\u{0}".utf8))
        h.update(data: Array(instance.utf8))
        h.update(data: [0])
        h.update(bufferPointer: key)
        let d = h.finalize()
        return d.withUnsafeBytes { Hex.encode($0.prefix(16)) }
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
        for seg in path.split(separator: "/") {
            switch seg.lowercased() {
            case "prod", "production", "prd": return "prod"
            case "staging", "stage", "stg": return "staging"
            case "dev", "development": return "dev"
            case "test", "qa": return "test"
            default: continue
            }
        }
        return nil
    }
}
