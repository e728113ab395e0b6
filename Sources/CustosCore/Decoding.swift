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
        let (hi, lo) = words(prefix: prefix, key: key)
        return hex(hi, lo)
    }

    /// The id as two words: its first and last 16 hex digits (the digest's first 16 bytes,
    /// big-endian), which is also its de-duplication key.
    public static func words(prefix: [UInt8], key: UnsafeRawBufferPointer) -> (UInt64, UInt64) {
        var h = SHA256()
        prefix.withUnsafeBytes { h.update(bufferPointer: $0) }
        h.update(bufferPointer: key)
        let d = h.finalize()
        return d.withUnsafeBytes { raw in
            (UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
             UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
        }
    }

    /// The 32 hex digits of an id given as `words`.
    public static func hex(_ hi: UInt64, _ lo: UInt64) -> String {
        String(unsafeUninitializedCapacity: 32) { out in
            let digits: StaticString = "0123456789abcdef"
            let hex = digits.utf8Start
            for i in 0..<16 {
                out[i] = hex[Int((hi >> UInt64(60 - 4 * i)) & 15)]
                out[16 + i] = hex[Int((lo >> UInt64(60 - 4 * i)) & 15)]
            }
            return 32
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
        return path.withUTF8 { fromUTF8($0) }.map { $0.withUTF8Buffer { String(decoding: $0, as: UTF8.self) } }
    }

    /// `from(path:)` over the path's UTF-8.
    static func fromUTF8(_ u: UnsafeBufferPointer<UInt8>) -> StaticString? {
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

    static let names: [(StaticString, StaticString)] = [
        ("prod", "prod"), ("production", "prod"), ("prd", "prod"),
        ("staging", "staging"), ("stage", "staging"), ("stg", "staging"),
        ("dev", "dev"), ("development", "dev"), ("test", "test"), ("qa", "test"),
    ]

    /// Case-insensitive ASCII comparison of one path segment with the known names.
    static func match(_ seg: UnsafeBufferPointer<UInt8>) -> StaticString? {
        guard (2...11).contains(seg.count) else { return nil }
        for (name, env) in names where name.utf8CodeUnitCount == seg.count {
            let p = name.utf8Start
            var equal = true
            for i in 0..<seg.count where p[i] != (seg[i] | 0x20) { equal = false; break }
            if equal { return env }
        }
        return nil
    }
}
