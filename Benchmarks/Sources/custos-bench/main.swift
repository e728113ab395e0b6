// Detection throughput benchmark (issue 3): every detector of a full policy over a
// generated stream of events from many identities, on one core.
//
//   swift run -c release --scratch-path .build-release custos-bench detect [EVENTS] [IDENTITIES]
//   swift run -c release --scratch-path .build-release custos-bench detect-digest [EVENTS] [IDENTITIES]
//
// `detect-digest` runs the same stream and prints the SHA-256 of every alert entry produced
// (canonical JSON, in order) and of the engine's logged/raised/folded counts
// (`AlertDigest`): a change to the engine must leave it unchanged.
//
// Prints events/s (median of the passes), alerts raised, and memory: the process's peak
// resident set (VmHWM) before the engine ran and after, so the engine's own state is the
// difference. See Benchmarks/README.md.
import CustosCore
import Foundation

func rss(_ key: String) -> Int {
    guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in s.split(separator: "\n") where line.hasPrefix(key) {
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "0") ?? 0
    }
    return 0
}

struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

// `--geo` (detect-digest only is meaningful): a made-up, deterministic GeoIP locator, so that
// impossible_travel and the geolocated origins of alerts are part of the digest.
let geoMode = CommandLine.arguments.contains("--geo")
let args = CommandLine.arguments.filter { $0 != "--geo" }
guard args.count >= 2, args[1] == "detect" || args[1] == "detect-digest" else {
    print("usage: custos-bench detect|detect-digest [EVENTS (default 10000000)] [IDENTITIES (default 100000)]")
    exit(2)
}
let digestMode = args[1] == "detect-digest"
let total = args.count > 2 ? Int(args[2])! : 10_000_000
let identityCount = args.count > 3 ? Int(args[3])! : 100_000

// The policy: the README example's shape, every class alerting.
func cidr(_ s: String) -> CIDR { try! CIDR(parsing: s) }
var policy = Policy()
policy.networks = ["office": [cidr("203.0.113.0/24")], "vpn": [cidr("198.51.100.0/26")], "cluster": [cidr("10.0.0.0/8")]]
policy.schedules = ["business": Schedule(name: "business", timeZone: TimeZone(identifier: "Europe/London")!, days: [1, 2, 3, 4, 5], start: 480, end: 1140)]
policy.owners = ["sec": .init(key: "sec", name: "Security", notify: [.webhook(url: "http://127.0.0.1:9/x", secretEnv: nil)])]
policy.identities = [
    .init(match: "svc-payments-*", kind: .service, scope: ["secret/data/payments/*"], networks: ["cluster"], schedule: "always"),
    .init(match: "root", breakGlass: true),
    .init(match: "*", networks: ["office", "vpn"], schedule: "business"),
]
policy.secrets = [.init(match: "secret/data/prod/*", environment: "prod")]
for c in AlertClass.allCases where !c.isRoutine {
    var s = Policy.ClassSettings(alert: true)
    s.owner = "sec"; s.sla = 3600; s.severity = .high
    policy.classes[c] = s
}

// Identities: 90% humans (office/VPN, business hours), 10% payment services (cluster,
// scoped to secret/data/payments/*). Most events are routine; a small share is not:
// 2% denied, 1% off hours, 0.5% from unknown addresses, 0.5% out of scope.
var rng = SplitMix(state: 42)
let names: [String] = (0..<identityCount).map { i in i % 10 == 0 ? "svc-payments-\(i)" : "user-\(i)" }
let ids: [String] = (0..<identityCount).map { String(format: "%08x-0000-4000-8000-%012x", $0, $0) }
let teamPaths: [String] = (0..<5_000).map { i in "secret/data/\(["prod", "dev", "staging"][i % 3])/team\(i % 97)/app\(i)" }
let paymentPaths: [String] = (0..<500).map { "secret/data/payments/app\($0)" }
let officeIPs: [String] = (0..<250).map { "203.0.113.\($0)" } + (0..<60).map { "198.51.100.\($0)" }
let clusterIPs: [String] = (0..<1000).map { "10.\($0 % 250).\($0 % 200).\($0 % 100)" }
let unknownIPs: [String] = (0..<200).map { "192.0.2.\($0)" }
let policies = ["default", "team-read"]
let source = AccessEvent.Source(kind: "openbao", instance: "bench")
@MainActor func pick<T>(_ a: [T]) -> T { a[Int(rng.next() % UInt64(a.count))] }

// A pool of distinct events (a quarter from 1% of the identities: a few are busy), replayed
// with advancing time. `offHours` marks events to be placed at night.
let poolSize = min(total, 1_000_000)
var pool: [AccessEvent] = []
var offHours: [Bool] = []
pool.reserveCapacity(poolSize)
for i in 0..<poolSize {
    let r = Int(rng.next() % UInt64(identityCount))
    let who = (rng.next() % 4 == 0) ? r % max(1, identityCount / 100) : r
    let service = names[who].hasPrefix("svc")
    let roll = rng.next() % 1000
    let denied = roll < 20
    let path = service ? (roll >= 20 && roll < 25 ? pick(teamPaths) : pick(paymentPaths)) : pick(teamPaths)
    let ip = roll >= 25 && roll < 30 ? pick(unknownIPs) : (service ? pick(clusterIPs) : pick(officeIPs))
    let action: Action = rng.next() % 10 == 0 ? .list : .read
    pool.append(AccessEvent(
        id: String(i), time: EventTime(seconds: 0), source: source, action: action,
        outcome: denied ? .denied : .success, reason: denied ? "permission denied" : nil,
        secret: .init(store: "secret/", path: path),
        identity: .init(id: ids[who], name: names[who], kind: service ? .service : .human, method: service ? "approle" : "oidc", policies: policies),
        origin: .init(ip: ip, port: nil)))
    offHours.append(roll >= 30 && roll < 40)
}
// Times: the business hours (08:00-19:00 London, GMT in November) of the 20 weekdays from
// Monday 2026-11-02; off-hours events at 22:00 the same day.
let monday = EventTime(rfc3339: "2026-11-02T00:00:00Z")!.seconds
func time(_ n: Int, of total: Int, night: Bool, monday: Int64) -> EventTime {
    let businessSeconds: Int64 = 11 * 3600
    let f = Int64(n) * 20 * businessSeconds / Int64(total)
    let day = f / businessSeconds, within = f % businessSeconds
    let date = monday + (day / 5 * 7 + day % 5) * 86_400
    return EventTime(seconds: date + (night ? 22 * 3600 + within % 3600 : 8 * 3600 + within))
}
let now = EventTime(rfc3339: "2026-12-01T00:00:00Z")!

/// CPU time of this thread, in nanoseconds (the rate per CPU-second depends less on what
/// else the machine is running than wall time does).
func threadCPU() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// One timed segment: the engine over `count` events of the pool (trail indexes from
/// `first`). As in ingest, where the engine borrows an event the decoder just produced, each
/// event is moved out of the pool into a local (no copy: handing the engine an element of an
/// array would copy it and retain each of its strings, which ingest does not), processed,
/// and moved back. Alerts are collected, counted (and hashed for detect-digest) and the
/// buffer emptied.
@inline(never)
func detectSegment(_ pool: inout [AccessEvent], first: Int, count: Int, now: EventTime, engine: inout DetectionEngine,
                   out: inout [Alert], digest: inout AlertDigest?) -> Int {
    var alerts = 0
    pool.withUnsafeMutableBufferPointer { events in
    let base = events.baseAddress!
    for j in 0..<count {
        let e = (base + j).move()
        engine.process(e, index: UInt64(first + j), now: now, into: &out)
        (base + j).initialize(to: consume e)
        if !out.isEmpty {
            alerts += out.count
            if digest != nil { for a in out { digest!.add(a) } }
            out.removeAll(keepingCapacity: true)
        }
    }
    }
    return alerts
}

/// The run: segments of (at most) one pool's worth of events. Before each segment, untimed,
/// the pool's events are given their times; then the segment is timed (wall and CPU).
func run(_ pool: inout [AccessEvent], offHours: [Bool], total: Int, now: EventTime, monday: Int64,
         engine: inout DetectionEngine, digest: inout AlertDigest?, rates: inout [Double], cpuRates: inout [Double],
         timed: inout (wall: UInt64, cpu: UInt64)) -> Int {
    var out: [Alert] = []
    out.reserveCapacity(1024)
    var alerts = 0
    var processed = 0
    while processed < total {
        let n = min(pool.count, total - processed)
        for j in 0..<n { pool[j].time = time(processed + j, of: total, night: offHours[j], monday: monday) }
        let w0 = DispatchTime.now().uptimeNanoseconds, c0 = threadCPU()
        alerts += detectSegment(&pool, first: processed, count: n, now: now, engine: &engine, out: &out, digest: &digest)
        let w1 = DispatchTime.now().uptimeNanoseconds, c1 = threadCPU()
        rates.append(Double(n) / (Double(w1 - w0) / 1e9))
        cpuRates.append(Double(n) / (Double(c1 - c0) / 1e9))
        timed.wall += w1 - w0; timed.cpu += c1 - c0
        processed += n
    }
    let w0 = DispatchTime.now().uptimeNanoseconds, c0 = threadCPU()
    engine.flush(into: &out)
    timed.wall += DispatchTime.now().uptimeNanoseconds - w0; timed.cpu += threadCPU() - c0
    alerts += out.count
    if digest != nil { for a in out { digest!.add(a) } }
    return alerts
}

let before = rss("VmHWM:")
var rates: [Double] = [], cpuRates: [Double] = []
let fakeGeo: GeoLocator = { ip in
    let v = UInt32(truncatingIfNeeded: ip.low)
    let c = (v >> 8) & 0xFF, d = v & 0xFF
    if v >> 24 == 192 {   // the "unknown" addresses: all over the world
        return GeoLocation(countryISO: ["US", "BR", "JP", "ZA", "AU"][Int(d % 5)], city: "City \(d)",
                           latitude: Double(d % 160) - 80 + 0.25, longitude: Double((d * 37) % 360) - 180 + 0.5,
                           accuracyRadiusKm: Int(d % 3) * 50)
    }
    return GeoLocation(countryISO: "GB", city: "London", latitude: 51.5 + Double(c) / 1000, longitude: -0.12, accuracyRadiusKm: 20)
}
var engine = DetectionEngine(policy: policy, geo: geoMode ? fakeGeo : nil)
var digest: AlertDigest? = digestMode ? AlertDigest() : nil
var timed: (wall: UInt64, cpu: UInt64) = (0, 0)
let alertsRaised = run(&pool, offHours: offHours, total: total, now: now, monday: monday,
                       engine: &engine, digest: &digest, rates: &rates, cpuRates: &cpuRates, timed: &timed)
if var d = digest {
    print("detect-digest: \(total) events, \(identityCount) identities\(geoMode ? ", made-up GeoIP" : ""), \(d.alerts) alert entries; raised by class: \(engine.raised.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))")
    print("detect-digest: sha256 \(d.finish(engine))")
    exit(0)
}
let elapsed = Double(timed.wall) / 1e9
let cpuElapsed = Double(timed.cpu) / 1e9
let after = rss("VmHWM:")
let sorted = rates.sorted()
let median = sorted[sorted.count / 2]
let cpuSorted = cpuRates.sorted()
print("detect: \(total) events, \(identityCount) identities, \(alertsRaised) alert entries")
print("detect: \(String(format: "%.2f", elapsed)) s timed in all, \(Int(Double(total) / elapsed)) events/s overall; median of \(rates.count) segments of 1M: \(Int(median)) events/s (min \(Int(sorted.first!)), max \(Int(sorted.last!)))")
print("detect: \(String(format: "%.2f", cpuElapsed)) s of CPU (this thread), \(Int(Double(total) / cpuElapsed)) events per CPU-second overall; median of segments: \(Int(cpuSorted[cpuSorted.count / 2])) (min \(Int(cpuSorted.first!)), max \(Int(cpuSorted.last!)))")
print("memory: peak RSS \(before / 1024) MiB before the engine ran (the event pool), \(after / 1024) MiB after; engine state ≈ \((after - before) / 1024) MiB")
print("raised by class: \(engine.raised.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))")
