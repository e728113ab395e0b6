import Foundation
import Testing

@testable import CustosCore

// Fixtures come from Python's gzip and zlib modules (the reference zlib), run through Process;
// malformed streams are built by hand with a small bit writer.

enum Py {
    struct Failed: Error { var status: Int32 }

    /// Runs a Python snippet that sees the input bytes as `data` and sets `out` (bytes).
    static func run(_ script: String, input: [UInt8] = []) throws -> [UInt8] {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("custos-inflate-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let inURL = dir.appendingPathComponent("in"), outURL = dir.appendingPathComponent("out")
        try Data(input).write(to: inURL)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        let program = "import sys, gzip, zlib, struct\ndata = open(sys.argv[1], 'rb').read()\n" + script
            + "\nopen(sys.argv[2], 'wb').write(out)\n"
        p.arguments = ["python3", "-c", program, inURL.path, outURL.path]
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw Failed(status: p.terminationStatus) }
        return [UInt8](try Data(contentsOf: outURL))
    }

    static func gzip(_ data: [UInt8], level: Int = 6) throws -> [UInt8] {
        try run("out = gzip.compress(data, compresslevel=\(level), mtime=0)", input: data)
    }

    /// Raw DEFLATE (no wrapper) with a zlib strategy: 0 default, 1 filtered, 2 Huffman only, 3 RLE, 4 fixed.
    static func deflate(_ data: [UInt8], level: Int = 6, strategy: Int = 0) throws -> [UInt8] {
        try run("c = zlib.compressobj(\(level), zlib.DEFLATED, -15, 9, \(strategy))\nout = c.compress(data) + c.flush()",
                input: data)
    }
}

enum InflateData {
    /// Audit-log-like JSON lines, varied enough to give dynamic blocks with all code lengths.
    static func jsonLines(_ count: Int, seed: UInt64) -> [UInt8] {
        var rng = SeededRNG(seed: seed)
        let ops = ["read", "update", "create", "delete", "list"]
        let paths = ["secret/data/prod/db", "secret/data/payments/api", "auth/token/lookup-self", "sys/health", "kv/metadata/team/é☃"]
        var s = ""
        for i in 0..<count {
            let ip = "10.\(rng.int(0...255)).\(rng.int(0...255)).\(rng.int(1...254))"
            s += "{\"time\":\"2026-11-28T\(String(format: "%02d:%02d:%02d", rng.int(0...23), rng.int(0...59), rng.int(0...59))).\(rng.int(0...999_999))Z\","
            s += "\"type\":\"\(rng.chance(0.5) ? "request" : "response")\",\"seq\":\(i),\"auth\":{\"display_name\":\"user-\(rng.int(0...500))\","
            s += "\"token_ttl\":\(rng.int(0...86400))},\"request\":{\"operation\":\"\(rng.pick(ops))\",\"path\":\"\(rng.pick(paths))\","
            s += "\"remote_address\":\"\(ip)\",\"id\":\"\(String(rng.next(), radix: 16))-\(String(rng.next(), radix: 36))\"}}\n"
        }
        return Array(s.utf8)
    }

    static func random(_ count: Int, seed: UInt64) -> [UInt8] {
        var rng = SeededRNG(seed: seed)
        return (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    }
}

/// Writes DEFLATE bit streams by hand: values LSB first, Huffman codes MSB first.
struct BitWriter {
    var bytes: [UInt8] = []
    var acc: UInt64 = 0
    var n = 0

    mutating func bits(_ v: Int, _ count: Int) {
        acc |= UInt64(v) << UInt64(n)
        n += count
        while n >= 8 {
            bytes.append(UInt8(acc & 0xFF))
            acc >>= 8
            n -= 8
        }
    }

    mutating func code(_ c: Int, _ len: Int) {
        for i in (0..<len).reversed() { bits((c >> i) & 1, 1) }
    }

    /// A literal/length symbol in the fixed code.
    mutating func fixed(_ sym: Int) {
        switch sym {
        case 0..<144: code(0x30 + sym, 8)
        case 144..<256: code(0x190 + sym - 144, 9)
        case 256..<280: code(sym - 256, 7)
        default: code(0xC0 + sym - 280, 8)
        }
    }

    /// Dynamic block header whose code lengths are all 0 or 1, sent with a code length code
    /// of symbol 1 -> "0", symbol 0 -> "10", symbol 18 -> "11".
    mutating func dynamicHeader(lit: [Int], dist: [Int]) {
        bits(lit.count - 257, 5)
        bits(dist.count - 1, 5)
        bits(18 - 4, 4)  // code length code lengths for the first 18 in transmission order
        let order = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1]
        let cl: [Int: Int] = [1: 1, 0: 2, 18: 2]
        for s in order { bits(cl[s] ?? 0, 3) }
        let all = lit + dist
        var i = 0
        while i < all.count {
            if all[i] == 1 {
                code(0, 1)
                i += 1
                continue
            }
            var run = 0
            while i + run < all.count && all[i + run] == 0 && run < 138 { run += 1 }
            if run >= 11 {
                code(0b11, 2)
                bits(run - 11, 7)
                i += run
            } else {
                code(0b10, 2)
                i += 1
            }
        }
    }

    mutating func finish() -> [UInt8] {
        if n > 0 { bytes.append(UInt8(acc & 0xFF)) }
        acc = 0
        n = 0
        return bytes
    }
}

@Suite struct InflateTests {
    static let json = InflateData.jsonLines(1500, seed: 1)
    static let random = InflateData.random(100_000, seed: 2)

    func expectError(_ input: [UInt8], maxOutput: Int = 1 << 20, raw: Bool = false, _ fragment: String,
                     sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            let out = raw ? try Inflate.decompress(deflate: input, maxOutput: maxOutput)
                          : try Gzip.decompress(input, maxOutput: maxOutput)
            Issue.record("decoded \(out.count) bytes, expected an error containing \"\(fragment)\"", sourceLocation: sourceLocation)
        } catch {
            #expect(error.reason.contains(fragment), "\(error)", sourceLocation: sourceLocation)
            #expect(error.offset >= 0 && error.offset <= input.count, sourceLocation: sourceLocation)
        }
    }

    // MARK: - Valid streams from zlib

    @Test func emptyStreamAndEmptyInput() throws {
        let gz = try Py.gzip([])
        #expect(try Gzip.decompress(gz, maxOutput: 0) == [])
        #expect(try Gzip.decompress(gz, maxOutput: 10) == [])
        expectError([], "empty input")
        expectError([], raw: true, "truncated")
        #expect(try Inflate.decompress(deflate: try Py.deflate([]), maxOutput: 0) == [])
    }

    @Test(arguments: 0...9) func everyLevel(level: Int) throws {
        for data in [Self.json, Self.random] {
            let gz = try Py.gzip(data, level: level)
            #expect(try Gzip.decompress(gz, maxOutput: data.count) == data)
            #expect(try Gzip.decompress(gz[...], maxOutput: data.count) == data)  // ArraySlice
            #expect(try gz.withUnsafeBytes { b throws(GzipError) in try Gzip.decompress(b, maxOutput: data.count) } == data)
            expectError(gz, maxOutput: data.count - 1, "decompressed size exceeds \(data.count - 1) bytes")
            let raw = try Py.deflate(data, level: level)
            #expect(try Inflate.decompress(deflate: raw, maxOutput: data.count) == data)
        }
    }

    @Test(arguments: [1, 2, 3, 4]) func strategies(strategy: Int) throws {
        // Filtered, Huffman only, RLE, fixed blocks only.
        for data in [Self.json, Array(Self.json.prefix(40)), Array(repeating: UInt8(7), count: 5000) + Self.random.prefix(3000)] {
            let raw = try Py.deflate(data, level: 9, strategy: strategy)
            #expect(try Inflate.decompress(deflate: raw, maxOutput: data.count) == data)
        }
    }

    @Test func storedBlocks() throws {
        // Level 0: stored blocks of at most 65,535 bytes each; more than one here.
        let data = Self.json + Self.random
        let raw = try Py.deflate(data, level: 0)
        #expect(raw[0] & 0b110 == 0)  // BTYPE 00
        #expect(raw.count > data.count)
        #expect(try Inflate.decompress(deflate: raw, maxOutput: data.count) == data)
        // Sync flushes put empty stored blocks between compressed ones.
        let flushed = try Py.run("""
            c = zlib.compressobj(6, zlib.DEFLATED, -15)
            n = len(data) // 3
            out = c.compress(data[:n]) + c.flush(zlib.Z_SYNC_FLUSH) + c.compress(data[n:2*n]) + c.flush(zlib.Z_FULL_FLUSH) + c.compress(data[2*n:]) + c.flush()
            """, input: data)
        #expect(try Inflate.decompress(deflate: flushed, maxOutput: data.count) == data)
    }

    @Test func longDistanceMatches() throws {
        // A 32,000-byte random chunk repeated: only matches 32,000 back can compress it.
        let chunk = InflateData.random(32_000, seed: 3)
        let data = chunk + chunk + chunk + Self.json + chunk
        #expect(data.count > 64 * 1024)
        let gz = try Py.gzip(data, level: 9)
        #expect(gz.count < 32_000 + Self.json.count)
        #expect(try Gzip.decompress(gz, maxOutput: data.count) == data)
        // zlib never emits distances past 32,506; 32,000 back it does.
        let far = InflateData.random(32_000, seed: 4)
        let farData = far + far.prefix(300)
        let farGz = try Py.gzip(farData, level: 9)
        #expect(farGz.count < 32_000 + 200)
        #expect(try Gzip.decompress(farGz, maxOutput: farData.count) == farData)
        // The largest distance, 32,768, by hand: a stored block, then a fixed-block match.
        for (storedLength, valid) in [(32_768, true), (32_767, false)] {
            let chunk = InflateData.random(storedLength, seed: 5)
            var w = BitWriter()
            w.bits(1, 1); w.bits(1, 2)
            w.fixed(285); w.code(29, 5); w.bits(32_768 - 24_577, 13)  // length 258, distance 32,768
            w.fixed(256)
            let raw = [0x00, UInt8(storedLength & 0xFF), UInt8(storedLength >> 8),
                       UInt8(~storedLength & 0xFF), UInt8((~storedLength >> 8) & 0xFF)] + chunk + w.finish()
            if valid {
                #expect(try Inflate.decompress(deflate: raw, maxOutput: 1 << 20) == chunk + chunk.prefix(258))
            } else {
                expectError(raw, raw: true, "invalid distance 32768")
            }
        }
    }

    @Test(arguments: 0..<32) func headerFlags(flags: Int) throws {
        // FTEXT 1, FHCRC 2, FEXTRA 4, FNAME 8, FCOMMENT 16.
        let data = Array(Self.json.prefix(3000))
        let gz = try Py.run("""
            c = zlib.compressobj(6, zlib.DEFLATED, -15)
            raw = c.compress(data) + c.flush()
            flg = \(flags)
            h = b'\\x1f\\x8b\\x08' + bytes([flg]) + struct.pack('<I', 1700000000) + b'\\x00\\x03'
            if flg & 4:
                extra = b'AB\\x04\\x00abcd' + b'Zz\\x00\\x00'
                h += struct.pack('<H', len(extra)) + extra
            if flg & 8: h += b'audit.log\\x00'
            if flg & 16: h += 'from fluent-bit é'.encode() + b'\\x00'
            if flg & 2: h += struct.pack('<H', zlib.crc32(h) & 0xffff)
            out = h + raw + struct.pack('<II', zlib.crc32(data), len(data))
            """, input: data)
        #expect(try Gzip.decompress(gz, maxOutput: data.count) == data)
        // Python's reader agrees it is valid gzip.
        #expect(try Py.run("out = gzip.decompress(data)", input: gz) == data)
        if flags & 2 != 0 {
            var bad = gz
            let crcAt = headerLength(gz) - 2
            bad[crcAt] ^= 0x01
            expectError(bad, "gzip header CRC mismatch")
        }
    }

    func headerLength(_ gz: [UInt8]) -> Int {
        var p = 10
        let f = gz[3]
        if f & 4 != 0 { p += 2 + Int(gz[10]) + Int(gz[11]) << 8 }
        if f & 8 != 0 { p = gz[p...].firstIndex(of: 0)! + 1 }
        if f & 16 != 0 { p = gz[p...].firstIndex(of: 0)! + 1 }
        if f & 2 != 0 { p += 2 }
        return p
    }

    @Test func concatenatedMembers() throws {
        let a = Array(Self.json.prefix(10_000)), b = Array(Self.random.prefix(5000)), c = Array(Self.json.suffix(7000))
        let gz = try Py.gzip(a, level: 1) + Py.gzip([]) + Py.gzip(b, level: 0) + Py.gzip(c, level: 9)
        let all = a + b + c
        #expect(try Gzip.decompress(gz, maxOutput: all.count) == all)
        expectError(gz, maxOutput: all.count - 1, "decompressed size exceeds")
        // Zero padding after the last member is accepted; anything else is not.
        #expect(try Gzip.decompress(gz + [0, 0, 0, 0], maxOutput: all.count) == all)
        expectError(gz + [0, 0, 7], "trailing garbage")
        expectError(gz + [0x1F], "truncated gzip header")
        expectError(gz + [0x1F, 0x8B, 8, 0], "truncated gzip header")
        expectError(gz + Array("hello".utf8), "trailing garbage")
        // A back-reference may not reach into the previous member's output.
        var w = BitWriter()
        w.bits(1, 1); w.bits(1, 2)  // final, fixed
        w.fixed(257); w.code(0, 5)  // length 3, distance 1
        w.fixed(256)
        let body = w.finish()
        let member2: [UInt8] = [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 0xFF] + body + le32(CRC32.update(0, [0, 0, 0], 3)) + le32(3)
        expectError(gz + member2, "invalid distance 1")
    }

    func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }

    @Test func crcAndSizeMismatch() throws {
        let data = Array(Self.json.prefix(20_000))
        let gz = try Py.gzip(data, level: 6)
        for i in 0..<4 {
            var bad = gz
            bad[gz.count - 8 + i] ^= 0x20
            expectError(bad, "CRC-32 mismatch")
            bad = gz
            bad[gz.count - 4 + i] ^= 0x01
            expectError(bad, "ISIZE mismatch")
        }
        // A corrupted byte inside a stored block decodes but fails the checksum.
        var stored = try Py.gzip(data, level: 0)
        stored[5000] ^= 0x55
        expectError(stored, "CRC-32 mismatch")
    }

    @Test func everyTruncationThrows() throws {
        let data = Array(Self.json.prefix(1200))
        for level in [0, 1, 6, 9] {
            let gz = try Py.gzip(data, level: level)
            #expect(try Gzip.decompress(gz, maxOutput: data.count) == data)
            for n in 0..<gz.count {
                #expect(throws: GzipError.self) { try Gzip.decompress(gz.prefix(n), maxOutput: 1 << 20) }
            }
            let raw = try Py.deflate(data, level: level)
            for n in 0..<raw.count {
                #expect(throws: GzipError.self) { try Inflate.decompress(deflate: raw.prefix(n), maxOutput: 1 << 20) }
            }
        }
    }

    @Test func zipBombStopsAtTheLimit() throws {
        let bomb = try Py.run("out = gzip.compress(bytes(100_000_000), compresslevel=9, mtime=0)")
        #expect(bomb.count < 200_000)
        let start = ContinuousClock.now
        do {
            _ = try Gzip.decompress(bomb, maxOutput: 1_000_000)
            Issue.record("the bomb decoded")
        } catch {
            #expect(error.reason == "decompressed size exceeds 1000000 bytes")
            #expect(error.offset < 5000)  // stopped early in the input
        }
        #expect(ContinuousClock.now - start < .seconds(5))  // stopped early: decoding all 100 MB would take far longer
        // Exactly at the limit is fine; one byte under is not.
        let mb = try Py.gzip([UInt8](repeating: 0, count: 1_000_000), level: 9)
        #expect(try Gzip.decompress(mb, maxOutput: 1_000_000) == [UInt8](repeating: 0, count: 1_000_000))
        expectError(mb, maxOutput: 999_999, "decompressed size exceeds 999999 bytes")
        expectError(mb, maxOutput: 0, "decompressed size exceeds 0 bytes")
    }

    // MARK: - Hand-made malformed streams

    @Test func fixedBlockErrors() throws {
        var w = BitWriter()
        w.bits(1, 1); w.bits(1, 2)
        w.fixed(Int(UInt8(ascii: "a"))); w.fixed(257); w.code(0, 5); w.fixed(256)
        #expect(try Inflate.decompress(deflate: w.finish(), maxOutput: 10) == Array("aaaa".utf8))

        w = BitWriter()
        w.bits(1, 1); w.bits(1, 2)
        w.fixed(Int(UInt8(ascii: "a"))); w.fixed(257); w.code(1, 5); w.fixed(256)  // distance 2 > 1 byte
        expectError(w.finish(), raw: true, "invalid distance 2")

        w = BitWriter()
        w.bits(1, 1); w.bits(1, 2)
        w.fixed(65); w.fixed(257); w.code(30, 5); w.fixed(256)  // distance symbol 30
        expectError(w.finish(), raw: true, "invalid distance code")

        w = BitWriter()
        w.bits(1, 1); w.bits(1, 2)
        w.fixed(286)
        expectError(w.finish(), raw: true, "invalid literal/length code")

        w = BitWriter()
        w.bits(1, 1); w.bits(3, 2)
        expectError(w.finish(), raw: true, "invalid block type 3")

        w = BitWriter()
        w.bits(1, 1); w.bits(1, 2); w.fixed(65); w.fixed(256)
        expectError(w.finish() + [0], raw: true, "trailing data")
    }

    @Test func storedBlockErrors() throws {
        expectError([0x01, 0x05, 0x00, 0xFA, 0xFE] + Array("hello".utf8), raw: true, "LEN and NLEN")
        #expect(try Inflate.decompress(deflate: [0x01, 0x05, 0x00, 0xFA, 0xFF] + Array("hello".utf8), maxOutput: 5) == Array("hello".utf8))
        expectError([0x01, 0x05, 0x00, 0xFA, 0xFF] + Array("hell".utf8), raw: true, "truncated")
        expectError([0x01, 0x05, 0x00, 0xFA, 0xFF] + Array("hello".utf8), maxOutput: 4, raw: true, "exceeds 4 bytes")
    }

    @Test func dynamicBlockErrors() throws {
        func block(lit: [Int: Int], hlit: Int = 257, dist: [Int] = [0], symbols: [Int] = []) -> [UInt8] {
            var w = BitWriter()
            w.bits(1, 1); w.bits(2, 2)
            w.dynamicHeader(lit: (0..<hlit).map { lit[$0] ?? 0 }, dist: dist)
            for s in symbols { w.code(s, 1) }
            return w.finish()
        }
        // 'a' -> 0, end of block -> 1; no distance codes at all (allowed: literals only).
        #expect(try Inflate.decompress(deflate: block(lit: [97: 1, 256: 1], symbols: [0, 0, 0, 1]), maxOutput: 3) == Array("aaa".utf8))
        // A single code (end of block only) is allowed.
        #expect(try Inflate.decompress(deflate: block(lit: [256: 1], symbols: [0]), maxOutput: 3) == [])
        // ... but then the other one-bit code is invalid.
        expectError(block(lit: [256: 1], symbols: [1]), raw: true, "invalid literal/length code")
        expectError(block(lit: [97: 1, 98: 1]), raw: true, "no end-of-block code")
        expectError(block(lit: [97: 1, 98: 1, 256: 1]), raw: true, "over-subscribed")
        expectError(block(lit: [97: 1, 256: 1], dist: [1, 1, 1]), raw: true, "distance code lengths (over-subscribed)")
        // HLIT 287 (bits 30) is more than the 286 symbols there are.
        var w = BitWriter()
        w.bits(1, 1); w.bits(2, 2); w.bits(30, 5); w.bits(0, 5); w.bits(0, 4)
        expectError(w.finish() + [0, 0, 0, 0], raw: true, "too many")
        // Code length codes: four of length 1 (over-subscribed), one of length 1 (incomplete).
        w = BitWriter()
        w.bits(1, 1); w.bits(2, 2); w.bits(0, 5); w.bits(0, 5); w.bits(0, 4)
        for _ in 0..<4 { w.bits(1, 3) }
        expectError(w.finish() + [0, 0, 0, 0], raw: true, "code length code (over-subscribed)")
        w = BitWriter()
        w.bits(1, 1); w.bits(2, 2); w.bits(0, 5); w.bits(0, 5); w.bits(0, 4)
        w.bits(1, 3); w.bits(0, 9)
        expectError(w.finish() + [0, 0, 0, 0], raw: true, "code length code (incomplete)")
        // Repeat (16) as the first code length: with a code where 0 -> "0", 16 -> "1".
        w = BitWriter()
        w.bits(1, 1); w.bits(2, 2); w.bits(0, 5); w.bits(0, 5); w.bits(0, 4)
        w.bits(1, 3); w.bits(0, 3); w.bits(0, 3); w.bits(1, 3)
        w.code(1, 1); w.bits(0, 2)
        expectError(w.finish() + [0, 0, 0, 0], raw: true, "no previous length")
    }

    @Test func headerErrors() throws {
        let gz = try Py.gzip(Array("hello".utf8))
        var bad = gz; bad[0] = 0x1E
        expectError(bad, "bad magic")
        expectError(Array("{\"plain\":\"json\"}".utf8), "bad magic")
        bad = gz; bad[2] = 7
        expectError(bad, "unsupported compression method 7")
        bad = gz; bad[3] = 0x20
        expectError(bad, "reserved gzip header flag")
        bad = gz; bad[3] = 0x08  // FNAME without a terminator
        expectError(Array(bad.prefix(10)) + [0x41, 0x42], "truncated gzip header")
        bad = gz; bad[3] = 0x04  // FEXTRA longer than the input
        expectError(Array(bad.prefix(10)) + [0xFF, 0xFF, 1, 2, 3], "truncated gzip header")
        expectError(Array(gz.prefix(gz.count - 3)), "truncated gzip trailer")
    }

    // MARK: - Fuzz

    @Test func mutationFuzz() throws {
        let small = Array(Self.json.prefix(4000))
        let bases = try [Py.gzip(small, level: 1), Py.gzip(small, level: 6), Py.gzip(small, level: 9),
                         Py.gzip(Array(small.prefix(300)), level: 0),
                         Py.gzip(small, level: 9) + Py.gzip(Array(Self.random.prefix(500)), level: 4)]
        let raws = try [Py.deflate(small, level: 9, strategy: 4), Py.deflate(small, level: 6, strategy: 3)]
        var rng = SeededRNG(seed: 0x1F8B)
        let limit = 50_000
        var decoded = 0, failed = 0
        for i in 0..<6000 {
            let rawMode = i % 4 == 3
            var m = rawMode ? rng.pick(raws) : rng.pick(bases)
            for _ in 0..<rng.int(1...4) {
                let at = rng.int(0...(m.count - 1))
                switch rng.int(0...5) {
                case 0: m[at] ^= UInt8(1) << UInt8(rng.int(0...7))
                case 1: m[at] = UInt8(truncatingIfNeeded: rng.next())
                case 2: m.insert(UInt8(truncatingIfNeeded: rng.next()), at: at)
                case 3: if m.count > 1 { m.remove(at: at) }
                case 4: m = Array(m.prefix(at)) + (0..<rng.int(0...20)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                default:  // duplicate a slice (e.g. repeats part of a table or block)
                    let len = rng.int(1...min(64, m.count - at))
                    m.insert(contentsOf: m[at..<(at + len)], at: rng.int(0...m.count))
                }
                if m.isEmpty { m = [0] }
            }
            do {
                let out = rawMode ? try Inflate.decompress(deflate: m, maxOutput: limit) : try Gzip.decompress(m, maxOutput: limit)
                #expect(out.count <= limit)
                decoded += 1
            } catch {
                #expect(!error.reason.isEmpty)
                #expect(error.offset >= 0 && error.offset <= m.count)
                failed += 1
            }
        }
        #expect(failed > 3000)
    }

    @Test func randomBytes() {
        var rng = SeededRNG(seed: 77)
        for i in 0..<3000 {
            let body = (0..<rng.int(0...600)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let limit = rng.int(0...100_000)
            // Plain random bytes, a valid gzip header then random bytes, and raw random DEFLATE.
            let inputs: [[UInt8]] = [body, [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3] + body]
            for input in inputs {
                do {
                    let out = try Gzip.decompress(input, maxOutput: limit)
                    #expect(out.count <= limit)
                } catch {
                    #expect(error.offset >= 0 && error.offset <= input.count, "\(i) \(error)")
                }
            }
            do {
                let out = try Inflate.decompress(deflate: body, maxOutput: limit)
                #expect(out.count <= limit)
            } catch {
                #expect(error.offset >= 0 && error.offset <= body.count, "\(i) \(error)")
            }
        }
    }
}
