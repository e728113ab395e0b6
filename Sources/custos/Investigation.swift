import ArgumentParser
import CustosCore
import CustosServer
import CustosStore
import Foundation

/// Who runs a command that reads the evidence: recorded with it in the trail.
struct ActorOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Who is asking; recorded in the trail with the request (default: $CUSTOS_ACTOR, else $USER@host).",
                               valueName: "NAME"))
    var actor: String?
    @Option(help: ArgumentHelp("Link this request to an incident (its id), recorded with it.", valueName: "ID"))
    var incident: String?

    var resolved: String { resolveActor(actor) }

    func validate() throws {
        try validateActor(resolved)
        if let i = incident, !(6...64).contains(i.count) || !i.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) {
            throw ValidationError("--incident: an incident id (6...64 letters, digits or '-')")
        }
    }
}

/// Who records an incident step (`custos incident ...`).
struct ResponderOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Who is responding; recorded in the trail with the step (default: $CUSTOS_ACTOR, else $USER@host).",
                               valueName: "NAME"))
    var actor: String?

    var resolved: String { resolveActor(actor) }
    func validate() throws { try validateActor(resolved) }
}

func resolveActor(_ given: String?) -> String {
    if let given { return given }
    let env = ProcessInfo.processInfo.environment
    if let a = env["CUSTOS_ACTOR"], !a.isEmpty { return a }
    let user = env["USER"].flatMap { $0.isEmpty ? nil : $0 } ?? env["LOGNAME"].flatMap { $0.isEmpty ? nil : $0 } ?? "uid-\(getuid())"
    return "\(user)@\(ProcessInfo.processInfo.hostName)"
}

func validateActor(_ a: String) throws {
    guard (1...128).contains(a.unicodeScalars.count), !a.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
        throw ValidationError("--actor (or $CUSTOS_ACTOR): 1...128 characters without control characters")
    }
}

/// Records a look at the evidence (a query, an alert listing, an evidence request) in the
/// data directory's trail before anything is shown: durable in the trail, or in its spool
/// when a server holds the directory (`InvestigationLog`).
func recordInvestigation(data: String, actor: ActorOptions, _ action: InvestigationRecord.Action,
                         parameters: [String: String?], resultCount: Int?, incident: String? = nil) throws {
    var params: [String: String] = [:]
    for (k, v) in parameters { if let v { params[k] = v } }
    let r = InvestigationRecord(time: EventTime(unixTime: Date().timeIntervalSince1970), actor: actor.resolved, channel: "cli",
                                action: action, parameters: params, resultCount: resultCount, incident: incident ?? actor.incident)
    let recorded: InvestigationLog.Recorded
    do { recorded = try InvestigationLog.record(r, directory: data) } catch {
        throw CLIError.operational("\(error)")
    }
    switch recorded {
    case .trail(let i): stderrPrint("custos: recorded in the trail as an investigation (\(action.rawValue), entry \(i), \(r.id))")
    case .spooled: stderrPrint("custos: recorded as an investigation (\(action.rawValue), \(r.id)); a running server appends it to the trail")
    }
}

struct Investigations: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the recorded investigations (who queried what, when).",
        discussion: """
            Every query, alert listing and evidence request, on the command line or the API, is \
            recorded in the trail as a custos.investigation/v1 entry before its results are shown. \
            Listing them is not itself recorded (it would record itself forever). Records still in \
            the spool (a server holds the directory and appends them within a second) are not shown.
            """)

    @OptionGroup var data: DataOptions
    @Option(help: ArgumentHelp("Only this actor (a glob: * ? [..]).", valueName: "GLOB")) var actor: String?
    @Option(help: ArgumentHelp("Earliest time (inclusive).", valueName: "TIME")) var from: String?
    @Option(help: ArgumentHelp("Latest time (exclusive).", valueName: "TIME")) var to: String?
    @Option(help: "Output: table or json.") var format: String = "table"

    func validate() throws {
        guard ["table", "json"].contains(format) else { throw ValidationError("--format must be table or json") }
        _ = try from.map { try FilterOptions.parseTime($0, "--from") }
        _ = try to.map { try FilterOptions.parseTime($0, "--to") }
    }

    func run() throws {
        try requireDataDirectory(data.data)
        let reader: EventReader
        do { reader = try EventReader(directory: data.data) } catch let e as IndexError { throw CLIError.usage(e.message) }
        let f = try from.map { try FilterOptions.parseTime($0, "--from") }, t = try to.map { try FilterOptions.parseTime($0, "--to") }
        let rows = try reader.investigations().filter { r in
            (actor.map { Glob.matches($0, r.record.actor) } ?? true)
                && (f.map { r.record.time.unixNanos >= $0.unixNanos } ?? true) && (t.map { r.record.time.unixNanos < $0.unixNanos } ?? true)
        }
        if format == "json" {
            var out = [UInt8]("[".utf8)
            for (i, r) in rows.enumerated() {
                if i > 0 { out.append(contentsOf: Array(",\n".utf8)) }
                var b = r.record.canonicalJSON()
                b.removeLast()
                out.append(contentsOf: b + Array(",\"index\":\(r.index)}".utf8))
            }
            out.append(contentsOf: Array("]\n".utf8))
            FileHandle.standardOutput.write(Data(out))
            return
        }
        printTextTable(header: ["INDEX", "TIME", "ACTOR", "CHANNEL", "ACTION", "RESULTS", "PARAMETERS"], rows: rows.map { r in
            let p = r.record.parameters.keys.sorted().map { "\($0)=\(r.record.parameters[$0]!)" }.joined(separator: " ")
            return [String(r.index), r.record.time.description, r.record.actor, r.record.channel, r.record.action.rawValue,
                    r.record.resultCount.map(String.init) ?? "-", p]
        })
        stderrPrint("\(rows.count) investigation(s)")
    }
}
