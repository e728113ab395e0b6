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

    /// An event within the event size limit whose alert would not be (a root login with a
    /// 25 KB name on a 25 KB path: the alert repeats both in its summary, dedup key, identity
    /// and secret) gets an alert shortened to fit the trail; the commit and every later one
    /// succeed, the trail verifies, and the event keeps the values whole.
    @Test func anAlertTooLargeForTheTrailIsShortenedNotAFailedCommit() throws {
        let dir = TempDir()
        let store = try DataStore(directory: dir.path, origin: "t.example/log")
        let yaml = """
            owners:
              sec: { name: Security team, notify: [ { webhook: "http://127.0.0.1:9/x" } ] }
            classes:
              break_glass: { action: alert, severity: critical, owner: sec, sla: 15m, playbook: PB-SEC-04 }
            """
        let loaded = try PolicyLoader.load(yaml: yaml, baseDirectory: NSTemporaryDirectory())
        let d = Detector(engine: DetectionEngine(policy: loaded.policy), clock: { EventTime(rfc3339: "2026-01-02T04:00:00Z")! })
        let name = String(repeating: "é", count: 12_500), path = "secret/data/" + String(repeating: "p", count: 25_000)
        var big = ev(1)
        big.identity = .init(id: "root-id", name: name, kind: .root)
        big.secret = .init(store: "secret/", path: path)
        #expect(big.canonicalJSON().count <= AccessEvent.maxEncodedSize)
        let alert = try #require(d.process([big], firstIndex: 0).first)
        #expect(alert.alertClass == .break_glass)
        #expect(alert.canonicalJSON().count <= AccessEvent.maxEncodedSize)
        let cutName = alert.identity.name ?? ""
        #expect(alert.summary.hasSuffix("bytes cut]"), "\(alert.summary.suffix(40))")
        #expect(cutName.hasSuffix("bytes cut]") && cutName.hasPrefix("ééé") && cutName.utf8.count < 5_000, "\(cutName.suffix(40))")

        let d2 = Detector(engine: DetectionEngine(policy: loaded.policy), clock: { EventTime(rfc3339: "2026-01-02T04:00:00Z")! })
        let first = try store.appendToTrail(GroupCommitter.encode([big]), detector: d2)
        #expect(first.result.accepted == 1)
        #expect(d2.raisedCount == 1 && first.extras.count == 1)
        // The trail took it and goes on taking commits.
        let second = try store.appendToTrail(GroupCommitter.encode([ev(2)]), detector: d2)
        #expect(second.result.accepted == 1)
        #expect(store.trail.size == 3)
        var kept: AccessEvent?
        try store.reader().forEachEntry(in: 0..<1) { _, bytes in kept = try? AccessEvent.decode(bytes) }
        #expect(kept?.id == big.id && kept?.identity.name == name && kept?.secret?.path == path, "the event in the trail lost its values")
        let report = TrailVerifier(layout: store.layout, verifier: try NoteVerifier(vkey: store.trail.checkpointVerifierKey)).verify()
        #expect(report.isValid)
        // Short fields are left alone; an alert that fits is returned as it is.
        #expect(Alert.cut("abc", to: 3) == "abc")
        #expect(Alert.cut("aé", to: 2) == "a…[2 bytes cut]")
        #expect(alert.fitted() == alert)
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
