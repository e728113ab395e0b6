import CustosScan
import Foundation
import Testing

@Suite struct VariantTests {
    let secret = "s3cr3t-Xk9fQ2vLm8pRz4TbW7yN"            // 27 bytes, high entropy
    let special = "Zq8!v r/Lp\"k&<'>$x`\\7mW;u+=%"          // every escaping changes it

    @Test func raw() throws {
        let m = try makeMatcher([("TOKEN", secret)])
        let f = scan(m, "step 1\nexport TOKEN=\(secret)\n")
        #expect(f.count == 1)
        let x = try #require(f.first)
        #expect(x.secretName == "TOKEN")
        #expect(x.variant == "raw")
        #expect(x.line == 2 && x.column == 14)
        #expect(x.matchedBytes == 27 && x.totalBytes == 27)
        #expect(x.fingerprint == testKey.fingerprint(Array(secret.utf8)))
        #expect(!x.fingerprint.contains(secret))
    }

    @Test(arguments: [0, 1, 2, 3, 4, 5])
    func base64Offsets(prefixLength: Int) throws {
        let m = try makeMatcher([("TOKEN", secret)])
        let payload = String(repeating: "{", count: prefixLength) + secret + "\"}"
        for padded in [true, false] {
            var b = base64(payload)
            if !padded { while b.hasSuffix("=") { b.removeLast() } }
            let f = scan(m, "Authorization: Basic \(b)\n")
            #expect(f.count == 1, "offset \(prefixLength) padded \(padded)")
            #expect(f.first?.encoding == "base64-std/offset\(prefixLength % 3)")
            #expect(f.first?.truncated == false)
        }
        // The secret alone, at the end of the payload: the last, unstable character differs.
        let f = scan(m, "x=\(base64(String(repeating: "a", count: prefixLength) + secret))")
        #expect(f.first?.encoding == "base64-std/offset\(prefixLength % 3)")
    }

    @Test(arguments: [0, 1, 2])
    func base64URLSafe(prefixLength: Int) throws {
        // Bytes chosen so the standard alphabet needs '+' and '/'.
        let s = "Kx9???~~~mQ7vR2pL>>>???~~~Wz"
        let m = try makeMatcher([("K", s)])
        let payload = Array(String(repeating: "a", count: prefixLength).utf8) + Array(s.utf8) + [0xFF, 0xFE]
        let url = base64URL(payload)
        #expect(url.contains("-") || url.contains("_"))
        let f = scan(m, "token=\(url.replacingOccurrences(of: "=", with: ""))&x=1\n")
        #expect(f.count == 1)
        #expect(f.first?.encoding.hasSuffix("/offset\(prefixLength)") == true)
        if prefixLength == 0 { #expect(f.first?.encoding == "base64-url/offset0") }   // "???" encodes as "Pz8/"
        let std = scan(m, "token=\(base64(payload))\n")
        #expect(std.first?.encoding == "base64-std/offset\(prefixLength)")
    }

    @Test(arguments: [64, 76])
    func wrappedBase64(width: Int) throws {
        let m = try makeMatcher([("TOKEN", secret)])
        // Bytes before the secret put its encoding across the first line break.
        let payload = String(repeating: "p", count: width * 3 / 4 - 10) + secret + String(repeating: "q", count: 100)
        let log = "$ base64 creds.json\n" + wrap(base64(payload), width) + "\n$ echo done\n"
        let f = scan(m, log)
        #expect(f.count == 1)
        #expect(f.first?.encoding.hasPrefix("base64-std/") == true)
        #expect(f.first?.splitLines == true)
        #expect(f.first?.truncated == false)
        #expect(f.first?.line == 2)
    }

    @Test func hexBothCases() throws {
        let m = try makeMatcher([("TOKEN", secret)])
        #expect(scan(m, "dump: \(hex(secret))\n").first?.encoding == "hex-lower")
        #expect(scan(m, "dump: \(hex(secret, upper: true))\n").first?.encoding == "hex-upper")
        #expect(scan(m, "dump: \(hex(secret))\n").first?.matchedBytes == 27)
    }

    @Test func percentAndForm() throws {
        let m = try makeMatcher([("P", special)])
        var allowed = CharacterSet.alphanumerics.intersection(CharacterSet(charactersIn: "a"..."z").union(CharacterSet(charactersIn: "A"..."Z")).union(CharacterSet(charactersIn: "0"..."9")))
        allowed.insert(charactersIn: "-._~")
        let pct = try #require(special.addingPercentEncoding(withAllowedCharacters: allowed))
        let f = scan(m, "GET /login?user=a&pass=\(pct) HTTP/1.1\n")
        #expect(f.count == 1)
        #expect(f.first?.encoding == "percent")
        #expect(f.first?.truncated == false)
        let form = pct.replacingOccurrences(of: "%20", with: "+")
        let g = scan(m, "body: user=a&pass=\(form)\n")
        #expect(g.first?.encoding == "form")
    }

    @Test func jsonEscapes() throws {
        let m = try makeMatcher([("P", special)])
        let enc = JSONEncoder()
        enc.outputFormatting = [.withoutEscapingSlashes]
        let plain = String(decoding: try enc.encode(["password": special]), as: UTF8.self)
        #expect(scan(m, plain + "\n").first?.encoding == "json-escaped")
        let slashed = String(decoding: try JSONSerialization.data(withJSONObject: ["password": special]), as: UTF8.self)
        #expect(slashed.contains("\\/"))
        #expect(scan(m, slashed + "\n").first?.encoding == "json-escaped-slash")
    }

    @Test func shellEscapes() throws {
        let m = try makeMatcher([("P", special)])
        let single = "'" + special.replacingOccurrences(of: "'", with: "'\\''") + "'"
        #expect(scan(m, "+ curl -u admin:\(single) https://x\n").first?.encoding == "shell-single")
        var double = ""
        for c in special { if "\\\"$`".contains(c) { double.append("\\") }; double.append(c) }
        #expect(scan(m, "+ export P=\"\(double)\"\n").first?.encoding == "shell-double")
        var q = ""   // bash printf %q
        for c in special {
            if !(c.isLetter || c.isNumber || "-._~/=:,@%+".contains(c)) { q.append("\\") }
            q.append(c)
        }
        #expect(scan(m, "+ login --password \(q)\n").first?.encoding == "shell-backslash")
    }

    @Test func xmlEscapes() throws {
        let m = try makeMatcher([("P", special)])
        var x = ""
        for c in special {
            switch c {
            case "&": x += "&amp;"
            case "<": x += "&lt;"
            case ">": x += "&gt;"
            case "\"": x += "&quot;"
            case "'": x += "&apos;"
            default: x.append(c)
            }
        }
        #expect(scan(m, "<password>\(x)</password>\n").first?.encoding == "xml-escaped")
        let h = x.replacingOccurrences(of: "&apos;", with: "&#x27;")
        #expect(scan(m, "<td>\(h)</td>\n").first?.encoding == "html-escaped")
    }

    @Test func splitLines() throws {
        let m = try makeMatcher([("TOKEN", secret)])
        let f = scan(m, "token: \(secret.prefix(10))\n\(secret.dropFirst(10))\nnext\n")
        #expect(f.count == 1)
        #expect(f.first?.variant == "raw+split-lines")
        #expect(f.first?.line == 1 && f.first?.column == 8)
        #expect(f.first?.matchedBytes == 27)
    }

    @Test func githubTimestampsAndANSI() throws {
        let m = try makeMatcher([("TOKEN", secret)])
        let ts = "2024-05-10T17:46:49.0654321Z "
        let log = "\(ts)##[group]Run deploy\n\(ts)\u{1B}[36;1mecho token=\(secret.prefix(9))\u{1B}[0m\u{1B}[1m\(secret.dropFirst(9).prefix(9))\n\(ts)\(secret.dropFirst(18))\u{1B}[0m done\n"
        let f = scan(m, log)
        #expect(f.count == 1)
        #expect(f.first?.variant == "raw+split-lines")
        #expect(f.first?.truncated == false)
        #expect(f.first?.line == 2)
        // Column in the original line: timestamp (29) + ESC[36;1m (7) + "echo token=" (11) + 1.
        #expect(f.first?.column == 29 + 7 + 11 + 1)
    }

    @Test func gitlabMarkers() throws {
        let m = try makeMatcher([("TOKEN", secret)])
        let log = "section_start:1715362009:step_script\r\u{1B}[0K\u{1B}[0K\u{1B}[36;1mExecuting \"step_script\"\u{1B}[0;m\n"
            + "2024-05-10T17:46:49.065432Z 00O $ echo $TOKEN | base64\n"
            + "2024-05-10T17:46:49.065999Z 01O+\(base64(secret).prefix(20))\n"
            + "2024-05-10T17:46:49.066101Z 01O \(base64(secret).dropFirst(20))\n"
            + "\u{1B}[0Ksection_end:1715362010:step_script\r\u{1B}[0K\n"
        let f = scan(m, log)
        #expect(f.count == 1)
        #expect(f.first?.variant == "base64-std/offset0+split-lines")
        #expect(f.first?.line == 3)
    }

    @Test func truncated() throws {
        let m = try makeMatcher([("TOKEN", secret)])
        let a = scan(m, "value=\(secret.prefix(12))…\n")
        #expect(a.count == 1)
        #expect(a.first?.variant == "raw+truncated")
        #expect(a.first?.matchedBytes == 12)
        let mid = String(secret.dropFirst(5).prefix(15))
        let b = scan(m, "x \(mid) y\n")
        #expect(b.first?.matchedBytes == 15)
        #expect(scan(m, "value=\(secret.prefix(11))\n").isEmpty)
        // A truncated base64 run (the log cut it off).
        let enc = base64(secret)
        #expect(scan(m, "blob: \(enc.prefix(20))\n").first?.variant == "base64-std/offset0+truncated")
    }

    @Test func shortSecretsNeedWordBoundaries() throws {
        let m = try makeMatcher([("PIN", "hunter2"), ("NINE", "Tr0ub4dor")])
        #expect(scan(m, "password is hunter2.\n").map(\.secretName) == ["PIN"])
        #expect(scan(m, "\u{1B}[1mhunter2\u{1B}[0mnext\n").map(\.secretName) == ["PIN"])
        #expect(scan(m, "hunter22 xhunter2 hunter2x\n").isEmpty)
        // 8 to 11 bytes: whole, but not necessarily a word.
        #expect(scan(m, "xxTr0ub4doryy\n").map(\.secretName) == ["NINE"])
        #expect(scan(m, "Tr0ub4do\n").isEmpty)
    }

    @Test func secretPathIsKept() throws {
        var s = try parseSecretsFile(Array(#"{"DB": {"value": "Qm9vTk4xPlZ8rT2w", "path": "secret/data/prod/db"}, "API": "aPi-9xY2kL5mN8pQ"}"#.utf8))
        let m = try SecretMatcher(secrets: &s, key: testKey, detectors: false)
        #expect(s.allSatisfy { $0.value.isEmpty })
        let f = m.scan(Array("conn Qm9vTk4xPlZ8rT2w and aPi-9xY2kL5mN8pQ\n".utf8))
        #expect(f.map(\.secretName) == ["DB", "API"])
        #expect(f.first?.secretPath == "secret/data/prod/db")
        #expect(f.last?.secretPath == nil)
    }

    @Test func secretsFileLines() throws {
        let s = try parseSecretsFile(Array("# comment\nA=one=two\r\n\nexport B = x y z\n".utf8))
        #expect(s.map(\.name) == ["A", "B"])
        #expect(s.map { String(decoding: $0.value, as: UTF8.self) } == ["one=two", " x y z"])
        #expect(throws: SecretsInputError.self) { try parseSecretsFile(Array("novalue\n".utf8)) }
        #expect(throws: SecretsInputError.self) { try parseSecretsFile(Array("{\"a\": 1}".utf8)) }
    }

    @Test func limits() throws {
        var l = ScanLimits()
        l.maxSecrets = 2
        #expect(throws: SecretsInputError.self) { try makeMatcher([("A", "aaaaaaaa"), ("B", "bbbbbbbb"), ("C", "cccccccc")], limits: l) }
        l = ScanLimits()
        l.maxSecretLength = 10
        #expect(throws: SecretsInputError.self) { try makeMatcher([("A", String(repeating: "x", count: 11))], limits: l) }
        let m = try makeMatcher([("A", "abc"), ("B", "bbbbbbbbbbbb")])
        #expect(m.skipped == ["A"])
        #expect(m.secretCount == 1)
    }
}

@Suite struct NearMissTests {
    let secret = "s3cr3t-Xk9fQ2vLm8pRz4TbW7yN"

    @Test func nearMissesDoNotMatch() throws {
        let m = try makeMatcher([("TOKEN", secret), ("LOW", "passwordpassword"), ("WORD", "deploy")])
        var rng = SplitMix(seed: 3)
        var log = "Run actions/checkout@v4\nSyncing repository: org/repo\npassword: passwordpass\n"
        log += "deployment deploying redeploy\n"                                  // short word, not as a word
        log += "fragment \(secret.dropFirst(3).prefix(10)) here\n"                 // 10 characters
        log += "\(base64(Array((0..<300).map { _ in UInt8.random(in: 0...255, using: &rng) })))\n"
        log += "sha256:\(hex(randomToken(32, &rng)))\n"
        log += "s3cr3t-Xk9f almost\n"                                               // 11 characters
        #expect(scan(m, log).isEmpty)
        // A low-entropy secret is only found whole.
        #expect(scan(m, "pw=passwordpassword\n").map(\.secretName) == ["LOW"])
        #expect(scan(m, "go deploy now\n").map(\.secretName) == ["WORD"])
    }
}
