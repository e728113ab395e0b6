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
    /// A class: the per-event path holds one reference to it instead of copying its fields.
    final class Rule: Sendable {
        let glob: CompiledGlob
        let rule: Policy.IdentityRule
        let scope: [CompiledGlob]
        let cidrs: [CIDR]
        let schedule: Int?   // index into schedules
        let kind: IdentityKind?
        let breakGlass: Bool
        init(glob: CompiledGlob, rule: Policy.IdentityRule, scope: [CompiledGlob], cidrs: [CIDR], schedule: Int?) {
            self.glob = glob; self.rule = rule; self.scope = scope; self.cidrs = cidrs; self.schedule = schedule
            self.kind = rule.kind; self.breakGlass = rule.breakGlass
        }
    }
    let rules: [Rule]
    let secretRules: [(CompiledGlob, String?)]
    let schedules: [Schedule]
    /// `schedules` as plain numbers (`Schedule.contains(unixSeconds:offsetSeconds:)` without
    /// the Set lookup), same order.
    let scheduleRanges: [ScheduleRange]
    let knownNetworks: [CIDR]
    let classSettings: [Policy.ClassSettings]   // by AlertClass index
    let enabled: [Bool]                         // alerting, by AlertClass index
    let travelSettings: (minKm: Double, speedKmh: Double)
    let volumeSettings: (minCount: Int, warmup: Int64, deviations: Double)
    let pipelineRules: PipelineRules

    // State.
    var identities: IdentityTable
    var failures: Generations<SecretKey, FailureState>
    var open: [FoldKey: OpenAlert] = [:]
    var nextFoldExpiry = Int64.max
    /// Fold expiries, earliest first (stale entries skipped when popped: a fold extended
    /// later has a newer entry).
    var expiries = ExpiryHeap()
    var geoCache: [IPAddress: GeoLocation?] = [:]
    static let geoCacheLimit = 65_536
    var tzCache: [(from: Int64, to: Int64, offset: Int)]

    /// Counters by AlertClass slot (see `slot`).
    var loggedCounts = [Int](repeating: 0, count: AlertClass.allCases.count)
    var raisedCounts = [Int](repeating: 0, count: AlertClass.allCases.count)
    var foldedCounts = [Int](repeating: 0, count: AlertClass.allCases.count)

    /// Events seen per class that were logged only (routine or not alerting), and alerts.
    public var logged: [AlertClass: Int] { Self.byClass(loggedCounts) }
    public var raised: [AlertClass: Int] { Self.byClass(raisedCounts) }
    public var folded: [AlertClass: Int] { Self.byClass(foldedCounts) }
    public private(set) var eventsSeen = 0

    static func byClass(_ counts: [Int]) -> [AlertClass: Int] {
        var d: [AlertClass: Int] = [:]
        for c in AlertClass.allCases where counts[slot(c)] != 0 { d[c] = counts[slot(c)] }
        return d
    }

    public init(policy: Policy, geo: GeoLocator? = nil, maxIdentities: Int = 250_000, maxSecrets: Int = 250_000) {
        self.policy = policy
        self.geo = geo
        self.schedules = policy.schedules.values.sorted { $0.name < $1.name }
        self.scheduleRanges = schedules.map(ScheduleRange.init)
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
        let ts = policy.settings(.impossible_travel), vs = policy.settings(.volume_anomaly)
        self.travelSettings = (ts.minKm, ts.speedKmh)
        self.volumeSettings = (vs.minCount, vs.warmup, vs.deviations)
        self.pipelineRules = PipelineRules(policy)
        self.identities = IdentityTable(limit: max(2, maxIdentities))
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
        case .pipeline_out_of_scope: return 9
        case .runner_unknown_ip: return 10
        case .manual_prod_trigger: return 11
        case .leaked_secret: return 12
        }
    }
    @inline(__always) func isOn(_ c: AlertClass) -> Bool { enabled[Self.slot(c)] }
    @inline(__always) func settings(_ c: AlertClass) -> Policy.ClassSettings { classSettings[Self.slot(c)] }
    @inline(__always) mutating func countLogged(_ c: AlertClass) { loggedCounts[Self.slot(c)] += 1 }

    // MARK: - State types

    /// The last geolocated access of an identity (impossible_travel), in its side entry
    /// (`IdentityTable.Extra`): only a GeoIP database gives one.
    final class GeoMark: Sendable {
        let lat: Double, lon: Double, radius: Double
        let time: Int64
        let ip: String
        let place: String
        init(lat: Double, lon: Double, radius: Double, time: Int64, ip: String, place: String) {
            self.lat = lat; self.lon = lon; self.radius = radius; self.time = time; self.ip = ip; self.place = place
        }
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

    /// A schedule's days, hours and `always`, as `Schedule.contains(unixSeconds:offsetSeconds:)`
    /// evaluates them (days as a bit mask of weekdays 1...7).
    struct ScheduleRange: Sendable {
        var always: Bool
        var start: Int
        var end: Int
        var days: UInt8
        init(_ s: Schedule) {
            always = s.always; start = s.start; end = s.end
            var m: UInt8 = 0
            for d in 1...7 where s.days.contains(d) { m |= 1 << UInt8(d) }
            days = m
        }
        @inline(__always) func has(_ weekday: Int) -> Bool { days & (1 << UInt8(weekday)) != 0 }
        func contains(unixSeconds t: Int64, offsetSeconds: Int) -> Bool {
            if always { return true }
            let local = t + Int64(offsetSeconds)
            let days = Schedule.floorDiv(local, 86_400)
            let minute = Int((local - days * 86_400) / 60)
            // 1970-01-01 was a Thursday (weekday 4).
            let weekday = Int(((days + 3) % 7 + 7) % 7) + 1
            if start <= end { return has(weekday) && minute >= start && minute < end }
            if minute >= start { return has(weekday) }
            if minute < end { return has(weekday == 1 ? 7 : weekday - 1) }
            return false
        }
    }

    // MARK: - Processing

    /// Runs the detectors over one event (at trail index `index`), appending the alerts it
    /// raises and the folded alerts whose window it closes.
    ///
    /// The identity's state is looked up once per event: rule resolution and the identity
    /// detectors (impossible_travel, volume_anomaly) update it together; the alerts of the
    /// identity detectors are raised last, as before. The address is parsed only when a
    /// detector needs it, and the secret's environment (secret rules) only for an alert.
    public mutating func process(_ e: AccessEvent, index: UInt64, now: EventTime, into out: inout [Alert]) {
        eventsSeen += 1
        let t = e.time.seconds
        if t > nextFoldExpiry { closeExpired(before: t, into: &out) }

        // The identity key (id, else name) is read in place here (no copy of the string,
        // which would retain it); `Self.identityKey(e)` makes one for an alert.
        let hasRules = !rules.isEmpty
        let hasKey = !(e.identity.id?.isEmpty ?? e.identity.name?.isEmpty ?? true)
        let isRead = e.action == .read
        let isSecretAccess = isRead || Self.isSecretAccess(e.action)

        // The address: parsed at most once, when a detector needs it.
        var ip: IPAddress?
        var ipParsed = false

        // impossible_travel: geolocate only addresses outside every known network.
        let travelOn = hasKey && isOn(.impossible_travel) && geo != nil
        var loc: GeoLocation?
        if travelOn {
            if let text = e.origin?.ip { ip = Self.parseIP(text) }
            ipParsed = true
            if let ip {
                var known = false
                for c in knownNetworks where c.contains(ip) { known = true; break }
                if !known { loc = locate(ip) }
            }
        }

        // One lookup of the identity's record: its rule, then the identity detectors.
        var ruleIndex: Int32 = -1
        var travel: (km: Double, hours: Double, speed: Double, from: String)?
        var volume: (count: Int, median: Double, mad: Double)?
        if hasRules || hasKey {
            let r: UnsafeMutablePointer<IdentityTable.Record>
            if let id = e.identity.id { r = identities.record(id) }
            else if let name = e.identity.name { r = identities.record(name) }
            else { r = identities.record("") }
            if hasRules {
                let name = e.identity.name
                if r.pointee.rule != -2 && r.pointee.ruleName == name {
                    ruleIndex = Int32(r.pointee.rule)
                } else {
                    let found = firstRule(name: name, id: e.identity.id)
                    r.pointee.rule = found < Int32(Int16.max) ? Int16(found) : -2
                    r.pointee.ruleName = name
                    ruleIndex = found
                }
            }
            if hasKey {
                if t < r.pointee.firstSeen { r.pointee.firstSeen = t }
                if let loc, let lat = loc.latitude, let lon = loc.longitude {
                    let ts = travelSettings
                    let rad = Double(loc.accuracyRadiusKm ?? 0)
                    let x = identities.extra(r)
                    if let g = identities.storage.extras[x].geo {
                        let d = Self.haversineKm(g.lat, g.lon, lat, lon) - g.radius - rad
                        if d > ts.minKm {
                            let hours = Double(abs(t - g.time)) / 3600
                            let speed = hours > 0 ? d / hours : .infinity
                            if speed > ts.speedKmh { travel = (d, hours, speed, "\(g.ip) (\(g.place))") }
                        }
                    }
                    identities.storage.extras[x].geo = GeoMark(lat: lat, lon: lon, radius: rad, time: t, ip: e.origin?.ip ?? "", place: Self.place(loc))
                }
                if isRead && isOn(.volume_anomaly) {
                    let vs = volumeSettings
                    let hour = Self.floorDiv(t, 3600)
                    let c = Self.countRead(r, hour: hour)
                    if c >= vs.minCount, t - r.pointee.firstSeen >= vs.warmup,
                       (r.pointee.extra < 0 ? -1 : identities.storage.extras[Int(r.pointee.extra)].alertedHour) != hour {
                        Self.settle(r)
                        if let b = Self.baseline(r.pointee.hours, hour: hour, firstSeen: r.pointee.firstSeen) {
                            let threshold = b.median + vs.deviations * max(1.4826 * b.mad, 1)
                            if Double(c) > threshold {
                                volume = (c, b.median, b.mad)
                                let x = identities.extra(r)
                                identities.storage.extras[x].alertedHour = hour
                            }
                        }
                    }
                }
            }
        }
        let rule: Rule? = ruleIndex >= 0 ? rules[Int(ruleIndex)] : nil
        let kind = rule?.kind ?? e.identity.kind
        let ctx = Context(index: index, now: now, time: e.time, kind: kind)
        let path = e.secret?.path

        // break_glass: any use of a break-glass identity.
        if (rule?.breakGlass ?? false) || kind == .root {
            if isOn(.break_glass) {
                raise(.break_glass, entity: Self.identityKey(e), e, ctx, summary: "break-glass identity \(Self.who(e)) used: \(e.action) \(path ?? "")", into: &out)
            } else { countLogged(.break_glass) }
        }

        // out_of_scope: touching a secret outside the identity's scope (allowed or denied).
        if let rule, isSecretAccess, let path {
            if Self.outsideScope(rule, path) {
                if isOn(.out_of_scope) {
                    let scope = rule.rule.scope
                    raise(.out_of_scope, entity: "\(Self.identityKey(e))\u{0}\(path)", e, ctx,
                          summary: "\(Self.who(e)) (\(kind)) attempted \(e.action) of \(path) (\(e.outcome)), outside its scope \(scope.joined(separator: ", "))",
                          details: ["scope": scope.joined(separator: ",")], into: &out)
                } else { countLogged(.out_of_scope) }
            }
        }

        // failed_single / failed_threshold.
        if e.outcome == .denied {
            countLogged(.failed_single)
            if let path { failure(path: path, t: t, e, ctx, into: &out) }
        }

        // unknown_ip / access_known_ip (need an address).
        if e.outcome == .success, let rule, !rule.cidrs.isEmpty {
            if !ipParsed {
                if let text = e.origin?.ip { ip = Self.parseIP(text) }
                ipParsed = true
            }
            if let ip {
                var known = false
                for c in rule.cidrs where c.contains(ip) { known = true; break }
                if known { countLogged(.access_known_ip) }
                else if isOn(.unknown_ip) {
                    let loc = locate(ip)
                    let geoip = policy.geoip
                    let outside = loc?.countryISO.map { c in geoip.map { g in !g.countries.contains(c) } ?? false }
                    let networks = rule.rule.networks
                    raise(.unknown_ip, entity: "\(Self.identityKey(e))\u{0}\(ip)", e, ctx,
                          summary: "\(Self.who(e)) \(e.action) \(path ?? "") from \(ip) (\(loc.map(Self.place) ?? "unknown location")), outside its networks \(networks.joined(separator: ", "))\(outside == true ? "; country outside \(geoip!.countries.sorted().joined(separator: ", "))" : "")",
                          origin: Self.originRef(ip: ip, loc, outside: outside), details: ["networks": networks.joined(separator: ",")], into: &out)
                } else { countLogged(.unknown_ip) }
            }
        }

        // off_hours: outside the identity's schedule, in the schedule's time zone.
        if let s = rule?.schedule {
            let offset = utcOffset(schedule: s, t: t)
            if !scheduleRanges[s].contains(unixSeconds: t, offsetSeconds: offset) {
                if isOn(.off_hours) {
                    let schedule = schedules[s]
                    raise(.off_hours, entity: Self.identityKey(e), e, ctx,
                          summary: "\(Self.who(e)) \(e.action) \(path ?? "") at \(Self.localClock(t, offset)) \(schedule.timeZone.identifier), outside schedule \(schedule.name)",
                          details: ["local_time": Self.localClock(t, offset), "schedule": schedule.name, "timezone": schedule.timeZone.identifier], into: &out)
                } else { countLogged(.off_hours) }
            }
        }

        // Pipelines: scope, runner address, manual production runs, leaks.
        if e.pipeline != nil || e.action == .leak { pipelineChecks(e, ctx, into: &out) }

        // The identity detectors' alerts.
        if let travel {
            let place = loc.map(Self.place) ?? ""
            let speedKmh = travelSettings.speedKmh
            raise(.impossible_travel, entity: Self.identityKey(e), e, ctx,
                  summary: "\(Self.who(e)) appeared \(Int(travel.km)) km from their previous access \(travel.from) within \(Self.formatHours(travel.hours)) (\(travel.speed.isFinite ? "\(Int(travel.speed)) km/h" : "at the same instant"), more than \(Int(speedKmh)) km/h), now \(ip.map { "\($0)" } ?? "") (\(place))",
                  origin: ip.map { Self.originRef(ip: $0, loc, outside: nil) },
                  details: ["distance_km": String(Int(travel.km)), "hours": String(format: "%.2f", travel.hours),
                            "speed_kmh": travel.speed.isFinite ? String(Int(travel.speed)) : "infinite", "previous": travel.from],
                  into: &out)
        }
        if let volume {
            let hour = Self.floorDiv(t, 3600)
            raise(.volume_anomaly, entity: "\(Self.identityKey(e))\u{0}\(hour)", e, ctx,
                  summary: "\(Self.who(e)) made \(volume.count) reads in the hour from \(Self.hourLabel(hour)) UTC; usual for that hour of the week: median \(Self.trim(volume.median)), MAD \(Self.trim(volume.mad))",
                  details: ["reads": String(volume.count), "baseline_median": Self.trim(volume.median), "baseline_mad": Self.trim(volume.mad)],
                  into: &out)
        }
    }

    /// What the detectors keep of an event besides the event itself (which they borrow).
    struct Context {
        var index: UInt64
        var now: EventTime
        var time: EventTime
        var kind: IdentityKind
    }

    /// The identity's key: its id, else its name ("" for neither).
    static func identityKey(_ e: AccessEvent) -> String { e.identity.id ?? e.identity.name ?? "" }

    static func who(_ e: AccessEvent) -> String { e.identity.name ?? e.identity.id ?? "unauthenticated" }

    /// The event's secret with the environment of the first secret rule matching its path.
    func alertSecret(_ e: AccessEvent) -> AccessEvent.Secret? {
        var secret = e.secret
        if let path = secret?.path {
            for (g, env) in secretRules where g.matches(path) {
                if let env { secret?.environment = env }
                break
            }
        }
        return secret
    }

    /// `IPAddress(text)`; a dotted quad is parsed here without the copy `IPAddress.init?`
    /// makes (same rules: four parts of 1–3 digits, no leading zero, at most 255).
    static func parseIP(_ text: String) -> IPAddress? {
        // The bytes in place (a small string's are copied to the stack): iterating the
        // UTF8View costs several times more.
        let v = text.utf8.withContiguousStorageIfAvailable { dottedQuad($0) } ?? dottedQuad(Array(text.utf8))
        if let v { return IPAddress(ipv4: v) }
        return IPAddress(text)
    }

    /// A dotted quad's value, nil if the text is not one (by `IPAddress`'s rules).
    @inline(__always)
    static func dottedQuad<C: Collection<UInt8>>(_ bytes: C) -> UInt32? {
        var value: UInt32 = 0
        var parts = 0, octet = 0, digits = 0
        var leadingZero = false
        for c in bytes {
            if c == UInt8(ascii: ".") {
                guard parts < 3, digits > 0, octet <= 255, !(leadingZero && digits > 1) else { return nil }
                value = value << 8 | UInt32(octet); parts += 1
                octet = 0; digits = 0; leadingZero = false
            } else if c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") {
                guard digits < 3 else { return nil }
                if digits == 0 { leadingZero = c == UInt8(ascii: "0") }
                octet = octet * 10 + Int(c - UInt8(ascii: "0"))
                digits += 1
            } else {
                return nil
            }
        }
        guard parts == 3, digits > 0, octet <= 255, !(leadingZero && digits > 1) else { return nil }
        return value << 8 | UInt32(octet)
    }

    mutating func failure(path: String, t: Int64, _ e: AccessEvent, _ ctx: Context, into out: inout [Alert]) {
        let s = settings(.failed_threshold)
        let key = SecretKey(instance: e.source.instance, path: path)
        let entity = "\(key.instance)\u{0}\(path)"
        let fk = FoldKey(alertClass: .failed_threshold, entity: entity)
        var crossed: [UInt64]?
        var burst = false
        let limit = s.count
        let alerted = open[fk] != nil
        let index = ctx.index
        failures.modify(key) { f in
            // A failure within `window` of the previous one continues an alerted burst.
            if alerted, t - f.last <= s.window, t >= f.last - s.window { burst = true }
            f.last = max(f.last, t)
            f.times.append(t); f.indexes.append(index)
            if f.times.count > limit { f.times.removeFirst(f.times.count - limit); f.indexes.removeFirst(f.indexes.count - limit) }
            if !burst, f.times.count == limit, let lo = f.times.min(), let hi = f.times.max(), hi - lo <= s.window {
                crossed = f.indexes
            }
        }
        guard isOn(.failed_threshold) else { if crossed != nil { countLogged(.failed_threshold) }; return }
        if burst {
            fold(fk, ctx, into: &out)
        } else if let evidence = crossed {
            if let old = open.removeValue(forKey: fk) { close(old, into: &out) }
            raise(.failed_threshold, entity: entity, e, ctx,
                  summary: "\(limit) denied attempts on \(path) within \(ConfigDuration.format(s.window)) (latest by \(Self.who(e))\(e.origin.map { " from \($0.ip)" } ?? ""))",
                  evidence: evidence, details: ["window": ConfigDuration.format(s.window), "threshold": String(limit)],
                  foldFor: s.window, into: &out)
        }
    }

    // MARK: - Volume baseline

    /// Weeks of history kept per identity for the volume baseline.
    public static let volumeWeeks: Int64 = 4

    /// Counts a read of `r`'s identity in `hour`; returns that hour's count so far.
    ///
    /// The identity's history is `hours` followed by the `recent` lanes of its record
    /// (ascending, distinct hours), the last entry's count held live in `newestHour`. A read
    /// in the newest hour touches only `newestHour`; a read that starts a new hour writes the
    /// previous newest back and adds the hour to `recent`, touching `hours` only when
    /// `recentCapacity` entries have gathered (`settle`). A read in an older hour settles and
    /// takes `countRead(_:hour:)`'s path over the array. The results are those of keeping
    /// everything in `hours` (`settle` drops what `countRead(_:hour:)` would have dropped).
    @inline(__always)
    static func countRead(_ r: UnsafeMutablePointer<IdentityTable.Record>, hour: Int64) -> Int {
        let h = UInt64(bitPattern: hour)
        let newest = r.pointee.newestHour
        if newest != 0, newest >> 24 == h {
            let c = min((newest & 0xFF_FFFF) + 1, 0xFF_FFFF)
            r.pointee.newestHour = (h << 24) | c
            return Int(c)
        }
        if newest != 0, Int64(bitPattern: newest >> 24) > hour {
            settle(r)
            let c = countRead(&r.pointee.hours, hour: hour)
            r.pointee.newestHour = r.pointee.hours.last ?? 0
            return c
        }
        var n = Int(r.pointee.recent[7])
        if n == IdentityTable.Record.recentCapacity {
            settle(r)
            n = 0
        } else if newest != 0 {
            if n > 0 { r.pointee.recent[n - 1] = newest } else { r.pointee.hours[r.pointee.hours.count - 1] = newest }
        }
        r.pointee.recent[n] = (h << 24) | 1
        r.pointee.recent[7] = UInt64(n + 1)
        r.pointee.newestHour = (h << 24) | 1
        return 1
    }

    /// Moves `r`'s recent entries into `hours` with the newest count written back, and drops
    /// the entries older than the baseline needs for the newest hour, as `countRead(_:hour:)`
    /// drops them on each append: `hours` is then exactly what `countRead(_:hour:)` alone
    /// would have kept (`IdentityTableTests` compares the two over random walks).
    static func settle(_ r: UnsafeMutablePointer<IdentityTable.Record>) {
        let newest = r.pointee.newestHour
        let n = Int(r.pointee.recent[7])
        if n > 0 {
            if newest != 0 { r.pointee.recent[n - 1] = newest }
            r.pointee.hours.reserveCapacity(r.pointee.hours.count + n)
            for i in 0..<n { r.pointee.hours.append(r.pointee.recent[i]) }
            r.pointee.recent = .zero
        } else if newest != 0, !r.pointee.hours.isEmpty {
            r.pointee.hours[r.pointee.hours.count - 1] = newest
        }
        // countRead(_:hour:) drops on each append of a new hour: here only if one was
        // appended since the last settle (each went to `recent`), relative to the newest.
        guard newest != 0, n > 0 else { return }
        let oldest = Int64(bitPattern: newest >> 24) - volumeWeeks * 168
        var drop = 0
        while drop < r.pointee.hours.count, Int64(bitPattern: r.pointee.hours[drop] >> 24) < oldest { drop += 1 }
        if drop > 0 { r.pointee.hours.removeFirst(drop) }
    }

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
            // Out of order: find or insert the hour (hours are kept ascending and distinct,
            // and a late event is usually about a recent hour, so search from the end).
            var i = hours.count - 1
            while i >= 0, hours[i] >> 24 > h { i -= 1 }
            if i >= 0, hours[i] >> 24 == h {
                let c = min((hours[i] & 0xFF_FFFF) + 1, 0xFF_FFFF)
                hours[i] = (h << 24) | c
                return Int(c)
            }
            hours.insert((h << 24) | 1, at: i + 1)
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

    /// Raises an alert of class `c` about `entity`, or folds the event into the open alert
    /// of that class and entity. The summary, details and origin are only built for a new
    /// alert.
    mutating func raise(_ c: AlertClass, entity: String, _ e: AccessEvent, _ ctx: Context, summary: @autoclosure () -> String,
                        evidence: [UInt64]? = nil, origin: @autoclosure () -> Alert.OriginRef? = nil,
                        details: @autoclosure () -> [String: String] = [:],
                        foldFor: Int64? = nil, into out: inout [Alert]) {
        let fk = FoldKey(alertClass: c, entity: entity)
        let t = ctx.time.seconds
        if c != .failed_threshold, let i = open.index(forKey: fk), t <= open.values[i].expires {
            fold(at: i, fk, ctx, into: &out)
            return
        }
        let s = settings(c)
        if let old = open.removeValue(forKey: fk) { close(old, into: &out) }
        let ev = evidence ?? [ctx.index]
        let owner = s.owner.flatMap { policy.owners[$0] }.map { Alert.OwnerRef(key: $0.key, name: $0.name) }
        var originRef = origin()
        if originRef == nil, let o = e.origin {
            originRef = Alert.OriginRef(ip: o.ip)
            if geo != nil, let ip = IPAddress(o.ip), let loc = locate(ip) {
                let outside = loc.countryISO.map { c in policy.geoip.map { !$0.countries.contains(c) } ?? false }
                originRef = Self.originRef(ip: ip, loc, outside: outside)
                originRef?.ip = o.ip
            }
        }
        let dedup = "\(c.rawValue):\(Self.dedupEntity(entity))"
        var a = Alert(
            id: Alert.makeID(c, dedupKey: dedup, firstEvidence: ev.first ?? ctx.index),
            status: .raised, alertClass: c, severity: s.severity, owner: owner, raisedAt: ctx.now,
            slaDeadline: s.sla.map { EventTime(seconds: ctx.now.seconds + $0, nanos: ctx.now.nanos, digits: ctx.now.digits) },
            playbook: s.playbook, time: e.time, lastTime: e.time, secret: alertSecret(e),
            identity: .init(id: e.identity.id, name: e.identity.name, kind: ctx.kind),
            action: e.action, outcome: e.outcome, origin: originRef, count: ev.count, dedupKey: dedup,
            evidence: Array(ev.prefix(Alert.maxEvidence)), summary: summary(), details: details(), silencedBy: nil)
        if let silence = silences.first(where: { $0.matches(a, at: ctx.now) }) { a.silencedBy = silence.id }
        raisedCounts[Self.slot(c)] += 1
        out.append(a)
        let window = foldFor ?? s.fold
        if window > 0 {
            open[fk] = OpenAlert(alert: a, total: a.count, expires: t + window, lastTime: e.time)
            expiries.push(t + window, fk)
            nextFoldExpiry = expiries.minimum
        }
    }

    /// The entity with NUL separators shown as `|` (the dedup key). ASCII text is rewritten
    /// byte for byte; anything else goes through Foundation as before.
    static func dedupEntity(_ entity: String) -> String {
        // Over the bytes in place (iterating the UTF8View costs several times more).
        let scan: (ascii: Bool, nul: Bool) = entity.utf8.withContiguousStorageIfAvailable { b in
            var nul = false
            for c in b {
                if c >= 0x80 { return (false, nul) }
                if c == 0 { nul = true }
            }
            return (true, nul)
        } ?? (false, true)
        if !scan.ascii { return entity.replacingOccurrences(of: "\u{0}", with: "|") }
        if !scan.nul { return entity }
        let n = entity.utf8.count
        return entity.utf8.withContiguousStorageIfAvailable { b in
            String(unsafeUninitializedCapacity: n, initializingUTF8With: { out in
                for i in 0..<n { out[i] = b[i] == 0 ? UInt8(ascii: "|") : b[i] }
                return n
            })
        } ?? entity.replacingOccurrences(of: "\u{0}", with: "|")
    }

    mutating func fold(_ fk: FoldKey, _ ctx: Context, into out: inout [Alert]) {
        guard let i = open.index(forKey: fk) else { return }
        fold(at: i, fk, ctx, into: &out)
    }

    /// Counts the event on the open alert at `i` (updated in place).
    mutating func fold(at i: Dictionary<FoldKey, OpenAlert>.Index, _ fk: FoldKey, _ ctx: Context, into out: inout [Alert]) {
        let s = settings(fk.alertClass)
        let window = fk.alertClass == .failed_threshold ? s.window : s.fold
        let (extended, full) = Self.count(&open.values[i], ctx, window: window)
        if let extended { expiries.push(extended, fk) }
        foldedCounts[Self.slot(fk.alertClass)] += 1
        // Keep each update entry bounded: flush when its evidence list is full.
        if full { flushUpdate(fk, into: &out) }
    }

    /// One more occurrence on an open alert: (its new expiry if extended, evidence full).
    @inline(__always)
    static func count(_ o: inout OpenAlert, _ ctx: Context, window: Int64) -> (Int64?, Bool) {
        o.total += 1
        o.pendingCount += 1
        if o.pendingEvidence.count < Alert.maxEvidence { o.pendingEvidence.append(ctx.index) }
        if ctx.time > o.lastTime { o.lastTime = ctx.time }
        var extended: Int64?
        if ctx.time.seconds + window > o.expires {
            o.expires = ctx.time.seconds + window
            extended = o.expires
        }
        return (extended, o.pendingEvidence.count >= Alert.maxEvidence)
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
        let m = Int((local - floorDiv(local, 86_400) * 86_400) / 60)   // 0..<1440
        let h = m / 60, mm = m % 60
        return "\(h < 10 ? "0" : "")\(h):\(mm < 10 ? "0" : "")\(mm)"
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
