/// Custos's canonical JSON, the exact bytes the trail stores and hashes.
///
/// Rules (documented in README "Canonical encoding"):
/// - UTF-8; no whitespace outside strings; object keys in ascending byte order; each key once.
/// - Absent values are omitted (never `null`); empty arrays are omitted.
/// - Strings: `"` and `\` escaped as `\"` and `\\`; U+0008, U+0009, U+000A, U+000C, U+000D
///   as `\b \t \n \f \r`; other code points below U+0020 as `\u00XX` (lower-case hex);
///   everything else, including `/` and non-ASCII, written as raw UTF-8.
/// - Numbers: integers only, shortest decimal form, no `+`, no leading zeros.
/// This matches RFC 8785 (JCS) for the values Custos uses.
public struct CanonicalWriter {
    public var bytes: [UInt8]
    var needsComma: [Bool] = []

    public init(capacity: Int = 512) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    @inline(__always) public mutating func comma() {
        if needsComma[needsComma.count - 1] { bytes.append(0x2C) } else { needsComma[needsComma.count - 1] = true }
    }

    public mutating func beginObject() { bytes.append(0x7B); needsComma.append(false) }
    public mutating func endObject() { bytes.append(0x7D); needsComma.removeLast() }
    public mutating func beginArray() { bytes.append(0x5B); needsComma.append(false) }
    public mutating func endArray() { bytes.append(0x5D); needsComma.removeLast() }

    /// Keys must be written in ascending order by the caller; keys are ASCII literals.
    public mutating func key(_ k: StaticString) {
        comma()
        bytes.append(0x22)
        bytes.append(contentsOf: UnsafeBufferPointer(start: k.utf8Start, count: k.utf8CodeUnitCount))
        bytes.append(0x22); bytes.append(0x3A)
    }

    public mutating func field(_ k: StaticString, _ v: String?) {
        guard let v else { return }
        key(k); string(v)
    }

    public mutating func field(_ k: StaticString, _ v: Int?) {
        guard let v else { return }
        key(k); int(v)
    }

    public mutating func field(_ k: StaticString, _ v: [String]) {
        guard !v.isEmpty else { return }
        key(k)
        beginArray()
        for s in v { comma(); string(s) }
        endArray()
    }

    public mutating func element(_ s: String) { comma(); string(s) }

    public mutating func int(_ v: Int) {
        if v < 0 { bytes.append(0x2D) }
        var m = v.magnitude
        var tmp: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                  UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = 0
        withUnsafeMutableBytes(of: &tmp) { buf in
            repeat { buf[n] = UInt8(48 + m % 10); m /= 10; n += 1 } while m > 0
            for i in stride(from: n - 1, through: 0, by: -1) { bytes.append(buf[i]) }
        }
    }

    static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    public mutating func string(_ s: String) {
        var s = s
        s.withUTF8 { _ = Self.appendString($0, to: &bytes) }
    }

    /// Appends `u` (UTF-8) as a canonical JSON string, quotes included. Returns whether any
    /// byte had to be escaped (if not, the bytes between the quotes are `u` itself).
    @discardableResult
    static func appendString(_ u: UnsafeBufferPointer<UInt8>, to bytes: inout [UInt8]) -> Bool {
        bytes.append(0x22)
        let escaped = appendContent(u, to: &bytes)
        bytes.append(0x22)
        return escaped
    }

    /// `appendString` without the quotes.
    @discardableResult
    static func appendContent(_ u: UnsafeBufferPointer<UInt8>, to bytes: inout [UInt8]) -> Bool {
        var escaped = false
        var runStart = 0
        for i in 0..<u.count {
            let c = u[i]
            if c >= 0x20 && c != 0x22 && c != 0x5C { continue }
            escaped = true
            if runStart < i { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: u[runStart..<i])) }
            runStart = i + 1
            bytes.append(0x5C)
            switch c {
            case 0x22: bytes.append(0x22)
            case 0x5C: bytes.append(0x5C)
            case 0x08: bytes.append(0x62)
            case 0x09: bytes.append(0x74)
            case 0x0A: bytes.append(0x6E)
            case 0x0C: bytes.append(0x66)
            case 0x0D: bytes.append(0x72)
            default:
                bytes.append(0x75); bytes.append(0x30); bytes.append(0x30)
                bytes.append(Self.hex[Int(c >> 4)]); bytes.append(Self.hex[Int(c & 15)])
            }
        }
        if runStart < u.count { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: u[runStart..<u.count])) }
        return escaped
    }
}

public struct EventCodingError: Error, Sendable, CustomStringConvertible {
    public var reason: String
    public var description: String { reason }
}

extension AccessEvent {
    /// Largest canonical entry the trail accepts (tlog-tiles entries are uint16 length-prefixed).
    public static let maxEncodedSize = 65_535

    /// Whether the canonical encoding fits a trail entry (encoded only when the cheap bound
    /// does not already say so).
    public var fitsTrailEntry: Bool {
        encodedSizeBound <= Self.maxEncodedSize || canonicalJSON().count <= Self.maxEncodedSize
    }

    /// An upper bound of the canonical encoding's size (each string byte may escape to six),
    /// cheap enough to skip encoding when it is clearly within the limit.
    public var encodedSizeBound: Int {
        var n = 600
        func add(_ s: String?) { if let s { n += s.utf8.count * 6 + 32 } }
        add(id); add(action.rawValue); add(reason); add(requestID)
        add(source.kind); add(source.instance)
        add(secret?.store); add(secret?.path); add(secret?.environment); add(secret?.namespace)
        add(identity.id); add(identity.name); add(identity.method)
        for p in identity.policies { add(p) }
        add(origin?.ip)
        if let p = pipeline {
            add(p.provider); add(p.repository); add(p.name); add(p.id); add(p.environment); add(p.runID); add(p.job); add(p.step); add(p.triggerIdentity); add(p.runnerIP)
            for x in p.scope { add(x) }
        }
        return n
    }

    /// The canonical bytes; `index`, when given, is added as a top-level `index` member (how
    /// `query` prints events with their trail position).
    public func canonicalJSON(index: UInt64? = nil) -> [UInt8] {
        var w = CanonicalWriter()
        encode(into: &w, index: index)
        return w.bytes
    }

    public func encode(into w: inout CanonicalWriter, index: UInt64? = nil) {
        w.beginObject()
        w.field("action", action.rawValue)
        w.field("id", id)
        w.key("identity")
        w.beginObject()
        w.field("id", identity.id)
        w.field("kind", identity.kind.rawValue)
        w.field("method", identity.method)
        w.field("name", identity.name)
        w.field("policies", identity.policies)
        w.endObject()
        if let index { w.key("index"); w.int(Int(index)) }
        if let origin {
            w.key("origin")
            w.beginObject()
            w.field("ip", origin.ip)
            w.field("port", origin.port)
            w.endObject()
        }
        w.field("outcome", outcome.rawValue)
        if let p = pipeline { w.key("pipeline"); p.encode(into: &w) }
        w.field("reason", reason)
        w.field("request_id", requestID)
        w.field("schema", AccessEvent.schema)
        if let secret { w.key("secret"); secret.encode(into: &w) }
        w.key("source")
        w.beginObject()
        w.field("instance", source.instance)
        w.field("kind", source.kind)
        w.endObject()
        w.key("time")
        w.bytes.append(0x22)
        time.appendRFC3339(to: &w.bytes)
        w.bytes.append(0x22)
        w.endObject()
    }

    /// Decodes an event from JSON. With `requireCanonical` (what verification uses) the
    /// bytes must be exactly the canonical encoding of the decoded event.
    public static func decode(_ bytes: UnsafeRawBufferPointer, requireCanonical: Bool = false) throws -> AccessEvent {
        var s = JSONScanner(bytes)
        let event: AccessEvent
        do {
            event = try decodeObject(&s)
            try s.expectEnd()
        } catch let f as JSONScanner.Failure {
            throw EventCodingError(reason: f.description)
        }
        if requireCanonical {
            let again = event.canonicalJSON()
            guard again.count == bytes.count, again.withUnsafeBytes({ $0.elementsEqual(bytes) }) else {
                throw EventCodingError(reason: "not in canonical form")
            }
        }
        return event
    }

    public static func decode(_ bytes: [UInt8], requireCanonical: Bool = false) throws -> AccessEvent {
        try bytes.withUnsafeBytes { try decode($0, requireCanonical: requireCanonical) }
    }

    static func decodeObject(_ s: inout JSONScanner) throws -> AccessEvent {
        var id: String?, time: EventTime?, action: String?, outcome: Outcome?, reason: String?
        var schema: String?, requestID: String?
        var source: Source?, secret: Secret?, identity: Identity?, origin: Origin?, pipeline: Pipeline?
        var seen = Set<String>()
        func enumValue<E: RawRepresentable>(_ s: inout JSONScanner, _ what: String) throws -> E where E.RawValue == String {
            let raw = try s.readString()
            guard let v = E(rawValue: raw) else { throw s.fail("unknown \(what)") }
            return v
        }
        try s.readObject { (s: inout JSONScanner, key: JSONScanner.Key) throws(JSONScanner.Failure) in
            let k = key.string
            guard seen.insert(k).inserted else { throw s.fail("duplicate key") }
            do {
                switch k {
                case "schema": schema = try s.readString()
                case "id": id = try s.readString()
                case "time":
                    let t = try s.readString()
                    guard let et = EventTime(rfc3339: t) else { throw s.fail("invalid time") }
                    time = et
                case "action": action = try s.readString()
                case "outcome": outcome = try enumValue(&s, "outcome")
                case "reason": reason = try s.readString()
                case "request_id": requestID = try s.readString()
                case "index": _ = try s.readInt()
                case "source":
                    var kind: String?, instance: String?
                    var keys = Set<String>()
                    try s.readObject { (s: inout JSONScanner, k: JSONScanner.Key) throws(JSONScanner.Failure) in
                        guard keys.insert(k.string).inserted else { throw s.fail("duplicate key") }
                        if k.equals("kind") { kind = try s.readString() } else if k.equals("instance") { instance = try s.readString() } else { throw s.fail("unknown key in source") }
                    }
                    guard let kind, let instance else { throw s.fail("source needs kind and instance") }
                    source = Source(kind: kind, instance: instance)
                case "secret":
                    var store: String?, path: String?, env: String?, ns: String?
                    var keys = Set<String>()
                    try s.readObject { (s: inout JSONScanner, k: JSONScanner.Key) throws(JSONScanner.Failure) in
                        guard keys.insert(k.string).inserted else { throw s.fail("duplicate key") }
                        if k.equals("store") { store = try s.readString() }
                        else if k.equals("path") { path = try s.readString() }
                        else if k.equals("environment") { env = try s.readString() }
                        else if k.equals("namespace") { ns = try s.readString() }
                        else { throw s.fail("unknown key in secret") }
                    }
                    guard let path else { throw s.fail("secret needs a path") }
                    secret = Secret(store: store, path: path, environment: env, namespace: ns)
                case "identity":
                    var iid: String?, name: String?, kind: IdentityKind?, method: String?, policies: [String] = []
                    var keys = Set<String>()
                    try s.readObject { (s: inout JSONScanner, k: JSONScanner.Key) throws(JSONScanner.Failure) in
                        guard keys.insert(k.string).inserted else { throw s.fail("duplicate key") }
                        if k.equals("id") { iid = try s.readString() }
                        else if k.equals("name") { name = try s.readString() }
                        else if k.equals("kind") {
                            let raw = try s.readString()
                            guard let v = IdentityKind(rawValue: raw) else { throw s.fail("unknown identity kind") }
                            kind = v
                        }
                        else if k.equals("method") { method = try s.readString() }
                        else if k.equals("policies") { policies = try s.readStringArray() }
                        else { throw s.fail("unknown key in identity") }
                    }
                    guard let kind else { throw s.fail("identity needs a kind") }
                    identity = Identity(id: iid, name: name, kind: kind, method: method, policies: policies)
                case "origin":
                    var ip: String?, port: Int?
                    var keys = Set<String>()
                    try s.readObject { (s: inout JSONScanner, k: JSONScanner.Key) throws(JSONScanner.Failure) in
                        guard keys.insert(k.string).inserted else { throw s.fail("duplicate key") }
                        if k.equals("ip") { ip = try s.readString() }
                        else if k.equals("port") {
                            let p = try s.readInt()
                            guard (0...65535).contains(p) else { throw s.fail("port out of range") }
                            port = Int(p)
                        } else { throw s.fail("unknown key in origin") }
                    }
                    guard let ip else { throw s.fail("origin needs an ip") }
                    origin = Origin(ip: ip, port: port)
                case "pipeline":
                    var p = Pipeline()
                    var keys = Set<String>()
                    try s.readObject { (s: inout JSONScanner, k: JSONScanner.Key) throws(JSONScanner.Failure) in
                        guard keys.insert(k.string).inserted else { throw s.fail("duplicate key") }
                        switch k.string {
                        case "provider": p.provider = try s.readString()
                        case "repository": p.repository = try s.readString()
                        case "id": p.id = try s.readString()
                        case "environment": p.environment = try s.readString()
                        case "attempt":
                            let a = try s.readInt()
                            guard (0...1_000_000).contains(a) else { throw s.fail("attempt out of range") }
                            p.attempt = Int(a)
                        case "name": p.name = try s.readString()
                        case "run_id": p.runID = try s.readString()
                        case "job": p.job = try s.readString()
                        case "step": p.step = try s.readString()
                        case "trigger":
                            let raw = try s.readString()
                            guard let t = Pipeline.Trigger(rawValue: raw) else { throw s.fail("unknown trigger") }
                            p.trigger = t
                        case "trigger_identity": p.triggerIdentity = try s.readString()
                        case "runner_ip": p.runnerIP = try s.readString()
                        case "scope": p.scope = try s.readStringArray()
                        default: throw s.fail("unknown key in pipeline")
                        }
                    }
                    pipeline = p
                default:
                    throw s.fail("unknown key")
                }
            } catch let f as JSONScanner.Failure {
                throw f
            } catch {
                throw s.fail("invalid value")
            }
        }
        guard schema == AccessEvent.schema else { throw EventCodingError(reason: "schema must be \(AccessEvent.schema)") }
        guard let id, let time, let action, let outcome, let source, let identity else {
            throw EventCodingError(reason: "missing required field (id, time, source, action, outcome, identity)")
        }
        return AccessEvent(id: id, time: time, source: source, action: Action(action), outcome: outcome,
                           reason: reason, secret: secret, identity: identity, origin: origin,
                           requestID: requestID, pipeline: pipeline)
    }
}

extension AccessEvent.Pipeline {
    /// The `pipeline` object, shared by events and the OCSF export (one encoding of one value).
    func encode(into w: inout CanonicalWriter) {
        w.beginObject()
        w.field("attempt", attempt)
        w.field("environment", environment)
        w.field("id", id)
        w.field("job", job)
        w.field("name", name)
        w.field("provider", provider)
        w.field("repository", repository)
        w.field("run_id", runID)
        w.field("runner_ip", runnerIP)
        w.field("scope", scope)
        w.field("step", step)
        w.field("trigger", trigger?.rawValue)
        w.field("trigger_identity", triggerIdentity)
        w.endObject()
    }
}

extension AccessEvent.Secret {
    /// The `secret` object, shared by events, alerts and the OCSF export (one encoding of one value).
    func encode(into w: inout CanonicalWriter) {
        w.beginObject()
        w.field("environment", environment)
        w.field("namespace", namespace)
        w.field("path", path)
        w.field("store", store)
        w.endObject()
    }
}
