// From an impossible-travel alert to a closed incident with the built `custos` binary, on the
// data directory `custos demo` leaves: alert, ack, investigation, verdict, action, close —
// every step found in the trail and in the evidence pack; the pack's HTML rendered by a real
// headless Chromium (Debian package `chromium`, installed by .ci/run) with its charts drawn.

import Foundation
import Testing

@Suite("response scenario")
struct ResponseScenarioTests {
    static func json(_ r: CommandResult) throws -> Any { try JSONSerialization.jsonObject(with: r.stdoutData) }

    @Test("impossible travel: alert → ack → investigate → verdict → action → close, in the trail and the pack")
    func impossibleTravelToClosedIncident() async throws {
        let custos = try locateCustos()
        let dir = try TempDir("response")
        defer { dir.remove() }
        let data = dir.path("data")
        _ = try await run(custos, ["demo", "--data", data], timeout: 180).expect(0, "custos demo")

        // The alert, and the incident it opened (severity high in the example policy).
        let alerts = try #require(try Self.json(try await run(custos, ["alerts", "--data", data, "--class", "impossible_travel", "--format", "json", "--actor", "alice"],
                                                               timeout: 60).expect(0, "alerts")) as? [[String: Any]])
        let alert = try #require(alerts.first)
        let id = try #require(alert["id"] as? String)
        let secret = try #require((alert["secret"] as? [String: Any])?["path"] as? String)
        let identity = try #require((alert["identity"] as? [String: Any])?["name"] as? String)
        let open = try #require(try Self.json(try await run(custos, ["incident", "list", "--data", data, "--format", "json"], timeout: 60)
            .expect(0, "incident list")) as? [[String: Any]])
        let incident = try #require(open.first { $0["id"] as? String == id })
        #expect(incident["state"] as? String == "open")
        #expect((incident["playbook"] as? [String: Any])?["id"] as? String == "PB-SEC-03")

        // Out of order is refused with the step that must come first.
        let early = try await run(custos, ["incident", "verdict", String(id.prefix(8)), "--data", data, "--confirmed", "--reason", "x"], timeout: 60)
        try early.expect(2, "verdict before ack")
        #expect(early.stderr.contains("start investigating first") || early.stderr.contains("acknowledge"), "\(early.stderr)")

        let who = ["--data", data, "--actor", "alice@secops"]
        // Looking at the incident is itself recorded (linked to it), before the ack.
        _ = try await run(custos, ["incident", "show", String(id.prefix(8)), "--format", "json"] + who, timeout: 60).expect(0, "incident show by alice")
        _ = try await run(custos, ["incident", "ack", String(id.prefix(8))] + who, timeout: 60).expect(0, "ack")
        _ = try await run(custos, ["incident", "investigate", id, "--text", "two logins 9000 km apart"] + who, timeout: 60).expect(0, "investigate")
        // The investigation: a query about the identity, and the blast radius of the secret.
        _ = try await run(custos, ["query", "--identity", identity, "--format", "json"] + who, timeout: 60).expect(0, "query")
        let blast = try await run(custos, ["blast-radius", "--secret", secret, "--format", "json"] + who, timeout: 60).expect(0, "blast-radius")
        #expect(blast.stdout.contains(identity), "the blast radius of \(secret) does not name \(identity)")
        _ = try await run(custos, ["incident", "verdict", id, "--confirmed", "--reason", "token replayed from another continent"] + who, timeout: 60)
            .expect(0, "verdict")
        _ = try await run(custos, ["incident", "close", id, "--summary", "x"] + who, timeout: 60).expect(2, "close without an action")
        _ = try await run(custos, ["incident", "action", id, "--text", "revoked the token; rotated \(secret)"] + who, timeout: 60).expect(0, "action")
        _ = try await run(custos, ["incident", "close", id, "--summary", "contained"] + who, timeout: 60).expect(0, "close")

        // The incident as recorded: every step, by alice, with the investigations linked.
        let shown = try #require(try Self.json(try await run(custos, ["incident", "show", id, "--data", data, "--format", "json"], timeout: 60)
            .expect(0, "incident show")) as? [String: Any])
        #expect(shown["state"] as? String == "closed")
        let steps = try #require(shown["steps"] as? [[String: Any]])
        #expect(steps.compactMap { $0["step"] as? String } == ["acknowledged", "investigating", "verdict", "action", "closed"])
        #expect(steps.allSatisfy { $0["actor"] as? String == "alice@secops" && ($0["index"] as? Int ?? -1) > 0 })
        let linked = try #require(shown["investigations"] as? [[String: Any]])
        #expect(Set(linked.compactMap { $0["action"] as? String }).isSuperset(of: ["query", "blast_radius"]), "\(linked)")
        #expect((steps[2]["investigations"] as? [String])?.count == linked.count)

        // The investigations are in the trail too.
        let inv = try #require(try Self.json(try await run(custos, ["investigations", "--data", data, "--actor", "alice*", "--format", "json"], timeout: 60)
            .expect(0, "investigations")) as? [[String: Any]])
        #expect(Set(inv.compactMap { $0["action"] as? String }).isSuperset(of: ["alerts", "query", "blast_radius", "incident"]))
        #expect(inv.contains { $0["action"] as? String == "incident" && $0["incident"] as? String == id }, "the look at the incident is not linked to it: \(inv)")

        // The pack holds it all, and the trail still verifies.
        let pack = dir.path("pack")
        let p = try await run(custos, ["evidence", "pack", "--data", data, "--from", "2000-01-01", "--to", "2100-01-01", "--out", pack, "--actor", "auditor"],
                              timeout: 120).expect(0, "evidence pack")
        #expect(p.stdout.contains("trail verification: valid"))
        let csv = try String(contentsOfFile: pack + "/incidents.csv", encoding: .utf8)
        let row = try #require(csv.split(separator: "\n").first { $0.hasPrefix(id) })
        #expect(row.contains("alice@secops") && row.contains("confirmed") && row.hasSuffix(",closed"), "\(row)")
        let html = try String(contentsOfFile: pack + "/index.html", encoding: .utf8)
        #expect(html.contains("id=\"incident-\(id)\"") && html.contains("token replayed from another continent"))
        let investigationsCSV = try String(contentsOfFile: pack + "/investigations.csv", encoding: .utf8)
        #expect(investigationsCSV.contains("alice@secops"))
        for action in ["query", "blast_radius", "incident"] {
            #expect(investigationsCSV.split(separator: "\n").contains { $0.contains("alice@secops") && $0.contains(action) }, "no \(action) by alice in the pack")
        }
        // Every step is in the pack: the alert, and each response step with its text.
        #expect(try String(contentsOfFile: pack + "/alerts.csv", encoding: .utf8).contains(id), "the alert is not in alerts.csv")
        let packed = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: pack + "/incidents.json"))) as? [[String: Any]])
        let packedSteps = try #require(packed.first { $0["id"] as? String == id }?["steps"] as? [[String: Any]])
        #expect(packedSteps.compactMap { $0["step"] as? String } == ["acknowledged", "investigating", "verdict", "action", "closed"])
        for text in ["two logins 9000 km apart", "token replayed from another continent", "revoked the token"] {
            #expect(html.contains(text), "the pack's report does not show the step '\(text)'")
        }
        _ = try await run(custos, ["evidence", "check", pack + "/evidence.json", "--vkey", data + "/keys/trail.vkey"], timeout: 60).expect(0, "evidence check")
        _ = try await run(custos, ["verify", "--data", data, "--vkey", data + "/keys/trail.vkey"], timeout: 60).expect(0, "verify")

        try await Self.screenshot(html: pack + "/index.html", into: dir)
    }

    /// Renders the report in headless Chromium and checks the screenshot has the chart's bar
    /// colours; keeps it in the test artifacts (`.build/test-artifacts/`, or $CUSTOS_ARTIFACTS).
    static func screenshot(html: String, into dir: TempDir) async throws {
        let candidates = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
        guard let chromium = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            if ProcessInfo.processInfo.environment["CUSTOS_REQUIRE_CHROMIUM"] == "1" {
                Issue.record("chromium is not installed (Debian package chromium; .ci/run installs it)")
            } else {
                print("skipped: the evidence pack screenshot needs chromium (apt-get install chromium)")
            }
            return
        }
        let png = dir.path("evidence-pack.png")
        let r = try await run(URL(fileURLWithPath: chromium), ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                                                               "--window-size=1280,1600", "--screenshot=\(png)", "file://\(html)"], timeout: 120)
        #expect(r.status == 0 && FileManager.default.fileExists(atPath: png), "chromium: \(r.stderr.suffix(2000))")
        // Count the pixels of the access (#2e90fa) and denial (#f04438) bars (Python's zlib decodes the PNG).
        let check = try await run(URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c", """
            import sys, zlib, struct
            b = open(sys.argv[1], 'rb').read()
            assert b[:8] == b'\\x89PNG\\r\\n\\x1a\\n'
            pos, idat, w, h, ct = 8, b'', 0, 0, 0
            while pos < len(b):
                n, t = struct.unpack('>I4s', b[pos:pos+8]); d = b[pos+8:pos+8+n]; pos += 12 + n
                if t == b'IHDR': w, h, depth, ct = struct.unpack('>IIBB', d[:10])
                elif t == b'IDAT': idat += d
            bpp = {2: 3, 6: 4}[ct]
            raw = zlib.decompress(idat); stride = w * bpp; prev = bytearray(stride); rows = []; i = 0
            for y in range(h):
                f = raw[i]; line = bytearray(raw[i+1:i+1+stride]); i += 1 + stride
                for x in range(stride):
                    a = line[x-bpp] if x >= bpp else 0; up = prev[x]; c = prev[x-bpp] if x >= bpp else 0
                    if f == 1: line[x] = (line[x] + a) & 255
                    elif f == 2: line[x] = (line[x] + up) & 255
                    elif f == 3: line[x] = (line[x] + (a + up) // 2) & 255
                    elif f == 4:
                        p = a + up - c; pa, pb, pc = abs(p - a), abs(p - up), abs(p - c)
                        line[x] = (line[x] + (a if pa <= pb and pa <= pc else up if pb <= pc else c)) & 255
                rows.append(line); prev = line
            def count(rgb):
                return sum(1 for line in rows for x in range(0, stride, bpp) if all(abs(line[x+k] - rgb[k]) <= 6 for k in range(3)))
            print(count((0x2e, 0x90, 0xfa)), count((0xf0, 0x44, 0x38)))
            """, png], timeout: 120).expect(0, "PNG check")
        let counts = check.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { Int($0) }
        #expect(counts.count == 2 && counts[0] > 50 && counts[1] > 10, "chart pixels (access, denied): \(check.stdout)")
        let artifacts = ProcessInfo.processInfo.environment["CUSTOS_ARTIFACTS"]
            ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent(".build/test-artifacts").path
        try? FileManager.default.createDirectory(atPath: artifacts, withIntermediateDirectories: true)
        let kept = artifacts + "/evidence-pack.png"
        try? FileManager.default.removeItem(atPath: kept)
        try FileManager.default.copyItem(atPath: png, toPath: kept)
        print("evidence pack screenshot: \(kept)")
    }
}
