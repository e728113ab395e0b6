import CustosCore
import CustosTrail
import Logging
import ServiceLifecycle

/// Appends investigations and incident steps that command-line commands spooled while this server held the data
/// directory (`InvestigationLog`), checking about once a second.
public struct SpoolAbsorber: Service {
    let state: ServeState
    let logger: Logger

    public init(state: ServeState, logger: Logger) { self.state = state; self.logger = logger }

    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do { try await absorb() } catch {
                logger.error("investigation spool: \(error)")
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }

    func absorb() async throws {
        let layout = state.store.layout
        let spooled = InvestigationLog.pending(layout) { path in
            logger.error("investigation spool: \(path) is not a canonical custos.investigation/v1 or custos.incident/v1 record; moved to spool/rejected")
        }
        guard !spooled.isEmpty else { return }
        let reader = try EventReader(directory: state.config.data)
        let fresh = try InvestigationLog.notYetRecorded(spooled, index: reader.index, reader: reader.trail)
        if !fresh.isEmpty { _ = try await state.committer.appendEntries(fresh.map(\.entry)) }
        InvestigationLog.remove(spooled)
    }
}
