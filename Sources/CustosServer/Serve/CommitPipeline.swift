import CustosCore
import Foundation

/// The events one connection of a listener without a per-record acknowledgement (the audit
/// socket device) has read and handed to the group committer, but that are not durable yet.
///
/// The reader goes on reading while they are committed, and its events wait up to
/// `limits.commit_linger_ms` for others, so that under load one commit (one fsync, one signed
/// checkpoint, one index transaction) covers everything that arrived meanwhile instead of one
/// read's worth. It stops reading when `limit` events are in flight (TCP's window then fills
/// and the sender slows down) or when the server-wide queue (`limits.max_pending_events`) is
/// full: memory stays bounded. A failed commit ends the connection at its next read.
final class CommitPipeline: @unchecked Sendable {
    private let lock = NSLock()
    private let state: ServeState
    private let source: String
    private let limit: Int
    private var inFlight = 0
    private var failure: (any Error)?
    private var waiters: [CheckedContinuation<Void, Never>] = []

    init(state: ServeState, source: String, limit: Int) {
        self.state = state
        self.source = source
        self.limit = max(1, limit)
    }

    /// Hands `events` to the committer and returns without waiting for the commit (after
    /// waiting for room, if `limit` events are in flight or the server queue is full).
    func submit(_ events: [AccessEvent]) async throws {
        try await submit(batch: GroupCommitter.encode(events))
    }

    /// `submit(_:)` for events already in canonical form.
    func submit(batch: EventBatch) async throws {
        let n = batch.count
        try await waitUntil { $0.inFlight == 0 || $0.inFlight + n <= $0.limit }
        while !state.reserve(n) { try await Task.sleep(for: .milliseconds(20)) }
        lock.withLock { inFlight += n }
        let state = self.state, source = self.source
        state.committer.submit(batch: batch, linger: true) { [self] result in
            switch result {
            case .success(let r):
                state.release(n, failure: nil)
                state.metrics.accepted(source, r.accepted, duplicates: r.duplicates)
            case .failure(let e):
                state.release(n, failure: "\(e)")
                lock.withLock { if failure == nil { failure = e } }
            }
            let wake: [CheckedContinuation<Void, Never>] = lock.withLock {
                inFlight -= n
                defer { waiters = [] }
                return waiters
            }
            for w in wake { w.resume() }
        }
    }

    /// Waits until everything submitted is durable; throws the first commit failure.
    func drain() async throws {
        try await waitUntil { $0.inFlight == 0 }
    }

    private func waitUntil(_ ok: @escaping @Sendable (CommitPipeline) -> Bool) async throws {
        while true {
            let done: Bool = lock.withLock { failure != nil || ok(self) }
            if done { break }
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let resumeNow: Bool = lock.withLock {
                    if failure != nil || ok(self) { return true }
                    waiters.append(c)
                    return false
                }
                if resumeNow { c.resume() }
            }
        }
        if let f = lock.withLock({ failure }) { throw f }
    }
}

extension Duration {
    /// The whole duration in nanoseconds.
    var nanoseconds: Int64 { components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000 }
}
