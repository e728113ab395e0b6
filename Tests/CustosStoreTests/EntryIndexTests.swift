@testable import CustosCore
import CustosStore
import Foundation
import Testing

/// Alerts and the other non-event entries, on every index backend: they take their trail
/// positions, advance the size, never show up as events, and filter the same way.
@Suite struct EntryIndexTests {
    static func alert(_ n: Int, _ c: AlertClass, owner: String?, status: Alert.Status = .raised, silenced: Bool = false,
                      path: String = "secret/data/prod/db", name: String = "alice", second: Int64 = 0) -> Alert {
        let t = EventTime(seconds: 1_750_000_000 + second, digits: 0)
        return Alert(id: "a\(n)", status: status, alertClass: c, severity: c == .break_glass ? .critical : .high,
                     owner: owner.map { .init(key: $0, name: $0) }, raisedAt: t, slaDeadline: nil, playbook: nil, time: t, lastTime: t,
                     secret: .init(path: path), identity: .init(id: "id-" + name, name: name, kind: .human), action: .read,
                     outcome: .success, origin: nil, count: 1, dedupKey: "k\(n)", evidence: [0], summary: "s",
                     details: [:], silencedBy: silenced ? "sil-1" : nil)
    }

    static let silence = Silence(id: "sil-1", alertClass: .off_hours, identity: nil, secret: nil, owner: "o", reason: "r",
                                 createdAt: EventTime(seconds: 1_750_000_000, digits: 0), expiresAt: EventTime(seconds: 1_750_003_600, digits: 0))

    func filled(_ b: Backend) throws -> (any EventIndex, () -> Void) {
        let (idx, cleanup) = try b.make()
        // events 0-1, alert 2, silence 3, events 4-5, alerts 6-8, delivery 9
        try idx.append(Array(corpus[0..<2]), firstIndex: 0, origin: "o.example/t")
        try idx.append(entries: [.alert(Self.alert(1, .break_glass, owner: "lead")), .silence(Self.silence)], firstIndex: 2, origin: "o.example/t")
        try idx.append(entries: [.event(corpus[2]), .event(corpus[3]),
                                 .alert(Self.alert(2, .unknown_ip, owner: "sec", path: "secret/data/dev/x", name: "bob", second: 100)),
                                 .alert(Self.alert(1, .break_glass, owner: "lead", status: .updated)),
                                 .alert(Self.alert(3, .off_hours, owner: "sec", silenced: true, second: 200)),
                                 .delivery(DeliveryRecord(alertID: "a1", owner: "lead", targetKind: "webhook", endpoint: "http://127.0.0.1:1",
                                                          delivered: true, attempts: 1, error: nil, notice: false,
                                                          time: EventTime(seconds: 1_750_000_001, digits: 0)))],
                           firstIndex: 4, origin: "o.example/t")
        return (idx, cleanup)
    }

    @Test(arguments: Backend.allCases)
    func mixedEntriesKeepTheirPositions(_ b: Backend) throws {
        let (idx, cleanup) = try filled(b)
        defer { cleanup() }
        #expect(try idx.indexedSize() == 10)
        #expect(try idx.query(EventQuery()) == [0, 1, 4, 5])
        #expect(try idx.count(EventQuery()) == 4)
        #expect(try idx.allEventIDs().count == 4)
        #expect(try idx.alertEntries(AlertQuery()) == [2, 6, 7, 8])
        #expect(try idx.entries(schema: Silence.schema) == [3])
        #expect(try idx.entries(schema: DeliveryRecord.schema) == [9])
        #expect(try idx.entries(schema: "custos.other/v1") == [])
        // Appends stay contiguous whatever the kind.
        #expect(throws: IndexError.self) { try idx.append(entries: [.silence(Self.silence)], firstIndex: 9, origin: "o.example/t") }
        #expect(throws: IndexError.self) { try idx.append(entries: [.silence(Self.silence)], firstIndex: 10, origin: "other.example/t") }
        try idx.reset()
        #expect(try idx.alertEntries(AlertQuery()) == [])
        #expect(try idx.entries(schema: Silence.schema) == [])
    }

    @Test(arguments: Backend.allCases)
    func alertFilters(_ b: Backend) throws {
        let (idx, cleanup) = try filled(b)
        defer { cleanup() }
        func q(_ f: (inout AlertQuery) -> Void) throws -> [UInt64] { var q = AlertQuery(); f(&q); return try idx.alertEntries(q) }
        #expect(try q { $0.classes = [.break_glass] } == [2, 7])
        #expect(try q { $0.classes = [.break_glass]; $0.statuses = [.raised] } == [2])
        #expect(try q { $0.statuses = [.updated] } == [7])
        #expect(try q { $0.owners = ["sec"] } == [6, 8])
        #expect(try q { $0.severities = [.critical] } == [2, 7])
        #expect(try q { $0.ids = ["a2", "a3"] } == [6, 8])
        #expect(try q { $0.secret = "secret/data/dev/*" } == [6])
        #expect(try q { $0.identity = "bo?" } == [6])
        #expect(try q { $0.identity = "id-alice" } == [2, 7, 8])
        #expect(try q { $0.silenced = false } == [2, 6, 7])
        #expect(try q { $0.silenced = true } == [8])
        #expect(try q { $0.from = EventTime(seconds: 1_750_000_100, digits: 0) } == [6, 8])
        #expect(try q { $0.to = EventTime(seconds: 1_750_000_100, digits: 0) } == [2, 7])
        #expect(try q { $0.limit = 1 } == [2])
    }
}
