import CustosAlerting
@testable import CustosCore
import Foundation
import Testing

/// Real OpenBao records (Fixtures/audit-2.7.2.log) re-timed and re-addressed per scenario.
enum Records {
    static let all: [AccessEvent] = {
        let data = try! Data(contentsOf: AlertingFixtures.root.appendingPathComponent("audit-2.7.2.log"))
        var d = VaultAuditDecoder(sourceKind: "openbao", instance: "test")
        var out: [DecodeOutput] = []
        for (i, line) in data.split(separator: 0x0A).enumerated() { d.decode(line: Array(line), lineNumber: i + 1, into: &out) }
        d.finish(into: &out)
        return out.compactMap { if case .event(let e, _) = $0 { return e } else { return nil } }
    }()

    static func first(_ f: (AccessEvent) -> Bool) -> AccessEvent { all.first(where: f)! }
    /// token-payment-processor denied reading secret/data/prod/payments/db.
    static var deniedRead: AccessEvent { first { $0.outcome == .denied && $0.identity.name == "token-payment-processor" } }
    /// token-payment-processor reading secret/data/dev/app/config.
    static var serviceRead: AccessEvent { first { $0.outcome == .success && $0.action == .read && $0.identity.name == "token-payment-processor" } }
    /// userpass-alice (human) reading secret/data/dev/app/config.
    static var aliceRead: AccessEvent { first { $0.action == .read && $0.identity.name == "userpass-alice" } }
    /// The root token reading secret/data/prod/payments/db.
    static var rootRead: AccessEvent { first { $0.action == .read && $0.identity.kind == .root && $0.secret?.path == "secret/data/prod/payments/db" } }

    static func at(_ e: AccessEvent, _ time: String, ip: String? = nil, name: String? = nil, path: String? = nil,
                   outcome: Outcome? = nil, action: Action? = nil) -> AccessEvent {
        var e = e
        e.time = EventTime(rfc3339: time)!
        if let ip { e.origin = .init(ip: ip) }
        if let name { e.identity.name = name; e.identity.id = "id-" + name }
        if let path { e.secret?.path = path }
        if let outcome { e.outcome = outcome }
        if let action { e.action = action }
        return e
    }
}

enum Scenario {
    static let owners = """
        owners:
          sec: { name: Security team, notify: [ { webhook: "http://127.0.0.1:9/x" } ] }
          lead: { name: SecOps lead, notify: [ { webhook: "http://127.0.0.1:9/y" } ] }
        networks:
          office: [203.0.113.0/24]
          vpn: [198.51.100.0/26]
        geoip: { database: GeoIP2-City-Test.mmdb, countries: [GB, US] }
        schedules:
          business: { timezone: Europe/London, days: [mon, tue, wed, thu, fri], hours: "08:00-19:00" }
        """
    static let allClasses = """
        classes:
          failed_threshold:  { action: alert, severity: high, owner: sec, sla: 1h, playbook: PB-SEC-01, count: 3, window: 5m }
          out_of_scope:      { action: alert, severity: critical, owner: sec, sla: 30m, playbook: PB-SEC-02 }
          impossible_travel: { action: alert, severity: high, owner: sec, sla: 30m, speed_kmh: 900, min_km: 500 }
          break_glass:       { action: alert, severity: critical, owner: lead, sla: 15m, playbook: PB-SEC-04 }
          volume_anomaly:    { action: alert, severity: medium, owner: sec, sla: 4h, min_count: 20, deviations: 6, warmup: 14d }
          unknown_ip:        { action: alert, severity: high, owner: sec, sla: 1h }
          off_hours:         { action: alert, severity: medium, owner: sec, sla: 4h }
        """

    static func policy(identities: String = "", _ extra: String = "") throws -> LoadedPolicy {
        try PolicyLoader.load(yaml: owners + "\n" + identities + "\n" + allClasses + "\n" + extra, baseDirectory: AlertingFixtures.path)
    }

    static let now = EventTime(rfc3339: "2026-12-01T12:00:00Z")!

    /// Runs the events in order (trail indexes 0, 1, ...) and flushes open folds.
    static func run(_ loaded: LoadedPolicy, _ events: [AccessEvent], silences: [Silence] = []) -> [Alert] {
        var engine = DetectionEngine(policy: loaded.policy, geo: loaded.locator)
        engine.silences = silences
        var out: [Alert] = []
        for (i, e) in events.enumerated() { engine.process(e, index: UInt64(i), now: now, into: &out) }
        engine.flush(into: &out)
        return out
    }

    static func raised(_ alerts: [Alert], _ c: AlertClass) -> [Alert] { alerts.filter { $0.alertClass == c && $0.status == .raised } }
}

@Suite struct DetectionTests {
    // MARK: failed_threshold

    @Test func threeDenialsWithinFiveMinutesAlertOnceAndLaterOnesFold() throws {
        let p = try Scenario.policy()
        let d = Records.deniedRead
        let events = [
            Records.at(d, "2026-11-30T10:00:00Z"), Records.at(d, "2026-11-30T10:02:00Z"),
            Records.at(d, "2026-11-30T10:05:00Z"),   // third within 5m (inclusive): alert
            Records.at(d, "2026-11-30T10:07:00Z"),   // same burst: counted on it
            Records.at(d, "2026-11-30T10:09:00Z"),
        ]
        let alerts = Scenario.run(p, events).filter { $0.alertClass == .failed_threshold }
        #expect(alerts.count == 2)
        let a = try #require(alerts.first)
        #expect(a.status == .raised && a.evidence == [0, 1, 2] && a.count == 3)
        #expect(a.severity == .high && a.owner?.key == "sec" && a.owner?.name == "Security team" && a.playbook == "PB-SEC-01")
        #expect(a.secret?.path == "secret/data/prod/payments/db" && a.outcome == .denied)
        #expect(a.identity.name == "token-payment-processor")
        #expect(a.slaDeadline == EventTime(rfc3339: "2026-12-01T13:00:00Z"))
        #expect(a.time == EventTime(rfc3339: "2026-11-30T10:05:00Z"))
        let u = alerts[1]
        #expect(u.status == .updated && u.id == a.id && u.count == 5 && u.evidence == [3, 4])
        #expect(u.lastTime == EventTime(rfc3339: "2026-11-30T10:09:00Z"))
    }

    @Test func twoDenialsInFiveMinutesDoNotAlert() throws {
        let d = Records.deniedRead
        let alerts = Scenario.run(try Scenario.policy(), [Records.at(d, "2026-11-30T10:00:00Z"), Records.at(d, "2026-11-30T10:04:00Z")])
        #expect(Scenario.raised(alerts, .failed_threshold).isEmpty)
    }

    @Test func threeDenialsSpreadOverSixMinutesDoNotAlert() throws {
        let d = Records.deniedRead
        let alerts = Scenario.run(try Scenario.policy(), [
            Records.at(d, "2026-11-30T10:00:00Z"), Records.at(d, "2026-11-30T10:03:00Z"), Records.at(d, "2026-11-30T10:06:00Z"),
        ])
        #expect(Scenario.raised(alerts, .failed_threshold).isEmpty)
    }

    @Test func slidingWindowNotFixedBuckets() throws {
        // 10:04, 10:06, 10:08 straddle a 5-minute bucket boundary but fit one sliding window.
        let d = Records.deniedRead
        let alerts = Scenario.run(try Scenario.policy(), [
            Records.at(d, "2026-11-30T09:50:00Z"),
            Records.at(d, "2026-11-30T10:04:00Z"), Records.at(d, "2026-11-30T10:06:00Z"), Records.at(d, "2026-11-30T10:08:00Z"),
        ])
        #expect(Scenario.raised(alerts, .failed_threshold).map(\.evidence) == [[1, 2, 3]])
    }

    @Test func failuresOnDifferentSecretsDoNotAddUp() throws {
        let d = Records.deniedRead
        let alerts = Scenario.run(try Scenario.policy(), [
            Records.at(d, "2026-11-30T10:00:00Z", path: "secret/data/a"), Records.at(d, "2026-11-30T10:01:00Z", path: "secret/data/b"),
            Records.at(d, "2026-11-30T10:02:00Z", path: "secret/data/c"),
        ])
        #expect(Scenario.raised(alerts, .failed_threshold).isEmpty)
    }

    @Test func aSecondBurstIsASecondAlert() throws {
        let d = Records.deniedRead
        let times = ["10:00:00", "10:01:00", "10:02:00", "11:00:00", "11:01:00", "11:02:00"]
        let alerts = Scenario.run(try Scenario.policy(), times.map { Records.at(d, "2026-11-30T\($0)Z") })
        #expect(Scenario.raised(alerts, .failed_threshold).map(\.evidence) == [[0, 1, 2], [3, 4, 5]])
    }

    // MARK: out_of_scope

    static let scoped = """
        identities:
          - { match: "token-payment-processor*", kind: service, scope: ["secret/data/payments/*"], schedule: always }
        """

    @Test func touchingASecretOutsideScopeAlertsAllowedOrDenied() throws {
        let p = try Scenario.policy(identities: Self.scoped)
        let alerts = Scenario.run(p, [
            Records.at(Records.serviceRead, "2026-11-30T10:00:00Z"),   // allowed read of dev/app/config
            Records.at(Records.deniedRead, "2026-12-01T10:00:00Z"),    // denied read of prod/payments/db
        ])
        let oos = Scenario.raised(alerts, .out_of_scope)
        #expect(oos.map(\.secret?.path) == ["secret/data/dev/app/config", "secret/data/prod/payments/db"])
        #expect(oos.map(\.outcome) == [.success, .denied])
        #expect(oos.allSatisfy { $0.identity.kind == .service && $0.severity == .critical && $0.playbook == "PB-SEC-02" })
    }

    @Test func inScopeAccessDoesNotAlert() throws {
        let p = try Scenario.policy(identities: Self.scoped)
        let alerts = Scenario.run(p, [Records.at(Records.serviceRead, "2026-11-30T10:00:00Z", path: "secret/data/payments/stripe")])
        #expect(alerts.isEmpty)
    }

    @Test func repeatedOutOfScopeAccessFoldsIntoOneAlertWithACount() throws {
        let p = try Scenario.policy(identities: Self.scoped)
        let e = Records.serviceRead
        let events = (0..<5).map { Records.at(e, "2026-11-30T10:0\($0):00Z") } + [Records.at(e, "2026-11-30T10:06:00Z", path: "secret/data/other")]
        let alerts = Scenario.run(p, events).filter { $0.alertClass == .out_of_scope }
        #expect(alerts.filter { $0.status == .raised }.count == 2)
        let update = try #require(alerts.first { $0.status == .updated })
        #expect(update.count == 5 && update.evidence == [1, 2, 3, 4])
        // After the fold window (1h by default) it is a new alert.
        let later = Scenario.run(p, [Records.at(e, "2026-11-30T10:00:00Z"), Records.at(e, "2026-11-30T11:30:00Z")])
        #expect(Scenario.raised(later, .out_of_scope).count == 2)
    }

    // MARK: break_glass

    @Test func rootUseAlertsTheBreakGlassOwner() throws {
        let p = try Scenario.policy(identities: "identities: [ { match: root, break_glass: true } ]")
        let alerts = Scenario.run(p, [Records.at(Records.rootRead, "2026-11-30T10:00:00Z")])
        let bg = Scenario.raised(alerts, .break_glass)
        #expect(bg.count == 1)
        #expect(bg.first?.owner?.key == "lead" && bg.first?.severity == .critical)
        #expect(bg.first?.slaDeadline == EventTime(rfc3339: "2026-12-01T12:15:00Z"))
    }

    @Test func aBreakGlassRuleMarksANamedIdentity() throws {
        let p = try Scenario.policy(identities: "identities: [ { match: emergency-*, break_glass: true } ]")
        let e = Records.at(Records.aliceRead, "2026-11-30T10:00:00Z", name: "emergency-admin")
        #expect(Scenario.raised(Scenario.run(p, [e]), .break_glass).count == 1)
        // Near miss: an ordinary human.
        #expect(Scenario.raised(Scenario.run(p, [Records.at(Records.aliceRead, "2026-11-30T10:00:00Z")]), .break_glass).isEmpty)
    }

    // MARK: unknown_ip

    static let everyone = "identities: [ { match: \"*\", networks: [office, vpn] } ]"

    @Test func successFromOutsideTheNetworksAlertsWithGeo() throws {
        let p = try Scenario.policy(identities: Self.everyone)
        let alerts = Scenario.run(p, [
            Records.at(Records.aliceRead, "2026-11-30T10:00:00Z", ip: "81.2.69.142"),   // London, GB
            Records.at(Records.aliceRead, "2026-11-30T10:00:01Z", ip: "175.16.199.7"),  // Changchun, CN
        ])
        let u = Scenario.raised(alerts, .unknown_ip)
        #expect(u.count == 2)
        #expect(u[0].origin?.country == "GB" && u[0].origin?.city == "London" && u[0].origin?.countryOutside == false)
        #expect(u[1].origin?.country == "CN" && u[1].origin?.countryOutside == true)
        #expect(u[1].summary.contains("country outside GB, US"))
    }

    @Test func knownNetworksAndDenialsDoNotAlertUnknownIP() throws {
        let p = try Scenario.policy(identities: Self.everyone)
        let alerts = Scenario.run(p, [
            Records.at(Records.aliceRead, "2026-11-30T10:00:00Z", ip: "203.0.113.77"),
            Records.at(Records.aliceRead, "2026-11-30T10:00:01Z", ip: "198.51.100.63"),
            Records.at(Records.aliceRead, "2026-11-30T10:00:02Z", ip: "81.2.69.142", outcome: .denied),
        ])
        #expect(Scenario.raised(alerts, .unknown_ip).isEmpty)
    }

    // MARK: off_hours

    static let business = "identities: [ { match: \"*\", networks: [office], schedule: business } ]"

    @Test func accessAfterHoursInTheSchedulesZoneAlerts() throws {
        let p = try Scenario.policy(identities: Self.business)
        // 2026-11-30 is a Monday; London is on GMT in winter, BST (UTC+1) in summer.
        let a = Records.aliceRead
        let alerts = Scenario.run(p, [
            Records.at(a, "2026-11-30T18:59:00Z", ip: "203.0.113.5"),   // 18:59 GMT: inside
            Records.at(a, "2026-11-30T19:00:00Z", ip: "203.0.113.5"),   // 19:00 GMT: outside
        ])
        let off = Scenario.raised(alerts, .off_hours)
        #expect(off.map(\.evidence) == [[1]])
        #expect(off.first?.details["local_time"] == "19:00")
        let summer = Scenario.run(p, [
            Records.at(a, "2026-07-06T17:59:00Z", ip: "203.0.113.5"),   // 18:59 BST: inside
            Records.at(a, "2026-07-06T18:30:00Z", name: "bob", path: nil),   // 19:30 BST: outside
        ])
        #expect(Scenario.raised(summer, .off_hours).map(\.evidence) == [[1]])
        let weekend = Scenario.run(p, [Records.at(a, "2026-12-05T11:00:00Z", ip: "203.0.113.5")])   // Saturday
        #expect(Scenario.raised(weekend, .off_hours).count == 1)
    }

    @Test func at1859InTheZoneIsANearMiss() throws {
        let p = try Scenario.policy(identities: Self.business)
        let alerts = Scenario.run(p, [Records.at(Records.aliceRead, "2026-11-30T18:59:59Z", ip: "203.0.113.5")])
        #expect(alerts.isEmpty)
    }

    // MARK: impossible_travel

    @Test func londonToTheUSInAnHourIsImpossible() throws {
        let p = try Scenario.policy(identities: "identities: [ { match: \"*\" } ]")
        let a = Records.aliceRead
        let alerts = Scenario.run(p, [
            Records.at(a, "2026-11-30T10:00:00Z", ip: "81.2.69.142"),     // London
            Records.at(a, "2026-11-30T11:00:00Z", ip: "216.160.83.56"),   // Milton, WA
        ])
        let t = Scenario.raised(alerts, .impossible_travel)
        #expect(t.count == 1)
        let km = Int(t.first?.details["distance_km"] ?? "") ?? 0
        #expect(km > 7000 && km < 7800)
        #expect(t.first?.origin?.city == "Milton")
        #expect(t.first?.evidence == [1])
    }

    @Test func travelUnderTheSpeedIsANearMiss() throws {
        let p = try Scenario.policy(identities: "identities: [ { match: \"*\" } ]")
        let a = Records.aliceRead
        // London → Linköping is ~1,430 km (minus both accuracy radii): 2 h is ~670 km/h.
        let slow = Scenario.run(p, [
            Records.at(a, "2026-11-30T10:00:00Z", ip: "81.2.69.142"), Records.at(a, "2026-11-30T12:00:00Z", ip: "89.160.20.112"),
        ])
        #expect(Scenario.raised(slow, .impossible_travel).isEmpty)
        let fast = Scenario.run(p, [
            Records.at(a, "2026-11-30T10:00:00Z", ip: "81.2.69.142"), Records.at(a, "2026-11-30T11:00:00Z", ip: "89.160.20.112"),
        ])
        #expect(Scenario.raised(fast, .impossible_travel).count == 1)
    }

    @Test func knownNetworksAreSkippedForTravel() throws {
        // 2001:480:10::/48 is San Diego in the test database; declared as the office here.
        let p = try PolicyLoader.load(yaml: Scenario.owners.replacingOccurrences(of: "office: [203.0.113.0/24]", with: "office: [\"2001:480:10::/48\"]")
                                      + "\nidentities: [ { match: \"*\" } ]\n" + Scenario.allClasses, baseDirectory: AlertingFixtures.path)
        let a = Records.aliceRead
        let alerts = Scenario.run(p, [
            Records.at(a, "2026-11-30T10:00:00Z", ip: "81.2.69.142"), Records.at(a, "2026-11-30T10:10:00Z", ip: "2001:480:10::1"),
        ])
        #expect(Scenario.raised(alerts, .impossible_travel).isEmpty)
    }

    // MARK: volume_anomaly

    /// `perHour` reads at 10:00 UTC on each of the given Mondays.
    static func reads(_ name: String, mondays: [String], perHour: [Int]) -> [AccessEvent] {
        var out: [AccessEvent] = []
        for (day, n) in zip(mondays, perHour) {
            for i in 0..<n { out.append(Records.at(Records.aliceRead, "\(day)T10:\(String(format: "%02d", i % 60)):\(String(format: "%02d", i / 60))Z", name: name)) }
        }
        return out
    }

    static let mondays = ["2026-11-02", "2026-11-09", "2026-11-16", "2026-11-23", "2026-11-30"]

    @Test func aSpikeOverTheBaselineAlertsOnce() throws {
        let p = try Scenario.policy(identities: "identities: [ { match: \"*\" } ]")
        let events = Self.reads("batch", mondays: Self.mondays, perHour: [5, 6, 5, 7, 60])
        let v = Scenario.raised(Scenario.run(p, events), .volume_anomaly)
        #expect(v.count == 1)
        #expect(v.first?.details["baseline_median"] == "5.5")
        // It fires when the count first exceeds median + 6 × max(1.4826 × MAD, 1) (and ≥ 20).
        let threshold = 5.5 + 6 * max(1.4826 * 0.5, 1)
        #expect(v.first?.details["reads"] == String(max(20, Int(threshold) + 1)))
    }

    @Test func volumeNearMisses() throws {
        let p = try Scenario.policy(identities: "identities: [ { match: \"*\" } ]")
        // Below the minimum count.
        #expect(Scenario.raised(Scenario.run(p, Self.reads("a", mondays: Self.mondays, perHour: [1, 1, 1, 1, 19])), .volume_anomaly).isEmpty)
        // A steady heavy user.
        #expect(Scenario.raised(Scenario.run(p, Self.reads("b", mondays: Self.mondays, perHour: [50, 55, 52, 49, 60])), .volume_anomaly).isEmpty)
        // Still warming up: first seen 8 days before the spike.
        #expect(Scenario.raised(Scenario.run(p, Self.reads("c", mondays: Array(Self.mondays.suffix(2)), perHour: [5, 60])), .volume_anomaly).isEmpty)
    }

    // MARK: noise, silences, memory

    @Test func routineEventsAreLoggedNotAlerted() throws {
        let p = try Scenario.policy(identities: Self.business)
        var engine = DetectionEngine(policy: p.policy, geo: p.locator)
        var out: [Alert] = []
        for i in 0..<100 {
            engine.process(Records.at(Records.aliceRead, "2026-11-30T10:00:\(String(format: "%02d", i % 60))Z", ip: "203.0.113.9"), index: UInt64(i), now: Scenario.now, into: &out)
        }
        engine.process(Records.at(Records.deniedRead, "2026-11-30T10:01:00Z", ip: "203.0.113.9"), index: 100, now: Scenario.now, into: &out)
        engine.flush(into: &out)
        #expect(out.isEmpty)
        #expect(engine.logged[.access_known_ip] == 100)
        #expect(engine.logged[.failed_single] == 1)
    }

    @Test func silencedAlertsAreRecordedButMarked() throws {
        let p = try Scenario.policy(identities: Self.scoped)
        let s = Silence(id: "sil-1", alertClass: .out_of_scope, identity: "token-payment-*", secret: nil, owner: "sec",
                        reason: "migration", createdAt: EventTime(rfc3339: "2026-12-01T00:00:00Z")!,
                        expiresAt: EventTime(rfc3339: "2026-12-02T00:00:00Z")!)
        let alerts = Scenario.run(p, [Records.at(Records.serviceRead, "2026-11-30T10:00:00Z")], silences: [s])
        #expect(alerts.first?.silencedBy == "sil-1")
        var expired = s
        expired.expiresAt = EventTime(rfc3339: "2026-12-01T06:00:00Z")!
        #expect(Scenario.run(p, [Records.at(Records.serviceRead, "2026-11-30T10:00:00Z")], silences: [expired]).first?.silencedBy == nil)
    }

    @Test func stateIsBoundedByTheIdentityLimit() throws {
        let p = try Scenario.policy(identities: "identities: [ { match: \"*\" } ]")
        var engine = DetectionEngine(policy: p.policy, geo: p.locator, maxIdentities: 100, maxSecrets: 50)
        var out: [Alert] = []
        for i in 0..<10_000 {
            engine.process(Records.at(Records.deniedRead, "2026-11-30T10:00:00Z", name: "id\(i)", path: "secret/data/\(i)"), index: UInt64(i), now: Scenario.now, into: &out)
        }
        #expect(engine.identities.count <= 100)
        #expect(engine.failures.count <= 50)
    }

    /// Beyond the identity bound, the least recently seen identities are forgotten (two
    /// generations of maxIdentities / 2): an identity that comes back after being evicted is
    /// new (no last location for impossible_travel, first seen again), while one seen in the
    /// previous generation keeps its state.
    @Test func anEvictedIdentityComesBackAsNew() throws {
        let p = try Scenario.policy(identities: "identities: [ { match: \"*\" } ]")
        let a = Records.aliceRead
        func run(others: Int) -> (travel: Int, kept: Int, firstSeen: Int64?) {
            var engine = DetectionEngine(policy: p.policy, geo: p.locator, maxIdentities: 10)
            var out: [Alert] = []
            var i: UInt64 = 0
            func process(_ e: AccessEvent) { engine.process(e, index: i, now: Scenario.now, into: &out); i += 1 }
            process(Records.at(a, "2026-11-30T10:00:00Z", ip: "81.2.69.142"))             // London
            for n in 0..<others { process(Records.at(a, "2026-11-30T10:30:00Z", ip: "81.2.69.142", name: "other\(n)")) }
            #expect(engine.identities.count <= 10)
            process(Records.at(a, "2026-11-30T11:00:00Z", ip: "216.160.83.56"))           // Milton, WA
            engine.flush(into: &out)
            let r = engine.identities.record(a.identity.id ?? a.identity.name ?? "")
            return (Scenario.raised(out, .impossible_travel).count, engine.identities.count, r.pointee.firstSeen)
        }
        // 4 others: alice stays in the current generation (of 5).
        #expect(run(others: 4).travel == 1)
        // 8 others: alice is in the previous generation and comes back with her state.
        let previous = run(others: 8)
        #expect(previous.travel == 1)
        #expect(previous.firstSeen == EventTime(rfc3339: "2026-11-30T10:00:00Z")!.seconds)
        // 20 others: alice was forgotten; back as new, so no travel from London.
        let evicted = run(others: 20)
        #expect(evicted.travel == 0)
        #expect(evicted.firstSeen == EventTime(rfc3339: "2026-11-30T11:00:00Z")!.seconds)
        #expect(evicted.kept <= 10)
    }

    @Test func alertsAreCanonicalJSONWithoutTheSourcesRawText() throws {
        let p = try Scenario.policy(identities: Self.everyone)
        let alerts = Scenario.run(p, [Records.at(Records.aliceRead, "2026-11-30T10:00:00Z", ip: "175.16.199.7")])
        let a = try #require(alerts.first)
        let bytes = a.canonicalJSON()
        #expect(GenericCanonical.check(bytes) == .init(schema: "custos.alert/v1", problem: nil))
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        #expect(obj["schema"] as? String == "custos.alert/v1")
        #expect(obj["class"] as? String == "unknown_ip")
        #expect((obj["origin"] as? [String: Any])?["latitude"] as? String == "43.8800")
        #expect(obj["evidence"] as? [Int] == [0])
        // Deterministic: the same input gives the same id and bytes.
        #expect(Scenario.run(p, [Records.at(Records.aliceRead, "2026-11-30T10:00:00Z", ip: "175.16.199.7")]).first?.canonicalJSON() == bytes)
    }
}
