import CustosCore
import CustosTrail
import Foundation

/// Runs a policy's detectors over the events an ingest appends, in trail order, and keeps
/// what the run raised. Used from one thread at a time (the trail stage of ingest, then
/// the caller once everything is durable).
///
/// State lives in memory. A new run first replays the most recent events of the trail
/// silently (`warmUp`), so that windows, baselines and folds that span two runs behave as
/// if the input had been one; the alerts of those events are already in the trail and are
/// not raised again.
public final class Detector: @unchecked Sendable {
    private var engine: DetectionEngine
    private let clock: @Sendable () -> EventTime
    /// Alerts appended to the trail by this run (raised and updated), at most `keepLimit`
    /// kept for notification; `raisedCount` keeps counting.
    public private(set) var recordedAlerts: [Alert] = []
    public private(set) var raisedCount = 0
    public private(set) var updatedCount = 0
    public private(set) var silencedCount = 0
    public private(set) var byClass: [AlertClass: Int] = [:]
    public private(set) var replayed = 0
    public static let keepLimit = 100_000

    public init(engine: DetectionEngine, clock: @escaping @Sendable () -> EventTime = { EventTime(unixTime: Date().timeIntervalSince1970) }) {
        self.engine = engine
        self.clock = clock
    }

    public var policy: Policy { engine.policy }

    /// Events per class that were logged only (routine, or a class the policy does not alert on).
    public var logged: [AlertClass: Int] { engine.logged }

    /// Loads the silences recorded in `store`'s trail and replays its last `limit` entries
    /// (events only) without raising anything. Returns the number of events replayed.
    @discardableResult
    public func warmUp(store: DataStore, limit: Int) throws -> Int {
        engine.silences = try store.silences()
        let end = store.trail.size
        let start = end > UInt64(max(0, limit)) ? end - UInt64(max(0, limit)) : 0
        guard start < end else { return 0 }
        var discard: [Alert] = []
        let now = clock()
        var n = 0
        try store.reader().forEachEntry(in: start..<end) { i, bytes in
            guard let e = try? AccessEvent.decode(bytes) else { return }   // alerts, silences, deliveries
            engine.process(e, index: i, now: now, into: &discard)
            discard.removeAll(keepingCapacity: true)
            n += 1
        }
        engine.markRecorded()
        replayed = n
        return n
    }

    /// Adds a silence for the rest of this run (it is recorded in the trail by the caller).
    public func addSilence(_ s: Silence) { engine.silences.append(s) }

    /// The alerts `events` (at trail indices `firstIndex...`) raise or close.
    func process(_ events: [AccessEvent], firstIndex: UInt64) -> [Alert] {
        var out: [Alert] = []
        let now = clock()
        for (k, e) in events.enumerated() {
            engine.process(e, index: firstIndex + UInt64(k), now: now, into: &out)
        }
        return out.map { $0.fitted() }
    }

    /// Notes alerts that are now durable in the trail.
    func recorded(_ alerts: [Alert]) {
        for a in alerts {
            switch a.status {
            case .raised:
                raisedCount += 1
                byClass[a.alertClass, default: 0] += 1
                if a.silencedBy != nil { silencedCount += 1 }
            case .updated: updatedCount += 1
            }
            if recordedAlerts.count < Self.keepLimit { recordedAlerts.append(a) }
        }
    }

    /// Closes the folds still open (end of input) and records their `updated` entries.
    public func finish(store: DataStore) throws {
        var out: [Alert] = []
        engine.flush(into: &out)
        guard !out.isEmpty else { return }
        out = out.map { $0.fitted() }
        try store.appendEntries(out.map { .alert($0) })
        recorded(out)
    }
}
