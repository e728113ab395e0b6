@testable import CustosCore
import Foundation
import Testing

/// Alerts, silences and deliveries round-trip through their canonical form, and the
/// decoder refuses anything else (fuzz-style: mutated and truncated entries, random bytes,
/// deep nesting) with an error, never a crash.
@Suite struct TrailEntryTests {
    static let alert = Alert(
        id: "0123456789abcdef0123456789abcdef", status: .raised, alertClass: .unknown_ip, severity: .high,
        owner: .init(key: "sec", name: "Security \"team\""), raisedAt: EventTime(rfc3339: "2026-11-28T10:00:00.123Z")!,
        slaDeadline: EventTime(rfc3339: "2026-11-28T11:00:00.123Z")!, playbook: "PB-SEC-01",
        time: EventTime(rfc3339: "2026-11-28T09:59:59.123456789Z")!, lastTime: EventTime(rfc3339: "2026-11-28T09:59:59.123456789Z")!,
        secret: .init(store: "secret/", path: "secret/data/prod/db", environment: "prod"),
        identity: .init(id: "entity-1", name: "alice", kind: .human), action: .read, outcome: .denied,
        origin: .init(ip: "81.2.69.160", country: "GB", city: "London", latitude: 51.5142, longitude: -0.0931, countryOutside: false),
        count: 3, dedupKey: "unknown_ip:entity-1", evidence: [4, 9, 12], summary: "alice read secret/data/prod/db from 81.2.69.160 (London, GB)",
        details: ["window": "5m", "z": "ü\n"], silencedBy: nil)
    static let silence = Silence(id: "sil-1", alertClass: .off_hours, identity: "ci-*", secret: nil, owner: "alice",
                                 reason: "release night", createdAt: EventTime(rfc3339: "2026-11-28T10:00:00Z")!,
                                 expiresAt: EventTime(rfc3339: "2026-11-28T12:00:00Z")!)
    static let delivery = DeliveryRecord(alertID: alert.id, owner: "sec", targetKind: "webhook", endpoint: "http://127.0.0.1:9001",
                                         delivered: false, attempts: 4, error: "HTTP 503", notice: false,
                                         time: EventTime(rfc3339: "2026-11-28T10:00:01.5Z")!)

    static var entries: [TrailEntry] {
        var minimal = alert
        minimal.owner = nil; minimal.slaDeadline = nil; minimal.playbook = nil; minimal.secret = nil; minimal.origin = nil
        minimal.details = [:]; minimal.evidence = [5]; minimal.status = .updated; minimal.silencedBy = "sil-1"
        return [.alert(alert), .alert(minimal), .silence(silence), .delivery(delivery)]
    }

    @Test func roundTripsEveryKind() throws {
        for e in Self.entries {
            let bytes = e.canonicalJSON()
            #expect(try TrailEntry.decode(bytes) == e)
            #expect(GenericCanonical.check(bytes).problem == nil)
            #expect(GenericCanonical.check(bytes).schema == e.schema)
        }
        #expect(try Alert.decode(Self.alert.canonicalJSON()) == Self.alert)
    }

    @Test func eventsStillDecodeAsEvents() throws {
        let e = AccessEvent(id: "e1", time: EventTime(rfc3339: "2026-11-28T10:00:00Z")!, source: .init(kind: "openbao", instance: "a"),
                            action: .read, outcome: .success, secret: .init(path: "secret/data/x"), identity: .init(name: "n", kind: .service))
        #expect(try TrailEntry.decode(e.canonicalJSON()) == .event(e))
    }

    @Test func refusesNonCanonicalAndUnknown() {
        let good = String(decoding: Self.alert.canonicalJSON(), as: UTF8.self)
        let bad = [
            good.replacingOccurrences(of: "{\"action\"", with: "{ \"action\""),                 // whitespace
            good.replacingOccurrences(of: "\"count\":3", with: "\"count\":3.0"),                 // not an integer
            good.replacingOccurrences(of: "\"severity\":\"high\"", with: "\"severity\":\"urgent\""),
            good.replacingOccurrences(of: "\"class\":\"unknown_ip\"", with: "\"class\":\"made_up\""),
            good.replacingOccurrences(of: "\"schema\":\"custos.alert/v1\"", with: "\"schema\":\"custos.alert/v9\""),
            good.replacingOccurrences(of: "\"summary\"", with: "\"extra\":\"x\",\"summary\""),  // unknown key
            good.replacingOccurrences(of: "\"evidence\":[4,9,12]", with: "\"evidence\":[4,-9,12]"),
            String(good.dropLast()),
            "[]", "{}", "",
        ]
        for b in bad {
            #expect(throws: (any Error).self, "\(b.prefix(60))") { try TrailEntry.decode(Array(b.utf8)) }
        }
    }

    @Test func fuzzNeverCrashesAndOnlyAcceptsCanonical() {
        var rng = SeededRNG(seed: 0xC0FFEE)
        let seeds = Self.entries.map { $0.canonicalJSON() }
        var accepted = 0
        for round in 0..<4000 {
            var b = seeds[round % seeds.count]
            switch round % 5 {
            case 0: b = Array(b.prefix(Int(rng.next() % UInt64(b.count))))
            case 1:
                for _ in 0..<(1 + Int(rng.next() % 4)) { b[Int(rng.next() % UInt64(b.count))] = UInt8(truncatingIfNeeded: rng.next()) }
            case 2: b.insert(contentsOf: Array(repeating: UInt8(ascii: "["), count: 200 + Int(rng.next() % 5000)), at: 1 + Int(rng.next() % UInt64(b.count - 1)))
            case 3: b = (0..<Int(rng.next() % 300)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            default:
                let i = Int(rng.next() % UInt64(b.count)), j = Int(rng.next() % UInt64(b.count))
                b.swapAt(i, j)
            }
            if let e = try? TrailEntry.decode(b) {
                // Whatever is accepted is exactly the canonical encoding of what was decoded.
                accepted += 1
                if case .event = e { continue }
                #expect(e.canonicalJSON() == b)
            }
        }
        #expect(accepted < 4000)
    }
}
