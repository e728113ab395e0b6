import CustosCore
import Foundation

/// Group commit: concurrent callers' events are appended together in one durable commit
/// (one sync, one signed checkpoint), on a dedicated thread so that the blocking I/O never
/// holds a Swift concurrency thread. Each caller resumes when its own events are durable in
/// the trail; the index (derived data) follows on its own thread, and a read that must see
/// everything acknowledged first waits for it (`waitUntilIndexed`).
///
/// Three stages, each on its own thread, hand groups on in order:
/// - the commit thread stages each group (de-duplication, detection, hashing, trail files
///   written but not synced) as soon as it is taken, while earlier groups are being synced;
/// - the sync worker makes every group staged so far durable with one sync and one signed
///   checkpoint, then answers their callers; so a sync covers all that arrived during the
///   one before it, however many requests that was;
/// - the index worker indexes acknowledged groups in order.
/// Each hand-over is bounded (`maxBatch` events staged ahead of the sync, four times that
/// acknowledged ahead of the index): memory stays bounded, and a stage that falls behind
/// holds the one before it back.
public final class GroupCommitter: @unchecked Sendable {
    public typealias Result = DataStore.AppendResult

    /// Guards the queues; the commit thread waits on it while a lingering batch fills.
    private let lock = NSCondition()
    public typealias Completion = @Sendable (Swift.Result<Result, any Error>) -> Void
    /// A call waiting for a commit. `linger`: it may wait up to `linger` after `enqueued`
    /// (monotonic ns) for others to share its commit.
    private struct Call {
        /// The caller's events, encoded by the caller (not on the commit thread).
        var events: EventBatch
        var complete: Completion
        var linger: Bool
        var enqueued: UInt64
    }
    private var pending: [Call] = []
    private var pendingEvents = 0
    /// Non-event entries (silences, deliveries) waiting for the commit thread, each appended alone.
    private var pendingEntries: [(entries: [TrailEntry], continuation: CheckedContinuation<Range<UInt64>, any Error>)] = []
    /// Runs on the committed events (on the commit thread), its alerts appended right after them.
    private let detector: Detector?
    private let onAlerts: (@Sendable ([Alert]) -> Void)?
    private var running = false
    /// A group staged on the commit thread, waiting for a sync.
    private struct StagedGroup {
        var calls: [Call]
        var pending: DataStore.Pending
        var events: Int
    }
    /// A group acknowledged (durable, its callers answered), waiting for the index.
    private struct AcknowledgedGroup {
        var number: UInt64
        var staged: DataStore.Staged
        var events: Int
    }
    /// Guards the hand-overs between the stages (`unsynced`, `unindexed` and whether their
    /// workers run); each stage waits on it while the next one is full.
    private let stages = NSCondition()
    private var unsynced: [StagedGroup] = []
    private var unsyncedEvents = 0
    private var syncing = false
    private var unindexed: [AcknowledgedGroup] = []
    private var unindexedEvents = 0
    private var indexing = false
    /// Syncing and signing of staged groups (all staged so far at once), in order.
    private let syncQueue = DispatchQueue(label: "custos-sync")
    /// Indexing of acknowledged groups, in order, behind the trail.
    private let indexQueue = DispatchQueue(label: "custos-index")
    private let store: DataStore
    /// Upper bound on events per commit (callers beyond it wait for the next commit).
    public let maxBatch: Int
    /// How long events submitted with `linger` may wait for others to share their commit
    /// (config `limits.commit_linger_ms`): a listener without a per-record acknowledgement that
    /// reads on while its events are committed gets one commit (one fsync, one signed
    /// checkpoint) per `linger` instead of one per read. A call without linger, or `maxBatch`
    /// events waiting, ends the wait at once.
    public let linger: Duration
    /// Test hook: runs on the commit thread before each commit with the number of waiting calls.
    let beforeCommit: (@Sendable (Int) -> Void)?
    /// Test hook: runs on the index thread before each event group is indexed; throwing from
    /// it fails that indexing.
    let beforeIndex: (@Sendable () throws -> Void)?
    /// Test hook: runs on the sync worker before each sync with the number of groups it covers.
    let beforeSync: (@Sendable (Int) -> Void)?
    private var commitCount = 0
    private var syncCount = 0
    /// Event groups acknowledged (durable in the trail) and indexed so far, the first index
    /// failure, and the reads waiting for the index to reach a group. Guarded by `indexLock`.
    private let indexLock = NSLock()
    private var groupsAcknowledged: UInt64 = 0
    private var groupsIndexed: UInt64 = 0
    private var indexError: (any Error)?
    private var indexWaiters: [(group: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []

    public init(store: DataStore, maxBatch: Int = 65_536, linger: Duration = .zero, beforeCommit: (@Sendable (Int) -> Void)? = nil,
                detector: Detector? = nil, onAlerts: (@Sendable ([Alert]) -> Void)? = nil,
                beforeIndex: (@Sendable () throws -> Void)? = nil, beforeSync: (@Sendable (Int) -> Void)? = nil) {
        self.store = store
        self.detector = detector
        self.onAlerts = onAlerts
        self.maxBatch = max(1, maxBatch)
        self.linger = max(.zero, linger)
        self.beforeCommit = beforeCommit
        self.beforeIndex = beforeIndex
        self.beforeSync = beforeSync
    }

    /// Number of groups committed so far (each staged as one, acknowledged together).
    public var commits: Int { lock.withLock { commitCount } }

    /// Number of syncs (each with one signed checkpoint) made so far: one covers every group
    /// staged while the one before it ran.
    public var syncs: Int { lock.withLock { syncCount } }

    /// Why the index stopped following the trail (nil while it does). The trail goes on
    /// taking events; the index is rebuilt from it on the next start.
    public var indexFailure: (any Error)? { indexLock.withLock { indexError } }

    /// Returns once every event group acknowledged before the call is indexed too, so that a
    /// query finds everything an answer acknowledged; throws if indexing failed.
    public func waitUntilIndexed() async throws {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
            let now: Swift.Result<Void, any Error>? = indexLock.withLock {
                if let indexError { return .failure(indexError) }
                if groupsIndexed >= groupsAcknowledged { return .success(()) }
                indexWaiters.append((groupsAcknowledged, c))
                return nil
            }
            if let now { c.resume(with: now) }
        }
    }

    /// Number of groups staged and waiting for a sync (not counting one being synced).
    var stagedGroups: Int { stages.withLock { unsynced.count } }

    /// Number of calls waiting for a commit.
    public var waiting: Int { lock.withLock { pending.count } }

    public func append(_ events: [AccessEvent]) async throws -> Result {
        try await append(batch: Self.encode(events))
    }

    /// `append(_:)` for events already in canonical form (`EventBatch`).
    public func append(batch: EventBatch) async throws -> Result {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Result, any Error>) in
            enqueue { add(Call(events: batch, complete: { c.resume(with: $0) }, linger: false, enqueued: 0)) }
        }
    }

    /// Enqueues `events` at once (in call order) and calls `done` on the commit thread when
    /// they are durable or the commit failed. For a listener that reads on while its earlier
    /// events are committed; with `linger`, the commit may wait up to `self.linger` for more.
    public func submit(_ events: [AccessEvent], linger: Bool, done: @escaping Completion) {
        submit(batch: Self.encode(events), linger: linger, done: done)
    }

    /// `submit(_:linger:done:)` for events already in canonical form (`EventBatch`).
    public func submit(batch: EventBatch, linger: Bool, done: @escaping Completion) {
        enqueue { add(Call(events: batch, complete: done, linger: linger && self.linger > .zero,
                           enqueued: DispatchTime.now().uptimeNanoseconds)) }
    }

    /// Canonical encoding on the caller's thread: concurrent requests encode in parallel and
    /// the commit thread only concatenates.
    static func encode(_ events: [AccessEvent]) -> EventBatch {
        var b = EventBatch(capacity: events.count)
        for e in events { b.append(e) }
        return b
    }

    /// Under the lock.
    private func add(_ call: Call) {
        pending.append(call)
        pendingEvents += call.events.count
        if !call.linger || pendingEvents >= maxBatch { lock.signal() }
    }

    /// Appends entries that are not events (silences, deliveries) on the commit thread, in
    /// order with the events; returns their trail indices once durable and indexed.
    public func appendEntries(_ entries: [TrailEntry]) async throws -> Range<UInt64> {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Range<UInt64>, any Error>) in
            enqueue { pendingEntries.append((entries, c)); lock.signal() }
        }
    }

    /// Adds work under the lock and starts the commit thread unless it is running.
    private func enqueue(_ add: () -> Void) {
        let start: Bool = lock.withLock {
            add()
            if running { return false }
            running = true
            return true
        }
        if start {
            let t = Thread { [self] in self.drain() }
            t.name = "custos-commit"
            t.start()
        }
    }

    private func drain() {
        while true {
            let entryWork: (entries: [TrailEntry], continuation: CheckedContinuation<Range<UInt64>, any Error>)? = lock.withLock {
                pendingEntries.isEmpty ? nil : pendingEntries.removeFirst()
            }
            if let w = entryWork {
                // Entries are appended and indexed here: first let the staged groups' syncs and
                // then the index catch up.
                stages.withLock {
                    while syncing || indexing { stages.wait() }
                }
                do { w.continuation.resume(returning: try store.appendEntries(w.entries)) } catch { w.continuation.resume(throwing: error) }
                continue
            }
            lingerWait()
            let waitingNow = lock.withLock { pending.count }
            beforeCommit?(waitingNow)
            let (batch, stop): ([Call], Bool) = lock.withLock {
                var taken = 0
                var n = 0
                while n < pending.count && (n == 0 || taken + pending[n].events.count <= maxBatch) {
                    taken += pending[n].events.count
                    n += 1
                }
                let b = Array(pending.prefix(n))
                pending.removeFirst(n)
                pendingEvents -= taken
                if b.isEmpty && pendingEntries.isEmpty { running = false; return (b, true) }
                return (b, false)
            }
            if stop { return }
            if batch.isEmpty { continue }   // entries arrived meanwhile
            var all = batch[0].events
            for call in batch.dropFirst() { all.append(contentsOf: call.events) }
            // Staged here (de-duplicated, detection run, trail files written); synced and
            // signed by the sync worker, with every other group staged meanwhile.
            let pendingGroup: DataStore.Pending
            do {
                pendingGroup = try store.stage(all, detector: detector)
            } catch {
                for call in batch { call.complete(.failure(error)) }
                continue
            }
            let startSync: Bool = stages.withLock {
                while unsyncedEvents > 0 && unsyncedEvents + all.count > maxBatch { stages.wait() }
                unsynced.append(StagedGroup(calls: batch, pending: pendingGroup, events: all.count))
                unsyncedEvents += all.count
                if syncing { return false }
                syncing = true
                return true
            }
            if startSync { syncQueue.async { [self] in syncWorker() } }
        }
    }

    /// On the sync queue, while groups are staged: makes all of them durable with one sync
    /// and one signed checkpoint, answers their callers, and goes on with those staged meanwhile.
    private func syncWorker() {
        while true {
            let groups: [StagedGroup] = stages.withLock {
                let g = unsynced
                if g.isEmpty { syncing = false }
                unsynced = []
                unsyncedEvents = 0
                stages.broadcast()
                return g
            }
            if groups.isEmpty { return }
            beforeSync?(groups.count)
            let outcome = Swift.Result { try store.complete(groups.map(\.pending)) }
            lock.withLock { syncCount += 1 }
            switch outcome {
            case .failure(let error):
                for g in groups { for call in g.calls { call.complete(.failure(error)) } }
            case .success(let staged):
                for (g, s) in zip(groups, staged) { acknowledge(g.calls, s, events: g.events) }
            }
        }
    }

    /// On the sync queue: `batch`'s events are durable and covered by a signed checkpoint, so
    /// its callers hear back now; then the group goes to the index.
    private func acknowledge(_ batch: [Call], _ staged: DataStore.Staged, events: Int) {
        lock.withLock { commitCount += 1 }
        // A read that must find these events waits for the index (`waitUntilIndexed`).
        let group: UInt64 = indexLock.withLock { groupsAcknowledged += 1; return groupsAcknowledged }
        let r = staged.result
        var offset = 0
        for call in batch {
            let n = call.events.count
            let mine = Array(r.indices[offset..<(offset + n)])
            offset += n
            let accepted = mine.compactMap { $0 }
            let range = accepted.isEmpty ? r.range.upperBound..<r.range.upperBound : accepted.min()!..<(accepted.max()! + 1)
            call.complete(.success(Result(accepted: accepted.count, duplicates: mine.count - accepted.count,
                                          range: range, indices: mine)))
        }
        // The index runs on its own queue while the next groups are synced (in order, a
        // bounded number behind).
        let startIndex: Bool = stages.withLock {
            while unindexedEvents > 0 && unindexedEvents + events > 4 * maxBatch { stages.wait() }
            unindexed.append(AcknowledgedGroup(number: group, staged: staged, events: events))
            unindexedEvents += events
            if indexing { return false }
            indexing = true
            return true
        }
        if startIndex { indexQueue.async { [self] in indexWorker() } }
    }

    /// On the index queue, while acknowledged groups wait: indexes them in order. After a
    /// failure it stops indexing: the index then holds a prefix of the trail (never one with
    /// a gap), caught up on the next start.
    private func indexWorker() {
        while true {
            let groups: [AcknowledgedGroup] = stages.withLock {
                if unindexed.isEmpty { indexing = false; stages.broadcast() }
                return unindexed
            }
            if groups.isEmpty { return }
            for g in groups { index(g) }
            stages.withLock {
                unindexed.removeFirst(groups.count)
                unindexedEvents -= groups.reduce(0) { $0 + $1.events }
                stages.broadcast()
            }
        }
    }

    private func index(_ g: AcknowledgedGroup) {
        let (group, staged) = (g.number, g.staged)
        var failure: (any Error)? = indexLock.withLock { indexError }
        if failure == nil {
            do {
                try beforeIndex?()
                try store.index(staged)
            } catch { failure = error }
        }
        let wake: [(group: UInt64, continuation: CheckedContinuation<Void, any Error>)] = indexLock.withLock {
            if let failure, indexError == nil { indexError = failure }
            groupsIndexed = group
            let ready = indexWaiters.filter { indexError != nil || $0.group <= group }
            indexWaiters.removeAll { indexError != nil || $0.group <= group }
            return ready
        }
        for w in wake {
            if let failure { w.continuation.resume(throwing: failure) } else { w.continuation.resume() }
        }
        // The alerts are in the trail whatever became of the index: their owners hear of them.
        if let onAlerts, !staged.extras.isEmpty {
            onAlerts(staged.extras.compactMap { if case .alert(let a) = $0 { return a } else { return nil } })
        }
    }

    /// While only lingering calls wait, fewer than `maxBatch` events in all, and no entries:
    /// waits until the oldest has lingered `linger` (or a signal from `add`).
    private func lingerWait() {
        guard linger > .zero else { return }
        let lingerNs = UInt64(linger.nanoseconds)
        lock.lock()
        defer { lock.unlock() }
        while !pending.isEmpty, pendingEntries.isEmpty, pendingEvents < maxBatch, pending.allSatisfy(\.linger) {
            let deadline = pending[0].enqueued + lingerNs
            let now = DispatchTime.now().uptimeNanoseconds
            if now >= deadline { return }
            _ = lock.wait(until: Date(timeIntervalSinceNow: Double(deadline - now) / 1e9))
        }
    }
}
