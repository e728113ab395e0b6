import CustosAlerting
import CustosCore
import Foundation
import Logging
import ServiceLifecycle

/// Escalates incidents not acknowledged within their SLA along their owner's escalation chain
/// (`IncidentBook.dueEscalations`), checking every 30 seconds; each escalation is a trail entry,
/// and with notification on, the escalation target gets the alert (the delivery is recorded).
public struct IncidentEscalator: Service {
    let state: ServeState
    let policy: Policy
    let notifier: AlertNotifier?
    let logger: Logger
    let interval: Duration

    public init(state: ServeState, policy: Policy, notifier: AlertNotifier?, logger: Logger, interval: Duration = .seconds(30)) {
        self.state = state; self.policy = policy; self.notifier = notifier; self.logger = logger; self.interval = interval
    }

    public func run() async throws {
        // Nothing to escalate: stay idle until shutdown (a service that returns early stops the
        // whole ServiceGroup, and with it `serve`).
        guard policy.owners.values.contains(where: { !$0.escalation.isEmpty }) else {
            try? await gracefulShutdown()
            return
        }
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do { try await escalate(now: EventTime(unixTime: Date().timeIntervalSince1970)) } catch {
                logger.error("incident escalation: \(error)")
            }
            // The wait ends at a graceful shutdown too: SIGTERM must not wait out the interval.
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }

    /// Records (and delivers) the escalations due at `now`; returns them.
    @discardableResult
    public func escalate(now: EventTime) async throws -> [IncidentStep] {
        let incidents = try IncidentBook.load(try EventReader(directory: state.config.data))
        let due = IncidentBook.dueEscalations(incidents, policy: policy, now: now)
        guard !due.isEmpty else { return [] }
        _ = try await state.committer.appendEntries(due.map { .incident($0) })
        for s in due { logger.warning("incident \(s.incident) escalated to \(s.escalatedTo ?? "-") (level \(s.level ?? 0))") }
        if let notifier {
            let byID = Dictionary(incidents.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
            let alerts = due.compactMap { s -> Alert? in
                guard let i = byID[s.incident], let to = s.escalatedTo, let o = policy.owners[to] else { return nil }
                return IncidentBook.escalatedAlert(i, to: o, level: s.level ?? 1)
            }
            let outcomes = await notifier.deliver(alerts)
            let t = EventTime(unixTime: Date().timeIntervalSince1970)
            state.metrics.notifierFailed(outcomes.filter { !$0.delivered && !$0.isFailureNotice }.count)
            _ = try await state.committer.appendEntries(outcomes.map {
                .delivery(DeliveryRecord(alertID: $0.alertID, owner: $0.ownerKey, targetKind: $0.target.kind, endpoint: $0.target.endpoint,
                                         delivered: $0.delivered, attempts: $0.attempts, error: $0.error, notice: $0.isFailureNotice, time: t))
            })
        }
        return due
    }
}
