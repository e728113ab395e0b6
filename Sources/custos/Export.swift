import ArgumentParser
import CustosCore
import CustosServer
import CustosStore
import Foundation

/// `custos export`: the events `custos query` would find, in a SIEM's format.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Export events for a SIEM: OCSF (NDJSON), RFC 5424 syslog or CEF.",
        discussion: """
            Takes the same filters as `custos query`. --format ocsf (the default) writes one OCSF \
            \(OCSF.version) record per line: logins as Authentication (class_uid 3002), every other \
            access as API Activity (class_uid 6003), each with metadata.version \(OCSF.version) and \
            metadata.sequence = the event's trail index. --format syslog5424 and cef write one \
            message per line (README "Out to SIEMs: OCSF, syslog and CEF"). The export is recorded \
            in the trail as an investigation (action export) before anything is written.
            """)

    static let formats = ["ocsf", "syslog5424", "cef"]

    @OptionGroup var data: DataOptions
    @OptionGroup var actor: ActorOptions
    @OptionGroup var filter: FilterOptions
    @Option(help: ArgumentHelp("At most N events.", valueName: "N")) var limit: Int?
    @Option(help: "Output: ocsf, syslog5424 or cef.") var format: String = "ocsf"
    @Option(help: ArgumentHelp("Write to FILE instead of standard output.", valueName: "FILE")) var out: String?
    @Option(help: ArgumentHelp("HOSTNAME of syslog5424 and cef messages (default: this host).", valueName: "NAME")) var hostname: String?

    func buildQuery() throws -> EventQuery {
        var q = try filter.buildQuery()
        if let l = limit, l < 0 { throw ValidationError("--limit must be >= 0") }
        q.limit = limit
        return q
    }

    func validate() throws {
        guard Self.formats.contains(format) else { throw ValidationError("--format must be \(Self.formats.joined(separator: ", "))") }
        _ = try buildQuery()
    }

    func run() throws {
        let q = try buildQuery()
        let reader = try openReader(data.data)
        let rows = try reader.events(q)
        try recordInvestigation(data: data.data, actor: actor, .export, parameters: parameters, resultCount: rows.count)
        let host = hostname ?? ProcessInfo.processInfo.hostName
        var bytes: [UInt8] = []
        switch format {
        case "syslog5424":
            for r in rows { bytes += Array(SyslogOut.rfc5424(r.event, hostname: host).utf8); bytes.append(0x0A) }
        case "cef":
            for r in rows { bytes += Array(SyslogOut.cef(r.event).utf8); bytes.append(0x0A) }
        default:
            bytes = OCSF.ndjson(rows.map { (index: Optional($0.index), event: $0.event) })
        }
        if let out {
            guard FileManager.default.createFile(atPath: out, contents: Data(bytes)) else { throw CLIError.failed("cannot write \(out)") }
            stderrPrint("\(rows.count) event(s) written to \(out) (\(format))")
        } else {
            FileHandle.standardOutput.write(Data(bytes))
        }
    }

    /// The request as the trail records it (`custos.investigation/v1`).
    var parameters: [String: String?] {
        filter.parameters.merging(["limit": limit.map(String.init), "format": format, "out": out]) { a, _ in a }
    }
}
