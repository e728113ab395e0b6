import CustosScan
import Foundation
import Testing

@Suite struct MaskTests {
    let secret = "s3cr3t-Xk9fQ2vLm8pRz4TbW7yN"
    let special = "Zq8!v r/Lp\"k&<'>$x`\\7mW;u+=%"

    @Test func maskedLogHoldsNoVariant() throws {
        let m = try makeMatcher([("TOKEN", secret), ("P", special)], detectors: true)
        let ts = "2024-05-10T17:46:49.0654321Z "
        let enc = JSONEncoder()
        enc.outputFormatting = [.withoutEscapingSlashes]
        let json = String(decoding: try enc.encode(["p": special]), as: UTF8.self)
        let wrapped = wrap(base64(String(repeating: "p", count: 38) + secret + String(repeating: "q", count: 60)), 64)
        var lines = [
            "\(ts)plain \(secret) end",
            "\(ts)b64 \(base64("ab" + secret + "cd"))",
            "\(ts)hex \(hex(secret)) / \(hex(secret, upper: true))",
            "\(ts)json \(json)",
            "\(ts)colour \u{1B}[31m\(secret.prefix(13))\u{1B}[0m\(secret.dropFirst(13))!",
            "\(ts)split \(secret.prefix(8))",
            "\(ts)\(secret.dropFirst(8)) tail",
            "\(ts)aws AKIAIOSFODNN7EXAMPLE",
            "\(ts)truncated \(secret.dropFirst(2).prefix(14))",
        ]
        lines += wrapped.split(separator: "\n").map { ts + $0 }
        lines.append("\(ts)the end")
        let log = lines.joined(separator: "\n") + "\n"
        let (masked, findings) = m.mask(Array(log.utf8))
        let out = String(decoding: masked, as: UTF8.self)
        #expect(findings.count == 10, "\(findings.map { "\($0.line):\($0.variant)" })")
        for needle in [secret, base64(secret), hex(secret), hex(secret, upper: true), "AKIAIOSFODNN7EXAMPLE",
                       String(secret.dropFirst(2).prefix(12)), String(secret.prefix(8)), String(secret.dropFirst(13))] {
            #expect(!out.contains(needle), "masked output still holds a variant")
        }
        // Nothing of any secret is left in the masked log, in the cleaned view either.
        let again = try makeMatcher([("TOKEN", secret), ("P", special)], detectors: true)
        #expect(again.scan(masked).isEmpty)
        #expect(out.contains("plain *** end"))
        #expect(out.hasSuffix("\(ts)the end\n"))
        #expect(out.split(separator: "\n").count == lines.count)   // line structure kept
    }

    @Test func maskWithNothingFoundIsTheLog() throws {
        let m = try makeMatcher([("TOKEN", secret)])
        var rng = SplitMix(seed: 5)
        let log = (0..<20_000).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let (masked, f) = m.mask(log)
        #expect(f.isEmpty)
        #expect(masked == log)
    }
}

@Suite struct StreamTests {
    /// Feeding in any pieces and with tiny blocks finds the same as one pass.
    @Test func piecesAndBlocksAgree() throws {
        var rng = SplitMix(seed: 42)
        let secrets = (0..<50).map { ("S\($0)", randomToken(16 + Int(rng.next() % 40), &rng)) }
        var log: [UInt8] = []
        var expected = 0
        for i in 0..<3_000 {
            var line = "2024-05-10T17:46:49.0654321Z [\(i)] " + randomToken(Int(rng.next() % 120), &rng)
            if i % 97 == 0 {
                let s = secrets[Int(rng.next() % 50)].1
                switch i % 4 {
                case 0: line += " " + s
                case 1: line += " " + base64("xy" + s)
                case 2: line += " " + hex(s)
                default: line += " " + s.prefix(5) + "\n" + s.dropFirst(5)
                }
                expected += 1
            }
            log += Array((line + "\n").utf8)
        }
        let whole = try makeMatcher(secrets).scan(log)
        #expect(whole.count == expected)
        var small = ScanLimits()
        small.blockSize = 4_096
        let m = try makeMatcher(secrets, limits: small)
        for pieceSize in [1, 7, 1_000, 65_536] {
            let s = LogScanner(matcher: m)
            var off = 0
            while off < log.count {
                let n = min(pieceSize, log.count - off)
                log[off..<(off + n)].withUnsafeBytes { s.feed($0) }
                off += n
            }
            s.finish()
            #expect(s.findings == whole, "pieces of \(pieceSize)")
            #expect(s.bytesRead == log.count)
        }
        // Masking in pieces gives the same bytes as masking whole.
        let (maskedWhole, _) = try makeMatcher(secrets).mask(log)
        var out: [UInt8] = []
        let s = LogScanner(matcher: m) { out.append(contentsOf: $0) }
        var off = 0
        while off < log.count { let n = min(3_333, log.count - off); log[off..<(off + n)].withUnsafeBytes { s.feed($0) }; off += n }
        s.finish()
        #expect(out == maskedWhole)
    }

    @Test func hugeLineIsScannedInPieces() throws {
        var small = ScanLimits()
        small.blockSize = 1 << 16
        let secret = "Hq7Zr2LmXp9Vt4NwKb8Jc3Fs"
        let m = try makeMatcher([("S", secret)], limits: small)
        var line = [UInt8](repeating: UInt8(ascii: "a"), count: 5 << 20)
        for (k, at) in [100, (1 << 16) - 5, 3 << 20, (5 << 20) - 30].enumerated() {
            line.replaceSubrange(at..<(at + secret.utf8.count), with: Array(secret.utf8))
            _ = k
        }
        let f = m.scan(line)
        #expect(f.map(\.offset) == [100, (1 << 16) - 5, 3 << 20, (5 << 20) - 30])
        #expect(f.allSatisfy { $0.line == 1 && $0.column == $0.offset + 1 })
    }
}

@Suite struct FuzzTests {
    @Test func randomInputsDoNotCrash() throws {
        var rng = SplitMix(seed: 1234)
        for round in 0..<30 {
            let count = Int(rng.next() % 20)
            var secrets: [ScanSecret] = []
            for i in 0..<count {
                let len = 1 + Int(rng.next() % 80)
                secrets.append(ScanSecret(name: "S\(i)", value: (0..<len).map { _ in UInt8(truncatingIfNeeded: rng.next()) }))
            }
            let kept = secrets.map(\.value)
            var limits = ScanLimits()
            limits.blockSize = 1 << (10 + Int(rng.next() % 8))
            let m = try SecretMatcher(secrets: &secrets, key: testKey, limits: limits, detectors: round % 2 == 0)
            var log: [UInt8] = []
            let size = Int(rng.next() % 300_000)
            while log.count < size {
                switch rng.next() % 6 {
                case 0: log += (0..<Int(rng.next() % 5_000)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }   // invalid UTF-8
                case 1: log += [0x1B, 0x5B] + (0..<Int(rng.next() % 80)).map { _ in 0x30 + UInt8(rng.next() % 16) }  // open CSI
                case 2: log += Array("2024-05-10T17:46:49.0654321Z ".utf8)
                case 3: if let v = kept.randomElement(using: &rng) { log += v }
                case 4: log += [UInt8](repeating: UInt8(ascii: "A"), count: Int(rng.next() % 200_000))       // a huge line
                default: log += Array("\n\r\u{1B}]0;title\u{07}section_start:1:x\r\n".utf8)
                }
            }
            let s = LogScanner(matcher: m) { _ in }
            var off = 0
            while off < log.count {
                let n = min(1 + Int(rng.next() % 70_000), log.count - off)
                log[off..<(off + n)].withUnsafeBytes { s.feed($0) }
                off += n
            }
            s.finish()
            for f in s.findings {
                #expect(f.offset >= 0 && f.offset + f.length <= log.count)
                #expect(f.line >= 1 && f.column >= 1)
                #expect(f.matchedBytes <= f.totalBytes)
            }
        }
    }
}
