import ArgumentParser
import CustosArchive
import CustosCore
import CustosStore
import CustosTrail
import Foundation

struct ArchiveTargetOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Archive target: local:PATH or s3://BUCKET/PREFIX (S3 credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN).", valueName: "TARGET"))
    var to: String
    @Option(help: ArgumentHelp("S3 endpoint URL (default https://s3.REGION.amazonaws.com; path-style requests).", valueName: "URL"))
    var endpoint: String?
    @Option(help: ArgumentHelp("S3 region (default AWS_REGION, else us-east-1).", valueName: "R"))
    var region: String?

    func archiver(layout: TrailLayout) throws -> Archiver {
        guard let vkeyText = FileManager.default.contents(atPath: layout.verifierKeyPath) else {
            throw CLIError.operational("no verifier key at \(layout.verifierKeyPath)")
        }
        let verifier = try loadVerifierKey(String(decoding: vkeyText, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        let store: any ArchiveStore
        do { store = try ArchiveTarget.open(to, endpoint: endpoint, region: region) } catch { throw CLIError.usage("\(error)") }
        return Archiver(layout: layout, verifier: verifier, store: store, target: to)
    }
}

func loadRetention(_ path: String?) throws -> RetentionPolicy {
    guard let path else { return RetentionPolicy() }
    do { return try RetentionPolicy.load(path: path) } catch {
        throw CLIError.usage("retention file \(path):\n\(error)")
    }
}

func blockingResult<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let r = runBlocking { () -> Result<T, any Error> in
        do { return .success(try await body()) } catch { return .failure(error) }
    }
    switch r {
    case .success(let v): return v
    case .failure(let e as CLIError): throw e
    case .failure(let e as TrailError): throw e
    case .failure(let e): throw CLIError.operational("\(e)")
    }
}

struct ArchiveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "archive",
        abstract: "Copy full entry bundles to an archive (local directory or S3 with Object Lock).",
        discussion: """
            Copies every full entry bundle not yet archived to TARGET, with its level-0 tile, \
            the signed checkpoint and a manifest (SHA-256 of each bundle and tile). Local files \
            are made read-only (0444) and immutable where the file system allows; S3 objects \
            are written with Object Lock in COMPLIANCE mode until now + archive_lock (retention \
            file, default 2557d). `custos archive verify` reads everything back.
            """,
        subcommands: [ArchiveRun.self, ArchiveVerify.self],
        defaultSubcommand: ArchiveRun.self)
}

struct ArchiveRun: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Archive the bundles not archived yet (the default).")
    @OptionGroup var data: DataOptions
    @OptionGroup var target: ArchiveTargetOptions
    @Option(name: [.long, .customLong("policy")], help: ArgumentHelp("Retention file (YAML; for archive_lock).", valueName: "FILE"))
    var retention: String?

    func run() throws {
        try requireDataDirectory(data.data)
        let policy = try loadRetention(retention)
        let archiver = try target.archiver(layout: TrailLayout(dataDirectory: data.data))
        let run = try blockingResult { try await archiver.archive(now: Date(), lockFor: policy.archiveLock) }
        for n in run.notes { print("note: \(n)") }
        if run.bundles.isEmpty {
            print("nothing new to archive: \(run.bundles.lowerBound) full bundle(s) (entries 0..<\(run.bundles.lowerBound * 256)) already in \(archiver.store.description)")
        } else {
            print("archived \(run.bundles.count) bundle(s) \(run.bundles.lowerBound)..<\(run.bundles.upperBound) (entries \(run.bundles.lowerBound * 256)..<\(run.bundles.upperBound * 256)) to \(archiver.store.description) with checkpoint \(run.checkpointSize)")
        }
    }
}

struct ArchiveVerify: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "verify", abstract: "Read every archived bundle back and check it against the trail's tiles and its protection.")
    @OptionGroup var data: DataOptions
    @OptionGroup var target: ArchiveTargetOptions

    func run() throws {
        try requireDataDirectory(data.data)
        let archiver = try target.archiver(layout: TrailLayout(dataDirectory: data.data))
        let v = try blockingResult { try await archiver.verify(now: Date()) }
        if v.isValid {
            print("archive OK: \(archiver.store.description): \(v.bundlesChecked) bundle(s) (entries 0..<\(v.bundlesChecked * 256)) match the trail's tiles and are protected")
        } else {
            print("ARCHIVE NOT VALID: \(v.problems.count) problem(s)")
            for p in v.problems.prefix(50) { print("  \(p)") }
            throw ExitCode(1)
        }
    }
}

struct Prune: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Remove expired entry bundles that are archived and verified (the tree stays).",
        discussion: """
            Verifies the trail and the archive (reading every archived object back), then \
            raises the trail's minimum index to the largest multiple of 256 below which every \
            entry is past its retention tier, archived and verified, and deletes those entry \
            bundles. Tiles stay: the root, and inclusion proofs of every remaining entry, still \
            verify. Needs the signing key (the minimum index is signed).
            """)
    @OptionGroup var data: DataOptions
    @OptionGroup var target: ArchiveTargetOptions
    @Option(name: [.long, .customLong("policy")], help: ArgumentHelp("Retention file (YAML); default tiers when absent.", valueName: "FILE"))
    var retention: String?
    @Option(help: ArgumentHelp("Evaluate retention at TIME (RFC 3339) instead of now; never later than now (a future time would delete entries still within retention), except with --dry-run.", valueName: "TIME"))
    var now: String?
    @Flag(help: "Say what would be pruned; change nothing.")
    var dryRun = false

    func run() throws {
        try requireDataDirectory(data.data)
        let policy = try loadRetention(retention)
        let layout = TrailLayout(dataDirectory: data.data)
        let at: EventTime
        if let now {
            guard let t = EventTime(rfc3339: now) else { throw CLIError.usage("--now: not an RFC 3339 time: \(now)") }
            // A minute of clock skew allowed; later than that only to see what a prune would do.
            if !dryRun && t.seconds > Int64(Date().timeIntervalSince1970) + 60 {
                throw CLIError.usage("--now \(now) is in the future: pruning as of then would delete entries still within retention (use --dry-run to see what it would prune)")
            }
            at = t
        } else {
            at = EventTime(seconds: Int64(Date().timeIntervalSince1970))
        }
        let signer = try TrailKeys.load(layout: layout)
        let archiver = try target.archiver(layout: layout)
        let dry = dryRun
        let plan = try blockingResult {
            try await Pruner.run(layout: layout, signer: signer, policy: policy, archiver: archiver, now: at, dryRun: dry)
        }
        // The index forgets the pruned entries too (it holds their secret paths, identities, times).
        if !plan.dryRun, plan.newMinimum > plan.previousMinimum, FileManager.default.fileExists(atPath: layout.indexPath) {
            do { try SQLiteEventIndex(path: layout.indexPath).prune(below: plan.newMinimum) } catch {
                stderrPrint("custos: the trail was pruned below \(plan.newMinimum) but the index still holds those entries: \(error); run `custos reindex`")
            }
        }
        print("trail size \(plan.size); archive \(archiver.store.description) verified for entries 0..<\(plan.verifiedEnd)")
        print("first entry within retention: \(plan.firstUnexpired == plan.verifiedEnd ? "none below the verified archive end" : String(plan.firstUnexpired))")
        if plan.newMinimum > plan.previousMinimum {
            let byClass = RetentionClass.allCases.compactMap { c in plan.classes[c].map { "\(c) \($0)" } }.joined(separator: ", ")
            print("\(plan.dryRun ? "would prune" : "pruned") entries \(plan.previousMinimum)..<\(plan.newMinimum) (\(byClass)); \(plan.deletedFiles.count) file(s) \(plan.dryRun ? "would be " : "")deleted; minimum index \(plan.newMinimum)")
        } else {
            print("nothing to prune: minimum index stays \(plan.previousMinimum)")
        }
    }
}
