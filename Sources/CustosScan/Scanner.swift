import Foundation

/// Scans a log, streamed in pieces of any size, for the secrets of a `SecretMatcher`.
///
/// The log is first turned into a cleaned view: at each line start a CI timestamp
/// (`2024-05-10T17:46:49.0654321Z `), GitLab's stream marker (`00O `) and section markers are
/// dropped, ANSI escape sequences and `\r` are dropped, and lines are joined (newlines
/// dropped), so a value wrapped over lines or broken by colour codes is contiguous. A
/// segment list maps cleaned offsets back to the original bytes, lines and columns.
///
/// The cleaned view is scanned in blocks of `limits.blockSize` bytes that overlap by twice
/// the longest possible match, so memory stays bounded whatever the input (one huge line
/// included); a match is reported by the block in which its end falls before the cut.
public final class LogScanner {
    struct Segment {
        var clean: Int        // absolute offset in the cleaned view
        var raw: Int          // absolute offset in the original log
        var line: Int
        var lineStartRaw: Int
        var startsLine: Bool  // the first bytes of a line (after a newline and any prefix)
    }

    struct Candidate {
        var start: Int, end: Int   // absolute cleaned offsets
        var secret: Int            // -1 for a detector
        var needle: Int            // needle index, or detector index
        var covered: Int
        var complete: Bool
        var value: Range<Int>      // detectors: the credential's cleaned offsets
    }

    let m: SecretMatcher
    let maskSink: ((UnsafeRawBufferPointer) -> Void)?

    // Original bytes not yet cleaned (and, when masking, not yet written): raw[0] is at rawBase.
    var raw: UnsafeMutablePointer<UInt8>
    var rawCap: Int
    var rawLen = 0
    var rawBase = 0
    var rawCleaned = 0          // absolute: bytes before this went through the cleaner
    var rawFlushed = 0          // absolute: masked output written up to here

    // The cleaned view: cl[0] is at clBase.
    var cl: UnsafeMutablePointer<UInt8>
    var clCap: Int
    var clLen = 0
    var clBase = 0
    var segs: [Segment] = []

    // Cleaner state.
    var line = 1
    var lineStartRaw = 0
    var atLineStart = true
    var needSegment = true
    var pendingLineStart = true

    var prevCut = 0
    var finished = false
    let overlap: Int
    let margin: Int
    var maskRanges: [Range<Int>] = []   // absolute raw ranges, not yet flushed
    var hitBufferA: [Int] = []          // reused between blocks (no page faults per block)
    var hitBufferB: [Int] = []

    /// Findings kept (at most `limits.maxFindings`), in log order.
    public private(set) var findings: [Finding] = []
    /// Every finding, including those past `maxFindings`.
    public private(set) var findingCount = 0
    /// Original bytes fed so far.
    public private(set) var bytesRead = 0
    /// Called for each finding as soon as it is final (before it is appended to `findings`).
    public var onFinding: ((Finding) -> Void)?

    /// `mask`: when given, receives the log back with every match replaced by `***`
    /// (timestamps, escapes and line breaks inside a match are kept, each line's part replaced).
    public init(matcher: SecretMatcher, mask: ((UnsafeRawBufferPointer) -> Void)? = nil) {
        m = matcher
        maskSink = mask
        margin = matcher.maxMatch + 16
        overlap = 2 * margin
        clCap = matcher.limits.blockSize + overlap + 1024
        cl = .allocate(capacity: clCap)
        rawCap = 1 << 16
        raw = .allocate(capacity: rawCap)
    }

    deinit {
        // The views can hold secrets that were in the log.
        cl.initialize(repeating: 0, count: clCap); cl.deallocate()
        raw.initialize(repeating: 0, count: rawCap); raw.deallocate()
    }

    public func feed(_ bytes: [UInt8]) { bytes.withUnsafeBytes { feed($0) } }

    public func feed(_ bytes: UnsafeRawBufferPointer) {
        precondition(!finished, "feed after finish")
        var off = 0
        while off < bytes.count {
            // Take at most 1 MiB at a time so the cleaned view and the segment list stay bounded.
            let take = min(bytes.count - off, 1 << 20)
            compactRaw()
            ensureRaw(rawLen + take)
            (raw + rawLen).update(from: bytes.baseAddress!.assumingMemoryBound(to: UInt8.self) + off, count: take)
            rawLen += take
            bytesRead += take
            off += take
            cleanRaw(final: false)
            // Scan when a block is full, or early when lines are so short that the segment
            // list (about 48 bytes a line) would outweigh the block.
            if clLen >= m.limits.blockSize + overlap || (segs.count >= 1 << 18 && clLen > overlap) { scanBlock(final: false) }
        }
    }

    public func finish() {
        guard !finished else { return }
        cleanRaw(final: true)
        scanBlock(final: true)
        finished = true
    }

    // MARK: raw buffer

    func ensureRaw(_ n: Int) {
        guard n > rawCap else { return }
        var c = rawCap
        while c < n { c <<= 1 }
        let nb = UnsafeMutablePointer<UInt8>.allocate(capacity: c)
        nb.update(from: raw, count: rawLen)
        raw.initialize(repeating: 0, count: rawCap)
        raw.deallocate()
        raw = nb; rawCap = c
    }

    func compactRaw() {
        let keepFrom = maskSink == nil ? rawCleaned : min(rawCleaned, rawFlushed)
        let drop = keepFrom - rawBase
        guard drop > 0 else { return }
        let rest = rawLen - drop
        if rest > 0 { raw.update(from: raw + drop, count: rest) }
        rawLen = rest
        rawBase += drop
    }

    // MARK: cleaning

    /// Length of the line prefix at `p` (timestamp, GitLab stream marker, section marker).
    static func prefixLength(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int {
        var i = 0
        @inline(__always) func digit(_ k: Int) -> Bool { k < n && p[k] >= 0x30 && p[k] <= 0x39 }
        // 2024-05-10T17:46:49(.fraction)?(Z|+00:00)␠
        if n >= 21, digit(0), digit(1), digit(2), digit(3), p[4] == 0x2D, digit(5), digit(6), p[7] == 0x2D,
           digit(8), digit(9), p[10] == 0x54 || p[10] == 0x20, digit(11), digit(12), p[13] == 0x3A, digit(14), digit(15),
           p[16] == 0x3A, digit(17), digit(18) {
            var k = 19
            if k < n, p[k] == 0x2E || p[k] == 0x2C { k += 1; while digit(k) { k += 1 } }
            if k < n, p[k] == 0x5A { k += 1 } else if k + 5 < n, p[k] == 0x2B || p[k] == 0x2D, digit(k + 1), digit(k + 2) {
                k += 3
                if k < n, p[k] == 0x3A { k += 1 }
                if digit(k), digit(k + 1) { k += 2 }
            }
            if k < n, p[k] == 0x20 {
                i = k + 1
                // GitLab: "00O " / "01E+" stream marker after its timestamp.
                if i + 3 < n, hexValue(p[i]) != nil, hexValue(p[i + 1]) != nil, p[i + 2] == 0x4F || p[i + 2] == 0x45 {
                    var j = i + 3
                    if j < n, p[j] == 0x2B { j += 1 }
                    if j < n, p[j] == 0x20 { i = j + 1 }
                }
            }
        }
        return i + sectionMarkerLength(p + i, n - i)
    }

    /// GitLab section markers (`section_start:1715362009:name[collapsed=true]`, `section_end:…`),
    /// up to the `\r` or escape that follows them; 0 if there is none at `p`.
    static func sectionMarkerLength(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int {
        guard n > 12, p[0] == UInt8(ascii: "s"), p[1] == UInt8(ascii: "e"), p[7] == UInt8(ascii: "_") else { return 0 }
        for lit in ["section_start:", "section_end:"] {
            let l = Array(lit.utf8)
            guard l.count < n else { continue }
            var ok = true
            for k in l.indices where p[k] != l[k] { ok = false; break }
            guard ok else { continue }
            var j = l.count
            while j < n, j < 200, p[j] != 0x0D, p[j] != 0x0A, p[j] != 0x1B { j += 1 }
            return j
        }
        return 0
    }

    /// Length of an escape sequence at `p` (p[0] == ESC), or 0 if it may be incomplete.
    static func escapeLength(_ p: UnsafePointer<UInt8>, _ n: Int, final: Bool) -> Int {
        guard n >= 2 else { return final ? 1 : 0 }
        switch p[1] {
        case 0x5B: // CSI: parameters 0x30-0x3F, intermediates 0x20-0x2F, final 0x40-0x7E
            var k = 2
            while k < n, k < 64, p[k] >= 0x20, p[k] <= 0x3F { k += 1 }
            if k < n, p[k] >= 0x40, p[k] <= 0x7E { return k + 1 }
            if k >= n, !final { return 0 }
            return k // malformed: drop what was read
        case 0x5D: // OSC: up to BEL or ESC \
            var k = 2
            while k < n, k < 512 {
                if p[k] == 0x07 { return k + 1 }
                if p[k] == 0x1B { return k + 1 < n && p[k + 1] == 0x5C ? k + 2 : k }
                k += 1
            }
            if k >= n, !final { return 0 }
            return 2
        default:
            return 2
        }
    }

    func ensureClean(_ extra: Int) {
        guard clLen + extra > clCap else { return }
        var c = clCap
        while c < clLen + extra { c <<= 1 }
        let nb = UnsafeMutablePointer<UInt8>.allocate(capacity: c)
        nb.update(from: cl, count: clLen)
        cl.initialize(repeating: 0, count: clCap)
        cl.deallocate()
        cl = nb; clCap = c
    }

    func cleanRaw(final: Bool) {
        var i = rawCleaned - rawBase
        let n = rawLen
        ensureClean(n - i)
        let p = UnsafePointer(raw)
        let out = cl
        let base = rawBase, cBase = clBase
        // The state in locals for the loop (no exclusivity checks per byte), written back at the end.
        var cLen = clLen, ln = line, lsr = lineStartRaw, atLS = atLineStart
        var needSeg = needSegment, pendingLS = pendingLineStart
        defer {
            clLen = cLen; line = ln; lineStartRaw = lsr; atLineStart = atLS
            needSegment = needSeg; pendingLineStart = pendingLS
            rawCleaned = base + i
        }
        @inline(__always) func emit(_ from: Int, _ count: Int) {
            if needSeg {
                segs.append(Segment(clean: cBase + cLen, raw: base + from, line: ln, lineStartRaw: lsr, startsLine: pendingLS))
                needSeg = false
                pendingLS = false
            }
            (out + cLen).update(from: p + from, count: count)
            cLen += count
        }
        while i < n {
            if atLS {
                if n - i < 256 && !final { return }
                i += Self.prefixLength(p + i, n - i)
                atLS = false
                needSeg = true
                continue
            }
            let runStart = i
            while i + 8 <= n {
                let x = UnsafeRawPointer(p + i).loadUnaligned(as: UInt64.self)
                if (x &- 0x2020_2020_2020_2020) & ~x & 0x8080_8080_8080_8080 != 0 { break }
                i += 8
            }
            while i < n, p[i] >= 0x20 { i += 1 }
            if i > runStart { emit(runStart, i - runStart) }
            if i >= n { return }
            switch p[i] {
            case 0x0A:
                i += 1
                ln += 1
                lsr = base + i
                atLS = true
                pendingLS = true
            case 0x0D:
                i += 1
                needSeg = true
            case 0x1B:
                let l = Self.escapeLength(p + i, n - i, final: final)
                if l == 0 { return }
                i += l
                needSeg = true
                // GitLab writes `\e[0Ksection_start:…`: the marker after an escape goes too.
                if i < n, p[i] == UInt8(ascii: "s") {
                    if n - i < 256 && !final { i -= l; return }
                    i += Self.sectionMarkerLength(p + i, n - i)
                }
            default: // tab and other control bytes stay
                emit(i, 1)
                i += 1
            }
        }
    }

    // MARK: mapping

    /// Index of the segment holding absolute cleaned offset `pos`.
    func segmentIndex(_ pos: Int) -> Int {
        var lo = 0, hi = segs.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if segs[mid].clean <= pos { lo = mid } else { hi = mid - 1 }
        }
        return lo
    }

    func rawOffset(_ pos: Int) -> Int {
        let s = segs[segmentIndex(pos)]
        return s.raw + (pos - s.clean)
    }

    /// True when a segment starts at `pos` (removed bytes or a line break just before it).
    func isSegmentStart(_ pos: Int) -> Bool {
        let k = segmentIndex(pos)
        return segs[k].clean == pos
    }

    /// The first line start after `pos` (absolute), or `limit`.
    func nextLineStart(after pos: Int, limit: Int) -> Int {
        var k = segmentIndex(pos) + 1
        while k < segs.count, segs[k].clean < limit {
            if segs[k].startsLine && segs[k].clean > pos { return segs[k].clean }
            k += 1
        }
        return limit
    }

    func crossesLine(_ r: Range<Int>) -> Bool {
        var k = segmentIndex(r.lowerBound) + 1
        while k < segs.count, segs[k].clean < r.upperBound {
            if segs[k].startsLine { return true }
            k += 1
        }
        return false
    }

    /// The original byte ranges under cleaned range `r`, one per line.
    func rawPieces(_ r: Range<Int>) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var k = segmentIndex(r.lowerBound)
        var pos = r.lowerBound
        while pos < r.upperBound, k < segs.count {
            let s = segs[k]
            let segEnd = k + 1 < segs.count ? segs[k + 1].clean : clBase + clLen
            let e = min(segEnd, r.upperBound)
            if e > pos {
                let piece = (s.raw + pos - s.clean)..<(s.raw + e - s.clean)
                if let last = out.last, !s.startsLine, k > 0, segs[k - 1].line == s.line {
                    out[out.count - 1] = last.lowerBound..<piece.upperBound
                } else {
                    out.append(piece)
                }
            }
            pos = max(pos, e)
            k += 1
        }
        return out
    }

    // MARK: scanning

    func scanBlock(final: Bool) {
        let cut = final ? Int.max : clBase + clLen - margin
        var cands: [Candidate] = []
        probe(into: &cands)
        let reported = cands.filter { $0.end >= prevCut && $0.end < cut }
        prevCut = cut
        report(reported)
        if final {
            flushMask(upTo: Int.max)
            segs.removeAll()
            return
        }
        // Slide: keep the last `overlap` cleaned bytes.
        let drop = clLen - overlap
        if drop > 0 {
            cl.update(from: cl + drop, count: overlap)
            clLen = overlap
            clBase += drop
            let k = segmentIndex(clBase)
            if k > 0 { segs.removeFirst(k) }
        }
        if maskSink != nil, !segs.isEmpty { flushMask(upTo: rawOffset(clBase)) }
    }

    func probe(into cands: inout [Candidate]) {
        let n = clLen
        guard n >= 4 else { return }
        let buf = UnsafePointer(cl)
        let rp = UnsafeRawPointer(buf)
        // Two tight passes that only collect positions (so many bit-array loads are in flight
        // at once), then the rare verifications in log order.
        var hitsA = hitBufferA, hitsB = hitBufferB
        hitBufferA = []; hitBufferB = []
        defer {
            hitsA.removeAll(keepingCapacity: true); hitsB.removeAll(keepingCapacity: true)
            hitBufferA = hitsA; hitBufferB = hitsB
        }
        if m.hasTierA && n >= 8 {
            m.aBits.withUnsafeBufferPointer { aBits in
                let shift = m.aWordShift
                var p = (5 - clBase % 5) % 5
                let last = n - 8
                while p <= last {
                    let g = rp.loadUnaligned(fromByteOffset: p, as: UInt64.self)
                    let (w, mk) = bloomA(g, shift: shift)
                    if aBits[w] & mk == mk { hitsA.append(p) }
                    p += 5
                }
            }
        }
        m.bBits.withUnsafeBufferPointer { bBits in
            let stride = m.bStride
            var p = (stride - clBase % stride) % stride
            let last = n - 4
            if stride == 2 {
                // Three grams (at p, p+2, p+4) from one 8-byte load.
                while p + 8 <= n {
                    let x = rp.loadUnaligned(fromByteOffset: p, as: UInt64.self) | 0x2020_2020_2020_2020
                    let (w0, m0) = bloomB(UInt32(truncatingIfNeeded: x))
                    let (w1, m1) = bloomB(UInt32(truncatingIfNeeded: x >> 16))
                    let (w2, m2) = bloomB(UInt32(truncatingIfNeeded: x >> 32))
                    if (bBits[w0] & m0) | (bBits[w1] & m1) | (bBits[w2] & m2) != 0 {
                        if bBits[w0] & m0 != 0 { hitsB.append(p) }
                        if bBits[w1] & m1 != 0 { hitsB.append(p + 2) }
                        if bBits[w2] & m2 != 0 { hitsB.append(p + 4) }
                    }
                    p += 6
                }
            }
            while p <= last {
                let g4 = rp.loadUnaligned(fromByteOffset: p, as: UInt32.self) | 0x2020_2020
                let (w, mk) = bloomB(g4)
                if bBits[w] & mk != 0 { hitsB.append(p) }
                p += stride
            }
        }
        m.aTable.withUnsafeBufferPointer { aTable in
            let aMask = m.aMask
            for p in hitsA {
                let g = rp.loadUnaligned(fromByteOffset: p, as: UInt64.self)
                var slot = slotA(g) & aMask
                while aTable[slot].needle != .max {
                    if aTable[slot].gram == g { verifyA(buf, n, p, aTable[slot], &cands) }
                    slot = (slot + 1) & aMask
                }
            }
        }
        m.bTable.withUnsafeBufferPointer { bTable in
            let bMask = m.bMask
            for p in hitsB {
                let g4 = rp.loadUnaligned(fromByteOffset: p, as: UInt32.self) | 0x2020_2020
                var slot = slotB(g4) & bMask
                while bTable[slot].id != .max {
                    let e = bTable[slot]
                    if e.gram == g4, p >= Int(e.offset) { verifyB(buf, n, p - Int(e.offset), e.id, &cands) }
                    slot = (slot + 1) & bMask
                }
            }
        }
    }

    @inline(__always) func coverage(_ needle: Int, _ i: Int, _ j: Int) -> Int {
        let s = m.nStart[needle]
        let first = Int(m.nSpans[s + i] >> 16)
        let lastP1 = Int(m.nSpans[s + j - 1] & 0xFFFF)
        return max(0, lastP1 - first)
    }

    func verifyA(_ buf: UnsafePointer<UInt8>, _ n: Int, _ p: Int, _ e: SecretMatcher.EntryA, _ cands: inout [Candidate]) {
        let needle = Int(e.needle)
        let ns = m.nStart[needle], nl = m.nLen[needle]
        let flags = m.nFlags[needle]
        m.nBytes.withUnsafeBufferPointer { nb in
            let off = Int(e.offset)
            // Skip a match already found from an earlier probe.
            if let last = cands.last, last.needle == needle, last.secret >= 0, last.end > clBase + p { return }
            var i = off, q = p
            while i > 0, q > 0, nb[ns + i - 1] == buf[q - 1] { i -= 1; q -= 1 }
            var j = off + 8, r = p + 8
            while j < nl, r < n, nb[ns + j] == buf[r] { j += 1; r += 1 }
            let complete = i == 0 && j == nl
            if !complete {
                if flags & SecretMatcher.flagCompleteOnly != 0 { return }
                if j - i < SecretMatcher.minTruncated { return }
                if coverage(needle, i, j) < SecretMatcher.minTruncated { return }
                if shannonEntropy(UnsafeBufferPointer(start: buf + q, count: r - q)) < SecretMatcher.fragmentEntropy { return }
            }
            if flags & SecretMatcher.flagWordBoundary != 0, !boundary(buf, n, q, r) { return }
            let secret = Int(m.nSecret[needle])
            cands.append(Candidate(start: clBase + q, end: clBase + r, secret: secret, needle: needle,
                                   covered: complete ? m.secrets[secret].length : coverage(needle, i, j),
                                   complete: complete, value: 0..<0))
        }
    }

    func boundary(_ buf: UnsafePointer<UInt8>, _ n: Int, _ q: Int, _ r: Int) -> Bool {
        let before = q == 0 || !isWordByte(buf[q - 1]) || isSegmentStart(clBase + q)
        let after = r >= n || !isWordByte(buf[r]) || isSegmentStart(clBase + r)
        return before && after
    }

    func verifyB(_ buf: UnsafePointer<UInt8>, _ n: Int, _ p: Int, _ id: UInt32, _ cands: inout [Candidate]) {
        if id & SecretMatcher.detectorFlag != 0 {
            let d = Int(id & ~SecretMatcher.detectorFlag)
            let det = m.detectors[d]
            let lineEnd = det.multiline ? n : nextLineStart(after: clBase + p, limit: clBase + n) - clBase
            guard let hit = det.match(buf, p, lineEnd, n) else { return }
            if let last = cands.last, last.secret < 0, last.needle == d, last.start == clBase + hit.range.lowerBound { return }
            cands.append(Candidate(start: clBase + hit.range.lowerBound, end: clBase + hit.range.upperBound, secret: -1, needle: d,
                                   covered: hit.value.count, complete: true,
                                   value: (clBase + hit.value.lowerBound)..<(clBase + hit.value.upperBound)))
            return
        }
        let needle = Int(id)
        let ns = m.nStart[needle], nl = m.nLen[needle]
        guard p + nl <= n else { return }
        let same = m.nBytes.withUnsafeBufferPointer { nb in memcmp(nb.baseAddress! + ns, buf + p, nl) == 0 }
        guard same else { return }
        if m.nFlags[needle] & SecretMatcher.flagWordBoundary != 0, !boundary(buf, n, p, p + nl) { return }
        let secret = Int(m.nSecret[needle])
        cands.append(Candidate(start: clBase + p, end: clBase + p + nl, secret: secret, needle: needle,
                               covered: m.secrets[secret].length, complete: true, value: 0..<0))
    }

    // MARK: reporting

    func report(_ cands: [Candidate]) {
        guard !cands.isEmpty else { return }
        if maskSink != nil {
            for c in cands { maskRanges += rawPieces(c.start..<c.end) }
        }
        // Known secrets: of overlapping matches of one secret keep the best one.
        var best: [Candidate] = []
        let known = cands.filter { $0.secret >= 0 }.sorted { ($0.secret, $0.start) < ($1.secret, $1.start) }
        for c in known {
            if let last = best.last, last.secret == c.secret, c.start < last.end {
                if (c.complete && !last.complete) || (c.complete == last.complete && c.covered > last.covered) {
                    best[best.count - 1] = c
                }
                continue
            }
            best.append(c)
        }
        // Detectors: not where a known secret matched; one detector per place (the most specific).
        let detected = cands.filter { $0.secret < 0 }.sorted { ($0.start, $0.needle) < ($1.start, $1.needle) }
        var kept: [Candidate] = []
        for c in detected {
            if known.contains(where: { $0.start < c.end && c.start < $0.end }) { continue }
            if kept.contains(where: { $0.start < c.end && c.start < $0.end }) { continue }
            kept.append(c)
        }
        let all = (best + kept).sorted { $0.start < $1.start }
        for c in all {
            let f = finding(c)
            findingCount += 1
            onFinding?(f)
            if findings.count < m.limits.maxFindings { findings.append(f) }
        }
    }

    func finding(_ c: Candidate) -> Finding {
        let si = segmentIndex(c.start)
        let s = segs[si]
        let rawStart = s.raw + (c.start - s.clean)
        let rawEnd = rawOffset(c.end - 1) + 1
        let split = crossesLine(c.start..<c.end)
        if c.secret >= 0 {
            let info = m.secrets[c.secret]
            return Finding(secretName: info.name, secretPath: info.path, detector: nil, encoding: m.nEncoding[c.needle].name,
                           splitLines: split, truncated: !c.complete, line: s.line, column: rawStart - s.lineStartRaw + 1,
                           offset: rawStart, length: rawEnd - rawStart, matchedBytes: c.covered, totalBytes: info.length,
                           fingerprint: info.fingerprint)
        }
        let det = m.detectors[c.needle]
        let lo = c.value.lowerBound - clBase, hi = c.value.upperBound - clBase
        var value = Array(UnsafeBufferPointer(start: cl + lo, count: hi - lo))
        let fp = m.fingerprintKey.fingerprint(value)
        wipeBytes(&value)
        return Finding(secretName: det.name, secretPath: nil, detector: det.name, encoding: "detector", splitLines: split,
                       truncated: false, line: s.line, column: rawStart - s.lineStartRaw + 1, offset: rawStart,
                       length: rawEnd - rawStart, matchedBytes: c.covered, totalBytes: c.covered, fingerprint: fp)
    }

    // MARK: masking

    func flushMask(upTo limit: Int) {
        guard let sink = maskSink else { return }
        let end = min(limit, rawBase + rawLen)
        maskRanges.sort { $0.lowerBound < $1.lowerBound }
        var pending: [Range<Int>] = []
        let stars: [UInt8] = Array("***".utf8)
        func write(_ from: Int, _ to: Int) {
            guard to > from else { return }
            sink(UnsafeRawBufferPointer(start: raw + (from - rawBase), count: to - from))
        }
        var merged: [Range<Int>] = []
        for r in maskRanges {
            if let last = merged.last, r.lowerBound <= last.upperBound {
                merged[merged.count - 1] = last.lowerBound..<max(last.upperBound, r.upperBound)
            } else { merged.append(r) }
        }
        for r in merged {
            if r.lowerBound >= end { pending.append(r); continue }
            if r.upperBound <= rawFlushed { continue }
            if r.lowerBound < rawFlushed { rawFlushed = r.upperBound; continue }   // the rest of a range already starred
            write(rawFlushed, r.lowerBound)
            stars.withUnsafeBytes { sink($0) }
            rawFlushed = r.upperBound
        }
        if end > rawFlushed { write(rawFlushed, end); rawFlushed = end }
        maskRanges = pending
    }
}

extension SecretMatcher {
    /// Scans a whole log held in memory.
    public func scan(_ log: [UInt8]) -> [Finding] {
        let s = LogScanner(matcher: self)
        s.feed(log)
        s.finish()
        return s.findings
    }

    /// The log with every match replaced by `***`, and the findings.
    public func mask(_ log: [UInt8]) -> (masked: [UInt8], findings: [Finding]) {
        var out: [UInt8] = []
        let s = LogScanner(matcher: self) { out.append(contentsOf: $0) }
        s.feed(log)
        s.finish()
        return (out, s.findings)
    }
}
