import CustosCore
import Foundation

/// Group commit: concurrent callers' events are appended together in one durable commit
/// (one sync, one signed checkpoint), on a dedicated thread so that the blocking I/O never
/// holds a Swift concurrency thread. Each caller resumes when its own events are durable.
public final class GroupCommitter: @unchecked Sendable {
    public typealias Result = DataStore.AppendResult

    private let lock = NSLock()
    private var pending: [(events: [AccessEvent], continuation: CheckedContinuation<Result, any Error>)] = []
    /// Non-event entries (silences, deliveries) waiting for the commit thread, each appended alone.
    private var pendingEntries: [(entries: [TrailEntry], continuation: CheckedContinuation<Range<UInt64>, any Error>)] = []
    /// Runs on the committed events (on the commit thread), its alerts appended right after them.
    private let detector: Detector?
    private let onAlerts: (@Sendable ([Alert]) -> Void)?
    private var running = false
    private let store: DataStore
    /// Upper bound on events per commit (callers beyond it wait for the next commit).
    public let maxBatch: Int
    /// Test hook: runs on the commit thread before each commit with the number of waiting calls.
    let beforeCommit: (@Sendable (Int) -> Void)?
    private var commitCount = 0

    public init(store: DataStore, maxBatch: Int = 65_536, beforeCommit: (@Sendable (Int) -> Void)? = nil,
                detector: Detector? = nil, onAlerts: (@Sendable ([Alert]) -> Void)? = nil) {
        self.store = store
        self.detector = detector
        self.onAlerts = onAlerts
        self.maxBatch = max(1, maxBatch)
        self.beforeCommit = beforeCommit
    }

    /// Number of commits made so far.
    public var commits: Int { lock.withLock { commitCount } }

    /// Number of calls waiting for a commit.
    public var waiting: Int { lock.withLock { pending.count } }

    public func append(_ events: [AccessEvent]) async throws -> Result {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Result, any Error>) in
            enqueue { pending.append((events, c)) }
        }
    }

    /// Appends entries that are not events (silences, deliveries) on the commit thread, in
    /// order with the events; returns their trail indices once durable and indexed.
    public func appendEntries(_ entries: [TrailEntry]) async throws -> Range<UInt64> {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Range<UInt64>, any Error>) in
            enqueue { pendingEntries.append((entries, c)) }
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
                do { w.continuation.resume(returning: try store.appendEntries(w.entries)) } catch { w.continuation.resume(throwing: error) }
                continue
            }
            let waitingNow = lock.withLock { pending.count }
            beforeCommit?(waitingNow)
            let (batch, stop): ([(events: [AccessEvent], continuation: CheckedContinuation<Result, any Error>)], Bool) = lock.withLock {
                var taken = 0
                var n = 0
                while n < pending.count && (n == 0 || taken + pending[n].events.count <= maxBatch) {
                    taken += pending[n].events.count
                    n += 1
                }
                let b = Array(pending.prefix(n))
                pending.removeFirst(n)
                if b.isEmpty && pendingEntries.isEmpty { running = false; return (b, true) }
                return (b, false)
            }
            if stop { return }
            if batch.isEmpty { continue }   // entries arrived meanwhile
            let all = batch.flatMap(\.events)
            do {
                var staged = try store.appendToTrail(all)
                if let detector { try store.detect(&staged, with: detector) }
                try store.index(staged)
                if let onAlerts, !staged.extras.isEmpty {
                    onAlerts(staged.extras.compactMap { if case .alert(let a) = $0 { return a } else { return nil } })
                }
                let r = staged.result
                lock.withLock { commitCount += 1 }
                var offset = 0
                for call in batch {
                    let mine = Array(r.indices[offset..<(offset + call.events.count)])
                    offset += call.events.count
                    let accepted = mine.compactMap { $0 }
                    let range = accepted.isEmpty ? r.range.upperBound..<r.range.upperBound : accepted.min()!..<(accepted.max()! + 1)
                    call.continuation.resume(returning: Result(accepted: accepted.count, duplicates: mine.count - accepted.count,
                                                               range: range, indices: mine))
                }
            } catch {
                for call in batch { call.continuation.resume(throwing: error) }
            }
        }
    }
}
