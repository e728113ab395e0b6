import ArgumentParser
import CustosCore
import CustosServer
import CustosStore
import CustosTrail
import Foundation

struct Query: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Find events in the index.",
        discussion: """
            Filters combine with AND; a repeated filter (e.g. --outcome denied --outcome error) \
            matches any of its values. GLOBs use * ? [..] and are case-sensitive; --identity \
            matches the identity's name or id. Times are RFC 3339 (2026-01-31T09:00:00Z) or a \
            date (2026-01-31, midnight UTC); --from is inclusive, --to exclusive. \
            --format json prints an array of events in canonical form, each with its trail index.
            """)

    @OptionGroup var data: DataOptions
    @OptionGroup var actor: ActorOptions
    @OptionGroup var filter: FilterOptions
    @Option(help: ArgumentHelp("At most N events.", valueName: "N")) var limit: Int?
    @Option(help: "Output: table, json or csv.") var format: String = "table"
    @Flag(help: "Print only the number of matching events.") var count = false

    func buildQuery() throws -> EventQuery {
        var q = try filter.buildQuery()
        if let l = limit, l < 0 { throw ValidationError("--limit must be >= 0") }
        q.limit = limit
        return q
    }

    func validate() throws {
        guard ["table", "json", "csv"].contains(format) else { throw ValidationError("--format must be table, json or csv") }
        _ = try buildQuery()
    }

    func run() throws {
        let q = try buildQuery()
        let reader = try openReader(data.data)
        if count {
            let n = try reader.count(q)
            try recordInvestigation(data: data.data, actor: actor, .query, parameters: parameters, resultCount: n)
            print(n)
            return
        }
        let rows = try reader.events(q)
        try recordInvestigation(data: data.data, actor: actor, .query, parameters: parameters, resultCount: rows.count)
        switch format {
        case "json":
            var out = [UInt8]("[".utf8)
            for (i, r) in rows.enumerated() {
                if i > 0 { out.append(contentsOf: Array(",\n".utf8)) }
                out.append(contentsOf: r.event.canonicalJSON(index: r.index))
            }
            out.append(contentsOf: Array("]\n".utf8))
            FileHandle.standardOutput.write(Data(out))
        case "csv":
            print(Self.columns.map(\.0).joined(separator: ","))
            for r in rows { print(Self.columns.map { csvField($0.1(r)) }.joined(separator: ",")) }
        default:
            printTable(rows)
        }
    }

    /// The request as the trail records it (`custos.investigation/v1`).
    var parameters: [String: String?] {
        filter.parameters.merging(["limit": limit.map(String.init), "format": count ? "count" : format]) { a, _ in a }
    }

    static let columns: [(String, @Sendable (IndexedEvent) -> String)] = [
        ("index", { String($0.index) }),
        ("time", { $0.event.time.description }),
        ("outcome", { $0.event.outcome.rawValue }),
        ("action", { $0.event.action.rawValue }),
        ("kind", { $0.event.identity.kind.rawValue }),
        ("identity", { $0.event.identity.name ?? $0.event.identity.id ?? "-" }),
        ("secret", { $0.event.secret?.path ?? "-" }),
        ("env", { $0.event.secret?.environment ?? "-" }),
        ("ip", { $0.event.origin?.ip ?? "-" }),
        ("reason", { $0.event.reason ?? "" }),
        ("source", { "\($0.event.source.kind)/\($0.event.source.instance)" }),
        ("id", { $0.event.id }),
    ]

    func printTable(_ rows: [IndexedEvent]) {
        let cols = Array(Self.columns.prefix(10))
        printTextTable(header: cols.map { $0.0.uppercased() }, rows: rows.map { r in cols.map { $0.1(r) } })
        stderrPrint("\(rows.count) event(s)")
    }
}

/// The event filters `query`, `evidence` and the evidence pack share.
struct FilterOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Secret path glob, e.g. 'secret/data/prod/*'.", valueName: "GLOB")) var secret: String?
    @Option(help: ArgumentHelp("Identity name or id glob.", valueName: "GLOB")) var identity: String?
    @Option(help: ArgumentHelp("Identity kind: \(IdentityKind.allCases.map(\.rawValue).joined(separator: ", ")).", valueName: "KIND")) var kind: [String] = []
    @Option(help: ArgumentHelp("Outcome: success, denied, error.", valueName: "OUTCOME")) var outcome: [String] = []
    @Option(help: ArgumentHelp("Environment, e.g. prod.", valueName: "ENV")) var env: [String] = []
    @Option(help: ArgumentHelp("Action, e.g. read, list, write, delete, login, token_create, policy_change.", valueName: "ACTION")) var action: [String] = []
    @Option(help: ArgumentHelp("Earliest time (inclusive).", valueName: "TIME")) var from: String?
    @Option(help: ArgumentHelp("Latest time (exclusive).", valueName: "TIME")) var to: String?

    static func parseTime(_ s: String, _ flag: String) throws -> EventTime {
        if let t = EventTime(rfc3339: s) { return t }
        if s.utf8.count == 10, let t = EventTime(rfc3339: s + "T00:00:00Z") { return t }
        throw ValidationError("\(flag): '\(s)' is not an RFC 3339 time or a YYYY-MM-DD date")
    }

    func buildQuery() throws -> EventQuery {
        var q = EventQuery()
        q.secret = secret
        q.identity = identity
        q.kinds = try kind.map { k in
            guard let v = IdentityKind(rawValue: k) else { throw ValidationError("--kind: '\(k)' is not one of \(IdentityKind.allCases.map(\.rawValue).joined(separator: ", "))") }
            return v
        }
        q.outcomes = try outcome.map { o in
            guard let v = Outcome(rawValue: o) else { throw ValidationError("--outcome: '\(o)' is not one of success, denied, error") }
            return v
        }
        q.environments = env
        q.actions = action
        q.from = try from.map { try Self.parseTime($0, "--from") }
        q.to = try to.map { try Self.parseTime($0, "--to") }
        if let f = q.from, let t = q.to, !(f < t) { throw ValidationError("--from must be before --to") }
        return q
    }

    /// The filters as the trail records them (`custos.investigation/v1`).
    var parameters: [String: String?] {
        ["secret": secret, "identity": identity, "kind": kind.isEmpty ? nil : kind.joined(separator: ","),
         "outcome": outcome.isEmpty ? nil : outcome.joined(separator: ","), "env": env.isEmpty ? nil : env.joined(separator: ","),
         "action": action.isEmpty ? nil : action.joined(separator: ","), "from": from, "to": to]
    }
}

func csvField(_ s: String) -> String { csvCell(s) }

/// Prints rows as aligned columns, one line per row (newlines and tabs in values become
/// spaces; values wider than 60 characters are cut with an ellipsis).
func printTextTable(header: [String], rows: [[String]]) {
    print(formatTextTable(header: header, rows: rows), terminator: "")
}

/// `printTextTable`'s text, each line ending in a newline.
func formatTextTable(header: [String], rows: [[String]]) -> String {
    var out = ""
    let table = [header] + rows.map { $0.map { v in String(v.map { $0.isNewline || $0 == "\t" ? " " : $0 }) } }
    var widths = Array(repeating: 0, count: header.count)
    for row in table { for (i, v) in row.enumerated() { widths[i] = min(60, max(widths[i], v.count)) } }
    for row in table {
        let line = row.enumerated().map { i, v in
            let t = v.count > widths[i] ? String(v.prefix(widths[i] - 1)) + "…" : v
            return i == row.count - 1 ? t : t.padding(toLength: widths[i], withPad: " ", startingAt: 0)
        }.joined(separator: "  ")
        out += line + "\n"
    }
    return out
}

struct Reindex: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Rebuild the index from the trail.",
        discussion: """
            The index is derived data: this drops it and reads every entry of the trail again. \
            The trail's checkpoint must verify with DIR/keys/trail.vkey; the signing key is not \
            needed, so this also works on an auditor's copy. Run `custos verify` first for \
            full assurance that the entries themselves are intact.
            """)

    @OptionGroup var data: DataOptions

    func run() throws {
        try requireDataDirectory(data.data)
        let n = try EventReader.rebuildIndex(directory: data.data)
        print("reindexed \(n) entries")
    }
}
