import ArgumentParser
import CustosAlerting
import CustosCore
import CustosServer
import CustosStore
import Foundation

struct BlastRadiusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "blast-radius",
        abstract: "Before revoking a credential: who and what used a secret, from where, and what else they read.",
        discussion: """
            For a secret (exact path or GLOB: * ? [..], case-sensitive; * crosses /) over a \
            window (--from inclusive, --to exclusive; RFC 3339 or YYYY-MM-DD, as for `custos \
            query`): the identities that used it (successes, denials, first and last time, \
            addresses, auth method and policies), the systems and pipelines, the addresses, the \
            alerts naming it (out_of_scope first), and the other secrets those identities \
            accessed in the window, marking where an identity is the only consumer. With \
            --policy FILE every access is also checked against the policy's scope rules (the \
            out_of_scope detector's test); without it, out-of-scope use is known only from the \
            recorded alerts. Lists are cut at --limit rows (nested lists at 10) with "and N \
            more". --format json prints one JSON object (schema custos.blast-radius/v1, README \
            "Blast radius"), the same bytes as GET /v1/blast-radius. Nothing found is not an \
            error (exit 0).
            """)

    @OptionGroup var data: DataOptions
    @OptionGroup var actor: ActorOptions
    @Option(help: ArgumentHelp("Secret path or glob, e.g. 'secret/data/prod/db' or 'secret/data/prod/*'.", valueName: "GLOB"))
    var secret: String
    @Option(help: ArgumentHelp("Earliest time (inclusive).", valueName: "TIME")) var from: String?
    @Option(help: ArgumentHelp("Latest time (exclusive).", valueName: "TIME")) var to: String?
    @Option(help: ArgumentHelp("Check each access against this policy's scope rules (YAML; see `custos policy check`).", valueName: "FILE"))
    var policy: String?
    @Option(help: ArgumentHelp("Rows per list.", valueName: "N")) var limit: Int = BlastRadiusRequest.defaultLimit
    @Option(help: "Output: table or json.") var format: String = "table"

    func buildRequest() throws -> BlastRadiusRequest {
        let f = try from.map { try FilterOptions.parseTime($0, "--from") }
        let t = try to.map { try FilterOptions.parseTime($0, "--to") }
        if let f, let t, !(f < t) { throw ValidationError("--from (\(f)) must be before --to (\(t))") }
        guard (1...10_000).contains(limit) else { throw ValidationError("--limit must be 1...10000") }
        do throws(BlastRadiusInputError) { return try BlastRadiusRequest(secret: secret, from: f, to: t, limit: limit) } catch {
            throw ValidationError("--\(error.message)")
        }
    }

    func validate() throws {
        guard ["table", "json"].contains(format) else { throw ValidationError("--format must be table or json") }
        if let policy, !FileManager.default.isReadableFile(atPath: policy) { throw ValidationError("--policy: cannot read \(policy)") }
        _ = try buildRequest()
    }

    func run() throws {
        let request = try buildRequest()
        var loaded: LoadedPolicy?
        if let policy {
            do { loaded = try PolicyLoader.load(path: policy) } catch {
                for p in error.problems { stderrPrint("\(policy): \(p)") }
                throw CLIError.usage("\(policy): \(error.problems.count) problem\(error.problems.count == 1 ? "" : "s") (see `custos policy check`)")
            }
        }
        let reader = try openReader(data.data)
        let report = try BlastRadius.compute(request, reader: reader, policy: loaded?.policy)
        try recordInvestigation(data: data.data, actor: actor, .blastRadius, parameters: [
            "secret": secret, "from": from, "to": to, "policy": policy, "limit": String(limit), "format": format,
        ], resultCount: report.totals.events)
        if format == "json" {
            FileHandle.standardOutput.write(Data(report.json()))
            return
        }
        print(Self.table(report, policyPath: policy), terminator: "")
    }

    // MARK: Table

    static func window(_ r: BlastRadiusReport) -> String {
        switch (r.from, r.to) {
        case (nil, nil): return "all time"
        case (let f?, nil): return "from \(f)"
        case (nil, let t?): return "until \(t) (exclusive)"
        case (let f?, let t?): return "\(f) to \(t) (exclusive)"
        }
    }

    static func more(_ n: Int, _ what: String) -> String? { n > 0 ? "  … and \(n) more \(what)" : nil }

    static func joined(_ l: BlastRadiusReport.Listed<String>) -> String {
        let s = l.items.joined(separator: ", ")
        return l.more > 0 ? "\(s) (+\(l.more) more)" : (s.isEmpty ? "-" : s)
    }

    /// The report for a person in an incident: the summary first, then one section per
    /// question, each a table; "and N more" where a list was cut.
    static func table(_ r: BlastRadiusReport, policyPath: String?) -> String {
        var out = ""
        func line(_ s: String = "") { out += s + "\n" }
        func table(_ header: [String], _ rows: [[String]]) {
            // Without the padding an empty last column leaves.
            for l in formatTextTable(header: header, rows: rows).split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
                var t = Substring(l)
                while t.last == " " { t = t.dropLast() }
                out += t + "\n"
            }
        }
        line("Blast radius of \(r.secret), \(window(r))")
        if r.isEmpty {
            line("No event and no alert in this window names a secret matching \(r.secret).")
            line("(Nothing used it here; check the glob, the window, and that the index is current: `custos query --secret '\(r.secret)'`.)")
            return out
        }
        let t = r.totals
        line("\(t.events) access(es): \(t.successes) succeeded, \(t.denied) denied, \(t.errors) error(s); "
             + "\(t.identities) identit\(t.identities == 1 ? "y" : "ies") (\(t.consumers) with a success), \(t.ips) address(es)"
             + (t.firstTime.map { f in ", \(f) … \(t.lastTime.map(\.description) ?? "")" } ?? ""))
        if r.paths.items.count + r.paths.more > 1 || r.paths.items.first?.path != r.secret {
            line()
            line("SECRETS MATCHED")
            table(["PATH", "COUNT", "OK", "DENIED", "CONSUMERS", "LAST"],
                  r.paths.items.map { [$0.path, String($0.count), String($0.successes), String($0.denied), String($0.consumers), $0.lastTime.description] })
            if let m = more(r.paths.more, "paths") { line(m) }
        }

        line()
        line("IDENTITIES")
        table(["IDENTITY", "KIND", "METHOD", "OK", "DENIED", "ERR", "FIRST", "LAST", "FROM", "NOTE"],
              r.identities.items.map { i in
                  var notes: [String] = []
                  if !i.onlyConsumerOf.isEmpty { notes.append("ONLY CONSUMER" + (r.paths.items.count > 1 ? " of \(i.onlyConsumerOf.joined(separator: ", "))" : "")) }
                  if let s = i.scope, s.outside > 0 { notes.append("OUT OF SCOPE ×\(s.outside)") }
                  return [i.label, i.kind.rawValue, i.methods.isEmpty ? "-" : i.methods.joined(separator: ","), String(i.successes),
                          String(i.denied), String(i.errors), i.firstTime.description, i.lastTime.description, joined(i.ips),
                          notes.joined(separator: "; ")]
              })
        if let m = more(r.identities.more, "identities") { line(m) }
        for i in r.identities.items where i.policies.items.count > 0 || i.id != nil {
            line("  \(i.label): " + [i.id.map { "id \($0)" }, i.policies.items.isEmpty ? nil : "policies \(joined(i.policies))",
                                      "actions \(i.actions.joined(separator: ","))"].compactMap { $0 }.joined(separator: "; "))
        }

        line()
        line("ADDRESSES")
        table(["IP", "COUNT", "OK", "DENIED", "IDENTITIES", "LAST"],
              r.ips.items.map { [$0.ip, String($0.count), String($0.successes), String($0.denied), joined($0.identities), $0.lastTime.description] })
        if r.ips.items.isEmpty { line("  (no event carried an address)") }
        if let m = more(r.ips.more, "addresses") { line(m) }

        line()
        line("SYSTEMS")
        table(["SOURCE", "STORES", "COUNT", "FIRST", "LAST"],
              r.systems.items.map { ["\($0.sourceKind)/\($0.sourceInstance)", $0.stores.isEmpty ? "-" : $0.stores.joined(separator: ","),
                                     String($0.count), $0.firstTime.description, $0.lastTime.description] })
        if let m = more(r.systems.more, "systems") { line(m) }

        line()
        line("PIPELINES")
        if r.pipelines.items.isEmpty {
            line("  (no access carried a CI/CD pipeline context)")
        } else {
            table(["PROVIDER", "PIPELINE", "COUNT", "RUNS", "RUNNER IPS", "IDENTITIES", "LAST"],
                  r.pipelines.items.map { [$0.provider ?? "-", $0.name ?? "-", String($0.count), joined($0.runIDs), joined($0.runnerIPs),
                                           joined($0.identities), $0.lastTime.description] })
            if let m = more(r.pipelines.more, "pipelines") { line(m) }
        }

        line()
        let o = r.outOfScope
        if o.basis == "policy" {
            line("OUT OF SCOPE (checked against \(policyPath ?? "the policy")'s scope rules; \(o.alerts) out_of_scope alert(s) recorded)")
        } else {
            line("OUT OF SCOPE (from the \(o.alerts) out_of_scope alert(s) recorded; give --policy FILE to check every access)")
        }
        if o.identities.items.isEmpty {
            line("  none")
        } else {
            table(["IDENTITY", "KIND", "EVENTS", "RULE", "ALLOWED SCOPE"],
                  o.identities.items.map { [$0.identity, $0.kind.rawValue, String($0.events), $0.rule ?? "-", $0.scope.joined(separator: ", ")] })
            if let m = more(o.identities.more, "identities") { line(m) }
        }

        line()
        line("ALERTS NAMING IT")
        if r.alerts.items.isEmpty {
            line("  none")
        } else {
            let ordered = r.alerts.items.filter { $0.alertClass == .out_of_scope } + r.alerts.items.filter { $0.alertClass != .out_of_scope }
            table(["INDEX", "TIME", "CLASS", "SEVERITY", "IDENTITY", "IP", "ACTION", "OUTCOME", "COUNT", "LAST"],
                  ordered.map { [String($0.index), $0.time.description, $0.alertClass.rawValue + ($0.silenced ? " (silenced)" : ""),
                                 $0.severity.rawValue, $0.identity, $0.ip ?? "-", $0.action, $0.outcome, String($0.count), $0.lastTime.description] })
            if let m = more(r.alerts.more, "alerts") { line(m) }
            for a in ordered { line("  [\(a.index)] \(a.summary)") }
        }

        line()
        line("OTHER SECRETS THESE IDENTITIES ACCESSED (in the window)")
        var any = false
        for i in r.identities.items where !i.otherSecrets.items.isEmpty {
            any = true
            line("  \(i.label) (\(i.kind.rawValue)):")
            for s in i.otherSecrets.items {
                line("    \(s.path)  ×\(s.count)\(s.denied > 0 ? " (\(s.denied) denied)" : "")  last \(s.lastTime)"
                     + (s.onlyConsumer ? "  ONLY CONSUMER" : ""))
            }
            if i.otherSecrets.more > 0 { line("    … and \(i.otherSecrets.more) more secrets") }
        }
        if !any { line("  none") }
        if r.truncated { line(); line("Note: some lists stopped counting new values at \(BlastRadiusRequest.trackLimit) (memory bound); counts of those lists are lower bounds.") }
        return out
    }
}
