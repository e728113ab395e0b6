import Crypto

/// What a trail entry can be. The trail is one log of canonical JSON objects told apart by
/// their `schema`: access events (`custos.event/v1`), alerts (`custos.alert/v1`), silences
/// (`custos.silence/v1`) and notification deliveries (`custos.delivery/v1`).
public enum TrailEntry: Sendable, Equatable {
    case event(AccessEvent)
    case alert(Alert)
    case silence(Silence)
    case delivery(DeliveryRecord)
    case investigation(InvestigationRecord)
    case incident(IncidentStep)

    /// The canonical bytes the trail stores.
    public func canonicalJSON() -> [UInt8] {
        switch self {
        case .event(let e): return e.canonicalJSON()
        case .alert(let a): return a.canonicalJSON()
        case .silence(let s): return s.canonicalJSON()
        case .delivery(let d): return d.canonicalJSON()
        case .investigation(let i): return i.canonicalJSON()
        case .incident(let i): return i.canonicalJSON()
        }
    }

    public var schema: String {
        switch self {
        case .event: return AccessEvent.schema
        case .alert: return Alert.schema
        case .silence: return Silence.schema
        case .delivery: return DeliveryRecord.schema
        case .investigation: return InvestigationRecord.schema
        case .incident: return IncidentStep.schema
        }
    }

    /// When the entry was made: an event's time, an alert's `raised_at`, a silence's
    /// `created_at`, a delivery's or an investigation's `time`.
    public var recordedTime: EventTime {
        switch self {
        case .event(let e): return e.time
        case .alert(let a): return a.raisedAt
        case .silence(let s): return s.createdAt
        case .delivery(let d): return d.time
        case .investigation(let i): return i.time
        case .incident(let i): return i.time
        }
    }

    /// Decodes an entry of any schema. Events are tried first (nearly every entry is one);
    /// the other schemas must be exactly in canonical form.
    public static func decode(_ bytes: UnsafeRawBufferPointer) throws -> TrailEntry {
        do {
            return .event(try AccessEvent.decode(bytes))
        } catch let eventError {
            let tree: JSONTree
            do { tree = try JSONTree.parse(bytes) } catch { throw eventError }
            guard case .object(let o) = tree, case .string(let schema)? = o["schema"] else { throw eventError }
            let entry: TrailEntry
            switch schema {
            case AccessEvent.schema: throw eventError
            case Alert.schema: entry = .alert(try Alert(tree: o))
            case Silence.schema: entry = .silence(try Silence(tree: o))
            case DeliveryRecord.schema: entry = .delivery(try DeliveryRecord(tree: o))
            case InvestigationRecord.schema: entry = .investigation(try InvestigationRecord(tree: o))
            case IncidentStep.schema: entry = .incident(try IncidentStep(tree: o))
            default: throw EventCodingError(reason: "unknown schema")
            }
            let again = entry.canonicalJSON()
            guard again.count == bytes.count, again.withUnsafeBytes({ $0.elementsEqual(bytes) }) else {
                throw EventCodingError(reason: "\(schema) entry not in canonical form")
            }
            return entry
        }
    }

    public static func decode(_ bytes: [UInt8]) throws -> TrailEntry {
        try bytes.withUnsafeBytes { try decode($0) }
    }
}

/// A notification attempt's result as the trail keeps it (`custos.delivery/v1`): which
/// alert, which owner, which kind of target at which `scheme://host:port` (never a URL path
/// or key), whether it arrived, after how many attempts, and the error if not. A notice to
/// the fallback owner about a failed delivery is recorded the same way with `notice: true`.
public struct DeliveryRecord: Sendable, Equatable {
    public static let schema = "custos.delivery/v1"
    public var alertID: String
    public var owner: String
    public var targetKind: String
    public var endpoint: String
    public var delivered: Bool
    public var attempts: Int
    public var error: String?
    public var notice: Bool
    public var time: EventTime

    public init(alertID: String, owner: String, targetKind: String, endpoint: String, delivered: Bool,
                attempts: Int, error: String?, notice: Bool, time: EventTime) {
        self.alertID = alertID; self.owner = owner; self.targetKind = targetKind; self.endpoint = endpoint
        self.delivered = delivered; self.attempts = attempts; self.error = error; self.notice = notice; self.time = time
    }

    public func canonicalJSON() -> [UInt8] {
        var w = CanonicalWriter()
        w.beginObject()
        w.field("alert_id", alertID)
        w.field("attempts", attempts)
        w.key("delivered"); w.bool(delivered)
        w.field("endpoint", endpoint)
        w.field("error", error)
        w.key("notice"); w.bool(notice)
        w.field("owner", owner)
        w.field("schema", Self.schema)
        w.field("target", targetKind)
        w.key("time"); w.time(time)
        w.endObject()
        return w.bytes
    }

    init(tree o: [String: JSONTree]) throws {
        var r = TreeReader(o, "delivery")
        alertID = try r.string("alert_id")
        attempts = try r.int("attempts")
        delivered = try r.bool("delivered")
        endpoint = try r.string("endpoint")
        error = try r.optionalString("error")
        notice = try r.bool("notice")
        owner = try r.string("owner")
        _ = try r.string("schema")
        targetKind = try r.string("target")
        time = try r.time("time")
        try r.end()
    }
}

extension Silence {
    public func canonicalJSON() -> [UInt8] {
        var w = CanonicalWriter()
        w.beginObject()
        w.field("class", alertClass?.rawValue)
        w.key("created_at"); w.time(createdAt)
        w.key("expires_at"); w.time(expiresAt)
        w.field("id", id)
        w.field("identity", identity)
        w.field("owner", owner)
        w.field("reason", reason)
        w.field("schema", Self.schema)
        w.field("secret", secret)
        w.endObject()
        return w.bytes
    }

    init(tree o: [String: JSONTree]) throws {
        var r = TreeReader(o, "silence")
        let c = try r.optionalString("class")
        if let c {
            guard let v = AlertClass(rawValue: c) else { throw EventCodingError(reason: "silence: unknown class") }
            alertClass = v
        } else { alertClass = nil }
        createdAt = try r.time("created_at")
        expiresAt = try r.time("expires_at")
        id = try r.string("id")
        identity = try r.optionalString("identity")
        owner = try r.string("owner")
        reason = try r.string("reason")
        _ = try r.string("schema")
        secret = try r.optionalString("secret")
        try r.end()
    }

    /// A silence id: derived from what it silences and when it was made.
    public static func makeID(owner: String, createdAt: EventTime, alertClass: AlertClass?, identity: String?, secret: String?) -> String {
        let text = "custos.silence/v1\u{0}\(owner)\u{0}\(String(decoding: createdAt.rfc3339Bytes(), as: UTF8.self))\u{0}\(alertClass?.rawValue ?? "")\u{0}\(identity ?? "")\u{0}\(secret ?? "")"
        return "sil-" + String(Hex.encode(Array(SHA256.hash(data: Array(text.utf8)))).prefix(16))
    }
}

extension Alert {
    /// Decodes an alert entry (canonical form is checked by `TrailEntry.decode`).
    public static func decode(_ bytes: [UInt8]) throws -> Alert {
        guard case .alert(let a) = try TrailEntry.decode(bytes) else { throw EventCodingError(reason: "not an alert") }
        return a
    }

    init(tree o: [String: JSONTree]) throws {
        var r = TreeReader(o, "alert")
        action = Action(try r.string("action"))
        guard let c = AlertClass(rawValue: try r.string("class")) else { throw EventCodingError(reason: "alert: unknown class") }
        alertClass = c
        count = try r.int("count")
        dedupKey = try r.string("dedup_key")
        details = [:]
        if let d = try r.optionalObject("details") {
            for (k, v) in d {
                guard case .string(let s) = v else { throw EventCodingError(reason: "alert: details must be strings") }
                details[k] = s
            }
        }
        evidence = try r.intArray("evidence").map { v in
            guard v >= 0 else { throw EventCodingError(reason: "alert: negative evidence index") }
            return UInt64(v)
        }
        id = try r.string("id")
        var ir = TreeReader(try r.object("identity"), "alert.identity")
        let iid = try ir.optionalString("id")
        guard let kind = IdentityKind(rawValue: try ir.string("kind")) else { throw EventCodingError(reason: "alert: unknown identity kind") }
        let iname = try ir.optionalString("name")
        try ir.end()
        identity = IdentityRef(id: iid, name: iname, kind: kind)
        lastTime = try r.time("last_time")
        if let od = try r.optionalObject("origin") {
            var orr = TreeReader(od, "alert.origin")
            let city = try orr.optionalString("city")
            let country = try orr.optionalString("country")
            let outside = try orr.optionalBool("country_outside")
            let ip = try orr.string("ip")
            let lat = try orr.optionalString("latitude").map(Self.parseFixed)
            let lon = try orr.optionalString("longitude").map(Self.parseFixed)
            try orr.end()
            origin = OriginRef(ip: ip, country: country, city: city, latitude: lat, longitude: lon, countryOutside: outside)
        } else { origin = nil }
        guard let oc = Outcome(rawValue: try r.string("outcome")) else { throw EventCodingError(reason: "alert: unknown outcome") }
        outcome = oc
        if let ow = try r.optionalObject("owner") {
            var orr = TreeReader(ow, "alert.owner")
            owner = OwnerRef(key: try orr.string("key"), name: try orr.string("name"))
            try orr.end()
        } else { owner = nil }
        playbook = try r.optionalString("playbook")
        raisedAt = try r.time("raised_at")
        _ = try r.string("schema")
        if let so = try r.optionalObject("secret") {
            var sr = TreeReader(so, "alert.secret")
            let env = try sr.optionalString("environment")
            let ns = try sr.optionalString("namespace")
            let path = try sr.string("path")
            let store = try sr.optionalString("store")
            try sr.end()
            secret = AccessEvent.Secret(store: store, path: path, environment: env, namespace: ns)
        } else { secret = nil }
        guard let sev = Severity(rawValue: try r.string("severity")) else { throw EventCodingError(reason: "alert: unknown severity") }
        severity = sev
        silencedBy = try r.optionalString("silenced_by")
        slaDeadline = try r.optionalTime("sla_deadline")
        guard let st = Status(rawValue: try r.string("status")) else { throw EventCodingError(reason: "alert: unknown status") }
        status = st
        summary = try r.string("summary")
        time = try r.time("time")
        try r.end()
    }

    static func parseFixed(_ s: String) throws -> Double {
        guard let d = Double(s), d.isFinite else { throw EventCodingError(reason: "alert: bad coordinate") }
        return d
    }
}

extension CanonicalWriter {
    mutating func time(_ t: EventTime) {
        bytes.append(0x22)
        t.appendRFC3339(to: &bytes)
        bytes.append(0x22)
    }
}

/// A parsed JSON value, for the few small entries that are not events (alerts, silences,
/// deliveries). Bounded: depth ≤ 16, and only what canonical JSON can hold (no null,
/// no fractions).
indirect enum JSONTree: Sendable, Equatable {
    case string(String)
    case int(Int64)
    case bool(Bool)
    case array([JSONTree])
    case object([String: JSONTree])

    static func parse(_ bytes: UnsafeRawBufferPointer) throws -> JSONTree {
        var s = JSONScanner(bytes)
        do {
            let v = try value(&s, depth: 0)
            try s.expectEnd()
            return v
        } catch {
            throw EventCodingError(reason: error.description)
        }
    }

    static func value(_ s: inout JSONScanner, depth: Int) throws(JSONScanner.Failure) -> JSONTree {
        guard depth < 16 else { throw s.fail("nested too deeply") }
        switch s.peek() {
        case 0x7B:
            var o: [String: JSONTree] = [:]
            try s.readObject { (s: inout JSONScanner, k: JSONScanner.Key) throws(JSONScanner.Failure) in
                let key = k.string
                guard o[key] == nil else { throw s.fail("duplicate key") }
                o[key] = try value(&s, depth: depth + 1)
            }
            return .object(o)
        case 0x5B:
            var a: [JSONTree] = []
            try s.readArray { (s: inout JSONScanner) throws(JSONScanner.Failure) in
                guard a.count < 100_000 else { throw s.fail("array too long") }
                a.append(try value(&s, depth: depth + 1))
            }
            return .array(a)
        case 0x22: return .string(try s.readString())
        case 0x74, 0x66: return .bool(try s.readBool())
        default: return .int(try s.readInt())
        }
    }
}

/// Reads the members of one object, each at most once, and insists that none is left over.
struct TreeReader {
    var members: [String: JSONTree]
    let what: String
    init(_ members: [String: JSONTree], _ what: String) { self.members = members; self.what = what }

    func fail(_ key: String, _ m: String) -> EventCodingError { EventCodingError(reason: "\(what).\(key): \(m)") }

    mutating func take(_ k: String) -> JSONTree? { members.removeValue(forKey: k) }
    mutating func string(_ k: String) throws -> String {
        guard let v = try optionalString(k) else { throw fail(k, "missing") }
        return v
    }
    mutating func optionalString(_ k: String) throws -> String? {
        switch take(k) {
        case nil: return nil
        case .string(let s)?: return s
        default: throw fail(k, "expected a string")
        }
    }
    mutating func int(_ k: String) throws -> Int {
        guard case .int(let v)? = take(k), let i = Int(exactly: v) else { throw fail(k, "expected an integer") }
        return i
    }
    mutating func optionalInt(_ k: String) throws -> Int? {
        switch take(k) {
        case nil: return nil
        case .int(let v)?: guard let i = Int(exactly: v) else { throw fail(k, "expected an integer") }; return i
        default: throw fail(k, "expected an integer")
        }
    }
    mutating func bool(_ k: String) throws -> Bool {
        guard let b = try optionalBool(k) else { throw fail(k, "missing") }
        return b
    }
    mutating func optionalBool(_ k: String) throws -> Bool? {
        switch take(k) {
        case nil: return nil
        case .bool(let b)?: return b
        default: throw fail(k, "expected a boolean")
        }
    }
    mutating func time(_ k: String) throws -> EventTime {
        guard let t = try optionalTime(k) else { throw fail(k, "missing") }
        return t
    }
    mutating func optionalTime(_ k: String) throws -> EventTime? {
        guard let s = try optionalString(k) else { return nil }
        guard let t = EventTime(rfc3339: s) else { throw fail(k, "invalid time") }
        return t
    }
    mutating func object(_ k: String) throws -> [String: JSONTree] {
        guard let o = try optionalObject(k) else { throw fail(k, "missing") }
        return o
    }
    mutating func optionalObject(_ k: String) throws -> [String: JSONTree]? {
        switch take(k) {
        case nil: return nil
        case .object(let o)?: return o
        default: throw fail(k, "expected an object")
        }
    }
    /// An array of strings; absent means empty (canonical form omits empty arrays).
    mutating func stringArray(_ k: String) throws -> [String] {
        switch take(k) {
        case nil: return []
        case .array(let a)?:
            return try a.map { v in
                guard case .string(let s) = v else { throw fail(k, "expected strings") }
                return s
            }
        default: throw fail(k, "expected an array")
        }
    }
    mutating func intArray(_ k: String) throws -> [Int64] {
        guard case .array(let a)? = take(k) else { throw fail(k, "expected an array") }
        return try a.map { v in
            guard case .int(let i) = v else { throw fail(k, "expected integers") }
            return i
        }
    }
    func end() throws {
        if let k = members.keys.sorted().first { throw EventCodingError(reason: "\(what): unknown key \(safe(k))") }
    }
    func safe(_ k: String) -> String {
        k.utf8.count <= 40 && k.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x5F }) ? k : "(not a field name)"
    }
}
