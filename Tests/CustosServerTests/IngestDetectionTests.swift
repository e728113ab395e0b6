import CustosAlerting
import CustosCore
@testable import CustosServer
import CustosStore
import CustosTrail
import Foundation
import Testing

/// `custos ingest --policy`: detection runs on what is appended, alerts land in the trail
/// right after their events, state carries across runs, silences in the trail apply.
@Suite struct IngestDetectionTests {
    static let policyYAML = """
        owners:
          sec: { name: Security team, notify: [ { webhook: "http://127.0.0.1:9/x" } ] }
        classes:
          failed_threshold: { action: alert, severity: high, owner: sec, sla: 1h, playbook: PB-SEC-01, count: 3, window: 5m }
        """

    static func detector(clock: EventTime = EventTime(rfc3339: "2026-01-02T04:00:00Z")!) throws -> Detector {
        let loaded = try PolicyLoader.load(yaml: policyYAML, baseDirectory: NSTemporaryDirectory())
        return Detector(engine: DetectionEngine(policy: loaded.policy), clock: { clock })
    }

    /// Denied reads of one secret at the given minute:second offsets after 03:00.
    static func denials(_ offsets: [(Int, Int)], prefix: String) -> String {
        offsets.enumerated().map { i, o in
            vaultPair(id: "\(prefix)-\(i)", path: "secret/data/prod/db", name: "token-ci", error: "permission denied",
                      time: String(format: "2026-01-02T03:%02d:%02d.000000001Z", o.0, o.1))
        }.joined()
    }

    /// Ingests `text` with a fresh detector (as one `custos ingest --policy` run does).
    @discardableResult
    static func run(_ dir: TempDir, _ name: String, _ text: String, warmup: Int = 1_000_000) throws -> (Detector, IngestSummary) {
        let store = try DataStore(directory: dir.path, origin: "t.example/log")
        let d = try detector()
        try d.warmUp(store: store, limit: warmup)
        let ing = Ingestor(store: store, format: .openbao, instance: "t", batchSize: 2, detector: d)
        try ing.ingest(path: dir.write(name, text))
        return (d, try ing.finish())
    }

    static func alerts(_ dir: TempDir) throws -> [(index: UInt64, alert: Alert)] {
        try EventReader(directory: dir.path).alerts(AlertQuery())
    }

    @Test func thresholdAlertIsRecordedAfterItsEvidence() throws {
        let dir = TempDir()
        let (d, s) = try Self.run(dir, "a.log", Self.denials([(0, 0), (1, 0), (2, 0), (3, 0)], prefix: "a"))
        #expect(s.accepted == 4)
        #expect(d.raisedCount == 1 && d.updatedCount == 1)
        let list = try Self.alerts(dir)
        #expect(list.count == 2)
        let raised = try #require(list.first)
        #expect(raised.alert.status == .raised && raised.alert.alertClass == .failed_threshold)
        #expect(raised.alert.evidence == [0, 1, 2])
        #expect(raised.alert.evidence.allSatisfy { $0 < raised.index })
        #expect(raised.alert.owner?.key == "sec" && raised.alert.playbook == "PB-SEC-01")
        #expect(raised.alert.slaDeadline == EventTime(rfc3339: "2026-01-02T05:00:00Z"))
        // The fourth failure is folded into it and recorded when the run ends.
        #expect(list[1].alert.status == .updated && list[1].alert.id == raised.alert.id && list[1].alert.count == 4)
        // Events and alerts: all of them in one verifiable trail; events queries see events only.
        let reader = try EventReader(directory: dir.path)
        #expect(try reader.count(EventQuery()) == 4)
        #expect(reader.trail.size == 6)
    }

    @Test func nearMissRaisesNothing() throws {
        let dir = TempDir()
        // 2 failures in 5 minutes; then 3 spread over 6 minutes (a separate secret's worth of time).
        let (d, _) = try Self.run(dir, "a.log", Self.denials([(0, 0), (4, 0), (10, 0), (13, 0), (16, 1)], prefix: "n"))
        #expect(d.raisedCount == 0)
        #expect(try Self.alerts(dir).isEmpty)
    }

    @Test func windowsContinueAcrossRunsAndReplaysRaiseNothingTwice() throws {
        let dir = TempDir()
        let first = Self.denials([(0, 0), (1, 0)], prefix: "r1")
        try Self.run(dir, "1.log", first)
        #expect(try Self.alerts(dir).isEmpty)
        // The third failure arrives in the next run: the warm-up replay remembers the first two.
        let (d2, _) = try Self.run(dir, "2.log", Self.denials([(2, 0)], prefix: "r2"))
        #expect(d2.raisedCount == 1)
        let list = try Self.alerts(dir)
        #expect(list.map(\.alert.evidence) == [[0, 1, 2]])
        // Ingesting the same files again: duplicates, no new alert, no new fold update.
        let (d3, s3) = try Self.run(dir, "3.log", first + Self.denials([(2, 0)], prefix: "r2"))
        #expect(s3.duplicates == 3 && s3.accepted == 0)
        #expect(d3.raisedCount == 0 && d3.updatedCount == 0)
        #expect(try Self.alerts(dir).count == 1)
        // Without the warm-up the next failure would not be seen as part of the burst.
        let (d4, _) = try Self.run(dir, "4.log", Self.denials([(3, 0)], prefix: "r4"), warmup: 0)
        #expect(d4.raisedCount == 0)
    }

    @Test func silencesInTheTrailApplyAndAreKept() throws {
        let dir = TempDir()
        do {
            let store = try DataStore(directory: dir.path, origin: "t.example/log")
            let s = Silence(id: "sil-test", alertClass: .failed_threshold, identity: "token-*", secret: nil, owner: "alice",
                            reason: "pen test", createdAt: EventTime(rfc3339: "2026-01-02T00:00:00Z")!,
                            expiresAt: EventTime(rfc3339: "2026-01-03T00:00:00Z")!)
            #expect(try store.appendEntries([.silence(s)]) == 0..<1)
        }
        let (d, _) = try Self.run(dir, "a.log", Self.denials([(0, 0), (1, 0), (2, 0)], prefix: "s"))
        #expect(d.raisedCount == 1 && d.silencedCount == 1)
        let a = try #require(try Self.alerts(dir).first)
        #expect(a.alert.silencedBy == "sil-test")
        #expect(try EventReader(directory: dir.path).silences().map(\.id) == ["sil-test"])
    }

    @Test func reindexRebuildsAlertsAndEntriesFromTheTrail() throws {
        let dir = TempDir()
        try Self.run(dir, "a.log", Self.denials([(0, 0), (1, 0), (2, 0), (2, 30)], prefix: "x"))
        let before = try Self.alerts(dir).map { $0.index }
        let deliveries: [TrailEntry] = [.delivery(DeliveryRecord(alertID: "x", owner: "sec", targetKind: "webhook", endpoint: "http://127.0.0.1:9",
                                                                 delivered: false, attempts: 4, error: "connection refused", notice: false,
                                                                 time: EventTime(rfc3339: "2026-01-02T04:00:00Z")!))]
        do { try DataStore(directory: dir.path).appendEntries(deliveries) }
        #expect(try EventReader.rebuildIndex(directory: dir.path) == 7)
        let reader = try EventReader(directory: dir.path)
        #expect(try reader.alerts(AlertQuery()).map(\.index) == before)
        #expect(try reader.deliveries().map(\.error) == ["connection refused"])
        #expect(try reader.count(EventQuery()) == 4)
        // And the verifier accepts the mixed trail.
        let vkey = String(decoding: FileManager.default.contents(atPath: dir.path + "/keys/trail.vkey")!, as: UTF8.self)
        let v = TrailVerifier(layout: TrailLayout(dataDirectory: dir.path),
                              verifier: try NoteVerifier(vkey: vkey.trimmingCharacters(in: .whitespacesAndNewlines))).verify()
        #expect(v.problems.isEmpty)
    }
}
