import Crypto

/// An alert as the trail keeps it: schema `custos.alert/v1`. Like events it never carries
/// a secret's value: only the path, the identity and where the access came from.
///
/// An alert is appended when it is raised (`status: raised`). Later occurrences of the
/// same class about the same entity within the class's fold window are folded into it;
/// when the window closes, one `status: updated` entry with the same `id` records the
/// total `count` and the evidence of the folded occurrences. Nothing is dropped silently.
public struct Alert: Sendable, Equatable {
    public static let schema = "custos.alert/v1"
    /// At most this many evidence indexes per entry; `count` keeps counting beyond it.
    public static let maxEvidence = 100

    public enum Status: String, Sendable { case raised, updated }

    public var id: String
    public var status: Status
    public var alertClass: AlertClass
    public var severity: Severity
    public var owner: OwnerRef?
    /// When Custos raised it (the detection clock), and by when the owner must respond.
    public var raisedAt: EventTime
    public var slaDeadline: EventTime?
    public var playbook: String?
    /// Time of the first and the latest event the alert is about.
    public var time: EventTime
    public var lastTime: EventTime
    public var secret: AccessEvent.Secret?
    public var identity: IdentityRef
    public var action: Action
    public var outcome: Outcome
    public var origin: OriginRef?
    public var count: Int
    public var dedupKey: String
    /// Trail indexes of the events that are its evidence (in this entry).
    public var evidence: [UInt64]
    /// One sentence a human reads first.
    public var summary: String
    /// Class-specific numbers (distance, speed, baseline, window), as text.
    public var details: [String: String]
    /// Set when a silence matched: the alert is recorded but nobody is notified.
    public var silencedBy: String?

    public struct OwnerRef: Sendable, Equatable {
        public var key: String
        public var name: String
        public init(key: String, name: String) { self.key = key; self.name = name }
    }

    public struct IdentityRef: Sendable, Equatable {
        public var id: String?
        public var name: String?
        public var kind: IdentityKind
        public init(id: String?, name: String?, kind: IdentityKind) { self.id = id; self.name = name; self.kind = kind }
    }

    public struct OriginRef: Sendable, Equatable {
        public var ip: String
        public var country: String?
        public var city: String?
        public var latitude: Double?
        public var longitude: Double?
        /// True when GeoIP places the address outside the policy's `geoip.countries`.
        public var countryOutside: Bool?
        public init(ip: String, country: String? = nil, city: String? = nil, latitude: Double? = nil,
                    longitude: Double? = nil, countryOutside: Bool? = nil) {
            self.ip = ip; self.country = country; self.city = city; self.latitude = latitude
            self.longitude = longitude; self.countryOutside = countryOutside
        }
    }

    /// Deterministic id: the class, the dedup key and the first evidence index.
    public static func makeID(_ c: AlertClass, dedupKey: String, firstEvidence: UInt64) -> String {
        // The hex of the first 16 bytes of SHA-256("custos.alert/v1\0<class>\0<dedup key>\0<evidence>"),
        // built from the bytes directly (no interpolated String, no Character indexing).
        var bytes: [UInt8] = []
        bytes.reserveCapacity(48 + dedupKey.utf8.count)
        bytes.append(contentsOf: "custos.alert/v1".utf8); bytes.append(0)
        bytes.append(contentsOf: c.rawValue.utf8); bytes.append(0)
        bytes.append(contentsOf: dedupKey.utf8); bytes.append(0)
        bytes.append(contentsOf: String(firstEvidence).utf8)
        let digest = SHA256.hash(data: bytes)
        return digest.withUnsafeBytes { d in
            String(unsafeUninitializedCapacity: 32, initializingUTF8With: { out in
                for i in 0..<16 {
                    out[2 * i] = Hex.digits[Int(d[i] >> 4)]
                    out[2 * i + 1] = Hex.digits[Int(d[i] & 15)]
                }
                return 32
            })
        }
    }

    /// This alert with its free-text fields shortened until its trail entry is at most `limit`
    /// bytes (itself when it fits). An event may be up to 65,535 bytes and an alert repeats its
    /// path and identity (summary, dedup key, identity, secret): without this, one hostile
    /// event (a 20 KB identity name on a root login, say) made an alert the trail refuses, and
    /// the commit its events were in failed. Nothing is lost: the evidence events keep every
    /// value whole in the trail, and each shortened field ends in "…[N bytes cut]". The id
    /// (made from the full dedup key) and the class, times, counts and evidence are untouched.
    public func fitted(limit: Int = AccessEvent.maxEncodedSize) -> Alert {
        if canonicalJSON().count <= limit { return self }
        var a = self
        for cap in [4096, 1024, 256, 64] {
            a = self
            func cut(_ s: inout String) { s = Self.cut(s, to: cap) }
            func cut(_ s: inout String?) { if let v = s { s = Self.cut(v, to: cap) } }
            cut(&a.summary)
            cut(&a.dedupKey)
            cut(&a.identity.id)
            cut(&a.identity.name)
            if var sec = a.secret {
                cut(&sec.path); cut(&sec.store); cut(&sec.environment); cut(&sec.namespace)
                a.secret = sec
            }
            if var o = a.origin {
                cut(&o.ip); cut(&o.country); cut(&o.city)
                a.origin = o
            }
            a.details = a.details.mapValues { Self.cut($0, to: cap) }
            if a.canonicalJSON().count <= limit { return a }
        }
        return a
    }

    /// `s` cut to at most `max` bytes of UTF-8 (on a scalar boundary) plus a marker saying how
    /// many bytes were cut; `s` itself when it is no longer than `max`.
    package static func cut(_ s: String, to max: Int) -> String {
        let bytes = Array(s.utf8)
        guard bytes.count > max else { return s }
        var end = max
        while end > 0 && bytes[end] & 0xC0 == 0x80 { end -= 1 }
        return String(decoding: bytes[..<end], as: UTF8.self) + "…[\(bytes.count - end) bytes cut]"
    }

    // MARK: - Canonical encoding (sorted keys, as for events)

    public func canonicalJSON(index: UInt64? = nil) -> [UInt8] {
        var w = CanonicalWriter()
        w.beginObject()
        w.field("action", action.rawValue)
        w.field("class", alertClass.rawValue)
        w.field("count", count)
        w.field("dedup_key", dedupKey)
        if !details.isEmpty {
            w.key("details")
            w.beginObject()
            for k in details.keys.sorted(by: Self.byteLess) { w.dynamicKey(k); w.string(details[k]!) }
            w.endObject()
        }
        w.key("evidence")
        w.beginArray()
        for e in evidence { w.comma(); w.int(Int(e)) }
        w.endArray()
        w.field("id", id)
        w.key("identity")
        w.beginObject()
        w.field("id", identity.id)
        w.field("kind", identity.kind.rawValue)
        w.field("name", identity.name)
        w.endObject()
        if let index { w.key("index"); w.int(Int(index)) }
        w.key("last_time"); timeString(lastTime, &w)
        if let o = origin {
            w.key("origin")
            w.beginObject()
            w.field("city", o.city)
            w.field("country", o.country)
            if let c = o.countryOutside { w.key("country_outside"); w.bool(c) }
            w.field("ip", o.ip)
            w.field("latitude", o.latitude.map { Self.fixed($0) })
            w.field("longitude", o.longitude.map { Self.fixed($0) })
            w.endObject()
        }
        w.field("outcome", outcome.rawValue)
        if let owner {
            w.key("owner")
            w.beginObject()
            w.field("key", owner.key)
            w.field("name", owner.name)
            w.endObject()
        }
        w.field("playbook", playbook)
        w.key("raised_at"); timeString(raisedAt, &w)
        w.field("schema", Alert.schema)
        if let secret { w.key("secret"); secret.encode(into: &w) }
        w.field("severity", severity.rawValue)
        w.field("silenced_by", silencedBy)
        if let d = slaDeadline { w.key("sla_deadline"); timeString(d, &w) }
        w.field("status", status.rawValue)
        w.field("summary", summary)
        w.key("time"); timeString(time, &w)
        w.endObject()
        return w.bytes
    }

    private func timeString(_ t: EventTime, _ w: inout CanonicalWriter) {
        w.bytes.append(0x22)
        t.appendRFC3339(to: &w.bytes)
        w.bytes.append(0x22)
    }

    /// Coordinates as fixed-point text (4 decimals, about 10 m): no floats in canonical JSON.
    static func fixed(_ d: Double) -> String {
        let scaled = (d * 10_000).rounded()
        let neg = scaled < 0
        let v = Int64(abs(scaled))
        let frac = String(v % 10_000)
        return "\(neg ? "-" : "")\(v / 10_000).\(String(repeating: "0", count: 4 - frac.count))\(frac)"
    }

    static func byteLess(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }
}

extension CanonicalWriter {
    /// A key that is not a literal (callers still write keys in ascending byte order).
    mutating func dynamicKey(_ k: String) { comma(); string(k); bytes.append(0x3A) }
    mutating func bool(_ v: Bool) { bytes.append(contentsOf: v ? Array("true".utf8) : Array("false".utf8)) }
}
