import Foundation

/// Where an address is, as far as a GeoIP database knows.
public typealias GeoLocator = @Sendable (IPAddress) -> GeoLocation?

/// A silence: alerts it matches are still recorded (with `silenced_by`) but nobody is
/// notified. Silences have an owner, a reason and an expiry, and are kept in the trail.
public struct Silence: Sendable, Equatable {
    public static let schema = "custos.silence/v1"
    public var id: String
    public var alertClass: AlertClass?
    public var identity: String?
    public var secret: String?
    public var owner: String
    public var reason: String
    public var createdAt: EventTime
    public var expiresAt: EventTime
    public init(id: String, alertClass: AlertClass?, identity: String?, secret: String?, owner: String,
                reason: String, createdAt: EventTime, expiresAt: EventTime) {
        self.id = id; self.alertClass = alertClass; self.identity = identity; self.secret = secret
        self.owner = owner; self.reason = reason; self.createdAt = createdAt; self.expiresAt = expiresAt
    }

    public func matches(_ a: Alert, at now: EventTime) -> Bool {
        guard now >= createdAt && now < expiresAt else { return false }
        if let c = alertClass, c != a.alertClass { return false }
        if let g = identity {
            let glob = CompiledGlob(g)
            guard (a.identity.name.map(glob.matches) ?? false) || (a.identity.id.map(glob.matches) ?? false) else { return false }
        }
        if let g = secret { guard let p = a.secret?.path, CompiledGlob(g).matches(p) else { return false } }
        return true
    }
}

/// Runs every detector of a policy over events in trail order.
///
/// A value type with no clock of its own: event times drive the detectors' windows, and
/// the caller passes `now` (when an alert is raised, which starts its SLA). Memory is
/// bounded: per-identity state for at most `maxIdentities` identities and failure state for
/// at most `maxSecrets` secrets (least recently seen forgotten first, in two generations);
/// see README "Detection" for the per-entry sizes.
public struct DetectionEngine: Sendable {
    public let policy: Policy
    let geo: GeoLocator?
    public var silences: [Silence] = []

    // Compiled policy.
    struct Rule: Sendable {
        var glob: CompiledGlob
        var rule: Policy.IdentityRule
        var scope: [CompiledGlob]
        var cidrs: [CIDR]
        var schedule: Int?   // index into schedules
    }
    let rules: [Rule]
    let secretRules: [(CompiledGlob, String?)]
    let schedules: [Schedule]
    let knownNetworks: [CIDR]
    let classSettings: [Policy.ClassSettings]   // by AlertClass index
    let enabled: [Bool]                         // alerting, by AlertClass index

    // State.
    var identities: Generations<String, IdentityState>
    var failures: Generations<SecretKey, FailureState>
    var open: [FoldKey: OpenAlert] = [:]
    var nextFoldExpiry = Int64.max
    /// Fold expiries, earliest first (stale entries skipped when popped: a fold extended
    /// later has a newer entry).
    var expiries = ExpiryHeap()
    var geoCache: [IPAddress: GeoLocation?] = [:]
    static let geoCacheLimit = 65_536
    var tzCache: [(from: Int64, to: Int64, offset: Int)]

    /// Events seen per class that were logged only (routine or not alerting), and alerts.
    public private(set) var logged: [AlertClass: Int] = [:]
    public private(set) var raised: [AlertClass: Int] = [:]
    public private(set) var folded: [AlertClass: Int] = [:]
    public private(set) var eventsSeen = 0

    public init(policy: Policy, geo: GeoLocator? = nil, maxIdentities: Int = 250_000, maxSecrets: Int = 250_000) {
        self.policy = policy
        self.geo = geo
        self.schedules = policy.schedules.values.sorted { $0.name < $1.name }
        let schedIndex = Dictionary(uniqueKeysWithValues: schedules.enumerated().map { ($1.name, $0) })
        self.rules = policy.identities.map { r in
            Rule(glob: CompiledGlob(r.match), rule: r, scope: r.scope.map(CompiledGlob.init),
                 cidrs: r.networks.flatMap { policy.networks[$0] ?? [] },
                 schedule: r.schedule.flatMap { $0 == "always" ? nil : schedIndex[$0] })
        }
        self.secretRules = policy.secrets.map { (CompiledGlob($0.match), $0.environment) }
        self.knownNetworks = policy.networks.keys.sorted().flatMap { policy.networks[$0]! }
        self.classSettings = AlertClass.allCases.map { policy.settings($0) }
        self.enabled = AlertClass.allCases.map { policy.settings($0).alert }
        self.identities = Generations(limit: max(2, maxIdentities))
        self.failures = Generations(limit: max(2, maxSecrets))
        self.tzCache = Array(repeating: (Int64.max, Int64.min, 0), count: schedules.count)
    }

    @inline(__always) static func slot(_ c: AlertClass) -> Int {
        switch c {
        case .access_known_ip: return 0
        case .failed_single: return 1
        case .failed_threshold: return 2
        case .out_of_scope: return 3
        case .impossible_travel: return 4
        case .break_glass: return 5
        case .volume_anomaly: return 6
        case .unknown_ip: return 7
        case .off_hours: return 8
        }
    }
    @inline(__always) func isOn(_ c: AlertClass) -> Bool { enabled[Self.slot(c)] }
    @inline(__always) func settings(_ c: AlertClass) -> Policy.ClassSettings { classSettings[Self.slot(c)] }

    // MARK: - State types

    struct IdentityState: Sendable {
        var isNew = true
        var ruleName: String? = nil
        var rule: Int32 = -2          // -2 unresolved, -1 no rule
        var firstSeen = Int64.max
        // impossible_travel: the last geolocated access
        var hasGeo = false
        var lat = 0.0, lon = 0.0
        var radius = 0.0
        var geoTime: Int64 = 0
        var geoIP = ""
        var geoPlace = ""
        // volume_anomaly: read counts per UTC hour, sparse: (hour << 24) | count
        var hours: [UInt64] = []
        var alertedHour: Int64 = -1
    }

    struct SecretKey: Hashable, Sendable {
        var instance: String
        var path: String
    }

    struct FailureState: Sendable {
        var isNew = true
        /// The latest failures (time, trail index), at most `count`.
        var times: [Int64] = []
        var indexes: [UInt64] = []
        var last: Int64 = .min
    }

    struct FoldKey: Hashable, Sendable {
        var alertClass: AlertClass
        var entity: String
    }

    struct OpenAlert: Sendable {
        var alert: Alert
        var total: Int
        var expires: Int64
        var pendingEvidence: [UInt64] = []
        var pendingCount = 0
        var lastTime: EventTime
    }

    // MARK: - Processing

    /// Runs the detectors over one event (at trail index `index`), appending the alerts it
    /// raises and the folded alerts whose window it closes.
    public mutating func process(_ e: AccessEvent, index: UInt64, now: EventTime, into out: inout [Alert]) {
        eventsSeen += 1
        let t = e.time.seconds
        if t > nextFoldExpiry { closeExpired(before: t, into: &out) }

        let identityKey = e.identity.id ?? e.identity.name ?? ""
        let ruleIndex = resolveRule(identityKey: identityKey, name: e.identity.name, id: e.identity.id)
        let rule: Rule? = ruleIndex >= 0 ? rules[ruleIndex] : nil
        let kind = rule?.rule.kind ?? e.identity.kind
        var secret = e.secret
        if let path = secret?.path {
            for (g, env) in secretRules where g.matches(path) {
                if let env { secret?.environment = env }
                break
            }
        }
        let ctx = Context(event: e, index: index, now: now, kind: kind, secret: secret, identityKey: identityKey)
        let isSecretAccess = e.action == .read || e.action == .list || e.action == .write || e.action == .delete

        // break_glass: any use of a break-glass identity.
        if (rule?.rule.breakGlass ?? false) || kind == .root {
            if isOn(.break_glass) {
                raise(.break_glass, entity: identityKey, ctx, summary: "break-glass identity \(ctx.who) used: \(e.action) \(secret?.path ?? "")", into: &out)
            } else { logged[.break_glass, default: 0] += 1 }
        }

        // out_of_scope: touching a secret outside the identity's scope (allowed or denied).
        if let rule, !rule.scope.isEmpty, isSecretAccess, let path = secret?.path {
            var inScope = false
            for g in rule.scope where g.matches(path) { inScope = true; break }
            if !inScope {
                if isOn(.out_of_scope) {
                    raise(.out_of_scope, entity: "\(identityKey)\u{0}\(path)", ctx,
                          summary: "\(ctx.who) (\(kind)) attempted \(e.action) of \(path) (\(e.outcome)), outside its scope \(rule.rule.scope.joined(separator: ", "))",
                          details: ["scope": rule.rule.scope.joined(separator: ",")], into: &out)
                } else { logged[.out_of_scope, default: 0] += 1 }
            }
        }

        // failed_single / failed_threshold.
        if e.outcome == .denied {
            logged[.failed_single, default: 0] += 1
            if let path = secret?.path { failure(path: path, t: t, ctx, into: &out) }
        }

        // unknown_ip / access_known_ip, impossible_travel (need an address).
        var ip: IPAddress?
        if let text = e.origin?.ip { ip = IPAddress(text) }
        if e.outcome == .success, let rule, !rule.cidrs.isEmpty, let ip {
            var known = false
            for c in rule.cidrs where c.contains(ip) { known = true; break }
            if known { logged[.access_known_ip, default: 0] += 1 }
            else if isOn(.unknown_ip) {
                let loc = locate(ip)
                let outside = loc?.countryISO.map { c in policy.geoip.map { g in !g.countries.contains(c) } ?? false }
                let place = loc.map(Self.place) ?? "unknown location"
                raise(.unknown_ip, entity: "\(identityKey)\u{0}\(ip)", ctx,
                      summary: "\(ctx.who) \(e.action) \(secret?.path ?? "") from \(ip) (\(place)), outside its networks \(rule.rule.networks.joined(separator: ", "))\(outside == true ? "; country outside \(policy.geoip!.countries.sorted().joined(separator: ", "))" : "")",
                      origin: Self.originRef(ip: ip, loc, outside: outside), details: ["networks": rule.rule.networks.joined(separator: ",")], into: &out)
            } else { logged[.unknown_ip, default: 0] += 1 }
        }

        // off_hours: outside the identity's schedule, in the schedule's time zone.
        if let s = rule?.schedule {
            let offset = utcOffset(schedule: s, t: t)
            if !schedules[s].contains(unixSeconds: t, offsetSeconds: offset) {
                if isOn(.off_hours) {
                    let local = Self.localClock(t, offset)
                    raise(.off_hours, entity: identityKey, ctx,
                          summary: "\(ctx.who) \(e.action) \(secret?.path ?? "") at \(local) \(schedules[s].timeZone.identifier), outside schedule \(schedules[s].name)",
                          details: ["local_time": local, "schedule": schedules[s].name, "timezone": schedules[s].timeZone.identifier], into: &out)
                } else { logged[.off_hours, default: 0] += 1 }
            }
        }

        if !identityKey.isEmpty {
            identityDetectors(ctx, ip: ip, isRead: e.action == .read, into: &out)
        }
    }

    struct Context {
        var event: AccessEvent
        var index: UInt64
        var now: EventTime
        var kind: IdentityKind
        var secret: AccessEvent.Secret?
        var identityKey: String
        var who: String { event.identity.name ?? event.identity.id ?? "unauthenticated" }
    }

    mutating func resolveRule(identityKey: String, name: String?, id: String?) -> Int {
        if rules.isEmpty { return -1 }
        var r: Int32 = -2
        let rules = self.rules
        identities.modify(identityKey) { s in
            if s.rule != -2 && s.ruleName == name { r = s.rule; return }
            var found: Int32 = -1
            for (i, rule) in rules.enumerated() {
                if (name.map(rule.glob.matches) ?? false) || (id.map(rule.glob.matches) ?? false) { found = Int32(i); break }
            }
            s.rule = found; s.ruleName = name; r = found
        }
        return Int(r)
    }

    mutating func failure(path: String, t: Int64, _ ctx: Context, into out: inout [Alert]) {
        let s = settings(.failed_threshold)
        let key = SecretKey(instance: ctx.event.source.instance, path: path)
        let entity = "\(key.instance)\u{0}\(path)"
        let fk = FoldKey(alertClass: .failed_threshold, entity: entity)
        var crossed: [UInt64]?
        var burst = false
        let limit = s.count
        let alerted = open[fk] != nil
        failures.modify(key) { f in
            // A failure within `window` of the previous one continues an alerted burst.
            if alerted, t - f.last <= s.window, t >= f.last - s.window { burst = true }
            f.last = max(f.last, t)
            f.times.append(t); f.indexes.append(ctx.index)
            if f.times.count > limit { f.times.removeFirst(f.times.count - limit); f.indexes.removeFirst(f.indexes.count - limit) }
            if !burst, f.times.count == limit, let lo = f.times.min(), let hi = f.times.max(), hi - lo <= s.window {
                crossed = f.indexes
            }
        }
        guard isOn(.failed_threshold) else { if crossed != nil { logged[.failed_threshold, default: 0] += 1 }; return }
        if burst {
            fold(fk, ctx, into: &out)
        } else if let evidence = crossed {
            if let old = open.removeValue(forKey: fk) { close(old, into: &out) }
            raise(.failed_threshold, entity: entity, ctx,
                  summary: "\(limit) denied attempts on \(path) within \(ConfigDuration.format(s.window)) (latest by \(ctx.who)\(ctx.event.origin.map { " from \($0.ip)" } ?? ""))",
                  evidence: evidence, details: ["window": ConfigDuration.format(s.window), "threshold": String(limit)],
                  foldFor: s.window, into: &out)
        }
    }

    mutating func identityDetectors(_ ctx: Context, ip: IPAddress?, isRead: Bool, into out: inout [Alert]) {
        let t = ctx.event.time.seconds
        let travelOn = isOn(.impossible_travel) && geo != nil
        let volumeOn = isOn(.volume_anomaly)
        // Geolocate only addresses outside every known network, and only when needed.
        var loc: GeoLocation?
        if travelOn, let ip {
            var known = false
            for c in knownNetworks where c.contains(ip) { known = true; break }
            if !known { loc = locate(ip) }
        }
        var travel: (km: Double, hours: Double, speed: Double, from: String)?
        var volume: (count: Int, median: Double, mad: Double)?
        let ts = settings(.impossible_travel)
        let vs = settings(.volume_anomaly)
        identities.modify(ctx.identityKey) { s in
            if t < s.firstSeen { s.firstSeen = t }
            if let loc, let lat = loc.latitude, let lon = loc.longitude {
                let r = Double(loc.accuracyRadiusKm ?? 0)
                if s.hasGeo {
                    let d = Self.haversineKm(s.lat, s.lon, lat, lon) - s.radius - r
                    if d > ts.minKm {
                        let hours = Double(abs(t - s.geoTime)) / 3600
                        let speed = hours > 0 ? d / hours : .infinity
                        if speed > ts.speedKmh { travel = (d, hours, speed, "\(s.geoIP) (\(s.geoPlace))") }
                    }
                }
                s.hasGeo = true; s.lat = lat; s.lon = lon; s.radius = r; s.geoTime = t
                s.geoIP = ctx.event.origin?.ip ?? ""; s.geoPlace = Self.place(loc)
            }
            if volumeOn && isRead {
                let hour = Self.floorDiv(t, 3600)
                let c = Self.countRead(&s.hours, hour: hour)
                if c >= vs.minCount, s.alertedHour != hour, t - s.firstSeen >= vs.warmup,
                   let b = Self.baseline(s.hours, hour: hour, firstSeen: s.firstSeen) {
                    let threshold = b.median + vs.deviations * max(1.4826 * b.mad, 1)
                    if Double(c) > threshold { volume = (c, b.median, b.mad); s.alertedHour = hour }
                }
            }
        }
        if let travel {
            let place = loc.map(Self.place) ?? ""
            raise(.impossible_travel, entity: ctx.identityKey, ctx,
                  summary: "\(ctx.who) appeared \(Int(travel.km)) km from their previous access \(travel.from) within \(Self.formatHours(travel.hours)) (\(travel.speed.isFinite ? "\(Int(travel.speed)) km/h" : "at the same instant"), more than \(Int(ts.speedKmh)) km/h), now \(ip.map { "\($0)" } ?? "") (\(place))",
                  origin: ip.map { Self.originRef(ip: $0, loc, outside: nil) },
                  details: ["distance_km": String(Int(travel.km)), "hours": String(format: "%.2f", travel.hours),
                            "speed_kmh": travel.speed.isFinite ? String(Int(travel.speed)) : "infinite", "previous": travel.from],
                  into: &out)
        }
        if let volume {
            let hour = Self.floorDiv(t, 3600)
            raise(.volume_anomaly, entity: "\(ctx.identityKey)\u{0}\(hour)", ctx,
                  summary: "\(ctx.who) made \(volume.count) reads in the hour from \(Self.hourLabel(hour)) UTC; usual for that hour of the week: median \(Self.trim(volume.median)), MAD \(Self.trim(volume.mad))",
                  details: ["reads": String(volume.count), "baseline_median": Self.trim(volume.median), "baseline_mad": Self.trim(volume.mad)],
                  into: &out)
        }
    }

    // MARK: - Volume baseline

    /// Weeks of history kept per identity for the volume baseline.
    public static let volumeWeeks: Int64 = 4

    static func countRead(_ hours: inout [UInt64], hour: Int64) -> Int {
        let h = UInt64(bitPattern: hour)
        if let last = hours.last, last >> 24 == h {
            let c = min((last & 0xFF_FFFF) + 1, 0xFF_FFFF)
            hours[hours.count - 1] = (h << 24) | c
            return Int(c)
        }
        // Forget hours older than the baseline needs (in order, so only the front).
        let oldest = hour - volumeWeeks * 168
        var drop = 0
        while drop < hours.count, Int64(bitPattern: hours[drop] >> 24) < oldest { drop += 1 }
        if drop > 0 { hours.removeFirst(drop) }
        if let last = hours.last, Int64(bitPattern: last >> 24) > hour {
            // Out of order: find or insert the hour (rare: merged sources).
            if let i = hours.firstIndex(where: { $0 >> 24 == h }) {
                let c = min((hours[i] & 0xFF_FFFF) + 1, 0xFF_FFFF)
                hours[i] = (h << 24) | c
                return Int(c)
            }
            let i = hours.firstIndex(where: { $0 >> 24 > h }) ?? hours.count
            hours.insert((h << 24) | 1, at: i)
            return 1
        }
        hours.append((h << 24) | 1)
        return 1
    }

    /// Median and MAD of the same hour-of-week in the previous weeks the identity was seen
    /// (zero-read hours count as zero); nil with fewer than two such weeks.
    static func baseline(_ hours: [UInt64], hour: Int64, firstSeen: Int64) -> (median: Double, mad: Double)? {
        var values: [Double] = []
        values.reserveCapacity(Int(volumeWeeks))
        for w in 1...volumeWeeks {
            let h = hour - w * 168
            guard h * 3600 >= floorDiv(firstSeen, 3600) * 3600 else { break }
            var c = 0.0
            for x in hours where x >> 24 == UInt64(bitPattern: h) { c = Double(x & 0xFF_FFFF); break }
            values.append(c)
        }
        guard values.count >= 2 else { return nil }
        let m = median(values)
        return (m, median(values.map { abs($0 - m) }))
    }

    static func median(_ v: [Double]) -> Double {
        let s = v.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    // MARK: - Raising and folding

    mutating func raise(_ c: AlertClass, entity: String, _ ctx: Context, summary: String,
                        evidence: [UInt64]? = nil, origin: Alert.OriginRef? = nil, details: [String: String] = [:],
                        foldFor: Int64? = nil, into out: inout [Alert]) {
        let fk = FoldKey(alertClass: c, entity: entity)
        let s = settings(c)
        let t = ctx.event.time.seconds
        if let o = open[fk], t <= o.expires, c != .failed_threshold {
            fold(fk, ctx, into: &out)
            return
        }
        if let old = open.removeValue(forKey: fk) { close(old, into: &out) }
        let ev = evidence ?? [ctx.index]
        let owner = s.owner.flatMap { policy.owners[$0] }.map { Alert.OwnerRef(key: $0.key, name: $0.name) }
        let e = ctx.event
        var originRef = origin
        if originRef == nil, let o = e.origin {
            originRef = Alert.OriginRef(ip: o.ip)
            if let ip = IPAddress(o.ip), geo != nil, let loc = locate(ip) {
                let outside = loc.countryISO.map { c in policy.geoip.map { !$0.countries.contains(c) } ?? false }
                originRef = Self.originRef(ip: ip, loc, outside: outside)
                originRef?.ip = o.ip
            }
        }
        let dedup = "\(c.rawValue):\(entity.replacingOccurrences(of: "\u{0}", with: "|"))"
        var a = Alert(
            id: Alert.makeID(c, dedupKey: dedup, firstEvidence: ev.first ?? ctx.index),
            status: .raised, alertClass: c, severity: s.severity, owner: owner, raisedAt: ctx.now,
            slaDeadline: s.sla.map { EventTime(seconds: ctx.now.seconds + $0, nanos: ctx.now.nanos, digits: ctx.now.digits) },
            playbook: s.playbook, time: e.time, lastTime: e.time, secret: ctx.secret,
            identity: .init(id: e.identity.id, name: e.identity.name, kind: ctx.kind),
            action: e.action, outcome: e.outcome, origin: originRef, count: ev.count, dedupKey: dedup,
            evidence: Array(ev.prefix(Alert.maxEvidence)), summary: summary, details: details, silencedBy: nil)
        if let silence = silences.first(where: { $0.matches(a, at: ctx.now) }) { a.silencedBy = silence.id }
        raised[c, default: 0] += 1
        out.append(a)
        let window = foldFor ?? s.fold
        if window > 0 {
            open[fk] = OpenAlert(alert: a, total: a.count, expires: t + window, lastTime: e.time)
            expiries.push(t + window, fk)
            nextFoldExpiry = expiries.minimum
        }
    }

    mutating func fold(_ fk: FoldKey, _ ctx: Context, into out: inout [Alert]) {
        guard var o = open[fk] else { return }
        let s = settings(fk.alertClass)
        let window = fk.alertClass == .failed_threshold ? s.window : s.fold
        o.total += 1
        o.pendingCount += 1
        if o.pendingEvidence.count < Alert.maxEvidence { o.pendingEvidence.append(ctx.index) }
        if ctx.event.time > o.lastTime { o.lastTime = ctx.event.time }
        if ctx.event.time.seconds + window > o.expires {
            o.expires = ctx.event.time.seconds + window
            expiries.push(o.expires, fk)
        }
        folded[fk.alertClass, default: 0] += 1
        open[fk] = o
        // Keep each update entry bounded: flush when its evidence list is full.
        if o.pendingEvidence.count >= Alert.maxEvidence { flushUpdate(fk, into: &out) }
    }

    mutating func flushUpdate(_ fk: FoldKey, into out: inout [Alert]) {
        guard var o = open[fk], o.pendingCount > 0 else { return }
        out.append(update(o))
        o.pendingCount = 0; o.pendingEvidence = []
        open[fk] = o
    }

    func update(_ o: OpenAlert) -> Alert {
        var a = o.alert
        a.status = .updated
        a.count = o.total
        a.lastTime = o.lastTime
        a.evidence = o.pendingEvidence
        return a
    }

    mutating func close(_ o: OpenAlert, into out: inout [Alert]) {
        if o.pendingCount > 0 { out.append(update(o)) }
    }

    mutating func closeExpired(before t: Int64, into out: inout [Alert]) {
        while let (at, k) = expiries.peek(), at < t {
            expiries.pop()
            // Stale entry: the fold was extended, closed or replaced since.
            guard let o = open[k], o.expires == at else { continue }
            open.removeValue(forKey: k)
            close(o, into: &out)
        }
        nextFoldExpiry = expiries.minimum
    }

    /// Closes every open fold (end of input): the `updated` entries of folded alerts.
    public mutating func flush(into out: inout [Alert]) {
        for k in open.keys.sorted(by: { ($0.alertClass.rawValue, $0.entity) < ($1.alertClass.rawValue, $1.entity) }) {
            if let o = open.removeValue(forKey: k) { close(o, into: &out) }
        }
        expiries = ExpiryHeap()
        nextFoldExpiry = .max
    }

    // MARK: - Helpers

    mutating func locate(_ ip: IPAddress) -> GeoLocation? {
        guard let geo else { return nil }
        if let hit = geoCache[ip] { return hit }
        if geoCache.count >= Self.geoCacheLimit { geoCache.removeAll(keepingCapacity: true) }
        let loc = geo(ip)
        geoCache[ip] = loc
        return loc
    }

    mutating func utcOffset(schedule s: Int, t: Int64) -> Int {
        let c = tzCache[s]
        if t >= c.from && t < c.to { return c.offset }
        let tz = schedules[s].timeZone
        let date = Date(timeIntervalSince1970: TimeInterval(t))
        let offset = tz.secondsFromGMT(for: date)
        let next = tz.nextDaylightSavingTimeTransition(after: date).map { Int64($0.timeIntervalSince1970) } ?? Int64.max
        // Valid from this instant to the next transition (events mostly move forward).
        tzCache[s] = (t, next, offset)
        return offset
    }

    static func originRef(ip: IPAddress, _ loc: GeoLocation?, outside: Bool?) -> Alert.OriginRef {
        Alert.OriginRef(ip: ip.description, country: loc?.countryISO, city: loc?.city,
                        latitude: loc?.latitude, longitude: loc?.longitude, countryOutside: outside)
    }

    static func place(_ l: GeoLocation) -> String {
        [l.city, l.countryISO].compactMap { $0 }.joined(separator: ", ").nonEmpty ?? "unknown location"
    }

    static func haversineKm(_ lat1: Double, _ lon1: Double, _ lat2: Double, _ lon2: Double) -> Double {
        let r = 6371.0088
        let p1 = lat1 * .pi / 180, p2 = lat2 * .pi / 180
        let dp = p2 - p1, dl = (lon2 - lon1) * .pi / 180
        let a = sin(dp / 2) * sin(dp / 2) + cos(p1) * cos(p2) * sin(dl / 2) * sin(dl / 2)
        return 2 * r * asin(min(1, sqrt(a)))
    }

    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : -((-a + b - 1) / b) }

    static func localClock(_ t: Int64, _ offset: Int) -> String {
        let local = t + Int64(offset)
        let m = (local - floorDiv(local, 86_400) * 86_400) / 60
        return String(format: "%02d:%02d", Int(m / 60), Int(m % 60))
    }

    static func hourLabel(_ hour: Int64) -> String {
        EventTime(seconds: hour * 3600).description
    }

    static func formatHours(_ h: Double) -> String {
        h < 1 ? "\(Int((h * 60).rounded())) min" : String(format: "%.1f h", h)
    }

    static func trim(_ d: Double) -> String { d == d.rounded() ? String(Int(d)) : String(format: "%.1f", d) }
}

extension String {
    var nonEmpty: String? { isEmpty ? nil : self }
}

/// A map kept in two generations: when the current one is full, the previous one is
/// forgotten and the current becomes the previous. Entries used since stay (moved back
/// to the current one); at most `limit` entries are kept in all.
struct Generations<K: Hashable & Sendable, V: GenerationValue>: Sendable {
    var current: [K: V] = [:]
    var previous: [K: V] = [:]
    let half: Int
    init(limit: Int) { half = max(1, limit / 2) }

    var count: Int { current.count + previous.count }

    @inline(__always)
    mutating func modify(_ key: K, _ body: (inout V) -> Void) {
        if current.count >= half, current.index(forKey: key) == nil {
            previous = current
            current = [:]
            current.reserveCapacity(half)
        }
        Self.apply(&current[key, default: V.fresh], &previous, key, body)
    }

    @inline(__always)
    static func apply(_ v: inout V, _ previous: inout [K: V], _ key: K, _ body: (inout V) -> Void) {
        if v.isNew {
            if let m = previous.removeValue(forKey: key) { v = m }
            v.isNew = false
        }
        body(&v)
    }
}

protocol GenerationValue: Sendable {
    static var fresh: Self { get }
    var isNew: Bool { get set }
}

extension DetectionEngine.IdentityState: GenerationValue { static var fresh: Self { .init() } }
extension DetectionEngine.FailureState: GenerationValue { static var fresh: Self { .init() } }

/// A binary min-heap of (expiry, fold key).
struct ExpiryHeap: Sendable {
    var items: [(Int64, DetectionEngine.FoldKey)] = []
    var minimum: Int64 { items.first?.0 ?? .max }
    func peek() -> (Int64, DetectionEngine.FoldKey)? { items.first }

    mutating func push(_ at: Int64, _ k: DetectionEngine.FoldKey) {
        items.append((at, k))
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard items[i].0 < items[parent].0 else { break }
            items.swapAt(i, parent); i = parent
        }
    }

    mutating func pop() {
        guard !items.isEmpty else { return }
        items.swapAt(0, items.count - 1)
        items.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < items.count && items[l].0 < items[m].0 { m = l }
            if r < items.count && items[r].0 < items[m].0 { m = r }
            if m == i { break }
            items.swapAt(i, m); i = m
        }
    }
}
