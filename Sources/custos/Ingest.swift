import ArgumentParser
import CustosAlerting
import CustosCore
import CustosServer
import Foundation

struct Ingest: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Append audit-log records to the trail and the index.",
        discussion: """
            Reads each FILE ("-" for standard input) line by line. Each access (a request and \
            response pair sharing request.id) becomes one event; request and response bodies \
            are never read, so secret values never enter Custos. Lines that cannot be decoded \
            are reported with their line number and skipped. With --format github, gitlab, cloudtrail, \
            gcp, azure, kubernetes, infisical, onepassword or doppler the input is a stream of JSON records (NDJSON, a JSON array or pretty-printed objects) and \
            a rejection names the line its record starts on. Events already in the trail (same \
            id) are counted as duplicates and not added again. On first use the data directory \
            and its signing key are created and the verifier key is printed.
            With --policy FILE every new event goes through the policy's detectors and the             alerts are appended to the trail right after the events that raised them (list             them with `custos alerts`). Before the first new event, the last --warmup entries             of the trail are replayed silently so that windows and baselines continue across             runs. Alerts are delivered to their owners only with --notify, so replaying old             logs pages nobody by accident; each delivery (or failure) is recorded in the trail.
            Exit 0 when every line was read (rejected lines are reported, not fatal); 2 for \
            bad arguments; 3 for I/O errors.
            """)

    @OptionGroup var data: DataOptions
    @Option(help: "Input format: vault or openbao (the same audit format; sets the source kind), custos (custos.event/v1 objects, one per line), github (GitHub audit log), gitlab (GitLab audit events), cloudtrail (AWS CloudTrail: Secrets Manager, SSM Parameter Store), gcp (Google Cloud audit logs: Secret Manager), azure (Azure Key Vault AuditEvent logs), kubernetes (Kubernetes API server audit log), infisical (Infisical audit logs), onepassword (1Password Events API item usages and sign-in attempts) or doppler (Doppler activity log stream); all but vault, openbao and custos take NDJSON, JSON arrays or pretty-printed objects, cloudtrail also log files ({\"Records\": [...]}); gzipped files are decompressed.")
    var format: String = "vault"
    @Option(help: ArgumentHelp("Name of the server the records come from (source.instance); part of each event's id.", valueName: "NAME"))
    var instance: String = "default"
    @Option(help: ArgumentHelp("Origin for a newly created trail key.", valueName: "NAME"))
    var origin: String?
    @Option(help: ArgumentHelp("Events per durable commit.", valueName: "N"))
    var batchSize: Int = 16_384
    @Flag(help: "Only decode and report (accepted = events that would be appended, duplicates not checked); write nothing.")
    var check = false
    @Flag(help: "Also print where the time went (decode vs. commit).")
    var stats = false
    @Flag(help: "No progress bar even on a terminal.")
    var quiet = false
    @Option(help: ArgumentHelp("Run detection with this policy (YAML; see `custos policy check`) and record the alerts.", valueName: "FILE"))
    var policy: String?
    @Flag(help: "Deliver the alerts raised in this run to their owners (needs --policy).")
    var notify = false
    @Option(help: ArgumentHelp("Trail entries replayed silently before detection starts (state across runs).", valueName: "N"))
    var warmup: Int = 1_000_000
    @Argument(help: ArgumentHelp("Audit log files ('-' for standard input).", valueName: "FILE"))
    var files: [String]

    func validate() throws {
        guard IngestFormat(rawValue: format) != nil else {
            throw ValidationError("--format must be one of: \(IngestFormat.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard !files.isEmpty else { throw ValidationError("give at least one FILE to ingest") }
        guard (1...1_000_000).contains(batchSize) else { throw ValidationError("--batch-size must be 1...1000000") }
        guard !instance.isEmpty, instance.utf8.count <= 256 else { throw ValidationError("--instance must be 1...256 bytes") }
        for f in files where f != "-" && !FileManager.default.isReadableFile(atPath: f) {
            throw ValidationError("cannot read \(f)")
        }
        if notify && policy == nil { throw ValidationError("--notify needs --policy FILE (the policy names the owners)") }
        if policy != nil && check { throw ValidationError("--check writes nothing, so it cannot record alerts: drop --policy or --check") }
        guard (0...100_000_000).contains(warmup) else { throw ValidationError("--warmup must be 0...100000000") }
        if let policy, !FileManager.default.isReadableFile(atPath: policy) { throw ValidationError("--policy: cannot read \(policy)") }
    }

    func run() throws {
        // The policy first: a bad policy must not leave a half-done ingest behind.
        var loaded: LoadedPolicy?
        if let policy {
            do { loaded = try PolicyLoader.load(path: policy) } catch {
                for p in error.problems { stderrPrint("\(policy): \(p)") }
                throw CLIError.usage("\(policy): \(error.problems.count) problem\(error.problems.count == 1 ? "" : "s"); nothing was ingested (see `custos policy check`)")
            }
        }
        let store = check ? nil : try DataStore(directory: data.data, origin: origin)
        if let s = store?.createdSigner {
            stderrPrint("custos: created a new trail in \(data.data); its verifier key (give it to your auditors):")
            print(s.vkey)
        }
        var detector: Detector?
        if let loaded, let store {
            let d = Detector(engine: DetectionEngine(policy: loaded.policy, geo: loaded.locator))
            let n = try d.warmUp(store: store, limit: warmup)
            if n > 0 && !quiet { stderrPrint("custos: replayed \(n) earlier events silently (detection state)") }
            detector = d
        }
        let ingestor = Ingestor(store: store, format: IngestFormat(rawValue: format)!, instance: instance, batchSize: batchSize, detector: detector)
        let showProgress = !quiet && isTerminal(2)
        let started = Date()
        var lastDraw = Date.distantPast
        for file in files {
            try ingestor.ingest(path: file) { done, total in
                guard showProgress, Date().timeIntervalSince(lastDraw) > 0.2 else { return }
                lastDraw = Date()
                let elapsed = max(0.001, Date().timeIntervalSince(started))
                let rate = Double(ingestor.acceptedSoFar) / elapsed
                if let total, total > 0 {
                    let frac = min(1, Double(done) / Double(total))
                    let width = 30
                    let filled = Int(frac * Double(width))
                    let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
                    FileHandle.standardError.write(Data(String(format: "\r%@ [%@] %3.0f%%  %.0f events/s ", file, bar, frac * 100, rate).utf8))
                } else {
                    FileHandle.standardError.write(Data(String(format: "\r%@ %llu bytes  %.0f events/s ", file, done, rate).utf8))
                }
            }
        }
        let s = try ingestor.finish()
        if showProgress { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        let elapsed = Date().timeIntervalSince(started)
        for (file, r) in s.rejections {
            stderrPrint("rejected \(file):\(r.line): \(r.reason)")
        }
        if s.rejected > s.rejections.count {
            stderrPrint("... and \(s.rejected - s.rejections.count) more rejected lines")
        }
        if stats {
            let t = store?.timings ?? .init()
            stderrPrint(String(format: "stats: %.2f s total; decoding and canonical encoding on the main thread, then on their own threads: de-duplication %.2f s, trail commit %.2f s, index %.2f s",
                               elapsed, t.prepare, t.trail, t.index))
        }
        if check { print("check only, nothing written:") }
        print("lines \(s.lines)  accepted \(s.accepted)  duplicates \(s.duplicates)  ignored \(s.ignored)  rejected \(s.rejected)  trail size \(s.trailSize)  (\(String(format: "%.2f", elapsed)) s)")
        if let detector, let store, let loaded {
            let classes = detector.byClass.keys.sorted().map { "\($0.rawValue) \(detector.byClass[$0]!)" }.joined(separator: ", ")
            print("alerts raised \(detector.raisedCount)\(classes.isEmpty ? "" : " (\(classes))")  silenced \(detector.silencedCount)  fold updates \(detector.updatedCount)")
            if notify {
                try deliver(detector.recordedAlerts, policy: loaded.policy, store: store)
            } else if detector.raisedCount > detector.silencedCount {
                print("alerts were recorded, not delivered (add --notify to send them to their owners)")
            }
        }
    }

    /// Sends the alerts to their owners and records every outcome in the trail.
    func deliver(_ alerts: [Alert], policy: Policy, store: DataStore) throws {
        let notifier = AlertNotifier(policy: policy)
        let outcomes = runBlocking { await notifier.deliver(alerts) }
        let now = EventTime(unixTime: Date().timeIntervalSince1970)
        let records = outcomes.map {
            TrailEntry.delivery(DeliveryRecord(alertID: $0.alertID, owner: $0.ownerKey, targetKind: $0.target.kind,
                                               endpoint: $0.target.endpoint, delivered: $0.delivered, attempts: $0.attempts,
                                               error: $0.error, notice: $0.isFailureNotice, time: now))
        }
        try store.appendEntries(records)
        let failed = outcomes.filter { !$0.delivered }
        for f in failed { stderrPrint("custos: \(f)") }
        print("notifications delivered \(outcomes.count - failed.count)  failed \(failed.count)")
        if !failed.isEmpty && !outcomes.contains(where: { $0.isFailureNotice && $0.delivered }) {
            throw CLIError.operational("\(failed.count) notification\(failed.count == 1 ? "" : "s") could not be delivered and no fallback owner was reached; the alerts are in the trail (`custos alerts`)")
        }
    }
}
