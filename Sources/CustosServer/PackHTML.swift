import CustosCore
import CustosTrail
import Foundation

/// The evidence pack's report: one HTML file, inline CSS and SVG, no scripts (its
/// Content-Security-Policy forbids them), readable offline.
enum PackHTML {
    static func esc(_ s: String) -> String {
        var o = ""
        o.reserveCapacity(s.utf8.count)
        for c in s.unicodeScalars {
            switch c {
            case "&": o += "&amp;"
            case "<": o += "&lt;"
            case ">": o += "&gt;"
            case "\"": o += "&quot;"
            case "'": o += "&#39;"
            default: o.unicodeScalars.append(c.properties.generalCategory == .control ? " " : c)
            }
        }
        return o
    }

    static func render(options o: EvidencePack.Options, aggregates a: PackAggregates, evidence e: EvidenceReport,
                       verification v: TrailVerifier.Report, summary s: EvidencePack.Summary,
                       investigations: [InvestigationRecord], incidents: [Incident]) -> String {
        var h = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
            <title>Custos evidence pack: \(esc(e.head.checkpoint.origin)), \(esc(o.from.description)) to \(esc(o.to.description))</title>
            <style>
            body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:70rem;color:#1d2330;line-height:1.45}
            h1{font-size:1.6rem;margin-bottom:.2rem} h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d0d5dd;padding-bottom:.2rem}
            table{border-collapse:collapse;width:100%;font-size:.88rem} th,td{text-align:left;padding:.25rem .5rem;border-bottom:1px solid #e4e7ec;vertical-align:top}
            th{background:#f2f4f7} .num{text-align:right;font-variant-numeric:tabular-nums} code{font-size:.85em;word-break:break-all}
            .ok{color:#067647;font-weight:600} .bad{color:#b42318;font-weight:600} .muted{color:#667085}
            .cards{display:flex;flex-wrap:wrap;gap:.8rem} .card{border:1px solid #d0d5dd;border-radius:.4rem;padding:.6rem .9rem;min-width:9rem}
            .card b{display:block;font-size:1.5rem} figure{margin:1rem 0} figcaption{font-size:.85rem;color:#667085}
            </style></head><body>
            <h1>Evidence pack: access to secrets</h1>
            <p class="muted">Log <code>\(esc(e.head.checkpoint.origin))</code> · period \(esc(o.from.description)) (inclusive) to \(esc(o.to.description)) (exclusive) · made \(esc(o.now.description)) by \(esc(o.generatedBy))</p>

            """
        // Verdict first.
        h += v.isValid
            ? "<p class=\"ok\" id=\"verdict\">The trail verified: \(v.entriesChecked) entries, \(v.tilesChecked) tiles and \(v.checkpointsChecked) kept checkpoints agree with the signed checkpoint of size \(v.size).</p>\n"
            : "<p class=\"bad\" id=\"verdict\">THE TRAIL DID NOT VERIFY: \(v.problems.count) problem(s); see verification.txt. Nothing below can be relied on.</p>\n"
        h += "<p><b>\(esc(e.statement))</b> (human, successful reads of secrets in environments \(esc(o.productionEnvironments.joined(separator: ", "))); evidence.json holds the proofs.)</p>\n"
        h += "<div class=\"cards\">"
        for (label, n) in [("events", s.events), ("accesses", s.accesses), ("denials", s.denials), ("alerts", s.alerts),
                           ("human reads of production secrets", e.count), ("incidents", s.incidents), ("investigations", s.investigations)] {
            h += "<div class=\"card\"><b>\(n)</b>\(esc(label))</div>"
        }
        h += "</div>\n"

        h += "<h2>Over time</h2>\n" + chart(a)

        h += "<h2>Who accessed which production secret</h2>\n"
        if a.prod.isEmpty {
            h += "<p>No access to a production secret in the period.</p>\n"
        } else {
            h += "<table><tr><th>identity</th><th>kind</th><th>secret</th><th class=\"num\">reads</th><th class=\"num\">denied</th><th>first</th><th>last</th></tr>\n"
            for (k, v) in a.prod.sorted(by: { ($0.key.secret, $0.key.identity) < ($1.key.secret, $1.key.identity) }).prefix(2000) {
                h += "<tr><td>\(esc(k.identity))</td><td>\(esc(k.kind))</td><td><code>\(esc(k.secret))</code></td><td class=\"num\">\(v.ok)</td><td class=\"num\">\(v.denied)</td><td>\(esc(v.first.description))</td><td>\(esc(v.last.description))</td></tr>\n"
            }
            h += "</table>\n"
            if a.prod.count > 2000 { h += "<p class=\"muted\">… \(a.prod.count - 2000) more rows in events.csv.</p>\n" }
        }

        h += "<h2>Alerts and response against SLA</h2>\n"
        if a.alerts.isEmpty {
            h += "<p>No alert was raised in the period.</p>\n"
        } else {
            let withSLA = a.alerts.filter { $0.alert.slaDeadline != nil }
            let met = withSLA.filter { r in r.notified.map { $0 <= r.alert.slaDeadline! } ?? false }.count
            h += "<p>\(a.alerts.count) alert(s); \(met) of \(withSLA.count) with a response goal had their owner notified within it.</p>\n"
            h += "<table><tr><th>raised</th><th>class</th><th>severity</th><th>owner</th><th>identity</th><th>secret</th><th>SLA deadline</th><th>owner notified</th><th>within SLA</th></tr>\n"
            for r in a.alerts.prefix(2000) {
                let x = r.alert
                let within: String
                if let n = r.notified, let d = x.slaDeadline { within = n <= d ? "<span class=\"ok\">yes</span>" : "<span class=\"bad\">no</span>" } else { within = "<span class=\"muted\">-</span>" }
                h += "<tr><td>\(esc(x.raisedAt.description))</td><td>\(esc(x.alertClass.rawValue))</td><td>\(esc(x.severity.rawValue))</td><td>\(esc(x.owner?.name ?? x.owner?.key ?? "-"))</td><td>\(esc(x.identity.name ?? x.identity.id ?? "-"))</td><td><code>\(esc(x.secret?.path ?? "-"))</code></td><td>\(esc(x.slaDeadline?.description ?? "-"))</td><td>\(esc(r.notified?.description ?? "not recorded"))</td><td>\(within)</td></tr>\n"
            }
            h += "</table>\n"
        }

        h += "<h2>Incidents</h2>\n"
        if incidents.isEmpty {
            h += "<p>No alert of high or critical severity (which opens an incident) was raised in the period.</p>\n"
        } else {
            let withSLA = incidents.filter { $0.deadline != nil }
            let met = withSLA.filter { $0.acknowledgedWithinSLA == true }.count
            h += "<p>\(incidents.count) incident(s); \(met) of \(withSLA.count) acknowledged within their SLA.</p>\n"
            for i in incidents {
                let within = i.acknowledgedWithinSLA.map { $0 ? "<span class=\"ok\">acknowledged within SLA</span>" : "<span class=\"bad\">acknowledged after the SLA</span>" }
                    ?? (i.acknowledged == nil ? "<span class=\"bad\">not acknowledged</span>" : "")
                h += "<h3 id=\"incident-\(esc(i.id))\">\(esc(i.alert.alertClass.rawValue)) · \(esc(i.alert.severity.rawValue)) · <code>\(esc(i.id))</code> · \(esc(i.state.rawValue)) · \(within)</h3>\n"
                h += "<p>\(esc(i.alert.summary))</p>\n<table><tr><th>time</th><th>step</th><th>who</th><th>detail</th></tr>\n"
                h += "<tr><td>\(esc(i.alert.raisedAt.description))</td><td>opened (alert raised)</td><td>custos</td><td>owner \(esc(i.alert.owner?.name ?? "-")), SLA deadline \(esc(i.deadline?.description ?? "-"))</td></tr>\n"
                for (_, st) in i.steps {
                    var detail = st.text ?? ""
                    if let v = st.verdict { detail = v.rawValue + (detail.isEmpty ? "" : ": " + detail) }
                    if let to = st.escalatedTo { detail = "to \(to), level \(st.level ?? 0)" }
                    if !st.investigations.isEmpty { detail += " (rests on \(st.investigations.count) recorded investigation(s))" }
                    h += "<tr><td>\(esc(st.time.description))</td><td>\(esc(st.step.rawValue))</td><td>\(esc(st.actor))</td><td>\(esc(detail))</td></tr>\n"
                }
                h += "</table>\n"
            }
        }

        h += "<h2>Who looked at the evidence</h2>\n"
        if investigations.isEmpty {
            h += "<p>No query or evidence request was recorded in the period.</p>\n"
        } else {
            h += "<table><tr><th>time</th><th>actor</th><th>channel</th><th>action</th><th class=\"num\">results</th></tr>\n"
            for r in investigations.prefix(500) {
                h += "<tr><td>\(esc(r.time.description))</td><td>\(esc(r.actor))</td><td>\(esc(r.channel))</td><td>\(esc(r.action.rawValue))</td><td class=\"num\">\(r.resultCount.map(String.init) ?? "-")</td></tr>\n"
            }
            h += "</table>\n"
        }

        h += """
            <h2>SOC 2 CC7.2: what this pack supports</h2>
            <table><tr><th>point of focus</th><th>in this pack</th></tr>
            <tr><td>Implements detection policies, procedures and tools</td><td>Every access (success and denial) to the secret stores is recorded (events.csv); alerts raised by the detection policy are listed with their owner and class (alerts.csv).</td></tr>
            <tr><td>Designs detection measures (unauthorized access, anomalies)</td><td>Alert classes cover unknown IPs and countries, off-hours access, repeated failures, out-of-scope access, break-glass (root) use, impossible travel and unusual volume.</td></tr>
            <tr><td>Implements filters to analyze anomalies</td><td>The production-access table and the evidence query above; routine events are logged, not alerted.</td></tr>
            <tr><td>Monitors detection tools for effective operation</td><td>Owner notifications and their timing against each alert's response goal (the SLA column).</td></tr>
            <tr><td>Responds to and evaluates security events</td><td>Incidents: acknowledgement against the SLA, escalations, the verdict with the investigations it rests on, the actions taken, the closing (incidents.csv).</td></tr>
            <tr><td>Integrity of the monitoring records</td><td>A Merkle log with signed checkpoints: verification.txt, the consistency proofs and inclusion proofs in evidence.json, checkable with the verifier key alone.</td></tr>
            <tr><td>Review of monitoring activity</td><td>Every query and evidence request is itself recorded (who looked at the evidence, above).</td></tr>
            </table>

            <h2>Checkpoints</h2>
            <table><tr><th></th><th class="num">size</th><th>root</th></tr>

            """
        let cps: [(String, SignedCheckpoint?)] = [("before the period", e.before), ("after the period", e.after), ("current", e.head)]
        for (label, c) in cps {
            guard let c else { h += "<tr><td>\(label)</td><td class=\"num\">0</td><td class=\"muted\">the log's beginning</td></tr>\n"; continue }
            h += "<tr><td>\(label)</td><td class=\"num\">\(c.checkpoint.size)</td><td><code>\(esc(c.checkpoint.rootHash.base64))</code></td></tr>\n"
        }
        h += "</table>\n<p>Verifier key: <code>\(esc(e.verifierKey))</code>. Compare it with the key you received out of band. README.txt says how to check this pack without Custos running.</p>\n"
        h += "</body></html>\n"
        return h
    }

    /// Stacked daily bars: accesses (blue), denials (red), and alerts as marks above (amber).
    static func chart(_ a: PackAggregates) -> String {
        let first = PackAggregates.day(a.from)
        let last = max(first, PackAggregates.day(EventTime(seconds: a.to.seconds - 1, nanos: 0, digits: 0)))
        let n = Int(min(last - first + 1, 400))
        let maxCount = max(1, (0..<n).map { d -> Int in let c = a.days[first + Int64(d)] ?? (0, 0, 0); return c.ok + c.denied }.max() ?? 1)
        let maxAlerts = max(1, (0..<n).map { a.days[first + Int64($0)]?.alerts ?? 0 }.max() ?? 1)
        let w = 900.0, ph = 200.0, ah = 50.0, left = 50.0, top = 10.0
        let bw = (w - left - 10) / Double(n)
        var svg = "<figure><svg id=\"activity-chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(top + ph + ah + 45))\" role=\"img\" aria-label=\"accesses, denials and alerts per day\">\n"
        svg += "<rect x=\"0\" y=\"0\" width=\"\(Int(w))\" height=\"\(Int(top + ph + ah + 45))\" fill=\"#ffffff\"/>\n"
        // Axis and scale.
        svg += "<line x1=\"\(left)\" y1=\"\(top + ph)\" x2=\"\(w - 10)\" y2=\"\(top + ph)\" stroke=\"#98a2b3\"/>\n"
        svg += "<text x=\"\(left - 6)\" y=\"\(top + 10)\" font-size=\"11\" text-anchor=\"end\" fill=\"#475467\">\(maxCount)</text>\n"
        svg += "<text x=\"\(left - 6)\" y=\"\(top + ph)\" font-size=\"11\" text-anchor=\"end\" fill=\"#475467\">0</text>\n"
        for d in 0..<n {
            let c = a.days[first + Int64(d)] ?? (0, 0, 0)
            let x = left + Double(d) * bw
            let okH = ph * Double(c.ok) / Double(maxCount), denH = ph * Double(c.denied) / Double(maxCount)
            let date = EventTime(seconds: (first + Int64(d)) * 86_400, nanos: 0, digits: 0).description.prefix(10)
            if c.ok > 0 {
                svg += "<rect class=\"bar-access\" x=\(q(x + 0.5)) y=\(q(top + ph - okH)) width=\(q(max(1, bw - 1))) height=\(q(okH)) fill=\"#2e90fa\"><title>\(date): \(c.ok) access(es)</title></rect>\n"
            }
            if c.denied > 0 {
                svg += "<rect class=\"bar-denied\" x=\(q(x + 0.5)) y=\(q(top + ph - okH - denH)) width=\(q(max(1, bw - 1))) height=\(q(denH)) fill=\"#f04438\"><title>\(date): \(c.denied) denial(s)</title></rect>\n"
            }
            if c.alerts > 0 {
                let hgt = ah * Double(c.alerts) / Double(maxAlerts)
                svg += "<rect class=\"bar-alert\" x=\(q(x + 0.5)) y=\(q(top + ph + 25 + ah - hgt)) width=\(q(max(1, bw - 1))) height=\(q(hgt)) fill=\"#f79009\"><title>\(date): \(c.alerts) alert(s)</title></rect>\n"
            }
            if n <= 31 || d % max(1, n / 12) == 0 {
                svg += "<text x=\(q(x + bw / 2)) y=\(q(top + ph + 14)) font-size=\"9\" text-anchor=\"middle\" fill=\"#475467\">\(date.suffix(5))</text>\n"
            }
        }
        svg += "<text x=\"\(left)\" y=\"\(top + ph + ah + 40)\" font-size=\"11\" fill=\"#475467\">alerts per day (max \(maxAlerts))</text>\n"
        svg += "</svg><figcaption>Per UTC day: accesses (blue), denials (red) stacked; alerts below (amber). Hover a bar for its count.</figcaption></figure>\n"
        return svg
    }

    static func q(_ v: Double) -> String { "\"" + String(format: "%.1f", v) + "\"" }
}
