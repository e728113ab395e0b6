import CustosCore
import CustosStore
import CustosTrail
import Foundation

/// An evidence pack for a review period: a folder an auditor reads and checks without Custos
/// running (`custos evidence pack`), and the same folder as a .zip.
///
///     index.html                 the report: charts (SVG, no scripts), production access, alerts against SLA, CC7.2
///     events.csv, events.ndjson  every event of the period (canonical JSON with its trail index)
///     alerts.csv, alerts.ndjson  every alert raised in the period
///     investigations.csv         who queried the evidence in the period
///     incidents.csv, .json       incidents opened in the period, every response step
///     evidence.json              custos.evidence/v1 for the production question (see `Evidence`)
///     checkpoints/               the before, after and head checkpoints (signed notes)
///     trail.vkey                 the verifier key
///     verification.txt           the transcript of a full verification of the trail
///     README.txt                 how to check all of it
///     SHA256SUMS                 every file above
public struct EvidencePack {
    public struct Options: Sendable {
        public var from: EventTime
        public var to: EventTime
        /// Environments that are production (events' `secret.environment`).
        public var productionEnvironments: [String] = ["prod", "production"]
        public var generatedBy: String
        public var now: EventTime = EventTime(unixTime: Date().timeIntervalSince1970)
        public init(from: EventTime, to: EventTime, generatedBy: String) { self.from = from; self.to = to; self.generatedBy = generatedBy }
    }

    /// What the pack found, for the command's summary and the tests.
    public struct Summary: Sendable {
        public var events = 0, accesses = 0, denials = 0, alerts = 0, investigations = 0, incidents = 0
        public var humanProductionReads = 0
        public var verified = false
        /// The files SHA256SUMS covers (it is in the folder and the zip too).
        public var files: [String] = []
        public var zipPath: String?
    }

    /// Writes the pack into `directory` (created; must not exist or be empty) and `directory.zip`.
    public static func write(dataDirectory: String, verifier: NoteVerifier, options o: Options, into directory: String,
                             zip: Bool = true) throws -> Summary {
        let fm = FileManager.default
        if fm.fileExists(atPath: directory) {
            guard ((try? fm.contentsOfDirectory(atPath: directory)) ?? ["?"]).isEmpty else {
                throw EvidenceError("\(directory) exists and is not empty; choose a new folder for the pack")
            }
        }
        try fm.createDirectory(atPath: directory + "/checkpoints", withIntermediateDirectories: true)
        // The tables come from an index built here from the trail, not from the data
        // directory's index: that one is a database anyone with write access can edit (a row
        // deleted there would vanish from the pack with every checksum still consistent).
        let scratch = NSTemporaryDirectory() + "custos-pack-index-" + UUID().uuidString
        try fm.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? fm.removeItem(atPath: scratch) }
        let reader = try EventReader(directory: dataDirectory, verifier: verifier, freshIndexAt: scratch + "/index.sqlite")
        var s = Summary()
        var files: [String: [UInt8]] = [:]
        func put(_ name: String, _ bytes: [UInt8]) throws {
            try Data(bytes).write(to: URL(fileURLWithPath: directory + "/" + name))
            files[name] = bytes
        }

        // 1. The full verification first: a pack over a damaged trail says so on its first page.
        let verification = TrailVerifier(layout: TrailLayout(dataDirectory: dataDirectory), verifier: verifier).verify()
        s.verified = verification.isValid
        try put("verification.txt", Array(Self.transcript(verification, vkey: verifier.vkey).utf8))

        // 2. Events of the period, streamed in chunks; aggregates for the report.
        var period = EventQuery()
        period.from = o.from; period.to = o.to
        let indices = try reader.index.query(period)
        var csv = [UInt8]((PackTables.eventColumns.map(\.0).joined(separator: ",") + "\n").utf8)
        var ndjson: [UInt8] = []
        var agg = PackAggregates(from: o.from, to: o.to, production: Set(o.productionEnvironments))
        for chunk in stride(from: 0, to: indices.count, by: 8192) {
            for r in try EventReader.materialize(Array(indices[chunk..<min(indices.count, chunk + 8192)]), from: reader.trail) {
                csv.append(contentsOf: Array((PackTables.eventColumns.map { csvCell($0.1(r)) }.joined(separator: ",") + "\n").utf8))
                ndjson.append(contentsOf: r.event.canonicalJSON(index: r.index)); ndjson.append(0x0A)
                agg.add(r)
            }
        }
        s.events = indices.count
        s.accesses = agg.accesses
        s.denials = agg.denials
        try put("events.csv", csv)
        try put("events.ndjson", ndjson)

        // 3. Alerts raised in the period, with when their owner was notified.
        var aq = AlertQuery()
        aq.statuses = [.raised]
        aq.from = o.from; aq.to = o.to
        let alerts = try reader.alerts(aq)
        var notified: [String: EventTime] = [:]
        for d in try reader.deliveries() where d.delivered && !d.notice {
            if notified[d.alertID].map({ d.time < $0 }) ?? true { notified[d.alertID] = d.time }
        }
        var acsv = [UInt8]("index,id,class,severity,owner,raised_at,sla_deadline,notified_at,within_sla,identity,secret,summary\n".utf8)
        var andjson: [UInt8] = []
        for (i, a) in alerts {
            agg.addAlert(a, notified: notified[a.id])
            let within = notified[a.id].flatMap { n in a.slaDeadline.map { n <= $0 ? "yes" : "no" } } ?? "-"
            let row = [String(i), a.id, a.alertClass.rawValue, a.severity.rawValue, a.owner?.key ?? "", a.raisedAt.description,
                       a.slaDeadline?.description ?? "", notified[a.id]?.description ?? "", within,
                       a.identity.name ?? a.identity.id ?? "", a.secret?.path ?? "", a.summary]
            acsv.append(contentsOf: Array((row.map(csvCell).joined(separator: ",") + "\n").utf8))
            andjson.append(contentsOf: a.canonicalJSON(index: i)); andjson.append(0x0A)
        }
        s.alerts = alerts.count
        try put("alerts.csv", acsv)
        try put("alerts.ndjson", andjson)

        // 4. Investigations in the period.
        let inv = try reader.investigations().filter { $0.record.time >= o.from && $0.record.time < o.to }
        var icsv = [UInt8]("index,time,actor,channel,action,results,parameters\n".utf8)
        for (i, r) in inv {
            let p = r.parameters.keys.sorted().map { "\($0)=\(r.parameters[$0]!)" }.joined(separator: " ")
            let row = [String(i), r.time.description, r.actor, r.channel, r.action.rawValue, r.resultCount.map(String.init) ?? "", p]
            icsv.append(contentsOf: Array((row.map(csvCell).joined(separator: ",") + "\n").utf8))
        }
        s.investigations = inv.count
        try put("investigations.csv", icsv)

        // 5. Incidents opened by alerts of the period: every step, as recorded.
        let incidents = try IncidentBook.load(reader).filter { $0.alert.raisedAt >= o.from && $0.alert.raisedAt < o.to }
        var ccsv = [UInt8]("id,class,severity,owner,raised_at,sla_deadline,acknowledged_at,acknowledged_by,acknowledged_within_sla,escalations,verdict,verdict_by,actions,closed_at,closed_by,linked_investigations,state\n".utf8)
        for i in incidents {
            let row = [i.id, i.alert.alertClass.rawValue, i.alert.severity.rawValue, i.alert.owner?.key ?? "", i.alert.raisedAt.description,
                       i.deadline?.description ?? "", i.acknowledged?.time.description ?? "", i.acknowledged?.actor ?? "",
                       i.acknowledgedWithinSLA.map { $0 ? "yes" : "no" } ?? "", String(i.escalations.count),
                       i.verdict?.verdict?.rawValue ?? "", i.verdict?.actor ?? "", i.actions.compactMap(\.text).joined(separator: " | "),
                       i.closed?.time.description ?? "", i.closed?.actor ?? "", String(i.investigations.count), i.state.rawValue]
            ccsv.append(contentsOf: Array((row.map(csvCell).joined(separator: ",") + "\n").utf8))
        }
        s.incidents = incidents.count
        try put("incidents.csv", ccsv)
        try put("incidents.json", IncidentJSON.encode(incidents.map { IncidentJSON.obj($0, playbook: Playbook.resolve($0.alert, in: Playbook.defaults)) }))

        // 6. The production question as evidence, and the checkpoints.
        var prodHuman = EventQuery()
        prodHuman.from = o.from; prodHuman.to = o.to
        prodHuman.kinds = [.human]
        prodHuman.outcomes = [.success]
        prodHuman.environments = o.productionEnvironments
        let evidence = try Evidence.run(directory: dataDirectory, verifier: verifier, query: prodHuman, now: o.now)
        s.humanProductionReads = evidence.count
        try put("evidence.json", evidence.json(generatedBy: o.generatedBy))
        if let b = evidence.before { try put("checkpoints/before", Array(b.note.utf8)) }
        try put("checkpoints/after", Array(evidence.after.note.utf8))
        try put("checkpoints/head", Array(evidence.head.note.utf8))
        try put("trail.vkey", Array((verifier.vkey + "\n").utf8))

        // 7. The report and how to check it.
        let html = PackHTML.render(options: o, aggregates: agg, evidence: evidence, verification: verification, summary: s,
                                   investigations: inv.map(\.record), incidents: incidents)
        try put("index.html", Array(html.utf8))
        try put("README.txt", Array(Self.readme(o, evidence: evidence).utf8))
        s.files = files.keys.sorted()
        var sums = ""
        for name in s.files {
            sums += Hex.encode(SHA256Bytes.of(files[name]!)) + "  " + name + "\n"
        }
        try put("SHA256SUMS", Array(sums.utf8))
        if zip {
            let root = URL(fileURLWithPath: directory).lastPathComponent
            let path = directory.hasSuffix("/") ? String(directory.dropLast()) + ".zip" : directory + ".zip"
            try Data(ZipWriter.stored((s.files + ["SHA256SUMS"]).map { (root + "/" + $0, files[$0]!) }, modified: o.now)).write(to: URL(fileURLWithPath: path))
            s.zipPath = path
        }
        return s
    }

    static func transcript(_ r: TrailVerifier.Report, vkey: String) -> String {
        var t = "custos verify (full verification of the trail, trusting only the verifier key)\n"
        t += "verifier key: \(vkey)\n"
        t += "origin: \(r.origin)\nsize: \(r.size)\nroot: \(r.root?.base64 ?? "-")\n"
        t += "entries checked: \(r.entriesChecked)\ntiles checked: \(r.tilesChecked)\nkept checkpoints checked: \(r.checkpointsChecked)\n"
        if r.isValid {
            t += "result: VALID - every entry, tile and kept checkpoint agrees with the signed checkpoint\n"
        } else {
            t += "result: NOT VALID - \(r.problems.count) problem(s)\n"
            for p in r.problems { t += "  \(p)\n" }
        }
        return t
    }

    static func readme(_ o: Options, evidence: EvidenceReport) -> String {
        """
        Custos evidence pack
        ====================
        Log:     \(evidence.head.checkpoint.origin)
        Period:  \(o.from) (inclusive) to \(o.to) (exclusive)
        Made:    \(o.now) by \(o.generatedBy)

        Open index.html in a browser (no scripts, no network).

        To check this pack without the Custos server:
        1. Compare trail.vkey with the verifier key you received from the log's operator out of
           band. Use YOUR copy of the key below, not the one in this folder.
        2. sha256sum -c SHA256SUMS
        3. custos evidence check evidence.json --vkey YOUR-COPY-OF-trail.vkey
           (signatures of the checkpoints, consistency between them, the scan over the whole log,
           and the inclusion proof of every event it lists)
        4. If you hold a checkpoint of this log from an earlier review or from a witness, check
           that the log still extends it: custos verify --url ... --state YOUR-CHECKPOINT
        5. verification.txt is the transcript of a full verification run when the pack was made;
           re-run it on a copy of the trail with: custos verify --data COPY --vkey YOUR-KEY

        """
    }
}

/// A CSV field per RFC 4180, with spreadsheet formulas defused (a leading = + - @ gets a quote).
public func csvCell(_ s: String) -> String {
    var v = s
    if let f = v.first, "=+-@\t\r".contains(f), v != "-" { v = "'" + v }
    if v.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) {
        return "\"" + v.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
    return v
}

enum PackTables {
    static let eventColumns: [(String, @Sendable (IndexedEvent) -> String)] = [
        ("index", { String($0.index) }),
        ("time", { $0.event.time.description }),
        ("outcome", { $0.event.outcome.rawValue }),
        ("action", { $0.event.action.rawValue }),
        ("kind", { $0.event.identity.kind.rawValue }),
        ("identity", { $0.event.identity.name ?? $0.event.identity.id ?? "" }),
        ("secret", { $0.event.secret?.path ?? "" }),
        ("env", { $0.event.secret?.environment ?? "" }),
        ("ip", { $0.event.origin?.ip ?? "" }),
        ("reason", { $0.event.reason ?? "" }),
        ("source", { "\($0.event.source.kind)/\($0.event.source.instance)" }),
        ("pipeline", { $0.event.pipeline?.name ?? "" }),
        ("id", { $0.event.id }),
    ]
}

/// Counts per day and per (identity, production secret), for the report.
struct PackAggregates {
    let from: EventTime, to: EventTime
    let production: Set<String>
    var accesses = 0, denials = 0
    /// Per UTC day (days since 1970): successes, denials, alerts.
    var days: [Int64: (ok: Int, denied: Int, alerts: Int)] = [:]
    struct ProdKey: Hashable { var identity: String; var kind: String; var secret: String }
    var prod: [ProdKey: (ok: Int, denied: Int, first: EventTime, last: EventTime)] = [:]
    struct AlertRow { var alert: Alert; var notified: EventTime? }
    var alerts: [AlertRow] = []

    init(from: EventTime, to: EventTime, production: Set<String>) { self.from = from; self.to = to; self.production = production }

    static func day(_ t: EventTime) -> Int64 { t.seconds >= 0 ? t.seconds / 86_400 : (t.seconds - 86_399) / 86_400 }

    mutating func add(_ r: IndexedEvent) {
        let e = r.event
        let d = Self.day(e.time)
        var c = days[d] ?? (0, 0, 0)
        if e.outcome == .success { accesses += 1; c.ok += 1 } else if e.outcome == .denied { denials += 1; c.denied += 1 }
        days[d] = c
        if let env = e.secret?.environment, production.contains(env), let path = e.secret?.path {
            let k = ProdKey(identity: e.identity.name ?? e.identity.id ?? "(unknown)", kind: e.identity.kind.rawValue, secret: path)
            var v = prod[k] ?? (0, 0, e.time, e.time)
            if e.outcome == .success { v.ok += 1 } else { v.denied += 1 }
            if e.time < v.first { v.first = e.time }
            if e.time > v.last { v.last = e.time }
            prod[k] = v
        }
    }

    mutating func addAlert(_ a: Alert, notified: EventTime?) {
        let d = Self.day(a.raisedAt)
        var c = days[d] ?? (0, 0, 0)
        c.alerts += 1
        days[d] = c
        alerts.append(AlertRow(alert: a, notified: notified))
    }
}
