import ArgumentParser
import CustosCore
import CustosServer
import CustosStore
import Foundation

struct EvidenceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evidence",
        abstract: "Prove what happened, or that nothing did, over a period.",
        discussion: """
            `custos evidence --from 2026-07-01 --to 2026-10-01 --secret 'secret/data/prod/*' --kind human` \
            answers with the number of matching events (zero is the point), the query, the signed \
            checkpoints around the period, the consistency proofs between them, and the proof that \
            the query ran over every entry of the signed log. `custos evidence check FILE --vkey KEY` \
            verifies such a document offline. `custos evidence pack --from --to --out DIR` writes             the whole pack for a review period (HTML report, CSV and JSON, checkpoints, key,             verification transcript) as a folder and a .zip.
            """,
        subcommands: [EvidenceQuery.self, EvidencePackCommand.self, EvidenceCheckCommand.self],
        defaultSubcommand: EvidenceQuery.self)
}

struct EvidenceQuery: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query",
        abstract: "Count the events matching a query over a period, with the proofs (the default).",
        discussion: """
            Filters are those of `custos query`; --from and --to are required. Every entry of the \
            trail up to its current checkpoint is read and hashed: their Merkle root must equal the \
            signed root, so the count covers the whole log, late arrivals included. The index's count \
            must agree. The checkpoints: the newest one kept that covers only entries recorded \
            before the period, the first one covering an entry recorded after it (or the current \
            one), and the current one; consistency proofs link them. Each matching event comes with \
            its inclusion proof (the first --max-events of them). The request itself is recorded in \
            the trail. Exit status 0 whatever the count; 1 when the trail or the index disagree.
            """)

    @OptionGroup var data: DataOptions
    @OptionGroup var actor: ActorOptions
    @OptionGroup var filter: FilterOptions
    @Option(help: ArgumentHelp("Check the trail against this verifier key (text or file) instead of DIR/keys/trail.vkey.", valueName: "VKEY"))
    var vkey: String?
    @Option(help: ArgumentHelp("List at most N matching events with their proofs (the count is always complete).", valueName: "N"))
    var maxEvents: Int = 10_000
    @Option(help: "Output: text or json (the document `evidence check` verifies).") var format: String = "text"
    @Option(help: ArgumentHelp("Write the JSON document to FILE as well.", valueName: "FILE")) var out: String?

    func validate() throws {
        guard ["text", "json"].contains(format) else { throw ValidationError("--format must be text or json") }
        guard (0...1_000_000).contains(maxEvents) else { throw ValidationError("--max-events must be 0...1000000") }
        let q = try filter.buildQuery()
        guard q.from != nil, q.to != nil else { throw ValidationError("--from and --to are required: evidence is about a period") }
    }

    func run() throws {
        try requireDataDirectory(data.data)
        let verifier = try vkey.map(loadVerifierKey) ?? loadVerifierKey(data.data + "/keys/trail.vkey")
        let q = try filter.buildQuery()
        let report: EvidenceReport
        do { report = try Evidence.run(directory: data.data, verifier: verifier, query: q, maxEvents: maxEvents) } catch {
            throw CLIError.failed("\(error)")
        }
        var params = filter.parameters
        params["max_events"] = String(maxEvents)
        params["format"] = format
        params["head_size"] = String(report.head.checkpoint.size)
        try recordInvestigation(data: data.data, actor: actor, .evidence, parameters: params, resultCount: report.count)
        let doc = report.json(generatedBy: actor.resolved)
        if let out {
            do { try Data(doc).write(to: URL(fileURLWithPath: out), options: .atomic) } catch {
                throw CLIError.operational("cannot write \(out): \(error.localizedDescription)")
            }
        }
        if format == "json" {
            FileHandle.standardOutput.write(Data(doc))
        } else {
            printText(report)
        }
        if let ic = report.indexCount, ic != report.count {
            throw CLIError.failed("the index counts \(ic) matching events but the trail \(report.count); run `custos reindex`, then `custos verify`")
        }
    }

    func printText(_ r: EvidenceReport) {
        print(r.statement)
        print("")
        print("count:        \(r.count)\(r.indexCount.map { $0 == r.count ? " (the index agrees)" : " (the index says \($0))" } ?? " (index not consulted: it lags the trail)")")
        print("scanned:      entries 0..<\(r.entriesScanned) (\(r.eventsScanned) events); their root equals the signed root")
        if let b = r.before {
            print("before:       checkpoint of size \(b.checkpoint.size), root \(b.checkpoint.rootHash.base64)")
        } else {
            print("before:       the log's beginning (size 0)")
        }
        print("after:        checkpoint of size \(r.after.checkpoint.size), root \(r.after.checkpoint.rootHash.base64)")
        print("current:      checkpoint of size \(r.head.checkpoint.size), root \(r.head.checkpoint.rootHash.base64)")
        for c in r.consistency { print("consistency:  \(c.from) → \(c.to) proven (\(c.proof.count) hashes)") }
        if !r.matches.isEmpty {
            print("")
            printTextTable(header: Query.columns.prefix(10).map { $0.0.uppercased() },
                           rows: r.matches.map { m in Query.columns.prefix(10).map { $0.1(IndexedEvent(index: m.index, event: m.event)) } })
            if r.truncated { print("… and \(r.count - r.matches.count) more (raise --max-events to list them)") }
        }
        if out == nil { stderrPrint("custos: add --format json or --out FILE for the document an auditor checks with `custos evidence check`") }
    }
}

struct EvidenceCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Verify an evidence document offline.",
        discussion: """
            Needs only the document and the log's verifier key as the auditor received it (not the \
            one inside the document). Checks the checkpoints' signatures, the consistency proofs \
            between them, that the scan covered the whole log of the current checkpoint, and each \
            listed event's inclusion proof, match and time. It does not prove the count, the query, \
            the period or the scan (nothing signs them): re-derive them by running `custos evidence` \
            on a copy of the trail that `custos verify` passes. Exit status 0 when everything \
            verifies, 1 otherwise.
            """)

    @Argument(help: ArgumentHelp("The evidence document (JSON).", valueName: "FILE")) var file: String
    @Option(help: ArgumentHelp("The log's verifier key (text or file).", valueName: "VKEY")) var vkey: String

    func run() throws {
        let verifier = try loadVerifierKey(vkey)
        guard let data = FileManager.default.contents(atPath: file) else { throw CLIError.usage("cannot read \(file)") }
        do {
            let c = try EvidenceCheck.check(Array(data), verifier: verifier)
            for l in c.lines { print("ok: \(l)") }
            // What the signatures and proofs cannot show: nothing in the document signs the
            // count, the query, the period or the scan (an edited one still checks out).
            print("not proven by this document: its count (\(c.count)), query, period and scan are the producer's statement;")
            print("  re-derive them: `custos evidence` with the same query and period on a copy of the trail that `custos verify` passes")
        } catch {
            throw CLIError.failed("\(error)")
        }
    }
}

struct EvidencePackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pack",
        abstract: "Write the evidence pack for a review period: a folder and a .zip.",
        discussion: """
            The folder holds index.html (a report with charts as SVG and no scripts: accesses, \
            denials and alerts over time, who accessed which production secret, alert response \
            against SLA, the SOC 2 CC7.2 points it supports), events.csv/.ndjson, alerts.csv/.ndjson, \
            investigations.csv, evidence.json (human reads of production secrets, with proofs), the \
            checkpoints, trail.vkey, verification.txt (a full verification, run now) and README.txt \
            on how to check it all without Custos running; SHA256SUMS covers every file. DIR must \
            not exist or be empty; DIR.zip is written next to it. Recorded in the trail.
            """)

    @OptionGroup var data: DataOptions
    @OptionGroup var actor: ActorOptions
    @Option(help: ArgumentHelp("Start of the period (inclusive): RFC 3339 or YYYY-MM-DD.", valueName: "TIME")) var from: String
    @Option(help: ArgumentHelp("End of the period (exclusive).", valueName: "TIME")) var to: String
    @Option(help: ArgumentHelp("The folder to create.", valueName: "DIR")) var out: String
    @Option(help: ArgumentHelp("An environment that is production (repeatable; default prod and production).", valueName: "ENV"))
    var prodEnv: [String] = []
    @Option(help: ArgumentHelp("Check the trail against this verifier key instead of DIR/keys/trail.vkey.", valueName: "VKEY"))
    var vkey: String?
    @Flag(help: "Do not write DIR.zip.") var noZip = false

    func period() throws -> (EventTime, EventTime) {
        let f = try FilterOptions.parseTime(from, "--from"), t = try FilterOptions.parseTime(to, "--to")
        guard f < t else { throw ValidationError("--from must be before --to") }
        return (f, t)
    }

    func validate() throws { _ = try period() }

    func run() throws {
        try requireDataDirectory(data.data)
        let verifier = try vkey.map(loadVerifierKey) ?? loadVerifierKey(data.data + "/keys/trail.vkey")
        let (f, t) = try period()
        var o = EvidencePack.Options(from: f, to: t, generatedBy: actor.resolved)
        if !prodEnv.isEmpty { o.productionEnvironments = prodEnv }
        let s: EvidencePack.Summary
        do { s = try EvidencePack.write(dataDirectory: data.data, verifier: verifier, options: o, into: out, zip: !noZip) } catch {
            throw CLIError.failed("\(error)")
        }
        try recordInvestigation(data: data.data, actor: actor, .export, parameters: [
            "kind": "evidence_pack", "from": from, "to": to, "out": out, "prod_env": o.productionEnvironments.joined(separator: ","),
        ], resultCount: s.events)
        print("evidence pack: \(out)\(s.zipPath.map { " and \($0)" } ?? "")")
        print("  \(s.events) events (\(s.accesses) accesses, \(s.denials) denials), \(s.alerts) alerts, \(s.investigations) investigations")
        print("  human reads of production secrets: \(s.humanProductionReads)")
        print("  trail verification: \(s.verified ? "valid" : "NOT VALID (see verification.txt)")")
        if !s.verified { throw ExitCode(1) }
    }
}
